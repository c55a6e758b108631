"""Clinical variables as a numeric table: a preprocessor fitted on training rows and an MLP encoder.

:class:`TabularPreprocessor` turns a DataFrame of clinical variables into a float32 matrix:

* numeric columns: standardised with the TRAINING mean and standard deviation (population, ddof=0);
  a missing value becomes 0 (the training mean) and a ``<column>__missing`` indicator column is set
  to 1, so the model can tell "average" from "not measured";
* categorical columns: one-hot over the levels seen in training plus an ``unknown`` level that takes
  both missing values and levels never seen in training.

It is fitted once on the training split only (test statistics must not leak into training) and is
saved with the model checkpoint via :meth:`TabularPreprocessor.to_dict`.

:class:`TabularEncoder` (registered ``tabular-mlp``) is a small MLP over that matrix.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from riskfm.clinical.spec import TabularInputSpec
from riskfm.encoders import register_encoder

__all__ = ["TabularEncoder", "TabularPreprocessor"]

#: Name of the level that takes missing values and categories unseen in training.
UNKNOWN_LEVEL = "unknown"
_FORMAT_VERSION = 1


def _is_missing_scalar(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float | np.floating) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def _category_label(value: Any) -> str:
    # Categories are compared as stripped strings so that 1 and "1", or "male " and "male", agree
    # between a CSV-read training set and a DataFrame built in code.
    if isinstance(value, float | np.floating) and float(value).is_integer():
        value = int(value)
    return str(value).strip()


class TabularPreprocessor:
    """Standardise numeric columns, one-hot categoricals, flag missing values.

    Parameters
    ----------
    numeric : sequence of str, optional
        Numeric columns. If both ``numeric`` and ``categorical`` are None, they are inferred at
        :meth:`fit`: bool and number dtypes are numeric, everything else categorical.
    categorical : sequence of str, optional
        Categorical columns.
    exclude : iterable of str, default ()
        Columns never used when inferring (identifiers, targets).

    Attributes
    ----------
    numeric_columns_, categorical_columns_ : list of str
        Columns used, in output order (set by :meth:`fit`).
    means_, stds_ : dict of str -> float
        Training mean and standard deviation of each numeric column (std 1.0 when the column is
        constant or entirely missing in training, so it maps to 0 instead of dividing by zero).
    categories_ : dict of str -> list of str
        Training levels of each categorical column (sorted), ``unknown`` last.
    feature_names : list of str
        Names of the output columns: ``col``, ``col__missing`` per numeric column, then
        ``col=level`` per categorical level.

    Examples
    --------
    >>> train = pd.DataFrame({"age": [50.0, 70.0, None], "sex": ["female", "male", "male"]})
    >>> pre = TabularPreprocessor().fit(train)
    >>> pre.feature_names
    ['age', 'age__missing', 'sex=female', 'sex=male', 'sex=unknown']
    >>> pre.transform(pd.DataFrame({"age": [60.0], "sex": ["other"]})).tolist()
    [[0.0, 0.0, 0.0, 0.0, 1.0]]
    """

    def __init__(
        self,
        numeric: Sequence[str] | None = None,
        categorical: Sequence[str] | None = None,
        exclude: Iterable[str] = (),
    ) -> None:
        self.numeric = None if numeric is None else list(numeric)
        self.categorical = None if categorical is None else list(categorical)
        self.exclude = list(exclude)
        overlap = set(self.numeric or ()) & set(self.categorical or ())
        if overlap:
            raise ValueError(f"TabularPreprocessor: columns both numeric and categorical: {sorted(overlap)}")
        self.numeric_columns_: list[str] | None = None
        self.categorical_columns_: list[str] = []
        self.means_: dict[str, float] = {}
        self.stds_: dict[str, float] = {}
        self.categories_: dict[str, list[str]] = {}

    # ------------------------------------------------------------------ fitting
    @staticmethod
    def _numeric_values(df: pd.DataFrame, col: str) -> np.ndarray:
        series = df[col]
        if series.dtype == bool:
            series = series.astype(float)
        # Empty strings in a CSV column mean "not recorded", like NaN.
        if series.dtype == object:
            series = series.map(lambda v: np.nan if _is_missing_scalar(v) else v)
        try:
            return pd.to_numeric(series, errors="raise").to_numpy(dtype=np.float64, na_value=np.nan)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"TabularPreprocessor: column {col!r} is declared numeric but holds "
                             f"non-numeric values ({exc})") from exc

    def fit(self, df: pd.DataFrame) -> TabularPreprocessor:
        """Learn means, standard deviations and category levels from TRAINING rows only.

        Parameters
        ----------
        df : DataFrame
            Training rows, one per patient.

        Returns
        -------
        self
        """
        if not isinstance(df, pd.DataFrame):
            raise TypeError(f"TabularPreprocessor.fit expects a DataFrame, got {type(df).__name__}")
        if len(df) == 0:
            raise ValueError("TabularPreprocessor.fit: the training DataFrame has no rows")
        if self.numeric is None and self.categorical is None:
            cols = [c for c in df.columns if c not in set(self.exclude)]
            numeric = [c for c in cols if pd.api.types.is_bool_dtype(df[c]) or pd.api.types.is_numeric_dtype(df[c])]
            categorical = [c for c in cols if c not in set(numeric)]
        else:
            numeric, categorical = list(self.numeric or []), list(self.categorical or [])
        absent = [c for c in [*numeric, *categorical] if c not in df.columns]
        if absent:
            raise ValueError(f"TabularPreprocessor.fit: columns not in the DataFrame: {absent}")
        if not numeric and not categorical:
            raise ValueError("TabularPreprocessor.fit: no columns to encode")

        means, stds = {}, {}
        for col in numeric:
            values = self._numeric_values(df, col)
            observed = values[~np.isnan(values)]
            mean = float(observed.mean()) if observed.size else 0.0
            std = float(observed.std()) if observed.size else 0.0
            means[col] = mean
            stds[col] = std if std > 0 and math.isfinite(std) else 1.0
        categories = {}
        for col in categorical:
            levels = {_category_label(v) for v in df[col] if not _is_missing_scalar(v)}
            levels.discard(UNKNOWN_LEVEL)
            categories[col] = [*sorted(levels), UNKNOWN_LEVEL]

        self.numeric_columns_ = numeric
        self.categorical_columns_ = categorical
        self.means_, self.stds_, self.categories_ = means, stds, categories
        return self

    def _check_fitted(self) -> None:
        if self.numeric_columns_ is None:
            raise RuntimeError("TabularPreprocessor is not fitted: call fit(train_df) or from_dict(...) first")

    @property
    def feature_names(self) -> list[str]:
        """Output column names (see class docstring)."""
        self._check_fitted()
        names: list[str] = []
        for col in self.numeric_columns_ or []:
            names += [col, f"{col}__missing"]
        for col in self.categorical_columns_:
            names += [f"{col}={level}" for level in self.categories_[col]]
        return names

    @property
    def n_features(self) -> int:
        """Number of output columns (the ``n_features`` of a :class:`TabularEncoder`)."""
        return len(self.feature_names)

    # ------------------------------------------------------------------ transform
    def transform(self, df: pd.DataFrame) -> np.ndarray:
        """Encode rows with the fitted statistics.

        Parameters
        ----------
        df : DataFrame
            Rows to encode; must hold every fitted column (extra columns are ignored).

        Returns
        -------
        ndarray, float32, shape [n_rows, n_features]
        """
        self._check_fitted()
        if not isinstance(df, pd.DataFrame):
            raise TypeError(f"TabularPreprocessor.transform expects a DataFrame, got {type(df).__name__}")
        absent = [c for c in [*(self.numeric_columns_ or []), *self.categorical_columns_] if c not in df.columns]
        if absent:
            raise ValueError(f"TabularPreprocessor.transform: fitted columns missing from the DataFrame: {absent}")
        blocks: list[np.ndarray] = []
        for col in self.numeric_columns_ or []:
            values = self._numeric_values(df, col)
            missing = np.isnan(values)
            z = np.where(missing, 0.0, (values - self.means_[col]) / self.stds_[col])
            blocks += [z[:, None], missing.astype(np.float64)[:, None]]
        for col in self.categorical_columns_:
            levels = self.categories_[col]
            index = {level: i for i, level in enumerate(levels)}
            unknown = len(levels) - 1
            codes = np.array(
                [unknown if _is_missing_scalar(v) else index.get(_category_label(v), unknown) for v in df[col]],
                dtype=np.int64,
            )
            onehot = np.zeros((len(df), len(levels)))
            onehot[np.arange(len(df)), codes] = 1.0
            blocks.append(onehot)
        out = np.concatenate(blocks, axis=1) if blocks else np.zeros((len(df), 0))
        return out.astype(np.float32)

    def fit_transform(self, df: pd.DataFrame) -> np.ndarray:
        """Fit on ``df``, then return ``transform(df)`` ``[n_rows, n_features]`` float32."""
        return self.fit(df).transform(df)

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-serialisable state, to be saved with the model checkpoint."""
        self._check_fitted()
        return {
            "format_version": _FORMAT_VERSION,
            "numeric": [
                {"column": c, "mean": self.means_[c], "std": self.stds_[c]} for c in self.numeric_columns_ or []
            ],
            "categorical": [{"column": c, "levels": list(self.categories_[c])} for c in self.categorical_columns_],
        }

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> TabularPreprocessor:
        """Rebuild a fitted preprocessor from :meth:`to_dict` output."""
        try:
            version = state["format_version"]
            numeric = state["numeric"]
            categorical = state["categorical"]
        except (KeyError, TypeError) as exc:
            raise ValueError(f"TabularPreprocessor.from_dict: not a saved preprocessor (missing {exc})") from exc
        if version != _FORMAT_VERSION:
            raise ValueError(f"TabularPreprocessor.from_dict: unsupported format_version {version!r}")
        pre = cls(numeric=[d["column"] for d in numeric], categorical=[d["column"] for d in categorical])
        pre.numeric_columns_ = list(pre.numeric or [])
        pre.categorical_columns_ = list(pre.categorical or [])
        pre.means_ = {d["column"]: float(d["mean"]) for d in numeric}
        pre.stds_ = {d["column"]: float(d["std"]) for d in numeric}
        pre.categories_ = {d["column"]: [str(level) for level in d["levels"]] for d in categorical}
        for col, levels in pre.categories_.items():
            if not levels or levels[-1] != UNKNOWN_LEVEL:
                raise ValueError(f"TabularPreprocessor.from_dict: levels of {col!r} must end with {UNKNOWN_LEVEL!r}")
        return pre

    def __repr__(self) -> str:
        if self.numeric_columns_ is None:
            return "TabularPreprocessor(unfitted)"
        return (f"TabularPreprocessor(numeric={self.numeric_columns_}, categorical={self.categorical_columns_}, "
                f"n_features={self.n_features})")


