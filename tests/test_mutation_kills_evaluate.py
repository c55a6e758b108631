"""Tests written for mutants of riskfm/evaluate that survived `make mutate` (docs/testing.md).

Each asserts what a user relies on: the error that names the argument, the edge a threshold
stops at, the columns and types of a result table, that a figure is drawn and saved.
"""

import math

import numpy as np
import pytest

from riskfm.evaluate import decision_curve
from riskfm.evaluate.calibration import (
    calibration,
    expected_calibration_error,
    fit_recalibration,
    logistic_fit,
    logit,
    spiegelhalter_z,
)
from riskfm.evaluate.guards import class_counts, estimable, is_missing, min_counts, not_estimable_text
from riskfm.evaluate.horizons import censor_at, target_horizon_days
from riskfm.evaluate.results import (
    Estimate,
    bootstrap_method,
    finite_or_none,
    flat_row,
    jsonable,
    make_ci,
    percentile_ci,
)
from riskfm.evaluate.risk_groups import reliability_table
from riskfm.evaluate.thresholds import (
    three_level_thresholds,
    threshold_at_sensitivity,
    threshold_at_specificity,
    threshold_metrics,
    youden_threshold,
)

Y = np.array([0, 0, 1, 1, 0, 1])
P = np.array([0.1, 0.4, 0.35, 0.8, 0.05, 0.6])


# ---- decision_curve -----------------------------------------------------------------------------

def test_decision_curve_errors_name_the_argument():
    with pytest.raises(ValueError, match=r"^p must be finite"):
        decision_curve([0, 1], [0.1, math.nan])
    with pytest.raises(ValueError, match=r"^thresholds must be finite"):
        decision_curve(Y, P, thresholds=[0.1, math.nan])
    with pytest.raises(ValueError, match=r"^y and p must have the same length, got 3, 2$"):
        decision_curve([0, 1, 1], [0.2, 0.3])
    with pytest.raises(ValueError, match=r"^y and p must have the same length, got 2, 3$"):
        decision_curve([0, 1], [0.2, 0.3, 0.4])
    with pytest.raises(ValueError, match=r"^y and p are empty$"):
        decision_curve([], [])


def test_decision_curve_of_one_patient_is_computed():
    dc = decision_curve([1], [0.3], thresholds=[0.2, 0.5])
    assert dc.n == 1 and dc.prevalence == 1.0
    # treated at 20% (a true positive: net benefit 1), not at 50% (0)
    assert dc.table["net_benefit"].tolist() == [1.0, 0.0]


@pytest.mark.parametrize("bad", [[0.5, 1.0], [0.0, 0.5], [1.5], [-0.1]])
def test_decision_curve_thresholds_must_lie_strictly_inside_0_1(bad):
    with pytest.raises(ValueError, match=r"^threshold probabilities must lie strictly between 0 and 1$"):
        decision_curve(Y, P, thresholds=bad)


def test_decision_curve_table_columns_and_treat_none():
    dc = decision_curve(Y, P, thresholds=[0.25, 0.5])
    assert list(dc.table.columns) == ["threshold", "net_benefit", "treat_all", "treat_none"]
    assert dc.table["treat_none"].dtype == np.float64 and dc.table["treat_none"].tolist() == [0.0, 0.0]
    assert dc.table["threshold"].tolist() == [0.25, 0.5]


def test_decision_curve_plot_draws_and_saves(tmp_path):
    dc = decision_curve(Y, P)
    fig = dc.plot()
    assert fig.axes and len(fig.axes[0].lines) >= 3  # model, treat all, treat none
    out = tmp_path / "dc.png"
    fig2 = dc.plot(out, title="MACE at 30 days")  # keywords reach the figure function
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and fig2.axes
    assert fig2.axes[0].get_title(loc="left") == "MACE at 30 days"  # the house style titles on the left


# ---- thresholds ---------------------------------------------------------------------------------

Y_T = np.array([0, 0, 0, 0, 1, 0, 1, 1, 0, 1, 1, 0, 1, 0, 1, 1, 0, 0, 1, 0])
P_T = np.linspace(0.02, 0.98, 20)


def test_threshold_metrics_estimates_carry_the_patient_counts():
    m = threshold_metrics(Y_T, P_T, 0.5, confidence=0.9)
    for name in ("sensitivity", "specificity", "ppv", "npv", "f1"):
        est = getattr(m, name)
        assert (est.n, est.n_pos, est.confidence) == (20, 9, 0.9), name
        assert est.method == ("Wilson" if name != "f1" else "parametric bootstrap (2000 resamples)")


