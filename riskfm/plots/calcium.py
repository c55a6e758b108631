"""Coronary calcium figures: the overlay of scored calcium on the CT slice that holds the most of it.

:meth:`riskfm.ct.calcium.CalciumReport.plot` (and ``riskfm cac score``) draw it.

Examples
--------
>>> import numpy as np
>>> from riskfm.plots.calcium import calcium_overlay
>>> hu = np.zeros((4, 16, 16)); labels = np.zeros((4, 16, 16), np.uint8); labels[2, 5:7, 5:7] = 2
>>> calcium_overlay(hu, labels, "/tmp/riskfm_calcium_overlay.png").name
'riskfm_calcium_overlay.png'
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

__all__ = ["ARTERY_COLOURS", "calcium_overlay"]

#: Colour of each artery label (1 LM, 2 LAD, 3 LCX, 4 RCA), as named in the overlay's title.
ARTERY_COLOURS: tuple[tuple[str, str, str], ...] = (
    ("LM", "yellow", "#ffd700"),
    ("LAD", "red", "#d62728"),
    ("LCX", "green", "#2ca02c"),
    ("RCA", "blue", "#1f77b4"),
)


def calcium_overlay(hu: np.ndarray, labels: np.ndarray, path: str | os.PathLike, *, flagged: bool = False) -> Path:
    """PNG of the slice with the most calcium, HU in a soft-tissue window, arteries coloured.

    Parameters
    ----------
    hu : np.ndarray
        float ``[Z, Y, X]``: the CT in Hounsfield units; drawn in grey, clipped to -200..600 HU.
    labels : np.ndarray
        uint8 ``[Z, Y, X]`` on the same grid: 0 background, 1 LM, 2 LAD, 3 LCX, 4 RCA (a threshold
        score without a model labels every calcium voxel 1). The slice with the most labelled
        voxels is drawn (the middle slice when none is).
    path : str or PathLike
        Where to write the PNG (300 dpi, 3.5 x 3.5 in; parent folders are created).
    flagged : bool, default False
        The scan has scan-check findings: the title says so in red.

    Returns
    -------
    Path
        The PNG written.
    """
    from matplotlib.colors import ListedColormap

    from riskfm.plots.style import new_figure, publication_style, save_figure

    hu, labels = np.asarray(hu), np.asarray(labels)
    if hu.ndim != 3 or hu.shape != labels.shape:
        raise ValueError(f"hu and labels must be [Z, Y, X] arrays of one shape, got {hu.shape} and {labels.shape}")
    z = int(np.argmax((labels > 0).sum(axis=(1, 2)))) if labels.any() else hu.shape[0] // 2
    with publication_style():
        fig = new_figure(3.5, 3.5)
        ax = fig.add_subplot(1, 1, 1)
        ax.imshow(np.clip(hu[z], -200, 600), cmap="gray")
        cmap = ListedColormap([colour for _, _, colour in ARTERY_COLOURS])
        ax.imshow(np.ma.masked_equal(labels[z], 0), cmap=cmap, vmin=1, vmax=4, interpolation="nearest")
        title = f"slice {z}: " + ", ".join(f"{artery} {name}" for artery, name, _ in ARTERY_COLOURS)
        if flagged:
            title += "\nWARNING: scan checks failed, see scan_checks.csv"
        ax.set_title(title, color="#d62728" if flagged else "black")
        ax.axis("off")
    return save_figure(fig, path)
