"""Any metric per subgroup with confidence intervals, and fairness gaps between subgroups.

Subgroups come from patient attributes (sex, age band, site, CAC category ...). For each level
the metric is computed on that level's patients with a stratified bootstrap interval. A level
where the metric is not estimable gets NaN and the reason in ``not_estimable`` instead of failing
the whole table: for AUROC and AUPRC the small-sample rule of ``riskfm.evaluate.guards`` (fewer
than 10 events or 10 non-events), for the other metrics fewer than ``min_n`` patients or a single
class, and for PPV / NPV nobody at or above / below the threshold (the rate has no denominator).

``subgroup_attributes`` turns a covariate table (the manifest works) into attributes: reserved
manifest columns other than ``site`` (ids, image paths, outcomes, follow-up) are never
subgroups, numeric attributes with many values are cut into quantile bins with readable edges,
and a categorical attribute with more than ``max_levels`` levels is refused.

Fairness gaps between the levels, with bootstrap intervals, are computed by
``riskfm.evaluate.fairness.fairness_gaps``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from riskfm.evaluate._checks import check_binary_scores, check_confidence, check_level_names
from riskfm.evaluate.calibration import brier_score
from riskfm.evaluate.discrimination import average_precision, roc_auc
from riskfm.evaluate.guards import DEFAULT_MIN_EVENTS, DEFAULT_MIN_NONEVENTS, estimable
from riskfm.evaluate.results import Estimate, bootstrap_method, percentile_ci

log = logging.getLogger(__name__)

# Mirrors riskfm.data.manifest.RESERVED_COLUMNS (kept here so that evaluate needs no torch; a test
# checks they agree): ids, image paths, outcomes and follow-up are never subgroups, except site.
RESERVED_COLUMNS: tuple[str, ...] = (
    "patient_id", "site", "ecg_path", "ct_path", "stenosis_rca", "stenosis_lm", "stenosis_lad", "stenosis_lcx",
    "mace_30d", "time_to_event_days", "event")
PREDICTION_COLUMNS: tuple[str, ...] = ("split", "target", "y_true", "y_prob")
RESERVED_SUBGROUPS: tuple[str, ...] = ("site",)  # reserved, but a valid subgroup
DISCRIMINATION_METRICS: tuple[str, ...] = ("auroc", "auprc")
NUMERIC_LEVELS = 6  # numeric attributes with more distinct values are cut into quantile bins
# Why a rate at a threshold has no value although both classes are present (its denominator is 0).
_UNDEFINED = {"ppv": "no patients with risk >= {:g}", "npv": "no patients with risk < {:g}"}


def _bootstrap_ci(y: np.ndarray, p: np.ndarray, fn: Callable[[np.ndarray, np.ndarray], float], n_boot: int,
                  seed: int, confidence: float) -> tuple[float, float] | None:
    """Stratified percentile bootstrap interval of ``fn(y, p)`` (loop: any metric)."""
    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    vals = np.empty(n_boot)
    for b in range(n_boot):
        idx = np.r_[rng.choice(pos, len(pos)), rng.choice(neg, len(neg))]
        vals[b] = fn(y[idx], p[idx])
    return percentile_ci(vals, confidence)


def _brier(y: Any, p: Any, ci: str | None = "bootstrap", n_boot: int = 500, seed: int = 0,
           confidence: float = 0.95) -> Estimate:
    y_b, p_f = check_binary_scores(y, p)
    y_f = y_b.astype(float)
    value = brier_score(y_f, p_f)
    if ci is None:
        return Estimate(value, None, "none", len(y_f), int(y_f.sum()), confidence)
    return Estimate(value, _bootstrap_ci(y_f, p_f, brier_score, n_boot, seed, confidence), bootstrap_method(n_boot),
                    len(y_f), int(y_f.sum()), confidence)


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


def _readable(q: np.ndarray, integral: bool) -> np.ndarray:
    """Quantile cut points rounded to the fewest significant digits (2 to 6) that keep them apart."""
    q = np.unique(q)
    if integral:
        return np.unique(np.round(q))
    for digits in range(2, 7):
        with np.errstate(divide="ignore"):
            mags = np.where(q == 0, 0, np.floor(np.log10(np.abs(q))))
        r = np.array([round(float(v), int(digits - 1 - m)) for v, m in zip(q, mags)])
        if len(np.unique(r)) == len(q):
            return np.unique(r)
    return q


def quantile_edges(values: Any, n_quantiles: int = 4) -> list[float]:
    """Inner cut points of ``n_quantiles`` quantile bins, rounded to readable numbers.

    Integer-valued data (age in years, counts) get integer cut points; other data the fewest
    significant digits that keep the cut points distinct. Tied quantiles merge (fewer bins).
    """
    x = pd.to_numeric(pd.Series(values), errors="coerce").dropna().to_numpy(float)
    if len(x) == 0:
        raise ValueError("no numeric values to bin")
    q = np.quantile(x, np.linspace(0.0, 1.0, int(n_quantiles) + 1)[1:-1])
    edges = _readable(q, bool(np.all(x == np.round(x))))
    # A cut point at the minimum or maximum would leave an empty band.
    return [float(e) for e in edges if x.min() <= e < x.max()]


def bin_numeric(values: Any, edges: Sequence[float] | None = None, n_quantiles: int = 4, name: str = "value") -> pd.Series:
    """Turn a numeric attribute into ordered labelled bands.

    Parameters
    ----------
    values : array-like, shape [n]
        Numeric attribute (NaN stays missing).
    edges : sequence of float, optional
        Inner cut points: ``[50, 65]`` gives ``<=50``, ``50-65``, ``>65`` (right-closed bands, as
        in "age 0-50, 51-65, >65"). Default: ``n_quantiles`` quantile bands whose cut points
        are rounded to readable numbers (``quantile_edges``) and labelled the same way, e.g.
        ``<=52``, ``52-63``, ``63-71``, ``>71``.
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
    quantiles = edges is None
    if quantiles:
        edges = quantile_edges(x, n_quantiles)
        if not edges:  # a constant attribute: one band
            return pd.Series(pd.Categorical(np.where(x.notna(), f"{x.min():g}", None)), index=x.index)
    e = sorted(float(v) for v in edges)
    bins = [-np.inf, *e, np.inf]
    fmt = [f"{v:g}" for v in e]
    labels = [f"\u2264{fmt[0]}"] + [f"{a}\u2013{b}" for a, b in zip(fmt[:-1], fmt[1:])] + [f">{fmt[-1]}"]
    out = pd.Series(pd.cut(x, bins=bins, labels=labels, right=True), index=x.index)
    # Heavily tied data (e.g. mostly zeros) can leave a quantile band empty: drop it.
    return out.cat.remove_unused_categories() if quantiles else out


