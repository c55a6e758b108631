"""ROC curves: one curve per target, AUROC [CI] in the legend, the chance diagonal.

The figure only draws: curves, AUROCs, intervals and bands come from ``riskfm.evaluate.roc``
(``roc_curves`` / ``roc_curve``), whose results have ``.plot()``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from matplotlib.figure import Figure

from riskfm.evaluate.guards import not_estimable_text
from riskfm.plots.style import (
    NEUTRAL,
    PALETTE,
    SINGLE_COLUMN_IN,
    new_figure,
    publication_style,
    target_label,
)


def plot_roc(
    curves: Any,
    *,
    title: str | None = None,
    size_in: tuple[float, float] = (SINGLE_COLUMN_IN, SINGLE_COLUMN_IN),
) -> Figure:
    """ROC curves with AUROC and its confidence interval in the legend.

    Parameters
    ----------
    curves : RocCurves, RocCurve or mapping of name -> RocCurve
        From ``riskfm.evaluate.roc_curves`` / ``roc_curve``. A curve that is not estimable (the
        small-sample rule) is not drawn; the legend lists it as ``n/e (1 event < 10)``. A curve
        with a band gets it shaded (pointwise bootstrap band of the sensitivity).
    title : str, optional
        Axes title.
    size_in : (float, float)
        Figure size in inches (PNG at 300 dpi: 1050 x 1050 px by default).

    Returns
    -------
    matplotlib.figure.Figure
    """
    confidence = getattr(curves, "confidence", None)
    if hasattr(curves, "curves"):
        curves = curves.curves
    elif not isinstance(curves, Mapping):
        curves = {"model": curves}
    if not curves:
        raise ValueError("ROC: no curve to draw")
    with publication_style():
        fig = new_figure(*size_in)
        ax = fig.add_subplot()
        ax.plot([0, 1], [0, 1], ls="--", lw=0.7, color=NEUTRAL, label="Chance", zorder=1)
        for i, (name, c) in enumerate(curves.items()):
            if c.not_estimable:
                # No curve, band or number: only the reason, with the counts, in the legend.
                ax.plot([], [], ls="none", label=f"{target_label(name)}: {not_estimable_text(c.not_estimable)}")
                continue
            ci_text = "" if c.ci is None else f" [{c.ci[0]:.2f}\u2013{c.ci[1]:.2f}]"
            color = PALETTE[i % len(PALETTE)]
            if c.band is not None:
                ax.fill_between(c.band["fpr"], c.band["ci_low"], c.band["ci_high"], color=color, alpha=0.15, lw=0,
                                zorder=1.5)
            ax.plot(c.fpr, c.tpr, color=color, zorder=2, label=f"{target_label(name)}: {c.value:.2f}{ci_text}")
            confidence = c.confidence  # the interval drawn last names the coverage
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.005)
        ax.set_aspect("equal")
        ax.set_xlabel("1 \u2212 specificity (false-positive rate)")
        ax.set_ylabel("Sensitivity (true-positive rate)")
        conf_pct = f"{100 * (confidence or 0.95):g}%"
        ax.legend(loc="lower right", title=f"AUROC [{conf_pct} CI]", title_fontsize=7, handlelength=1.5)
        if title:
            ax.set_title(title)
    return fig
