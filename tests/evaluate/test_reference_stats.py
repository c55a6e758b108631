"""Every statistic of the calibration, decision-curve, discrimination, threshold and risk-group
modules against an independent reference on the same data.

The reference is never the call riskfm itself makes. It is either an established implementation
(statsmodels GLM and Wilson intervals, scikit-learn AUROC / average precision / F1 / ROC curve /
Brier, scipy's log-rank test) or the published definition written out in the test (net benefit,
Spiegelhalter's z, ECE and its bins, Kaplan-Meier, exponential Greenwood bands, the multi-group
log-rank test). Closed-form numbers agree to 1e-12 (1e-10 where the reference sums in another
order: Spiegelhalter's z, Greenwood bands; 1e-9 relative for log-rank p-values); iterative fits to
1e-8 (statsmodels GLM) and 1e-7 relative (temperature against 1 / GLM slope).

Bootstrap intervals: the resamples come from ``stratified_bootstrap_indices`` (pinned here to
its raw RNG draws), the statistic of each resample from scikit-learn, and the interval must be
``np.quantile(values, [alpha / 2, 1 - alpha / 2])`` of those values.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from scipy.stats import chi2
from sklearn.metrics import average_precision_score, brier_score_loss, f1_score, roc_auc_score, roc_curve

import riskfm.evaluate.discrimination as discrimination
from riskfm.evaluate.calibration import (
    brier_score,
    calibration,
    expected_calibration_error,
    fit_recalibration,
    spiegelhalter_z,
)
from riskfm.evaluate.decision_curve import decision_curve
from riskfm.evaluate.discrimination import (
    average_precision,
    bootstrap_aurocs,
    paired_bootstrap_test,
    roc_auc,
    roc_curve_points,
    stratified_bootstrap_indices,
)
from riskfm.evaluate.risk_groups import (
    assign_risk_groups,
    cumulative_incidence_by_group,
    incidence_threshold,
    reliability_table,
    risk_bin_edges,
    wilson_interval,
)
from riskfm.evaluate.thresholds import (
    threshold_at_sensitivity,
    threshold_at_specificity,
    threshold_metrics,
    youden_threshold,
)

sm = pytest.importorskip("statsmodels.api")
from statsmodels.stats.proportion import proportion_confint  # noqa: E402

EXACT = 1e-12  # closed-form statistics: riskfm and the reference differ only by rounding


def _scores(n=300, prev=0.2, decimals=2, seed=0):
    """Labels and risks rounded to ``decimals`` (many ties), both classes present."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < prev).astype(int)
    y[:3], y[3:6] = 1, 0
    p = 1.0 / (1.0 + np.exp(-(rng.normal(size=n) + 1.3 * y - 1.6)))
    return y, np.round(p, decimals)


def _two_sided_normal_p(z):
    return math.erfc(abs(z) / math.sqrt(2.0))


# ----------------------------------------------------------------------------------------- net benefit

# Worked example (Vickers & Elkin 2006): treat when p >= pt,
# NB = TP/n - FP/n * pt/(1 - pt), treat-all = prev - (1 - prev) pt/(1 - pt), treat-none = 0.
# Ten patients, several exactly at a threshold (0.10, 0.20 x3, 0.30, 0.50, 0.60).
WORKED_P = [0.05, 0.10, 0.10, 0.20, 0.20, 0.20, 0.30, 0.40, 0.50, 0.60]
WORKED_Y = [0, 0, 1, 0, 1, 0, 1, 0, 1, 1]
# pt: (treated, TP, FP, net benefit, treat all), worked out by hand; n = 10, prevalence 1/2.
WORKED_TABLE = {
    0.05: (10, 5, 5, Fraction(1, 2) - Fraction(1, 2) * Fraction(1, 19), Fraction(9, 19)),
    0.10: (9, 5, 4, Fraction(1, 2) - Fraction(4, 10) * Fraction(1, 9), Fraction(4, 9)),    # 0.4556
    0.15: (7, 4, 3, Fraction(4, 10) - Fraction(3, 10) * Fraction(3, 17), Fraction(7, 17)),  # 0.3471
    0.20: (7, 4, 3, Fraction(4, 10) - Fraction(3, 10) * Fraction(1, 4), Fraction(3, 8)),    # 0.325
    0.30: (4, 3, 1, Fraction(3, 10) - Fraction(1, 10) * Fraction(3, 7), Fraction(2, 7)),    # 0.2571
    0.50: (2, 2, 0, Fraction(2, 10), Fraction(0)),
    0.60: (1, 1, 0, Fraction(1, 10), Fraction(-1, 4)),
    0.70: (0, 0, 0, Fraction(0), Fraction(-2, 3)),
}
# With "p > pt" the tied thresholds would give 0.3667 (0.10), 0.275 (0.20), 0.1571 (0.30), 0.1 (0.50), 0 (0.60).


