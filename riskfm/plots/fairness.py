"""Fairness figure: the seed-000 gaps per subgroup for two (or more) models side by side."""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np
import pandas as pd

from riskfm.plots.style import new_figure, publication_style, save_figure

__all__ = ["plot_fairness_gaps"]


def plot_fairness_gaps(tables: Mapping[str, pd.DataFrame], path: str | os.PathLike | None = None, *,
                       metric: str = "mae", units: str = "Agatston"):
    """Horizontal bars of ``gap_<metric>`` per subgroup, one bar per model, one panel per attribute.

    Parameters
    ----------
    tables : mapping model name -> DataFrame
        Outputs of :func:`riskfm.ct.calcium.protocols.fairness_table`.
    path : str or path, optional
        Where to save (PNG by default).
    metric : {"mae", "rmse", "bias"}
    units : str

    Returns
    -------
    matplotlib.figure.Figure
    """
    if not tables:
        raise ValueError("plot_fairness_gaps needs at least one model's table")
    col = f"gap_{metric}"
    first = next(iter(tables.values()))
    if col not in first.columns:
        raise ValueError(f"tables have no column {col!r}; metric must be mae, rmse or bias")
    attributes = list(dict.fromkeys(first["attribute"]))
    colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"]
    height = 0.5
    with publication_style():
        fig = new_figure(7.0, 1.0 + 0.9 * len(attributes))
        axes = fig.subplots(1, len(attributes), squeeze=False)[0]
        for ax, attr in zip(axes, attributes):
            groups = list(first.loc[first["attribute"] == attr, "group"])
            y = np.arange(len(groups))
            width = height / max(len(tables), 1)
            for k, (name, t) in enumerate(tables.items()):
                sub = t[t["attribute"] == attr].set_index("group").reindex(groups)
                ax.barh(y + (k - (len(tables) - 1) / 2) * width, sub[col].to_numpy(float), height=width,
                        color=colours[k % len(colours)], label=name)
            ax.axvline(0, color="0.3", linewidth=0.6)
            ax.set_yticks(y, groups)
            ax.set_title(attr)
            ax.set_xlabel(f"{metric.upper()} gap ({units})")
        axes[0].legend(loc="best", frameon=False)
    if path is not None:
        save_figure(fig, path)
    return fig
