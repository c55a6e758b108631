"""Every new statistic against its reference library on the same data.

AUPRC and F1 (scikit-learn), Wilson intervals and logistic calibration fits (statsmodels),
concordance, time-dependent AUROC and integrated Brier score (scikit-survival), hazard ratios,
log-rank tests and cumulative incidence (lifelines), isotonic recalibration (scikit-learn).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    confusion_matrix,
    f1_score,
    roc_auc_score,
    roc_curve,
)

from riskfm.evaluate import (
    aalen_johansen_by_group,
    average_precision,
    calibration,
    cumulative_incidence_by_group,
    decision_curve,
    delong_test,
    fairness_gaps,
    fit_recalibration,
    group_contrasts,
    paired_bootstrap_test,
    subgroup_metrics,
    survival_metrics,
    three_level_thresholds,
    threshold_at_sensitivity,
    threshold_at_specificity,
    threshold_metrics,
    youden_threshold,
)
from riskfm.evaluate.calibration import expected_calibration_error
from riskfm.evaluate.discrimination import _bootstrap_aps
from riskfm.evaluate.subgroups import bin_numeric
from riskfm.evaluate.survival import harrell_c

sm = pytest.importorskip("statsmodels.api")


def _data(n=500, prev=0.2, shift=1.2, decimals=None, seed=0):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < prev).astype(int)
    y[:2], y[2:4] = 1, 0
    p = 1.0 / (1.0 + np.exp(-(rng.normal(size=n) + shift * y - 1.8)))
    return y, (np.round(p, decimals) if decimals is not None else p)


def _surv(n=300, seed=0):
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.02, 0.6, n)
    t_event = rng.exponential(30.0 / (p * 4), n)
    t_cens = rng.uniform(5, 60, n)
    t = np.round(np.minimum(t_event, t_cens), 1)
    e = (t_event <= t_cens).astype(int)
    return t, e, p


# ----------------------------------------------------------------------------------------- AUPRC


@pytest.mark.parametrize("decimals", [None, 2, 1])
@pytest.mark.parametrize("seed", range(3))
def test_auprc_equals_sklearn_average_precision(decimals, seed):
    y, p = _data(n=120 + 200 * seed, decimals=decimals, seed=seed)
    est = average_precision(y, p, ci=None)
    assert est.value == pytest.approx(average_precision_score(y, p), abs=1e-12)


def test_vectorised_resample_aps_equal_sklearn_on_each_resample():
    y, p = _data(n=200, decimals=2, seed=4)
    pos, neg = p[y == 1], p[y == 0]
    rng = np.random.default_rng(1)
    ip = rng.integers(0, len(pos), size=(25, len(pos)))
    ineg = rng.integers(0, len(neg), size=(25, len(neg)))
    fast = _bootstrap_aps(pos, neg, ip, ineg)
    for b in range(25):
        yy = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
        assert fast[b] == pytest.approx(average_precision_score(yy, np.r_[pos[ip[b]], neg[ineg[b]]]), abs=1e-12)


def test_auprc_bootstrap_interval_seeded_and_contains_estimate():
    y, p = _data()
    a, b = average_precision(y, p, seed=3), average_precision(y, p, seed=3)
    assert a.ci == b.ci and a.ci[0] < a.value < a.ci[1]


# ----------------------------------------------------------------------------------------- comparison


def test_paired_bootstrap_identical_models_and_agreement_with_delong():
    y, p1 = _data(n=600, seed=5)
    same = paired_bootstrap_test(y, p1, p1, n_boot=200)
    assert same.value == 0.0 and same.p_value == 1.0 and same.method == "paired stratified bootstrap (200 resamples)"
    rng = np.random.default_rng(0)
    p2 = p1 + rng.normal(scale=0.25, size=len(p1))  # a noisier, weaker model
    boot = paired_bootstrap_test(y, p1, p2, n_boot=1000, seed=0)
    dl = delong_test(y, p1, p2)
    assert boot.value1 == pytest.approx(roc_auc_score(y, p1)) and boot.value2 == pytest.approx(roc_auc_score(y, p2))
    assert boot.ci[0] < boot.value < boot.ci[1]
    # Both tests estimate the same variance: z statistics within 15% of each other.
    assert boot.z == pytest.approx(dl.z, rel=0.15)
    ap = paired_bootstrap_test(y, p1, p2, metric="auprc", n_boot=100)
    assert ap.value1 == pytest.approx(average_precision_score(y, p1), abs=1e-12)


# ----------------------------------------------------------------------------------------- thresholds


@pytest.mark.parametrize("threshold", [0.1, 0.25, 0.4])
def test_threshold_metrics_match_sklearn_and_statsmodels_wilson(threshold):
    from statsmodels.stats.proportion import proportion_confint

    y, p = _data(decimals=2)
    tm = threshold_metrics(y, p, threshold)
    tn, fp, fn, tp = confusion_matrix(y, (p >= threshold).astype(int)).ravel()
    assert (tm.tp, tm.fp, tm.tn, tm.fn) == (tp, fp, tn, fn)
    assert tm.f1.value == pytest.approx(f1_score(y, (p >= threshold).astype(int)))
    for est, k, n in [(tm.sensitivity, tp, tp + fn), (tm.specificity, tn, tn + fp), (tm.ppv, tp, tp + fp),
                      (tm.npv, tn, tn + fn)]:
        lo, hi = proportion_confint(k, n, alpha=0.05, method="wilson")
        assert est.value == pytest.approx(k / n)
        assert est.ci == pytest.approx((lo, hi), abs=1e-12) and est.method == "Wilson"
    assert tm.f1.ci[0] <= tm.f1.value <= tm.f1.ci[1]


def test_threshold_choices():
    y, p = _data(decimals=2, seed=2)
    fpr, tpr, thr = roc_curve(y, p)
    assert youden_threshold(y, p) == pytest.approx(thr[np.argmax(tpr - fpr)])
    t = threshold_at_sensitivity(y, p, 0.8)
    assert threshold_metrics(y, p, t).sensitivity.value >= 0.8
    higher = np.unique(p)[np.unique(p) > t][0]
    assert threshold_metrics(y, p, higher).sensitivity.value < 0.8  # the highest that qualifies
    t = threshold_at_specificity(y, p, 0.9)
    assert threshold_metrics(y, p, t).specificity.value >= 0.9
    lower = np.unique(p)[np.unique(p) < t][-1]
    assert threshold_metrics(y, p, lower).specificity.value < 0.9
    lo, hi = three_level_thresholds(y, p, 0.9, 0.9)
    assert lo < hi
    separated = np.r_[np.linspace(0.6, 0.9, 20), np.linspace(0.1, 0.4, 80)]
    with pytest.raises(ValueError, match="not below"):
        three_level_thresholds(np.r_[np.ones(20), np.zeros(80)], separated, 0.9, 0.9)


# ----------------------------------------------------------------------------------------- calibration


def test_calibration_intercept_slope_match_statsmodels_glm():
    rng = np.random.default_rng(0)
    p = rng.uniform(0.02, 0.7, 1500)
    y = (rng.random(1500) < np.clip(p * 1.3, 0, 1)).astype(int)  # risks too low
    res = calibration(y, p, n_bins=10, strategy="uniform")
    lp = np.log(p / (1 - p))
    glm_a = sm.GLM(y, np.ones((len(y), 1)), family=sm.families.Binomial(), offset=lp).fit()
    glm_b = sm.GLM(y, sm.add_constant(lp), family=sm.families.Binomial()).fit()
    assert res.intercept.value == pytest.approx(glm_a.params[0], abs=1e-8)
    assert res.intercept.ci == pytest.approx(tuple(glm_a.conf_int()[0]), abs=1e-6)
    assert res.slope.value == pytest.approx(glm_b.params[1], abs=1e-8)
    assert res.slope.ci == pytest.approx(tuple(glm_b.conf_int()[1]), abs=1e-6)
    assert res.intercept.value > 0  # observed risk higher than predicted
    assert res.brier == pytest.approx(brier_score_loss(y, p))
    assert res.scaled_brier == pytest.approx(1 - brier_score_loss(y, p) / (y.mean() * (1 - y.mean())))
    # ECE by hand over uniform bins, Spiegelhalter's z by its formula.
    idx = np.minimum((p * 10).astype(int), 9)
    ece = sum(abs(y[idx == b].mean() - p[idx == b].mean()) * (idx == b).sum() for b in np.unique(idx)) / len(y)
    assert res.ece == pytest.approx(ece) == pytest.approx(expected_calibration_error(y, p))
    z = np.sum((y - p) * (1 - 2 * p)) / np.sqrt(np.sum((1 - 2 * p) ** 2 * p * (1 - p)))
    assert res.spiegelhalter_z == pytest.approx(z)
    assert res.to_dict()["slope"]["value"] == res.slope.value
    assert res.to_dict()["slope"]["ci"] == list(res.slope.ci) and res.to_row()["slope_ci_low"] == res.slope.ci[0]
    fig = res.plot()
    assert fig.axes


def test_recalibration_platt_isotonic_temperature():
    from sklearn.isotonic import IsotonicRegression

    rng = np.random.default_rng(1)
    true = rng.uniform(0.02, 0.5, 2000)
    y = (rng.random(2000) < true).astype(int)
    lt = np.log(true / (1 - true))
    p = 1 / (1 + np.exp(-(2.0 * lt)))  # overconfident model
    val, test = slice(0, 1000), slice(1000, None)
    platt = fit_recalibration(y[val], p[val], "platt")
    lp = np.log(p / (1 - p))
    ref = sm.GLM(y[val], sm.add_constant(lp[val]), family=sm.families.Binomial()).fit()
    assert (platt.params["a"], platt.params["b"]) == pytest.approx(tuple(ref.params), abs=1e-7)
    iso = fit_recalibration(y[val], p[val], "isotonic")
    ref_iso = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1).fit(p[val], y[val])
    np.testing.assert_allclose(iso.transform(p[test]), ref_iso.predict(p[test]), atol=1e-12)
    temp = fit_recalibration(y[val], p[val], "temperature")
    assert temp.params["temperature"] == pytest.approx(2.0, rel=0.2)
    before = calibration(y[test], p[test]).slope.value
    for rc in (platt, temp):
        assert abs(calibration(y[test], rc.transform(p[test])).slope.value - 1) < abs(before - 1)
    with pytest.raises(ValueError, match="method must be one of"):
        fit_recalibration(y, p, "beta")


# ----------------------------------------------------------------------------------------- survival


def test_concordance_time_auc_and_ibs_match_references():
    from lifelines import CoxPHFitter
    from lifelines.utils import concordance_index
    from sksurv.metrics import concordance_index_ipcw, cumulative_dynamic_auc, integrated_brier_score
    from sksurv.util import Surv

    t, e, p = _surv(400, seed=0)
    tt, ee, pp = _surv(250, seed=1)
    # lifelines scores "predicted survival times": higher risk = shorter time, hence -risk.
    assert harrell_c(tt, ee, pp) == pytest.approx(concordance_index(tt, -pp, ee), abs=1e-12)
    times = np.array([5.0, 10.0, 20.0, 30.0])
    res = survival_metrics(tt, ee, pp, times_days=times, train=(t, e, p))
    y_tr, y_te = Surv.from_arrays(e.astype(bool), t), Surv.from_arrays(ee.astype(bool), tt)
    assert res.uno_c.value == pytest.approx(concordance_index_ipcw(y_tr, y_te, pp, tau=30.0)[0])
    auc, mean_auc = cumulative_dynamic_auc(y_tr, y_te, pp, times)
    np.testing.assert_allclose(res.auc_t, auc)
    assert res.mean_auc_t.value == pytest.approx(mean_auc)
    cph = CoxPHFitter(penalizer=1e-4).fit(pd.DataFrame({"t": t, "e": e, "x": np.log(p / (1 - p))}), "t", "e")
    # Breslow H0 is a step function: read it at each time (predict_survival_function interpolates).
    h0 = cph.baseline_cumulative_hazard_.iloc[:, 0]
    h0_t = h0.to_numpy()[np.searchsorted(h0.index.to_numpy(), times, side="right") - 1]
    surv = np.exp(-np.outer(cph.predict_partial_hazard(pd.DataFrame({"x": np.log(pp / (1 - pp))})), h0_t))
    assert res.integrated_brier.value == pytest.approx(integrated_brier_score(y_tr, y_te, surv, times))
    assert 0.5 < res.harrell_c.value < 1 and 0 < res.integrated_brier.value < 0.25
    assert res.harrell_c.ci is None and res.to_dict()["harrell_c"]["value"] == res.harrell_c.value


def test_group_contrasts_match_lifelines_and_aalen_johansen_equals_km_without_competing():
    from lifelines import CoxPHFitter
    from lifelines.statistics import logrank_test

    t, e, p = _surv(400, seed=2)
    groups = np.where(p > 0.3, "high", "low")
    c = group_contrasts(t, e, groups)
    assert list(c["group"]) == ["high"] and c["reference"].iloc[0] == "low"
    df = pd.DataFrame({"t": t, "e": e, "g": (groups == "high").astype(float)})
    ref = CoxPHFitter().fit(df, "t", "e").summary.loc["g"]
    assert c["hazard_ratio"].iloc[0] == pytest.approx(ref["exp(coef)"])
    assert c["ci_low"].iloc[0] == pytest.approx(ref["exp(coef) lower 95%"])
    lr = logrank_test(t[groups == "high"], t[groups == "low"], e[groups == "high"], e[groups == "low"])
    assert c["logrank_p"].iloc[0] == pytest.approx(lr.p_value)
    assert c["hazard_ratio"].iloc[0] > 1

    aj = aalen_johansen_by_group(t, e, groups)
    km = cumulative_incidence_by_group(t, e, groups)
    for g in ("low", "high"):
        # lifelines jitters tied times by ~1e-4 days: compare on a grid of times.
        grid = np.linspace(1, 50, 20)
        a = np.interp(grid, aj.curves[g]["time_days"], aj.curves[g]["incidence"])
        k = np.interp(grid, km.curves[g]["time_days"], km.curves[g]["incidence"])
        np.testing.assert_allclose(a, k, atol=2e-3)
    # A competing event lowers the incidence of the event of interest below 1 - KM(censoring it).
    codes = np.where((e == 0) & (t < 20), 2, e)
    aj2 = aalen_johansen_by_group(t, codes, groups)
    assert aj2.groups == ["low", "high"] and aj2.logrank_p is None


# ----------------------------------------------------------------------------------------- decision curve


def test_decision_curve_net_benefit_formula():
    y, p = _data(n=400, seed=3)
    dc = decision_curve(y, p, thresholds=[0.05, 0.1, 0.2])
    n = len(y)
    for _, r in dc.table.iterrows():
        pt = r["threshold"]
        tp, fp = np.sum((p >= pt) & (y == 1)), np.sum((p >= pt) & (y == 0))
        assert r["net_benefit"] == pytest.approx(tp / n - fp / n * pt / (1 - pt))
        assert r["treat_all"] == pytest.approx(y.mean() - (1 - y.mean()) * pt / (1 - pt))
    # Below every prediction the model treats everyone: its net benefit is treat-all's.
    low = decision_curve(y, p, thresholds=[p.min() / 2])
    assert low.table["net_benefit"].iloc[0] == pytest.approx(low.table["treat_all"].iloc[0])
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        decision_curve(y, p, thresholds=[0.0, 0.5])


# ----------------------------------------------------------------------------------------- subgroups


def test_subgroup_metrics_and_fairness_gaps():
    y, p = _data(n=900, seed=6)
    rng = np.random.default_rng(0)
    sex = rng.choice(["F", "M"], len(y))
    t = subgroup_metrics(y, p, sex, "auroc", attribute="sex", n_boot=100)
    assert list(t["level"]) == ["All", "F", "M"]
    for lv in ("F", "M"):
        row = t[t["level"] == lv].iloc[0]
        assert row["value"] == pytest.approx(roc_auc_score(y[sex == lv], p[sex == lv]))
        assert row["ci_low"] < row["value"] < row["ci_high"]
    frame = pd.DataFrame({"sex": sex, "y_true": y, "y_prob": p})
    g = fairness_gaps(frame, "sex", "auroc", n_resamples=100).estimable_rows()
    assert g["gap"].iloc[0] == pytest.approx(t["value"].iloc[1] - t["value"].iloc[2])
    assert g["gap"].iloc[:2].sum() == pytest.approx(0.0) and list(g["kind"]) == ["binary", "binary", "range"]

    age = bin_numeric(rng.integers(30, 90, len(y)), [50, 65], name="age")
    assert list(age.cat.categories) == ["\u226450", "50\u201365", ">65"]
    ta = subgroup_metrics(y, p, age, "brier", attribute="age", n_boot=50)
    assert list(ta["level"]) == ["All", "\u226450", "50\u201365", ">65"]
    ga = fairness_gaps(pd.DataFrame({"age": age, "y_true": y, "y_prob": p}), "age", "brier",
                       n_resamples=50).estimable_rows()
    assert ga["gap"].iloc[:3].to_numpy() == pytest.approx(
        ta["value"].iloc[1:].to_numpy() - np.median(ta["value"].iloc[1:]), abs=1e-15)
    assert list(ga["kind"]) == ["median"] * 3 + ["range"]
    row = subgroup_metrics(y[:40], p[:40], np.r_[["a"] * 35, ["b"] * 5], "brier", n_boot=20)
    assert row[row["level"] == "b"]["not_estimable"].iloc[0] == "5 patients < 10"
    assert math.isnan(row[row["level"] == "b"]["value"].iloc[0])