def test_an_undefined_ppv_is_nan_with_no_interval_and_keeps_its_counts():
    m = threshold_metrics(Y_T, P_T, 0.99, confidence=0.9)  # nobody is called positive
    assert m.tp + m.fp == 0
    ppv = m.ppv
    assert isinstance(ppv.value, float) and math.isnan(ppv.value) and ppv.ci is None
    assert (ppv.method, ppv.n, ppv.n_pos, ppv.confidence) == ("Wilson", 20, 9, 0.9)


def test_threshold_metrics_default_seed_is_0_and_the_seed_matters():
    y = np.r_[np.zeros(40), np.ones(40)]
    p = np.r_[np.linspace(0, 0.7, 40), np.linspace(0.3, 1, 40)]
    default = threshold_metrics(y, p, 0.5).f1.ci
    assert default == threshold_metrics(y, p, 0.5, seed=0).f1.ci
    assert default != threshold_metrics(y, p, 0.5, seed=1).f1.ci


def test_threshold_metrics_refuses_a_nan_threshold_by_name():
    with pytest.raises(ValueError, match=r"^threshold is NaN$"):
        threshold_metrics(Y_T, P_T, math.nan)


def test_f1_is_zero_not_nan_when_nothing_is_found():
    # one positive missed, one negative called positive: TP 0, FP 1, FN 1 -> F1 = 0
    m = threshold_metrics([1, 0], [0.2, 0.9], 0.5)
    assert (m.tp, m.fp, m.fn) == (0, 1, 1)
    assert m.f1.value == 0.0


def test_f1_interval_of_a_single_missed_positive_is_zero_to_zero():
    # n_pos = 1 with sensitivity 0 and no false positive: every resample has F1 = 0 / 1 = 0
    m = threshold_metrics([1, 0, 0], [0.2, 0.1, 0.3], 0.5)
    assert (m.tp, m.fp, m.fn) == (0, 0, 1)
    assert m.f1.value == 0.0 and m.f1.ci == (0.0, 0.0)


@pytest.mark.parametrize("fn", [threshold_at_sensitivity, threshold_at_specificity])
@pytest.mark.parametrize("target", [0.0, -0.1, 1.000001, 1.5, 2.0])
def test_threshold_targets_outside_0_1_are_refused_by_name(fn, target):
    name = fn.__name__.rsplit("_", 1)[1]
    with pytest.raises(ValueError, match=rf"^{name} must be in \(0, 1\], got {target}$"):
        fn(Y_T, P_T, target)


def test_target_1_is_accepted():
    assert threshold_at_sensitivity(Y_T, P_T, 1.0) == P_T[Y_T == 1].min()


def test_threshold_at_specificity_when_only_the_highest_score_qualifies():
    y = np.array([1, 0, 1, 0, 1])
    p = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    # at 0.9 both negatives are below: specificity 1; at 0.8 one negative is positive: 0.5
    assert threshold_at_specificity(y, p, 0.75) == 0.9


def test_specificity_1_above_every_score_is_the_next_float_above_the_maximum():
    y = np.array([1, 0, 1, 0])
    p = np.array([0.3, 0.9, 0.2, 0.1])  # the highest score is a negative
    t = threshold_at_specificity(y, p, 1.0)
    assert t == np.nextafter(0.9, np.inf) and t > 0.9
    m = threshold_metrics(y, p, t)
    assert m.fp == 0 and m.tp == 0


def test_three_level_defaults_are_90_percent_sensitivity_and_specificity():
    y = np.r_[np.zeros(50), np.ones(50)]
    p = np.r_[np.linspace(0, 0.6, 50), np.linspace(0.4, 1, 50)]
    assert three_level_thresholds(y, p) == (threshold_at_sensitivity(y, p, 0.9),
                                            threshold_at_specificity(y, p, 0.9))


def test_three_level_refuses_equal_cut_offs_with_the_whole_message():
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.2, 0.8, 0.9])  # perfectly separated: both targets met at 0.8
    assert threshold_at_sensitivity(y, p, 0.9) == threshold_at_specificity(y, p, 0.9) == 0.8
    with pytest.raises(ValueError) as err:
        three_level_thresholds(y, p)
    assert str(err.value) == (
        "sensitivity-0.9 cut-off 0.8 is not below the specificity-0.9 cut-off 0.8: one threshold meets "
        "both targets, so there is no intermediate group (raise the targets or use a single threshold)")


