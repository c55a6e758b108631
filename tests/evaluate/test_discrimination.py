"""AUROC, its bootstrap and DeLong intervals, and the DeLong test (riskfm.evaluate.discrimination)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score, roc_curve

from riskfm.evaluate import Estimate, delong_test, roc_auc
from riskfm.evaluate.discrimination import (
    _bootstrap_aurocs,
    bootstrap_aurocs,
    delong_covariance,
    delong_variance,
    roc_curve_points,
)


def _data(n: int = 400, prevalence: float = 0.25, shift: float = 0.8, decimals: int | None = 1, seed: int = 0):
    """Labels and scores; rounding the scores creates many ties."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < prevalence).astype(int)
    y[:2], y[2:4] = 1, 0  # both classes, at least 2 of each
    p = 1.0 / (1.0 + np.exp(-(rng.normal(size=n) + shift * y - 1.0)))
    return y, (np.round(p, decimals) if decimals is not None else p)


def _brute_force_delong(y: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DeLong (1988) straight from the definition: O(n_pos * n_neg) kernel matrices."""
    y = np.asarray(y).astype(bool)
    k = scores.shape[0]
    v10, v01, aucs = [], [], []
    for r in range(k):
        pos, neg = scores[r, y], scores[r, ~y]
        psi = (pos[:, None] > neg[None, :]).astype(float) + 0.5 * (pos[:, None] == neg[None, :])
        aucs.append(psi.mean())
        v10.append(psi.mean(axis=1))
        v01.append(psi.mean(axis=0))
    v10, v01, aucs = np.array(v10), np.array(v01), np.array(aucs)
    m, n = v10.shape[1], v01.shape[1]
    s10 = (v10 - aucs[:, None]) @ (v10 - aucs[:, None]).T / (m - 1)
    s01 = (v01 - aucs[:, None]) @ (v01 - aucs[:, None]).T / (n - 1)
    return aucs, s10 / m + s01 / n


# ----------------------------------------------------------------------------------------- AUROC


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("decimals", [None, 2, 1])
def test_auroc_equals_sklearn_with_ties(seed, decimals):
    y, p = _data(n=50 + 97 * seed, prevalence=0.1 + 0.12 * seed, decimals=decimals, seed=seed)
    est = roc_auc(y, p, ci=None)
    assert abs(est.value - roc_auc_score(y, p)) < 1e-12
    assert (est.n, est.n_pos, est.method) == (len(y), int(y.sum()), "none")
    assert est.ci is None


def test_auroc_accepts_bool_labels_and_logits():
    y, p = _data(decimals=None)
    logits = np.log(p / (1 - p))
    assert roc_auc(y.astype(bool), logits, ci=None).value == pytest.approx(roc_auc_score(y, p), abs=1e-12)


def test_roc_curve_points_match_sklearn_and_integrate_to_auroc():
    y, p = _data(decimals=1)
    fpr, tpr, thr = roc_curve_points(y, p)
    ref_fpr, ref_tpr, _ = roc_curve(y, p, drop_intermediate=False)
    np.testing.assert_allclose(fpr, ref_fpr)
    np.testing.assert_allclose(tpr, ref_tpr)
    assert np.trapezoid(tpr, fpr) == pytest.approx(roc_auc(y, p, ci=None).value, abs=1e-12)
    assert thr[0] == np.inf and np.all(np.diff(thr[1:]) < 0)


# ----------------------------------------------------------------------------------------- bootstrap


def test_vectorised_resample_aurocs_equal_sklearn_on_each_resample():
    y, p = _data(n=120, decimals=1, seed=3)
    pos, neg = p[y == 1], p[y == 0]
    rng = np.random.default_rng(7)
    idx_pos = rng.integers(0, len(pos), size=(25, len(pos)))
    idx_neg = rng.integers(0, len(neg), size=(25, len(neg)))
    fast = _bootstrap_aurocs(pos, neg, idx_pos, idx_neg)
    for b in range(25):
        yy = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
        pp = np.r_[pos[idx_pos[b]], neg[idx_neg[b]]]
        assert abs(fast[b] - roc_auc_score(yy, pp)) < 1e-12


def test_bootstrap_ci_contains_estimate_and_is_seeded():
    y, p = _data(n=600, decimals=2)
    a = roc_auc(y, p, ci="bootstrap", n_boot=500, seed=11)
    b = roc_auc(y, p, ci="bootstrap", n_boot=500, seed=11)
    c = roc_auc(y, p, ci="bootstrap", n_boot=500, seed=12)
    assert a.method == "stratified bootstrap (500 resamples)" and a.confidence == 0.95
    assert a.ci[0] < a.value < a.ci[1]
    assert a.ci == b.ci
    assert a.ci != c.ci
    assert a.se is not None and a.se > 0
    wide = roc_auc(y, p, ci="bootstrap", n_boot=500, seed=11, confidence=0.99)
    assert wide.ci[0] <= a.ci[0] and wide.ci[1] >= a.ci[1]


def test_bootstrap_keeps_class_counts_and_matches_naive_sklearn_loop():
    y, p = _data(n=400, prevalence=0.2, decimals=2, seed=5)
    pos_idx, neg_idx = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    rng = np.random.default_rng(2024)
    naive = []
    for _ in range(300):  # the obvious stratified bootstrap, one resample at a time
        idx = np.r_[rng.choice(pos_idx, len(pos_idx)), rng.choice(neg_idx, len(neg_idx))]
        naive.append(roc_auc_score(y[idx], p[idx]))
    naive = np.asarray(naive)
    fast = bootstrap_aurocs(y, p, n_boot=500, seed=0)
    assert fast.shape == (500,)
    est = roc_auc(y, p, ci="bootstrap", n_boot=500, seed=0)
    width_fast = est.ci[1] - est.ci[0]
    width_naive = np.quantile(naive, 0.975) - np.quantile(naive, 0.025)
    assert width_fast == pytest.approx(width_naive, rel=0.2)
    assert fast.std() == pytest.approx(naive.std(), rel=0.15)
    assert fast.mean() == pytest.approx(naive.mean(), abs=0.01)


# ----------------------------------------------------------------------------------------- DeLong


def test_delong_variance_published_iris_value():
    """The Iris example of the roc_comparison repository (Sun & Xu's fast DeLong)."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    data = load_iris()
    x_train, x_test, y_train, y_test = train_test_split(
        data.data, (data.target == 1).astype(int), test_size=0.8, random_state=42)
    pred = LogisticRegression(solver="lbfgs").fit(x_train, y_train).predict_proba(x_test)[:, 1]
    auc = roc_auc_score(y_test, pred)
    if abs(auc - 0.8176638176638177) > 1e-9:
        pytest.skip(f"this scikit-learn fits a different model on the Iris example (AUROC {auc})")
    value, var = delong_variance(y_test, pred)
    assert value == pytest.approx(auc, abs=1e-12)
    assert var == pytest.approx(0.0015359814789736538, rel=1e-10)


@pytest.mark.parametrize("decimals", [None, 1])
def test_delong_covariance_equals_brute_force(decimals):
    y, p1 = _data(n=300, decimals=decimals, seed=1)
    rng = np.random.default_rng(9)
    p2 = p1 + rng.normal(0, 0.2, len(p1))
    p2 = np.round(p2, decimals) if decimals is not None else p2
    scores = np.vstack([p1, p2])
    aucs, cov = delong_covariance(y, scores)
    ref_aucs, ref_cov = _brute_force_delong(y, scores)
    np.testing.assert_allclose(aucs, ref_aucs, rtol=0, atol=1e-12)
    np.testing.assert_allclose(cov, ref_cov, rtol=1e-10, atol=0)


def test_delong_ci_is_wald_interval_around_auroc():
    y, p = _data(n=300, decimals=2, seed=4)
    est = roc_auc(y, p, ci="delong")
    _, var = _brute_force_delong(y, p[None, :])
    half = 1.959963984540054 * math.sqrt(var[0, 0])
    assert est.method == "DeLong"
    assert est.se == pytest.approx(math.sqrt(var[0, 0]), rel=1e-10)
    assert est.ci == pytest.approx((est.value - half, est.value + half), rel=1e-10)
    # DeLong and the bootstrap estimate the same sampling variability.
    boot = roc_auc(y, p, ci="bootstrap", n_boot=1000, seed=0)
    assert boot.ci[1] - boot.ci[0] == pytest.approx(est.ci[1] - est.ci[0], rel=0.25)


def test_delong_ci_clipped_to_unit_interval_and_undefined_for_one_positive():
    y = np.array([0, 0, 0, 1, 1, 1])
    est = roc_auc(y, [0.1, 0.2, 0.3, 0.7, 0.8, 0.9], ci="delong")
    assert est.value == 1.0 and est.ci[1] <= 1.0
    with pytest.warns(RuntimeWarning, match="DeLong interval undefined"):
        lone = roc_auc([0, 0, 0, 1], [0.1, 0.4, 0.3, 0.9], ci="delong")
    assert lone.value == 1.0 and lone.ci is None


def test_delong_test_symmetric_and_calibrated():
    y, p1 = _data(n=400, decimals=None, seed=2)
    rng = np.random.default_rng(3)
    p2 = p1 + rng.normal(0, 0.3, len(p1))
    r12 = delong_test(y, p1, p2)
    r21 = delong_test(y, p2, p1)
    assert r12.p_value == pytest.approx(r21.p_value, rel=1e-12)
    assert r12.z == pytest.approx(-r21.z, rel=1e-12)
    assert r12.value1 == pytest.approx(roc_auc_score(y, p1), abs=1e-12)
    assert r12.value2 == pytest.approx(roc_auc_score(y, p2), abs=1e-12)
    # The difference with its DeLong (Wald) interval: z = difference / se.
    assert r12.value == pytest.approx(r12.value1 - r12.value2, abs=1e-15) and r12.method == "DeLong"
    se = r12.value / r12.z
    assert r12.ci == pytest.approx((r12.value - 1.959963984540054 * se, r12.value + 1.959963984540054 * se),
                                   rel=1e-10)
    assert r12.n == len(y) and r12.to_dict()["ci"] == list(r12.ci)
    same = delong_test(y, p1, p1)
    assert same.z == 0.0 and same.p_value == pytest.approx(1.0)
    # A monotone transform keeps the ranking: same AUROC, nothing to detect.
    assert delong_test(y, p1, np.log(p1)).p_value == pytest.approx(1.0)
    # An uninformative model is clearly worse.
    noise = rng.random(len(p1))
    assert delong_test(y, p1, noise).p_value < 1e-3


# ----------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("y", "p", "match"),
    [
        ([0, 1, 1], [0.1, 0.2], "same length"),
        ([0, 1, 1], [0.1, np.nan, 0.3], "finite"),
        ([0, 1, 1], [0.1, np.inf, 0.3], "finite"),
        ([0, 2, 1], [0.1, 0.2, 0.3], "binary"),
        ([0, np.nan, 1], [0.1, 0.2, 0.3], "NaN"),
        ([1, 1, 1], [0.1, 0.2, 0.3], "both classes"),
        ([[0, 1]], [[0.1, 0.2]], "1-D"),
        ([], [], "empty"),
        (["a", "b"], [0.1, 0.2], "binary"),
    ],
)
def test_bad_input_raises_clear_error(y, p, match):
    with pytest.raises(ValueError, match=match):
        roc_auc(y, p, ci=None)


def test_bad_options_raise():
    y, p = _data(n=50)
    with pytest.raises(ValueError, match="ci must be one of"):
        roc_auc(y, p, ci="jackknife")
    with pytest.raises(ValueError, match="n_boot"):
        roc_auc(y, p, n_boot=0)
    with pytest.raises(ValueError, match="confidence"):
        roc_auc(y, p, confidence=95)
    with pytest.raises(ValueError, match="p1 and p2"):
        delong_test(y, p, p[:-1])


def test_estimate_to_dict_is_json_ready():
    d = Estimate(0.8, (math.nan, math.nan), "none", 10, 3).to_dict()
    assert d == {"value": 0.8, "ci": None, "method": "none", "n": 10, "n_pos": 3,
                 "confidence": 0.95, "se": None}
    assert str(Estimate(0.8123, (0.7, 0.9), "DeLong", 10, 3)) == "0.812 [0.700, 0.900]"
    assert Estimate(0.8123, (0.7, 0.9), "DeLong", 10, 3).to_dict()["ci"] == [0.7, 0.9]
    missing = Estimate.missing("1 event < 10", "DeLong", 30, 1)
    assert missing.to_dict()["value"] is None and missing.to_dict()["not_estimable"] == "1 event < 10"
    assert str(missing) == "n/e (1 event < 10)"
