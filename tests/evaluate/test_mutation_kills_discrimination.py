"""Tests written for mutants of riskfm/evaluate/discrimination.py that survived mutmut (docs/testing.md).

AUROCs and average precisions are compared with scikit-learn on the same resamples
(``stratified_bootstrap_indices``), DeLong variances with the O(n_pos * n_neg) definition.
"""

import math
import os
import re
import warnings

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import average_precision_score, roc_auc_score

from riskfm.evaluate.discrimination import (
    PairedComparison,
    _placements,
    average_precision,
    bootstrap_aurocs,
    delong_covariance,
    delong_test,
    delong_variance,
    paired_bootstrap_test,
    roc_auc,
    stratified_bootstrap_indices,
)

Z95 = norm.ppf(0.975)


def full(text: str) -> str:
    return "^" + re.escape(text) + "$"


def _data(n=60, seed=0):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.4).astype(int)
    y[:2], y[2:4] = 1, 0
    p = np.round(1 / (1 + np.exp(-(rng.normal(size=n) + 1.2 * y))), 1)  # ties
    p2 = np.round(np.clip(p + rng.normal(0, 0.2, n), 0, 1), 1)
    return y, p, p2


def _kernel(y, p):
    """psi[i, j] = 1 if positive i outranks negative j, 1/2 on a tie, else 0 (DeLong 1988)."""
    y = np.asarray(y).astype(bool)
    pos, neg = p[y], p[~y]
    return (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])


def _delong_diff_by_hand(y, p1, p2):
    """Difference of two AUROCs and its DeLong variance from the kernel matrices."""
    k1, k2 = _kernel(y, p1), _kernel(y, p2)
    v10 = np.vstack([k1.mean(axis=1), k2.mean(axis=1)])
    v01 = np.vstack([k1.mean(axis=0), k2.mean(axis=0)])
    cov = np.cov(v10, ddof=1) / v10.shape[1] + np.cov(v01, ddof=1) / v01.shape[1]
    return k1.mean() - k2.mean(), cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]


# ----------------------------------------------------------------------------------------- defaults


def test_bootstrap_defaults_are_500_resamples_with_seed_0():
    y, p, p2 = _data()
    np.testing.assert_array_equal(bootstrap_aurocs(y, p), bootstrap_aurocs(y, p, n_boot=500, seed=0))
    assert bootstrap_aurocs(y, p).shape == (500,)
    idx = stratified_bootstrap_indices(y)
    np.testing.assert_array_equal(idx, stratified_bootstrap_indices(y, n_boot=500, seed=0))
    assert idx.shape == (500, len(y))
    ap = average_precision(y, p)
    assert ap.ci == average_precision(y, p, n_boot=500, seed=0).ci
    assert ap.method == "stratified bootstrap (500 resamples)"
    pc = paired_bootstrap_test(y, p, p2)
    ref = paired_bootstrap_test(y, p, p2, n_boot=500, seed=0)
    assert (pc.ci, pc.z, pc.n_boot) == (ref.ci, ref.z, 500)


def test_stratified_bootstrap_with_a_single_negative_and_without_a_class():
    y = np.array([1, 0, 1, 1])
    idx = stratified_bootstrap_indices(y, n_boot=4, seed=3)
    assert idx.shape == (4, 4)
    assert np.all(idx[:, 3] == 1)  # the one negative is drawn every time
    assert np.all(y[idx[:, :3]] == 1)
    with pytest.raises(ValueError, match=full("the stratified bootstrap needs both classes; got 0 positives "
                                              "and 2 negatives")):
        stratified_bootstrap_indices([0, 0])


# ----------------------------------------------------------------------------------------- PairedComparison


def test_paired_comparison_spells_its_interval_as_floats_or_none():
    pc = PairedComparison(0.1, (np.float32(0.05), np.float64(0.2)), "DeLong", 10, "auroc", 0.8, 0.7, 1.0, 0.3, 4)
    assert pc.ci == (pytest.approx(0.05), 0.2) and all(type(b) is float for b in pc.ci)
    assert PairedComparison(0.1, (0.0, math.nan), "DeLong", 10, "auroc", 0.8, 0.7, 1.0, 0.3, 4).ci is None
    assert PairedComparison(0.1, None, "DeLong", 10, "auroc", 0.8, 0.7, 1.0, 0.3, 4).ci is None


