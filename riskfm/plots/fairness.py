"""Fairness figure: the seed-000 gaps per subgroup for two (or more) models side by side.

The figure only draws the gaps (and their intervals) computed by ``riskfm.evaluate.fairness``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np
import pandas as pd

from riskfm.plots.style import new_figure, publication_style, save_figure

__all__ = ["plot_fairness_gaps"]


def _long(t: pd.DataFrame, metric: str) -> pd.DataFrame:
    """One table in the drawn shape: ``attribute``, ``group``, ``gap``, ``ci_low``, ``ci_high`` (NaN: no interval)."""
    if "gap" in t.columns and "level" in t.columns:  # riskfm.evaluate.fairness_gaps tables
        rows = t[t["kind"] != "range"] if "kind" in t.columns else t
        if "metric" in rows.columns:
            rows = rows[rows["metric"] == metric]
        return pd.DataFrame({"attribute": rows["attribute"].to_numpy(), "group": rows["level"].astype(str).to_numpy(),
                             "gap": rows["gap"].to_numpy(float), "ci_low": rows["ci_low"].to_numpy(float),
                             "ci_high": rows["ci_high"].to_numpy(float)})
    col = f"gap_{metric}"
    if col not in t.columns:
        raise ValueError(f"tables have no column {col!r}; metric must be mae, rmse or bias")
    return pd.DataFrame({"attribute": t["attribute"].to_numpy(), "group": t["group"].astype(str).to_numpy(),
                         "gap": t[col].to_numpy(float), "ci_low": np.nan, "ci_high": np.nan})


def plot_fairness_gaps(tables: Mapping[str, pd.DataFrame], path: str | os.PathLike | None = None, *,
                       metric: str = "mae", units: str = "Agatston"):
    """Horizontal bars of the gap per subgroup, one bar per model, one panel per attribute.

    Parameters
    ----------
    tables : mapping model name -> DataFrame
        Tables of :func:`riskfm.evaluate.fairness_gaps` (``FairnessGaps.table``: ``level``,
        ``metric``, ``gap`` with its bootstrap interval ``ci_low``, ``ci_high``, drawn as error
        bars; the ``max - min`` rows are not drawn), or of
        :func:`riskfm.ct.calcium.protocols.fairness_table` (``group``, ``gap_<metric>``).
    path : str or path, optional
        Where to save (PNG by default).
    metric : str
        The metric whose gaps are drawn (``"mae"``, ``"rmse"``, ``"bias"``, ``"auroc"`` ...).
    units : str
        Units of the gaps (x-axis label), e.g. ``"Agatston"``; empty for unitless metrics.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if not tables:
        raise ValueError("plot_fairness_gaps needs at least one model's table")
    long = {name: _long(t, metric) for name, t in tables.items()}
    first = next(iter(long.values()))
    attributes = list(dict.fromkeys(first["attribute"]))
    colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"]
    height = 0.5
    with publication_style():
        fig = new_figure(7.0, 1.0 + 0.9 * len(attributes))
        axes = fig.subplots(1, max(len(attributes), 1), squeeze=False)[0]
        for ax, attr in zip(axes, attributes):
            groups = list(first.loc[first["attribute"] == attr, "group"])
            y = np.arange(len(groups))
            width = height / max(len(long), 1)
            for k, (name, t) in enumerate(long.items()):
                sub = t[t["attribute"] == attr].set_index("group").reindex(groups)
                gap = sub["gap"].to_numpy(float)
                err = np.vstack([gap - sub["ci_low"].to_numpy(float), sub["ci_high"].to_numpy(float) - gap])
                ax.barh(y + (k - (len(long) - 1) / 2) * width, gap, height=width, color=colours[k % len(colours)],
                        label=name, xerr=None if np.isnan(err).all() else np.nan_to_num(np.clip(err, 0, None)),
                        error_kw={"elinewidth": 0.7, "ecolor": "black"})
            ax.axvline(0, color="0.3", linewidth=0.6)
            ax.set_yticks(y, groups)
            ax.set_title(str(attr))
            ax.set_xlabel(f"{metric.upper()} gap" + (f" ({units})" if units else ""))
        axes[0].legend(loc="best", frameon=False)
    if path is not None:
        save_figure(fig, path)
    return fig
