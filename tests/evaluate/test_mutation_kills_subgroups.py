"""Tests written for mutants of riskfm/evaluate/subgroups.py that survived mutmut (docs/testing.md).

Point values are compared with scikit-learn (Brier score, AUROC, average precision, confusion
matrix), the Wilson intervals of the rates with statsmodels, the bootstrap intervals with a
stratified percentile bootstrap written out here from its definition, and the bins with
hand-worked quantiles.
"""

import logging
import math
import re
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, brier_score_loss, confusion_matrix, roc_auc_score
from statsmodels.stats.proportion import proportion_confint

from riskfm.evaluate.discrimination import roc_auc
from riskfm.evaluate.results import Estimate
from riskfm.evaluate.subgroups import (
    METRICS,
    _bootstrap_ci,
    _rate,
    bin_numeric,
    metric_estimate,
    quantile_edges,
    subgroup_attributes,
    subgroup_metrics,
)

LE, DASH = "\u2264", "\u2013"
RESERVED_NOTE = "are not subgroups (identifiers, image paths, outcomes and follow-up); left out"


def full(text: str) -> str:
    return "^" + re.escape(text) + "$"


def data(n: int = 60, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Labels with both classes and scores that separate them imperfectly."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.4).astype(int)
    y[:2] = [0, 1]
    p = np.clip(0.35 + 0.3 * y + rng.normal(0, 0.2, n), 0.01, 0.99)
    return y, p

def rate_counts(name: str, y: np.ndarray, call: np.ndarray) -> tuple[int, int]:
    """(numerator, denominator) of a rate at a threshold, from scikit-learn's confusion matrix."""
    tn, fp, fn, tp = confusion_matrix(y, call).ravel()
    return {"sensitivity": (tp, tp + fn), "specificity": (tn, tn + fp), "ppv": (tp, tp + fp),
            "npv": (tn, tn + fn)}[name]


def reference_bootstrap(y, p, stat, n_boot, seed, confidence):
    """Stratified percentile bootstrap from its definition: resample positives and negatives apart."""
    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    vals = []
    for _ in range(n_boot):
        idx = np.concatenate([rng.choice(pos, len(pos)), rng.choice(neg, len(neg))])
        vals.append(stat(y[idx], p[idx]))
    alpha = 1 - confidence
    return tuple(np.quantile(vals, [alpha / 2, 1 - alpha / 2]))


def brier_ref(y, p):
    return float(np.mean((np.asarray(p, float) - np.asarray(y, float)) ** 2))


# --- the stratified bootstrap -------------------------------------------------------------------

def test_bootstrap_keeps_each_class_count_and_pairs_scores_with_labels():
    y = np.array([1, 0, 0, 1, 0, 0, 0, 1, 0, 0], float)
    p = np.where(y == 1, 0.9, 0.1) + np.arange(10) * 1e-3  # a score says which patient it came from
    seen = []

    def record(yb, pb):
        seen.append((yb.copy(), pb.copy()))
        return float(yb.sum()) + float(len(yb))

    ci = _bootstrap_ci(y, p, record, 40, 3, 0.9)
    assert len(seen) == 40
    for yb, pb in seen:
        assert len(yb) == 10 and yb.sum() == 3  # 3 events and 7 non-events in every resample
        assert set(np.round(pb[yb == 1], 3)) <= {0.9, 0.903, 0.907}
        assert set(np.round(pb[yb == 0], 3)) <= {0.101, 0.102, 0.104, 0.105, 0.106, 0.108, 0.109}
    assert ci == (13.0, 13.0)
    # not one patient drawn over and over: the draws vary
    assert len({tuple(pb) for _, pb in seen}) > 30


def test_bootstrap_interval_is_the_percentile_interval_and_seeded():
    y, p = data(40)
    y = y.astype(float)
    ci = _bootstrap_ci(y, p, brier_ref, 60, 7, 0.9)
    assert ci == pytest.approx(reference_bootstrap(y, p, brier_ref, 60, 7, 0.9), rel=1e-12)
    assert _bootstrap_ci(y, p, brier_ref, 60, 7, 0.9) == ci  # same seed, same interval
    assert _bootstrap_ci(y, p, brier_ref, 60, 8, 0.9) != ci


# --- the Brier score in METRICS ---------------------------------------------------------------------

def test_brier_without_an_interval():
    y, p = data(30)
    est = METRICS["brier"][0](y, p, ci=None, confidence=0.8)
    assert est.value == pytest.approx(brier_score_loss(y, p), rel=1e-12)
    assert (est.ci, est.method, est.n, est.n_pos, est.confidence) == (None, "none", 30, int(y.sum()), 0.8)
    assert isinstance(est.n_pos, int)
    assert METRICS["brier"][1] is False  # lower is better


def test_brier_interval_and_its_defaults():
    y, p = data(30)
    est = METRICS["brier"][0](y, p)  # defaults: bootstrap, 500 resamples, seed 0, 95 %
    assert est.value == pytest.approx(brier_score_loss(y, p), rel=1e-12)
    assert est.method == "stratified bootstrap (500 resamples)"
    assert (est.n, est.n_pos, est.confidence) == (30, int(y.sum()), 0.95)
    assert est.ci == pytest.approx(reference_bootstrap(y.astype(float), p, brier_ref, 500, 0, 0.95), rel=1e-12)
    other = METRICS["brier"][0](y, p, n_boot=40, seed=5, confidence=0.8)
    assert other.method == "stratified bootstrap (40 resamples)" and other.confidence == 0.8
    assert other.ci == pytest.approx(reference_bootstrap(y.astype(float), p, brier_ref, 40, 5, 0.8), rel=1e-12)


# --- the rates at a threshold -----------------------------------------------------------------------

@pytest.mark.parametrize("name", ["sensitivity", "specificity", "ppv", "npv"])
def test_rates_match_the_confusion_matrix_and_wilson(name):
    y, p = data(50)
    count, nobs = rate_counts(name, y, p >= 0.5)
    fn_rate = METRICS[name][0]
    assert METRICS[name][1] is True
    est = fn_rate(y, p, threshold=0.5)  # default confidence 0.95
    assert est.value == pytest.approx(count / nobs, rel=1e-12)
    assert est.ci == pytest.approx(proportion_confint(count, nobs, alpha=0.05, method="wilson"), rel=1e-9)
    assert (est.method, est.confidence, est.n, est.n_pos) == ("Wilson", 0.95, 50, int(y.sum()))
    est90 = fn_rate(y, p, threshold=0.5, confidence=0.9, seed=3)
    assert est90.ci == pytest.approx(proportion_confint(count, nobs, alpha=0.1, method="wilson"), rel=1e-9)
    assert est90.confidence == 0.9
    # through metric_estimate the threshold is passed on
    via = metric_estimate(name, y, p, threshold=0.6, confidence=0.9)
    count, nobs = rate_counts(name, y, p >= 0.6)
    assert via.value == pytest.approx(count / nobs, rel=1e-12)
    assert via.ci == pytest.approx(proportion_confint(count, nobs, alpha=0.1, method="wilson"), rel=1e-9)


@pytest.mark.parametrize("name", ["sensitivity", "specificity", "ppv", "npv"])
def test_rate_factory(name):
    # METRICS' rate functions are made by _rate at import; this calls the factory itself
    y, p = data(50)
    count, nobs = rate_counts(name, y, p >= 0.4)
    rate = _rate(name)
    est = rate(y, p, threshold=0.4)
    assert est.value == pytest.approx(count / nobs, rel=1e-12)
    assert est.ci == pytest.approx(proportion_confint(count, nobs, alpha=0.05, method="wilson"), rel=1e-9)
    assert (est.method, est.confidence, est.n, est.n_pos) == ("Wilson", 0.95, 50, int(y.sum()))
    est = rate(y, p, threshold=0.4, confidence=0.8, n_boot=7, seed=2)
    assert est.ci == pytest.approx(proportion_confint(count, nobs, alpha=0.2, method="wilson"), rel=1e-9)
    assert est.confidence == 0.8
    with pytest.raises(ValueError, match=full(f"metric {name!r} needs a threshold")):
        rate(y, p)


@pytest.mark.parametrize("name", ["sensitivity", "specificity", "ppv", "npv"])
def test_rates_need_a_threshold(name):
    y, p = data(20)
    with pytest.raises(ValueError, match=full(f"metric {name!r} needs a threshold")):
        METRICS[name][0](y, p)
    with pytest.raises(ValueError, match=full(f"metric {name!r} needs a threshold")):
        metric_estimate(name, y, p)


# --- metric_estimate --------------------------------------------------------------------------------

def test_metric_estimate_unknown_metric():
    with pytest.raises(ValueError, match=full("unknown metric 'f2'; choose from ['auprc', 'auroc', 'brier', "
                                              "'npv', 'ppv', 'sensitivity', 'specificity']")):
        metric_estimate("f2", [0, 1], [0.2, 0.8])


def test_metric_estimate_defaults_and_settings_reach_the_metric():
    y, p = data(30)
    est = metric_estimate("brier", y, p)
    assert est.value == pytest.approx(brier_score_loss(y, p), rel=1e-12)
    assert (est.method, est.confidence) == ("stratified bootstrap (500 resamples)", 0.95)
    assert est.ci == pytest.approx(reference_bootstrap(y.astype(float), p, brier_ref, 500, 0, 0.95), rel=1e-12)
    est = metric_estimate("brier", y, p, n_boot=30, seed=4, confidence=0.8)
    assert (est.method, est.confidence) == ("stratified bootstrap (30 resamples)", 0.8)
    assert est.ci == pytest.approx(reference_bootstrap(y.astype(float), p, brier_ref, 30, 4, 0.8), rel=1e-12)
    auc = metric_estimate("auroc", y, p, n_boot=30, seed=4, confidence=0.8)
    assert auc.value == pytest.approx(roc_auc_score(y, p), rel=1e-12)
    assert (auc.method, auc.confidence, auc.n) == ("stratified bootstrap (30 resamples)", 0.8, 30)
    ap = metric_estimate("auprc", y, p, n_boot=30, seed=4)
    assert ap.value == pytest.approx(average_precision_score(y, p), rel=1e-12)
    assert ap.method == "stratified bootstrap (30 resamples)"


# --- quantile cut points ----------------------------------------------------------------------------

def test_quantile_edges_default_four_bins_integer_data():
    # quantiles 124.75, 149.5, 174.25 of 100..199: integer data gets integer cut points (round half
    # to even), not the 2-significant-digit 120, 150, 170
    assert quantile_edges(np.arange(100, 200)) == [125.0, 150.0, 174.0]
    assert quantile_edges(np.arange(100, 200), 2) == [150.0]


def test_quantile_edges_fewest_significant_digits_for_continuous_data():
    x = np.linspace(0.013, 0.987, 101)  # quantiles 0.2565, 0.5, 0.7435
    assert quantile_edges(x) == [0.26, 0.5, 0.74]
    # quantiles 1.0315, 1.0445, 1.28525: 2 digits merge the first two (1.0, 1.0), 3 keep them apart
    x = np.r_[np.full(10, 1.0), np.full(10, 1.042), np.full(10, 1.047), np.full(10, 2.0)]
    assert quantile_edges(x) == [1.03, 1.04, 1.29]


def test_quantile_edges_more_than_six_digits_stay_unrounded():
    # 41 values: the quartiles are exactly x[10], x[20], x[30]; the first two agree to 6 digits
    x = np.r_[np.full(10, 1.0), np.full(10, 1.2345671), np.full(10, 1.2345681), np.full(10, 2.5), 3.0]
    assert quantile_edges(x) == [1.2345671, 1.2345681, 2.5]


def test_quantile_edges_at_zero_no_warning():
    x = np.array([-0.75, -0.25, 0.0, 0.0, 0.0, 0.25, 0.75])
    # lifelines' Kaplan-Meier fitter switches numpy's divide warnings off for the whole process
    # (np.seterr); switch them on here so that a log10(0) warning is seen whatever ran before
    with warnings.catch_warnings(), np.errstate(divide="warn"):
        warnings.simplefilter("error")  # log10(0) must not warn
        assert quantile_edges(x, 2) == [0.0]
        assert quantile_edges(np.r_[x, 1.5], 4) == [-0.062, 0.0, 0.38]  # -0.0625, 0, 0.375


def test_quantile_edges_keep_a_cut_at_the_minimum_not_at_the_maximum():
    # 50 zeros then 1..50: the first quartile is 0, the minimum; "<=0" is a real band
    assert quantile_edges(np.r_[np.zeros(50), np.arange(1, 51)]) == [0.0, 25.0]
    # 1..50 then 50 x 100: the third quartile is 100, the maximum; ">100" would be empty
    assert quantile_edges(np.r_[np.arange(1, 51), np.full(50, 100)]) == [26.0, 75.0]


def test_quantile_edges_input_handling():
    assert quantile_edges(["1", "x", 2, 3, 4, 5, 6, 7, 8]) == [3.0, 4.0, 6.0]  # text that is no number is ignored
    assert quantile_edges([5.0]) == []
    assert quantile_edges(pd.Series([1.5, None, 2.5, 3.5]), 2) == [2.5]
    with pytest.raises(ValueError, match=full("no numeric values to bin")):
        quantile_edges(["a", None])


# --- bin_numeric ------------------------------------------------------------------------------------

def test_bin_numeric_given_edges_right_closed_and_sorted():
    idx = ["p1", "p2", "p3", "p4", "p5", "p6"]
    x = pd.Series([40, 50, 50.5, 65, 65.5, None], index=idx)
    out = bin_numeric(x, [65, 50], name="age")
    assert list(out.cat.categories) == [f"{LE}50", f"50{DASH}65", ">65"]
    assert out.cat.ordered
    assert list(out.index) == idx
    assert out.tolist()[:5] == [f"{LE}50", f"{LE}50", f"50{DASH}65", f"50{DASH}65", ">65"]
    assert pd.isna(out.iloc[5])
    # given edges keep their empty bands (the user asked for them)
    out = bin_numeric([1, 2, 3], [10, 20, 30.5])
    assert list(out.cat.categories) == [f"{LE}10", f"10{DASH}20", f"20{DASH}30.5", ">30.5"]
    assert out.tolist() == [f"{LE}10"] * 3
    out = bin_numeric([-1e300, 7], [5])
    assert out.tolist() == [f"{LE}5", ">5"]


def test_bin_numeric_quantile_bands_default_four():
    out = bin_numeric(np.arange(100, 200))
    assert list(out.cat.categories) == [f"{LE}125", f"125{DASH}150", f"150{DASH}174", ">174"]
    assert out.value_counts(sort=False).tolist() == [26, 25, 24, 25]
    assert list(bin_numeric(np.arange(100, 200), n_quantiles=2).cat.categories) == [f"{LE}150", ">150"]
    out = bin_numeric(["1", "x", 2, 3, 4, 5, 6, 7, 8])
    assert pd.isna(out.iloc[1]) and out.iloc[0] == f"{LE}3"


def test_bin_numeric_drops_an_empty_quantile_band():
    x = [0.0] * 10 + [0.1, 0.3, 0.3, 0.5, 0.5, 0.8, 0.9, 1.5, 1.9, 2.9]
    assert quantile_edges(x) == [0.0, 0.05, 0.57]  # nothing lies in 0-0.05
    out = bin_numeric(x)
    assert list(out.cat.categories) == [f"{LE}0", f"0.05{DASH}0.57", ">0.57"]
    assert out.value_counts(sort=False).tolist() == [10, 5, 5]


def test_bin_numeric_constant_attribute_is_one_band():
    idx = ["a", "b", "c"]
    out = bin_numeric(pd.Series([2.5, None, 2.5], index=idx))
    assert list(out.index) == idx
    assert out.iloc[0] == "2.5" and out.iloc[2] == "2.5" and pd.isna(out.iloc[1])
    assert list(out.cat.categories) == ["2.5"]


def test_bin_numeric_without_numbers_names_the_attribute():
    with pytest.raises(ValueError, match=full("attribute 'value' has no numeric values to bin")):
        bin_numeric(["a", "b"])
    with pytest.raises(ValueError, match=full("attribute 'cac' has no numeric values to bin")):
        bin_numeric([None, "n/a"], [1.0], name="cac")
    assert bin_numeric([3.0], [1.0]).tolist() == [">1"]  # a single value is enough


# --- subgroup_attributes ----------------------------------------------------------------------------

def cov(**cols):
    n = len(next(iter(cols.values())))
    return pd.DataFrame({"patient_id": [f"p{i}" for i in range(n)], **cols})


def test_attributes_errors_name_the_table_and_the_problem():
    with pytest.raises(ValueError, match=full("covariates: covariates need a 'patient_id' column")):
        subgroup_attributes(pd.DataFrame({"sex": ["M", "F"]}))
    with pytest.raises(ValueError, match=full("manifest: covariates need a 'patient_id' column")):
        subgroup_attributes(pd.DataFrame({"sex": ["M", "F"]}), source="manifest")
    with pytest.raises(ValueError, match=full("n_quantiles (5) exceeds max_levels (4)")):
        subgroup_attributes(cov(sex=["M", "F"]), n_quantiles=5, max_levels=4)
    with pytest.raises(ValueError, match=full("evaluation spec: subgroups ['bmi'] are not covariate columns "
                                              "(available: ['sex', 'event'])")):
        subgroup_attributes(cov(sex=["M", "F"], event=[0, 1]), ["sex", "bmi"])
    with pytest.raises(ValueError, match=full("evaluation spec: subgroups ['event'] are reserved columns "
                                              "(identifiers, image paths, outcomes, follow-up) and cannot be "
                                              "subgroups; of the reserved columns only 'site' can")):
        subgroup_attributes(cov(sex=["M", "F"], event=[0, 1]), ["event"])


def test_attributes_too_many_levels_message_whole():
    with pytest.raises(ValueError, match=full(
            "covariates: covariate 'ward' has 3 levels, more than max_subgroup_levels (2); group it into fewer "
            "levels, raise max_subgroup_levels, or list the attributes to use in the spec's 'subgroups'")):
        subgroup_attributes(cov(ward=["a", "b", "c"]), max_levels=2, n_quantiles=2)


def test_attributes_default_columns_and_notes(caplog):
    table = cov(_row=[1, 2, 3, 4], sex=["M", "F", "F", "M"], event=[0, 1, 0, 1], mace_30d=[0, 0, 1, 1],
                empty=[None] * 4, one=["x", None, "x", "x"], site=["A", "A", "B", "B"])
    with caplog.at_level(logging.INFO, logger="riskfm.evaluate.subgroups"):
        out, notes = subgroup_attributes(table)
    assert list(out) == ["sex", "site"]
    assert notes == [
        f"covariates: reserved column(s) _row, event, mace_30d {RESERVED_NOTE}",
        "covariates: 'empty' has no values; left out",
        "covariates: 'one' has a single level; left out",
    ]
    assert [r.getMessage() for r in caplog.records] == [f"evaluate: {n}" for n in notes]
    assert list(out["sex"].index) == ["p0", "p1", "p2", "p3"]


def test_attributes_left_out_columns_do_not_stop_the_loop():
    table = cov(empty=[None, None, None], one=[1.0, 1.0, None], sex=["M", "F", "M"])
    out, notes = subgroup_attributes(table, ["empty", "one", "sex"], source="tbl")
    assert list(out) == ["sex"]
    assert notes == ["tbl: 'empty' has no values; left out", "tbl: 'one' has a single level; left out"]
    # a column with one value is not "no values"
    _, notes = subgroup_attributes(cov(one=[None, 2.0, None]))
    assert notes == ["covariates: 'one' has a single level; left out"]


def test_attributes_level_text():
    table = cov(grade=[1.0, 2.0, None, 2.0], dose=[1.5, 2.5, 1.5, None], flag=[True, False, True, True],
                ward=["a", None, "b", "a"])
    out, notes = subgroup_attributes(table)
    assert notes == []
    assert out["grade"].tolist() == ["1", "2", None, "2"]  # no spurious ".0"; missing stays None
    assert out["dose"].tolist() == ["1.5", "2.5", "1.5", None]
    assert out["flag"].tolist() == ["True", "False", "True", "True"]
    assert out["ward"].tolist() == ["a", None, "b", "a"]
    for s in out.values():
        assert all(v is None or type(v) is str for v in s)


def test_attributes_numbers_read_as_text_are_binned():
    table = cov(score=[str(v) for v in range(1, 21)])
    out, notes = subgroup_attributes(table)
    assert list(out["score"].cat.categories) == [f"{LE}6", f"6{DASH}10", f"10{DASH}15", ">15"]
    assert notes == [f"covariates: 'score' (20 values) cut into 4 quantile bins ({LE}6, 6{DASH}10, 10{DASH}15, >15)"]


def test_attributes_six_numeric_values_are_levels_seven_are_binned():
    out, _ = subgroup_attributes(cov(v=[1, 2, 3, 4, 5, 6] * 2))
    assert sorted(out["v"].unique()) == ["1", "2", "3", "4", "5", "6"]
    out, _ = subgroup_attributes(cov(v=[1, 2, 3, 4, 5, 6, 7] * 2), n_quantiles=2)
    assert list(out["v"].cat.categories) == [f"{LE}4", ">4"]


def test_attributes_given_bins_are_used_and_named_in_errors():
    out, notes = subgroup_attributes(cov(age=[40, 55, 70, 80, 45, 60, 66, 90]), bins={"age": [50, 65]})
    assert list(out["age"].cat.categories) == [f"{LE}50", f"50{DASH}65", ">65"]
    assert out["age"].tolist()[:3] == [f"{LE}50", f"50{DASH}65", ">65"]
    assert notes == []
    with pytest.raises(ValueError, match=full("attribute 'sex' has no numeric values to bin")):
        subgroup_attributes(cov(sex=["M", "F"]), bins={"sex": [1]})


# --- subgroup_metrics -------------------------------------------------------------------------------

def grouped(seed: int = 2):
    rng = np.random.default_rng(seed)
    n = 120
    y = np.r_[np.tile([0, 1], 30), np.zeros(60, int)]
    y[60:84] = 1
    p = np.clip(0.3 + 0.35 * y + rng.normal(0, 0.2, n), 0.01, 0.99)
    g = np.array(["b"] * 60 + ["a"] * 50 + [None] * 10, dtype=object)
    return y, p, g


def test_subgroup_metrics_auroc_rows_against_sklearn():
    y, p, g = grouped()
    df = subgroup_metrics(y, p, g, n_boot=40, seed=3, confidence=0.9)
    assert list(df.columns) == ["attribute", "level", "metric", "n", "n_pos", "value", "ci_low", "ci_high",
                                "method", "not_estimable"]
    assert df["level"].tolist() == ["All", "a", "b"]  # sorted; missing labels left out
    assert (df["attribute"] == "subgroup").all() and (df["metric"] == "auroc").all()
    for _, row in df.iterrows():
        m = np.ones(len(y), bool) if row["level"] == "All" else g == row["level"]
        assert (row["n"], row["n_pos"]) == (m.sum(), y[m].sum())
        assert row["value"] == pytest.approx(roc_auc_score(y[m], p[m]), rel=1e-12)
        ref = roc_auc(y[m], p[m], n_boot=40, seed=3, confidence=0.9)  # the settings reach the metric
        assert (row["ci_low"], row["ci_high"]) == pytest.approx(ref.ci, rel=1e-12)
        assert row["method"] == "stratified bootstrap (40 resamples)" and row["not_estimable"] == ""


def test_subgroup_metrics_defaults():
    y, p, g = grouped()
    df = subgroup_metrics(y, p, g, metric="brier")
    assert (df["attribute"] == "subgroup").all()
    assert (df["method"] == "stratified bootstrap (500 resamples)").all()
    m = g == "a"
    ref = reference_bootstrap(y[m].astype(float), p[m], brier_ref, 500, 0, 0.95)
    row = df[df["level"] == "a"].iloc[0]
    assert row["value"] == pytest.approx(brier_score_loss(y[m], p[m]), rel=1e-12)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx(ref, rel=1e-9)
    auc = subgroup_metrics(y, p, g, n_boot=20)
    assert (auc["metric"] == "auroc").all()
    assert auc["value"].iloc[0] == pytest.approx(roc_auc_score(y, p), rel=1e-12)


def test_subgroup_metrics_small_sample_rules():
    # level "a": 10 patients with 5 events; "b": 9 patients; "c": 12 patients, no event
    y = np.r_[np.tile([0, 1], 5), np.tile([0, 1], 4), 1, np.zeros(12, int)]
    p = np.linspace(0.05, 0.95, len(y))
    g = ["a"] * 10 + ["b"] * 9 + ["c"] * 12
    df = subgroup_metrics(y, p, g, metric="brier", n_boot=20)
    assert df["not_estimable"].tolist() == ["", "", "9 patients < 10", "single class (0 events of 12)"]
    assert df["value"].iloc[1] == pytest.approx(brier_score_loss(y[:10], p[:10]), rel=1e-12)
    assert np.isnan(df["value"].iloc[2]) and np.isnan(df["ci_low"].iloc[2]) and np.isnan(df["ci_high"].iloc[2])
    assert df["method"].iloc[2] == "" and df["n"].tolist() == [31, 10, 9, 12]
    df = subgroup_metrics(y, p, g, metric="brier", n_boot=20, min_n=9)
    assert df["not_estimable"].iloc[2] == ""
    all_pos = subgroup_metrics([1] * 10 + [0] * 10, p[:20], ["x"] * 10 + ["y"] * 10, metric="brier", n_boot=20)
    assert all_pos["not_estimable"].iloc[1] == "single class (10 events of 10)"
    # AUROC: the events/non-events rule of riskfm.evaluate.guards, not min_n
    auc = subgroup_metrics(y, p, g, n_boot=20)
    assert auc["not_estimable"].tolist() == ["", "5 events < 10, 5 non-events < 10",
                                             "5 events < 10, 4 non-events < 10", "0 events < 10"]
    auc = subgroup_metrics(y, p, g, n_boot=20, min_events=5, min_nonevents=4)
    assert auc["not_estimable"].tolist()[1:3] == ["", ""]
    assert auc["value"].iloc[1] == pytest.approx(roc_auc_score(y[:10], p[:10]), rel=1e-12)


def test_subgroup_metrics_rates_and_level_order():
    y, p, g = grouped()
    groups = pd.Series(pd.Categorical(g, categories=["z", "b", "a"]))
    df = subgroup_metrics(y, p, groups, metric="sensitivity", threshold=0.5, attribute="sex")
    assert df["level"].tolist() == ["All", "b", "a"]  # category order, unused "z" dropped
    assert (df["attribute"] == "sex").all()
    m = g == "b"
    tn, fp, fn, tp = confusion_matrix(y[m], p[m] >= 0.5).ravel()
    assert df["value"].iloc[1] == pytest.approx(tp / (tp + fn), rel=1e-12)
    assert (df["ci_low"].iloc[1], df["ci_high"].iloc[1]) == pytest.approx(
        proportion_confint(tp, tp + fn, alpha=0.05, method="wilson"), rel=1e-9)
    assert df["method"].iloc[1] == "Wilson"
    df = subgroup_metrics(y, p, g, metric="ppv", threshold=0.5, levels=["b", "q", "a"])
    assert df["level"].tolist() == ["All", "b", "a"]
    df = subgroup_metrics(y[:110], p[:110], [10] * 60 + [9] * 50, metric="npv", threshold=0.5)
    assert df["level"].tolist() == ["All", "10", "9"]  # sorted as text, named as text
    with pytest.raises(ValueError, match=full("metric 'npv' needs a threshold")):
        subgroup_metrics(y, p, g, metric="npv")


def test_subgroup_metrics_input_errors():
    y, p, g = grouped()
    with pytest.raises(ValueError, match=full("groups has 119 labels for 120 patients")):
        subgroup_metrics(y, p, g[:-1])
    with pytest.raises(ValueError, match="confidence"):
        subgroup_metrics(y, p, g, confidence=1.5)
    with pytest.raises(ValueError):
        subgroup_metrics(y[:-1], p, g[:-1])
    assert math.isnan(subgroup_metrics(y, p, g, n_boot=10)["value"].iloc[0]) is False


def test_subgroup_metrics_a_rate_without_a_denominator_says_why():
    # Bug found through mutant x_subgroup_metrics (the `est.ci is None` branch): a level where PPV or
    # NPV has an empty denominator got value NaN with an empty `not_estimable`, i.e. a row that
    # claims to be estimable. It now gives the reason.
    y = np.tile([0, 1], 20)
    p = np.r_[np.linspace(0.05, 0.4, 20), np.linspace(0.3, 0.95, 20)]
    g = ["low"] * 20 + ["high"] * 20
    df = subgroup_metrics(y, p, g, metric="ppv", threshold=0.5)
    assert df["level"].tolist() == ["All", "high", "low"]
    assert df["not_estimable"].tolist() == ["", "", "no patients with risk >= 0.5"]
    low = df.iloc[2]
    assert math.isnan(low["value"]) and math.isnan(low["ci_low"]) and low["method"] == ""
    m = np.array(g) == "high"
    tn, fp, fn, tp = confusion_matrix(y[m], p[m] >= 0.5).ravel()
    assert df["value"].iloc[1] == pytest.approx(tp / (tp + fp), rel=1e-12)
    df = subgroup_metrics(y, p, g, metric="npv", threshold=0.25)
    assert df["not_estimable"].tolist() == ["", "no patients with risk < 0.25", ""]
    m = np.array(g) == "low"
    tn, fp, fn, tp = confusion_matrix(y[m], p[m] >= 0.25).ravel()
    assert df["value"].iloc[2] == pytest.approx(tn / (tn + fn), rel=1e-12)


def test_subgroup_metrics_one_event_is_estimable_for_brier():
    y = np.r_[1, np.zeros(11, int), np.tile([0, 1], 6)]
    p = np.linspace(0.1, 0.9, len(y))
    df = subgroup_metrics(y, p, ["a"] * 12 + ["b"] * 12, metric="brier", n_boot=20)
    assert df["not_estimable"].tolist() == ["", "", ""]
    assert df["value"].iloc[1] == pytest.approx(brier_score_loss(y[:12], p[:12]), rel=1e-12)


def test_subgroup_metrics_group_containers():
    y, p, g = grouped()
    cat = pd.Series(pd.Categorical(g, categories=["z", "b", "a"]))
    # explicit levels win over the categories' order
    assert subgroup_metrics(y, p, cat, n_boot=10, levels=["a", "b"])["level"].tolist() == ["All", "a", "b"]
    # a plain (non-categorical) Series and a list: sorted levels
    assert subgroup_metrics(y, p, pd.Series(g), n_boot=10)["level"].tolist() == ["All", "a", "b"]
    assert subgroup_metrics(y, p, list(g), n_boot=10)["level"].tolist() == ["All", "a", "b"]
    # labels are kept as given: an integer label stays "1" next to a fractional 2.5
    df = subgroup_metrics(y[:110], p[:110], [1] * 60 + [2.5] * 50, n_boot=10)
    assert df["level"].tolist() == ["All", "1", "2.5"]
    assert df["n"].tolist() == [110, 60, 50]


def test_quantile_edges_of_a_boolean_indicator():
    # True/False read as 1/0: the median 0 is the cut ("<=0" = False, ">0" = True)
    assert quantile_edges([True, False, False, False, True]) == [0.0]


def test_subgroup_metrics_with_a_metric_added_to_metrics(monkeypatch):
    # METRICS is the registry subgroup_metrics reads: a metric added there is used as it answers,
    # an undefined value gets a reason, and an estimate without an interval gets NaN bounds
    def constant(y, p, n_boot=500, seed=0, confidence=0.95):
        return Estimate(0.25, None, "none", len(y), int(np.sum(y)), confidence)

    def undefined(y, p, n_boot=500, seed=0, confidence=0.95):
        return Estimate(math.nan, None, "none", len(y), int(np.sum(y)), confidence)

    def missing(y, p, n_boot=500, seed=0, confidence=0.95):
        return Estimate.missing("too few for this", "none", len(y))

    monkeypatch.setitem(METRICS, "constant", (constant, True))
    monkeypatch.setitem(METRICS, "undefined", (undefined, True))
    monkeypatch.setitem(METRICS, "missing", (missing, True))
    y, p, g = grouped()
    df = subgroup_metrics(y, p, g, metric="constant")
    assert df["value"].tolist() == [0.25] * 3 and df["method"].tolist() == ["none"] * 3
    assert df["ci_low"].isna().all() and df["ci_high"].isna().all() and (df["not_estimable"] == "").all()
    df = subgroup_metrics(y, p, g, metric="undefined")
    assert df["not_estimable"].tolist() == ["undefined on these patients"] * 3
    assert df["value"].isna().all() and (df["method"] == "").all()
    assert subgroup_metrics(y, p, g, metric="missing")["not_estimable"].tolist() == ["too few for this"] * 3
