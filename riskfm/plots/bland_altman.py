"""Bland-Altman figure: difference against mean with the bias and limits of agreement."""

from __future__ import annotations

import os
from typing import Any

from riskfm.plots.style import new_figure, publication_style, save_figure

__all__ = ["plot_bland_altman"]


def plot_bland_altman(result: Any, path: str | os.PathLike | None = None, *, title: str = "",
                      units: str = ""):
    """Plot a :class:`riskfm.evaluate.agreement.BlandAltman` result.

    Parameters
    ----------
    result : BlandAltman
        Output of :func:`riskfm.evaluate.agreement.bland_altman` (``result.plot()`` calls this).
    path : str or path, optional
        Where to save (PNG by default); the figure is returned either way.
    title, units : str
        Axis title and the units of the scores (e.g. "Agatston").

    Returns
    -------
    matplotlib.figure.Figure
        Differences against pair means, the bias and the limits of agreement (``result.loa``).
    """
    with publication_style():
        fig = new_figure(3.5, 3.0)
        ax = fig.add_subplot(1, 1, 1)
        ax.scatter(result.mean, result.diff, s=8, alpha=0.7, color="#1f77b4", linewidths=0)
        pct = int(round(result.confidence * 100))
        low, high = result.loa
        for y, style, label in ((result.value, "-", f"bias {result.value:.1f}"),
                                (low, "--", f"{pct}% LoA {low:.1f}"),
                                (high, "--", f"{pct}% LoA {high:.1f}")):
            ax.axhline(y, linestyle=style, color="0.3", linewidth=0.8, label=label)
        suffix = f" ({units})" if units else ""
        ax.set_xlabel(f"mean of predicted and reference{suffix}")
        ax.set_ylabel(f"predicted - reference{suffix}")
        if title:
            ax.set_title(title)
        ax.legend(loc="best", frameon=False)
    if path is not None:
        save_figure(fig, path)
    return fig
