"""Figures of the coronary artery calcium (CAC) recipes: low-data Dice curves, bucket confusion tables.

Both draw numbers the recipes computed (:mod:`riskfm.recipes.cac_low_data`,
:mod:`riskfm.recipes.cac_nongated`) in the publication style of :mod:`riskfm.plots.style`, and
return a ``matplotlib.figure.Figure``; with ``path`` they also save it (300 dpi PNG).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from riskfm.plots.style import new_figure, publication_style, save_figure

__all__ = ["plot_bucket_confusion", "plot_low_data_dice"]


def plot_low_data_dice(summary: pd.DataFrame, path: str | os.PathLike | None = None, *,
                       metric: str = "dice_overall"):
    """Dice (mean +- SD over folds) against the share of training data, one line per model.

    Parameters
    ----------
    summary : DataFrame
        The low-data protocol's summary: one row per (model, fraction) with columns ``model``,
        ``fraction`` (in (0, 1]), ``<metric>_mean`` and ``<metric>_std`` (Dice, unitless in [0, 1]).
    path : str or path, optional
        Where to save the figure.
    metric : str, default "dice_overall"
        Which Dice to draw, e.g. ``"dice_LAD"``.

    Returns
    -------
    matplotlib.figure.Figure
    """
    mean, std = f"{metric}_mean", f"{metric}_std"
    missing = [c for c in ("model", "fraction", mean, std) if c not in summary.columns]
    if missing:
        raise ValueError(f"plot_low_data_dice: summary lacks column(s) {missing}")
    with publication_style():
        fig = new_figure(3.5, 3.0)
        ax = fig.add_subplot(1, 1, 1)
        for model, sub in summary.groupby("model"):
            sub = sub.sort_values("fraction")
            ax.errorbar(sub["fraction"] * 100, sub[mean], yerr=sub[std].fillna(0),
                        marker="o", capsize=2, label=model)
        ax.set_xlabel("training data used (%)")
        ax.set_ylabel("Dice (mean over folds)")
        ax.legend(frameon=False)
    if path is not None:
        save_figure(fig, path)
    return fig


def plot_bucket_confusion(reference: Any, predicted: Mapping[str, Any], path: str | os.PathLike | None = None, *,
                          names: Sequence[str] | None = None):
    """Confusion tables of reference vs predicted categories, one panel per method.

    Parameters
    ----------
    reference : array-like of int, shape [N]
        Reference category per exam, ``0 .. len(names) - 1`` (e.g. the Agatston bucket 0-4).
    predicted : mapping panel title -> array-like of int, shape [N]
        Each method's predicted categories for the same exams.
    path : str or path, optional
        Where to save the figure.
    names : sequence of str, optional
        Category labels (default :data:`riskfm.ct.calcium.categories.BUCKET_NAMES`).

    Returns
    -------
    matplotlib.figure.Figure
        Counts in the cells (empty cells left blank), reference on the rows.
    """
    if names is None:
        from riskfm.ct.calcium.categories import BUCKET_NAMES

        names = BUCKET_NAMES
    k = len(names)
    ref = np.asarray(reference, dtype=np.int64)
    if not predicted:
        raise ValueError("plot_bucket_confusion needs at least one method's predictions")
    with publication_style():
        fig = new_figure(3.5 * len(predicted), 3.2)
        for i, (title, pred) in enumerate(predicted.items()):
            pred = np.asarray(pred, dtype=np.int64)
            if pred.shape != ref.shape:
                raise ValueError(f"plot_bucket_confusion: {title!r} has shape {pred.shape}, reference {ref.shape}")
            ax = fig.add_subplot(1, len(predicted), i + 1)
            table = np.zeros((k, k), int)
            np.add.at(table, (ref, pred), 1)
            ax.imshow(table, cmap="Blues")
            for r in range(k):
                for c in range(k):
                    if table[r, c]:
                        ax.text(c, r, str(table[r, c]), ha="center", va="center",
                                color="white" if table[r, c] > table.max() / 2 else "black")
            ax.set_xticks(range(k), names, rotation=45)
            ax.set_yticks(range(k), names)
            ax.set_xlabel("predicted bucket")
            ax.set_ylabel("reference bucket")
            ax.set_title(title)
    if path is not None:
        save_figure(fig, path)
    return fig
