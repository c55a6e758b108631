"""Tabular clinical variables: preprocessing fitted on training rows only, and the MLP encoder."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from riskfm.clinical import TabularEncoder, TabularPreprocessor
from riskfm.encoders import create_encoder


@pytest.fixture
def train() -> pd.DataFrame:
    return pd.DataFrame({
        "age": [50.0, 60.0, 70.0, np.nan],
        "sex": ["female", "male", "male", "female"],
        "tobacco": ["never", "former", "", "never"],
        "diabetes": [0, 1, 0, 0],
    })


@pytest.fixture
def test_rows() -> pd.DataFrame:
    return pd.DataFrame({
        "age": [90.0, np.nan],
        "sex": ["male", "intersex"],  # a level never seen in training
        "tobacco": ["current", None],  # unseen level and missing
        "diabetes": [1, 0],
        "patient_id": ["p9", "p10"],  # extra columns are ignored
    })


def test_statistics_come_from_training_rows_only(train, test_rows):
    pre = TabularPreprocessor().fit(train)
    assert pre.numeric_columns_ == ["age", "diabetes"] and pre.categorical_columns_ == ["sex", "tobacco"]
    assert pre.means_["age"] == pytest.approx(60.0)
    assert pre.stds_["age"] == pytest.approx(np.std([50.0, 60.0, 70.0]))
    x = pre.transform(test_rows)
    names = pre.feature_names
    assert x.dtype == np.float32 and x.shape == (2, len(names))
    col = {n: x[:, i] for i, n in enumerate(names)}
    # 90 years is (90 - 60) / 8.165 training SDs, whatever the test rows' own mean.
    assert col["age"][0] == pytest.approx(30.0 / np.std([50.0, 60.0, 70.0]), rel=1e-6)
    # transform() never refits: the statistics stay the training ones, unlike a fit that saw the test rows.
    assert pre.means_["age"] == pytest.approx(60.0)
    leaky = TabularPreprocessor().fit(pd.concat([train, test_rows.drop(columns="patient_id")]))
    assert leaky.means_["age"] != pytest.approx(60.0)


def test_missing_numeric_becomes_zero_plus_indicator(train, test_rows):
    pre = TabularPreprocessor().fit(train)
    x = pre.transform(test_rows)
    col = {n: x[:, i] for i, n in enumerate(pre.feature_names)}
    assert col["age"][1] == 0.0 and col["age__missing"].tolist() == [0.0, 1.0]
    assert col["diabetes__missing"].tolist() == [0.0, 0.0]  # an indicator for every numeric column


def test_unknown_level_takes_unseen_and_missing_categories(train, test_rows):
    pre = TabularPreprocessor().fit(train)
    assert pre.categories_["tobacco"] == ["former", "never", "unknown"]  # "" in training is missing
    x = pre.transform(test_rows)
    col = {n: x[:, i] for i, n in enumerate(pre.feature_names)}
    assert col["sex=male"].tolist() == [1.0, 0.0]
    assert col["sex=unknown"].tolist() == [0.0, 1.0]
    assert col["tobacco=unknown"].tolist() == [1.0, 1.0]
    onehot = [n for n in pre.feature_names if n.startswith("tobacco=")]
    assert x[:, [pre.feature_names.index(n) for n in onehot]].sum(axis=1).tolist() == [1.0, 1.0]


def test_to_dict_from_dict_round_trip_through_json(train, test_rows):
    pre = TabularPreprocessor(exclude=["diabetes"]).fit(train)
    restored = TabularPreprocessor.from_dict(json.loads(json.dumps(pre.to_dict())))
    assert restored.feature_names == pre.feature_names
    np.testing.assert_array_equal(restored.transform(test_rows), pre.transform(test_rows))


def test_clear_errors(train):
    with pytest.raises(RuntimeError, match="not fitted"):
        TabularPreprocessor().transform(train)
    pre = TabularPreprocessor().fit(train)
    with pytest.raises(ValueError, match="'age'"):
        pre.transform(train.drop(columns="age"))
    with pytest.raises(ValueError, match="'sex'.*non-numeric"):
        TabularPreprocessor(numeric=["sex"]).fit(train)
    with pytest.raises(ValueError, match="format_version"):
        TabularPreprocessor.from_dict({"numeric": []})


def test_encoder_over_preprocessed_rows(train, test_rows):
    pre = TabularPreprocessor().fit(train)
    enc = TabularEncoder.from_preprocessor(pre, feature_dim=16)
    assert enc.input_spec.n_features == pre.n_features
    assert enc.input_spec.extra["feature_names"] == pre.feature_names
    out = enc(torch.from_numpy(pre.transform(test_rows)))
    assert out.shape == (2, 16) and torch.isfinite(out).all()
    registered = create_encoder("tabular-mlp", n_features=pre.n_features, hidden=(32, 32))
    assert registered.feature_dim == 64 and registered(torch.zeros(3, pre.n_features)).shape == (3, 64)
    with pytest.raises(ValueError, match="n_features"):
        TabularEncoder(n_features=0)
