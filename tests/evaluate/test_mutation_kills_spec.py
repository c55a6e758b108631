"""Tests written for mutants of riskfm/evaluate/spec.py that survived mutmut (docs/testing.md).

The spec's defaults are the ones its module docstring documents (users copy that block into
their YAML); every key's bound is checked at its edge, with the whole message naming the key
and, for a file, the file.
"""

import re
from pathlib import Path

import pytest
import yaml

import riskfm.evaluate.spec as spec_module
from riskfm.evaluate.spec import THRESHOLD_METHODS, EvaluationSpec


def documented_defaults() -> dict:
    """The ``key: value`` block of the module docstring, read as YAML (comments dropped)."""
    doc = spec_module.__doc__
    block = doc.split("::", 1)[1]
    lines = [line for line in block.splitlines() if re.match(r"^    [a-z_]+:", line)]
    return yaml.safe_load("\n".join(line.strip() for line in lines))


def test_defaults_are_the_documented_ones():
    doc = documented_defaults()
    assert len(doc) == 24
    assert doc["subgroup_bins"] == {"age": [50, 65]}  # an example there; the default is none
    doc["subgroup_bins"] = {}
    assert EvaluationSpec().to_dict() == doc
    assert EvaluationSpec.from_any(None).to_dict() == doc
    assert THRESHOLD_METHODS == ("incidence", "youden", "sensitivity", "specificity")


def test_to_dict_is_a_plain_copy():
    s = EvaluationSpec(recalibration=["platt"], horizon_days={"x": 7})
    d = s.to_dict()
    assert d["recalibration"] == ["platt"] and d["horizon_days"] == {"x": 7}
    d["recalibration"].append("isotonic")
    assert s.recalibration == ["platt"]


def msg(key: str, text: str) -> str:
    return "^" + re.escape(f"evaluation spec: {key}: {text}") + "$"


@pytest.mark.parametrize(("kwargs", "key", "text"), [
    ({"ci": "wald"}, "ci", "must be one of ('bootstrap', 'delong'), got 'wald'"),
    ({"n_boot": 9}, "n_boot", "must be an integer >= 10, got 9"),
    ({"n_boot": 10.5}, "n_boot", "must be an integer >= 10, got 10.5"),
    ({"confidence": 0}, "confidence", "must be in (0, 1), got 0"),
    ({"confidence": 1}, "confidence", "must be in (0, 1), got 1"),
    ({"calibration_strategy": "equal"}, "calibration_strategy", "must be uniform or quantile, got 'equal'"),
    ({"threshold": "median"}, "threshold",
     "must be one of ('incidence', 'youden', 'sensitivity', 'specificity'), got 'median'"),
    ({"sensitivity": 0}, "sensitivity", "must be in (0, 1], got 0"),
    ({"sensitivity": 1.01}, "sensitivity", "must be in (0, 1], got 1.01"),
    ({"specificity": 0}, "specificity", "must be in (0, 1], got 0"),
    ({"specificity": 1.5}, "specificity", "must be in (0, 1], got 1.5"),
    ({"recalibration": ["platt", "beta", "x"]}, "recalibration",
     "unknown method(s) ['beta', 'x']; choose from ('platt', 'temperature', 'isotonic')"),
    ({"decision_thresholds": [0.1, 0.5]}, "decision_thresholds",
     "must be [start, stop, step] with 0 < start < stop < 1, got [0.1, 0.5]"),
    ({"decision_thresholds": [0.0, 0.5, 0.1]}, "decision_thresholds",
     "must be [start, stop, step] with 0 < start < stop < 1, got [0.0, 0.5, 0.1]"),
    ({"decision_thresholds": [0.5, 0.5, 0.1]}, "decision_thresholds",
     "must be [start, stop, step] with 0 < start < stop < 1, got [0.5, 0.5, 0.1]"),
    ({"decision_thresholds": [0.1, 1.0, 0.1]}, "decision_thresholds",
     "must be [start, stop, step] with 0 < start < stop < 1, got [0.1, 1.0, 0.1]"),
    ({"calibration_min_bin_size": 0}, "calibration_min_bin_size", "must be an integer >= 1, got 0"),
    ({"subgroup_quantiles": 1}, "subgroup_quantiles", "must be an integer >= 2, got 1"),
    ({"max_subgroup_levels": 1}, "max_subgroup_levels", "must be an integer >= 2, got 1"),
    ({"min_events": 0}, "min_events", "must be an integer >= 1, got 0"),
    ({"min_nonevents": 0}, "min_nonevents", "must be an integer >= 1, got 0"),
    ({"min_events": True}, "min_events", "must be an integer >= 1, got True"),
    ({"min_events": "10"}, "min_events", "must be an integer >= 1, got '10'"),
    ({"min_nonevents": 2.5}, "min_nonevents", "must be an integer >= 1, got 2.5"),
    ({"subgroup_quantiles": 5, "max_subgroup_levels": 4}, "subgroup_quantiles",
     "5 bins exceed max_subgroup_levels (4)"),
    ({"subgroup_bins": {"age": [40, 50, 60]}, "max_subgroup_levels": 3, "subgroup_quantiles": 2}, "subgroup_bins",
     "age: 3 cut points give 4 levels, more than max_subgroup_levels (3)"),
    ({"horizon_days": [30]}, "horizon_days", "must map target -> days, got [30]"),
    ({"horizon_days": {"mace": 0}}, "horizon_days", "mace: must be a number of days > 0, got 0"),
    ({"horizon_days": {"mace": True}}, "horizon_days", "mace: must be a number of days > 0, got True"),
    ({"horizon_days": {"mace": "30"}}, "horizon_days", "mace: must be a number of days > 0, got '30'"),
    ({"subgroup_metric": "f1"}, "subgroup_metric",
     "must be one of ['auprc', 'auroc', 'brier', 'npv', 'ppv', 'sensitivity', 'specificity'], got 'f1'"),
])
def test_every_bound_is_refused_with_the_key_named(kwargs, key, text):
    with pytest.raises(ValueError, match=msg(key, text)):
        EvaluationSpec(**kwargs)


