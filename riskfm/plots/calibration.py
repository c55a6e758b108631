"""Reliability diagram: observed event rate against mean predicted risk, with the predictions below."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter

from riskfm.plots.style import NEUTRAL, OKABE_ITO, SINGLE_COLUMN_IN, new_figure, publication_style


def _estimate_text(est: Any) -> str:
    if est is None or not np.isfinite(est.value):
        return "not estimable"
    if est.ci is not None:
        return f"{est.value:.2f} [{est.ci[0]:.2f}, {est.ci[1]:.2f}]"
    return f"{est.value:.2f}"


def plot_calibration(
    result: Any,
    *,
    label: str | None = None,
    title: str | None = None,
    size_in: tuple[float, float] = (SINGLE_COLUMN_IN, 4.4),
) -> Figure:
    """Reliability diagram with Wilson intervals, patients per bin, slope and intercept.

    Parameters
    ----------
    result : CalibrationResult
        ``riskfm.evaluate.calibration(y, p, n_bins=, strategy=, min_bin_size=)``: its reliability
        bins (``result.table``), slope and intercept are drawn, and its predicted risks
        (``result.p``, ``result.y``) give the histogram. ``result.plot()`` calls this function.
    label : str, optional
        Legend label of the model's points (e.g. the target name).
    title : str, optional
        Title of the top panel.
    size_in : (float, float)
        Figure size in inches (PNG at 300 dpi: 1050 x 1320 px by default).

    Returns
    -------
    matplotlib.figure.Figure
        Top: observed event rate (with Wilson intervals) against mean predicted risk per bin,
        each point labelled with its number of patients, and the identity line of perfect
        calibration; the legend, with the calibration slope and intercept, sits above the
        data. Bottom: histogram of the predicted risks of patients with and without the event.
        ``fig.calibration_table`` holds the bins drawn (``result.table``).
    """
    table = result.table
    strategy = result.strategy
    confidence = result.confidence
    y_arr, p_arr = np.asarray(result.y, dtype=float), np.asarray(result.p, dtype=float)
    slope = _estimate_text(result.slope)
    intercept = _estimate_text(result.intercept)
    # Zoom on the range actually used: risks of a rare outcome sit far below 1.
    hi = float(max(p_arr.max(), table["ci_high"].max(), table["mean_predicted"].max()))
    lim = min(1.0, max(0.05, 1.08 * hi))
    pct = PercentFormatter(xmax=1, decimals=0 if lim > 0.2 else 1)

    with publication_style():
        fig = new_figure(*size_in)
        ax, ax_hist = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3.2, 1.0]})
        ax.plot([0, lim], [0, lim], ls="--", lw=0.7, color=NEUTRAL, label="Perfect calibration", zorder=1)
        yerr = np.clip(np.vstack([table["observed_rate"] - table["ci_low"],
                                  table["ci_high"] - table["observed_rate"]]), 0.0, None)
        ax.errorbar(table["mean_predicted"], table["observed_rate"], yerr=yerr, fmt="o-",
                    color=OKABE_ITO["blue"], ecolor=OKABE_ITO["blue"], elinewidth=0.7, lw=0.9, zorder=2,
                    label=(label or "Model") + f" ({len(table)} {strategy} bins; patients per bin above each interval)")
        # Patients per bin, written vertically just above each interval (clear of crowded points).
        for x, top, n in zip(table["mean_predicted"], table["ci_high"], table["n"]):
            ax.annotate(f"{int(n)}", (x, top), xytext=(0, 1.5), textcoords="offset points", fontsize=5,
                        rotation=90, ha="center", va="bottom", color=OKABE_ITO["blue"], annotation_clip=False)
        # Slope and intercept: a legend line without a handle.
        ax.plot([], [], ls="none", label=f"Slope {slope}; intercept {intercept}")
        ax.set_xlim(0, lim)
        ax.set_ylim(0, lim)
        ax.set_aspect("auto")
        ax.set_ylabel(f"Observed event rate ({100 * confidence:g}% CI)")
        ax.yaxis.set_major_formatter(pct)
        # Above the axes, never over the points.
        handles, labels = ax.get_legend_handles_labels()
        order = [2, 0, 1] if len(handles) == 3 else list(range(len(handles)))  # model, identity, slope
        ax.legend([handles[i] for i in order], [labels[i] for i in order], loc="lower left",
                  bbox_to_anchor=(0.0, 1.0), borderaxespad=0.3, handlelength=1.5, fontsize=6)
        if title:
            fig.suptitle(title, x=0.02, ha="left", fontsize=9)

        bins = np.linspace(0.0, lim, 41)
        ax_hist.hist(p_arr[y_arr == 0], bins=bins, color=NEUTRAL, alpha=0.6, label="No event")
        ax_hist.hist(p_arr[y_arr == 1], bins=bins, color=OKABE_ITO["vermillion"], alpha=0.7, label="Event")
        ax_hist.set_ylabel("Patients")
        ax_hist.yaxis.set_major_locator(MaxNLocator(nbins=3, integer=True))
        ax_hist.set_xlabel("Predicted risk")
        ax_hist.xaxis.set_major_formatter(pct)
        ax_hist.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=2, borderaxespad=0.2, fontsize=6)
    fig.calibration_table = table
    return fig