def test_net_benefit_matches_worked_example_with_tied_thresholds():
    p, y = np.array(WORKED_P), np.array(WORKED_Y)
    for pt, (treated, tp, fp, nb, _) in WORKED_TABLE.items():  # the table is consistent with its definition
        assert treated == sum(pi >= pt for pi in WORKED_P) == tp + fp
        assert tp == sum(pi >= pt and yi == 1 for pi, yi in zip(WORKED_P, WORKED_Y))
        assert nb == Fraction(tp, 10) - Fraction(fp, 10) * Fraction(pt).limit_denominator(100) / (
            1 - Fraction(pt).limit_denominator(100))
    dc = decision_curve(y, p, thresholds=list(WORKED_TABLE))
    assert dc.n == 10 and dc.prevalence == 0.5
    t = dc.table.set_index("threshold")
    for pt, (_, _, _, nb, treat_all) in WORKED_TABLE.items():
        assert t.loc[pt, "net_benefit"] == pytest.approx(float(nb), abs=EXACT), pt
        assert t.loc[pt, "treat_all"] == pytest.approx(float(treat_all), abs=EXACT), pt
        assert t.loc[pt, "treat_none"] == 0.0
    # The tie side explicitly: the three patients at exactly 0.20 are treated at pt = 0.20.
    assert t.loc[0.20, "net_benefit"] == pytest.approx(0.325, abs=EXACT)
    # Below every prediction the model treats everyone, so it is treat-all.
    assert t.loc[0.05, "net_benefit"] == pytest.approx(t.loc[0.05, "treat_all"], abs=EXACT)


@pytest.mark.parametrize("seed", range(3))
def test_net_benefit_default_grid_by_hand_with_risks_on_the_grid(seed):
    """Risks in whole percent (k / 100) sit exactly on the default thresholds 1%, ..., 50%."""
    rng = np.random.default_rng(seed)
    k = rng.integers(0, 61, 400)  # risk in percent
    y = (rng.random(400) < k / 100 + 0.05).astype(int)
    dc = decision_curve(y, k / 100.0)
    assert dc.table["threshold"].tolist() == [j / 100 for j in range(1, 51)]
    n = len(y)
    for j, row in zip(range(1, 51), dc.table.itertuples()):
        treat = k >= j  # integer comparison: exactly the definition's p >= pt
        tp, fp = int(np.sum(treat & (y == 1))), int(np.sum(treat & (y == 0)))
        odds = Fraction(j, 100 - j)
        assert row.net_benefit == pytest.approx(float(Fraction(tp, n) - Fraction(fp, n) * odds), abs=EXACT), j
        prev = Fraction(int(y.sum()), n)
        assert row.treat_all == pytest.approx(float(prev - (1 - prev) * odds), abs=EXACT), j


# ----------------------------------------------------------------------------------------- temperature


@pytest.mark.parametrize(("sharpness", "seed"), [(2.0, 0), (0.6, 1), (1.4, 2)])
def test_temperature_equals_inverse_slope_of_no_intercept_logistic_glm(sharpness, seed):
    """``sigmoid(logit(p) / T)`` is the no-intercept logistic GLM on logit(p): T = 1 / slope."""
    rng = np.random.default_rng(seed)
    true = rng.uniform(0.02, 0.6, 1500)
    y = (rng.random(1500) < true).astype(int)
    p = 1.0 / (1.0 + np.exp(-sharpness * np.log(true / (1 - true))))  # over- (>1) or under-confident (<1)
    lp = np.log(p / (1 - p))
    glm = sm.GLM(y, lp[:, None], family=sm.families.Binomial()).fit(tol=1e-13)
    (b,) = glm.params
    temp = fit_recalibration(y, p, "temperature")
    assert temp.params["temperature"] == pytest.approx(1.0 / b, rel=1e-7)
    np.testing.assert_allclose(temp.transform(p), glm.fittedvalues, rtol=0, atol=1e-8)


