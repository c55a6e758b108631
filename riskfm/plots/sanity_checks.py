"""Figures of the attribution sanity checks: cascading randomisation and deletion / insertion curves.

The numbers come from :mod:`riskfm.explain.sanity`; these functions only draw them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure

from riskfm.plots.style import (
    DOUBLE_COLUMN_IN,
    NEUTRAL,
    OKABE_ITO,
    SINGLE_COLUMN_IN,
    new_figure,
    publication_style,
)

__all__ = ["plot_deletion_insertion", "plot_randomisation"]


def plot_randomisation(result: Any, *, title: str | None = None, width_in: float = SINGLE_COLUMN_IN,
                       height_in: float = 2.6) -> Figure:
    """Spearman similarity to the original map after each cumulative randomisation step.

    ``result`` is a :class:`riskfm.explain.sanity.RandomisationResult`. A map that explains the
    model falls towards 0 as layers are randomised from the output down.
    """
    n = len(result.layers)
    x = np.arange(n)
    with publication_style():
        fig = new_figure(width_in, height_in)
        ax = fig.add_subplot()
        ax.plot(x, result.spearman_abs, marker="o", color=OKABE_ITO["vermillion"], label="|attribution|")
        ax.plot(x, result.spearman_signed, marker="s", color=OKABE_ITO["blue"], label="signed")
        ax.axhline(0, color=NEUTRAL, lw=0.5, ls=":")
        low = min(-0.3, float(np.nanmin([*result.spearman_abs, *result.spearman_signed])) - 0.05)
        ax.set_ylim(low, 1.05)
        short = [name.split(".", 1)[-1] if name.startswith("encoders.") else name for name in result.layers]
        ax.set_xticks(x, short, rotation=60, ha="right", fontsize=6)
        ax.set_ylabel("Spearman rank correlation\nwith the trained model's map")
        ax.set_xlabel("randomised up to (output \u2192 input)")
        ax.legend(fontsize=6.5)
        fig.suptitle(title or f"Cascading randomisation: {result.method.replace('_', ' ')}, {result.modality}",
                     fontsize=9, x=0.01, ha="left")
    return fig


def plot_deletion_insertion(result: Any, *, title: str | None = None, width_in: float = DOUBLE_COLUMN_IN * 0.7,
                            height_in: float = 2.3) -> Figure:
    """Plot deletion and insertion curves of the attribution order against a random order (AUC in the legend).

    Parameters
    ----------
    result : riskfm.explain.sanity.DeletionInsertionResult
        Its ``fractions`` ``[S]`` (share of ECG segments removed / inserted, drawn as %),
        ``deletion`` / ``insertion`` and ``random_deletion`` / ``random_insertion`` ``[S]`` (model
        output along each order, on the ``output`` scale), ``auc``, ``method`` and ``target``.
    title : str, optional
        Figure title, top left.
    width_in, height_in : float
        Figure size in inches.

    Returns
    -------
    matplotlib.figure.Figure
        Two panels side by side (deletion, insertion) sharing the y axis.
    """
    f = result.fractions * 100
    with publication_style():
        fig = new_figure(width_in, height_in)
        axes = fig.subplots(1, 2, sharey=True)
        for ax, kind in zip(axes, ("deletion", "insertion")):
            ours, rand = getattr(result, kind), getattr(result, f"random_{kind}")
            ax.plot(f, ours, color=OKABE_ITO["vermillion"], label=f"{result.method} (AUC {result.auc[kind]:.3f})")
            ax.plot(f, rand, color=NEUTRAL, ls="--", label=f"random (AUC {result.auc['random_' + kind]:.3f})")
            ax.set_xlabel(f"% of ECG segments {'removed' if kind == 'deletion' else 'inserted'}")
            ax.set_title(kind.capitalize())
            ax.legend(fontsize=6.5)
        axes[0].set_ylabel(f"predicted {result.target} ({result.output})")
        if title:
            fig.suptitle(title, fontsize=9, x=0.01, ha="left")
    return fig