@register_encoder(
    "tabular-mlp",
    modality="clinical",
    licence="MIT",
    source="riskfm (trained from scratch; no pretrained weights)",
    description="MLP over preprocessed clinical variables (standardised numerics, one-hot categoricals)",
)
class TabularEncoder(nn.Module):
    """MLP encoder of preprocessed clinical variables.

    Parameters
    ----------
    n_features : int
        Input width (``TabularPreprocessor.n_features``).
    hidden : sequence of int, default (64,)
        Hidden layer widths (Linear -> ReLU -> Dropout each).
    feature_dim : int, default 64
        Output width ``D``.
    dropout : float, default 0.1
    feature_names : sequence of str, optional
        Names of the input columns (recorded in ``input_spec.extra`` for provenance and checks).

    Examples
    --------
    >>> enc = TabularEncoder(n_features=5)
    >>> enc(torch.zeros(3, 5)).shape
    torch.Size([3, 64])
    """

    modality = "clinical"

    def __init__(
        self,
        n_features: int,
        hidden: Sequence[int] = (64,),
        feature_dim: int = 64,
        dropout: float = 0.1,
        feature_names: Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(n_features, int | np.integer) or n_features < 1:
            raise ValueError(f"TabularEncoder: n_features must be a positive int, got {n_features!r}")
        if feature_dim < 1 or any(h < 1 for h in hidden):
            raise ValueError(f"TabularEncoder: widths must be positive (hidden={hidden}, feature_dim={feature_dim})")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"TabularEncoder: dropout must be in [0, 1), got {dropout}")
        extra: dict[str, Any] = {}
        if feature_names is not None:
            if len(feature_names) != n_features:
                raise ValueError(
                    f"TabularEncoder: {len(feature_names)} feature_names for n_features={n_features}"
                )
            extra["feature_names"] = list(feature_names)
        self.n_features = int(n_features)
        self.feature_dim = int(feature_dim)
        self.input_spec = TabularInputSpec(n_features=self.n_features, extra=extra)
        layers: list[nn.Module] = []
        width = self.n_features
        for h in hidden:
            layers += [nn.Linear(width, int(h)), nn.ReLU(), nn.Dropout(dropout)]
            width = int(h)
        layers.append(nn.Linear(width, self.feature_dim))
        self.mlp = nn.Sequential(*layers)

    @classmethod
    def from_preprocessor(cls, preprocessor: TabularPreprocessor, **kwargs: Any) -> TabularEncoder:
        """Build an encoder sized for a fitted preprocessor (``n_features`` and ``feature_names`` from it)."""
        names = preprocessor.feature_names
        return cls(n_features=len(names), feature_names=names, **kwargs)

    @classmethod
    def tabular_kwargs(cls, preprocessor: TabularPreprocessor) -> dict[str, Any]:
        """Return the keyword arguments sizing the encoder for a fitted preprocessor (``n_features``).

        ``riskfm train`` fits a :class:`TabularPreprocessor` on the training split for every clinical
        encoder class that has this method and passes these keywords (unless the config sets them).
        """
        return {"n_features": preprocessor.n_features}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Encode a batch.

        Parameters
        ----------
        x : Tensor [B, n_features], float
            Output of :meth:`TabularPreprocessor.transform`.

        Returns
        -------
        Tensor [B, feature_dim]
        """
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"TabularEncoder expects [B, {self.n_features}], got shape {tuple(x.shape)}")
        return self.mlp(x)