def test_paired_comparison_missing_keeps_every_field():
    pc = PairedComparison.missing("auprc", "3 events < 10", "paired stratified bootstrap (7 resamples)", 25, 3,
                                  0.9, 7)
    assert (pc.metric, pc.not_estimable, pc.method, pc.n, pc.n_pos, pc.confidence, pc.n_boot, pc.ci) == (
        "auprc", "3 events < 10", "paired stratified bootstrap (7 resamples)", 25, 3, 0.9, 7, None)
    for v in (pc.value, pc.value1, pc.value2, pc.z, pc.p_value):
        assert isinstance(v, float) and math.isnan(v)
    assert PairedComparison.missing("auroc", "r", "DeLong", 5, 1, 0.95).n_boot is None


# ----------------------------------------------------------------------------------------- DeLong


def test_placements_are_the_kernel_means():
    y, p, _ = _data(n=40, seed=2)
    v10, v01 = _placements(p[y == 1], p[y == 0])
    k = _kernel(y, p)
    np.testing.assert_allclose(v10, k.mean(axis=1), rtol=0, atol=1e-12)  # share of negatives each positive beats
    np.testing.assert_allclose(v01, k.mean(axis=0), rtol=0, atol=1e-12)  # share of positives beating each negative


def test_delong_covariance_errors_whole_and_the_two_per_class_floor():
    y = [0, 0, 1, 1, 0, 1]
    p = np.array([0.1, 0.2, 0.8, 0.7, 0.3, 0.9])
    with pytest.raises(ValueError, match=full("scores must have shape [n] or [k, n], got (2, 2, 6)")):
        delong_covariance(y, np.zeros((2, 2, 6)))
    with pytest.raises(ValueError, match=full("scores[1] must be finite; 1 of 6 values are NaN or infinite "
                                              "(first at index 1)")):
        delong_covariance(y, np.vstack([p, [0.1, np.nan, 0.3, 0.4, 0.5, 0.6]]))
    for labels, counts in (([0, 1, 1, 1, 1, 1], "5 and 1"), ([0, 0, 0, 0, 0, 1], "1 and 5")):
        with pytest.raises(ValueError, match=full("DeLong variance needs at least 2 positives and 2 negatives; "
                                                  f"got {counts}")):
            delong_covariance(labels, p)
    # exactly 2 and 2 is enough
    y4, p4 = np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])
    auc, var = delong_variance(y4, p4)
    k = _kernel(y4, p4)
    assert auc == pytest.approx(0.75) and var == pytest.approx(
        k.mean(axis=1).var(ddof=1) / 2 + k.mean(axis=0).var(ddof=1) / 2, abs=1e-15)


def test_delong_test_input_errors_name_p1_and_p2():
    y = [0, 0, 1, 1, 0, 1]
    p = np.array([0.1, 0.2, 0.8, 0.7, 0.3, 0.9])
    bad = [0.1, np.nan, 0.3, 0.4, 0.5, 0.6]
    with pytest.raises(ValueError, match=full("p1 and p2 must be 1-D of the same length, got shapes (6, 1) and (6,)")):
        delong_test(y, p[:, None], p)
    for test in (delong_test, paired_bootstrap_test):
        with pytest.raises(ValueError, match=full("p1 must be finite; 1 of 6 values are NaN or infinite "
                                                  "(first at index 1)")):
            test(y, bad, p)
        with pytest.raises(ValueError, match=full("p2 must be finite; 1 of 6 values are NaN or infinite "
                                                  "(first at index 1)")):
            test(y, p, bad)


def _small_sample(n_pos=5, n_neg=12, seed=4):
    rng = np.random.default_rng(seed)
    y = np.r_[np.ones(n_pos, int), np.zeros(n_neg, int)]
    return y, rng.random(len(y)) + 0.3 * y, rng.random(len(y))


