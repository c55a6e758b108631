"""Tests written for mutants of riskfm/evaluate/survival.py that survived mutmut (docs/testing.md).

The Aalen-Johansen band is compared with lifelines' ``AalenJohansenFitter`` where lifelines
defines it, and with the documented variance written here as its plain double sum (Collett
p. 411) where it does not (the last time, when nobody is left at risk).
"""

import math
import os
import re
import warnings

import numpy as np
import pytest
from scipy.stats import norm

from riskfm.evaluate.results import Estimate
from riskfm.evaluate.survival import (
    SEPARATED,
    CoxOnScore,
    SurvivalMetrics,
    aalen_johansen_by_group,
    default_eval_times,
    group_contrasts,
    harrell_c,
    survival_metrics,
)


def full(text: str) -> str:
    return "^" + re.escape(text) + "$"


# ----------------------------------------------------------------------------------------- SurvivalMetrics


def test_survival_metrics_missing_keeps_counts_and_reason_in_every_estimate():
    res = SurvivalMetrics.missing("3 events < 10", 40, 3)
    for est in (res.harrell_c, res.uno_c, res.mean_auc_t, res.integrated_brier):
        assert isinstance(est, Estimate)
        assert (est.method, est.n, est.n_pos, est.not_estimable, est.ci) == ("none", 40, 3, "3 events < 10", None)
        assert math.isnan(est.value)
    assert res.times_days.shape == (0,) and res.auc_t.shape == (0,)
    assert (res.n, res.n_events) == (40, 3)
    d = res.to_dict()
    assert d["time_auc"] == {"times_days": [], "auc": []}
    assert d["integrated_brier"]["not_estimable"] == "3 events < 10"


# ----------------------------------------------------------------------------------------- evaluation times


def test_default_eval_times_ten_quantiles_below_the_last_follow_up():
    t = np.arange(1.0, 102.0)  # events on days 1..100, one censoring on day 101
    e = np.r_[np.ones(100, bool), False]
    expected = np.quantile(np.arange(1.0, 101.0), np.linspace(0.1, 0.8, 10))
    np.testing.assert_allclose(default_eval_times(t, e), expected, rtol=0, atol=1e-12)
    assert len(default_eval_times(t, e, n_times=4)) == 4
    # one event is enough (below the last follow-up); none is refused
    np.testing.assert_array_equal(default_eval_times(np.array([3.0, 5.0]), np.array([True, False])), [3.0])
    with pytest.raises(ValueError, match=full("no events: no evaluation times")):
        default_eval_times(np.array([3.0, 5.0]), np.array([False, False]))
    # a quantile on the longest follow-up is left out: nobody is still at risk after it
    assert default_eval_times(np.array([5.0, 5.0, 5.0]), np.array([True, True, True])).size == 0


# ----------------------------------------------------------------------------------------- Aalen-Johansen


def _aj_by_definition(t, code, cause, confidence=0.95):
    """Incidence and log(-log) band from the documented formulas, the variance as its double sum."""
    times = np.unique(t)
    n = np.array([(t >= u).sum() for u in times], float)
    d = np.array([((t == u) & (code > 0)).sum() for u in times], float)
    d1 = np.array([((t == u) & (code == cause)).sum() for u in times], float)
    s = np.cumprod(1 - d / n)
    s_before = np.r_[1.0, s[:-1]]
    f = np.cumsum(s_before * d1 / n)
    var = np.zeros(len(times))
    for j in range(len(times)):
        for i in range(j + 1):
            a = d[i] / (n[i] * (n[i] - d[i])) if n[i] > d[i] else 0.0  # nobody left: F_j - F_i = 0
            var[j] += ((f[j] - f[i]) ** 2 * a + s_before[i] ** 2 * d1[i] * (n[i] - d1[i]) / n[i] ** 3
                       - 2 * (f[j] - f[i]) * s_before[i] * d1[i] / n[i] ** 2)
    z = norm.ppf(0.5 + confidence / 2)
    theta = z * np.sqrt(var) / (f * np.abs(np.log(f)))
    return times, f, f ** np.exp(theta), f ** np.exp(-theta)


