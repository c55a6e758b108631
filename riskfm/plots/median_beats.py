"""Median-beat figures, one panel per lead in the print-out's arrangement (columns I-III, aVR-aVF, V1-V3, V4-V6).

* :func:`plot_median_beat_comparison`: the mean median beat of high- and low-risk patients with
  confidence bands, grey shading where they differ (FDR-controlled, computed by
  :func:`riskfm.explain.waveforms.compare_median_beats`);
* :func:`plot_median_beat_difference`: the difference of the two groups' mean beats (high - low) per
  lead with its pointwise confidence band and the same shading;
* :func:`plot_median_beat_attribution`: one patient's median beat with its attribution behind it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from riskfm.plots.ecg_paper import STANDARD_LAYOUT, attribution_colormap
from riskfm.plots.style import DOUBLE_COLUMN_IN, NEUTRAL, RISK_GROUP_COLORS, new_figure, publication_style

__all__ = ["plot_median_beat_attribution", "plot_median_beat_comparison", "plot_median_beat_difference"]


def _panel_order(leads: Sequence[str]) -> tuple[list[str], int, int]:
    """Leads in panel order (row-major) with the grid shape: the print-out's 3 x 4 when all 12 are there."""
    leads = list(leads)
    if all(lead in leads for col in STANDARD_LAYOUT for lead in col):
        order = [STANDARD_LAYOUT[c][r] for r in range(3) for c in range(4)]
        return order, 3, 4
    ncols = min(4, len(leads))
    return leads, int(np.ceil(len(leads) / ncols)), ncols


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) index pairs of the True runs of a 1-D boolean array."""
    padded = np.concatenate([[False], mask.astype(bool), [False]])
    edges = np.flatnonzero(np.diff(padded.astype(int)))
    return list(zip(edges[::2], edges[1::2]))


def _lead_grid(c: Any, draw: Any, *, lo: float, hi: float, ylabel: str, legend_ncols: int, title: str,
               width_in: float, height_in: float) -> Figure:
    """One panel per lead of a median-beat comparison ``c``: shading where the groups differ, then ``draw``.

    ``draw(ax, ms, li)`` draws lead index ``li`` against ``ms`` (ms from R); the grid, the shading
    (runs of ``c.significant``), the R marker, the y range ``[lo, hi]`` with a 5% margin, the axis
    labels, the shared legend (plus the shading's entry) and the title are the same for every figure.
    """
    order, nrows, ncols = _panel_order(c.leads)
    ms = c.time_s * 1000.0
    dt = (ms[1] - ms[0]) if len(ms) > 1 else 1.0
    pad = 0.05 * (hi - lo or 1.0)
    with publication_style():
        fig = new_figure(width_in, height_in)
        axes = fig.subplots(nrows, ncols, sharex=True, sharey=True, squeeze=False)
        for k, lead in enumerate(order):
            ax = axes[k // ncols][k % ncols]
            li = list(c.leads).index(lead)
            for start, stop in _runs(c.significant[li]):
                ax.axvspan(ms[start] - dt / 2, ms[stop - 1] + dt / 2, color=NEUTRAL, alpha=0.18, lw=0, zorder=0)
            draw(ax, ms, li)
            ax.axvline(0.0, color=NEUTRAL, lw=0.4, ls=":", zorder=0)
            ax.set_title(lead, fontsize=8, pad=2)
            ax.set_ylim(lo - pad, hi + pad)
            if k // ncols == nrows - 1:
                ax.set_xlabel("ms from R")
            if k % ncols == 0:
                ax.set_ylabel(ylabel)
        for k in range(len(order), nrows * ncols):
            axes[k // ncols][k % ncols].set_axis_off()
        handles, labels = axes[0][0].get_legend_handles_labels()
        from matplotlib.patches import Patch

        handles.append(Patch(color=NEUTRAL, alpha=0.18, lw=0))
        labels.append(f"differ (Welch t, BH q < {c.alpha:g})")
        fig.legend(handles, labels, loc="outside lower center", ncols=legend_ncols, fontsize=7)
        fig.suptitle(title, fontsize=9, x=0.01, ha="left")
    return fig


def plot_median_beat_comparison(comparison: Any, *, title: str | None = None, width_in: float = DOUBLE_COLUMN_IN,
                                height_in: float = 5.2) -> Figure:
    """Mean median beats of two risk groups per lead, CI bands, shading where q < alpha.

    Parameters
    ----------
    comparison : :class:`riskfm.explain.waveforms.MedianBeatComparison`.
    """
    c = comparison
    lo = min(np.nanmin(c.high_risk_ci[0]), np.nanmin(c.low_risk_ci[0]))
    hi = max(np.nanmax(c.high_risk_ci[1]), np.nanmax(c.low_risk_ci[1]))
    colours = (RISK_GROUP_COLORS["high"], RISK_GROUP_COLORS["low"])

    def draw(ax: Any, ms: np.ndarray, li: int) -> None:
        for mean, ci, colour, label, n in ((c.mean_high, c.high_risk_ci, colours[0], c.labels[0], c.n_high),
                                           (c.mean_low, c.low_risk_ci, colours[1], c.labels[1], c.n_low)):
            ax.fill_between(ms, ci[0, li], ci[1, li], color=colour, alpha=0.25, lw=0, zorder=1)
            ax.plot(ms, mean[li], color=colour, lw=0.9, zorder=2, label=f"{label} (n={n})")

    what = f" \u2014 {c.target}" if c.target else ""
    return _lead_grid(c, draw, lo=lo, hi=hi, ylabel="mV", legend_ncols=3, width_in=width_in, height_in=height_in,
                      title=title or f"Median beats by predicted risk{what} (mean, {c.confidence:.0%} CI)")


def plot_median_beat_difference(comparison: Any, *, title: str | None = None, width_in: float = DOUBLE_COLUMN_IN,
                                height_in: float = 5.2) -> Figure:
    """Difference of the two groups' mean median beats per lead, its CI band, shading where q < alpha.

    Parameters
    ----------
    comparison : :class:`riskfm.explain.waveforms.MedianBeatComparison`
        With ``difference`` and ``difference_ci`` (from ``compare_median_beats``).
    title : str, optional
    width_in, height_in : float
        Figure size in inches.

    Returns
    -------
    matplotlib.figure.Figure
    """
    c = comparison
    if c.difference is None or c.difference_ci is None:
        raise ValueError("this comparison holds no difference; build it with compare_median_beats")
    lo, hi = float(np.nanmin(c.difference_ci[0])), float(np.nanmax(c.difference_ci[1]))
    colour = RISK_GROUP_COLORS["high"]

    def draw(ax: Any, ms: np.ndarray, li: int) -> None:
        ax.axhline(0.0, color=NEUTRAL, lw=0.5, zorder=1)
        ax.fill_between(ms, c.difference_ci[0, li], c.difference_ci[1, li], color=colour, alpha=0.25, lw=0, zorder=1)
        ax.plot(ms, c.difference[li], color=colour, lw=0.9, zorder=2,
                label=f"{c.labels[0]} \u2212 {c.labels[1]} (n={c.n_high} vs {c.n_low})")

    what = f" \u2014 {c.target}" if c.target else ""
    return _lead_grid(c, draw, lo=min(lo, 0.0), hi=max(hi, 0.0), ylabel="\u0394 mV", legend_ncols=2,
                      width_in=width_in, height_in=height_in,
                      title=title or f"Median-beat difference, high \u2212 low risk{what} "
                                     f"(pointwise {c.confidence:.0%} CI)")


def plot_median_beat_attribution(beat: np.ndarray, attribution: np.ndarray, time_s: np.ndarray,
                                 leads: Sequence[str], *, title: str | None = None, units: str = "mV",
                                 n_beats: int | None = None, signed: bool = False,
                                 width_in: float = DOUBLE_COLUMN_IN, height_in: float = 4.6) -> Figure:
    """One patient's median beat per lead with the attribution as a heat band behind the trace.

    Parameters
    ----------
    beat, attribution : float ``[leads, W]`` (median beat in ``units``; attribution aligned with it).
    time_s : ``[W]`` seconds from R. leads : lead names.
    signed : colour negative / positive attributions instead of magnitudes.
    """
    beat, attribution = np.asarray(beat, dtype=np.float64), np.asarray(attribution, dtype=np.float64)
    if beat.shape != attribution.shape or beat.shape[0] != len(leads) or beat.shape[1] != len(time_s):
        raise ValueError(f"beat {beat.shape}, attribution {attribution.shape}, time_s {np.shape(time_s)} and "
                         f"{len(leads)} leads do not agree")
    order, nrows, ncols = _panel_order(leads)
    ms = np.asarray(time_s) * 1000.0
    values = attribution if signed else np.abs(attribution)
    scale = float(np.percentile(np.abs(values), 99)) or float(np.abs(values).max()) or 1.0
    norm = Normalize(-scale, scale) if signed else Normalize(0.0, scale)
    cmap = attribution_colormap(signed)
    lo, hi = float(beat.min()), float(beat.max())
    pad = 0.1 * (hi - lo or 1.0)
    with publication_style():
        fig = new_figure(width_in, height_in)
        axes = fig.subplots(nrows, ncols, sharex=True, sharey=True, squeeze=False)
        for k, lead in enumerate(order):
            ax = axes[k // ncols][k % ncols]
            li = list(leads).index(lead)
            ax.imshow(values[li][None, :], extent=(ms[0], ms[-1], lo - pad, hi + pad), cmap=cmap, norm=norm,
                      aspect="auto", interpolation="bilinear", zorder=0)
            ax.plot(ms, beat[li], color="black", lw=0.8, zorder=2)
            ax.axvline(0.0, color=NEUTRAL, lw=0.4, ls=":", zorder=1)
            ax.set_title(lead, fontsize=8, pad=2)
            ax.set_ylim(lo - pad, hi + pad)
            ax.set_xlim(ms[0], ms[-1])
            if k // ncols == nrows - 1:
                ax.set_xlabel("ms from R")
            if k % ncols == 0:
                ax.set_ylabel(units)
        for k in range(len(order), nrows * ncols):
            axes[k // ncols][k % ncols].set_axis_off()
        cb = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=axes, location="right", shrink=0.6, aspect=30)
        cb.set_label("attribution (signed)" if signed else "attribution |value|", fontsize=7)
        beats = f", {n_beats} beats" if n_beats and n_beats > 1 else ""
        fig.suptitle((title or "Attribution in median-beat space") + beats, fontsize=9, x=0.01, ha="left")
    return fig