def test_youden_threshold_on_a_worked_example():
    # J at 0.8: 1/2 + 1 - 1 = 0.5; at 0.6: 1 + 1/2 - 1 = 0.5; tie -> the highest threshold
    assert youden_threshold([1, 0, 1, 0], [0.8, 0.6, 0.6, 0.1]) == 0.8


def test_a_target_within_1e_12_above_a_reachable_rate_counts_as_reached():
    # Targets written as decimals (0.9) and rates computed as k / n can differ in the last bits;
    # the rules treat a rate within 1e-12 below the target as reaching it.
    y = np.array([1, 1, 0, 0])
    p = np.array([0.9, 0.4, 0.6, 0.1])
    target = 0.5 + 1e-12
    assert target - 1e-12 == 0.5
    assert threshold_at_sensitivity(y, p, target) == threshold_at_sensitivity(y, p, 0.5) == 0.9
    assert threshold_at_specificity(y, p, target) == threshold_at_specificity(y, p, 0.5) == 0.4


# ---- calibration --------------------------------------------------------------------------------

RNG_C = np.random.default_rng(7)
P_C = RNG_C.uniform(0.02, 0.98, 300)
Y_C = (RNG_C.random(300) < P_C ** 1.5).astype(int)


def test_ece_defaults_to_10_uniform_bins():
    default = expected_calibration_error(Y_C, P_C)
    assert default == expected_calibration_error(Y_C, P_C, n_bins=10, strategy="uniform")
    assert default != expected_calibration_error(Y_C, P_C, n_bins=11)


def test_recalibration_defaults_to_platt_and_records_its_fit_size():
    rec = fit_recalibration(Y_C, P_C)
    assert rec.method == "platt" and rec.n_fit == 300


def test_recalibration_to_dict_is_plain_json():
    platt = fit_recalibration(Y_C, P_C, "platt")
    assert platt.to_dict() == {"method": "platt", "n_fit": 300,
                               "params": {"a": platt.params["a"], "b": platt.params["b"]}}
    assert all(type(v) is float for v in platt.to_dict()["params"].values())
    iso = fit_recalibration(Y_C, P_C, "isotonic").to_dict()
    assert set(iso) == {"method", "n_fit", "params"} and set(iso["params"]) == {"x", "y"}
    assert isinstance(iso["params"]["x"], list) and all(type(v) is float for v in iso["params"]["x"])
    temp = fit_recalibration(Y_C, P_C, "temperature").to_dict()
    assert type(temp["params"]["temperature"]) is float


def test_recalibration_errors_name_the_problem():
    with pytest.raises(ValueError, match=r"^recalibration needs both outcomes in the fitting set$"):
        fit_recalibration([1, 1, 1], [0.2, 0.5, 0.9])
    rec = fit_recalibration(Y_C, P_C)
    with pytest.raises(ValueError, match=r"^p must be finite"):
        rec.transform([0.1, math.nan])


def test_logistic_fit_errors_say_why():
    with pytest.raises(ValueError, match=r"^logistic fit needs both outcomes \(0 and 1\); all outcomes are equal$"):
        logistic_fit(np.array([1.0, 1.0, 1.0]), None)
    with pytest.raises(ValueError, match=r"^logistic fit did not converge \(perfect separation\?\)$"):
        logistic_fit(np.array([0.0, 0.0, 1.0, 1.0]), np.array([1.0, 2.0, 3.0, 4.0]))
    with pytest.raises(ValueError, match=r"^logistic fit did not converge \(perfect separation\?\)$"):
        logistic_fit(Y_C.astype(float), logit(P_C), max_iter=1)  # the iteration limit, said the same way


def test_calibration_defaults_bins_and_dict(tmp_path):
    res = calibration(Y_C, P_C)
    assert res.ece == calibration(Y_C, P_C, n_bins=10).ece != calibration(Y_C, P_C, n_bins=11).ece
    assert res.to_dict()["bins"] == len(res.table) == 10
    out = tmp_path / "cal.png"
    res.plot(out)
    assert out.is_file() and out.stat().st_size > 0


def test_calibration_with_one_event_is_computed_and_with_none_is_refused():
    y = np.zeros(40, int)
    y[5] = 1
    p = np.linspace(0.01, 0.3, 40)
    assert calibration(y, p).n_pos == 1
    with pytest.raises(ValueError, match=r"^calibration needs both outcomes; got 0 events in 40 patients$"):
        calibration(np.zeros(40, int), p)


