"""Forest plot: a metric with its interval per subgroup (or per site, per model)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from riskfm.plots.style import NEUTRAL, OKABE_ITO, SINGLE_COLUMN_IN, new_figure, publication_style

METRIC_LABELS = {"auroc": "AUROC", "auprc": "AUPRC", "brier": "Brier score", "sensitivity": "Sensitivity",
                 "specificity": "Specificity", "ppv": "PPV", "npv": "NPV"}


def plot_forest(
    table: pd.DataFrame,
    *,
    reference: float | None = None,
    title: str | None = None,
    width_in: float = SINGLE_COLUMN_IN * 1.6,
) -> Figure:
    """Point estimates and intervals, one row per subgroup level, grouped by attribute.

    Parameters
    ----------
    table : pandas.DataFrame
        Rows of ``riskfm.evaluate.subgroup_metrics`` (columns ``attribute``, ``level``, ``metric``,
        ``n``, ``n_pos``, ``value``, ``low``, ``high``), one or several attributes concatenated;
        ``All`` rows are drawn once, on top, as the overall estimate.
    reference : float, optional
        Vertical reference line; default the overall (``All``) value.
    title : str, optional
    width_in : float
        Width in inches; the height grows with the number of rows.

    Returns
    -------
    matplotlib.figure.Figure
    """
    need = {"attribute", "level", "metric", "n", "value", "low", "high"}
    if not need <= set(table.columns):
        raise ValueError(f"forest table lacks columns {sorted(need - set(table.columns))}")
    if table.empty:
        raise ValueError("forest table is empty")
    overall = table[table["level"] == "All"].head(1)
    rows: list[tuple[str, pd.Series | None]] = []
    if len(overall):
        rows.append(("All patients", overall.iloc[0]))
    for attr, sub in table[table["level"] != "All"].groupby("attribute", sort=False):
        rows.append((str(attr), None))  # heading row
        rows.extend((f"   {r['level']}", r) for _, r in sub.iterrows())
    metric = str(table["metric"].iloc[0])
    if reference is None and len(overall):
        reference = float(overall["value"].iloc[0])
    with publication_style():
        fig = new_figure(width_in, 0.9 + 0.2 * len(rows))
        ax = fig.add_subplot()
        ypos = np.arange(len(rows))[::-1]
        for yv, (label, r) in zip(ypos, rows):
            if r is None or not math.isfinite(float(r["value"])):
                continue
            color = "black" if label == "All patients" else OKABE_ITO["blue"]
            lo, hi = float(r["low"]), float(r["high"])
            if math.isfinite(lo) and math.isfinite(hi):
                ax.plot([lo, hi], [yv, yv], color=color, lw=1.0)
            ax.plot(float(r["value"]), yv, marker="D" if label == "All patients" else "s", color=color, ms=4)
        if reference is not None and math.isfinite(reference):
            ax.axvline(reference, color=NEUTRAL, ls="--", lw=0.7)
        ax.set_yticks(ypos)
        ax.set_yticklabels([lbl for lbl, _ in rows])
        for tick, (_, r) in zip(ax.get_yticklabels(), rows):
            if r is None:
                tick.set_fontweight("bold")
        # Right-hand text column: value [CI] and n, as in published forest plots.
        for yv, (_, r) in zip(ypos, rows):
            if r is None:
                continue
            v = float(r["value"])
            txt = (f"{v:.2f} [{float(r['low']):.2f}\u2013{float(r['high']):.2f}]  n={int(r['n'])}"
                   if math.isfinite(v) else f"n/a  n={int(r['n'])}")
            ax.text(1.02, yv, txt, transform=ax.get_yaxis_transform(), va="center", fontsize=6.5)
        ax.set_ylim(-0.7, len(rows) - 0.3)
        ax.tick_params(axis="y", length=0)
        ax.spines["left"].set_visible(False)
        ax.set_xlabel(f"{METRIC_LABELS.get(metric, metric)} (95% CI)")
        if title:
            ax.set_title(title)
    return fig