@pytest.mark.parametrize("test", ["delong", "bootstrap"])
def test_small_sample_rule_with_one_floor_given_the_other_10(test):
    y, p1, p2 = _small_sample()  # 5 events, 12 non-events
    run = (lambda **kw: delong_test(y, p1, p2, confidence=0.9, **kw)) if test == "delong" else (
        lambda **kw: paired_bootstrap_test(y, p1, p2, "auprc", n_boot=30, seed=1, confidence=0.9, **kw))
    method = "DeLong" if test == "delong" else "paired stratified bootstrap (30 resamples)"
    # only min_events given: non-events need 10 (12 pass), events 3 (5 pass) -> computed
    assert run(min_events=3).not_estimable is None
    assert math.isfinite(run(min_events=3).value)
    # only min_nonevents given: events need the default 10
    res = run(min_nonevents=3)
    assert res.not_estimable == "5 events < 10"
    assert (res.metric, res.method, res.n, res.n_pos, res.confidence) == (
        "auroc" if test == "delong" else "auprc", method, 17, 5, 0.9)
    assert res.n_boot == (None if test == "delong" else 30) and res.ci is None and math.isnan(res.value)
    # only min_events given and too high for 5 events
    assert run(min_events=6).not_estimable == "5 events < 6"
    # both given: each honoured
    assert run(min_events=5, min_nonevents=12).not_estimable is None
    assert run(min_events=5, min_nonevents=13).not_estimable == "12 non-events < 13"
    assert run(min_events=6, min_nonevents=12).not_estimable == "5 events < 6"
    # neither given: no rule
    assert run().not_estimable is None


@pytest.mark.parametrize(("p1", "p2", "clipped"), [
    ([3.0, 2.0, 0.0, 5.0, 4.0, 1.0], [5.0, 4.0, 2.0, 1.0, 3.0, 0.0], "high"),
    ([5.0, 4.0, 3.0, 0.0, 1.0, 2.0], [2.0, 1.0, 3.0, 5.0, 0.0, 4.0], "low"),
])
def test_delong_difference_interval_against_the_definition_clipped_to_plus_minus_one(p1, p2, clipped):
    y = np.array([0, 0, 0, 1, 1, 1])
    p1, p2 = np.array(p1), np.array(p2)
    diff, var = _delong_diff_by_hand(y, p1, p2)
    se = math.sqrt(var)
    res = delong_test(y, p1, p2)
    assert res.value == pytest.approx(diff, abs=1e-12)
    assert res.z == pytest.approx(diff / se, rel=1e-10)
    assert res.p_value == pytest.approx(2 * norm.sf(abs(diff / se)), rel=1e-10)
    low, high = diff - Z95 * se, diff + Z95 * se
    assert (high > 1) if clipped == "high" else (low < -1)  # the example needs the clip
    assert res.ci == pytest.approx((max(-1.0, low), min(1.0, high)), abs=1e-12)
    assert (res.metric, res.n, res.n_pos, res.n_boot, res.confidence, res.method) == (
        "auroc", 6, 3, None, 0.95, "DeLong")
    at90 = delong_test(y, p1, p2, confidence=0.9)
    z90 = norm.ppf(0.95)
    assert at90.confidence == 0.9
    assert at90.ci == pytest.approx((max(-1.0, diff - z90 * se), min(1.0, diff + z90 * se)), abs=1e-12)


@pytest.mark.parametrize("test", ["delong", "bootstrap"])
def test_zero_variance_with_different_aurocs_is_an_infinite_z(test):
    # model 1 separates the classes perfectly, model 2 ranks them exactly backwards: AUROCs 1 and 0,
    # and neither the DeLong variance nor any resample varies.
    y = np.array([0, 0, 1, 1, 0, 1, 0])
    p = np.array([0.1, 0.2, 0.8, 0.7, 0.3, 0.9, 0.4])
    run = (lambda a, b: delong_test(y, a, b)) if test == "delong" else (
        lambda a, b: paired_bootstrap_test(y, a, b, n_boot=20))
    better, worse = run(p, -p), run(-p, p)
    assert (better.value, better.value1, better.value2) == (1.0, 1.0, 0.0)
    assert better.z == math.inf and better.p_value == 0.0 and better.ci == (1.0, 1.0)
    assert worse.value == -1.0 and worse.z == -math.inf and worse.p_value == 0.0 and worse.ci == (-1.0, -1.0)
    same = run(p, 2 * p)
    assert same.value == 0.0 and same.z == 0.0 and same.p_value == 1.0