def _levels_text(x: pd.Series) -> pd.Series:
    """Numeric levels as text without a spurious ".0" (1.0 -> "1"); missing stays missing."""
    if pd.api.types.is_numeric_dtype(x) and not pd.api.types.is_bool_dtype(x):
        v = x.dropna()
        if len(v) and np.all(v == np.round(v)):
            return x.astype("Int64").astype("string").astype(object).where(x.notna(), None)
    return x.astype(object).where(x.notna(), None).map(lambda v: v if v is None else str(v))


def subgroup_attributes(
    covariates: pd.DataFrame,
    columns: Sequence[str] | None = None,
    *,
    bins: dict[str, Sequence[float]] | None = None,
    max_levels: int = 12,
    n_quantiles: int = 4,
    source: str = "covariates",
) -> tuple[dict[str, pd.Series], list[str]]:
    """Subgroup attributes from a covariate table (``patient_id`` + columns; the manifest works).

    Parameters
    ----------
    covariates : pandas.DataFrame
        One row per patient with a ``patient_id`` column.
    columns : sequence of str, optional
        Attributes to use. None: every column except the reserved manifest columns (ids, image
        paths, outcomes, follow-up; ``site`` is kept) and the predictions' own columns, which
        are left out with a note. Naming a reserved column other than ``site`` is an error.
    bins : dict, optional
        Cut points per numeric attribute (``{"age": [50, 65]}``).
    max_levels : int
        Most levels an attribute may have. A numeric attribute with more than 6 distinct
        values is cut into ``n_quantiles`` quantile bins; a categorical attribute with more than
        ``max_levels`` levels is refused.
    n_quantiles : int
        Quantile bins of numeric attributes (<= ``max_levels``).
    source : str
        Name of the table in messages.

    Returns
    -------
    attributes : dict
        Name -> Series of level labels indexed by ``patient_id`` (categorical when binned,
        keeping the band order); missing values stay missing.
    notes : list of str
        What was left out and why.

    Raises
    ------
    ValueError
        A requested column that is missing or reserved, or a categorical attribute with more
        than ``max_levels`` levels (named, with its number of levels).
    """
    if "patient_id" not in covariates.columns:
        raise ValueError(f"{source}: covariates need a 'patient_id' column")
    bins = dict(bins or {})
    if n_quantiles > max_levels:
        raise ValueError(f"n_quantiles ({n_quantiles}) exceeds max_levels ({max_levels})")
    available = [c for c in covariates.columns if c != "patient_id"]
    forbidden = set(RESERVED_COLUMNS + PREDICTION_COLUMNS) - set(RESERVED_SUBGROUPS)
    notes: list[str] = []
    if columns is None:
        dropped = [c for c in available if c in forbidden or str(c).startswith("_")]
        if dropped:
            notes.append(f"{source}: reserved column(s) {', '.join(map(str, dropped))} are not subgroups "
                         "(identifiers, image paths, outcomes and follow-up); left out")
        cols = [c for c in available if c not in dropped]
    else:
        cols = list(columns)
        refusals = (([c for c in cols if c not in covariates.columns], f"are not covariate columns (available: {available})"),
                    ([c for c in cols if c in forbidden], "are reserved columns (identifiers, image paths, outcomes, "
                     "follow-up) and cannot be subgroups; of the reserved columns only 'site' can"))
        for refused, why in refusals:
            if refused:
                raise ValueError(f"evaluation spec: subgroups {refused} {why}")
    cov = covariates.set_index(covariates["patient_id"].astype(str))
    out: dict[str, pd.Series] = {}
    for c in cols:
        x = cov[c]
        if x.notna().sum() == 0:
            notes.append(f"{source}: {c!r} has no values; left out")
            continue
        numeric = pd.api.types.is_numeric_dtype(x) and not pd.api.types.is_bool_dtype(x)
        if not numeric and not pd.api.types.is_bool_dtype(x):
            as_num = pd.to_numeric(x, errors="coerce")
            if as_num.notna().sum() == x.notna().sum():  # numbers read as text
                x, numeric = as_num, True
        if c in bins:
            g = bin_numeric(x, bins[c], name=c)
        elif numeric and x.nunique() > NUMERIC_LEVELS:
            g = bin_numeric(x, None, n_quantiles=n_quantiles, name=c)
            notes.append(f"{source}: {c!r} ({x.nunique()} values) cut into {g.cat.categories.size} quantile bins "
                         f"({', '.join(map(str, g.cat.categories))})")
        else:
            g = _levels_text(x)
            n_levels = g.nunique()
            if n_levels > max_levels:
                raise ValueError(
                    f"{source}: covariate {c!r} has {n_levels} levels, more than max_subgroup_levels "
                    f"({max_levels}); group it into fewer levels, raise max_subgroup_levels, or list the "
                    "attributes to use in the spec's 'subgroups'")
        if g.nunique() < 2:
            notes.append(f"{source}: {c!r} has a single level; left out")
            continue
        out[str(c)] = g
    for n in notes:
        log.info("evaluate: %s", n)
    return out, notes