# ----------------------------------------------------------------------------------------- calibration


def _calibration_data(n=1200, seed=0):
    rng = np.random.default_rng(seed)
    p = np.round(rng.uniform(0.01, 0.8, n), 2)  # whole percent: ties, some exactly at bin edges
    y = (rng.random(n) < np.clip(1.2 * p, 0, 1)).astype(int)  # risks too low
    return y, p


def test_spiegelhalter_z_and_p_by_hand():
    for seed in range(3):
        y, p = _calibration_data(seed=seed)
        num = sum((yi - pi) * (1 - 2 * pi) for yi, pi in zip(y.tolist(), p.tolist()))
        var = sum((1 - 2 * pi) ** 2 * pi * (1 - pi) for pi in p.tolist())
        z = num / math.sqrt(var)
        z_r, p_r = spiegelhalter_z(y, p)
        assert z_r == pytest.approx(z, abs=1e-10)
        assert p_r == pytest.approx(_two_sided_normal_p(z), abs=EXACT)
        res = calibration(y, p)
        assert (res.spiegelhalter_z, res.spiegelhalter_p) == (z_r, p_r)
    # Observed = expected in each risk group: sum (y - p)(1 - 2p) = 0, so z = 0 and p = 1.
    assert spiegelhalter_z([1, 0, 0, 0, 1, 1, 1, 0], [0.25] * 4 + [0.75] * 4) == (0.0, 1.0)
    # One patient at 0.2 with the event: z = 0.8 * 0.6 / sqrt(0.36 * 0.16) = 2.
    assert spiegelhalter_z([1], [0.2]) == pytest.approx((2.0, _two_sided_normal_p(2.0)), abs=EXACT)


def test_calibration_intercept_slope_and_wald_intervals_match_statsmodels_glm():
    y, p = _calibration_data(seed=3)
    lp = np.log(p / (1 - p))
    ref_a = sm.GLM(y, np.ones((len(y), 1)), family=sm.families.Binomial(), offset=lp).fit(tol=1e-13)
    ref_b = sm.GLM(y, sm.add_constant(lp), family=sm.families.Binomial()).fit(tol=1e-13)
    res = calibration(y, p, n_bins=10, strategy="quantile")
    assert res.intercept.value == pytest.approx(ref_a.params[0], abs=1e-8)
    assert res.intercept.se == pytest.approx(ref_a.bse[0], abs=1e-8)
    assert res.intercept.ci == pytest.approx(tuple(ref_a.conf_int()[0]), abs=1e-8)
    assert res.slope.value == pytest.approx(ref_b.params[1], abs=1e-8)
    assert res.slope.se == pytest.approx(ref_b.bse[1], abs=1e-8)
    assert res.slope.ci == pytest.approx(tuple(ref_b.conf_int()[1]), abs=1e-8)
    ref_90 = ref_b.conf_int(alpha=0.1)[1]
    res_90 = calibration(y, p, confidence=0.9)
    assert res_90.slope.ci == pytest.approx(tuple(ref_90), abs=1e-8)
    # Brier against scikit-learn, scaled Brier from its definition.
    assert res.brier == pytest.approx(brier_score_loss(y, p), abs=EXACT) == brier_score(y, p)
    prev = y.mean()
    assert res.scaled_brier == pytest.approx(1 - brier_score_loss(y, p) / (prev * (1 - prev)), abs=EXACT)
    platt = fit_recalibration(y, p, "platt")
    assert (platt.params["a"], platt.params["b"]) == pytest.approx(tuple(ref_b.params), abs=1e-8)


def _quantile_bins_by_hand(p, n_bins):
    """Bin of each risk from the definition: edges are the i / n_bins quantiles (linear
    interpolation between order statistics, virtual index (n - 1) i / n_bins), equal edges merge,
    bin k is [edge k, edge k+1) -- a risk tied with an inner edge belongs to the bin above -- and
    the last bin is closed."""
    x = sorted(p)
    n = len(x)
    edges = []
    for i in range(n_bins + 1):
        h = Fraction((n - 1) * i, n_bins)
        j = math.floor(h)
        frac = h - j
        edges.append(x[j] if frac == 0 else x[j] + float(frac) * (x[j + 1] - x[j]))
    edges = sorted(set(edges))
    if len(edges) == 1:
        edges = edges * 2
    inner = edges[1:-1]
    return edges, [sum(v >= e for e in inner) for v in p]


