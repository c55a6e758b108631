"""The standard 12-lead ECG print-out (3 x 4 leads plus a lead II rhythm strip) with an attribution overlay.

Drawn to scale like ECG paper: 25 mm/s and 10 mm/mV on a 1 mm grid with 5 mm major squares, so the
saved figure printed at 100% measures like a paper ECG (each axis unit is laid out in millimetres).
Columns show consecutive quarters of the record (I-III, then aVR-aVF, V1-V3, V4-V6), each row starts
with a 1 mV calibration pulse, and the bottom row is the whole record of the rhythm lead.

The attribution is drawn as a translucent heat band behind each trace (magnitude by default; blue /
red for negative / positive with ``signed=True``), normalised to its 99th percentile over the shown
window so that one extreme sample does not wash out the rest.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.colors import LinearSegmentedColormap, Normalize
from matplotlib.figure import Figure

from riskfm.plots.style import DPI, publication_style

__all__ = ["STANDARD_LAYOUT", "attribution_colormap", "plot_ecg_paper"]

#: Columns of the standard print-out, top to bottom.
STANDARD_LAYOUT: tuple[tuple[str, ...], ...] = (("I", "II", "III"), ("aVR", "aVL", "aVF"), ("V1", "V2", "V3"),
                                                 ("V4", "V5", "V6"))
_GRID_MINOR = "#F6CFCB"
_GRID_MAJOR = "#E59A92"
_MM_PER_IN = 25.4


def attribution_colormap(signed: bool = False) -> LinearSegmentedColormap:
    """Colour map whose opacity grows with the attribution's magnitude (transparent at 0)."""
    if signed:
        colours = [(0.0, (0.0, 0.447, 0.698, 0.85)), (0.5, (1.0, 1.0, 1.0, 0.0)), (1.0, (0.835, 0.369, 0.0, 0.85))]
        return LinearSegmentedColormap.from_list("riskfm_signed_attr", colours)
    colours = [(0.0, (1.0, 0.95, 0.6, 0.0)), (0.4, (0.99, 0.6, 0.2, 0.35)), (1.0, (0.75, 0.0, 0.1, 0.65))]
    return LinearSegmentedColormap.from_list("riskfm_attr", colours)


def _grid(ax, x0: float, x1: float, y0: float, y1: float, speed: float, gain: float) -> None:
    segments_minor, segments_major = [], []
    step_x, step_y = 1.0 / speed, 1.0 / gain  # 1 mm in s and in mV
    for k in range(int(np.floor(x0 / step_x)), int(np.ceil(x1 / step_x)) + 1):
        (segments_major if k % 5 == 0 else segments_minor).append([(k * step_x, y0), (k * step_x, y1)])
    for k in range(int(np.floor(y0 / step_y)), int(np.ceil(y1 / step_y)) + 1):
        (segments_major if k % 5 == 0 else segments_minor).append([(x0, k * step_y), (x1, k * step_y)])
    ax.add_collection(LineCollection(segments_minor, colors=_GRID_MINOR, linewidths=0.25, zorder=0))
    ax.add_collection(LineCollection(segments_major, colors=_GRID_MAJOR, linewidths=0.5, zorder=0))


def _calibration(ax, y: float, x_start: float) -> None:
    xs = np.array([0.0, 0.05, 0.05, 0.25, 0.25, 0.3]) + x_start
    ys = np.array([0.0, 0.0, 1.0, 1.0, 0.0, 0.0]) + y
    ax.plot(xs, ys, color="black", lw=0.6, zorder=3, solid_joinstyle="miter")


