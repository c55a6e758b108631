"""The analyses of the ECG -> stenosis study (seed 002), one function per section of the paper.

Each function takes the study's predictions of one evaluation set (the internal test split or one
external site; long format, one row per patient x artery) and returns plain tables; the statistics
are riskfm.evaluate's, the figures riskfm.plots'. :mod:`riskfm.recipes.ecg_stenosis_study` runs
them over the sets in the paper's order and assembles the report.

Reference values: Xiao et al., "Fine-tuning an ECG Foundation Model to Predict Coronary CT
Angiography Outcomes", arXiv:2512.05136v1 (2025), abstract: AUC of severe or complete stenosis on
the internal validation set 0.794 (RCA), 0.818 (LM), 0.744 (LAD), 0.755 (LCX); on the external
validation set 0.749, 0.971, 0.667, 0.727. The abstract gives no intervals or counts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from riskfm.arteries import ARTERIES, STENOSIS_COLUMNS
from riskfm.evaluate.discrimination import roc_auc
from riskfm.evaluate.guards import estimable
from riskfm.evaluate.heterogeneity import subgroup_heterogeneity
from riskfm.evaluate.risk_groups import (
    assign_risk_groups,
    incidence_threshold,
    order_groups,
    wilson_interval,
)
from riskfm.evaluate.subgroups import bin_numeric, subgroup_metrics

__all__ = [
    "PAPER_AUROC",
    "PAPER_SOURCE",
    "artery_of",
    "auroc_rows",
    "forest_table",
    "paper_layout",
    "risk_group_rows",
    "risk_thresholds",
    "subgroup_rows",
]

#: Where the published values come from.
PAPER_SOURCE = ("Xiao et al., Fine-tuning an ECG Foundation Model to Predict Coronary CT Angiography Outcomes, "
                "arXiv:2512.05136v1, abstract")

#: Published AUROC per evaluation set and target (:data:`PAPER_SOURCE`); the abstract has one external set.
PAPER_AUROC: dict[str, dict[str, float]] = {
    "internal": dict(zip(STENOSIS_COLUMNS, (0.794, 0.818, 0.744, 0.755))),
    "external": dict(zip(STENOSIS_COLUMNS, (0.749, 0.971, 0.667, 0.727))),
}


def artery_of(target: str) -> str:
    """Return the artery name (``"RCA"``) of a stenosis target (``"stenosis_rca"``)."""
    return ARTERIES[STENOSIS_COLUMNS.index(target)]


def _estimate_text(value: float, low: float, high: float, reason: str) -> str:
    if reason:
        return f"n/e ({reason})"
    if not math.isfinite(value):
        return "\u2013"
    return f"{value:.3f} ({low:.3f}\u2013{high:.3f})"


def auroc_rows(preds: pd.DataFrame, *, n_boot: int, seed: int, min_events: int = 10,
               min_nonevents: int = 10, confidence: float = 0.95) -> pd.DataFrame:
    """Per-artery AUROC with its stratified-bootstrap CI, in riskfm's artery order (RCA, LM, LAD, LCX).

    Parameters
    ----------
    preds : pandas.DataFrame
        ``patient_id, target, y_true, y_prob`` of one evaluation set (rows without a label are
        left out and counted in ``n_unlabelled``).
    n_boot, seed, confidence : int, int, float
        Interval settings (:func:`riskfm.evaluate.roc_auc`).
    min_events, min_nonevents : int
        The small-sample rule: below it the AUROC is not estimable (NaN and the reason).

    Returns
    -------
    pandas.DataFrame
        One row per artery: ``artery``, ``target``, ``n``, ``n_pos``, ``n_unlabelled``, ``auroc``,
        ``ci_low``, ``ci_high``, ``method``, ``not_estimable``.
    """
    rows = []
    for target in STENOSIS_COLUMNS:
        d = preds[preds["target"] == target]
        known = d.dropna(subset=["y_true"])
        y, p = known["y_true"].to_numpy(float), known["y_prob"].to_numpy(float)
        row = {"artery": artery_of(target), "target": target, "n": len(known), "n_pos": int(y.sum()),
               "n_unlabelled": len(d) - len(known), "auroc": math.nan, "ci_low": math.nan, "ci_high": math.nan,
               "method": "", "not_estimable": ""}
        reason = estimable(y, min_events=min_events, min_nonevents=min_nonevents) if len(y) else "no patients"
        if reason is None:
            est = roc_auc(y, p, ci="bootstrap", n_boot=n_boot, seed=seed, confidence=confidence)
            row.update(auroc=est.value, ci_low=est.ci[0], ci_high=est.ci[1], method=est.method)
        else:
            row["not_estimable"] = reason
        rows.append(row)
    return pd.DataFrame(rows)


def paper_layout(tables: dict[str, pd.DataFrame], reference: dict[str, str]) -> pd.DataFrame:
    """Return the paper's table: one row per artery, per evaluation set the AUROC (95% CI) and the paper's value.

    Parameters
    ----------
    tables : dict
        Evaluation set name -> :func:`auroc_rows` table, in column order.
    reference : dict
        Evaluation set name -> ``"internal"`` or ``"external"`` (which published column it is read
        against).

    Returns
    -------
    pandas.DataFrame
        ``Artery``, then per set ``<set> AUROC (95% CI)``, ``<set> n (events)`` and ``<set> paper``.
    """
    out = pd.DataFrame({"Artery": list(ARTERIES)})
    for name, t in tables.items():
        t = t.set_index("target").reindex(STENOSIS_COLUMNS)
        out[f"{name} AUROC (95% CI)"] = [_estimate_text(r.auroc, r.ci_low, r.ci_high, r.not_estimable)
                                         for r in t.itertuples()]
        out[f"{name} n (events)"] = [f"{int(r.n)} ({int(r.n_pos)})" for r in t.itertuples()]
        out[f"{name} paper"] = [PAPER_AUROC[reference[name]][c] for c in STENOSIS_COLUMNS]
    return out


def subgroup_rows(preds: pd.DataFrame, attributes: dict[str, pd.Series], *, n_boot: int, seed: int,
                  min_events: int = 10, min_nonevents: int = 10) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-artery AUROC by subgroup level with CIs, and Cochran's Q across the levels of each attribute.

    Parameters
    ----------
    preds : pandas.DataFrame
        ``patient_id, target, y_true, y_prob`` of one evaluation set.
    attributes : dict
        Attribute name -> Series of levels indexed by ``patient_id`` (categorical keeps the order;
        missing values put a patient in no level).
    n_boot, seed : int
        Bootstrap settings of the subgroup intervals.
    min_events, min_nonevents : int
        The small-sample rule.

    Returns
    -------
    levels : pandas.DataFrame
        :func:`riskfm.evaluate.subgroup_metrics` rows (``attribute``, ``level`` (``All`` first),
        ``n``, ``n_pos``, ``value``, ``ci_low``, ``ci_high``, ``not_estimable`` ...) with
        ``artery`` and ``target`` in front.
    heterogeneity : pandas.DataFrame
        Per artery x attribute: ``q``, ``df``, ``p_value``, ``i2``, ``levels_tested``, ``left_out``,
        ``not_estimable``.
    """
    level_tables, het_rows = [], []
    for target in STENOSIS_COLUMNS:
        d = preds[preds["target"] == target].dropna(subset=["y_true"])
        if d.empty:
            continue
        y, p = d["y_true"].to_numpy(float), d["y_prob"].to_numpy(float)
        pid = d["patient_id"].astype(str)
        for name, series in attributes.items():
            g = series.reindex(pid.to_numpy())
            g = pd.Series(pd.Categorical(g, categories=series.cat.categories)
                          if isinstance(series.dtype, pd.CategoricalDtype) else g.to_numpy(object))
            t = subgroup_metrics(y, p, g, "auroc", attribute=name, n_boot=n_boot, seed=seed,
                                 min_events=min_events, min_nonevents=min_nonevents)
            level_tables.append(t.assign(artery=artery_of(target), target=target))
            het = subgroup_heterogeneity(y, p, g, min_events=min_events, min_nonevents=min_nonevents)
            het_rows.append({"artery": artery_of(target), "target": target, "attribute": name, "q": het.value,
                             "df": het.df, "p_value": het.p_value, "i2": het.i2,
                             "levels_tested": ", ".join(het.levels),
                             "left_out": "; ".join(f"{k}: {v}" for k, v in het.left_out.items()),
                             "not_estimable": het.not_estimable or ""})
    levels = pd.concat(level_tables, ignore_index=True) if level_tables else pd.DataFrame()
    if len(levels):
        levels = levels[["artery", "target", *[c for c in levels.columns if c not in ("artery", "target")]]]
    return levels, pd.DataFrame(het_rows)


