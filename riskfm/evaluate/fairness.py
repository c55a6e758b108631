"""Fairness gaps between subgroups, with bootstrap confidence intervals over patients.

For one attribute (sex, age band, site, CAC category ...) with levels S_1 ... S_k and a metric M
computed on each level's patients (AUROC, Brier, MAE of a score, Cohen's kappa, mean Dice ...),
the gaps follow the CAC foundation-model paper's convention (seed 000):

- binary attribute (two levels g and ~g): ``Gap_g = M_g - M_~g``;
- multi-level attribute: ``Gap_Sj = M_Sj - median(M_S1, ..., M_Sk)``;
- and, for every attribute, the range ``max_j M_Sj - min_j M_Sj`` (the headline ``value`` of
  :class:`FairnessGaps`, the row ``level = "max - min"`` of its table).

A gap of 0 means the metric is the same in that subgroup as in the others. Levels whose metric
is not estimable take no part: they get no gap and are not in the median or the range (for
AUROC / AUPRC the small-sample rule of ``riskfm.evaluate.guards``; for other metrics fewer than
``min_n`` patients, a single class where the metric needs two, or an undefined value).

Intervals: a percentile bootstrap over patients, stratified by level (and, for metrics of a
binary outcome, by outcome within each level), so every resample keeps each level's size and
events. Each resample recomputes every level's metric and every gap on the same resampled
patients (the gaps of one resample are paired), and the interval of a gap is
``np.quantile(resampled gaps, [alpha / 2, 1 - alpha / 2])``. The resampling is fixed by
``seed``: one ``numpy.random.default_rng(seed)`` draws, level by level in display order (and,
within a level, positives before negatives), an ``[n_resamples, size]`` matrix of positions with
``integers(0, size)``. :attr:`FairnessGaps.resamples` keeps every resampled gap. A resample on
which some level's metric is undefined (a PPV without a positive call, a kappa of one category, a
function returning NaN) has no gaps: every gap and the range are NaN there, and the intervals are
the percentiles of the other resamples (:attr:`FairnessGaps.resamples_without_gaps` counts them).

Metrics by name (:data:`GAP_METRICS`) read one or two columns of the table:

- of a binary outcome, ``columns=(y, p)`` (default ``("y_true", "y_prob")``): ``auroc``,
  ``auprc``, ``brier``, and with ``threshold=`` ``sensitivity``, ``specificity``, ``ppv``, ``npv``;
- of paired scores, ``columns=(reference, predicted)`` (default ``("reference", "predicted")``):
  ``mae`` = mean |predicted - reference|, ``rmse``, ``bias`` = mean(predicted - reference) (the
  units of the scores, e.g. Agatston), ``kappa`` (unweighted Cohen's kappa of two category codes);
- of one per-patient value, ``columns=(value,)`` (default ``("value",)``): ``mean`` (e.g. the mean
  of a per-exam Dice column).

Any other metric is a callable ``metric(*arrays) -> float`` on the arrays of ``columns``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import numpy as np
import pandas as pd

from riskfm.evaluate._checks import (
    as_finite_1d,
    check_binary_scores,
    check_confidence,
    check_level_names,
    check_n_boot,
)
from riskfm.evaluate.agreement import kappa_value
from riskfm.evaluate.discrimination import _auc_from_classes, average_precision
from riskfm.evaluate.guards import DEFAULT_MIN_EVENTS, DEFAULT_MIN_NONEVENTS, estimable
from riskfm.evaluate.results import Result, _save, bootstrap_method, jsonable, make_ci, percentile_ci

__all__ = ["GAP_METRICS", "FairnessGaps", "fairness_gaps"]

RANGE_LEVEL = "max - min"
#: Columns of ``FairnessGaps.table``.
FAIRNESS_COLUMNS: tuple[str, ...] = ("attribute", "level", "metric", "n", "n_pos", "metric_value", "reference", "gap",
                                     "ci_low", "ci_high", "kind", "not_estimable")


def _auroc(y: np.ndarray, p: np.ndarray, threshold: float | None = None) -> float:
    return _auc_from_classes(p[y], p[~y])


def _auprc(y: np.ndarray, p: np.ndarray, threshold: float | None = None) -> float:
    return average_precision(y, p, ci=None).value


def _brier(y: np.ndarray, p: np.ndarray, threshold: float | None = None) -> float:
    return float(np.mean((p - y.astype(float)) ** 2))


def _rate(name: str) -> Callable[..., float]:
    def fn(y: np.ndarray, p: np.ndarray, threshold: float | None = None) -> float:
        pos = p >= threshold
        k, n = {"sensitivity": (pos & y, y), "specificity": (~pos & ~y, ~y), "ppv": (pos & y, pos),
                "npv": (~pos & ~y, ~pos)}[name]
        n = int(n.sum())
        return int(k.sum()) / n if n else math.nan
    return fn


def _mae(reference: np.ndarray, predicted: np.ndarray) -> float:
    return float(np.abs(predicted - reference).mean())


def _rmse(reference: np.ndarray, predicted: np.ndarray) -> float:
    return float(np.sqrt(((predicted - reference) ** 2).mean()))


def _bias(reference: np.ndarray, predicted: np.ndarray) -> float:
    return float((predicted - reference).mean())


def _mean(values: np.ndarray) -> float:
    return float(values.mean())


class GapMetric(NamedTuple):
    """A metric by name: ``fn`` on the level's arrays, its ``family`` and default ``columns``."""

    fn: Callable[..., float]
    family: str  # "binary" (labels, scores), "paired" (reference, predicted) or "single"
    columns: tuple[str, ...]


