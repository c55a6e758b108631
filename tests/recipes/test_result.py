"""RecipeResult: the one shape every recipe returns, read by its fields only."""

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
    )


def test_paths_are_files_then_figures(result, tmp_path):
    assert result.paths == {"exams": tmp_path / "e.csv", "figure": tmp_path / "f.png"}
    assert list(result.paths) == ["exams", "figure"]


def test_one_shape_fields_only(result):
    # No second way in: a result is not a mapping of old keys.
    with pytest.raises(TypeError):
        result["metrics"]
    with pytest.raises(TypeError):
        "paths" in result  # noqa: B015
    assert not hasattr(result, "get") and not hasattr(result, "legacy")
    with pytest.raises(TypeError):
        RecipeResult("bad", legacy={"x": "metrics"})
    with pytest.raises(AttributeError):
        result.name = "other"  # frozen


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
