"""Cumulative incidence (Kaplan-Meier 1 - S(t)) per risk group, with the number-at-risk table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter

from riskfm.plots.style import (
    NEUTRAL,
    PALETTE,
    RISK_GROUP_COLORS,
    SINGLE_COLUMN_IN,
    new_figure,
    publication_style,
)


def format_p(p: float) -> str:
    """p-value as printed in figures: ``p < 0.001`` or ``p = 0.042``."""
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def plot_cumulative_incidence(
    result: Any,
    *,
    times_days: Sequence[float] | None = None,
    title: str | None = None,
    legend_title: str | None = None,
    xlabel: str = "Days since index",
    size_in: tuple[float, float] = (SINGLE_COLUMN_IN, 4.0),
) -> Figure:
    """Cumulative incidence per group with confidence bands and numbers at risk.

    Parameters
    ----------
    result : CumulativeIncidence
        ``riskfm.evaluate.cumulative_incidence_by_group`` (Kaplan-Meier, log-rank test; with
        ``horizon_days`` for a fixed-horizon outcome) or ``aalen_johansen_by_group``. Groups low /
        intermediate / high get fixed colours, other labels the palette. ``result.plot()`` calls
        this function.
    times_days : sequence of float, optional
        Times (days) of the number-at-risk table and x ticks; default: about 5 round ticks from 0
        to the last follow-up (or the horizon).
    title : str, optional
        Title; the log-rank p-value is appended when the result has one.
    legend_title : str, optional
        Title of the legend (e.g. how the groups were defined).
    xlabel : str
        Label of the time axis.
    size_in : (float, float)
        Figure size in inches (PNG at 300 dpi: 1050 x 1200 px by default).

    Returns
    -------
    matplotlib.figure.Figure
        With a horizon, the time axis ends there and a dotted line marks it.
    """
    confidence = result.confidence
    horizon_days = result.horizon_days
    t_max = float(horizon_days) if horizon_days is not None else result.max_time_days
    if times_days is None:
        ticks = MaxNLocator(nbins=5, steps=[1, 2, 2.5, 5, 10], integer=True).tick_values(0.0, max(t_max, 1.0))
        times = [float(t) for t in ticks if 0.0 <= t <= max(t_max, 1.0)]
    else:
        times = sorted(float(t) for t in times_days)
    at_risk = result.at_risk(times)
    x_max = max(t_max, times[-1]) if times else t_max

    with publication_style():
        fig = new_figure(*size_in)
        n_groups = len(result.groups)
        ax, ax_tab = fig.subplots(2, 1, sharex=True,
                                  gridspec_kw={"height_ratios": [4.0, 0.45 + 0.25 * n_groups]})
        y_top = 0.0
        colors = {}
        for i, (label, curve) in enumerate(result.curves.items()):
            color = RISK_GROUP_COLORS.get(str(label), PALETTE[i % len(PALETTE)])
            colors[label] = color
            n = int(at_risk.loc[label].iloc[0]) if len(times) else None
            ax.step(curve["time_days"], curve["incidence"], where="post", color=color,
                    label=f"{str(label).capitalize()} risk" + (f" (n = {n})" if n is not None else ""))
            ax.fill_between(curve["time_days"], curve["ci_low"], curve["ci_high"], step="post",
                            color=color, alpha=0.15, lw=0)
            y_top = max(y_top, float(np.nanmax(curve["ci_high"])))
        if horizon_days is not None:
            ax.axvline(float(horizon_days), color=NEUTRAL, ls=":", lw=0.9, zorder=1,
                       label=f"{float(horizon_days):g}-day horizon")
        ax.set_xlim(0, x_max)
        ax.set_ylim(0, min(1.0, max(0.02, 1.1 * y_top)))
        ax.set_ylabel(f"Cumulative incidence ({100 * confidence:g}% CI)")
        ax.yaxis.set_major_formatter(PercentFormatter(xmax=1, decimals=0 if y_top > 0.1 else 1))
        ax.legend(loc="upper left", title=legend_title, title_fontsize=7)
        heading = title or ""
        if result.logrank_p is not None:
            heading = (heading + "\n" if heading else "") + f"Log-rank {format_p(result.logrank_p)}"
        if heading:
            ax.set_title(heading)

        # Number-at-risk table: one text row per group under the x ticks it shares with the curves.
        ax_tab.set_xticks(times)
        ax_tab.set_xlabel(xlabel)
        ax_tab.set_ylim(n_groups - 0.5, -0.5)
        ax_tab.set_yticks(range(n_groups))
        ax_tab.set_yticklabels([str(g).capitalize() for g in result.groups], fontsize=7)
        for tick, label in zip(ax_tab.get_yticklabels(), result.groups):
            tick.set_color(colors[label])
        # Counts at t = 0 are centred on the axis: push the group names clear of them.
        ax_tab.tick_params(axis="y", length=0, pad=14)
        ax_tab.spines["left"].set_visible(False)
        ax_tab.set_title("Number at risk", fontsize=7, loc="left")
        for row, label in enumerate(result.groups):
            for t in times:
                ax_tab.text(t, row, str(int(at_risk.loc[label, t])), ha="center", va="center", fontsize=7)
        ax.tick_params(axis="x", labelbottom=False)
    return fig