def test_values_at_the_edges_are_accepted():
    s = EvaluationSpec(
        ci="delong", n_boot=10, confidence=0.5, calibration_strategy="uniform", sensitivity=1, specificity=1,
        recalibration=[], decision_thresholds=[0.001, 0.999, 0.1], calibration_min_bin_size=1,
        subgroup_quantiles=2, max_subgroup_levels=2, min_events=1, min_nonevents=1,
        subgroup_bins={"age": [50]}, horizon_days={"mace_30d": 0.5, "x": 7}, subgroup_metric="brier",
    )
    assert (s.n_boot, s.min_events, s.min_nonevents, s.subgroup_quantiles) == (10, 1, 1, 2)
    for method in THRESHOLD_METHODS:
        assert EvaluationSpec(threshold=method).threshold == method
    assert EvaluationSpec(subgroup_quantiles=12, max_subgroup_levels=12).subgroup_quantiles == 12
    assert EvaluationSpec(subgroup_bins={"age": list(range(11))}).subgroup_bins["age"][-1] == 10  # 12 levels
    assert EvaluationSpec(subgroup_bins=None).subgroup_bins is None


def test_integral_floats_become_ints():
    s = EvaluationSpec(calibration_min_bin_size=5.0, subgroup_quantiles=3.0, max_subgroup_levels=6.0,
                       min_events=4.0, min_nonevents=2.0)
    for key, value in (("calibration_min_bin_size", 5), ("subgroup_quantiles", 3), ("max_subgroup_levels", 6),
                       ("min_events", 4), ("min_nonevents", 2)):
        got = getattr(s, key)
        assert type(got) is int and got == value


def test_from_any_builds_from_an_instance_a_dict_and_a_file(tmp_path):
    s = EvaluationSpec(n_boot=20)
    assert EvaluationSpec.from_any(s) is s
    assert EvaluationSpec.from_any({"n_boot": 30}).n_boot == 30
    f = tmp_path / "spec.yaml"
    f.write_text("seed: 3\nthreshold: youden\n", encoding="utf-8")
    for source in (f, str(f)):
        got = EvaluationSpec.from_any(source)
        assert (got.seed, got.threshold) == (3, "youden")
    empty = tmp_path / "empty.yaml"
    empty.write_text("", encoding="utf-8")
    assert EvaluationSpec.from_any(empty) == EvaluationSpec()


def test_from_any_errors_name_the_source(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(FileNotFoundError, match="^" + re.escape(f"evaluation spec not found: {missing}") + "$"):
        EvaluationSpec.from_any(missing)
    with pytest.raises(FileNotFoundError, match="evaluation spec not found"):
        EvaluationSpec.from_any(str(tmp_path))  # a folder is not a spec file
    listed = tmp_path / "list.yaml"
    listed.write_text("- 1\n- 2\n", encoding="utf-8")
    with pytest.raises(ValueError, match="^" + re.escape(f"evaluation spec {listed}: expected a mapping, got list") + "$"):
        EvaluationSpec.from_any(listed)
    with pytest.raises(ValueError, match=r"^evaluation spec <dict>: expected a mapping, got int$"):
        EvaluationSpec.from_any(3)
    known = sorted(f for f in EvaluationSpec().to_dict())
    with pytest.raises(ValueError, match="^" + re.escape(
            f"evaluation spec <dict>: unknown key(s) ['a', 'b']; known keys: {known}") + "$"):
        EvaluationSpec.from_any({"b": 1, "a": 2, "seed": 1})
    with pytest.raises(ValueError, match=r"^<dict>: evaluation spec: n_boot: must be an integer >= 10, got 5$") as info:
        EvaluationSpec.from_any({"n_boot": 5})
    assert isinstance(info.value.__cause__, ValueError)
    bad = tmp_path / "bad.yaml"
    bad.write_text("confidence: 2\n", encoding="utf-8")
    with pytest.raises(ValueError, match="^" + re.escape(f"{bad}: evaluation spec: confidence: must be in (0, 1), got 2")):
        EvaluationSpec.from_any(bad)
    assert isinstance(Path(bad), Path)
