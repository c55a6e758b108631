"""Tests written for mutants of riskfm/evaluate/agreement.py that survived mutmut (docs/testing.md).

References: scipy's t interval and ``ks_2samp``, scikit-learn's ``cohen_kappa_score``,
statsmodels' ``cohens_kappa`` and Wilson ``proportion_confint``, hand-counted 2x2 tables, and the
percentile bootstraps rebuilt here from the documented resampling (numpy's ``default_rng(seed)``,
one ``integers(0, n, n)`` draw of the items per resample).
"""

import math
import re
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import cohen_kappa_score, f1_score
from statsmodels.stats.inter_rater import cohens_kappa
from statsmodels.stats.proportion import proportion_confint

from riskfm.evaluate.agreement import (
    Kappa,
    bland_altman,
    cohen_kappa,
    diagnostic_at_cutoffs,
    kappa_value,
    ks_test,
)


def full(text: str) -> str:
    return "^" + re.escape(text) + "$"


def _title(ax):
    return "".join(ax.get_title(loc=loc) for loc in ("left", "center", "right"))


# ---- Bland-Altman -------------------------------------------------------------------------------

def test_bland_altman_errors_name_the_arguments():
    with pytest.raises(ValueError, match=full("reference and predicted must have the same length, got 2 and 3")):
        bland_altman([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match=full("reference holds NaN or infinite values (position 1)")):
        bland_altman([1, np.nan], [1, 2])
    with pytest.raises(ValueError, match=full("predicted holds NaN or infinite values (position 0)")):
        bland_altman([1, 2], [np.inf, 2])
    # One pair has no sample SD (ddof 1): refused, not an SD of NaN.
    with pytest.raises(ValueError, match=full("bland_altman needs more than 1 pairs, got 1")):
        bland_altman([3.0], [5.0])
    with pytest.raises(ValueError, match=full("bland_altman needs more than 2 pairs, got 2")):
        bland_altman([3.0, 4.0], [5.0, 4.0], ddof=2)


def test_bland_altman_one_pair_with_ddof_0_has_no_bias_interval():
    ba = bland_altman([3.0], [5.0], ddof=0)
    assert ba.ci is None and ba.to_dict()["ci"] is None
    assert (ba.value, ba.sd, ba.loa, ba.n) == (2.0, 0.0, (2.0, 2.0), 1)


def test_bland_altman_two_pairs_have_the_t_interval():
    ref, pred = np.array([1.0, 2.0]), np.array([2.0, 5.0])
    ba = bland_altman(ref, pred)
    ci = stats.ttest_1samp(pred - ref, 0.0).confidence_interval(0.95)
    assert ba.ci == pytest.approx((ci.low, ci.high), rel=1e-12)
    # by hand: bias 2, SD sqrt(2), t_{0.975, 1} = 12.706...
    assert ba.ci == pytest.approx((2.0 - 12.706204736, 2.0 + 12.706204736), rel=1e-9)


def test_bland_altman_plot_axes_and_method():
    ba = bland_altman([1.0, 2.0, 4.0], [3.0, 2.0, 10.0])
    assert ba.method == "t interval of the mean difference"
    assert ba.to_dict()["method"] == "t interval of the mean difference"
    # the plot's x: per-pair means (by hand), y: differences
    np.testing.assert_array_equal(ba.mean, [2.0, 2.0, 7.0])
    np.testing.assert_array_equal(ba.diff, [2.0, 0.0, 6.0])


def test_bland_altman_plot_title_units_and_file(tmp_path):
    ba = bland_altman([1.0, 2.0, 4.0], [3.0, 2.0, 10.0])
    plain = ba.plot().axes[0]
    assert _title(plain) == ""
    assert plain.get_xlabel() == "mean of predicted and reference"
    assert plain.get_ylabel() == "predicted - reference"
    fig = ba.plot(tmp_path / "ba.png", title="LAD", units="Agatston")
    assert (tmp_path / "ba.png").is_file() and (tmp_path / "ba.png").stat().st_size > 0
    ax = fig.axes[0]
    assert _title(ax) == "LAD"
    assert ax.get_xlabel() == "mean of predicted and reference (Agatston)"
    assert ax.get_ylabel() == "predicted - reference (Agatston)"


# ---- Cohen's kappa ------------------------------------------------------------------------------

A = np.array([0, 1, 2, 3, 4, 0, 1, 2, 2, 3, 1, 0, 4, 3, 2, 1, 0, 0, 2, 4, 1, 3, 2, 0, 1, 2, 3, 4, 0, 2])
B = np.array([0, 1, 2, 2, 4, 1, 1, 2, 3, 3, 0, 0, 4, 4, 2, 1, 0, 1, 2, 3, 1, 3, 1, 0, 2, 2, 3, 4, 0, 2])


def _boot_kappa(a, b, weights, n_boot, seed, confidence):
    """Percentile bootstrap of kappa over items, with scikit-learn's kappa on each resample."""
    labels = np.unique(np.concatenate([a, b]))
    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(n_boot):
        idx = rng.integers(0, a.size, a.size)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            vals.append(cohen_kappa_score(a[idx], b[idx], labels=labels, weights=weights))
    vals = np.asarray(vals)
    vals = vals[np.isfinite(vals)]
    half = 100 * (1 - confidence) / 2
    return tuple(np.percentile(vals, [half, 100 - half]))


def test_kappa_errors_name_the_arguments():
    for fn in (kappa_value, cohen_kappa):
        with pytest.raises(ValueError, match=full("a and b must have the same length, got 2 and 1")):
            fn([1, 2], [1])
        with pytest.raises(ValueError, match=full("a holds NaN or infinite values (position 0)")):
            fn([np.nan, 2], [1, 2])
        with pytest.raises(ValueError, match=full("b holds NaN or infinite values (position 1)")):
            fn([1, 2], [1, np.nan])
    with pytest.raises(ValueError, match=full("weights must be None, 'linear' or 'quadratic', got 'cubic'")):
        kappa_value(A, B, "cubic")
    with pytest.raises(ValueError, match=full("weights must be None, 'linear' or 'quadratic', got 'Linear'")):
        cohen_kappa(A, B, weights="Linear")


@pytest.mark.parametrize("weights", [None, "linear", "quadratic"])
def test_kappa_value_matches_sklearn(weights):
    assert kappa_value(A, B, weights) == pytest.approx(cohen_kappa_score(A, B, weights=weights), rel=1e-12)


@pytest.mark.parametrize("weights", [None, "linear"])
def test_kappa_of_raters_without_a_shared_category_is_0(weights):
    # Expected disagreement exactly 1 (the raters never use the same category): kappa = 1 - 1 / 1 = 0.
    a, b = [0, 0, 0], [1, 1, 1]
    assert cohen_kappa_score(a, b, weights=weights) == 0.0
    assert kappa_value(a, b, weights) == 0.0
    assert cohen_kappa(a, b, weights=weights, n_boot=20).value == 0.0


@pytest.mark.parametrize("weights", [None, "linear", "quadratic"])
def test_kappa_of_one_single_category_is_nan_without_interval(weights):
    assert math.isnan(kappa_value([2, 2, 2], [2, 2, 2], weights))
    k = cohen_kappa([2, 2, 2], [2, 2, 2], weights=weights, n_boot=20)
    assert math.isnan(k.value) and k.ci is None and k.to_dict()["ci"] is None
    assert (k.n, k.se, k.weights) == (3, None, weights)


def test_kappa_result_normalises_its_interval():
    nan_bound = Kappa(0.5, (float("nan"), 0.7), "asymptotic", 10, 0.1, None)
    assert nan_bound.ci is None
    listed = Kappa(0.5, [np.float32(0.25), 1], "asymptotic", 10, 0.1, None)
    assert listed.ci == (0.25, 1.0) and type(listed.ci) is tuple
    assert all(type(v) is float for v in listed.ci)
    assert Kappa(0.5, None, "asymptotic", 10, None, None).ci is None


def test_unweighted_kappa_fields_match_statsmodels_at_90_percent():
    table = np.zeros((5, 5))
    np.add.at(table, (A, B), 1)
    sm = cohens_kappa(table)  # its interval is at 95%; the 90% Wald interval from its SE
    k = cohen_kappa(A, B, confidence=0.9)
    assert k.value == pytest.approx(sm.kappa, rel=1e-12) and k.se == pytest.approx(sm.std_kappa, rel=1e-12)
    z = stats.norm.ppf(0.95)
    assert k.ci == pytest.approx((sm.kappa - z * sm.std_kappa, sm.kappa + z * sm.std_kappa), rel=1e-12)
    assert (k.method, k.n, k.weights, k.confidence) == ("asymptotic", 30, None, 0.9)
    assert k.to_dict()["confidence"] == 0.9 and k.to_dict()["weights"] is None


def test_unweighted_kappa_interval_is_clipped_at_minus_1():
    a, b = [0, 1, 0, 1, 0, 1], [1, 0, 1, 0, 1, 1]
    table = np.zeros((2, 2))
    np.add.at(table, (a, b), 1)
    sm = cohens_kappa(table)
    assert sm.kappa_low < -1.0  # the Wald limit passes -1; kappa cannot
    k = cohen_kappa(a, b)
    assert k.value == pytest.approx(sm.kappa) and k.ci[0] == -1.0
    assert k.ci[1] == pytest.approx(sm.kappa_upp, rel=1e-12)


def test_weighted_kappa_bootstrap_matches_a_rebuilt_bootstrap():
    k = cohen_kappa(A, B, weights="linear", confidence=0.9, n_boot=200, seed=3)
    assert k.ci == pytest.approx(_boot_kappa(A, B, "linear", 200, 3, 0.9), rel=1e-12)
    assert (k.method, k.n, k.se, k.weights, k.confidence) == ("bootstrap (200 resamples)", 30, None, "linear", 0.9)
    d = k.to_dict()
    assert (d["n"], d["se"], d["weights"], d["confidence"]) == (30, None, "linear", 0.9)


def test_weighted_kappa_defaults_are_1000_resamples_and_seed_0():
    k = cohen_kappa(A, B, weights="quadratic")
    assert k.method == "bootstrap (1000 resamples)"
    assert k.ci == pytest.approx(_boot_kappa(A, B, "quadratic", 1000, 0, 0.95), rel=1e-12)
    assert (k.weights, k.confidence, k.se) == ("quadratic", 0.95, None)


# ---- Kolmogorov-Smirnov -------------------------------------------------------------------------

def test_ks_errors_name_the_sample():
    with pytest.raises(ValueError, match=full("a must be finite; 1 of 2 values are NaN or infinite (first at index 1)")):
        ks_test([1.0, np.nan], [1.0])
    with pytest.raises(ValueError, match=full("b must be finite; 1 of 1 values are NaN or infinite (first at index 0)")):
        ks_test([1.0], [np.inf])
    with pytest.raises(ValueError, match=full("a must be numeric, got dtype <U1")):
        ks_test(["x"], [1.0])
    with pytest.raises(ValueError, match=full("b must be numeric, got dtype <U1")):
        ks_test([1.0], ["x"])
    with pytest.raises(ValueError, match=full("ks_test: a is empty")):
        ks_test([], [1.0])
    with pytest.raises(ValueError, match=full("ks_test: b is empty")):
        ks_test([1.0], [])


def test_ks_one_element_sample_and_fields():
    a, b = [0.5], [0.1, 0.2, 0.9]
    s = stats.ks_2samp(a, b)
    r = ks_test(a, b)
    assert (r.value, r.p_value) == pytest.approx((s.statistic, s.pvalue), rel=1e-12)
    assert (r.n, r.n_a, r.n_b) == (4, 1, 3)
    assert r.method == "two-sample Kolmogorov-Smirnov (scipy)"
    d = ks_test(b, np.arange(5.0)).to_dict()
    assert (d["n"], d["n_a"], d["n_b"], d["method"]) == (8, 3, 5, "two-sample Kolmogorov-Smirnov (scipy)")


# ---- accuracy at cut-offs -----------------------------------------------------------------------

# Integer Agatston scores, several exactly at a cut-off (an exam at the cut-off is positive).
REF = np.array([0, 1, 10, 100, 400, 0, 5, 150, 399, 1000])
PRED = np.array([0, 1, 9, 100, 400, 2, 5, 99, 400, 800])
# (tp, fp, tn, fn) counted by hand at 1, 10, 100, 400
COUNTS = {1: (8, 1, 1, 0), 10: (5, 0, 4, 1), 100: (4, 0, 5, 1), 400: (2, 1, 7, 0)}
COLUMNS = ["cutoff", "tp", "fp", "tn", "fn"] + [
    c for m in ("sensitivity", "specificity", "ppv", "npv") for c in (m, f"{m}_ci_low", f"{m}_ci_high")
] + ["f1", "f1_ci_low", "f1_ci_high"]


def _boot_f1(ref, pred, cutoff, n_boot, seed, confidence):
    """Percentile bootstrap of F1 (resamples without any positive left out), F1 from 2x2 counts."""
    idx = np.random.default_rng(seed).integers(0, ref.size, size=(n_boot, ref.size))
    r, p = ref[idx] >= cutoff, pred[idx] >= cutoff
    tp, fp, fn = (r & p).sum(1), (~r & p).sum(1), (r & ~p).sum(1)
    keep = tp + fp + fn > 0
    f1 = tp[keep] / (tp[keep] + 0.5 * (fp[keep] + fn[keep]))
    half = 100 * (1 - confidence) / 2
    return tuple(np.percentile(f1, [half, 100 - half]))


def test_diagnostic_errors_name_the_arguments():
    with pytest.raises(ValueError, match=full("reference and predicted must have the same length, got 2 and 1")):
        diagnostic_at_cutoffs([1, 2], [1])
    with pytest.raises(ValueError, match=full("reference holds NaN or infinite values (position 0)")):
        diagnostic_at_cutoffs([np.nan, 2], [1, 2])


def test_diagnostic_counts_with_scores_at_the_cut_offs():
    t = diagnostic_at_cutoffs(REF, PRED, n_boot=50)
    assert t.columns.tolist() == COLUMNS
    assert t["cutoff"].tolist() == [1.0, 10.0, 100.0, 400.0]
    for _, row in t.iterrows():
        tp, fp, tn, fn = COUNTS[int(row.cutoff)]
        assert (row.tp, row.fp, row.tn, row.fn) == (tp, fp, tn, fn)
        assert row.sensitivity == pytest.approx(tp / (tp + fn))
        assert row.specificity == pytest.approx(tn / (tn + fp))
        assert row.ppv == pytest.approx(tp / (tp + fp))
        assert row.npv == pytest.approx(tn / (tn + fn))
        y, p = REF >= row.cutoff, PRED >= row.cutoff
        assert row.f1 == pytest.approx(f1_score(y, p))
    # At cut-off 1 the NPV rests on a single exam (tn 1, fn 0): 1/1 with its Wilson interval.
    first = t.iloc[0]
    lo, hi = proportion_confint(1, 1, method="wilson")
    assert (first.npv, first.npv_ci_low, first.npv_ci_high) == pytest.approx((1.0, lo, hi))


def test_diagnostic_wilson_intervals_at_90_percent():
    t = diagnostic_at_cutoffs(REF, PRED, confidence=0.9, n_boot=50)
    for _, row in t.iterrows():
        tp, fp, tn, fn = COUNTS[int(row.cutoff)]
        for name, k, n in (("sensitivity", tp, tp + fn), ("specificity", tn, tn + fp),
                           ("ppv", tp, tp + fp), ("npv", tn, tn + fn)):
            lo, hi = proportion_confint(k, n, alpha=0.1, method="wilson")
            assert (row[f"{name}_ci_low"], row[f"{name}_ci_high"]) == pytest.approx((lo, hi), rel=1e-10)


def test_diagnostic_zero_denominators_are_nan():
    t = diagnostic_at_cutoffs([0.0, 0.0, 5.0], [0.0, 3.0, 0.0], cutoffs=(10,), n_boot=20)
    row = t.iloc[0]
    assert (row.tp, row.fp, row.tn, row.fn) == (0, 0, 3, 0)
    for col in ("sensitivity", "sensitivity_ci_low", "sensitivity_ci_high", "ppv", "ppv_ci_low", "ppv_ci_high",
                "f1", "f1_ci_low", "f1_ci_high"):
        assert t[col].dtype == np.float64 and math.isnan(row[col]), col
    assert (row.specificity, row.npv) == (1.0, 1.0)


def test_diagnostic_f1_bootstrap_default_matches_a_rebuilt_bootstrap():
    t = diagnostic_at_cutoffs(REF, PRED)  # defaults: 1000 resamples, seed 0
    for _, row in t.iterrows():
        assert (row.f1_ci_low, row.f1_ci_high) == pytest.approx(
            _boot_f1(REF, PRED, row.cutoff, 1000, 0, 0.95), rel=1e-12)
    t = diagnostic_at_cutoffs(REF, PRED, confidence=0.8, n_boot=300, seed=7)
    for _, row in t.iterrows():
        assert (row.f1_ci_low, row.f1_ci_high) == pytest.approx(
            _boot_f1(REF, PRED, row.cutoff, 300, 7, 0.8), rel=1e-12)


def test_diagnostic_f1_bootstrap_with_rare_positives_leaves_empty_resamples_out_quietly():
    # Two positive exams in eight: many resamples hold none (F1 undefined, left out without a 0/0:
    # no "invalid value" warning); those holding exam 6 once and not exam 7 have F1 = 0.
    # np.errstate: lifelines' KaplanMeierFitter switches numpy's 0/0 warnings off for the whole
    # process (np.seterr, never restored), so a plain warnings filter would pass or fail with the
    # order of the tests.
    ref = np.array([0, 0, 0, 0, 0, 0, 50, 200.0])
    pred = np.array([0, 0, 0, 0, 0, 0, 0, 200.0])
    with np.errstate(divide="raise", invalid="raise"), warnings.catch_warnings():
        warnings.simplefilter("error")
        t = diagnostic_at_cutoffs(ref, pred, cutoffs=(10, 100), n_boot=400, seed=1)
    for _, row in t.iterrows():
        assert (row.f1_ci_low, row.f1_ci_high) == pytest.approx(
            _boot_f1(ref, pred, row.cutoff, 400, 1, 0.95), rel=1e-12)
    assert isinstance(t, pd.DataFrame) and t["f1"].tolist() == [2 / 3, 1.0]


def test_diagnostic_f1_bootstrap_counts_resamples_with_a_single_miss():
    # 20 exams, 3 true positives and 1 false negative at 100: about 1.5% of resamples hold the false
    # negative once and no true positive (F1 = 0 on 2 * 0 + 0 + 1 = 1 exam). They belong in the
    # interval: with the defaults its lower limit is 0; leaving them out would give 0.4.
    ref = np.array([0.0] * 16 + [150, 220, 400, 130])
    pred = np.array([0.0] * 16 + [160, 180, 420, 60])
    row = diagnostic_at_cutoffs(ref, pred, cutoffs=(100,)).iloc[0]
    assert (row.tp, row.fp, row.tn, row.fn) == (3, 0, 16, 1)
    assert row.f1 == pytest.approx(f1_score(ref >= 100, pred >= 100))
    assert (row.f1_ci_low, row.f1_ci_high) == pytest.approx(_boot_f1(ref, pred, 100, 1000, 0, 0.95), rel=1e-12)
    assert (row.f1_ci_low, row.f1_ci_high) == (0.0, 1.0)


# ----------------------------------------------------------------- weighted kappa: the whole scale
def test_weighted_kappa_counts_an_unused_category_as_a_step():
    # Calcium buckets 0-4 with bucket 3 used by nobody: 2 vs 4 is two steps on the scale. Taking
    # only the categories seen (scikit-learn's default) would make it one and overstate agreement.
    a = np.array([0, 0, 1, 2, 2, 4, 4, 1, 0, 2])
    b = np.array([0, 1, 1, 4, 2, 4, 2, 1, 0, 2])
    for weights in ("linear", "quadratic"):
        full = cohen_kappa_score(a, b, labels=[0, 1, 2, 3, 4], weights=weights)
        assert full != pytest.approx(cohen_kappa_score(a, b, weights=weights))  # the case matters
        assert kappa_value(a, b, weights) == pytest.approx(full, rel=1e-12)
        assert kappa_value(a, b, weights, categories=range(5)) == pytest.approx(full, rel=1e-12)
        assert cohen_kappa(a, b, weights=weights, n_boot=20).value == pytest.approx(full, rel=1e-12)
        # Float ratings that are whole numbers read as the same integer scale.
        assert kappa_value(a.astype(float), b.astype(float), weights) == pytest.approx(full, rel=1e-12)
    # A scale starting above 0 and wider than the ratings: the positions, not the codes, count,
    # and categories beyond both ends change nothing.
    full = cohen_kappa_score(a + 3, b + 3, labels=list(range(3, 8)), weights="linear")
    assert kappa_value(a + 3, b + 3, "linear") == pytest.approx(full, rel=1e-12)
    assert kappa_value(a + 3, b + 3, "linear", categories=range(0, 12)) == pytest.approx(full, rel=1e-12)
    assert cohen_kappa(a + 3, b + 3, weights="linear", categories=range(3, 8), n_boot=20).value == pytest.approx(
        full, rel=1e-12)


def test_weighted_kappa_categories_in_a_given_order_not_sorted():
    # The order of `categories` is the scale, whatever sorting would say (codes 2, 0, 1 meaning
    # low, mid, high).
    x = np.array([0, 1, 2, 2, 1, 0, 2, 0])
    y = np.array([0, 2, 2, 1, 1, 1, 1, 2])
    for weights in ("linear", "quadratic"):
        ref = cohen_kappa_score(x, y, labels=[2, 0, 1], weights=weights)
        assert ref != pytest.approx(cohen_kappa_score(x, y, weights=weights))  # sorted order differs
        assert kappa_value(x, y, weights, categories=[2, 0, 1]) == pytest.approx(ref, rel=1e-12)
        assert cohen_kappa(x, y, weights=weights, categories=[2, 0, 1], n_boot=20).value == pytest.approx(
            ref, rel=1e-12)
    # Fractional codes have no integer scale but can be given one.
    ref = cohen_kappa_score(x, y, labels=[0, 1, 2], weights="linear")
    assert kappa_value(x / 2, y / 2, "linear", categories=[0.0, 0.5, 1.0]) == pytest.approx(ref, rel=1e-12)


def test_kappa_categories_errors_name_the_problem():
    a = np.array([0.5, 1.5, 1.0, 0.5])
    b = np.array([0.5, 1.0, 1.0, 1.5])
    # Fractional ratings: no integer scale, so weighted kappa needs the categories.
    for weights in ("linear", "quadratic"):
        with pytest.raises(ValueError, match=rf"weighted kappa \({weights}\) needs the order of the categories: "
                                             r"pass categories=\[\.\.\.\] \(ratings seen: \[0\.5, 1\.0, 1\.5\]\)"):
            kappa_value(a, b, weights)
        with pytest.raises(ValueError, match="needs the order"):
            cohen_kappa(a, b, weights=weights)
    # Unweighted kappa needs no order and does not change with unused categories.
    x, y = np.array([0, 1, 2, 2, 1, 0]), np.array([0, 2, 2, 1, 1, 1])
    assert kappa_value(a, b) == pytest.approx(cohen_kappa_score(a * 2, b * 2), rel=1e-12)
    assert kappa_value(x, y, categories=[0, 1, 2, 3]) == pytest.approx(cohen_kappa_score(x, y), rel=1e-12)
    with pytest.raises(ValueError, match=r"ratings \[2\.0\] are not among categories \[0, 1\]"):
        cohen_kappa(x, y, categories=[0, 1])
    with pytest.raises(ValueError, match=r"ratings \[2\.0\] are not among categories"):
        kappa_value(x, y, "linear", categories=[0, 1])
    with pytest.raises(ValueError, match=r"categories must not repeat a category, got \[0, 1, 1, 2\]"):
        kappa_value(x, y, categories=[0, 1, 1, 2])
    with pytest.raises(ValueError, match=r"categories must be a non-empty 1-D sequence, got \[\]"):
        kappa_value(x, y, categories=[])
    with pytest.raises(ValueError, match="non-empty 1-D sequence"):
        cohen_kappa(x, y, categories=[[0, 1], [2, 3]])


def test_weighted_kappa_of_negative_codes_spans_them():
    # Codes below 0 (e.g. -1 for "regressed") are on the scale too.
    a = np.array([-2, -1, 0, 1, -2, 1, 0, -1])
    b = np.array([-2, 1, 0, 1, -1, 1, -2, -1])
    for weights in ("linear", "quadratic"):
        ref = cohen_kappa_score(a, b, labels=[-2, -1, 0, 1], weights=weights)
        assert kappa_value(a, b, weights) == pytest.approx(ref, rel=1e-12)
