"""Tests written for mutants of riskfm/evaluate/run_metrics.py that survived mutmut (docs/testing.md).

They cover ``_first_bad``, ``read_predictions``, ``_ci_method``, ``read_metrics``,
``_upgrade_pairs``, ``upgrade_cell``, ``upgrade_metrics``, ``_auroc_of``, ``auroc_table``,
``validate_predictions``, ``_cell_metrics``, ``metrics_from_predictions``, ``_jsonable``,
``write_metrics`` and the report order; a whole-module mutmut run with them leaves only the 27
equivalent mutants listed in docs/testing.md. Expected values are written by hand
from the file contract in the module docstring (AUROC values against scikit-learn).
"""

import json
import math
import re

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from riskfm.evaluate.run_metrics import (
    PredictionsError,
    auroc_table,
    metrics_from_predictions,
    ordered_splits,
    ordered_targets,
    read_metrics,
    read_predictions,
    upgrade_cell,
    upgrade_metrics,
    validate_predictions,
    write_metrics,
)


def _frame(**over):
    base = {"patient_id": ["a", "b", "c"], "split": ["test"] * 3, "target": ["mace_30d"] * 3,
            "y_true": [0, 1, 0], "y_prob": [0.1, 0.7, 0.2]}
    base.update(over)
    return pd.DataFrame(base)


# ----------------------------------------------------------------------------- input


def test_in_memory_table_is_located_by_row_a_file_by_line(tmp_path):
    with pytest.raises(PredictionsError, match=r"^<predictions>: column 'y_prob' .* row 1 \(patient 'b'"):
        validate_predictions(_frame(y_prob=[0.1, 1.5, 0.2]))
    path = tmp_path / "predictions.csv"
    _frame(y_prob=[0.1, 1.5, 0.2]).to_csv(path, index=False)
    # Header is line 1, so the second data row is line 3.
    with pytest.raises(PredictionsError, match=r"predictions\.csv: column 'y_prob' .* line 3 \(patient 'b'"):
        read_predictions(path)


def test_read_predictions_keeps_ids_and_names_as_text(tmp_path):
    path = tmp_path / "predictions.csv"
    path.write_text("patient_id,split,target,y_true,y_prob,site\n"
                    "007,01,002,0,0.2,03\n"
                    "008,01,002,1,0.8,04\n", encoding="utf-8")
    df = read_predictions(path)
    assert df["patient_id"].tolist() == ["007", "008"]
    assert df["split"].tolist() == ["01", "01"]
    assert df["target"].tolist() == ["002", "002"]
    assert df["site"].tolist() == ["03", "04"]


def test_read_predictions_unparseable_file_is_a_predictions_error_naming_it(tmp_path):
    path = tmp_path / "predictions.csv"
    path.write_bytes(b"")
    with pytest.raises(PredictionsError, match=r"predictions\.csv: cannot parse predictions file"):
        read_predictions(path)
    with pytest.raises(FileNotFoundError, match=r"predictions file not found: .*nope\.csv"):
        read_predictions(tmp_path / "nope.csv")


# ----------------------------------------------------------------------------- metrics


def test_not_estimable_cell_names_the_requested_interval_method():
    df = _frame()  # 1 event, 2 non-events: below the small-sample rule
    cell = metrics_from_predictions(df, ci="delong")["test"]["mace_30d"]
    assert cell["auroc"]["value"] is None and cell["auroc"]["method"] == "DeLong"
    cell = metrics_from_predictions(df, ci="bootstrap", n_boot=200)["test"]["mace_30d"]
    assert cell["auroc"]["method"] == "stratified bootstrap (200 resamples)"
    cell = metrics_from_predictions(df, ci=None)["test"]["mace_30d"]
    assert cell["auroc"]["method"] == "none"