def forest_table(levels: pd.DataFrame) -> pd.DataFrame:
    """Lay one evaluation set's subgroup rows out for one forest plot: a heading per artery.

    Each artery's rows become attribute ``<artery>`` with levels ``all patients``, ``age: <=50``,
    ``sex: female``, ... (the ``All`` rows of :func:`subgroup_rows` repeat per attribute; one is kept).

    Parameters
    ----------
    levels : pandas.DataFrame
        :func:`subgroup_rows`' first table for one evaluation set.

    Returns
    -------
    pandas.DataFrame
        The same columns, ready for :func:`riskfm.plots.forest.plot_forest`.
    """
    parts = []
    for target in STENOSIS_COLUMNS:
        t = levels[levels["target"] == target]
        if t.empty:
            continue
        art = artery_of(target)
        overall = t[t["level"] == "All"].head(1).assign(level="all patients")
        rest = t[t["level"] != "All"]
        rest = rest.assign(level=rest["attribute"].astype(str) + ": " + rest["level"].astype(str))
        parts.append(pd.concat([overall, rest]).assign(attribute=art))
    return pd.concat(parts, ignore_index=True) if parts else levels.iloc[:0]


def risk_thresholds(train: pd.DataFrame) -> pd.DataFrame:
    """Vessel-specific incidence thresholds from the training split's predictions.

    The paper's risk groups come from "vessel-specific incidence thresholds"; riskfm reads this
    as: the top fraction of patients equal to the training prevalence of that artery is high risk
    (:func:`riskfm.evaluate.incidence_threshold` on the training patients' predicted risks).

    Parameters
    ----------
    train : pandas.DataFrame
        ``target, y_true, y_prob`` of the training split.

    Returns
    -------
    pandas.DataFrame
        One row per artery: ``artery``, ``target``, ``n_train``, ``train_prevalence``,
        ``threshold`` (NaN with a ``reason`` when the training split has no or only positive labels).
    """
    rows = []
    for target in STENOSIS_COLUMNS:
        d = train[train["target"] == target].dropna(subset=["y_true"])
        prev = float(d["y_true"].mean()) if len(d) else math.nan
        row = {"artery": artery_of(target), "target": target, "n_train": len(d), "train_prevalence": prev,
               "threshold": math.nan, "reason": ""}
        if 0.0 < prev < 1.0:
            row["threshold"] = incidence_threshold(d["y_prob"].to_numpy(float), prev)
        else:
            row["reason"] = "no training labels" if not len(d) else f"training prevalence {prev:g}: no threshold"
        rows.append(row)
    return pd.DataFrame(rows)


