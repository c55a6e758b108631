"""A 3D attribution over CT: axial, coronal and sagittal slices through its peak and a maximum-intensity projection.

Arrays are ``[Z, Y, X]`` (riskfm's CT axis order) with spacing (z, y, x) in mm; panels are drawn in
millimetres so anatomy keeps its proportions. Axial slices show rows = y and columns = x; coronal and
sagittal slices put z upwards. The attribution is normalised to its largest magnitude, hidden below
``threshold`` of it, and laid over the CT in a heat colour map; thin lines cross at the peak.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from riskfm.plots.style import DOUBLE_COLUMN_IN, new_figure, publication_style

__all__ = ["plot_ct_attribution"]


def plot_ct_attribution(image: np.ndarray, attribution: np.ndarray, spacing: Sequence[float], *,
                        peak: Sequence[int] | None = None, threshold: float = 0.2, signed: bool = False,
                        cmap: str = "inferno", title: str | None = None, window_label: str = "",
                        width_in: float = DOUBLE_COLUMN_IN, height_in: float = 2.5) -> Figure:
    """Four panels: axial, coronal, sagittal through ``peak`` and an axial MIP, map over CT.

    Parameters
    ----------
    image : float ``[Z, Y, X]`` display image in [0, 1] (a windowed CT; see ``CTAttribution.plot``).
    attribution : float ``[Z, Y, X]`` on the same grid.
    spacing : (z, y, x) mm.
    peak : (z, y, x) voxel the slices go through; default the largest attribution.
    threshold : share of the maximum below which the map is transparent.
    signed : overlay positive values only (True) instead of magnitudes (False).
    window_label : how ``image`` was windowed, printed in the first panel's title.

    Raises
    ------
    ValueError
        The arrays are not 3-D of the same shape, or the spacing is not three positive numbers.
    """
    img = np.asarray(image, dtype=np.float64)
    att = np.asarray(attribution, dtype=np.float64)
    if img.ndim != 3 or img.shape != att.shape:
        raise ValueError(f"image {img.shape} and attribution {att.shape} must be [Z, Y, X] of the same shape")
    sz, sy, sx = (float(s) for s in spacing)
    if min(sz, sy, sx) <= 0 or len(tuple(spacing)) != 3:
        raise ValueError(f"spacing must be three positive numbers (z, y, x) in mm, got {spacing!r}")
    shown = np.clip(att, 0, None) if signed else np.abs(att)
    shown = np.nan_to_num(shown)
    top = float(shown.max()) or 1.0
    shown = shown / top
    if peak is None:
        peak = np.unravel_index(int(np.argmax(shown)), shown.shape)
    pz, py, px = (int(p) for p in peak)
    nz, ny, nx = img.shape

    def overlay(a: np.ndarray) -> np.ma.MaskedArray:
        return np.ma.masked_less(a, threshold)

    panels = [
        ("axial", img[pz], shown[pz], (0, nx * sx, ny * sy, 0), (px * sx, py * sy), "upper"),
        ("coronal", img[:, py, :], shown[:, py, :], (0, nx * sx, 0, nz * sz), (px * sx, pz * sz), "lower"),
        ("sagittal", img[:, :, px], shown[:, :, px], (0, ny * sy, 0, nz * sz), (py * sy, pz * sz), "lower"),
        ("axial MIP", img.max(axis=0), shown.max(axis=0), (0, nx * sx, ny * sy, 0), None, "upper"),
    ]
    norm = Normalize(0.0, 1.0)
    with publication_style():
        fig = new_figure(width_in, height_in)
        axes = fig.subplots(1, 4, squeeze=False)[0]
        for ax, (name, bg, a, extent, cross, origin) in zip(axes, panels):
            # extent is (left, right, bottom, top) in mm; with origin "upper" row 0 is drawn at the top.
            ax.imshow(bg, cmap="gray", vmin=0, vmax=1, extent=extent, origin=origin, interpolation="nearest")
            ax.imshow(overlay(a), cmap=cmap, norm=norm, alpha=0.6, extent=extent, origin=origin,
                      interpolation="bilinear")
            if cross is not None:
                ax.axvline(cross[0], color="#56B4E9", lw=0.4, alpha=0.8)
                ax.axhline(cross[1], color="#56B4E9", lw=0.4, alpha=0.8)
            where = {"axial": f" z={pz}", "coronal": f" y={py}", "sagittal": f" x={px}"}.get(name, "")
            ax.set_title(f"{name}{where}", fontsize=7.5, pad=2)
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
        if window_label:
            axes[0].set_title(f"axial z={pz} ({window_label})", fontsize=7.5, pad=2)
        cb = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=axes, location="right", shrink=0.8, aspect=25)
        cb.set_label("attribution / max" + (" (positive)" if signed else " |value|"), fontsize=7)
        # A 10 mm scale bar in the first panel: the panels are in mm.
        x0 = panels[0][3][1] * 0.05
        y0 = panels[0][3][2] * 0.92
        axes[0].plot([x0, x0 + 10.0], [y0, y0], color="white", lw=1.2)
        axes[0].text(x0 + 5.0, y0 - 1.5, "10 mm", color="white", fontsize=6, ha="center", va="bottom")
        if title:
            fig.suptitle(title, fontsize=9, x=0.01, ha="left")
    return fig