def test_quantile_bins_never_fall_below_two():
    res = calibration(Y_C, P_C, strategy="quantile", min_bin_size=200)  # 300 // 200 = 1 -> 2 bins
    assert len(res.table) == 2


def test_spiegelhalter_is_nan_when_its_variance_is_zero():
    z, pval = spiegelhalter_z([0, 1, 1], [0.5, 0.5, 1.0])  # (1 - 2p)^2 p (1 - p) = 0 for p in {0.5, 1}
    assert math.isnan(z) and math.isnan(pval)


def test_calibration_estimates_carry_method_counts_and_confidence():
    res = calibration(Y_C, P_C, confidence=0.9)
    assert res.confidence == 0.9
    for est in (res.intercept, res.slope):
        assert (est.method, est.n, est.n_pos, est.confidence) == ("Wald", 300, int(Y_C.sum()), 0.9)
    assert np.array_equal(res.y, Y_C) and np.array_equal(res.p, P_C)
    ref = reliability_table(Y_C, P_C, n_bins=10, strategy="uniform", confidence=0.9)
    assert np.allclose(res.table[["ci_low", "ci_high"]].to_numpy(), ref[["ci_low", "ci_high"]].to_numpy(),
                       rtol=0, atol=0, equal_nan=True)


def test_logit_computes_in_float64_whatever_the_input_dtype():
    p32 = np.array([0.1, 0.3, 0.7], dtype=np.float32)
    out = logit(p32)
    assert out.dtype == np.float64
    p64 = p32.astype(np.float64)
    assert np.array_equal(out, np.log(p64) - np.log1p(-p64))


@pytest.mark.parametrize("method", ["platt", "temperature", "isotonic"])
def test_every_recalibrator_names_its_method_and_fit_size(method):
    rec = fit_recalibration(Y_C, P_C, method)
    assert rec.method == method and rec.n_fit == 300 and rec.to_dict()["method"] == method


def test_temperature_search_stops_at_exp_5():
    # Predictions that rank patients backwards: the likelihood keeps improving as T flattens them
    # towards 0.5, so the fit stops at the upper end of the search, T = e^5 (about 148).
    hot = fit_recalibration([0, 1, 0, 1], [0.9, 0.1, 0.8, 0.2], "temperature").params["temperature"]
    assert hot == pytest.approx(math.exp(5.0), rel=1e-6)


# ---- horizons -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("target", "days"), [
    ("mace_30d", 30.0), ("mace_1d", 1.0), ("event_30days", 30.0), ("x_6w", 42.0), ("x_2wk", 14.0),
    ("death_1y", 365.0), ("death_2years", 730.0), ("event_12m", 365.0), ("event_3mo", 91.0),
    ("event_6months", 182.0), ("risk_score", None), ("mace", None), ("mace_30", None),
])
def test_target_horizon_from_the_name(target, days):
    assert target_horizon_days(target) == days


def test_target_horizon_override_wins_only_for_its_target():
    assert target_horizon_days("mace_30d", {"mace_30d": 28}) == 28.0
    assert target_horizon_days("mace_30d", {"other_1y": 28}) == 30.0
    assert target_horizon_days("risk_score", {"risk_score": 90}) == 90.0
    assert target_horizon_days("mace_30d", {}) == 30.0


def test_censor_at_returns_floats_and_keeps_an_event_on_the_horizon_day():
    t, e = censor_at([10, 30, 31, 400], [1, 1, 1, 0], None)
    assert t.dtype == np.float64 and e.dtype == np.float64
    assert t.tolist() == [10.0, 30.0, 31.0, 400.0] and e.tolist() == [1.0, 1.0, 1.0, 0.0]
    t, e = censor_at([10, 30, 31, 400], [1, 1, 1, 0], 30)
    assert t.dtype == np.float64 and e.dtype == np.float64
    assert t.tolist() == [10.0, 30.0, 30.0, 30.0] and e.tolist() == [1.0, 1.0, 0.0, 0.0]
    t, e = censor_at([0.2, 0.7], [1, 1], 0.5)  # a horizon below one day is allowed
    assert t.tolist() == [0.2, 0.5] and e.tolist() == [1.0, 0.0]


