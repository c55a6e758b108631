"""Figures for runs and papers, in one publication style (see ``riskfm.plots.style``).

Plots only draw: every number they show is computed by ``riskfm.evaluate``, and the figure
functions take its result objects (``RocCurves``, ``CalibrationResult``, ``CumulativeIncidence``,
``DecisionCurve``, ``BlandAltman``, subgroup and fairness tables), whose ``plot()`` methods call
them. Each figure function returns a ``matplotlib.figure.Figure`` (Agg canvas, no pyplot state);
``save_figure`` writes it at 300 dpi. The standard figures of a run are drawn by
``riskfm.evaluate.evaluate``.

Examples
--------
>>> from riskfm.evaluate import roc_curves
>>> from riskfm.plots import save_figure
>>> curves = roc_curves([0, 0, 1, 1, 0, 1], [0.1, 0.3, 0.7, 0.4, 0.5, 0.9], ci=None, min_events=1, min_nonevents=1)
>>> path = save_figure(curves.plot(), "/tmp/riskfm_roc_example.png")
"""

from __future__ import annotations

from riskfm.plots.calibration import plot_calibration
from riskfm.plots.incidence import plot_cumulative_incidence
from riskfm.plots.roc import plot_roc
from riskfm.plots.style import PlotWarning, publication_style, save_figure

__all__ = [
    "PlotWarning",
    "plot_calibration",
    "plot_cumulative_incidence",
    "plot_roc",
    "publication_style",
    "save_figure",
]