def _uniform_bins_by_hand(k_percent, n_bins):
    """Bin of each risk k / 100 among [i / n_bins, (i + 1) / n_bins) (last closed), in integers."""
    return [min(int(k) * n_bins // 100, n_bins - 1) for k in k_percent]


def _table_by_hand(y, p, bins):
    rows = []
    for b in sorted(set(bins)):
        members = [i for i, bi in enumerate(bins) if bi == b]
        nb = len(members)
        events = sum(int(y[i]) for i in members)
        rows.append((b, nb, events, sum(p[i] for i in members) / nb, events / nb))
    ece = sum(nb * abs(obs - mean_p) for _, nb, _, mean_p, obs in rows) / len(y)
    return rows, ece


def _n11_edge_at_half():
    # 11 risks, 10 bins: the 60% quantile is the order statistic 0.5 itself (virtual index 6);
    # from np.linspace's probability 0.6000000000000001 it came out as 0.5000000000000001.
    p = np.array([0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.9, 0.92, 0.95, 0.97])
    return np.array([0, 0, 1, 0, 0, 1, 1, 1, 0, 1, 1]), p


@pytest.mark.parametrize("case", ["ties", "heavy_ties", "n11_edge_at_half", "continuous"])
@pytest.mark.parametrize("n_bins", [4, 10])
def test_ece_and_reliability_table_quantile_bins_by_hand(case, n_bins):
    if case == "n11_edge_at_half":
        y, p = _n11_edge_at_half()
    elif case == "continuous":
        rng = np.random.default_rng(5)
        p = rng.uniform(0.01, 0.9, 500)
        y = (rng.random(500) < p).astype(int)
    else:
        rng = np.random.default_rng(6)
        # heavy ties: only a dozen distinct risks, so several quantiles coincide and bins merge.
        k = rng.binomial(20, 0.3, 400) * 3 if case == "heavy_ties" else rng.integers(1, 90, 401)
        p = k / 100.0
        y = (rng.random(len(p)) < p).astype(int)
    edges, bins = _quantile_bins_by_hand(p.tolist(), n_bins)
    rows, ece = _table_by_hand(y, p.tolist(), bins)
    np.testing.assert_array_equal(risk_bin_edges(p, n_bins, "quantile"), edges)
    t = reliability_table(y, p, n_bins=n_bins, strategy="quantile")
    assert t["n"].tolist() == [r[1] for r in rows]
    assert t["n_events"].tolist() == [r[2] for r in rows]
    np.testing.assert_allclose(t["mean_predicted"], [r[3] for r in rows], rtol=0, atol=EXACT)
    np.testing.assert_allclose(t["observed_rate"], [r[4] for r in rows], rtol=0, atol=EXACT)
    assert t["bin_low"].tolist() == [edges[r[0]] for r in rows]
    assert expected_calibration_error(y, p, n_bins=n_bins, strategy="quantile") == pytest.approx(ece, abs=EXACT)
    res = calibration(y, p, n_bins=n_bins, strategy="quantile")
    assert res.ece == pytest.approx(ece, abs=EXACT)
    # Per-bin Wilson intervals against statsmodels.
    for row in t.itertuples():
        lo, hi = proportion_confint(row.n_events, row.n, alpha=0.05, method="wilson")
        assert (row.ci_low, row.ci_high) == pytest.approx((lo, hi), abs=EXACT)
    if case == "heavy_ties" and n_bins == 10:
        assert len(t) < n_bins  # tied quantiles did merge


@pytest.mark.parametrize("n_bins", [5, 10, 20])
def test_ece_uniform_bins_by_hand_with_risks_on_the_edges(n_bins):
    rng = np.random.default_rng(n_bins)
    k = rng.integers(0, 101, 600)  # 0%, 1%, ..., 100%: every edge i / n_bins is hit
    p = k / 100.0
    y = (rng.random(600) < p).astype(int)
    bins = _uniform_bins_by_hand(k, n_bins)
    rows, ece = _table_by_hand(y, p.tolist(), bins)
    t = reliability_table(y, p, n_bins=n_bins, strategy="uniform")
    assert t["n"].tolist() == [r[1] for r in rows]
    assert t["n_events"].tolist() == [r[2] for r in rows]
    np.testing.assert_allclose(t["bin_low"], [r[0] / n_bins for r in rows], rtol=0, atol=0)
    assert expected_calibration_error(y, p, n_bins=n_bins, strategy="uniform") == pytest.approx(ece, abs=EXACT)
    assert calibration(y, p, n_bins=n_bins).ece == pytest.approx(ece, abs=EXACT)


# ----------------------------------------------------------------------------------------- bootstrap


def test_stratified_bootstrap_indices_are_the_documented_rng_draws():
    y, _ = _scores(n=157, seed=1)
    rows_pos, rows_neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    rng = np.random.default_rng(11)
    draw_pos = rng.integers(0, len(rows_pos), size=(40, len(rows_pos)))
    draw_neg = rng.integers(0, len(rows_neg), size=(40, len(rows_neg)))
    idx = stratified_bootstrap_indices(y, n_boot=40, seed=11)
    np.testing.assert_array_equal(idx, np.hstack([rows_pos[draw_pos], rows_neg[draw_neg]]))
    # A Generator as seed is used as is.
    np.testing.assert_array_equal(stratified_bootstrap_indices(y, 40, np.random.default_rng(11)), idx)


def test_stratified_bootstrap_indices_distribution():
    rng = np.random.default_rng(3)
    y = np.r_[np.ones(8, int), np.zeros(92, int)]
    rng.shuffle(y)
    n_boot = 4000
    idx = stratified_bootstrap_indices(y, n_boot=n_boot, seed=5)
    n_pos = 8
    assert idx.shape == (n_boot, 100) and idx.dtype.kind == "i"
    assert (y[idx[:, :n_pos]] == 1).all() and (y[idx[:, n_pos:]] == 0).all()  # stratified: fixed counts
    np.testing.assert_array_equal(idx, stratified_bootstrap_indices(y, n_boot=n_boot, seed=5))
    assert not np.array_equal(idx, stratified_bootstrap_indices(y, n_boot=n_boot, seed=6))
    # Multiplicity of a patient in one resample ~ Binomial(n_class, 1 / n_class): mean 1 for every
    # patient, variance 1 - 1 / n_class (7/8 for positives, 91/92 for negatives).
    counts = np.stack([np.bincount(r, minlength=100) for r in idx])  # [B, n]
    mean = counts.mean(axis=0)
    var = counts.var(axis=0, ddof=1)
    sd_of_mean = math.sqrt(1.0 / n_boot)
    assert np.abs(mean - 1).max() < 5 * sd_of_mean
    is_pos = y == 1
    assert var[is_pos].mean() == pytest.approx(7 / 8, abs=0.03)
    assert var[~is_pos].mean() == pytest.approx(91 / 92, abs=0.01)
    # Draws within a class are uniform: chi-square test over the 92 negatives.
    observed = counts[:, ~is_pos].sum(axis=0)
    stat = ((observed - observed.mean()) ** 2 / observed.mean()).sum()
    assert chi2.sf(stat, df=91) > 1e-4
    with pytest.raises(ValueError, match="both classes"):
        stratified_bootstrap_indices(np.zeros(5), 10)


def _percentile(values, confidence):
    alpha = 1.0 - confidence
    return tuple(np.quantile(values, [alpha / 2, 1 - alpha / 2]))


@pytest.mark.parametrize(("confidence", "seed"), [(0.95, 0), (0.8, 7)])
def test_auroc_and_auprc_bootstrap_ci_are_quantiles_of_sklearn_on_the_resamples(confidence, seed):
    y, p = _scores(n=260, seed=seed + 2)
    n_boot = 250
    idx = stratified_bootstrap_indices(y, n_boot=n_boot, seed=seed)
    aucs = np.array([roc_auc_score(y[r], p[r]) for r in idx])
    aps = np.array([average_precision_score(y[r], p[r]) for r in idx])
    np.testing.assert_allclose(bootstrap_aurocs(y, p, n_boot=n_boot, seed=seed), aucs, rtol=0, atol=EXACT)
    est = roc_auc(y, p, n_boot=n_boot, seed=seed, confidence=confidence)
    assert est.value == pytest.approx(roc_auc_score(y, p), abs=EXACT)
    assert est.ci == pytest.approx(_percentile(aucs, confidence), abs=EXACT)
    assert est.se == pytest.approx(aucs.std(ddof=1), abs=EXACT)
    ap = average_precision(y, p, n_boot=n_boot, seed=seed, confidence=confidence)
    assert ap.value == pytest.approx(average_precision_score(y, p), abs=EXACT)
    assert ap.ci == pytest.approx(_percentile(aps, confidence), abs=EXACT)
    assert ap.se == pytest.approx(aps.std(ddof=1), abs=EXACT)


def test_bootstrap_ci_with_several_memory_blocks(monkeypatch):
    """Resamples drawn in several blocks (large data) are still exactly ``stratified_bootstrap_indices``."""
    monkeypatch.setattr(discrimination, "_MAX_BLOCK_ELEMENTS", 1000)  # 1000 // 200 = 5 resamples a block
    y, p = _scores(n=200, seed=4)
    _, p2 = _scores(n=200, decimals=1, seed=4)
    idx = stratified_bootstrap_indices(y, n_boot=23, seed=2)
    aucs = np.array([roc_auc_score(y[r], p[r]) for r in idx])
    est = roc_auc(y, p, n_boot=23, seed=2)
    assert est.ci == pytest.approx(_percentile(aucs, 0.95), abs=EXACT)
    aps = np.array([average_precision_score(y[r], p[r]) for r in idx])
    ap = average_precision(y, p, n_boot=23, seed=2)
    assert ap.ci == pytest.approx(_percentile(aps, 0.95), abs=EXACT)
    diffs = aucs - np.array([roc_auc_score(y[r], p2[r]) for r in idx])
    cmp = paired_bootstrap_test(y, p, p2, n_boot=23, seed=2)
    assert cmp.ci == pytest.approx(_percentile(diffs, 0.95), abs=EXACT)


@pytest.mark.parametrize(("metric", "score"), [("auroc", roc_auc_score), ("auprc", average_precision_score)])
def test_paired_bootstrap_ci_z_and_p_from_sklearn_on_the_resamples(metric, score):
    y, p1 = _scores(n=240, seed=9)
    rng = np.random.default_rng(1)
    p2 = np.round(p1 + rng.normal(scale=0.15, size=len(p1)), 2)  # a noisier model, ties kept
    n_boot = 250
    idx = stratified_bootstrap_indices(y, n_boot=n_boot, seed=4)
    diffs = np.array([score(y[r], p1[r]) - score(y[r], p2[r]) for r in idx])
    cmp = paired_bootstrap_test(y, p1, p2, metric=metric, n_boot=n_boot, seed=4, confidence=0.9)
    v1, v2 = score(y, p1), score(y, p2)
    assert (cmp.value1, cmp.value2) == pytest.approx((v1, v2), abs=EXACT)
    assert cmp.value == pytest.approx(v1 - v2, abs=EXACT)
    assert cmp.ci == pytest.approx(_percentile(diffs, 0.9), abs=EXACT)
    z = (v1 - v2) / diffs.std(ddof=1)
    assert cmp.z == pytest.approx(z, abs=1e-9)
    assert cmp.p_value == pytest.approx(_two_sided_normal_p(z), abs=1e-10)


# ----------------------------------------------------------------------------------------- thresholds


def _labels_from_counts(tp, fp, n_pos, n_neg):
    y_true = np.r_[np.ones(n_pos, int), np.zeros(n_neg, int)]
    y_pred = np.r_[np.arange(n_pos) < tp, np.arange(n_neg) < fp].astype(int)
    return y_true, y_pred


@pytest.mark.parametrize("threshold", [0.0, 0.1, 0.25, 0.31, 0.5, 1.01])
@pytest.mark.parametrize("confidence", [0.95, 0.9])
def test_threshold_metrics_wilson_vs_statsmodels_and_f1_bootstrap_vs_sklearn(threshold, confidence):
    y, p = _scores(n=180, seed=3)
    n_boot = 300
    tm = threshold_metrics(y, p, threshold, confidence=confidence, n_boot=n_boot, seed=8)
    pred = (p >= threshold).astype(int)  # the definition, ties (p == threshold) positive
    tp, fp = int(np.sum(pred & y)), int(np.sum(pred & (1 - y)))
    fn, tn = int(y.sum()) - tp, int((1 - y).sum()) - fp
    assert (tm.tp, tm.fp, tm.tn, tm.fn) == (tp, fp, tn, fn)
    for est, k, n in [(tm.sensitivity, tp, tp + fn), (tm.specificity, tn, tn + fp),
                      (tm.ppv, tp, tp + fp), (tm.npv, tn, tn + fn)]:
        if n == 0:
            assert math.isnan(est.value) and est.ci is None
            continue
        lo, hi = proportion_confint(k, n, alpha=1 - confidence, method="wilson")
        assert est.value == k / n
        assert est.ci == pytest.approx((lo, hi), abs=EXACT)
    assert tm.f1.value == pytest.approx(f1_score(y, pred, zero_division=0.0), abs=EXACT)
    # F1 interval: TP ~ Bin(n_pos, sens), FP ~ Bin(n_neg, 1 - spec) with the documented draws.
    n_pos, n_neg = int(y.sum()), len(y) - int(y.sum())
    rng = np.random.default_rng(8)
    tp_b = rng.binomial(n_pos, tp / n_pos, size=n_boot)
    fp_b = rng.binomial(n_neg, fp / n_neg, size=n_boot)
    pairs, inverse = np.unique(np.c_[tp_b, fp_b], axis=0, return_inverse=True)  # sklearn once per distinct draw
    f1_pairs = np.array([f1_score(*_labels_from_counts(a, b, n_pos, n_neg), zero_division=0.0) for a, b in pairs])
    f1_b = f1_pairs[inverse.ravel()]
    assert tm.f1.ci == pytest.approx(_percentile(f1_b, confidence), abs=EXACT)


def test_wilson_interval_vs_statsmodels_grid():
    n = np.array([1, 2, 5, 17, 100, 1000])
    for confidence in (0.8, 0.95, 0.99):
        for nn in n:
            k = np.arange(nn + 1) if nn <= 100 else np.array([0, 1, 7, 500, 999, 1000])
            lo, hi = wilson_interval(k, nn, confidence)
            ref_lo, ref_hi = proportion_confint(k, nn, alpha=1 - confidence, method="wilson")
            np.testing.assert_allclose(lo, ref_lo, rtol=0, atol=EXACT)
            np.testing.assert_allclose(hi, ref_hi, rtol=0, atol=EXACT)


def test_threshold_choices_and_roc_points_match_sklearn_roc_curve():
    for seed in range(3):
        y, p = _scores(n=300, seed=seed + 20)
        fpr, tpr, thr = roc_curve(y, p, drop_intermediate=False)  # thr decreasing, +inf first
        fr, tr, th = roc_curve_points(y, p)
        np.testing.assert_allclose(fr, fpr, rtol=0, atol=EXACT)
        np.testing.assert_allclose(tr, tpr, rtol=0, atol=EXACT)
        np.testing.assert_array_equal(th, thr)
        j = tpr - fpr
        assert youden_threshold(y, p) == thr[np.flatnonzero(j == j.max())[0]]  # ties: highest threshold
        for target in (0.5, 0.8, 0.95, 1.0):
            assert threshold_at_sensitivity(y, p, target) == thr[np.flatnonzero(tpr >= target)[0]]
        for target in (0.5, 0.9, 0.99):
            assert threshold_at_specificity(y, p, target) == thr[np.flatnonzero(1 - fpr >= target)[-1]]


# ----------------------------------------------------------------------------------------- risk groups


def test_incidence_threshold_and_risk_groups_by_definition():
    rng = np.random.default_rng(0)
    p = np.round(rng.uniform(0, 1, 37), 2)
    x = np.sort(p)
    for prev in (0.1, 0.2, 0.35):
        h = (len(x) - 1) * (1 - prev)
        j = math.floor(h)
        t = x[j] + (h - j) * (x[j + 1] - x[j])  # linear interpolation between order statistics
        assert incidence_threshold(p, prev) == pytest.approx(t, abs=EXACT)
    groups = assign_risk_groups(p, [0.3, 0.6])
    expected = ["high" if v >= 0.6 else "intermediate" if v >= 0.3 else "low" for v in p]
    assert groups.tolist() == expected
    assert assign_risk_groups([0.2, 0.5, 0.7], 0.5).tolist() == ["low", "high", "high"]


def _km_by_hand(t, e, confidence):
    """Product-limit incidence 1 - S at every distinct time (and 0), with the exponential
    Greenwood (log(-log S)) band: S^exp(+-z sqrt(sum d / (n (n - d))) / |log S|)."""
    z = float(np.sqrt(chi2.ppf(confidence, 1)))
    times = np.unique(np.r_[0.0, t])
    s, greenwood, out = 1.0, 0.0, []
    for u in times:
        n_risk = int(np.sum(t >= u))
        d = int(np.sum((t == u) & (e == 1)))
        if d:
            s *= 1 - d / n_risk
            greenwood += d / (n_risk * (n_risk - d))
        if 0 < s < 1:
            se = math.sqrt(greenwood) / abs(math.log(s))
            s_lo, s_hi = s ** math.exp(z * se), s ** math.exp(-z * se)
        else:
            s_lo = s_hi = s
        out.append((u, 1 - s, 1 - s_hi, 1 - s_lo))
    return np.array(out)


def _logrank_by_hand(t, e, g):
    """k-group log-rank chi-square: U = O - E, V the hypergeometric covariance, over k - 1 groups."""
    labels = sorted(set(g))
    k = len(labels)
    u, v = np.zeros(k), np.zeros((k, k))
    for s in np.unique(t[e == 1]):
        at_risk = np.array([np.sum((t >= s) & (g == lab)) for lab in labels], float)
        deaths = np.array([np.sum((t == s) & (e == 1) & (g == lab)) for lab in labels], float)
        n, d = at_risk.sum(), deaths.sum()
        u += deaths - d * at_risk / n
        if n > 1:
            frac = at_risk / n
            v += d * (n - d) / (n - 1) * (np.diag(frac) - np.outer(frac, frac))
    stat = float(u[:-1] @ np.linalg.solve(v[:-1, :-1], u[:-1]))
    return chi2.sf(stat, k - 1)


@pytest.mark.parametrize("confidence", [0.95, 0.9])
def test_cumulative_incidence_bands_and_logrank_by_hand(confidence):
    from scipy.stats import CensoredData, logrank

    rng = np.random.default_rng(4)
    n = 240
    risk = rng.uniform(0.05, 0.6, n)
    t_event = np.round(rng.exponential(20.0 / risk), 0)  # whole days: tied event times
    t_cens = np.round(rng.uniform(5, 90, n), 0)
    t = np.minimum(t_event, t_cens)
    e = (t_event <= t_cens).astype(int)
    g = assign_risk_groups(risk, [0.2, 0.4])
    res = cumulative_incidence_by_group(t, e, g, confidence=confidence)
    assert res.groups == ["low", "intermediate", "high"]
    for lab in res.groups:
        m = g == lab
        ref = _km_by_hand(t[m], e[m], confidence)
        c = res.curves[lab]
        np.testing.assert_array_equal(c["time_days"], ref[:, 0])
        np.testing.assert_allclose(c["incidence"], ref[:, 1], rtol=0, atol=EXACT)
        np.testing.assert_allclose(c["ci_low"], ref[:, 2], rtol=0, atol=1e-10)
        np.testing.assert_allclose(c["ci_high"], ref[:, 3], rtol=0, atol=1e-10)
    assert res.logrank_p == pytest.approx(_logrank_by_hand(t, e, g), rel=1e-9)
    at = res.at_risk([0, 10, 30])
    for lab in res.groups:
        assert at.loc[lab].tolist() == [int(np.sum(t[g == lab] >= s)) for s in (0, 10, 30)]
    # Two groups: scipy's log-rank test.
    g2 = assign_risk_groups(risk, 0.3)
    two = cumulative_incidence_by_group(t, e, g2, confidence=confidence)

    def data(m):
        return CensoredData(uncensored=t[m & (e == 1)], right=t[m & (e == 0)])

    ref = logrank(data(g2 == "low"), data(g2 == "high"))
    assert two.logrank_p == pytest.approx(ref.pvalue, rel=1e-9)
    assert two.logrank_p == pytest.approx(_logrank_by_hand(t, e, g2), rel=1e-9)

