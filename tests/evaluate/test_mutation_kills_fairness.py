"""Tests written for mutants of riskfm/evaluate/fairness.py that survived mutmut (docs/testing.md).

Each level's metric is compared with scikit-learn (recall / precision at a threshold, average
precision, Brier score, mean squared error) or a numpy one-liner on the same patients, and the
resampled gaps with the documented resampling rebuilt here (``default_rng(seed)``, level by level in
display order, positives before negatives, ``integers(0, size, (n_resamples, size))``).
"""

from __future__ import annotations

import json
import math
import re

import matplotlib
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    mean_squared_error,
    precision_score,
    recall_score,
)

from riskfm.evaluate import fairness_gaps
from tests.evaluate.test_fairness import _resample_by_hand

matplotlib.use("Agg")


#: The table's columns as FairnessGaps documents them.
COLUMNS = ("attribute", "level", "metric", "n", "n_pos", "metric_value", "reference", "gap", "ci_low", "ci_high",
           "kind", "not_estimable")


def full(text: str) -> str:
    return "^" + re.escape(text) + "$"


def _thresholded(n: int = 160, seed: int = 4) -> pd.DataFrame:
    """Two sexes; scores on a 0.1 grid, so many sit exactly on the threshold 0.5."""
    rng = np.random.default_rng(seed)
    sex = np.repeat(["F", "M"], n // 2)
    y = (rng.random(n) < np.where(sex == "F", 0.35, 0.5)).astype(float)
    p = np.clip(np.round(0.5 + 0.2 * (y - 0.5) + rng.normal(0, 0.18, n), 1), 0, 1)
    return pd.DataFrame({"sex": sex, "y_true": y, "y_prob": p})


_RATES = {
    "sensitivity": lambda y, call: recall_score(y, call, zero_division=np.nan),
    "specificity": lambda y, call: recall_score(y, call, pos_label=0, zero_division=np.nan),
    "ppv": lambda y, call: precision_score(y, call, zero_division=np.nan),
    "npv": lambda y, call: precision_score(y, call, pos_label=0, zero_division=np.nan),
}


# ----------------------------------------------------------------------------------------- the metrics


@pytest.mark.parametrize("metric", sorted(_RATES))
def test_threshold_metrics_match_scikit_learn_with_scores_on_the_threshold(metric):
    df = _thresholded()
    assert (df["y_prob"] == 0.5).sum() >= 20  # positive means p >= threshold: these scores decide it

    def ref(d):
        return _RATES[metric](d["y_true"].astype(int), (d["y_prob"] >= 0.5).astype(int))

    res = fairness_gaps(df, "sex", metric, threshold=0.5, n_resamples=40, seed=2)
    t = res.table.set_index("level")
    want = {lv: ref(d) for lv, d in df.groupby("sex")}
    for lv, other in (("F", "M"), ("M", "F")):
        assert t.loc[lv, "metric_value"] == pytest.approx(want[lv], rel=1e-12)
        assert t.loc[lv, "gap"] == pytest.approx(want[lv] - want[other], rel=1e-12)
        assert t.loc[lv, "reference"] == pytest.approx(want[other], rel=1e-12)
        assert t.loc[lv, "not_estimable"] == "" and t.loc[lv, "kind"] == "binary"
    # The resampled gaps are the same metric on the resamples of the documented scheme.
    hand = _resample_by_hand(df, "sex", ["F", "M"], 40, 2, ref, outcome="y_true")
    np.testing.assert_allclose(res.resamples["F"], hand[:, 0] - hand[:, 1], rtol=0, atol=1e-12)
    np.testing.assert_allclose(res.resamples["max - min"], np.abs(hand[:, 0] - hand[:, 1]), rtol=0, atol=1e-12)


def test_threshold_metrics_by_hand_counts():
    # F: y = 1 1 1 0 0 0, p = .9 .5 .2 .5 .1 .1 -> TP 2, FN 1, FP 1, TN 2 at threshold 0.5
    # M: y = 1 1 0 0 0 0, p = .8 .3 .6 .4 .2 .5 -> TP 1, FN 1, FP 2, TN 2
    df = pd.DataFrame({"sex": ["F"] * 6 + ["M"] * 6, "y_true": [1, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0, 0],
                       "y_prob": [.9, .5, .2, .5, .1, .1, .8, .3, .6, .4, .2, .5]})
    want = {"sensitivity": (2 / 3, 1 / 2), "specificity": (2 / 3, 2 / 4), "ppv": (2 / 3, 1 / 3),
            "npv": (2 / 3, 2 / 3)}
    for metric, (f, m) in want.items():
        t = fairness_gaps(df, "sex", metric, threshold=0.5, min_n=1, n_resamples=2).table.set_index("level")
        assert (t.loc["F", "metric_value"], t.loc["M", "metric_value"]) == pytest.approx((f, m), rel=1e-12), metric
        assert t.loc["max - min", "gap"] == pytest.approx(abs(f - m), rel=1e-12, abs=1e-15), metric


@pytest.mark.parametrize(("metric", "level_scores", "calls"), [
    ("ppv", 0.1, "no positive call"),   # every score of level c is below the threshold
    ("npv", 0.9, "no negative call"),   # every score of level c is at or above it
])
def test_predictive_value_without_a_call_is_not_estimable(metric, level_scores, calls):
    df = _thresholded(n=120, seed=5)
    df["site"] = np.tile(["a", "b", "c"], 40)
    df.loc[df["site"] == "c", "y_prob"] = level_scores
    res = fairness_gaps(df, "site", metric, threshold=0.5, n_resamples=30, seed=0)
    t = res.table.set_index("level")
    assert t.loc["c", "not_estimable"] == "undefined on these patients", calls
    assert math.isnan(t.loc["c", "metric_value"]) and math.isnan(t.loc["c", "gap"])
    ref = {lv: _RATES[metric](d["y_true"].astype(int), (d["y_prob"] >= 0.5).astype(int))
           for lv, d in df.groupby("site") if lv != "c"}
    assert t.loc["a", "metric_value"] == pytest.approx(ref["a"], rel=1e-12)
    assert res.value == pytest.approx(abs(ref["a"] - ref["b"]), rel=1e-12)
    assert list(res.resamples.columns) == ["a", "b", "max - min"]


def _one_positive_call() -> pd.DataFrame:
    """Level B has one positive call (a true positive) among 30 patients: many resamples miss it."""
    rng = np.random.default_rng(0)
    p_a = np.r_[rng.uniform(0.3, 0.9, 20), rng.uniform(0.0, 0.7, 40)]
    p_b = np.r_[0.9, np.full(9, 0.2), np.full(20, 0.1)]
    return pd.DataFrame({"g": ["A"] * 60 + ["B"] * 30, "y_true": np.r_[np.ones(20), np.zeros(40), np.ones(10),
                                                                        np.zeros(20)],
                         "y_prob": np.r_[p_a, p_b]})


@pytest.mark.parametrize("order", [["A", "B"], ["B", "A"]])
def test_a_resample_where_a_level_is_undefined_has_no_range(order):
    """Regression: the range of such a resample was 0 with the levels in one order and NaN in the other."""
    df = _one_positive_call()
    res = fairness_gaps(df, "g", "ppv", threshold=0.5, levels=order, n_resamples=100, seed=1, min_n=1)

    def ppv(d):
        return _RATES["ppv"](d["y_true"].astype(int), (d["y_prob"] >= 0.5).astype(int))

    hand = _resample_by_hand(df, "g", order, 100, 1, ppv, outcome="y_true")
    undefined = np.isnan(hand).any(axis=1)
    assert 15 < undefined.sum() < 85  # both kinds of resample occur
    rng_col = res.resamples["max - min"].to_numpy()
    assert np.array_equal(np.isnan(rng_col), undefined)
    assert res.resamples_without_gaps == undefined.sum() == res.to_dict()["resamples_without_gaps"]
    for lv in order:
        assert np.array_equal(res.resamples[lv].isna().to_numpy(), undefined)
    spread = np.abs(hand[~undefined, 0] - hand[~undefined, 1])
    np.testing.assert_allclose(rng_col[~undefined], spread, rtol=0, atol=1e-12)
    t = res.table.set_index("level")
    assert (t.loc["max - min", "ci_low"], t.loc["max - min", "ci_high"]) == pytest.approx(
        tuple(np.quantile(spread, [0.025, 0.975])), rel=1e-12)
    assert res.ci[0] > 0.1  # it was 0.0 with order A, B: every undefined resample counted as no gap


def test_auprc_gaps_match_scikit_learn():
    rng = np.random.default_rng(8)
    n = 160
    y = np.r_[np.ones(40), np.zeros(n - 40)]
    df = pd.DataFrame({"site": np.tile(["x", "y"], n // 2), "y_true": y,
                       "y_prob": np.round(1 / (1 + np.exp(-(1.5 * y - 1 + rng.normal(size=n)))), 2)})
    res = fairness_gaps(df, "site", "auprc", n_resamples=30, seed=4)
    t = res.table.set_index("level")
    ap = {lv: average_precision_score(d["y_true"], d["y_prob"]) for lv, d in df.groupby("site")}
    assert t.loc["x", "metric_value"] == pytest.approx(ap["x"], rel=1e-12)
    assert t.loc["y", "metric_value"] == pytest.approx(ap["y"], rel=1e-12)
    assert res.value == pytest.approx(abs(ap["x"] - ap["y"]), rel=1e-12)
    hand = _resample_by_hand(df, "site", ["x", "y"], 30, 4, lambda d: average_precision_score(d["y_true"], d["y_prob"]),
                    outcome="y_true")
    np.testing.assert_allclose(res.resamples["x"], hand[:, 0] - hand[:, 1], rtol=0, atol=1e-12)


def test_brier_rmse_and_bias_match_scikit_learn_and_numpy():
    rng = np.random.default_rng(3)
    n = 80
    df = pd.DataFrame({"sex": np.repeat(["F", "M"], n // 2), "y_true": rng.integers(0, 2, n).astype(float),
                       "y_prob": rng.uniform(0, 1, n), "reference": rng.uniform(0, 400, n)})
    df["predicted"] = df["reference"] + np.where(df["sex"] == "F", 30.0, -10.0) + rng.normal(0, 5, n)
    for lv, d in df.groupby("sex"):
        brier = fairness_gaps(df, "sex", "brier", n_resamples=2).table.set_index("level")
        assert brier.loc[lv, "metric_value"] == pytest.approx(brier_score_loss(d["y_true"], d["y_prob"]), rel=1e-12)
        rmse = fairness_gaps(df, "sex", "rmse", n_resamples=2).table.set_index("level")
        assert rmse.loc[lv, "metric_value"] == pytest.approx(
            math.sqrt(mean_squared_error(d["reference"], d["predicted"])), rel=1e-12)
    bias = fairness_gaps(df, "sex", "bias", n_resamples=2).table.set_index("level")
    f, m = df[df["sex"] == "F"], df[df["sex"] == "M"]
    # bias = mean(predicted - reference): F over-reads by about 30 Agatston, M under-reads by about 10
    assert bias.loc["F", "metric_value"] == pytest.approx((f["predicted"] - f["reference"]).mean(), rel=1e-12)
    assert bias.loc["M", "metric_value"] == pytest.approx((m["predicted"] - m["reference"]).mean(), rel=1e-12)
    assert bias.loc["F", "metric_value"] > 25 and bias.loc["M", "metric_value"] < -5


# ----------------------------------------------------------------------------------------- to_dict and plot


def _paired(n: int = 90, seed: int = 6) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ref = rng.gamma(0.7, 200.0, n)
    return pd.DataFrame({"age": np.tile(["<=50", "51-65", ">65"], n // 3), "reference": ref,
                         "predicted": ref + rng.normal(np.tile([0.0, 20.0, -40.0], n // 3), 15.0)})


def test_to_dict_levels_hold_each_estimable_gap_with_its_interval():
    df = _paired()
    res = fairness_gaps(df, "age", "mae", levels=["<=50", "51-65", ">65", "none"], n_resamples=50, seed=3)
    d = res.to_dict()
    json.dumps(d)
    assert d["value"] == res.value and d["ci"] == list(res.ci) and d["n"] == 90
    assert d["method"] == "stratified bootstrap (50 resamples) over patients"
    assert list(d["levels"]) == ["<=50", "51-65", ">65"]  # no range row, no level without patients
    t = res.table.set_index("level")
    for lv, row in d["levels"].items():
        assert set(row) == {"value", "ci", "metric_value", "reference", "kind", "n", "n_pos"}
        assert row["value"] == t.loc[lv, "gap"] and row["ci"] == [t.loc[lv, "ci_low"], t.loc[lv, "ci_high"]]
        assert row["ci"][0] <= row["value"] <= row["ci"][1]
        assert row["metric_value"] == t.loc[lv, "metric_value"] and row["reference"] == t.loc[lv, "reference"]
        assert (row["kind"], row["n"], row["n_pos"]) == ("median", 30, None)
        assert isinstance(row["n"], int)
    mae = {lv: float(np.abs(g["predicted"] - g["reference"]).mean()) for lv, g in df.groupby("age")}
    assert d["levels"]["51-65"]["metric_value"] == pytest.approx(mae["51-65"], rel=1e-12)
    assert d["levels"][">65"]["value"] == pytest.approx(mae[">65"] - np.median(list(mae.values())), rel=1e-12)


def test_to_dict_counts_events_for_a_binary_outcome():
    df = _thresholded()
    d = fairness_gaps(df, "sex", "brier", n_resamples=20).to_dict()
    for lv in ("F", "M"):
        assert d["levels"][lv]["n_pos"] == int(df.loc[df["sex"] == lv, "y_true"].sum())
        assert isinstance(d["levels"][lv]["n_pos"], int) and d["levels"][lv]["kind"] == "binary"


def test_plot_saves_the_figure_and_labels_the_model(tmp_path):
    res = fairness_gaps(_paired(), "age", "mae", n_resamples=20)
    out = tmp_path / "gaps.png"
    fig = res.plot(out)
    assert out.exists() and out.stat().st_size > 1000
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["model"]
    assert fig.axes[0].get_xlabel() == "MAE gap (Agatston)"  # the metric of the result by default
    fig = res.plot(tmp_path / "named.png", name="CorCAC", units="AU")
    assert (tmp_path / "named.png").exists()
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["CorCAC"]
    assert fig.axes[0].get_xlabel() == "MAE gap (AU)"
    assert res.plot().axes  # no path: nothing saved, the figure returned
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gaps.png", "named.png"]


# ----------------------------------------------------------------------------------------- fairness_gaps


def _level(name: str, n: int, first: int = 0) -> pd.DataFrame:
    """n patients of level ``name``: alternating outcomes, spread scores, readings off by 2 or -1."""
    return pd.DataFrame({"g": [name] * n, "event": [0, 1] * (n // 2) + [0] * (n % 2),
                         "score": np.linspace(0.05, 0.95, n), "reference": np.arange(first, first + n, dtype=float),
                         "predicted": np.arange(first, first + n, dtype=float) + (2.0 if name == "a" else -1.0)})


def _small(n_per: int = 12) -> pd.DataFrame:
    return pd.concat([_level("a", n_per), _level("b", n_per, n_per)], ignore_index=True)


def test_error_messages_name_the_argument_and_the_problem():
    df = _small()
    with pytest.raises(ValueError, match=full(
            "unknown metric 'f2'; choose from ['auprc', 'auroc', 'bias', 'brier', 'kappa', 'mae', 'mean', 'npv', "
            "'ppv', 'rmse', 'sensitivity', 'specificity'] or pass a function")):
        fairness_gaps(df, "g", "f2")
    with pytest.raises(ValueError, match=full("a metric function needs columns= (the columns it reads)")):
        fairness_gaps(df, "g", np.mean)
    for name in ("sensitivity", "specificity", "ppv", "npv"):
        with pytest.raises(ValueError, match=full(f"metric '{name}' needs a threshold")):
            fairness_gaps(df, "g", name, columns=("event", "score"))
    with pytest.raises(ValueError, match=full(
            "fairness_gaps: column(s) ['sex'] missing (have ['g', 'event', 'score', 'reference', 'predicted'])")):
        fairness_gaps(df, "sex", "mae")
    with pytest.raises(ValueError, match=re.escape("column(s) ['y_true', 'y_prob'] missing")):
        fairness_gaps(df, "g", "auroc")
    bad = df.assign(event=df["event"].replace({1: 2}))
    with pytest.raises(ValueError, match=full("event must be binary 0/1; found other values [2.0]")):
        fairness_gaps(bad, "g", "brier", columns=("event", "score"))
    bad = df.assign(score=df["score"].where(df.index != 3))
    with pytest.raises(ValueError, match="^score must be finite"):
        fairness_gaps(bad, "g", "brier", columns=("event", "score"))
    bad = df.assign(predicted=df["predicted"].where(df.index != 3, np.inf))
    with pytest.raises(ValueError, match="^column 'predicted' must be finite"):
        fairness_gaps(bad, "g", "mae")
    with pytest.raises(ValueError, match="^n_resamples must be an integer >= 2"):
        fairness_gaps(df, "g", "mae", n_resamples=1)
    assert len(fairness_gaps(df, "g", "mae", n_resamples=2).resamples) == 2


def test_columns_spelled_as_a_string_a_list_or_a_tuple():
    df = _small()
    want = fairness_gaps(df, "g", "mae", n_resamples=5).table
    pd.testing.assert_frame_equal(fairness_gaps(df.rename(columns={"reference": "r", "predicted": "q"}), "g", "mae",
                                                columns=["r", "q"], n_resamples=5).table, want)
    brier = fairness_gaps(df, "g", "brier", columns=("event", "score"), n_resamples=5).table.set_index("level")
    a = df[df["g"] == "a"]
    assert brier.loc["a", "metric_value"] == pytest.approx(brier_score_loss(a["event"], a["score"]), rel=1e-12)
    assert brier.loc["a", "n_pos"] == 6

    def spread(x):
        return float(x.max() - x.min())

    by_str = fairness_gaps(df, "g", spread, columns="score", n_resamples=5)
    by_list = fairness_gaps(df, "g", spread, columns=["score"], n_resamples=5)
    pd.testing.assert_frame_equal(by_str.table, by_list.table)
    assert by_str.metric == "spread"
    assert by_str.table.set_index("level").loc["b", "metric_value"] == pytest.approx(0.9, rel=1e-12)
    assert math.isnan(by_str.table.set_index("level").loc["a", "n_pos"])

    class Spread:  # a callable without __name__
        def __call__(self, x):
            return float(x.max() - x.min())

    assert fairness_gaps(df, "g", Spread(), columns="score", n_resamples=5).metric == "metric"


def test_min_n_is_a_floor_that_a_level_of_exactly_min_n_passes():
    df = pd.concat([_small(12), _level("c", 9)], ignore_index=True)
    t = fairness_gaps(df, "g", "mae", n_resamples=5).table.set_index("level")  # default min_n = 10
    assert t.loc["c", "not_estimable"] == "9 patients < 10" and t.loc["a", "not_estimable"] == ""
    t = fairness_gaps(df, "g", "mae", min_n=9, n_resamples=5).table.set_index("level")
    assert t.loc["c", "not_estimable"] == "" and t.loc["c", "kind"] == "median"
    t = fairness_gaps(df, "g", "mae", min_n=13, n_resamples=5).table.set_index("level")
    assert set(t["not_estimable"]) == {"12 patients < 13", "9 patients < 13", "0 estimable levels, need 2"}
    t = fairness_gaps(df, "g", "mae", min_n=0, levels=["a", "b", "zz"], n_resamples=5).table.set_index("level")
    assert t.loc["zz", "not_estimable"] == "0 patients < 1" and t.loc["zz", "n"] == 0


def test_a_single_class_level_has_no_brier_or_threshold_gap():
    df = pd.concat([_small(12), _level("c", 12).assign(event=0), _level("d", 12).assign(event=1)],
                   ignore_index=True)
    for metric in ("brier", "sensitivity", "npv"):
        t = fairness_gaps(df, "g", metric, columns=("event", "score"), threshold=0.5,
                          n_resamples=5).table.set_index("level")
        assert t.loc["c", "not_estimable"] == "single class (0 events of 12)"
        assert t.loc["d", "not_estimable"] == "single class (12 events of 12)"
        assert t.loc["d", "n_pos"] == 12 and t.loc["a", "not_estimable"] == ""
        assert t.loc["a", "kind"] == "median"  # four levels, two of them estimable


def test_auroc_takes_the_small_sample_floors_given():
    rng = np.random.default_rng(0)
    # level a: 5 events and 7 non-events; level b: 6 and 6
    df = pd.DataFrame({"g": ["a"] * 12 + ["b"] * 12, "y_true": [1] * 5 + [0] * 7 + [1, 0] * 6,
                       "y_prob": rng.uniform(0, 1, 24)})
    t = fairness_gaps(df, "g", "auroc", n_resamples=5).table.set_index("level")
    assert t.loc["a", "not_estimable"] == "5 events < 10, 7 non-events < 10"
    t = fairness_gaps(df, "g", "auroc", min_events=5, min_nonevents=6, n_resamples=5).table.set_index("level")
    assert (t.loc["a", "not_estimable"], t.loc["b", "not_estimable"]) == ("", "")
    a = df[df["g"] == "a"]
    from sklearn.metrics import roc_auc_score

    assert t.loc["a", "metric_value"] == pytest.approx(roc_auc_score(a["y_true"], a["y_prob"]), rel=1e-12)
    t = fairness_gaps(df, "g", "auroc", min_events=6, min_nonevents=6, n_resamples=5).table.set_index("level")
    assert t.loc["a", "not_estimable"] == "5 events < 6" and t.loc["b", "not_estimable"] == "1 estimable level, need 2"
    t = fairness_gaps(df, "g", "auroc", min_events=5, min_nonevents=8, n_resamples=5).table.set_index("level")
    assert t.loc["a", "not_estimable"] == "7 non-events < 8" and t.loc["b", "not_estimable"] == "6 non-events < 8"


def test_fewer_than_two_estimable_levels_give_no_gap_and_say_why():
    df = pd.concat([_small(12), _level("c", 5)], ignore_index=True)
    res = fairness_gaps(df, "g", "mae", levels=["a", "c"], n_resamples=7, seed=5, confidence=0.9, attribute="site")
    assert res.not_estimable == "1 estimable level, need 2"
    assert math.isnan(res.value) and res.ci is None and res.resamples is None
    assert res.resamples_without_gaps == 0 and res.to_dict()["resamples_without_gaps"] == 0
    assert (res.n, res.attribute, res.metric, res.n_resamples, res.seed, res.confidence) == (17, "site", "mae", 7, 5,
                                                                                             0.9)
    assert res.method == "stratified bootstrap (7 resamples) over patients"
    t = res.table
    assert list(t["level"]) == ["a", "c", "max - min"] and list(t["attribute"]) == ["site"] * 3
    assert list(t["not_estimable"]) == ["1 estimable level, need 2", "5 patients < 10", "1 estimable level, need 2"]
    assert t["gap"].isna().all() and list(t["kind"]) == ["", "", "range"]
    assert t.iloc[2]["n"] == 12 and math.isnan(t.iloc[2]["n_pos"])
    assert res.estimable_rows().empty and res.to_dict()["levels"] == {}
    none = fairness_gaps(df, "g", "mae", min_n=50, n_resamples=7)
    assert none.not_estimable == "0 estimable levels, need 2" and none.table.iloc[-1]["n"] == 0
    assert none.table["metric_value"].dtype == np.float64 and none.table["metric_value"].isna().all()
    for t in (res.table, none.table):
        assert tuple(t.columns) == COLUMNS


def test_the_range_row_counts_the_estimable_levels_only():
    df = pd.concat([_small(12), _level("c", 12).assign(event=0)], ignore_index=True)
    df.loc[df["g"] == "b", "event"] = [1] * 8 + [0] * 4
    res = fairness_gaps(df, "g", "brier", columns=("event", "score"), n_resamples=10, attribute="Site")
    t = res.table.set_index("level")
    assert t.loc["c", "not_estimable"] == "single class (0 events of 12)"
    assert (t.loc["max - min", "n"], t.loc["max - min", "n_pos"]) == (24, 14)  # a (6 events) and b (8)
    assert t.loc["max - min", "kind"] == "range" and t.loc["max - min", "not_estimable"] == ""
    assert res.n == 36 and set(res.table["attribute"]) == {"Site"} and set(res.table["metric"]) == {"brier"}
    assert (res.attribute, res.metric, res.n_resamples, res.seed) == ("Site", "brier", 10, 0)
    assert fairness_gaps(df, "g", "mae", n_resamples=3).attribute == "g"  # default: the column's name
    rows = res.estimable_rows()
    assert list(rows["level"]) == ["a", "b", "max - min"] and list(rows.index) == [0, 1, 2]
    assert tuple(rows.columns) == tuple(res.table.columns) == COLUMNS  # the old index is not kept as a column
    brier = {lv: brier_score_loss(d["event"], d["score"]) for lv, d in df.groupby("g") if lv != "c"}
    med = float(np.median(list(brier.values())))
    assert t.loc["a", "reference"] == pytest.approx(med, rel=1e-12) and t.loc["a", "kind"] == "median"
    assert t.loc["b", "gap"] == pytest.approx(brier["b"] - med, rel=1e-12)
    assert res.value == pytest.approx(abs(brier["a"] - brier["b"]), rel=1e-12)


def test_levels_from_categories_numbers_and_rows_without_a_level():
    df = _paired(n=60)
    df["age"] = pd.Categorical(df["age"], categories=[">65", "unknown", "51-65", "<=50"])
    df.loc[[0, 1, 2], "age"] = np.nan
    res = fairness_gaps(df, "age", "mae", n_resamples=5)
    assert list(res.table["level"]) == [">65", "51-65", "<=50", "max - min"]  # category order, unused dropped
    assert res.n == 57 and list(res.table["n"][:3]) == [19, 19, 19]
    df["num"] = np.tile([10, 9, 100], 20)
    res = fairness_gaps(df, "num", "mae", n_resamples=5)
    assert list(res.table["level"]) == ["10", "100", "9", "max - min"]  # sorted as text, named as text
    assert list(res.resamples.columns) == ["10", "100", "9", "max - min"]
    nine = df[df["num"] == 9]
    assert res.table.set_index("level").loc["9", "metric_value"] == pytest.approx(
        float(np.abs(nine["predicted"] - nine["reference"]).mean()), rel=1e-12)
    res = fairness_gaps(df, "num", "mae", levels=(9, 100), n_resamples=5)
    assert list(res.table["level"]) == ["9", "100", "max - min"] and res.table["kind"][0] == "binary"
    assert res.n == 40


def test_interval_coverage_and_an_interval_from_no_resample():
    df = _paired()
    res = fairness_gaps(df, "age", "bias", n_resamples=40, seed=2, confidence=0.8)
    t = res.table.set_index("level")
    for lv in ("<=50", ">65", "max - min"):
        assert (t.loc[lv, "ci_low"], t.loc[lv, "ci_high"]) == tuple(np.quantile(res.resamples[lv], [0.1, 0.9]))
    assert res.ci == tuple(np.quantile(res.resamples["max - min"], [0.1, 0.9])) and res.confidence == 0.8
    # Seed 12 with 2 resamples: both miss level B's only positive call, so no resample has a gap.
    res = fairness_gaps(_one_positive_call(), "g", "ppv", threshold=0.5, n_resamples=2, seed=12, min_n=1)
    assert res.resamples.isna().all().all() and res.not_estimable is None and res.resamples_without_gaps == 2
    a = _one_positive_call().iloc[:60]
    assert res.ci is None and res.value == pytest.approx(1 - precision_score(a["y_true"], a["y_prob"] >= 0.5),
                                                         rel=1e-12)
    assert res.table[["ci_low", "ci_high"]].isna().all().all() and not res.table["gap"].isna().any()
    assert res.to_dict()["levels"]["A"]["ci"] is None and res.to_dict()["ci"] is None


@pytest.mark.parametrize("metric", sorted(_RATES))
def test_the_threshold_metric_factory_itself(metric):
    """``GAP_METRICS`` builds these at import, before mutmut switches a mutant on: call the factory here."""
    from riskfm.evaluate.fairness import _rate

    df = _thresholded(n=60, seed=9)
    y, p = df["y_true"].to_numpy() == 1, df["y_prob"].to_numpy()
    fn = _rate(metric)
    for t in (0.5, 0.6):
        assert fn(y, p, t) == pytest.approx(_RATES[metric](y.astype(int), (p >= t).astype(int)), rel=1e-12)
    # an empty denominator: no events, no non-events, no positive or no negative call
    empty = {"sensitivity": (np.zeros_like(y), p), "specificity": (np.ones_like(y), p), "ppv": (y, np.zeros_like(p)), "npv": (y, np.ones_like(p))}
    assert math.isnan(fn(*empty[metric], 0.5))


def test_the_defaults_are_500_resamples_seed_0_and_95_percent():
    df = _paired()
    res = fairness_gaps(df, "age", "mae")
    assert (res.n_resamples, res.seed, res.confidence, len(res.resamples)) == (500, 0, 0.95, 500)
    levels = ["51-65", "<=50", ">65"]  # sorted
    hand = _resample_by_hand(df, "age", levels, 500, 0,
                    lambda d: float(np.abs(d["predicted"].to_numpy() - d["reference"].to_numpy()).mean()))
    np.testing.assert_allclose(res.resamples[">65"], hand[:, 2] - np.median(hand, axis=1), rtol=0, atol=1e-12)
    spread = hand.max(axis=1) - hand.min(axis=1)
    assert res.ci == pytest.approx(tuple(np.quantile(spread, [0.025, 0.975])), rel=1e-12)