def plot_ecg_paper(signal: np.ndarray, fs: float, leads: Sequence[str], *, attribution: np.ndarray | None = None,
                   signed: bool = False, start_s: float = 0.0, duration_s: float = 10.0, rhythm_lead: str = "II",
                   speed_mm_s: float = 25.0, gain_mm_mv: float = 10.0, row_mv: float = 3.0, units: str = "mV",
                   title: str | None = None, attribution_label: str = "attribution |value|") -> Figure:
    """Draw an ECG as a 12-lead paper print-out, optionally with an attribution overlay.

    Parameters
    ----------
    signal : float ``[leads, T]`` in ``units`` (mV for a true 10 mm/mV scale).
    fs : sampling rate in Hz. leads : names of the rows of ``signal`` (riskfm canonical names).
    attribution : float ``[leads, T]`` aligned with ``signal``, or None for a plain ECG.
    signed : colour negative / positive attributions differently instead of their magnitude.
    start_s, duration_s : the window shown (the record is cut to it; 10 s is standard).
    rhythm_lead : lead of the full-length bottom strip.
    speed_mm_s, gain_mm_mv : paper speed and gain (25 mm/s, 10 mm/mV).
    row_mv : height of each row in the signal's units (3 mV = 30 mm).

    Returns
    -------
    Figure at true paper scale: ``(duration + 0.4 s) x speed`` mm wide plus margins.

    Raises
    ------
    ValueError
        Shapes disagree, the window is empty, or ``fs`` is not positive.
    """
    x = np.asarray(signal, dtype=np.float64)
    leads = list(leads)
    if x.ndim != 2 or x.shape[0] != len(leads):
        raise ValueError(f"signal must be [leads, T] with {len(leads)} rows for leads {leads}; got {x.shape}")
    if not fs > 0:
        raise ValueError(f"fs must be positive (Hz), got {fs}")
    a = None
    if attribution is not None:
        a = np.asarray(attribution, dtype=np.float64)
        if a.shape != x.shape:
            raise ValueError(f"attribution {a.shape} must have the signal's shape {x.shape}")
    i0 = int(round(start_s * fs))
    i1 = min(x.shape[1], i0 + int(round(duration_s * fs)))
    if i1 - i0 < 2:
        raise ValueError(f"no samples in the window {start_s}-{start_s + duration_s} s of a "
                         f"{x.shape[1] / fs:.1f} s record")
    x = np.nan_to_num(x[:, i0:i1])
    a = None if a is None else np.nan_to_num(a[:, i0:i1])
    n = x.shape[1]
    dur = n / fs
    t = np.arange(n) / fs

    standard = all(lead in leads for col in STANDARD_LAYOUT for lead in col)
    # rows: list of [(lead, sample range)] per row
    rows: list[list[tuple[str, int, int]]] = []
    if standard:
        q = n // 4
        for r in range(3):
            rows.append([(STANDARD_LAYOUT[c][r], c * q, n if c == 3 else (c + 1) * q) for c in range(4)])
        rows.append([(rhythm_lead if rhythm_lead in leads else leads[0], 0, n)])
    else:
        rows = [[(lead, 0, n)] for lead in leads]

    cal_w = 0.4  # s reserved for the calibration pulse
    ax_w_mm = (dur + cal_w) * speed_mm_s
    ax_h_mm = len(rows) * row_mv * gain_mm_mv
    left, right, top, bottom = 6.0, 6.0, 10.0 if title else 5.0, 14.0
    fig_w_mm, fig_h_mm = ax_w_mm + left + right, ax_h_mm + top + bottom

    with publication_style():
        fig = Figure(figsize=(fig_w_mm / _MM_PER_IN, fig_h_mm / _MM_PER_IN), dpi=DPI)
        FigureCanvasAgg(fig)
        ax = fig.add_axes((left / fig_w_mm, bottom / fig_h_mm, ax_w_mm / fig_w_mm, ax_h_mm / fig_h_mm))
        y_top = len(rows) * row_mv
        x_lo = -cal_w
        _grid(ax, x_lo, dur, 0.0, y_top, speed_mm_s, gain_mm_mv)
        cmap = attribution_colormap(signed)
        if a is not None:
            scale = float(np.percentile(np.abs(a), 99)) or float(np.abs(a).max()) or 1.0
            norm = Normalize(-scale, scale) if signed else Normalize(0.0, scale)
        for r, row in enumerate(rows):
            y = y_top - (r + 0.5) * row_mv - 0.2 * row_mv  # baseline a little below the row centre
            _calibration(ax, y, x_lo + 0.05)
            for lead, s0, s1 in row:
                li = leads.index(lead)
                if a is not None:
                    band = a[li, s0:s1] if signed else np.abs(a[li, s0:s1])
                    ax.imshow(band[None, :], extent=(t[s0], t[s1 - 1] + 1 / fs, y - 0.3 * row_mv, y + 0.7 * row_mv),
                              cmap=cmap, norm=norm, aspect="auto", interpolation="bilinear", zorder=1)
                ax.plot(t[s0:s1], y + x[li, s0:s1], color="black", lw=0.55, zorder=3)
                ax.text(t[s0] + 0.04, y + 0.45 * row_mv, lead, fontsize=7, fontweight="bold", zorder=4,
                        va="bottom", ha="left")
                if s0 > 0:  # lead change marker, as printed ECGs have
                    ax.plot([t[s0], t[s0]], [y - 0.2, y + 0.2], color="black", lw=0.6, zorder=3)
        ax.set_xlim(x_lo, dur)
        ax.set_ylim(0.0, y_top)
        # Equal millimetres on both axes: 1 s = speed mm and 1 mV = gain mm.
        ax.set_aspect(gain_mm_mv / speed_mm_s)
        ax.set_axis_off()
        if title:
            fig.text(left / fig_w_mm, 1 - 3.0 / fig_h_mm, title, fontsize=9, va="top", ha="left")
        footer = (f"{speed_mm_s:g} mm/s, {gain_mm_mv:g} mm/{'mV' if units == 'mV' else units + ' unit'}, "
                  f"{fs:g} Hz, {start_s:g}-{start_s + dur:g} s")
        fig.text(left / fig_w_mm, 5.0 / fig_h_mm, footer, fontsize=7, va="center", ha="left")
        if a is not None:
            cax = fig.add_axes((1 - (right + 60.0) / fig_w_mm, 6.0 / fig_h_mm, 60.0 / fig_w_mm, 2.2 / fig_h_mm))
            from matplotlib.cm import ScalarMappable

            cb = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), cax=cax, orientation="horizontal")
            cb.ax.tick_params(labelsize=6, length=2)
            cb.set_label(attribution_label if not signed else "attribution (signed)", fontsize=6.5, labelpad=1)
            cb.ax.xaxis.set_label_position("top")
    return fig
