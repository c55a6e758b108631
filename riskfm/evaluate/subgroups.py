"""Any metric per subgroup with confidence intervals, and fairness gaps between subgroups.

Subgroups come from patient attributes (sex, age band, site, CAC category ...). For each level
the metric is computed on that level's patients with a stratified bootstrap interval; levels
with a single class get NaN and a note instead of failing the whole table.

Fairness gaps (following the CAC foundation-model paper's convention):

- binary attribute (two levels g and ~g): ``Gap_g = M_g - M_~g``;
- multi-level attribute (S_1 ... S_k): ``Gap_Sj = M_Sj - median(M_S1, ..., M_Sk)``.

A gap of 0 means the metric is the same in that subgroup as in the others.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from riskfm.evaluate.calibration import brier_score
from riskfm.evaluate.discrimination import Estimate, _z, average_precision, check_binary_scores, roc_auc


def _bootstrap_ci(y: np.ndarray, p: np.ndarray, fn: Callable[[np.ndarray, np.ndarray], float], n_boot: int,
                  seed: int, confidence: float) -> tuple[float, float]:
    """Stratified percentile bootstrap interval of ``fn(y, p)`` (loop: any metric)."""
    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    vals = np.empty(n_boot)
    for b in range(n_boot):
        idx = np.r_[rng.choice(pos, len(pos)), rng.choice(neg, len(neg))]
        vals[b] = fn(y[idx], p[idx])
    alpha = 1.0 - confidence
    lo, hi = np.nanquantile(vals, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def _brier(y: Any, p: Any, ci: str | None = "bootstrap", n_boot: int = 500, seed: int = 0,
           confidence: float = 0.95) -> Estimate:
    y_b, p_f = check_binary_scores(y, p)
    y_f = y_b.astype(float)
    value = brier_score(y_f, p_f)
    lo, hi = (math.nan, math.nan) if ci is None else _bootstrap_ci(y_f, p_f, brier_score, n_boot, seed, confidence)
    return Estimate(value, lo, hi, "bootstrap" if ci else "none", len(y_f), int(y_f.sum()), confidence)


def _rate(name: str) -> Callable[..., Estimate]:
    def fn(y: Any, p: Any, ci: str | None = "bootstrap", n_boot: int = 500, seed: int = 0,
           confidence: float = 0.95, threshold: float | None = None) -> Estimate:
        from riskfm.evaluate.thresholds import threshold_metrics

        if threshold is None:
            raise ValueError(f"metric {name!r} needs a threshold")
        return getattr(threshold_metrics(y, p, threshold, confidence=confidence, seed=seed), name)
    return fn


# name -> (function(y, p, ci=, n_boot=, seed=, confidence=[, threshold=]) -> Estimate, higher is better)
METRICS: dict[str, tuple[Callable[..., Estimate], bool]] = {
    "auroc": (roc_auc, True),
    "auprc": (average_precision, True),
    "brier": (_brier, False),
    "sensitivity": (_rate("sensitivity"), True),
    "specificity": (_rate("specificity"), True),
    "ppv": (_rate("ppv"), True),
    "npv": (_rate("npv"), True),
}


def metric_estimate(metric: str, y: Any, p: Any, *, n_boot: int = 500, seed: int = 0, confidence: float = 0.95,
                    threshold: float | None = None) -> Estimate:
    """One metric of ``METRICS`` with its interval (bootstrap, or Wilson for the rates at a threshold)."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose from {sorted(METRICS)}")
    fn = METRICS[metric][0]
    kwargs: dict[str, Any] = {"n_boot": n_boot, "seed": seed, "confidence": confidence}
    if metric in ("sensitivity", "specificity", "ppv", "npv"):
        kwargs["threshold"] = threshold
    return fn(y, p, **kwargs)


def bin_numeric(values: Any, edges: Sequence[float] | None = None, n_quantiles: int = 4, name: str = "value") -> pd.Series:
    """Turn a numeric attribute into ordered labelled bands.

    Parameters
    ----------
    values : array-like, shape [n]
        Numeric attribute (NaN stays missing).
    edges : sequence of float, optional
        Inner cut points: ``[50, 65]`` gives ``<=50``, ``50-65``, ``>65`` (right-closed bands, as
        in "age 0-50, 51-65, >65"). Default: ``n_quantiles`` quantile bands (Q1 ... Qk).
    n_quantiles : int
        Number of quantile bands when ``edges`` is None.
    name : str
        Attribute name for error messages.

    Returns
    -------
    pandas.Series of str (categorical, ordered)
    """
    x = pd.to_numeric(pd.Series(values), errors="coerce")
    if x.notna().sum() == 0:
        raise ValueError(f"attribute {name!r} has no numeric values to bin")
    if edges is None:
        codes = pd.qcut(x, n_quantiles, labels=False, duplicates="drop")
        labels = [f"Q{i + 1}" for i in range(int(np.nanmax(codes)) + 1)]
        out = pd.Series(pd.Categorical.from_codes(codes.fillna(-1).astype(int), categories=labels), index=x.index)
        return out
    e = sorted(float(v) for v in edges)
    bins = [-np.inf, *e, np.inf]
    fmt = [f"{v:g}" for v in e]
    labels = [f"\u2264{fmt[0]}"] + [f"{a}\u2013{b}" for a, b in zip(fmt[:-1], fmt[1:])] + [f">{fmt[-1]}"]
    return pd.Series(pd.cut(x, bins=bins, labels=labels, right=True), index=x.index)


