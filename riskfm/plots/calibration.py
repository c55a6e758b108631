"""Reliability diagram: observed event rate against mean predicted risk, with the predictions below."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter

from riskfm.evaluate.risk_groups import reliability_table
from riskfm.plots.style import NEUTRAL, OKABE_ITO, SINGLE_COLUMN_IN, new_figure, publication_style


def plot_calibration(
    y: Any,
    p: Any,
    n_bins: int = 10,
    strategy: str = "quantile",
    *,
    confidence: float = 0.95,
    label: str | None = None,
    title: str | None = None,
    size_in: tuple[float, float] = (SINGLE_COLUMN_IN, 4.4),
) -> Figure:
    """Reliability diagram with Wilson intervals and a histogram of the predictions.

    Parameters
    ----------
    y : array-like, shape [n]
        Observed outcome 0/1 (drop unknown labels first).
    p : array-like, shape [n]
        Predicted risk in [0, 1].
    n_bins : int
        Number of bins of predicted risk.
    strategy : {"quantile", "uniform"}
        Equal-count bins (default: every point carries the same weight of evidence) or
        equal-width bins on [0, 1].
    confidence : float
        Coverage of the Wilson intervals of the observed rate per bin.
    label : str, optional
        Legend label of the model's points (e.g. the target name).
    title : str, optional
        Title of the top panel.
    size_in : (float, float)
        Figure size in inches (PNG at 300 dpi: 1050 x 1320 px by default).

    Returns
    -------
    matplotlib.figure.Figure
        Top: observed event rate (with Wilson intervals) against mean predicted risk per bin and
        the identity line of perfect calibration. Bottom: histogram of the predicted risks of
        patients with and without the event, on the same risk axis.
    """
    table = reliability_table(y, p, n_bins=n_bins, strategy=strategy, confidence=confidence)
    y_arr = np.asarray(y, dtype=float)
    p_arr = np.asarray(p, dtype=float)
    # Zoom on the range actually used: risks of a rare outcome sit far below 1.
    hi = float(max(p_arr.max(), table["observed_high"].max(), table["mean_predicted"].max()))
    lim = min(1.0, max(0.05, 1.08 * hi))

    with publication_style():
        fig = new_figure(*size_in)
        ax, ax_hist = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3.2, 1.0]})
        ax.plot([0, lim], [0, lim], ls="--", lw=0.7, color=NEUTRAL, label="Perfect calibration", zorder=1)
        yerr = np.clip(np.vstack([table["observed_rate"] - table["observed_low"],
                                  table["observed_high"] - table["observed_rate"]]), 0.0, None)
        ax.errorbar(table["mean_predicted"], table["observed_rate"], yerr=yerr, fmt="o-",
                    color=OKABE_ITO["blue"], ecolor=OKABE_ITO["blue"], elinewidth=0.7, lw=0.9, zorder=2,
                    label=(label or "Model") + f" ({len(table)} {strategy} bins)")
        ax.set_xlim(0, lim)
        ax.set_ylim(0, lim)
        ax.set_aspect("auto")
        ax.set_ylabel(f"Observed event rate ({100 * confidence:g}% CI)")
        # Below the diagonal's far end is where a calibrated model leaves room.
        ax.legend(loc="lower right")
        ax.yaxis.set_major_formatter(PercentFormatter(xmax=1, decimals=0 if lim > 0.2 else 1))
        if title:
            ax.set_title(title)

        bins = np.linspace(0.0, lim, 41)
        ax_hist.hist(p_arr[y_arr == 0], bins=bins, color=NEUTRAL, alpha=0.6, label="No event")
        ax_hist.hist(p_arr[y_arr == 1], bins=bins, color=OKABE_ITO["vermillion"], alpha=0.7, label="Event")
        ax_hist.set_ylabel("Patients")
        ax_hist.yaxis.set_major_locator(MaxNLocator(nbins=3, integer=True))
        ax_hist.set_xlabel("Predicted risk")
        ax_hist.xaxis.set_major_formatter(PercentFormatter(xmax=1, decimals=0 if lim > 0.2 else 1))
        ax_hist.legend(loc="upper right", ncols=2)
    return fig
