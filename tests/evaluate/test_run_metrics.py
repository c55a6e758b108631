"""predictions.csv -> metrics.json (riskfm.evaluate.run_metrics) and risk groups (risk_groups)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from riskfm.evaluate import (
    PredictionsError,
    assign_risk_groups,
    auroc_table,
    cumulative_incidence_by_group,
    incidence_threshold,
    metrics_from_predictions,
    read_metrics,
    read_predictions,
    reliability_table,
    wilson_interval,
    write_metrics,
)
from riskfm.evaluate.run_metrics import TARGETS, upgrade_metrics


def make_predictions(n: int = 240, seed: int = 0) -> pd.DataFrame:
    """Long-format predictions for train/val/test x the five targets, with unknown labels."""
    rng = np.random.default_rng(seed)
    split = rng.choice(["test", "train", "val"], size=n, p=[0.25, 0.5, 0.25])
    frames = []
    for k, target in enumerate(TARGETS):
        y = (rng.random(n) < 0.1 + 0.05 * k).astype(float)
        p = 1.0 / (1.0 + np.exp(-(rng.normal(size=n) + 1.2 * y - 1.5)))
        y[rng.random(n) < 0.08] = np.nan
        frames.append(pd.DataFrame({
            "patient_id": [f"P{i:04d}" for i in range(n)], "split": split, "target": target,
            "y_true": y, "y_prob": np.round(p, 3),
            "time_to_event_days": np.where(y == 1, rng.uniform(0, 30, n), 30.0),
            "event": np.where(np.isnan(y), np.nan, y),
        }))
    return pd.concat(frames, ignore_index=True)


# ----------------------------------------------------------------------------------------- metrics


def test_metrics_auroc_matches_sklearn_per_split_and_target():
    df = make_predictions(n=600)
    metrics = metrics_from_predictions(df, n_boot=200, seed=1)
    assert list(metrics) == ["train", "val", "test"]  # report order, not alphabetical
    kinds = set()
    for split, by_target in metrics.items():
        assert list(by_target) == list(TARGETS)
        for target, cell in by_target.items():
            rows = df[(df["split"] == split) & (df["target"] == target) & df["y_true"].notna()]
            n_pos = int((rows["y_true"] == 1).sum())
            n_neg = int((rows["y_true"] == 0).sum())
            auroc = cell["auroc"]
            assert cell["n"] == len(rows) and cell["n_pos"] == n_pos
            assert (auroc["n"], auroc["n_pos"]) == (len(rows), n_pos)
            assert auroc["method"] == "stratified bootstrap (200 resamples)" and auroc["confidence"] == 0.95
            if n_pos >= 10 and n_neg >= 10:
                kinds.add("estimable")
                assert auroc["value"] == pytest.approx(roc_auc_score(rows["y_true"], rows["y_prob"]), abs=1e-12)
                lo, hi = auroc["ci"]
                assert lo <= auroc["value"] <= hi
                assert "not_estimable" not in cell and "not_estimable" not in auroc
            else:
                kinds.add("not estimable")
                assert auroc["value"] is None and auroc["ci"] is None
                assert str(n_pos) in cell["not_estimable"] and "< 10" in cell["not_estimable"]
                assert auroc["not_estimable"] == cell["not_estimable"]
    assert kinds == {"estimable", "not estimable"}  # the data exercise both branches


def test_unknown_labels_excluded_and_counted():
    df = make_predictions()
    metrics = metrics_from_predictions(df, ci=None)
    for split, by_target in metrics.items():
        for target, cell in by_target.items():
            rows = df[(df["split"] == split) & (df["target"] == target)]
            assert cell["n_excluded_unknown"] == int(rows["y_true"].isna().sum()) > 0
            assert cell["n"] + cell["n_excluded_unknown"] == len(rows)
            assert cell["auroc"]["ci"] is None and cell["auroc"]["method"] == "none"


def test_one_class_split_gives_null_auroc_with_note():
    df = make_predictions()
    sel = (df["split"] == "val") & (df["target"] == "stenosis_lm")
    df.loc[sel & df["y_true"].notna(), "y_true"] = 0.0
    df = pd.concat([df, pd.DataFrame({"patient_id": ["X1", "X2"], "split": "external", "target": "mace_30d",
                                      "y_true": [np.nan, np.nan], "y_prob": [0.2, 0.3]})], ignore_index=True)
    metrics = metrics_from_predictions(df, n_boot=50, min_events=2, min_nonevents=2)
    cell = metrics["val"]["stenosis_lm"]
    assert cell["auroc"]["value"] is None and cell["auroc"]["ci"] is None
    assert "one class" in cell["note"] and cell["n_pos"] == 0
    assert cell["not_estimable"] == "0 events < 2"
    empty = metrics["external"]["mace_30d"]
    assert empty["auroc"]["value"] is None and empty["n"] == 0 and empty["n_excluded_unknown"] == 2
    assert "no rows" in empty["note"]
    assert metrics["val"]["stenosis_rca"]["auroc"]["value"] is not None  # other cells unaffected


def test_delong_metrics_and_seed_independence_of_cells():
    df = make_predictions()
    delong = metrics_from_predictions(df, ci="delong")
    assert delong["test"]["mace_30d"]["auroc"]["method"] == "DeLong"
    # A cell's bootstrap interval does not depend on which other cells exist.
    full = metrics_from_predictions(df, n_boot=100, seed=3)
    alone = metrics_from_predictions(df[(df["split"] == "test") & (df["target"] == "mace_30d")], n_boot=100, seed=3)
    assert alone["test"]["mace_30d"]["auroc"]["ci"] == full["test"]["mace_30d"]["auroc"]["ci"]


def test_metrics_json_round_trip(tmp_path):
    df = make_predictions()
    sel = (df["split"] == "val") & (df["target"] == "stenosis_lm")
    df.loc[sel & df["y_true"].notna(), "y_true"] = 1.0
    metrics = metrics_from_predictions(df, n_boot=50)
    metrics["val"]["stenosis_rca"]["extra"] = np.float32("nan")  # NaN from numpy -> null
    metrics["val"]["stenosis_rca"]["count"] = np.int64(3)
    path = write_metrics(metrics, tmp_path / "run" / "metrics.json")
    text = path.read_text()
    assert "NaN" not in text and '"value": null' in text and '"ci": null' in text
    back = read_metrics(path)
    assert list(back) == list(metrics)
    assert list(back["val"]) == list(metrics["val"])
    assert back["val"]["stenosis_rca"]["extra"] is None and back["val"]["stenosis_rca"]["count"] == 3
    del metrics["val"]["stenosis_rca"]["extra"], back["val"]["stenosis_rca"]["extra"]
    assert back == json.loads(json.dumps(metrics, default=int))
    # Writing what was read gives the same bytes: key order and formatting are stable.
    assert write_metrics(back, tmp_path / "again.json").read_text() == write_metrics(metrics, path).read_text()


def test_auroc_table_with_oracle():
    df = make_predictions()
    metrics = metrics_from_predictions(df, n_boot=50)
    metrics["val"]["stenosis_lm"] = {"auroc": {"value": None, "ci": None}, "n": 5, "n_pos": 0, "note": "x"}
    oracle = {"test": {"mace_30d": {"auroc": {"value": 0.9, "ci": None}}}}
    table = auroc_table(metrics, oracle=oracle)
    assert list(table.columns) == ["auroc", "ci_low", "ci_high", "n", "n_pos", "oracle_auroc", "note"]
    assert table.loc[("val", "stenosis_lm"), "note"] == "x"
    assert table.index.names == ["split", "target"] and len(table) == 15
    assert table.loc[("test", "mace_30d"), "oracle_auroc"] == 0.9
    assert math.isnan(table.loc[("train", "mace_30d"), "oracle_auroc"])
    assert math.isnan(table.loc[("val", "stenosis_lm"), "auroc"])
    for (split, target), row in table.iterrows():
        cell = metrics[split][target]
        if cell["auroc"]["value"] is None:
            assert math.isnan(row["auroc"]) and row["note"] == (cell.get("not_estimable") or cell.get("note"))
        else:
            assert row["auroc"] == cell["auroc"]["value"] and row["note"] == ""
            assert (row["ci_low"], row["ci_high"]) == tuple(cell["auroc"]["ci"])
    assert "oracle_auroc" not in auroc_table(metrics).columns
    # An oracle (or metrics) of the previous version's shape reads the same.
    old = auroc_table(metrics, oracle={"test": {"mace_30d": {"auroc": 0.9, "auroc_ci": [0.8, 0.95]}}})
    assert old.loc[("test", "mace_30d"), "oracle_auroc"] == 0.9


def test_read_metrics_upgrades_files_of_the_previous_version(tmp_path):
    """A metrics.json written before the one-spelling change (flat ``auroc`` + ``auroc_ci``) still loads."""
    old = {"test": {
        "mace_30d": {"auroc": 0.81, "auroc_ci": [0.76, 0.85], "n": 412, "n_pos": 57, "n_excluded_unknown": 3,
                     "prevalence": 0.138, "ci_method": "bootstrap", "confidence": 0.95,
                     "auprc": 0.4, "auprc_ci": [0.3, 0.5], "calibration_slope": 0.9,
                     "calibration_slope_ci": [0.7, 1.1], "calibration_intercept": 0.1,
                     "calibration_intercept_ci": [-0.1, 0.3], "ece": 0.02, "brier": 0.1,
                     "threshold": {"method": "incidence", "threshold": 0.3, "sensitivity": 0.7,
                                   "sensitivity_ci": [0.6, 0.8]},
                     "subgroups": {"sex": {"F": {"auroc": 0.8, "auroc_ci": [0.7, 0.9], "n": 200, "n_pos": 30}}}},
        "stenosis_lm": {"auroc": None, "auroc_ci": [None, None], "n": 30, "n_pos": 1, "n_excluded_unknown": 0,
                        "prevalence": 0.03, "ci_method": "bootstrap", "confidence": 0.95,
                        "not_estimable": "1 event < 10"}}}
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps(old))
    back = read_metrics(path)
    cell = back["test"]["mace_30d"]
    assert cell["auroc"] == {"value": 0.81, "ci": [0.76, 0.85], "method": "stratified bootstrap", "n": 412,
                             "n_pos": 57, "confidence": 0.95}
    assert "auroc_ci" not in cell and "ci_method" not in cell
    assert cell["auprc"]["ci"] == [0.3, 0.5]
    assert cell["calibration"]["slope"]["value"] == 0.9 and cell["calibration"]["slope"]["ci"] == [0.7, 1.1]
    assert cell["calibration"]["ece"] == 0.02 and "ece" not in cell
    assert cell["threshold"]["sensitivity"]["ci"] == [0.6, 0.8]
    assert cell["subgroups"]["sex"]["F"]["auroc"]["value"] == 0.8
    small = back["test"]["stenosis_lm"]
    assert small["auroc"]["value"] is None and small["auroc"]["ci"] is None
    assert small["auroc"]["not_estimable"] == "1 event < 10"
    # The printable table reads both shapes alike, and upgrading a current file changes nothing.
    table = auroc_table(back)
    assert (table.loc[("test", "mace_30d"), "ci_low"], table.loc[("test", "mace_30d"), "ci_high"]) == (0.76, 0.85)
    assert table.loc[("test", "stenosis_lm"), "note"] == "1 event < 10"
    assert auroc_table(old).equals(table)
    assert upgrade_metrics(back) == back


# ----------------------------------------------------------------------------------------- files


def test_read_predictions_round_trip_and_keeps_ids_as_text(tmp_path):
    df = make_predictions(n=40)
    df["patient_id"] = [f"{i:05d}" for i in range(len(df))]
    path = tmp_path / "predictions.csv"
    df.to_csv(path, index=False)
    back = read_predictions(path)
    assert back["patient_id"].iloc[0] == "00000"
    np.testing.assert_array_equal(back["y_true"].isna(), df["y_true"].isna())
    np.testing.assert_allclose(back["y_prob"], df["y_prob"])


def test_read_predictions_names_file_and_missing_column(tmp_path):
    path = tmp_path / "predictions.csv"
    make_predictions(n=20).drop(columns=["y_prob"]).to_csv(path, index=False)
    with pytest.raises(PredictionsError, match=r"predictions\.csv.*missing required column.*'y_prob'"):
        read_predictions(path)
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        read_predictions(tmp_path / "nope.csv")


@pytest.mark.parametrize(
    ("column", "value", "match"),
    [("y_true", 2, "'y_true' must be 0, 1 or empty"),
     ("y_prob", 1.5, r"'y_prob' must be a predicted risk in \[0, 1\]"),
     ("y_prob", np.nan, "'y_prob'"),
     ("split", "", "'split' must not be empty"),
     ("event", 3, "'event'"),
     ("time_to_event_days", -1, "'time_to_event_days'")],
)
def test_bad_predictions_values_name_file_column_and_row(tmp_path, column, value, match):
    df = make_predictions(n=20)
    df[column] = df[column].astype(object)
    df.loc[3, column] = value
    path = tmp_path / "predictions.csv"
    df.to_csv(path, index=False)
    with pytest.raises(PredictionsError, match=match) as info:
        read_predictions(path)
    assert "predictions.csv" in str(info.value) and "line 5" in str(info.value)


def test_duplicate_rows_are_refused():
    df = make_predictions(n=20)
    padded = pd.concat([df, df.iloc[:3]], ignore_index=True)  # what DistributedSampler padding looks like
    with pytest.raises(PredictionsError, match="repeat a .patient_id, split, target"):
        metrics_from_predictions(padded)


# ----------------------------------------------------------------------------------------- risk groups


def test_incidence_threshold_marks_top_prevalence_fraction_high():
    rng = np.random.default_rng(0)
    p_train = rng.random(1000)
    t = incidence_threshold(p_train, 0.12)
    groups = assign_risk_groups(p_train, t)
    assert np.mean(groups == "high") == pytest.approx(0.12, abs=0.002)
    assert set(groups) == {"low", "high"}
    assert p_train[groups == "high"].min() >= p_train[groups == "low"].max()
    with pytest.raises(ValueError, match="prevalence"):
        incidence_threshold(p_train, 0.0)
    with pytest.raises(ValueError, match="p_train"):
        incidence_threshold([0.1, np.nan], 0.5)


def test_assign_risk_groups_two_thresholds():
    groups = assign_risk_groups([0.01, 0.05, 0.1, 0.2, 0.3], [0.05, 0.2])
    assert groups.tolist() == ["low", "intermediate", "intermediate", "high", "high"]
    with pytest.raises(ValueError, match="increasing"):
        assign_risk_groups([0.1], [0.3, 0.2])
    with pytest.raises(ValueError, match="one number or two"):
        assign_risk_groups([0.1], [0.1, 0.2, 0.3])


def test_wilson_interval_matches_statsmodels():
    from statsmodels.stats.proportion import proportion_confint

    k, n = np.array([0, 5, 10, 3, 1]), np.array([10, 10, 10, 7, 200])
    low, high = wilson_interval(k, n)
    ref_low, ref_high = proportion_confint(k, n, alpha=0.05, method="wilson")
    np.testing.assert_allclose(low, ref_low, atol=1e-12)
    np.testing.assert_allclose(high, ref_high, atol=1e-12)
    assert (low <= k / n).all() and (k / n <= high).all()


def test_reliability_table_quantile_bins():
    rng = np.random.default_rng(1)
    p = rng.random(1000)
    y = (rng.random(1000) < p).astype(int)
    table = reliability_table(y, p, n_bins=10)
    assert len(table) == 10 and table["n"].sum() == 1000 and (table["n"] == 100).all()
    assert table["n_events"].sum() == y.sum()
    assert (table["ci_low"] <= table["observed_rate"]).all()
    assert (table["observed_rate"] <= table["ci_high"]).all()
    # A calibrated model: observed rates track mean predicted risk.
    np.testing.assert_allclose(table["observed_rate"], table["mean_predicted"], atol=0.15)
    uniform = reliability_table(y, p, n_bins=5, strategy="uniform")
    np.testing.assert_allclose(uniform["bin_low"], [0, 0.2, 0.4, 0.6, 0.8])
    with pytest.raises(ValueError, match="strategy"):
        reliability_table(y, p, strategy="kmeans")


def test_cumulative_incidence_by_group_matches_simple_km():
    time = np.array([1, 2, 3, 4, 5, 1, 2, 3, 4, 5], dtype=float)
    event = np.array([1, 0, 1, 0, 0, 1, 1, 1, 1, 0])
    groups = np.array(["low"] * 5 + ["high"] * 5)
    res = cumulative_incidence_by_group(time, event, groups)
    assert res.groups == ["low", "high"]
    low = res.curves["low"].set_index("time_days")["incidence"]
    # KM by hand: S(1) = 4/5, S(3) = 4/5 * 2/3.
    assert low.loc[1.0] == pytest.approx(1 / 5)
    assert low.loc[3.0] == pytest.approx(1 - 4 / 5 * 2 / 3)
    assert 0 < res.logrank_p < 1
    assert res.at_risk([0, 3]).loc["low"].tolist() == [5, 3]
    single = cumulative_incidence_by_group(time[:5], event[:5], groups[:5])
    assert single.logrank_p is None
    with pytest.raises(ValueError, match="time_days"):
        cumulative_incidence_by_group(-time, event, groups)