def test_unknown_interval_method_is_refused_even_when_no_cell_is_estimable():
    # Bug fixed with this test: a misspelt ci was written into every not-estimable cell as the
    # method, and only refused (by roc_auc) when some cell was estimable.
    for df in (_frame(), _frame(patient_id=[str(i) for i in range(40)], split=["test"] * 40,
                                target=["mace_30d"] * 40, y_true=[0, 1] * 20,
                                y_prob=np.linspace(0.01, 0.99, 40))):
        with pytest.raises(ValueError, match=r"ci must be one of .*'bootstrap'.*'delong'.* got 'Delong'"):
            metrics_from_predictions(df, ci="Delong")


def test_estimable_cell_value_matches_sklearn():
    rng = np.random.default_rng(3)
    y = np.r_[np.zeros(20), np.ones(15)]
    p = np.clip(0.3 * y + rng.uniform(0, 0.7, y.size), 0, 1)
    df = pd.DataFrame({"patient_id": [str(i) for i in range(y.size)], "split": "val", "target": "stenosis_lad",
                       "y_true": y, "y_prob": p})
    cell = metrics_from_predictions(df, ci="delong")["val"]["stenosis_lad"]
    assert cell["auroc"]["value"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert (cell["n"], cell["n_pos"], cell["auroc"]["method"]) == (35, 15, "DeLong")


# ----------------------------------------------------------------------------- files


def test_read_metrics_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"metrics file not found: .*missing\.json"):
        read_metrics(tmp_path / "missing.json")
    bad = tmp_path / "metrics.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match=r"metrics\.json: not valid JSON"):
        read_metrics(bad)


