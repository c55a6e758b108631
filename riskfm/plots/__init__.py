"""Figures for runs and papers, in one publication style (see ``riskfm.plots.style``).

Plots only draw: every number they show comes from ``riskfm.evaluate``. Each figure function
returns a ``matplotlib.figure.Figure`` (Agg canvas, no pyplot state); ``save_figure`` writes it
at 300 dpi. ``write_run_figures`` draws the standard figures of a run from its predictions.

Examples
--------
>>> from riskfm.plots import plot_roc, save_figure
>>> fig = plot_roc([0, 0, 1, 1, 0, 1], [0.1, 0.3, 0.7, 0.4, 0.5, 0.9], ci=None)
>>> path = save_figure(fig, "/tmp/riskfm_roc_example.png")
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Any

import pandas as pd

from riskfm.evaluate.risk_groups import assign_risk_groups, incidence_threshold
from riskfm.evaluate.run_metrics import (
    metrics_from_predictions,
    ordered_splits,
    ordered_targets,
    read_predictions,
    validate_predictions,
)
from riskfm.plots.calibration import plot_calibration
from riskfm.plots.incidence import plot_cumulative_incidence
from riskfm.plots.roc import plot_roc
from riskfm.plots.style import PlotWarning, publication_style, save_figure, target_label

__all__ = [
    "PlotWarning",
    "plot_calibration",
    "plot_cumulative_incidence",
    "plot_roc",
    "publication_style",
    "save_figure",
    "write_run_figures",
]

SURVIVAL_TARGET = "mace_30d"
REFERENCE_SPLIT = "train"


def _safe(name: str) -> str:
    """File-name-safe version of a split or target name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(name)).strip("_") or "unnamed"


def _warn(msg: str) -> None:
    warnings.warn(msg, PlotWarning, stacklevel=3)


def _has_both_classes(d: pd.DataFrame) -> bool:
    y = d["y_true"].dropna()
    return len(y) > 0 and 0 < int(y.sum()) < len(y)


def write_run_figures(
    predictions: pd.DataFrame | str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    metrics: dict[str, Any] | None = None,
    n_boot: int = 500,
    seed: int = 0,
    n_bins: int = 10,
) -> list[Path]:
    """Write the standard figures of a run.

    Per split: ``roc_<split>.png`` (one curve per target), ``calibration_<split>_<target>.png``
    per target, and ``cumulative_incidence_<split>.png`` for ``mace_30d`` when the predictions
    carry ``time_to_event_days`` and ``event``. Risk groups for the incidence curves come from
    ``incidence_threshold``: the (1 - prevalence) quantile of the ``train`` split's predicted
    ``mace_30d`` risk, with the ``train`` prevalence (a split's own predictions and prevalence
    when there is no ``train`` split).

    Targets or splits with a single class (or no known label), and incidence figures without
    follow-up data, are skipped with a ``PlotWarning``; a run never fails for want of a figure.

    Parameters
    ----------
    predictions : pandas.DataFrame or path
        Long-format predictions (``predictions.csv`` contract) or the path to the file.
    out_dir : str or path
        Folder for the PNGs (created).
    metrics : dict, optional
        The run's ``metrics.json`` structure; the ROC legends then quote it. Computed here when
        absent (stratified bootstrap, ``n_boot`` resamples, ``seed``).
    n_boot, seed : int
        Bootstrap settings when metrics are computed here.
    n_bins : int
        Quantile bins of the calibration plots.

    Returns
    -------
    list of Path
        The files written, in the order written.
    """
    if isinstance(predictions, (str, os.PathLike)):
        df = read_predictions(predictions)
    else:
        df = validate_predictions(predictions, source="<predictions DataFrame>")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if metrics is None:
        metrics = metrics_from_predictions(df, ci="bootstrap", n_boot=n_boot, seed=seed)
    written: list[Path] = []

    def _save(make: Any, path: Path, what: str) -> None:
        # Degenerate data (e.g. every prediction identical) raises ValueError in evaluate: turn it
        # into a warning so the other figures of the run are still written.
        try:
            fig = make()
        except ValueError as exc:
            _warn(f"{what} skipped: {exc}")
            return
        written.append(save_figure(fig, path))

    for split in ordered_splits(df["split"]):
        d_split = df[df["split"] == split]
        targets = ordered_targets(d_split["target"])
        ok = []
        for target in targets:
            if _has_both_classes(d_split[d_split["target"] == target]):
                ok.append(target)
            else:
                _warn(f"split {split!r}, target {target!r}: only one class (or no known label); "
                      "ROC and calibration skipped")
        if not ok:
            _warn(f"split {split!r}: no target with both classes; no ROC figure")
        else:
            d_ok = d_split[d_split["target"].isin(ok)]
            _save(lambda d_ok=d_ok, split=split: plot_roc(d_ok, split=split, metrics=metrics.get(split),
                                                          n_boot=n_boot, seed=seed, title=f"ROC \u2014 {split}"),
                  out / f"roc_{_safe(split)}.png", f"ROC of split {split!r}")
        for target in ok:
            d = d_split[(d_split["target"] == target) & d_split["y_true"].notna()]
            _save(lambda d=d, target=target, split=split: plot_calibration(
                      d["y_true"].to_numpy(float), d["y_prob"].to_numpy(float), n_bins=n_bins,
                      label=target_label(target), title=f"Calibration \u2014 {target_label(target)}, {split}"),
                  out / f"calibration_{_safe(split)}_{_safe(target)}.png",
                  f"calibration of {target!r} in split {split!r}")
        if SURVIVAL_TARGET in targets:
            _incidence_figure(df, split, out, _save)
    return written


def _incidence_figure(df: pd.DataFrame, split: str, out: Path, save: Any) -> None:
    """Draw cumulative incidence per risk group of ``mace_30d`` for one split (via ``save``)."""
    if not {"time_to_event_days", "event"} <= set(df.columns):
        _warn(f"split {split!r}: no time_to_event_days/event columns; cumulative incidence skipped")
        return
    rows = df[(df["split"] == split) & (df["target"] == SURVIVAL_TARGET)]
    rows = rows[rows["time_to_event_days"].notna() & rows["event"].notna()]
    if rows.empty:
        _warn(f"split {split!r}: no {SURVIVAL_TARGET} rows with follow-up; cumulative incidence skipped")
        return
    ref_split = REFERENCE_SPLIT if (df["split"] == REFERENCE_SPLIT).any() else split
    ref = df[(df["split"] == ref_split) & (df["target"] == SURVIVAL_TARGET) & df["y_true"].notna()]
    prevalence = float(ref["y_true"].mean()) if len(ref) else float("nan")
    if not 0.0 < prevalence < 1.0:
        _warn(f"split {split!r}: {SURVIVAL_TARGET} prevalence in split {ref_split!r} is {prevalence:.3g}; "
              "no incidence threshold, cumulative incidence skipped")
        return
    threshold = incidence_threshold(ref["y_prob"].to_numpy(float), prevalence)
    groups = assign_risk_groups(rows["y_prob"].to_numpy(float), threshold)
    save(lambda: plot_cumulative_incidence(
             rows["time_to_event_days"].to_numpy(float), rows["event"].to_numpy(float), groups,
             title=f"{target_label(SURVIVAL_TARGET)} \u2014 {split}",
             legend_title=f"Predicted risk \u2265 {threshold:.3f} = high"),
         out / f"cumulative_incidence_{_safe(split)}.png", f"cumulative incidence of split {split!r}")