@pytest.mark.parametrize("bad", [0, 0.0, -1, math.nan])
def test_censor_at_refuses_a_horizon_that_is_not_positive(bad):
    with pytest.raises(ValueError, match=rf"^horizon_days must be > 0, got {bad!r}$"):
        censor_at([1.0], [1], bad)


# ---- guards (the small-sample rule) -------------------------------------------------------------

def test_min_counts_sources_in_order_explicit_spec_default():
    assert min_counts() == (10, 10)
    assert min_counts({"min_events": 5}) == (5, 10)
    assert min_counts({"min_events": 5, "min_nonevents": 7}) == (5, 7)
    assert min_counts(type("Spec", (), {"min_events": 3, "min_nonevents": 4})()) == (3, 4)
    assert min_counts(object()) == (10, 10)
    assert min_counts({"min_events": 5}, min_events=2, min_nonevents=1) == (2, 1)
    assert min_counts(min_events=1.0) == (1, 10) and type(min_counts(min_events=1.0)[0]) is int


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"min_events": 0}, "min_events must be an integer >= 1, got 0"),
    ({"min_events": 2.5}, "min_events must be an integer >= 1, got 2.5"),
    ({"min_nonevents": -1}, "min_nonevents must be an integer >= 1, got -1"),
])
def test_min_counts_refuses_non_integers_and_values_below_1(kwargs, message):
    with pytest.raises(ValueError) as err:
        min_counts(**kwargs)
    assert str(err.value) == message


def test_class_counts_ignores_unknown_outcomes():
    assert class_counts([1, 0, np.nan, 1.0, 0.0]) == (4, 2)
    assert class_counts([True, False, False]) == (3, 1)
    assert class_counts([[1, 0], [np.nan, 1]]) == (3, 2)
    assert class_counts([]) == (0, 0)
    assert class_counts([1, None, 0]) == (2, 1)  # an object column (pandas) with None for unknown


def test_estimable_names_every_shortfall_with_counts_at_the_exact_floor():
    assert estimable([0] * 10 + [1] * 10) is None
    assert estimable([0] * 10 + [1] * 9) == "9 events < 10"
    assert estimable([0] * 29 + [1]) == "1 event < 10"
    assert estimable([0] * 9 + [1] * 10) == "9 non-events < 10"
    assert estimable([0] + [1] * 10) == "1 non-event < 10"
    assert estimable([0] * 3 + [1] * 4) == "4 events < 10, 3 non-events < 10"
    assert estimable([0] * 3 + [1] * 4, min_events=4, min_nonevents=3) is None
    assert estimable([0] * 3 + [1] * 4, {"min_events": 5, "min_nonevents": 3}) == "4 events < 5"
    assert estimable([]) == estimable([np.nan]) == "no patients with a known outcome"


def test_not_estimable_text_and_missing_values():
    assert not_estimable_text("1 event < 10") == "n/e (1 event < 10)"
    assert not_estimable_text(None) == not_estimable_text("") == "n/e"
    assert is_missing(None) and is_missing(float("nan")) and is_missing(np.float32("nan"))
    assert not is_missing(0) and not is_missing(0.5) and not is_missing("abc") and not is_missing([1])


# ---- results (one result shape, one interval spelling) ------------------------------------------

def test_finite_or_none_and_make_ci():
    assert finite_or_none(None) is None and finite_or_none(math.nan) is None
    assert finite_or_none(math.inf) is None and finite_or_none(-math.inf) is None
    assert finite_or_none(np.int64(3)) == 3.0 and type(finite_or_none(np.int64(3))) is float
    assert make_ci(None, 1) is None and make_ci(0, None) is None
    assert make_ci(math.nan, 1) is None and make_ci(0, math.nan) is None
    ci = make_ci(np.float32(0.25), 1)
    assert ci == (0.25, 1.0) and all(type(v) is float for v in ci)


def test_percentile_ci_uses_the_finite_resamples_only():
    v = [0.1, 0.2, math.nan, 0.3, math.inf, 0.4, -math.inf, 0.5]
    finite = np.array([0.1, 0.2, 0.3, 0.4, 0.5])
    alpha = 1.0 - 0.9
    assert percentile_ci(v, 0.9) == tuple(np.quantile(finite, [alpha / 2.0, 1.0 - alpha / 2.0]))
    assert percentile_ci([math.nan, math.inf], 0.95) is None and percentile_ci([], 0.95) is None
    low, high = percentile_ci(np.arange(101.0).reshape(1, -1), 0.5)  # any shape is flattened
    assert (low, high) == (25.0, 75.0) and type(low) is float


