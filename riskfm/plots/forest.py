"""Forest plot: a metric with its interval per subgroup (or per site, per model), with n and events."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from riskfm.evaluate.guards import not_estimable_text
from riskfm.plots.style import NEUTRAL, OKABE_ITO, SINGLE_COLUMN_IN, new_figure, publication_style

METRIC_LABELS = {"auroc": "AUROC", "auprc": "AUPRC", "brier": "Brier score", "sensitivity": "Sensitivity",
                 "specificity": "Specificity", "ppv": "PPV", "npv": "NPV"}
# A forest plot is read row by row: past this many rows it is a table, not a figure.
MAX_FOREST_ROWS = 80


def _finite(x: object) -> bool:
    try:
        return x is not None and math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def _events(k: int) -> str:
    return f"{k} event" + ("" if k == 1 else "s")


def forest_rows(table: pd.DataFrame) -> pd.DataFrame:
    """Lay out the rows of a forest plot, top to bottom, and what each one draws.

    Parameters
    ----------
    table : pandas.DataFrame
        As for ``plot_forest``.

    Returns
    -------
    pandas.DataFrame
        One row per line of the figure: ``label`` (tick text), ``kind`` (``"overall"``,
        ``"heading"`` or ``"level"``), ``value``, ``ci_low``, ``ci_high``, ``n``, ``n_pos``,
        ``point`` (True when a marker is drawn: the value is finite and estimable),
        ``interval`` (True when its CI line is drawn) and ``text`` (the right-hand column:
        ``0.81 [0.72-0.90]  n=120, 14 events`` or ``n/e (1 event < 10)  n=30, 1 event``).
    """
    need = {"attribute", "level", "metric", "n", "value", "ci_low", "ci_high"}
    if not need <= set(table.columns):
        raise ValueError(f"forest table lacks columns {sorted(need - set(table.columns))}")
    if table.empty:
        raise ValueError("forest table is empty")
    out = []

    def add(label: str, kind: str, r: pd.Series | None) -> None:
        if r is None:
            out.append({"label": label, "kind": kind, "value": math.nan, "ci_low": math.nan, "ci_high": math.nan,
                        "n": None, "n_pos": None, "point": False, "interval": False, "text": ""})
            return
        reason = str(r.get("not_estimable") or "") if "not_estimable" in r.index else ""
        reason = "" if reason == "nan" else reason
        value = float(r["value"]) if _finite(r["value"]) else math.nan
        point = not reason and math.isfinite(value)
        interval = point and _finite(r["ci_low"]) and _finite(r["ci_high"])
        n = int(r["n"])
        n_pos = int(r["n_pos"]) if "n_pos" in r.index and _finite(r["n_pos"]) else None
        counts = f"n={n}" + (f", {_events(n_pos)}" if n_pos is not None else "")
        if point:
            est = f"{value:.2f}" + (f" [{float(r['ci_low']):.2f}\u2013{float(r['ci_high']):.2f}]" if interval else "")
        else:
            est = not_estimable_text(reason or "no estimate")
        out.append({"label": label, "kind": kind, "value": value if point else math.nan,
                    "ci_low": float(r["ci_low"]) if interval else math.nan,
                    "ci_high": float(r["ci_high"]) if interval else math.nan,
                    "n": n, "n_pos": n_pos, "point": point, "interval": interval, "text": f"{est}  {counts}"})

    overall = table[table["level"] == "All"].head(1)
    if len(overall):
        add("All patients", "overall", overall.iloc[0])
    for attr, sub in table[table["level"] != "All"].groupby("attribute", sort=False):
        add(str(attr), "heading", None)
        for _, r in sub.iterrows():
            add(f"   {r['level']}", "level", r)
    return pd.DataFrame(out)


def plot_forest(
    table: pd.DataFrame,
    *,
    reference: float | None = None,
    title: str | None = None,
    width_in: float = SINGLE_COLUMN_IN * 1.6,
    confidence: float = 0.95,
) -> Figure:
    """Point estimates and intervals, one row per subgroup level, grouped by attribute.

    Parameters
    ----------
    table : pandas.DataFrame
        Rows of ``riskfm.evaluate.subgroup_metrics`` (columns ``attribute``, ``level``, ``metric``,
        ``n``, ``value``, ``ci_low``, ``ci_high``; ``n_pos`` and ``not_estimable`` when available), one or
        several attributes concatenated; ``All`` rows are drawn once, on top, as the overall
        estimate. A row that is not estimable (``not_estimable`` set, or no finite value) gets
        no point and no interval, only its reason and counts in the text column.
    reference : float, optional
        Vertical reference line; default the overall (``All``) value.
    title : str, optional
    width_in : float
        Width in inches; the height grows with the number of rows.
    confidence : float
        Coverage of the intervals (axis label).

    Returns
    -------
    matplotlib.figure.Figure
        ``fig.forest_rows`` holds ``forest_rows(table)``: what each line shows.

    Raises
    ------
    ValueError
        Missing columns, an empty table, or more than ``MAX_FOREST_ROWS`` rows (a subgroup
        attribute with a level per patient does not belong in a figure).
    """
    rows = forest_rows(table)
    if len(rows) > MAX_FOREST_ROWS:
        raise ValueError(f"forest plot of {len(rows)} rows (more than {MAX_FOREST_ROWS}): too many subgroup "
                         "levels for a figure; bin or group the attributes")
    metric = str(table["metric"].iloc[0])
    overall = rows[rows["kind"] == "overall"]
    if reference is None and len(overall) and bool(overall["point"].iloc[0]):
        reference = float(overall["value"].iloc[0])
    with publication_style():
        fig = new_figure(width_in, 0.9 + 0.2 * len(rows))
        ax = fig.add_subplot()
        ypos = np.arange(len(rows))[::-1]
        for yv, (_, r) in zip(ypos, rows.iterrows()):
            if not r["point"]:
                continue
            color = "black" if r["kind"] == "overall" else OKABE_ITO["blue"]
            if r["interval"]:
                ax.plot([r["ci_low"], r["ci_high"]], [yv, yv], color=color, lw=1.0)
            ax.plot(r["value"], yv, marker="D" if r["kind"] == "overall" else "s", color=color, ms=4)
        if reference is not None and math.isfinite(reference):
            ax.axvline(reference, color=NEUTRAL, ls="--", lw=0.7)
        if not rows["point"].any():
            ax.set_xlim(0, 1)
        ax.set_yticks(ypos)
        ax.set_yticklabels(list(rows["label"]))
        for tick, kind in zip(ax.get_yticklabels(), rows["kind"]):
            if kind == "heading":
                tick.set_fontweight("bold")
        # Right-hand text column: value [CI] (or why there is none), n and events.
        for yv, text in zip(ypos, rows["text"]):
            if text:
                ax.text(1.02, yv, text, transform=ax.get_yaxis_transform(), va="center", fontsize=6.5)
        ax.set_ylim(-0.7, len(rows) - 0.3)
        ax.tick_params(axis="y", length=0)
        ax.spines["left"].set_visible(False)
        ax.set_xlabel(f"{METRIC_LABELS.get(metric, metric)} ({100 * confidence:g}% CI)")
        if title:
            ax.set_title(title)
    fig.forest_rows = rows
    return fig