def test_aalen_johansen_band_where_one_and_then_nobody_is_left_at_risk():
    from lifelines import AalenJohansenFitter

    # day 7: two at risk, a competing event leaves one; day 8: that one has the event, nobody is left
    t = np.arange(1.0, 9.0)
    code = np.array([1, 0, 2, 1, 0, 1, 2, 1])
    with warnings.catch_warnings(), np.errstate(divide="raise", invalid="raise", over="raise"):
        warnings.simplefilter("error")  # no division by zero where nobody is left
        cur = aalen_johansen_by_group(t, code, np.zeros(8), confidence=0.9).curves[0]
    times, f, low, high = _aj_by_definition(t, code, 1, confidence=0.9)
    np.testing.assert_array_equal(cur["time_days"], np.r_[0.0, times])
    np.testing.assert_allclose(cur["incidence"], np.r_[0.0, f], rtol=0, atol=1e-14)
    np.testing.assert_allclose(cur["ci_low"], np.r_[0.0, low], rtol=0, atol=1e-12)
    np.testing.assert_allclose(cur["ci_high"], np.r_[0.0, high], rtol=0, atol=1e-12)
    assert cur["ci_high"].iloc[-1] - cur["ci_low"].iloc[-1] > 0.5  # a real band at day 8
    # lifelines agrees where it defines the variance (before day 8)
    aj = AalenJohansenFitter(calculate_variance=True).fit(t, code, event_of_interest=1)
    band = aj.confidence_interval_.iloc[:, :]
    ci95 = aalen_johansen_by_group(t, code, np.zeros(8)).curves[0]
    np.testing.assert_allclose(np.sort(band.to_numpy()[1:-1], axis=1), ci95[["ci_low", "ci_high"]].to_numpy()[1:-1],
                               rtol=0, atol=1e-10)


def test_aalen_johansen_reaching_one_has_a_point_band_and_no_warning():
    # errstate raises even where an earlier warning from the same line was already shown once
    with warnings.catch_warnings(), np.errstate(divide="raise", invalid="raise", over="raise"):
        warnings.simplefilter("error")
        cur = aalen_johansen_by_group([1.0, 2.0, 3.0, 4.0], [1, 1, 1, 1], ["a"] * 4).curves["a"]
    assert cur["incidence"].iloc[-1] == 1.0 and cur["ci_low"].iloc[-1] == 1.0 and cur["ci_high"].iloc[-1] == 1.0


def test_aalen_johansen_starts_at_time_zero_once_and_keeps_a_plain_index():
    # a follow-up of 0 days (censored on entry) and a group of one patient
    t = np.array([0.0, 2.0, 2.0, 5.0, 0.0])
    code = np.array([0, 1, 0, 1, 1])
    res = aalen_johansen_by_group(t, code, ["a", "a", "a", "a", "b"])
    a, b = res.curves["a"], res.curves["b"]
    np.testing.assert_array_equal(a["time_days"], [0.0, 2.0, 5.0])
    np.testing.assert_allclose(a["incidence"], [0.0, 1 / 3, 1.0], atol=1e-15)
    assert list(a.index) == [0, 1, 2]
    np.testing.assert_array_equal(b["time_days"], [0.0])  # one patient with the event on day 0
    assert b["incidence"].tolist() == [1.0] and list(b.index) == [0]
    one_later = aalen_johansen_by_group([4.0], [1], ["c"]).curves["c"]
    np.testing.assert_array_equal(one_later["time_days"], [0.0, 4.0])
    assert one_later["incidence"].tolist() == [0.0, 1.0] and list(one_later.index) == [0, 1]


