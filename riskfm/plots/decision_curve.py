"""Decision curve: net benefit of the model against treat-all and treat-none."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from riskfm.plots.style import NEUTRAL, PALETTE, SINGLE_COLUMN_IN, new_figure, publication_style


def plot_decision_curve(
    curves: Any,
    *,
    title: str | None = None,
    size_in: tuple[float, float] = (SINGLE_COLUMN_IN, 3.0),
) -> Figure:
    """Net benefit against threshold probability (Vickers & Elkin 2006).

    Parameters
    ----------
    curves : DecisionCurve or mapping of name -> DecisionCurve
        From ``riskfm.evaluate.decision_curve``; several models share the treat-all line of the
        first (they must be evaluated on the same patients).
    title : str, optional
    size_in : (float, float)
        Inches (1050 x 900 px at 300 dpi by default).

    Returns
    -------
    matplotlib.figure.Figure
    """
    if not isinstance(curves, Mapping):
        curves = {"Model": curves}
    if not curves:
        raise ValueError("plot_decision_curve: no curve given")
    first = next(iter(curves.values())).table
    with publication_style():
        fig = new_figure(*size_in)
        ax = fig.add_subplot()
        ax.plot(first["threshold"], first["treat_all"], color=NEUTRAL, lw=0.9, label="Treat all")
        ax.axhline(0.0, color="black", lw=0.7, ls="--", label="Treat none")
        top = max(float(first["treat_all"].max()), 0.0)
        for i, (name, dc) in enumerate(curves.items()):
            t = dc.table
            ax.plot(t["threshold"], t["net_benefit"], color=PALETTE[i % len(PALETTE)], label=str(name))
            top = max(top, float(t["net_benefit"].max()))
        top = max(top, 1e-3)
        # Treat-all plunges below zero at high thresholds; keep the informative range in view.
        ax.set_ylim(-0.25 * top, 1.15 * top)
        ax.set_xlim(float(np.min(first["threshold"])), float(np.max(first["threshold"])))
        ax.set_xlabel("Threshold probability")
        ax.set_ylabel("Net benefit")
        ax.xaxis.set_major_formatter(PercentFormatter(xmax=1, decimals=0))
        ax.legend(loc="upper right")
        if title:
            ax.set_title(title)
    return fig
