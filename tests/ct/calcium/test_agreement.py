"""riskfm.evaluate.agreement (and segmentation's Dice) against statsmodels, scipy, scikit-learn and MONAI."""

import numpy as np
import pytest

from riskfm.evaluate.agreement import bland_altman, cohen_kappa, diagnostic_at_cutoffs, ks_test
from riskfm.evaluate.segmentation import dice_scores

rng = np.random.default_rng(0)
REF = rng.gamma(0.6, 300, size=80)
PRED = np.clip(REF * rng.normal(1.0, 0.2, size=80) + rng.normal(5, 10, size=80), 0, None)


def test_bland_altman_matches_statsmodels_limits():
    import matplotlib

    matplotlib.use("Agg")
    from statsmodels.graphics.agreement import mean_diff_plot

    fig = mean_diff_plot(PRED, REF)  # statsmodels: diff = m1 - m2, SD with ddof 0, z = 1.96
    ys = sorted({round(float(line.get_ydata()[0]), 6) for line in fig.axes[0].lines})
    ba = bland_altman(REF, PRED, ddof=0)
    assert ba.bias == pytest.approx(float(np.mean(PRED - REF)))
    assert [ba.loa[0], ba.value, ba.loa[1]] == pytest.approx(ys, abs=1e-2)
    ba1 = bland_altman(REF, PRED)
    assert ba1.sd == pytest.approx(np.std(PRED - REF, ddof=1)) and ba1.bias == ba1.value
    d = ba1.to_dict()
    assert set(d) >= {"value", "ci", "method", "n", "loa"} and "mean" not in d
    # The bias interval is the one-sample t interval of the differences (scipy).
    from scipy import stats

    ci = stats.ttest_1samp(PRED - REF, 0.0).confidence_interval(0.95)
    assert ba1.ci == pytest.approx((ci.low, ci.high), rel=1e-10)


def test_cohen_kappa_matches_sklearn_and_statsmodels():
    from sklearn.metrics import cohen_kappa_score
    from statsmodels.stats.inter_rater import cohens_kappa

    a = rng.integers(0, 5, 120)
    b = np.where(rng.random(120) < 0.7, a, rng.integers(0, 5, 120))
    k = cohen_kappa(a, b)
    assert k.value == pytest.approx(cohen_kappa_score(a, b))
    table = np.zeros((5, 5))
    np.add.at(table, (a, b), 1)
    sm = cohens_kappa(table)
    assert k.se == pytest.approx(sm.std_kappa)
    assert k.ci == pytest.approx((sm.kappa_low, sm.kappa_upp)) and k.method == "asymptotic"
    for w in ("linear", "quadratic"):
        kw = cohen_kappa(a, b, weights=w, n_boot=200)
        assert kw.value == pytest.approx(cohen_kappa_score(a, b, weights=w))
        assert kw.ci[0] <= kw.value <= kw.ci[1] and kw.method == "bootstrap (200 resamples)"
        assert kw.to_dict()["ci"] == list(kw.ci)
    # Near-perfect agreement on few items: the Wald limit would pass 1; kappa cannot.
    a = np.repeat(np.arange(5), 4)
    b = a.copy()
    b[0] = 1
    near = cohen_kappa(a, b)
    assert near.value + 1.96 * near.se > 1 and near.ci[1] == 1.0 and near.ci[0] < near.value


def test_ks_matches_scipy():
    from scipy.stats import ks_2samp

    r = ks_test(REF, PRED)
    s = ks_2samp(REF, PRED)
    assert (r.value, r.p_value) == pytest.approx((s.statistic, s.pvalue)) and r.ci is None


def test_diagnostics_match_sklearn_and_wilson():
    from sklearn.metrics import precision_recall_fscore_support
    from statsmodels.stats.proportion import proportion_confint

    t = diagnostic_at_cutoffs(REF, PRED)
    assert t["cutoff"].tolist() == [1, 10, 100, 400]
    for _, row in t.iterrows():
        y, p = REF >= row.cutoff, PRED >= row.cutoff
        prec, rec, f1, _ = precision_recall_fscore_support(y, p, average="binary", zero_division=np.nan)
        assert row.sensitivity == pytest.approx(rec) and row.ppv == pytest.approx(prec) and row.f1 == pytest.approx(f1)
        spec = np.sum(~y & ~p) / np.sum(~y)
        assert row.specificity == pytest.approx(spec)
        lo, hi = proportion_confint(row.tp, row.tp + row.fn, method="wilson")
        assert (row.sensitivity_ci_low, row.sensitivity_ci_high) == pytest.approx((lo, hi))
        assert row.f1_ci_low <= row.f1 <= row.f1_ci_high


def test_dice_matches_monai_and_empty_is_nan():
    import torch
    from monai.metrics import compute_dice

    ref = np.zeros((4, 20, 20), np.uint8)
    pred = np.zeros_like(ref)
    ref[1, 2:8, 2:8] = 2
    pred[1, 3:9, 2:8] = 2
    ref[2, 10:12, 10:12] = 4
    d = dice_scores(pred, ref, names=["LM", "LAD", "LCX", "RCA"])
    onehot = lambda x: torch.from_numpy(np.stack([x == v for v in range(5)])[None].astype(np.float32))  # noqa: E731
    m = compute_dice(onehot(pred), onehot(ref), include_background=False, ignore_empty=True)[0].numpy()
    assert d["LAD"] == pytest.approx(m[1]) and d["RCA"] == pytest.approx(m[3]) == 0.0
    assert np.isnan(d["LM"]) and np.isnan(m[0])
    with pytest.raises(ValueError, match="shape"):
        dice_scores(pred[:2], ref)


def test_bad_inputs_name_the_argument():
    with pytest.raises(ValueError, match="same length"):
        bland_altman([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="predicted holds NaN"):
        diagnostic_at_cutoffs([1, 2], [1, np.nan])
