"""One publication style for every riskfm figure, and the helper that saves them.

Figures are built as ``matplotlib.figure.Figure`` objects, not through ``pyplot``: they render
with the non-interactive Agg canvas whatever backend the user has selected, never open a window,
and are freed when no longer referenced (no global figure registry to leak from).

Style: sans-serif 8 pt text (9 pt titles), thin axes with no top/right spines, outward ticks,
Okabe-Ito colour-blind-safe palette, 300 dpi PNG. Sizes follow journal columns: 89 mm (3.5 in)
single column, 183 mm (7.2 in) double column.

Examples
--------
>>> from riskfm.plots.style import new_figure, save_figure
>>> fig = new_figure(3.5, 3.5)
>>> ax = fig.add_subplot()
>>> path = save_figure(fig, "/tmp/riskfm_style_example.png")  # 1050 x 1050 px
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import matplotlib as mpl
from cycler import cycler
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

DPI = 300
SINGLE_COLUMN_IN = 3.5  # 89 mm
DOUBLE_COLUMN_IN = 7.2  # 183 mm

# Okabe & Ito (2008) colour-blind-safe palette.
OKABE_ITO: dict[str, str] = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
}
# Line order: strongest contrasts first; yellow last as it is faint on white.
PALETTE: tuple[str, ...] = tuple(OKABE_ITO[k] for k in (
    "blue", "vermillion", "bluish_green", "orange", "reddish_purple", "sky_blue", "black", "yellow"))
RISK_GROUP_COLORS: dict[str, str] = {
    "low": OKABE_ITO["blue"],
    "intermediate": OKABE_ITO["orange"],
    "high": OKABE_ITO["vermillion"],
}
NEUTRAL = "#7F7F7F"  # reference lines (chance diagonal, perfect calibration)

TARGET_LABELS: dict[str, str] = {
    "stenosis_rca": "RCA stenosis",
    "stenosis_lm": "LM stenosis",
    "stenosis_lad": "LAD stenosis",
    "stenosis_lcx": "LCX stenosis",
    "mace_30d": "30-day MACE",
}

STYLE_RC: dict[str, Any] = {
    "font.family": "sans-serif",
    # Arial/Helvetica where installed, else the DejaVu Sans that ships with matplotlib.
    "font.sans-serif": ["Arial", "Helvetica", "Liberation Sans", "DejaVu Sans"],
    "font.size": 8,
    "axes.titlesize": 9,
    "axes.labelsize": 8,
    "xtick.labelsize": 7.5,
    "ytick.labelsize": 7.5,
    "legend.fontsize": 7,
    "legend.frameon": False,
    "axes.linewidth": 0.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.prop_cycle": cycler(color=list(PALETTE)),
    "axes.titlelocation": "left",
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "xtick.major.size": 3,
    "ytick.major.size": 3,
    "xtick.direction": "out",
    "ytick.direction": "out",
    "lines.linewidth": 1.2,
    "lines.markersize": 3.5,
    "errorbar.capsize": 1.5,
    "patch.linewidth": 0.5,
    "figure.dpi": DPI,
    "figure.facecolor": "white",
    "savefig.dpi": DPI,
    "savefig.format": "png",
    "savefig.facecolor": "white",
    # Never "tight": the saved image must be exactly figsize x dpi pixels.
    "savefig.bbox": None,
    "pdf.fonttype": 42,  # editable text in vector exports
    "svg.fonttype": "none",
}


class PlotWarning(UserWarning):
    """A figure (or one curve of it) was skipped because the data cannot support it."""


@contextlib.contextmanager
def publication_style() -> Iterator[None]:
    """Context manager applying ``STYLE_RC`` on top of matplotlib's defaults, restored on exit.

    Build (and save) figures inside it; artists read most settings when they are created.
    """
    with mpl.rc_context():
        mpl.rcdefaults()
        mpl.rcParams.update(STYLE_RC)
        yield


def target_label(target: str) -> str:
    """Display name of a target (``stenosis_lad`` -> ``LAD stenosis``); unknown names pass through."""
    return TARGET_LABELS.get(target, target)


def new_figure(width_in: float = SINGLE_COLUMN_IN, height_in: float = SINGLE_COLUMN_IN) -> Figure:
    """Create a blank figure on an Agg canvas, with constrained layout (no clipping, fixed size).

    Call inside ``publication_style()`` so that the figure picks the style up.

    Parameters
    ----------
    width_in, height_in : float
        Size in inches; the saved PNG is ``round(size * 300)`` pixels.
    """
    fig = Figure(figsize=(width_in, height_in), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, path: str | os.PathLike, dpi: int = DPI) -> Path:
    """Save a figure at ``dpi`` (300 by default) with the house style; creates parent folders.

    The format follows the suffix (``.png`` by default; ``.pdf``/``.svg`` keep text editable).
    The image is exactly ``figsize x dpi`` pixels (no tight bounding box).

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    path : str or path
    dpi : int

    Returns
    -------
    Path
        The written file.
    """
    path = Path(path)
    if not path.suffix:
        path = path.with_suffix(".png")
    path.parent.mkdir(parents=True, exist_ok=True)
    with publication_style():
        fig.savefig(path, dpi=dpi, bbox_inches=None)
    return path
