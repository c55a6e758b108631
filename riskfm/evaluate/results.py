"""The one shape of every result of ``riskfm.evaluate``, and how intervals are spelled.

A statistic returns an object with

- ``value``: the estimate (float);
- ``ci``: its confidence interval as a ``(low, high)`` tuple of floats, or None when no interval
  was computed (or it is undefined, e.g. DeLong with one positive);
- ``method``: how the interval was obtained, e.g. ``"stratified bootstrap (500 resamples)"``,
  ``"DeLong"``, ``"Wilson"``, ``"Wald"``, ``"asymptotic"``, ``"none"``;
- ``n``: the patients (pairs, exams) used;
- ``to_dict()``: a JSON-ready dictionary with the keys ``value``, ``ci``, ``method``, ``n`` and
  the result's own extras; and, where a figure exists, ``plot(path=None, **kwargs)``, which draws
  it with ``riskfm.plots`` and returns the Figure (saved to ``path`` when given).

Results made of several estimates (calibration: intercept and slope; operating points:
sensitivity, specificity, ...; survival: Harrell's and Uno's C) hold each of them as an
:class:`Estimate` and have ``n``, ``method`` and ``to_dict()``, in which every estimate is a
nested ``{"value", "ci", "method", "n", ...}`` object.

One spelling of an interval
---------------------------
- objects: ``ci = (low, high)``;
- JSON (``to_dict``, ``metrics.json``): ``"ci": [low, high]``, ``null`` when there is none;
- flat tables (DataFrames, CSV), where a pair does not fit in a cell: columns ``ci_low`` and
  ``ci_high`` when a row has one interval, ``<statistic>_ci_low`` and ``<statistic>_ci_high`` when
  it has several (e.g. ``auroc_ci_low``, ``auprc_ci_low``). Any other pair follows the same rule:
  the limits of agreement ``loa = (low, high)`` become ``loa_low``, ``loa_high``.

:func:`flat_row` turns a ``to_dict()`` into such a table row.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

__all__ = [
    "Estimate",
    "Result",
    "bootstrap_method",
    "finite_or_none",
    "flat_row",
    "jsonable",
    "make_ci",
    "percentile_ci",
]


def finite_or_none(x: Any) -> float | None:
    """``float(x)``, or None for None, NaN and infinities (how JSON holds a missing number)."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def make_ci(low: Any, high: Any) -> tuple[float, float] | None:
    """Return the interval ``(low, high)`` as floats, or None when either bound is missing (None or NaN)."""
    if low is None or high is None:
        return None
    low, high = float(low), float(high)
    if math.isnan(low) or math.isnan(high):
        return None
    return low, high


def percentile_ci(values: Any, confidence: float) -> tuple[float, float] | None:
    """Percentile bootstrap interval: the ``alpha / 2`` and ``1 - alpha / 2`` quantiles of ``values``.

    Parameters
    ----------
    values : array-like, shape [B]
        The statistic on each resample; NaN and infinite values (resamples where it is undefined)
        are left out.
    confidence : float
        Nominal coverage; ``alpha = 1 - confidence``.

    Returns
    -------
    (low, high) or None
        ``np.quantile(values, [alpha / 2, 1 - alpha / 2])`` (numpy's default linear
        interpolation); None when no resample gave a finite value.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        return None
    alpha = 1.0 - confidence
    low, high = np.quantile(v, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(low), float(high)


def bootstrap_method(n_resamples: int, kind: str = "stratified") -> str:
    """How a bootstrap interval is named in ``method``: ``"stratified bootstrap (500 resamples)"``."""
    return f"{kind + ' ' if kind else ''}bootstrap ({int(n_resamples)} resamples)"


def jsonable(x: Any) -> Any:
    """Plain-Python, JSON-ready version of ``x``.

    Result objects become their ``to_dict()``, tuples and arrays lists, numpy scalars Python
    numbers, NaN and infinities None, paths strings, DataFrames a ``{column: [values]}`` mapping.
    """
    if isinstance(x, Result):
        return x.to_dict()
    if isinstance(x, pd.DataFrame):
        return {str(c): jsonable(x[c].tolist()) for c in x.columns}
    if isinstance(x, Mapping):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple, np.ndarray, pd.Series)):
        return [jsonable(v) for v in (x.tolist() if isinstance(x, (np.ndarray, pd.Series)) else x)]
    if x is None or isinstance(x, (bool, str)):
        return x
    if isinstance(x, np.bool_):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        return finite_or_none(x)
    if isinstance(x, os.PathLike):
        return str(x)
    return x


def _is_estimate_dict(v: Any) -> bool:
    return isinstance(v, Mapping) and "value" in v and "ci" in v


def flat_row(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """One row of a flat table from a ``to_dict()`` (the table spelling of intervals).

    ``"ci": [low, high]`` becomes ``ci_low`` and ``ci_high``; any other pair ``"k": [low, high]``
    whose name ends in ``ci`` or is ``loa`` becomes ``k_low`` and ``k_high``; a nested estimate
    ``"auroc": {"value", "ci", ...}`` becomes ``auroc``, ``auroc_ci_low`` and ``auroc_ci_high``
    (its method, n and the like stay in the nested dict: tables show numbers); other nested
    mappings are flattened with their key as a prefix (``"survival": {"n": 3}`` -> ``survival_n``).
    Lists of other lengths are left as they are.
    """
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if _is_estimate_dict(v):
            out[key] = v["value"]
            ci = v["ci"] or [None, None]
            out[f"{key}_ci_low"], out[f"{key}_ci_high"] = ci[0], ci[1]
            if v.get("not_estimable"):
                out[f"{key}_not_estimable"] = v["not_estimable"]
        elif (k == "ci" or str(k).endswith("_ci") or k == "loa") and (v is None or isinstance(v, (list, tuple))):
            pair = v if v is not None else [None, None]
            out[f"{key}_low"], out[f"{key}_high"] = pair[0], pair[1]
        elif isinstance(v, Mapping):
            out.update(flat_row(v, prefix=f"{key}_"))
        else:
            out[key] = v
    return out


class Result:
    """Base of the result objects: ``to_dict()`` from the dataclass fields, ``to_row()`` for tables.

    Subclasses are dataclasses whose first fields are ``value``, ``ci``, ``method``, ``n`` (single
    estimates) or that hold :class:`Estimate` fields (composite results). Fields whose name starts
    with ``_`` and those listed in ``_not_in_dict`` (arrays for figures, tables) stay out of
    ``to_dict()``; a ``not_estimable`` field appears only when set.
    """

    _not_in_dict: ClassVar[tuple[str, ...]] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (NaN -> None, ``ci`` -> ``[low, high]`` or None, estimates nested)."""
        out: dict[str, Any] = {}
        for f in fields(self):  # type: ignore[arg-type]
            if f.name.startswith("_") or f.name in self._not_in_dict:
                continue
            v = getattr(self, f.name)
            if f.name == "not_estimable" and not v:
                continue
            out[f.name] = jsonable(v)
        return out

    def to_row(self) -> dict[str, Any]:
        """Return ``to_dict()`` flattened for a table row (``ci_low``, ``ci_high``; see :func:`flat_row`)."""
        return flat_row(self.to_dict())