def subgroup_metrics(
    y: Any, p: Any, groups: Any, metric: str = "auroc", *, attribute: str = "subgroup", n_boot: int = 500,
    seed: int = 0, confidence: float = 0.95, threshold: float | None = None, min_n: int = 10,
    levels: Sequence[Any] | None = None, min_events: int = DEFAULT_MIN_EVENTS,
    min_nonevents: int = DEFAULT_MIN_NONEVENTS,
) -> pd.DataFrame:
    """Compute a metric with its interval for all patients and for each subgroup level.

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
        Metrics other than AUROC / AUPRC: levels with fewer patients are not estimable.
    levels : sequence, optional
        Levels in display order (default: the categories of a categorical ``groups``, else sorted).
    min_events, min_nonevents : int
        AUROC / AUPRC: the small-sample rule (``riskfm.evaluate.guards.estimable``).

    Returns
    -------
    pandas.DataFrame
        Columns ``attribute``, ``level`` (``"All"`` first), ``metric``, ``n``, ``n_pos``, ``value``,
        ``ci_low``, ``ci_high`` (NaN when not estimable), ``method`` (how the interval was
        obtained) and ``not_estimable`` (the reason, e.g. ``"1 event < 10"``, or for PPV / NPV
        ``"no patients with risk >= 0.9"`` when nobody is predicted positive / negative; empty
        when the value is reported).
    """
    check_confidence(confidence)
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
    check_level_names(levels, attribute)
    rows = []
    for level in ["All", *levels]:
        m = np.ones(len(g), bool) if level == "All" else (g == level).to_numpy()
        n, n_pos = int(m.sum()), int(y_b[m].sum())
        row = {"attribute": attribute, "level": str(level), "metric": metric, "n": n, "n_pos": n_pos,
               "value": math.nan, "ci_low": math.nan, "ci_high": math.nan, "method": "", "not_estimable": ""}
        if metric in DISCRIMINATION_METRICS:
            reason = estimable(y_b[m], min_events=min_events, min_nonevents=min_nonevents)
        elif n < min_n:
            reason = f"{n} patients < {min_n}"
        elif n_pos in (0, n):
            reason = f"single class ({n_pos} events of {n})"
        else:
            reason = None
        if reason is None:
            est = metric_estimate(metric, y_b[m], p_f[m], n_boot=n_boot, seed=seed, confidence=confidence,
                                  threshold=threshold)
            if math.isfinite(est.value):
                low, high = est.ci if est.ci is not None else (math.nan, math.nan)
                row.update(value=est.value, ci_low=low, ci_high=high, method=est.method)
            else:
                # PPV with nobody at or above the threshold, NPV with nobody below it: no value, and
                # the row must say why rather than look estimable with a NaN.
                reason = est.not_estimable or _UNDEFINED.get(metric, "undefined on these patients").format(threshold)
        if reason is not None:
            row["not_estimable"] = reason
        rows.append(row)
    return pd.DataFrame(rows)