_BINARY = ("y_true", "y_prob")
#: The metrics ``fairness_gaps`` knows by name.
GAP_METRICS: dict[str, GapMetric] = {
    "auroc": GapMetric(_auroc, "binary", _BINARY),
    "auprc": GapMetric(_auprc, "binary", _BINARY),
    "brier": GapMetric(_brier, "binary", _BINARY),
    **{name: GapMetric(_rate(name), "binary", _BINARY) for name in ("sensitivity", "specificity", "ppv", "npv")},
    "mae": GapMetric(_mae, "paired", ("reference", "predicted")),
    "rmse": GapMetric(_rmse, "paired", ("reference", "predicted")),
    "bias": GapMetric(_bias, "paired", ("reference", "predicted")),
    "kappa": GapMetric(kappa_value, "paired", ("reference", "predicted")),
    "mean": GapMetric(_mean, "single", ("value",)),
}
_DISCRIMINATION = ("auroc", "auprc")
_THRESHOLD = ("sensitivity", "specificity", "ppv", "npv")


@dataclass
class FairnessGaps(Result):
    """Fairness gaps of one attribute with bootstrap intervals.

    Attributes
    ----------
    value : float
        The range: largest minus smallest metric over the estimable levels (NaN with fewer than 2).
    ci : (float, float) or None
        Its percentile bootstrap interval.
    method : str
        ``"stratified bootstrap (<n> resamples) over patients"``.
    n : int
        Patients with a level.
    attribute, metric : str
    table : pandas.DataFrame
        One row per level (display order) and a last row ``level = "max - min"``: ``attribute``,
        ``level``, ``metric``, ``n``, ``n_pos`` (events; NaN for metrics without an outcome),
        ``metric_value`` (the level's metric), ``reference`` (the other level's metric for a
        binary attribute, the median over the estimable levels otherwise), ``gap``, ``ci_low``,
        ``ci_high`` (the interval of ``gap``), ``kind`` (``"binary"``, ``"median"`` or
        ``"range"``) and ``not_estimable`` (the reason; empty when the gap is reported).
    n_resamples, seed : int
    confidence : float
    not_estimable : str or None
        Why there is no gap at all (fewer than two estimable levels), else None.
    resamples : pandas.DataFrame
        ``[n_resamples, gaps]``: every resampled gap (a column per estimable level and
        ``"max - min"``); the intervals are its percentiles. Not in ``to_dict()``.
    resamples_without_gaps : int
        Resamples on which some level's metric was undefined (a PPV without a call, say), so
        they have no gaps and the intervals come from the others (a property; in ``to_dict()``).

    ``to_dict()`` adds ``levels``: ``{level: {"value": gap, "ci", "metric_value", "reference",
    "kind", "n", "n_pos"}}`` for the estimable levels. ``plot(path=None, **kwargs)`` draws
    ``riskfm.plots.fairness.plot_fairness_gaps``.
    """

    value: float
    ci: tuple[float, float] | None
    method: str
    n: int
    attribute: str
    metric: str
    table: pd.DataFrame
    n_resamples: int
    seed: int
    confidence: float
    not_estimable: str | None = None
    resamples: pd.DataFrame | None = None
    _not_in_dict: ClassVar[tuple[str, ...]] = ("table", "resamples")

    @property
    def resamples_without_gaps(self) -> int:
        """Count the resamples that have no gaps because some level's metric was undefined on them."""
        if self.resamples is None:
            return 0
        return int(self.resamples[RANGE_LEVEL].isna().sum())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the range (``value``, ``ci``), ``resamples_without_gaps`` and each level's gap under ``levels``."""
        out = super().to_dict()
        out["resamples_without_gaps"] = self.resamples_without_gaps
        out["levels"] = {
            str(r.level): jsonable({"value": r.gap, "ci": make_ci(r.ci_low, r.ci_high), "metric_value": r.metric_value,
                                    "reference": r.reference, "kind": r.kind, "n": int(r.n),
                                    "n_pos": None if pd.isna(r.n_pos) else int(r.n_pos)})
            for r in self.estimable_rows().itertuples(index=False) if r.kind != "range"}
        return out

    def estimable_rows(self) -> pd.DataFrame:
        """Return the rows of ``table`` with a gap (estimable levels and the range), index reset."""
        return self.table[self.table["not_estimable"] == ""].reset_index(drop=True)

    def plot(self, path: Any = None, **kwargs: Any):
        """Gap per level with its interval (``riskfm.plots.fairness.plot_fairness_gaps``); saved to ``path``."""
        from riskfm.plots.fairness import plot_fairness_gaps

        kwargs.setdefault("metric", self.metric)
        return _save(plot_fairness_gaps({kwargs.pop("name", "model"): self.table}, **kwargs), path)