def test_read_metrics_reads_utf8_text(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_bytes(json.dumps({"test": {"mace_30d": {"n": 3, "note": "n ≥ 10 needed"}}},
                                ensure_ascii=False).encode("utf-8"))
    assert read_metrics(path)["test"]["mace_30d"]["note"] == "n ≥ 10 needed"


OLD_CELL = {"n": 200, "n_pos": 40, "prevalence": 0.2, "auroc": 0.81, "auroc_ci": [0.75, 0.86],
            "ci_method": "bootstrap", "confidence": 0.95}


def test_old_cell_auroc_becomes_an_estimate_object():
    out = upgrade_cell(OLD_CELL)
    assert out == {"n": 200, "n_pos": 40, "prevalence": 0.2,
                   "auroc": {"value": 0.81, "ci": [0.75, 0.86], "method": "stratified bootstrap", "n": 200,
                             "n_pos": 40, "confidence": 0.95}}


def test_old_cell_auroc_without_interval_becomes_an_estimate_object():
    cell = {"n": 50, "n_pos": 5, "auroc": 0.7, "ci_method": "delong"}
    assert upgrade_cell(cell) == {"n": 50, "n_pos": 5,
                                  "auroc": {"value": 0.7, "ci": None, "method": "DeLong", "n": 50, "n_pos": 5}}
    cell = {"n": 50, "n_pos": 5, "auroc": None, "not_estimable": "5 events < 10"}
    out = upgrade_cell(cell)
    assert out["auroc"] == {"value": None, "ci": None, "method": "unknown", "n": 50, "n_pos": 5,
                            "not_estimable": "5 events < 10"}
    assert out["not_estimable"] == "5 events < 10"


def test_old_method_names_and_the_default():
    no_method = {k: v for k, v in OLD_CELL.items() if k != "ci_method"}
    # An interval whose method the old file did not record is "unknown", never "none".
    assert upgrade_cell(no_method)["auroc"]["method"] == "unknown"
    assert upgrade_cell({**OLD_CELL, "ci_method": "none"})["auroc"]["method"] == "none"
    assert upgrade_cell({**OLD_CELL, "ci_method": "bca"})["auroc"]["method"] == "bca"
    assert upgrade_cell({**OLD_CELL, "ci_method": "wilson"})["auroc"]["method"] == "Wilson"


def test_old_cell_without_auroc_but_with_an_interval_pair_is_upgraded():
    cell = {"n": 60, "n_pos": 12, "auprc": 0.4, "auprc_ci": [0.3, 0.5], "ci_method": "bootstrap"}
    assert upgrade_cell(cell) == {"n": 60, "n_pos": 12,
                                  "auprc": {"value": 0.4, "ci": [0.3, 0.5], "method": "stratified bootstrap",
                                            "n": 60, "n_pos": 12}}


def test_current_cell_is_returned_unchanged():
    cell = {"n": 100, "n_pos": 20, "auroc": {"value": 0.8, "ci": [0.7, 0.9], "method": "DeLong", "n": 100,
                                             "n_pos": 20, "confidence": 0.9, "se": 0.05},
            "auprc": {"value": 0.5, "ci": [0.4, 0.6], "method": "stratified bootstrap (200 resamples)",
                      "n": 100, "n_pos": 20}}
    out = upgrade_cell(cell)
    assert out == cell and out is not cell


def test_confidence_moves_into_the_estimates_not_the_cell():
    out = upgrade_cell(OLD_CELL)
    assert "confidence" not in out and "ci_method" not in out
    assert out["auroc"]["confidence"] == 0.95


def test_flat_calibration_keys_move_under_calibration_with_their_intervals():
    cell = {**OLD_CELL, "calibration_intercept": -0.1, "calibration_intercept_ci": [-0.3, 0.1],
            "calibration_slope": 0.9, "calibration_slope_ci": [0.7, 1.1], "brier": 0.12}
    out = upgrade_cell(cell)
    assert not any(k.startswith("calibration_") for k in out) and "brier" not in out
    cal = out["calibration"]
    assert cal["intercept"] == {"value": -0.1, "ci": [-0.3, 0.1], "method": "Wald", "n": 200, "n_pos": 40}
    assert cal["slope"] == {"value": 0.9, "ci": [0.7, 1.1], "method": "Wald", "n": 200, "n_pos": 40}
    assert cal["brier"] == 0.12


def test_nested_pairs_inherit_counts_method_and_confidence():
    cell = {**OLD_CELL, "thresholds": {"0.2": {"sensitivity": 0.9, "sensitivity_ci": [0.8, 0.95]}},
            "subgroups": {"female": {"n": 80, "n_pos": 10, "auroc": 0.7, "auroc_ci": [0.6, 0.8]}}}
    out = upgrade_cell(cell)
    assert out["thresholds"]["0.2"]["sensitivity"] == {"value": 0.9, "ci": [0.8, 0.95], "method": "stratified bootstrap",
                                                       "n": 200, "n_pos": 40, "confidence": 0.95}
    assert out["subgroups"]["female"]["auroc"] == {"value": 0.7, "ci": [0.6, 0.8], "method": "stratified bootstrap",
                                                   "n": 80, "n_pos": 10, "confidence": 0.95}


def test_a_name_three_characters_longer_than_another_is_kept():
    # Only "<k>_ci" beside "<k>" is folded into k's estimate; "ext_v2" beside "ext" is its own entry.
    cell = {**OLD_CELL, "subgroups": {"ext": {"n": 9}, "ext_v2": {"n": 11}}}
    assert upgrade_cell(cell)["subgroups"] == {"ext": {"n": 9}, "ext_v2": {"n": 11}}


def test_not_estimable_reason_only_on_the_missing_estimate():
    cell = {"n": 30, "n_pos": 4, "auroc": None, "auroc_ci": None, "auprc": 0.3, "auprc_ci": [0.1, 0.5],
            "not_estimable": "4 events < 10"}
    out = upgrade_cell(cell)
    assert out["auroc"]["not_estimable"] == "4 events < 10" and out["auroc"]["ci"] is None
    assert "not_estimable" not in out["auprc"]


def test_upgrade_metrics_keeps_entries_that_are_not_mappings():
    metrics = {"version": 2, "test": {"mace_30d": OLD_CELL, "comment": "hand-checked"}}
    out = upgrade_metrics(metrics)
    assert out["version"] == 2 and out["test"]["comment"] == "hand-checked"
    assert out["test"]["mace_30d"]["auroc"]["value"] == 0.81


# ----------------------------------------------------------------------------- table


def test_auroc_table_errors_name_the_bad_part():
    with pytest.raises(ValueError, match=r"metrics must be a mapping .*, got list$"):
        auroc_table([1, 2])
    with pytest.raises(ValueError, match=r"metrics\['test'\] must be a mapping of targets, got str$"):
        auroc_table({"test": "x"})


def test_auroc_table_counts_notes_and_types():
    metrics = {
        "test": {
            "mace_30d": {"n": 200, "n_pos": 40, "note": "delong interval undefined with n_pos=40, n_neg=160",
                         "auroc": {"value": 0.8, "ci": None, "method": "DeLong", "n": 200, "n_pos": 40}},
            "stenosis_lm": {"n": 12, "n_pos": 1, "auroc": {"value": None, "ci": None}},
            "stenosis_lad": {"n": 12, "n_pos": 1, "not_estimable": "1 event < 10",
                             "auroc": {"value": None, "ci": None}},
            "stenosis_rca": {"n": None, "n_pos": None, "auroc": {"value": None, "ci": None}},
        }
    }
    t = auroc_table(metrics)
    assert list(t.columns) == ["auroc", "ci_low", "ci_high", "n", "n_pos", "note"]
    assert t["n"].dtype == "Int64" and t["n_pos"].dtype == "Int64"
    assert t.loc[("test", "mace_30d"), "n"] == 200 and t.loc[("test", "stenosis_lm"), "n"] == 12
    assert t.loc[("test", "stenosis_rca"), "n"] is pd.NA
    # A reported AUROC has no note even if the cell carries one; a missing one without a reason has "".
    assert t.loc[("test", "mace_30d"), "note"] == ""
    assert t.loc[("test", "stenosis_lm"), "note"] == ""
    assert t.loc[("test", "stenosis_lad"), "note"] == "1 event < 10"


def test_empty_auroc_table_has_its_columns_and_index_names():
    for oracle, cols in ((None, ["auroc", "ci_low", "ci_high", "n", "n_pos", "note"]),
                         ({}, ["auroc", "ci_low", "ci_high", "n", "n_pos", "oracle_auroc", "note"])):
        t = auroc_table({}, oracle=oracle)
        assert len(t) == 0 and list(t.columns) == cols
        assert list(t.index.names) == ["split", "target"]
        assert t["n"].dtype == "Int64"


def test_oracle_cell_written_as_null_reads_as_nan():
    metrics = {"test": {"mace_30d": OLD_CELL}}
    t = auroc_table(metrics, oracle={"test": {"mace_30d": None}})
    assert math.isnan(t.loc[("test", "mace_30d"), "oracle_auroc"])
    assert t.loc[("test", "mace_30d"), "auroc"] == 0.81


# ----------------------------------------------------------------------------- written ahead
# For functions the lead's mutmut pass had not reached yet (validate_predictions, _cell_metrics,
# _jsonable, write_metrics, ordering): what a user relies on there, checked by hand.


def test_report_order_of_splits_and_targets():
    assert ordered_splits(["zeta", "external", "test", "alpha", "validation", "val", "train", "test"]) == [
        "train", "val", "validation", "test", "external", "alpha", "zeta"]
    assert ordered_targets(["z", "mace_30d", "stenosis_lcx", "a", "stenosis_rca", "stenosis_lad", "stenosis_lm"]) == [
        "stenosis_rca", "stenosis_lm", "stenosis_lad", "stenosis_lcx", "mace_30d", "a", "z"]
    assert ordered_splits([1, "1", 2]) == ["1", "2"]


def test_validate_errors_whole():
    with pytest.raises(PredictionsError, match=r"^src\.csv: expected a pandas DataFrame, got dict$"):
        validate_predictions({"a": 1}, source="src.csv")
    with pytest.raises(PredictionsError, match=re.escape(
            "<predictions>: missing required column(s) ['target', 'y_prob']; predictions need "
            "['patient_id', 'split', 'target', 'y_true', 'y_prob'] (found ['patient_id', 'split', 'y_true'])")):
        validate_predictions(_frame().drop(columns=["target", "y_prob"]))
    with pytest.raises(PredictionsError, match=re.escape(
            "<predictions>: column 'target' must not be empty; row 1 (patient 'b', target '  ') has '  ' "
            "(2 bad rows in all)")):
        validate_predictions(_frame(target=["mace_30d", "  ", None]))
    with pytest.raises(PredictionsError, match=re.escape(
            "<predictions>: column 'y_true' must be 0, 1 or empty (unknown); row 2 (patient 'c', "
            "target 'mace_30d') has 'yes' (1 bad rows in all)")):
        validate_predictions(_frame(y_true=[0, 1, "yes"]))
    for bad in (math.inf, math.nan, "x", -0.01):
        with pytest.raises(PredictionsError, match=r"column 'y_prob' must be a predicted risk in \[0, 1\]; row 0"):
            validate_predictions(_frame(y_prob=[bad, 0.5, 0.5]))
    for bad in (-1, math.inf, "soon"):
        with pytest.raises(PredictionsError, match=r"column 'time_to_event_days' must be a finite time in days "
                                                   r">= 0 or empty; row 1"):
            validate_predictions(_frame(time_to_event_days=[3.0, bad, 5.0]))
    for bad in (2, "x", 0.5):
        with pytest.raises(PredictionsError, match=r"column 'event' must be 0, 1 or empty; row 1"):
            validate_predictions(_frame(event=[0, bad, 1]))
    with pytest.raises(PredictionsError, match=re.escape(
            "<predictions>: 2 rows repeat a (patient_id, split, target) triple, first ['a', 'test', 'mace_30d']; "
            "each patient must appear once per split and target (drop sampler padding before writing)")):
        validate_predictions(_frame(patient_id=["a", "b", "a"]))


def test_validate_normalises_names_and_types():
    df = _frame(patient_id=[" a", "b ", 7], split=[" test", "test", "test "], y_true=["0", "1", None],
                y_prob=["0", "1", "0.25"],  # risks of exactly 0 and 1 are valid
                time_to_event_days=[None, "3", 0], event=[None, 1, "0"])
    df.index = [10, 11, 12]
    out = validate_predictions(df)
    assert out.index.tolist() == [0, 1, 2] and list(out.columns) == list(df.columns)  # old index dropped
    assert out["patient_id"].tolist() == ["a", "b", "7"] and set(out["split"]) == {"test"}
    assert out["y_true"].dtype == float and out["y_true"].tolist()[:2] == [0.0, 1.0] and math.isnan(out["y_true"][2])
    assert out["y_prob"].dtype == float and out["y_prob"].tolist() == [0.0, 1.0, 0.25]
    assert out["time_to_event_days"].dtype == float and out["time_to_event_days"].tolist()[1:] == [3.0, 0.0]
    assert out["event"].dtype == float and out["event"].tolist()[1:] == [1.0, 0.0]
    assert df["patient_id"].tolist() == [" a", "b ", 7]  # the input is not changed


def test_cell_counts_prevalence_and_notes_whole():
    df = pd.DataFrame({"patient_id": list("abcdefg"), "split": "test",
                       "target": ["mace_30d"] * 4 + ["stenosis_lm"] * 3,
                       "y_true": [0, 1, 0, np.nan, np.nan, np.nan, np.nan], "y_prob": 0.5})
    m = metrics_from_predictions(df, ci=None)["test"]
    assert m["mace_30d"]["n"] == 3 and m["mace_30d"]["n_pos"] == 1 and m["mace_30d"]["n_excluded_unknown"] == 1
    assert m["mace_30d"]["prevalence"] == pytest.approx(1 / 3)
    assert m["mace_30d"]["not_estimable"] == "1 event < 10, 2 non-events < 10" and "note" not in m["mace_30d"]
    empty = m["stenosis_lm"]
    assert (empty["n"], empty["n_pos"], empty["n_excluded_unknown"], empty["prevalence"]) == (0, 0, 3, None)
    assert empty["note"] == "no rows with a known y_true: AUROC undefined"
    one = metrics_from_predictions(_frame(y_true=[1, 1, 1]), ci=None)["test"]["mace_30d"]
    assert one["note"] == "only one class (n_pos=3 of n=3): AUROC undefined"
    assert one["auroc"]["value"] is None and one["auroc"]["n"] == 3 and one["auroc"]["n_pos"] == 3


def test_small_sample_rule_arguments_are_used():
    y = [1] * 3 + [0] * 12
    df = pd.DataFrame({"patient_id": [str(i) for i in range(15)], "split": "test", "target": "mace_30d",
                       "y_true": y, "y_prob": np.linspace(0.05, 0.95, 15)})
    assert metrics_from_predictions(df, ci=None)["test"]["mace_30d"]["not_estimable"] == "3 events < 10"
    cell = metrics_from_predictions(df, ci=None, min_events=3, min_nonevents=12)["test"]["mace_30d"]
    assert cell["auroc"]["value"] == pytest.approx(roc_auc_score(y, df["y_prob"]))
    cell = metrics_from_predictions(df, ci=None, min_events=3, min_nonevents=13)["test"]["mace_30d"]
    assert cell["not_estimable"] == "12 non-events < 13"


def test_write_metrics_json_text_and_refusals(tmp_path):
    path = write_metrics({"test": {1: {"v": (np.float64(0.5), np.int64(2)), "w": np.array([np.inf, 1.0])}}},
                         tmp_path / "a" / "b" / "metrics.json")
    assert path == tmp_path / "a" / "b" / "metrics.json"
    assert path.read_text(encoding="utf-8") == json.dumps(
        {"test": {"1": {"v": [0.5, 2], "w": [None, 1.0]}}}, indent=2) + "\n"
    assert [p.name for p in path.parent.iterdir()] == ["metrics.json"]  # no temporary file left
    with pytest.raises(TypeError, match=r"^metrics\.test\.mace_30d\.extra\[1\]: cannot write a object to JSON$"):
        write_metrics({"test": {"mace_30d": {"extra": [1, object()]}}}, tmp_path / "bad.json")
    assert not (tmp_path / "bad.json").exists()


def test_old_auprc_interval_is_named_bootstrap_whatever_the_auroc_method():
    # The previous version computed the AUPRC interval by stratified bootstrap only; ci_method
    # named the AUROC's.
    cell = {**OLD_CELL, "ci_method": "delong", "auprc": 0.45, "auprc_ci": [0.35, 0.55]}
    out = upgrade_cell(cell)
    assert out["auroc"]["method"] == "DeLong"
    assert out["auprc"] == {"value": 0.45, "ci": [0.35, 0.55], "method": "stratified bootstrap", "n": 200,
                            "n_pos": 40, "confidence": 0.95}


def test_flat_auroc_without_interval_gets_a_reason_only_when_missing_and_given():
    missing_no_reason = upgrade_cell({"n": 8, "n_pos": 0, "auroc": None})
    assert missing_no_reason["auroc"] == {"value": None, "ci": None, "method": "unknown", "n": 8, "n_pos": 0}
    valued = upgrade_cell({"n": 50, "n_pos": 5, "auroc": 0.7, "not_estimable": "stale reason"})
    assert "not_estimable" not in valued["auroc"] and valued["auroc"]["value"] == 0.7


def test_flat_calibration_without_interval_has_ci_none():
    cell = {**OLD_CELL, "calibration_intercept": 0.05, "calibration_slope": 1.1, "calibration_slope_ci": None}
    cal = upgrade_cell(cell)["calibration"]
    assert cal["intercept"] == {"value": 0.05, "ci": None, "method": "Wald", "n": 200, "n_pos": 40}
    assert cal["slope"] == {"value": 1.1, "ci": None, "method": "Wald", "n": 200, "n_pos": 40}


def _estimable_frame():
    y = np.array([0, 1] * 20, dtype=float)
    p = np.clip(0.25 * y + np.linspace(0.05, 0.7, 40)[::-1] % 0.7, 0, 1)
    return pd.DataFrame({"patient_id": [str(i) for i in range(40)], "split": "test", "target": "mace_30d",
                         "y_true": y, "y_prob": p}), y, p


def test_defaults_seed_and_confidence_reach_the_interval():
    df, y, p = _estimable_frame()
    default = metrics_from_predictions(df)["test"]["mace_30d"]["auroc"]
    assert default["method"] == "stratified bootstrap (500 resamples)" and default["confidence"] == 0.95
    assert default["value"] == pytest.approx(roc_auc_score(y, p))
    assert metrics_from_predictions(df, seed=0)["test"]["mace_30d"]["auroc"]["ci"] == default["ci"]
    assert metrics_from_predictions(df, seed=1)["test"]["mace_30d"]["auroc"]["ci"] != default["ci"]
    a = metrics_from_predictions(df, n_boot=200, seed=7)["test"]["mace_30d"]["auroc"]
    b = metrics_from_predictions(df, n_boot=200, seed=8)["test"]["mace_30d"]["auroc"]
    assert a["ci"] != b["ci"]
    narrow = metrics_from_predictions(df, n_boot=200, seed=7, confidence=0.5)["test"]["mace_30d"]["auroc"]
    assert narrow["confidence"] == 0.5
    assert a["ci"][0] < narrow["ci"][0] <= narrow["ci"][1] < a["ci"][1]
    missing = metrics_from_predictions(_frame(), confidence=0.9)["test"]["mace_30d"]["auroc"]
    assert missing["confidence"] == 0.9 and missing["value"] is None


def test_metrics_from_predictions_locates_bad_rows_by_row():
    with pytest.raises(PredictionsError, match=r"^<predictions DataFrame>: column 'y_true' must be 0, 1 .*; row 2 "):
        metrics_from_predictions(_frame(y_true=[0, 1, 5]))


def test_note_when_the_requested_interval_is_undefined():
    df = _frame(patient_id=list("abcd"), split=["test"] * 4, target=["mace_30d"] * 4, y_true=[0, 0, 1, 0],
                y_prob=[0.1, 0.2, 0.9, 0.3])
    with pytest.warns(Warning):  # DeLong with one positive warns
        cell = metrics_from_predictions(df, ci="delong", min_events=1, min_nonevents=1)["test"]["mace_30d"]
    assert cell["auroc"]["value"] == 1.0 and cell["auroc"]["ci"] is None
    assert cell["note"] == "delong interval undefined with n_pos=1, n_neg=3"
    plain = metrics_from_predictions(df, ci=None, min_events=1, min_nonevents=1)["test"]["mace_30d"]
    assert plain["auroc"]["value"] == 1.0 and "note" not in plain
    big, _, _ = _estimable_frame()
    assert "note" not in metrics_from_predictions(big, ci="delong")["test"]["mace_30d"]


def test_duplicate_message_names_the_first_repeated_triple_in_file_order():
    df = _frame(patient_id=["b", "a", "b", "a"], split=["test"] * 4, target=["mace_30d"] * 4, y_true=[0, 1, 0, 1],
                y_prob=[0.1, 0.7, 0.2, 0.6])
    with pytest.raises(PredictionsError, match=re.escape("4 rows repeat a (patient_id, split, target) triple, "
                                                         "first ['b', 'test', 'mace_30d']")):
        validate_predictions(df)