def risk_group_rows(preds: pd.DataFrame, thresholds: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Observed stenosis rate per risk group (low / high) of each artery, with Wilson intervals.

    Parameters
    ----------
    preds : pandas.DataFrame
        ``patient_id, target, y_true, y_prob`` of one evaluation set.
    thresholds : pandas.DataFrame
        :func:`risk_thresholds`.
    confidence : float
        Coverage of the Wilson intervals.

    Returns
    -------
    pandas.DataFrame
        Per artery x group: ``artery``, ``target``, ``group``, ``threshold``, ``n``, ``n_events``,
        ``observed_rate``, ``ci_low``, ``ci_high``, ``mean_predicted``.
    """
    rows = []
    thr = thresholds.set_index("target")["threshold"]
    for target in STENOSIS_COLUMNS:
        d = preds[preds["target"] == target].dropna(subset=["y_true"])
        t = float(thr.get(target, math.nan))
        if d.empty or not math.isfinite(t):
            continue
        groups = assign_risk_groups(d["y_prob"].to_numpy(float), t)
        y, p = d["y_true"].to_numpy(float), d["y_prob"].to_numpy(float)
        for g in order_groups(groups.tolist()):
            m = groups == g
            k, n = int(y[m].sum()), int(m.sum())
            low, high = wilson_interval(k, n, confidence)
            rows.append({"artery": artery_of(target), "target": target, "group": g, "threshold": t, "n": n,
                         "n_events": k, "observed_rate": k / n, "ci_low": float(low), "ci_high": float(high),
                         "mean_predicted": float(p[m].mean())})
    return pd.DataFrame(rows)


def parse_flags(values: pd.Series, column: str, source: str) -> pd.Series:
    """Read a yes/no manifest column (1/0, true/false, yes/no, normal/abnormal) as booleans; missing stays NA.

    Raises
    ------
    ValueError
        A value that is none of these, naming the column, the file and the first such value.
    """
    truthy = {"1", "1.0", "true", "yes", "y", "normal", "t"}
    falsy = {"0", "0.0", "false", "no", "n", "abnormal", "f"}
    text = values.astype("string").str.strip().str.lower()
    bad = text.notna() & ~text.isin(truthy | falsy)
    if bad.any():
        raise ValueError(f"{source}: column {column!r} must be yes/no (1/0, true/false, normal/abnormal); "
                         f"{int(bad.sum())} other value(s), e.g. {values[bad].iloc[0]!r}")
    out = pd.Series(pd.NA, index=values.index, dtype="boolean")
    out[text.isin(truthy).fillna(False).to_numpy(bool)] = True
    out[text.isin(falsy).fillna(False).to_numpy(bool)] = False
    return out


def date_levels(values: pd.Series, column: str, source: str, *, bins: str = "year",
                n_quantiles: int = 4) -> tuple[pd.Series, list[str]]:
    """Acquisition-time strata of a date column: calendar years, or quantile bins of the date.

    Parameters
    ----------
    values : pandas.Series
        Dates as text (ISO ``2019-03-14``, or anything pandas parses) or datetimes, indexed by
        ``patient_id``.
    column, source : str
        Column and manifest names for messages.
    bins : {"year", "quantile"}
        Calendar year of acquisition, or ``n_quantiles`` equal-count bins of the date labelled by
        their first and last day. Years fall back to quantile bins when all dates are in one year.
    n_quantiles : int
        Bins of ``"quantile"``.

    Returns
    -------
    levels : pandas.Series (ordered categorical), indexed like ``values``; unparseable or missing
        dates are missing.
    notes : list of str
        What was done (unparseable dates counted, a fallback).

    Raises
    ------
    ValueError
        No value of the column is a date.
    """
    notes: list[str] = []
    if not pd.api.types.is_datetime64_any_dtype(values):
        # Text, so that a bare year read as a number (2019, or 2019.0 beside a missing cell) is a
        # year, not 2019 ns after 1970.
        def text(v: object) -> str | None:
            if v is None:
                return None
            if isinstance(v, float | np.floating) and float(v).is_integer():
                return str(int(v))
            return str(v)

        values = values.astype(object).where(values.notna(), None).map(text)
    dates = pd.to_datetime(values, errors="coerce", format="mixed")
    bad = int((dates.isna() & values.notna()).sum())
    missing = int(values.isna().sum())
    if dates.notna().sum() == 0:
        raise ValueError(f"{source}: column {column!r} holds no dates (e.g. {values.dropna().iloc[0]!r})"
                         if values.notna().any() else f"{source}: column {column!r} is empty")
    if bad or missing:
        notes.append(f"{column}: {bad} value(s) not readable as dates and {missing} missing: those patients are in "
                     "no acquisition-time stratum")
    if bins == "year" and dates.dt.year.nunique() < 2:
        notes.append(f"{column}: every date is in {int(dates.dt.year.min())}; quantile bins used instead of years")
        bins = "quantile"
    if bins == "year":
        years = dates.dt.year
        cats = [str(int(y)) for y in sorted(years.dropna().unique())]
        lv = pd.Categorical(years.map(lambda y: None if pd.isna(y) else str(int(y))), categories=cats, ordered=True)
        return pd.Series(lv, index=values.index), notes
    codes, edges = pd.qcut(dates.astype("int64").where(dates.notna()), n_quantiles, retbins=True, labels=False,
                           duplicates="drop")
    day = [pd.Timestamp(int(e)).strftime("%Y-%m-%d") for e in edges]
    cats = [f"{a}\u2013{b}" for a, b in zip(day[:-1], day[1:])]
    lv = pd.Categorical.from_codes(np.where(codes.isna(), -1, codes).astype(int), categories=cats, ordered=True)
    return pd.Series(lv, index=values.index), notes


def age_levels(values: pd.Series, edges: Sequence[float]) -> pd.Series:
    """Age bands with riskfm's subgroup labels (``<=50``, ``50-65``, ``>65`` for edges [50, 65])."""
    return bin_numeric(values, list(edges), name="age")


def text_levels(values: pd.Series) -> pd.Series:
    """Categorical levels of a text attribute (e.g. sex), sorted; missing stays missing."""
    v = values.astype(object).where(values.notna(), None).map(lambda x: x if x is None else str(x))
    cats = sorted(v.dropna().unique().tolist())
    return pd.Series(pd.Categorical(v, categories=cats), index=values.index)


def mean_attribution(beats: list[np.ndarray], attributions: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Mean median beat and mean attribution magnitude over patients, each patient weighted equally.

    Each patient's ``|attribution|`` is divided by its total, so a patient whose map is larger in
    scale does not dominate; the result is the mean share per lead x offset (sums to 1).
    """
    if not beats:
        raise ValueError("no patients with an attribution")
    shares = []
    for a in attributions:
        total = float(np.abs(a).sum())
        shares.append(np.abs(a) / total if total > 0 else np.zeros_like(a))
    return np.mean(np.stack(beats), axis=0), np.mean(np.stack(shares), axis=0)


def summary_rows(tables: dict[str, pd.DataFrame], reference: dict[str, str]) -> pd.DataFrame:
    """One row per evaluation set x artery: AUROC, CI, counts and the paper's value (``res.tables["summary"]``)."""
    parts = []
    for name, t in tables.items():
        parts.append(t.assign(split=name, paper_auroc=[PAPER_AUROC[reference[name]][c] for c in t["target"]]))
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    cols = ["split", "artery", "target", "n", "n_pos", "auroc", "ci_low", "ci_high", "paper_auroc", "not_estimable"]
    return out[cols] if len(out) else pd.DataFrame(columns=cols)