# ----------------------------------------------------------------------------------------- paired bootstrap


def test_paired_bootstrap_errors_whole_and_two_resamples_are_enough():
    y, p, p2 = _data()
    with pytest.raises(ValueError, match=full("metric must be one of ('auroc', 'auprc'), got 'auc'")):
        paired_bootstrap_test(y, p, p2, metric="auc")
    with pytest.raises(ValueError, match=full("n_boot must be an integer >= 2, got 1")):
        paired_bootstrap_test(y, p, p2, n_boot=1)
    res = paired_bootstrap_test(y, p, p2, metric="auprc", n_boot=2, seed=5, confidence=0.8)
    idx = stratified_bootstrap_indices(y, n_boot=2, seed=5)
    d = [average_precision_score(y[r], p[r]) - average_precision_score(y[r], p2[r]) for r in idx]
    assert res.ci == pytest.approx(tuple(np.quantile(d, [0.1, 0.9])), abs=1e-12)
    assert res.z == pytest.approx(res.value / np.std(d, ddof=1), rel=1e-10)
    assert (res.n, res.metric, res.n_pos, res.n_boot, res.confidence, res.method) == (
        len(y), "auprc", int(y.sum()), 2, 0.8, "paired stratified bootstrap (2 resamples)")


# ----------------------------------------------------------------------------------------- AUPRC


def test_average_precision_errors_and_fields():
    y, p, _ = _data()
    with pytest.raises(ValueError, match=full("average_precision: ci must be 'bootstrap' or None, got 'delong'")):
        average_precision(y, p, ci="delong")
    plain = average_precision(y, p, ci=None, confidence=0.9)
    assert plain.value == pytest.approx(average_precision_score(y, p), abs=1e-12)
    assert (plain.ci, plain.method, plain.n, plain.n_pos, plain.confidence, plain.se) == (
        None, "none", len(y), int(y.sum()), 0.9, None)
    boot = average_precision(y, p, n_boot=40, seed=2, confidence=0.8)
    aps = [average_precision_score(y[r], p[r]) for r in stratified_bootstrap_indices(y, n_boot=40, seed=2)]
    assert boot.ci == pytest.approx(tuple(np.quantile(aps, [0.1, 0.9])), abs=1e-12)
    assert boot.se == pytest.approx(np.std(aps, ddof=1), rel=1e-10)
    assert (boot.method, boot.n, boot.n_pos, boot.confidence) == (
        "stratified bootstrap (40 resamples)", len(y), int(y.sum()), 0.8)


@pytest.mark.parametrize("stat", ["auroc", "auprc"])
def test_standard_error_needs_two_resamples(stat):
    y, p, _ = _data()
    fn, ref = (roc_auc, roc_auc_score) if stat == "auroc" else (average_precision, average_precision_score)
    one = fn(y, p, n_boot=1, seed=3)
    assert one.se is None and one.method == "stratified bootstrap (1 resamples)"
    two = fn(y, p, n_boot=2, seed=3)
    vals = [ref(y[r], p[r]) for r in stratified_bootstrap_indices(y, n_boot=2, seed=3)]
    assert two.se == pytest.approx(np.std(vals, ddof=1), rel=1e-10)


# ----------------------------------------------------------------------------------------- roc_auc


def test_roc_auc_defaults_and_the_confidence_it_reports():
    y, p, _ = _data()
    est = roc_auc(y, p)
    ref = roc_auc(y, p, ci="bootstrap", n_boot=500, seed=0)
    assert (est.ci, est.se, est.method) == (ref.ci, ref.se, "stratified bootstrap (500 resamples)")
    assert roc_auc(y, p, ci=None, confidence=0.9).confidence == 0.9
    boot = roc_auc(y, p, n_boot=40, seed=2, confidence=0.8)
    aucs = [roc_auc_score(y[r], p[r]) for r in stratified_bootstrap_indices(y, n_boot=40, seed=2)]
    assert boot.ci == pytest.approx(tuple(np.quantile(aucs, [0.1, 0.9])), abs=1e-12)
    assert (boot.confidence, boot.n, boot.n_pos) == (0.8, len(y), int(y.sum()))