def subgroup_metrics(
    y: Any, p: Any, groups: Any, metric: str = "auroc", *, attribute: str = "subgroup", n_boot: int = 500,
    seed: int = 0, confidence: float = 0.95, threshold: float | None = None, min_n: int = 10,
    levels: Sequence[Any] | None = None,
) -> pd.DataFrame:
    """A metric with its interval for all patients and for each subgroup level.

    Parameters
    ----------
    y : array-like, shape [n]
        Outcome 0/1.
    p : array-like, shape [n]
        Predicted risk.
    groups : array-like, shape [n]
        Level per patient; missing levels (NaN/None) are left out of the per-level rows.
    metric : str
        A name in ``METRICS`` (auroc, auprc, brier, sensitivity, specificity, ppv, npv).
    attribute : str
        Name of the attribute (the ``attribute`` column).
    n_boot, seed, confidence : int, int, float
        Interval settings.
    threshold : float, optional
        Needed by the rates at a threshold.
    min_n : int
        Levels with fewer patients get NaN and a note (too small to estimate).
    levels : sequence, optional
        Levels in display order (default: the categories of a categorical ``groups``, else sorted).

    Returns
    -------
    pandas.DataFrame
        Columns ``attribute``, ``level`` (``"All"`` first), ``metric``, ``n``, ``n_pos``, ``value``,
        ``low``, ``high``, ``note``.
    """
    _z(confidence)
    y_b, p_f = check_binary_scores(y, p)
    g = pd.Series(np.asarray(groups, dtype=object))
    if len(g) != len(y_b):
        raise ValueError(f"groups has {len(g)} labels for {len(y_b)} patients")
    if levels is None and isinstance(groups, pd.Series) and isinstance(groups.dtype, pd.CategoricalDtype):
        levels = list(groups.cat.categories)
    if levels is None:
        levels = sorted(g.dropna().unique().tolist(), key=str)
    present = set(g.dropna().tolist())
    levels = [lv for lv in levels if lv in present]
    rows = []
    for level in ["All", *levels]:
        m = np.ones(len(g), bool) if level == "All" else (g == level).to_numpy()
        n, n_pos = int(m.sum()), int(y_b[m].sum())
        row = {"attribute": attribute, "level": str(level), "metric": metric, "n": n, "n_pos": n_pos,
               "value": math.nan, "low": math.nan, "high": math.nan, "note": ""}
        if n < min_n:
            row["note"] = f"fewer than {min_n} patients"
        elif n_pos in (0, n):
            row["note"] = "single class"
        else:
            est = metric_estimate(metric, y_b[m], p_f[m], n_boot=n_boot, seed=seed, confidence=confidence,
                                  threshold=threshold)
            row.update(value=est.value, low=est.low, high=est.high)
        rows.append(row)
    return pd.DataFrame(rows)


def fairness_gaps(table: pd.DataFrame) -> pd.DataFrame:
    """Fairness gaps of each subgroup from a ``subgroup_metrics`` table.

    Parameters
    ----------
    table : pandas.DataFrame
        Output of ``subgroup_metrics`` (one attribute; the ``All`` row is ignored).

    Returns
    -------
    pandas.DataFrame
        Columns ``attribute``, ``level``, ``metric``, ``value``, ``reference`` (M of the other level
        for a binary attribute, the median over levels otherwise), ``gap`` = value - reference,
        ``kind`` (``"binary"`` or ``"median"``). Levels with NaN metrics get NaN gaps.
    """
    t = table[table["level"] != "All"]
    out = []
    defined = t.dropna(subset=["value"])
    binary = len(t) == 2
    med = float(np.median(defined["value"])) if len(defined) else math.nan
    for _, r in t.iterrows():
        if binary:
            other = t[t["level"] != r["level"]]["value"].iloc[0]
            ref, kind = float(other), "binary"
        else:
            ref, kind = med, "median"
        out.append({"attribute": r["attribute"], "level": r["level"], "metric": r["metric"], "value": r["value"],
                    "reference": ref, "gap": float(r["value"]) - ref, "kind": kind})
    return pd.DataFrame(out, columns=["attribute", "level", "metric", "value", "reference", "gap", "kind"])