def _levels_of(g: pd.Series, levels: Sequence[Any] | None) -> list[Any]:
    if levels is not None:
        out = list(levels)
    elif isinstance(g.dtype, pd.CategoricalDtype):
        present = set(g.dropna().tolist())
        out = [lv for lv in g.cat.categories if lv in present]
    else:
        out = sorted(g.dropna().unique().tolist(), key=str)
    check_level_names(out, str(g.name))  # the group column's name
    return out


def _gaps(values: dict[Any, float], binary: bool) -> tuple[dict[Any, tuple[float, float]], float]:
    """Per-level (reference, gap) and the range of the metric ``values`` of the estimable levels."""
    levels = list(values)
    if binary:
        a, b = levels
        out = {a: (values[b], values[a] - values[b]), b: (values[a], values[b] - values[a])}
    else:
        med = float(np.median([values[lv] for lv in levels]))
        out = {lv: (med, values[lv] - med) for lv in levels}
    # np.max / np.min, not the builtins: a NaN (a level undefined on one resample) must make the range NaN.
    # The builtins skip or keep a NaN depending on where it sits, so the range depended on the level order
    # and, with two levels, was 0 on such a resample.
    vals = np.array(list(values.values()), dtype=float)
    return out, float(vals.max() - vals.min())


def fairness_gaps(
    data: pd.DataFrame, group: str, metric: str | Callable[..., float], *,
    columns: Sequence[str] | str | None = None, levels: Sequence[Any] | None = None,
    threshold: float | None = None, n_resamples: int = 500, seed: int = 0, confidence: float = 0.95,
    min_n: int = 10, min_events: int = DEFAULT_MIN_EVENTS, min_nonevents: int = DEFAULT_MIN_NONEVENTS,
    attribute: str | None = None,
) -> FairnessGaps:
    """Gaps of a metric between the levels of one attribute, with bootstrap intervals over patients.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per patient (exam): the attribute column ``group`` and the metric's ``columns``.
        Rows without a level are left out.
    group : str
        The attribute column (e.g. ``"sex"``, ``"group_age"``).
    metric : str or callable
        A name in :data:`GAP_METRICS` (``auroc``, ``auprc``, ``brier``, ``sensitivity``,
        ``specificity``, ``ppv``, ``npv``, ``mae``, ``rmse``, ``bias``, ``kappa``, ``mean``) or a
        function ``metric(*arrays) -> float`` of the arrays of ``columns`` (then ``columns`` is
        required).
    columns : str or sequence of str, optional
        The columns the metric reads (see the module docstring for the defaults). For the
        binary-outcome metrics the first is the 0/1 outcome (no missing values) and the second the
        score.
    levels : sequence, optional
        Levels in display order (a level with no patient is listed as not estimable). Default:
        the categories of a categorical column, else the sorted distinct values. A binary
        attribute is one with exactly two levels.
    threshold : float, optional
        Needed by ``sensitivity``, ``specificity``, ``ppv`` and ``npv`` (positive when ``p >=
        threshold``).
    n_resamples : int
        Bootstrap resamples.
    seed : int
        Seed of ``numpy.random.default_rng``: the same seed gives the same resamples and intervals.
    confidence : float
        Coverage of the intervals.
    min_n : int
        Metrics other than AUROC / AUPRC: levels with fewer patients are not estimable.
    min_events, min_nonevents : int
        AUROC / AUPRC: the small-sample rule per level.
    attribute : str, optional
        Name in the table (default ``group``).

    Returns
    -------
    FairnessGaps

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"sex": ["F"] * 4 + ["M"] * 4, "reference": [0, 10, 100, 400] * 2,
    ...                    "predicted": [0, 12, 90, 420, 5, 10, 130, 380]})
    >>> g = fairness_gaps(df, "sex", "mae", min_n=1, n_resamples=200)
    >>> g.table["gap"].tolist()  # F: 8.0 - 13.75, M: 13.75 - 8.0, and max - min
    [-5.75, 5.75, 5.75]
    """
    if isinstance(metric, str):
        if metric not in GAP_METRICS:
            raise ValueError(f"unknown metric {metric!r}; choose from {sorted(GAP_METRICS)} or pass a function")
        spec = GAP_METRICS[metric]
        fn, family, name = spec.fn, spec.family, metric
        cols = spec.columns if columns is None else ((columns,) if isinstance(columns, str) else tuple(columns))
    else:
        if columns is None:
            raise ValueError("a metric function needs columns= (the columns it reads)")
        fn, family, name = metric, "function", getattr(metric, "__name__", "metric")
        cols = (columns,) if isinstance(columns, str) else tuple(columns)
    if name in _THRESHOLD and threshold is None:
        raise ValueError(f"metric {name!r} needs a threshold")
    conf = check_confidence(confidence)
    n_resamples = check_n_boot(n_resamples, minimum=2, name="n_resamples")
    missing = [c for c in (group, *cols) if c not in data.columns]
    if missing:
        raise ValueError(f"fairness_gaps: column(s) {missing} missing (have {list(data.columns)})")
    d = data[data[group].notna()]
    g = d[group]
    order = _levels_of(data[group], levels)
    arrays = [d[c].to_numpy() for c in cols]
    if family == "binary":
        y, p = check_binary_scores(arrays[0], arrays[1], name_y=cols[0], name_p=cols[1])
        arrays = [y, p]
    else:
        arrays = [as_finite_1d(a, f"column {c!r}") for a, c in zip(arrays, cols)]

    def value_of(idx: np.ndarray) -> float:
        args = [a[idx] for a in arrays]
        return float(fn(*args, threshold)) if family == "binary" else float(fn(*args))

    rows, values, strata = [], {}, []
    g_arr = g.to_numpy(dtype=object)
    for level in order:
        idx = np.flatnonzero(g_arr == level)
        n = len(idx)
        n_pos = int(arrays[0][idx].sum()) if family == "binary" else math.nan
        if family == "binary" and name in _DISCRIMINATION:
            reason = estimable(arrays[0][idx], min_events=min_events, min_nonevents=min_nonevents)
        elif n < min_n or n == 0:
            reason = f"{n} patients < {max(min_n, 1)}"
        elif family == "binary" and n_pos in (0, n):
            reason = f"single class ({n_pos} events of {n})"
        else:
            reason = None
        v = math.nan
        if reason is None:
            v = value_of(idx)
            if not math.isfinite(v):
                reason = "undefined on these patients"
        rows.append({"attribute": attribute or group, "level": str(level), "metric": name, "n": n, "n_pos": n_pos,
                     "metric_value": v, "reference": math.nan, "gap": math.nan, "ci_low": math.nan,
                     "ci_high": math.nan, "kind": "", "not_estimable": reason or ""})
        if reason is None:
            values[level] = v
            strata.append((level, [idx[arrays[0][idx]], idx[~arrays[0][idx]]] if family == "binary" else [idx]))
    binary = len(order) == 2
    kind = "binary" if binary else "median"
    n_used = int(sum(r["n"] for r in rows))
    method = bootstrap_method(n_resamples) + " over patients"
    table_rows = rows + [{"attribute": attribute or group, "level": RANGE_LEVEL, "metric": name,
                          "n": int(sum(r["n"] for r in rows if not r["not_estimable"])),
                          "n_pos": (int(sum(r["n_pos"] for r in rows if not r["not_estimable"]))
                                    if family == "binary" else math.nan),
                          "metric_value": math.nan, "reference": math.nan, "gap": math.nan, "ci_low": math.nan,
                          "ci_high": math.nan, "kind": "range", "not_estimable": ""}]
    if len(values) < 2:
        reason = f"{len(values)} estimable level" + ("" if len(values) == 1 else "s") + ", need 2"
        for r in table_rows:
            if not r["not_estimable"]:
                r["not_estimable"] = reason
        return FairnessGaps(math.nan, None, method, n_used, attribute or group, name, pd.DataFrame(table_rows),
                            n_resamples, seed, conf, reason, None)

    point, spread = _gaps(values, binary)
    # The bootstrap: positions drawn stratum by stratum (levels in display order), one matrix each.
    rng = np.random.default_rng(seed)
    draws = [(level, [s[rng.integers(0, len(s), size=(n_resamples, len(s)))] for s in parts])
             for level, parts in strata]
    boot = np.empty((n_resamples, len(values) + 1))
    for b in range(n_resamples):
        vals = {level: value_of(np.concatenate([m[b] for m in mats])) for level, mats in draws}
        gaps_b, spread_b = _gaps(vals, binary)
        boot[b, :-1] = [gaps_b[lv][1] for lv in values]
        boot[b, -1] = spread_b
    resamples = pd.DataFrame(boot, columns=[str(lv) for lv in values] + [RANGE_LEVEL])
    for r in rows:
        lv = next((k for k in values if str(k) == r["level"]), None)
        if lv is None or r["not_estimable"]:
            continue
        ci = percentile_ci(resamples[str(lv)], conf)
        r.update(reference=point[lv][0], gap=point[lv][1], kind=kind,
                 ci_low=ci[0] if ci else math.nan, ci_high=ci[1] if ci else math.nan)
    ci = percentile_ci(resamples[RANGE_LEVEL], conf)
    table_rows[-1].update(gap=spread, ci_low=ci[0] if ci else math.nan, ci_high=ci[1] if ci else math.nan)
    return FairnessGaps(spread, ci, method, n_used, attribute or group, name, pd.DataFrame(table_rows),
                        n_resamples, seed, conf, None, resamples)