def test_bootstrap_method_names():
    assert bootstrap_method(500) == "stratified bootstrap (500 resamples)"
    assert bootstrap_method(200.0, "parametric") == "parametric bootstrap (200 resamples)"
    assert bootstrap_method(100, "") == "bootstrap (100 resamples)"


def test_jsonable_converts_every_supported_type(tmp_path):
    import pandas as pd

    est = Estimate(0.8, (0.7, 0.9), "DeLong", 10, 3)
    out = jsonable({1: est, "df": pd.DataFrame({"a": [1, 2], 3: [np.nan, 0.5]}),
                    "t": (np.int32(1), np.float32(2.5)), "arr": np.array([[1, 2]]), "s": pd.Series([True]),
                    "none": None, "b": np.bool_(True), "s2": "x", "f": np.float64(math.inf), "p": tmp_path})
    assert out["1"] == est.to_dict()
    assert out["df"] == {"a": [1, 2], "3": [None, 0.5]}
    assert out["t"] == [1, 2.5] and type(out["t"][0]) is int
    assert out["arr"] == [[1, 2]] and out["s"] == [True]
    assert out["none"] is None and out["b"] is True and out["s2"] == "x" and out["f"] is None
    assert out["p"] == str(tmp_path)
    thing = object()
    assert jsonable(thing) is thing  # anything else is left as it is


def test_flat_row_spells_every_interval_as_low_and_high():
    row = flat_row({
        "auroc": {"value": 0.8, "ci": [0.7, 0.9], "method": "DeLong", "n": 10},
        "auprc": {"value": None, "ci": None, "not_estimable": "1 event < 10"},
        "ci": [0.1, 0.2], "slope_ci": None, "loa": (-1, 1), "bins": [1, 2, 3],
        "survival": {"n": 3, "c_ci": [0.5, 0.6]}, "name": "x",
    })
    assert row == {
        "auroc": 0.8, "auroc_ci_low": 0.7, "auroc_ci_high": 0.9,
        "auprc": None, "auprc_ci_low": None, "auprc_ci_high": None, "auprc_not_estimable": "1 event < 10",
        "ci_low": 0.1, "ci_high": 0.2, "slope_ci_low": None, "slope_ci_high": None,
        "loa_low": -1, "loa_high": 1, "bins": [1, 2, 3],
        "survival_n": 3, "survival_c_ci_low": 0.5, "survival_c_ci_high": 0.6, "name": "x",
    }


def test_estimate_dict_and_row():
    est = Estimate(0.8, (0.7, 0.9), "DeLong", 10, 3, 0.9)
    d = est.to_dict()
    assert d["value"] == 0.8 and d["ci"] == [0.7, 0.9] and d["method"] == "DeLong" and d["n"] == 10
    assert d["n_pos"] == 3 and d["confidence"] == 0.9 and "not_estimable" not in d
    assert est.to_row()["ci_low"] == 0.7 and est.to_row()["ci_high"] == 0.9
    missing = Estimate.missing("1 event < 10", "DeLong", 30, 1)
    assert missing.to_dict()["not_estimable"] == "1 event < 10" and missing.to_dict()["value"] is None


def test_estimate_values_are_floats_and_missing_defaults():
    assert type(Estimate(1, None, "none", 3).value) is float and Estimate(1, None, "none", 3).value == 1.0
    assert math.isnan(Estimate(None, None, "none", 3).value)
    assert Estimate.missing("1 event < 10", "DeLong", 30, 1).confidence == 0.95


def test_jsonable_keeps_bools_and_percentile_ci_computes_in_float64():
    assert jsonable(True) is True and jsonable(False) is False
    v32 = np.linspace(0, 1, 11, dtype=np.float32)
    assert percentile_ci(v32, 0.9) == percentile_ci(v32.astype(np.float64), 0.9)


def test_result_to_dict_leaves_out_private_fields_and_an_unset_reason_only():
    from dataclasses import dataclass

    from riskfm.evaluate.results import Result

    @dataclass
    class Example(Result):
        value: float
        not_estimable: str | None = None
        after: int = 7
        _hidden: int = 1

    assert Example(0.5).to_dict() == {"value": 0.5, "after": 7}
    assert Example(0.5, "1 event < 10").to_dict() == {"value": 0.5, "not_estimable": "1 event < 10", "after": 7}
    assert "_y" not in calibration(Y_C, P_C).to_dict()
