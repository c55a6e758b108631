"""RecipeResult: the one shape every recipe returns, and its read-only accessor for the old keys."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from riskfm.recipes.result import RecipeResult, jsonable


@pytest.fixture
def result(tmp_path):
    return RecipeResult(
        "example",
        metrics={"test": {"auroc": 0.8, "auroc_ci": [np.float32(0.7), float("nan")]}, "n": np.int64(3)},
        tables={"exams": pd.DataFrame({"x": [1.0, np.nan]}), "fairness_a": pd.DataFrame({"g": ["m"]}),
                "fairness_b": pd.DataFrame({"g": ["f"]})},
        figures={"figure": tmp_path / "f.png"},
        files={"exams": tmp_path / "e.csv"},
        extras={"model": object()},
        legacy={"metrics": "metrics.test", "exams": "tables.exams", "tables": "tables.fairness_*",
                "paths": "paths", "model": "extras.model", "all_metrics": "metrics"},
    )


def test_old_keys_map_onto_the_fields(result, tmp_path):
    assert result["metrics"] is result.metrics["test"]
    assert result["exams"] is result.tables["exams"]
    assert set(result["tables"]) == {"a", "b"} and result["tables"]["a"] is result.tables["fairness_a"]
    assert result["paths"] == {"exams": tmp_path / "e.csv", "figure": tmp_path / "f.png"}
    assert result["model"] is result.extras["model"]
    assert result["all_metrics"] is result.metrics
    assert "paths" in result and "nope" not in result and result.get("nope", 1) == 1


def test_unknown_key_and_writes_are_refused(result):
    with pytest.raises(KeyError, match="old keys: metrics"):
        result["summary"]
    with pytest.raises(TypeError):
        result["metrics"] = {}  # read-only
    with pytest.raises(AttributeError):
        result.name = "other"  # frozen
    with pytest.raises(ValueError, match="no field 'stuff'"):
        RecipeResult("bad", legacy={"x": "stuff.y"})


def test_to_dict_is_json_without_extras(result):
    d = result.to_dict()
    assert set(d) == {"name", "metrics", "tables", "figures", "files"}
    text = json.dumps(d, allow_nan=False)  # no NaN, no numpy types, no paths objects
    back = json.loads(text)
    assert back["metrics"]["test"]["auroc_ci"][1] is None and back["metrics"]["n"] == 3
    assert back["tables"]["exams"] == [{"x": 1.0}, {"x": None}]
    assert back["figures"]["figure"].endswith("f.png")
    assert "model" not in text and "RecipeResult(name='example'" in repr(result)


def test_jsonable_refuses_objects():
    assert jsonable({1: (np.bool_(True), Path("a"), np.inf)}) == {"1": [True, "a", None]}
    with pytest.raises(TypeError, match="DataFrame"):
        jsonable({"t": pd.DataFrame()})