def test_aalen_johansen_by_group_errors_whole():
    t, c, g = [1.0, 2.0, 3.0], [1, 0, 2], ["a", "a", "b"]
    with pytest.raises(ValueError, match=full("time_days must be finite; 1 of 3 values are NaN or infinite "
                                              "(first at index 1)")):
        aalen_johansen_by_group([1.0, math.nan, 3.0], c, g)
    with pytest.raises(ValueError, match=full("event_code must be finite; 1 of 3 values are NaN or infinite "
                                              "(first at index 2)")):
        aalen_johansen_by_group(t, [1, 0, math.inf], g)
    for bad in ([1, -1, 2], [1, 0.5, 2]):
        with pytest.raises(ValueError, match=full("event_code must hold non-negative integers (0 = censored)")):
            aalen_johansen_by_group(t, bad, g)
    with pytest.raises(ValueError, match=full("time_days must be >= 0; 1 negative values")):
        aalen_johansen_by_group([-1.0, 0.0, 0.5], c, g)
    for bad in (0, -1, 1.5):
        with pytest.raises(ValueError, match=full(f"event_of_interest must be a positive integer code, got {bad!r}")):
            aalen_johansen_by_group(t, c, g, event_of_interest=bad)
    for args, got in (((t[:2], c, g), "2, 3, 3"), ((t, c[:2], g), "3, 2, 3"), ((t, c, g[:2]), "3, 3, 2")):
        with pytest.raises(ValueError, match=full(f"time_days, event_code and groups must have the same length, "
                                                  f"got {got}")):
            aalen_johansen_by_group(*args)


def test_aalen_johansen_by_group_result_fields():
    t = np.array([1.0, 2.0, 2.0, 4.0, 6.0, 3.0, 9.0])
    code = np.array([1, 2, 0, 1, 2, 1, 0])
    g = [1, 1, 1, 1, "x", "x", "x"]  # labels keep their type
    res = aalen_johansen_by_group(t, code, g, event_of_interest=2, confidence=0.8)
    assert list(res.curves) == [1, "x"]
    assert (res.confidence, res.method, res.n, res.n_events, res.logrank_p) == (
        0.8, "Aalen-Johansen (Dinse-Larson / Collett band)", 7, 2, None)
    assert res.max_time_days == 9.0
    at = res.at_risk([0.0, 2.0, 5.0])
    assert at.loc[1].tolist() == [4, 3, 0] and at.loc["x"].tolist() == [3, 3, 2]
    assert res.to_dict()["confidence"] == 0.8
    # the seed is unused (tied times are handled exactly): the same curves for any seed
    other = aalen_johansen_by_group(t, code, g, event_of_interest=2, confidence=0.8, seed=5)
    for level in res.curves:
        assert res.curves[level].equals(other.curves[level])


# ----------------------------------------------------------------------------------------- CoxOnScore


def _train(n=80, seed=3):
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.05, 0.6, n)
    t = np.round(rng.exponential(20 / p), 0) + 1
    e = rng.random(n) < 0.7
    return t, e, p


def test_cox_on_score_errors_name_the_training_set_and_the_risks():
    t, e, p = _train()
    with pytest.raises(ValueError, match=full("train time_days must be >= 0; 1 negative values")):
        CoxOnScore().fit(np.r_[-1.0, t[1:]], e, p)
    bad = p.copy()
    bad[4] = math.nan
    with pytest.raises(ValueError, match=full(f"p must be finite; 1 of {len(p)} values are NaN or infinite "
                                              "(first at index 4)")):
        CoxOnScore().fit(t, e, bad)
    cox = CoxOnScore().fit(t, e, p)
    with pytest.raises(ValueError, match=full("p must be finite; 1 of 2 values are NaN or infinite (first at index 1)")):
        cox.survival([0.2, math.inf], [10.0])


def test_cox_survival_is_one_before_the_first_training_time_and_breslow_at_it():
    t = np.array([2.0, 3.0, 3.0, 5.0, 8.0, 9.0, 12.0, 15.0])
    e = np.array([1, 1, 0, 1, 0, 1, 1, 0], bool)
    p = np.array([0.6, 0.5, 0.2, 0.4, 0.1, 0.3, 0.2, 0.05])
    cox = CoxOnScore().fit(t, e, p)
    lin = np.exp(cox.coef_ * (np.log(p / (1 - p)) - cox.x_mean_))
    # Breslow: one event on day 2 with all 8 at risk; days 3: one event, 7 at risk
    h2 = 1 / lin.sum()
    h3 = h2 + 1 / lin[1:].sum()
    s = cox.survival([0.3], [0.0, 1.5, 2.0, 2.5, 3.0])
    hr = math.exp(cox.coef_ * (math.log(0.3 / 0.7) - cox.x_mean_))
    np.testing.assert_allclose(s[0], [1.0, 1.0, math.exp(-h2 * hr), math.exp(-h2 * hr), math.exp(-h3 * hr)],
                               rtol=1e-10, atol=0)