def _save(fig: Any, path: str | os.PathLike | None) -> Any:
    """Save ``fig`` to ``path`` when given (``riskfm.plots.style.save_figure``) and return it."""
    if path is not None:
        from riskfm.plots.style import save_figure

        save_figure(fig, Path(path))
    return fig


@dataclass(frozen=True)
class Estimate(Result):
    """A point estimate with its confidence interval.

    Attributes
    ----------
    value : float
        The estimate (e.g. the AUROC, dimensionless in [0, 1]); NaN when not estimable.
    ci : (float, float) or None
        Confidence interval ``(low, high)``; None when no interval was computed or it is undefined
        (given as NaN bounds, it is stored as None).
    method : str
        How the interval was obtained: ``"stratified bootstrap (500 resamples)"``, ``"DeLong"``,
        ``"Wilson"``, ``"Wald"``, ``"parametric bootstrap (2000 resamples)"`` or ``"none"``.
    n : int
        Observations used (patients with a known label).
    n_pos : int or None
        Positives (events) among them, when the outcome is binary.
    confidence : float
        Nominal coverage of the interval, e.g. 0.95.
    se : float or None
        Standard error when the method gives one (DeLong, Wald: analytic; bootstrap: the
        standard deviation of the resampled estimates); None otherwise.
    not_estimable : str or None
        Why there is no value (the small-sample rule of ``riskfm.evaluate.guards``), else None.

    Examples
    --------
    >>> Estimate(0.8123, (0.7, 0.9), "DeLong", 10, 3).to_dict()["ci"]
    [0.7, 0.9]
    >>> Estimate(0.8, (float("nan"), float("nan")), "none", 10).ci is None
    True
    """

    value: float
    ci: tuple[float, float] | None = None
    method: str = "none"
    n: int = 0
    n_pos: int | None = None
    confidence: float = 0.95
    se: float | None = None
    not_estimable: str | None = None

    def __post_init__(self) -> None:
        ci = None if self.ci is None else make_ci(*self.ci)
        object.__setattr__(self, "ci", ci)
        object.__setattr__(self, "value", float(self.value) if self.value is not None else math.nan)

    @classmethod
    def missing(cls, reason: str, method: str, n: int, n_pos: int | None = None,
                confidence: float = 0.95) -> Estimate:
        """Return an estimate that is not estimable: NaN value, no interval, the reason."""
        return cls(math.nan, None, method, int(n), n_pos, confidence, None, reason)

    def __str__(self) -> str:
        if self.not_estimable:
            from riskfm.evaluate.guards import not_estimable_text

            return not_estimable_text(self.not_estimable)
        if self.ci is None:
            return f"{self.value:.3f}"
        return f"{self.value:.3f} [{self.ci[0]:.3f}, {self.ci[1]:.3f}]"