def test_delong_interval_from_two_of_each_class_and_none_below():
    # 2 positives and 2 negatives are enough for DeLong (sample variances with ddof 1)
    for y in ([0, 0, 1, 1, 0], [0, 0, 1, 1, 1]):
        y = np.array(y)
        p = np.array([0.1, 0.4, 0.35, 0.8, 0.5])
        k = _kernel(y, p)
        se = math.sqrt(k.mean(axis=1).var(ddof=1) / k.shape[0] + k.mean(axis=0).var(ddof=1) / k.shape[1])
        est = roc_auc(y, p, ci="delong", confidence=0.9)
        z = norm.ppf(0.95)
        assert est.value == pytest.approx(roc_auc_score(y, p), abs=1e-12) and est.se == pytest.approx(se, rel=1e-12)
        assert est.ci == pytest.approx((max(0.0, k.mean() - z * se), min(1.0, k.mean() + z * se)), abs=1e-12)
        assert (est.method, est.n, est.n_pos, est.confidence) == ("DeLong", 5, int(y.sum()), 0.9)
    # one negative: no interval, a warning that points at the caller, and every other field kept
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        lone = roc_auc([1, 1, 0, 1], [0.9, 0.4, 0.3, 0.2], ci="delong", confidence=0.9)
    assert [str(w.message) for w in record] == [
        "DeLong interval undefined with 3 positives and 1 negatives; CI left empty"]
    assert record[0].category is RuntimeWarning
    assert not record[0].filename.endswith(os.path.join("evaluate", "discrimination.py"))
    if "MUTANT_UNDER_TEST" not in os.environ:  # under mutmut its trampoline is one more frame
        assert record[0].filename == __file__
    assert (lone.value, lone.ci, lone.method, lone.n, lone.n_pos, lone.confidence, lone.se) == (
        pytest.approx(2 / 3), None, "DeLong", 4, 3, 0.9, None)


@pytest.mark.parametrize("sign", [1, -1])
def test_delong_interval_clipped_to_the_unit_interval(sign):
    # one swapped pair: AUROC 8/9 (or 1/9 for the reversed score), a Wald interval beyond 1 (below 0)
    y = np.array([0, 0, 0, 1, 1, 1])
    p = sign * np.array([0.1, 0.2, 0.5, 0.4, 0.8, 0.9])
    k = _kernel(y, p)
    se = math.sqrt(k.mean(axis=1).var(ddof=1) / 3 + k.mean(axis=0).var(ddof=1) / 3)
    auc = k.mean()
    assert auc == pytest.approx(8 / 9 if sign == 1 else 1 / 9)
    assert (auc + Z95 * se > 1) if sign == 1 else (auc - Z95 * se < 0)
    est = roc_auc(y, p, ci="delong")
    assert est.ci == pytest.approx((max(0.0, auc - Z95 * se), min(1.0, auc + Z95 * se)), abs=1e-12)
    assert est.ci[1 if sign == 1 else 0] == (1.0 if sign == 1 else 0.0)


def test_resamples_follow_the_documented_draws_in_blocks_of_one(monkeypatch):
    # With memory for less than two resamples per block, each resample is its own block: one
    # integers call for its positives, then one for its negatives (the documented order).
    import riskfm.evaluate.discrimination as disc

    y = np.array([1, 0, 0, 1, 0, 1, 0, 0, 1, 0])
    monkeypatch.setattr(disc, "_MAX_BLOCK_ELEMENTS", 15)  # 15 // 10 patients = 1 resample per block
    idx = stratified_bootstrap_indices(y, n_boot=4, seed=7)
    rng = np.random.default_rng(7)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    for b in range(4):
        ref = np.r_[pos[rng.integers(0, 4, size=(1, 4))[0]], neg[rng.integers(0, 6, size=(1, 6))[0]]]
        np.testing.assert_array_equal(idx[b], ref)