def test_cox_baseline_is_a_right_continuous_step_at_the_training_event_times():
    t, e, p = _train()
    cox = CoxOnScore().fit(t, e, p)
    u = float(np.sort(t[e])[len(t[e]) // 2])  # a training event time
    s = cox.survival([0.1, 0.4], [u - 1e-6, u, u + 1e-6])
    np.testing.assert_allclose(s[:, 1], s[:, 2], rtol=0, atol=1e-15)  # the step is taken at u itself
    assert np.all(s[:, 0] > s[:, 1])


# ----------------------------------------------------------------------------------------- Harrell, survival_metrics

T8 = np.array([1.0, 2, 3, 4, 5, 6, 7, 8])
E8 = np.array([1, 0, 1, 1, 0, 1, 0, 1])
R8 = np.array([0.9, 0.5, 0.6, 0.8, 0.2, 0.7, 0.1, 0.3])


def test_harrell_c_against_lifelines_and_its_errors():
    from lifelines.utils import concordance_index

    assert harrell_c(T8, E8, R8) == pytest.approx(concordance_index(T8, -R8, E8), abs=1e-12)
    with pytest.raises(ValueError, match=full("Harrell's C needs at least one event")):
        harrell_c(T8, np.zeros(8), R8)
    with pytest.raises(ValueError, match=full("risk must be finite; 1 of 8 values are NaN or infinite "
                                              "(first at index 7)")):
        harrell_c(T8, E8, np.r_[R8[:7], math.nan])


def test_survival_metrics_errors_whole():
    with pytest.raises(ValueError, match=full("risk has 7 values for 8 patients")):
        survival_metrics(T8, E8, R8[:7])
    with pytest.raises(ValueError, match=full("survival metrics need at least one event")):
        survival_metrics(T8, np.zeros(8), R8)
    with pytest.raises(ValueError, match=full("no evaluation time lies inside the follow-up of both sets")):
        survival_metrics(T8, E8, R8, times_days=[100.0])
    with pytest.raises(ValueError, match=full("risk must be finite; 1 of 8 values are NaN or infinite "
                                              "(first at index 0)")):
        survival_metrics(T8, E8, np.r_[math.inf, R8[1:]])
    with pytest.raises(ValueError, match=full("train event must be binary 0/1; found other values [2.0]")):
        survival_metrics(T8, E8, R8, train=(T8, np.r_[E8[:7], 2], R8))
    with pytest.raises(ValueError, match=full("train p must be finite; 1 of 8 values are NaN or infinite "
                                              "(first at index 7)")):
        survival_metrics(T8, E8, R8, train=(T8, E8, np.r_[R8[:7], math.nan]))


def test_survival_metrics_fields_and_the_times_kept():
    res = survival_metrics(T8, E8, R8, times_days=[0.5, 1.0, 3.5, 6.0, 8.0, 9.0])
    # times before the first follow-up (0.5) and from the last training follow-up on (8, 9) are dropped
    np.testing.assert_array_equal(res.times_days, [1.0, 3.5, 6.0])
    assert res.auc_t.dtype == np.float64 and res.auc_t.shape == (3,)
    assert (res.n, res.n_events, res.integrated_brier) == (8, 5, None)
    for est in (res.harrell_c, res.uno_c, res.mean_auc_t):
        assert (est.ci, est.method, est.n, est.n_pos) == (None, "none", 8, 5)
    assert res.method == "Harrell's and Uno's C, cumulative/dynamic AUROC, IPCW integrated Brier (no intervals)"
    d = res.to_dict()
    assert d["time_auc"]["times_days"] == [1.0, 3.5, 6.0] and d["n_events"] == 5
    # the Brier score needs two evaluation times
    with_train = survival_metrics(T8, E8, R8, times_days=[3.5, 6.0], train=(T8, E8, R8))
    assert with_train.integrated_brier is not None
    assert (with_train.integrated_brier.n, with_train.integrated_brier.n_pos) == (8, 5)
    assert survival_metrics(T8, E8, R8, times_days=[3.5], train=(T8, E8, R8)).integrated_brier is None
    # one training event is enough for the Cox model behind it
    one = np.array([0, 0, 1, 0, 0, 0, 0, 0])
    assert survival_metrics(T8, E8, R8, times_days=[3.5, 6.0],
                            train=(np.r_[T8[:7], 30.0], one, R8)).integrated_brier is not None
    # evaluation times given as integers are kept as days in float
    assert survival_metrics(T8, E8, R8, times_days=[3, 6]).times_days.dtype == np.float64


def test_survival_metrics_default_times_are_quantiles_of_the_event_times():
    # the censored patients follow-up (days 40-49) lies far beyond the events (days 1-20)
    t = np.r_[np.arange(1.0, 21.0), np.arange(40.0, 50.0)]
    e = np.r_[np.ones(20), np.zeros(10)]
    r = np.r_[np.linspace(0.9, 0.3, 20), np.full(10, 0.1)]
    res = survival_metrics(t, e, r)
    np.testing.assert_allclose(res.times_days, np.quantile(np.arange(1.0, 21.0), np.linspace(0.1, 0.8, 10)),
                               rtol=0, atol=1e-12)


def _warning_twice(original, source: str):
    """``original`` wrapped to warn first a RuntimeWarning, then a UserWarning, naming ``source``."""
    def noisy(*args, **kwargs):
        warnings.warn(f"a RuntimeWarning from {source}", RuntimeWarning, stacklevel=2)
        warnings.warn(f"a UserWarning from {source}", UserWarning, stacklevel=2)
        return original(*args, **kwargs)

    return noisy


def test_survival_metrics_silences_only_runtime_warnings_of_scikit_survival(monkeypatch):
    import sksurv.metrics

    original = sksurv.metrics.cumulative_dynamic_auc

    noisy = _warning_twice(original, "sksurv")
    monkeypatch.setattr(sksurv.metrics, "cumulative_dynamic_auc", noisy)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        survival_metrics(T8, E8, R8, times_days=[3.5, 6.0])
    assert [str(w.message) for w in record] == ["a UserWarning from sksurv"]


# ----------------------------------------------------------------------------------------- group contrasts


def _groups_data(n=120, seed=0):
    rng = np.random.default_rng(seed)
    g = rng.choice(["high", "low", "intermediate"], n)
    scale = np.select([g == "high", g == "intermediate"], [20.0, 40.0], 80.0)
    t = np.round(rng.exponential(scale), 1) + 0.5
    e = (t < 60).astype(int)
    t = np.minimum(t, 60.0)
    return t, e, g


def test_group_contrasts_rows_counts_and_default_reference():
    from lifelines.statistics import logrank_test

    t, e, g = _groups_data()
    res = group_contrasts(t, e, g)
    assert list(res.columns) == ["group", "reference", "n", "n_events", "hazard_ratio", "ci_low", "ci_high",
                                 "cox_p", "logrank_p", "not_estimable"]
    assert res["group"].tolist() == ["intermediate", "high"] and set(res["reference"]) == {"low"}
    for _, row in res.iterrows():
        m = g == row["group"]
        assert (row["n"], row["n_events"]) == (m.sum(), e[m].sum())
        ref = logrank_test(t[m], t[g == "low"], e[m], e[g == "low"]).p_value
        assert row["logrank_p"] == pytest.approx(ref, rel=1e-12)
        assert row["not_estimable"] == "" and row["ci_low"] < row["hazard_ratio"] < row["ci_high"]
    # a single group: no row, but the same columns
    alone = group_contrasts(t, e, ["low"] * len(t))
    assert alone.empty and list(alone.columns) == list(res.columns)
    other = group_contrasts(t, e, g, reference="high")
    assert other["group"].tolist() == ["low", "intermediate"] and set(other["reference"]) == {"high"}


def test_group_contrasts_errors_and_groups_without_events():
    t, e, g = _groups_data()
    with pytest.raises(ValueError, match=full(f"groups has {len(g) - 1} labels for {len(g)} patients")):
        group_contrasts(t, e, g[:-1])
    with pytest.raises(ValueError, match=full("reference group 'none' not among the groups "
                                              "['low', 'intermediate', 'high']")):
        group_contrasts(t, e, g, reference="none")
    e2 = e.copy()
    e2[g != "high"] = 0  # only the high group has events
    res = group_contrasts(t, e2, g).set_index("group")
    assert res.loc["intermediate", "not_estimable"] == "no events in the 'intermediate' and 'low' group"
    assert res.loc["high", "not_estimable"] == "no events in the 'low' group"
    assert res.loc["intermediate", "n_events"] == 0 and math.isnan(res.loc["intermediate", "logrank_p"])
    assert res.loc["high", "logrank_p"] < 0.05 and math.isnan(res.loc["high", "hazard_ratio"])
    e3 = np.zeros_like(e)
    none = group_contrasts(t, e3, g)
    assert none["logrank_p"].isna().all() and none["cox_p"].isna().all()


def test_group_contrasts_keeps_label_types_and_tests_with_a_single_event(monkeypatch):
    from lifelines.statistics import logrank_test

    t = np.array([1.0, 2, 3, 4, 5, 6, 7, 8])
    e = np.array([0, 0, 0, 1, 0, 0, 0, 0])  # one event in all
    g = [1, "x", 1, "x", 1, "x", 1, "x"]
    res = group_contrasts(t, e, g)
    assert res["group"].tolist() == ["x"] and res["reference"].tolist() == [1]  # int 1 stays an int
    m_x = np.array([v == "x" for v in g])
    ref = logrank_test(t[m_x], t[~m_x], e[m_x], e[~m_x]).p_value
    assert res.iloc[0]["logrank_p"] == pytest.approx(ref, rel=1e-12)  # one event is enough for it
    assert res.iloc[0]["not_estimable"] == "no events in the '1' group"


def test_group_contrasts_silences_only_runtime_warnings_of_the_log_rank_test(monkeypatch):
    import lifelines.statistics

    original = lifelines.statistics.logrank_test

    noisy = _warning_twice(original, "lifelines")
    monkeypatch.setattr(lifelines.statistics, "logrank_test", noisy)
    t, e, g = _groups_data()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        group_contrasts(t, e, g)
    assert [str(w.message) for w in record] == ["a UserWarning from lifelines"] * 2


def test_group_contrasts_separated_groups_warn_once_each_and_report_the_log_rank_test():
    t = np.array([1.0, 2, 3, 4, 5, 6, 7, 8])
    e = np.array([1, 0, 1, 1, 0, 1, 0, 1])
    g = np.array(["low"] * 4 + ["high"] * 4)
    with pytest.warns(RuntimeWarning) as record:
        res = group_contrasts(t, e, g)
    msgs = [str(w.message) for w in record if "Cox hazard ratio" in str(w.message)]
    assert len(msgs) == 1
    assert re.fullmatch(r"Cox hazard ratio for group 'high' vs 'low' did not converge \(.+\); "
                        r"reported as not estimable", msgs[0])
    row = res.iloc[0]
    assert row["not_estimable"] == SEPARATED == "did not converge: separated groups"
    assert math.isnan(row["hazard_ratio"]) and math.isfinite(row["logrank_p"])


# ----------------------------------------------------------------------------------------- _cox_group_fit


def _fake_cox(monkeypatch, coef=0.5, se=0.2, low=None, high=None, warn=None, exc=None, seen=None):
    """Replace lifelines' CoxPHFitter.fit by one returning a chosen summary row (or raising)."""
    import pandas as pd
    from lifelines import CoxPHFitter

    def fit(self, df, **kwargs):
        if seen is not None:
            seen.update(kwargs, columns=list(df.columns))
        if warn is not None:
            warnings.warn(warn, RuntimeWarning, stacklevel=2)
        if exc is not None:
            raise exc
        lo = math.exp(coef - 1.96 * se) if low is None else low
        hi = math.exp(coef + 1.96 * se) if high is None else high
        self.__dict__["_fake_summary"] = pd.DataFrame(
            {"coef": [coef], "se(coef)": [se], "exp(coef)": [math.exp(coef)], "exp(coef) lower 95%": [lo],
             "exp(coef) upper 95%": [hi], "p": [0.01]}, index=pd.Index(["group"], name="covariate"))
        return self

    monkeypatch.setattr(CoxPHFitter, "fit", fit)
    monkeypatch.setattr(CoxPHFitter, "summary", property(lambda self: self._fake_summary), raising=False)


def _df():
    import pandas as pd

    return pd.DataFrame({"t": [1.0, 2.0, 3.0, 4.0], "e": [1, 1, 0, 1], "group": [0.0, 1.0, 0.0, 1.0]})


def test_cox_group_fit_passes_the_strict_stopping_rule(monkeypatch):
    from riskfm.evaluate.survival import _cox_group_fit

    seen = {}
    _fake_cox(monkeypatch, seen=seen)
    s, messages = _cox_group_fit(_df())
    assert s is not None and s["coef"] == 0.5 and messages == []
    assert seen == {"duration_col": "t", "event_col": "e", "fit_options": {"precision": 1e-20, "r_precision": 0.0},
                    "columns": ["t", "e", "group"]}


@pytest.mark.parametrize("exc_type", ["ConvergenceError", "LinAlgError", "ValueError", "ZeroDivisionError"])
def test_cox_group_fit_failures_are_not_estimable_with_every_message(monkeypatch, exc_type):
    from lifelines.exceptions import ConvergenceError

    from riskfm.evaluate.survival import _cox_group_fit

    exc = {"ConvergenceError": ConvergenceError, "LinAlgError": np.linalg.LinAlgError, "ValueError": ValueError,
           "ZeroDivisionError": ZeroDivisionError}[exc_type]("it broke. details")
    _fake_cox(monkeypatch, warn="first warning", exc=exc)
    s, messages = _cox_group_fit(_df())
    assert s is None and messages == ["first warning", "it broke. details"]


@pytest.mark.parametrize(("kwargs", "ok"), [
    ({"warn": "Newton-Raphson: norm(delta) large"}, False),
    ({"warn": "Newton-Raphson failed to converge"}, False),
    ({"warn": "the fit did not converge"}, False),
    ({"warn": "an unrelated warning"}, True),
    ({"se": math.inf}, False),
    ({"se": math.nan}, False),
    ({"high": math.inf}, False),
    ({"low": 0.0}, False),
    ({"low": 1e-300}, True),
    ({"coef": 10.0}, True),
    ({"coef": -10.0}, True),
    ({"coef": 10.01}, False),
    ({"coef": -10.01}, False),
])
def test_cox_group_fit_rejects_diverged_or_unbounded_fits(monkeypatch, kwargs, ok):
    from riskfm.evaluate.survival import _cox_group_fit

    _fake_cox(monkeypatch, **kwargs)
    s, messages = _cox_group_fit(_df())
    assert (s is not None) == ok
    assert messages == ([kwargs["warn"]] if "warn" in kwargs else [])


def test_group_contrasts_warning_names_the_first_sentence_of_the_last_message(monkeypatch):
    t = np.array([1.0, 2, 3, 4, 5, 6, 7, 8])
    e = np.array([1, 0, 1, 1, 0, 1, 1, 1])
    g = np.array(["low", "high"] * 4)
    _fake_cox(monkeypatch, warn="early", exc=ValueError("last one. more text"))
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        res = group_contrasts(t, e, g)
    assert [str(w.message) for w in record] == [
        "Cox hazard ratio for group 'high' vs 'low' did not converge (last one); reported as not estimable"]
    # the warning points at the caller, not at survival.py (under mutmut its trampoline is one
    # more frame, so only the first check holds there)
    assert not record[0].filename.endswith(os.path.join("evaluate", "survival.py"))
    if "MUTANT_UNDER_TEST" not in os.environ:
        assert record[0].filename == __file__
    assert res.iloc[0]["not_estimable"] == SEPARATED
    _fake_cox(monkeypatch, coef=50.0)  # no message at all: an unbounded estimate
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        group_contrasts(t, e, g)
    assert [str(w.message) for w in record] == [
        "Cox hazard ratio for group 'high' vs 'low' did not converge (no finite estimate); reported as not estimable"]
    _fake_cox(monkeypatch, coef=0.3, se=0.1)
    row = group_contrasts(t, e, g).iloc[0]
    assert (row["hazard_ratio"], row["ci_low"], row["ci_high"], row["cox_p"], row["not_estimable"]) == (
        pytest.approx(math.exp(0.3)), pytest.approx(math.exp(0.3 - 0.196)), pytest.approx(math.exp(0.3 + 0.196)),
        0.01, "")
