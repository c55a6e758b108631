"""ROC curves: one curve per target, AUROC [CI] in the legend, the chance diagonal."""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from riskfm.evaluate.discrimination import check_binary_scores, roc_auc, roc_curve_points
from riskfm.evaluate.guards import DEFAULT_MIN_EVENTS, DEFAULT_MIN_NONEVENTS, estimable, not_estimable_text
from riskfm.evaluate.run_metrics import ordered_targets
from riskfm.plots.style import (
    NEUTRAL,
    PALETTE,
    SINGLE_COLUMN_IN,
    PlotWarning,
    new_figure,
    publication_style,
    target_label,
)


def _curves_from_input(data: Any, y_prob: Any, split: str | None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Normalise the accepted inputs to {name: (y [n], p [n])} in display order."""
    if isinstance(data, pd.DataFrame):
        if y_prob is not None:
            raise ValueError("pass y_prob only with an array of labels, not with a predictions DataFrame")
        missing = [c for c in ("target", "y_true", "y_prob") if c not in data.columns]
        if missing:
            raise ValueError(f"predictions DataFrame lacks column(s) {missing}")
        df = data
        if "split" in df.columns:
            splits = sorted(df["split"].astype(str).unique())
            if split is not None:
                if split not in splits:
                    raise ValueError(f"split {split!r} not in the predictions (splits: {splits})")
                df = df[df["split"].astype(str) == split]
            elif len(splits) > 1:
                raise ValueError(f"predictions hold several splits {splits}: choose one with split=")
        df = df[df["y_true"].notna()]
        return {t: (df.loc[df["target"] == t, "y_true"].to_numpy(float),
                    df.loc[df["target"] == t, "y_prob"].to_numpy(float))
                for t in ordered_targets(df["target"].astype(str))}
    if isinstance(data, Mapping):
        if y_prob is not None:
            raise ValueError("pass y_prob only with an array of labels, not with a mapping of curves")
        out = {}
        for name, pair in data.items():
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise ValueError(f"curve {name!r} must be a (y_true, y_prob) pair")
            out[str(name)] = (np.asarray(pair[0]), np.asarray(pair[1]))
        return out
    if y_prob is None:
        raise ValueError("plot_roc needs a predictions DataFrame, a {name: (y, p)} mapping, or y and y_prob arrays")
    return {"model": (np.asarray(data), np.asarray(y_prob))}


def roc_band(y: Any, p: Any, *, n_boot: int = 200, seed: int = 0, confidence: float = 0.95,
             n_grid: int = 101) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pointwise bootstrap band of the ROC curve: sensitivity quantiles at fixed false-positive rates.

    Parameters
    ----------
    y, p : array-like, shape [n]
        Labels (both classes) and scores.
    n_boot, seed, confidence
        Stratified resamples (positives and negatives drawn separately), seed, coverage.
    n_grid : int
        False-positive rates on an even grid from 0 to 1.

    Returns
    -------
    fpr, low, high : np.ndarray, shape [n_grid]
        The grid and the lower / upper percentile of the resampled sensitivity at each rate
        (the upper envelope of each step curve, so vertical segments are covered).
    """
    y_b, p_f = check_binary_scores(y, p)
    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(y_b), np.flatnonzero(~y_b)
    if len(pos) == 0 or len(neg) == 0:
        raise ValueError("ROC band needs both classes")
    grid = np.linspace(0.0, 1.0, n_grid)
    tprs = np.empty((n_boot, n_grid))
    for b in range(n_boot):
        idx = np.r_[rng.choice(pos, len(pos)), rng.choice(neg, len(neg))]
        fpr, tpr, _ = roc_curve_points(y_b[idx], p_f[idx])
        tprs[b] = np.interp(grid, fpr, tpr, right=1.0)
        # np.interp takes the first point of a vertical segment; the curve reaches its top there.
        tprs[b] = np.maximum(tprs[b], tpr[np.searchsorted(fpr, grid, side="right") - 1])
    alpha = 1.0 - confidence
    low, high = np.quantile(tprs, [alpha / 2, 1 - alpha / 2], axis=0)
    return grid, low, high


def plot_roc(
    data: Any,
    y_prob: Any = None,
    *,
    split: str | None = None,
    metrics: Mapping[str, Any] | None = None,
    ci: str | None = "bootstrap",
    n_boot: int = 500,
    seed: int = 0,
    confidence: float = 0.95,
    title: str | None = None,
    size_in: tuple[float, float] = (SINGLE_COLUMN_IN, SINGLE_COLUMN_IN),
    band: bool = False,
    band_n_boot: int = 200,
    min_events: int = DEFAULT_MIN_EVENTS,
    min_nonevents: int = DEFAULT_MIN_NONEVENTS,
) -> Figure:
    """ROC curves with AUROC and its confidence interval in the legend.

    Parameters
    ----------
    data : pandas.DataFrame, mapping or array-like
        A long-format predictions table (``target``, ``y_true``, ``y_prob``; ``split`` optional):
        one curve per target, rows with unknown ``y_true`` dropped. Or ``{name: (y_true, y_prob)}``.
        Or the labels [n] of a single curve, with ``y_prob``.
    y_prob : array-like, shape [n], optional
        Scores of the single curve when ``data`` holds its labels.
    split : str, optional
        Which split to draw when the table holds several.
    metrics : mapping, optional
        ``{target: {"auroc": .., "auroc_ci": [lo, hi]}}`` (one split of ``metrics.json``): legend
        numbers are taken from it, so figure and metrics file agree; curves it lacks are computed.
    ci, n_boot, seed, confidence
        Interval settings passed to ``riskfm.evaluate.roc_auc`` when numbers are computed here.
    title : str, optional
        Axes title.
    size_in : (float, float)
        Figure size in inches (PNG at 300 dpi: 1050 x 1050 px by default).
    band : bool
        Shade a pointwise confidence band of the sensitivity at each false-positive rate
        (``roc_band``: stratified bootstrap, ``band_n_boot`` resamples, seeded with ``seed``).
    band_n_boot : int
        Resamples of the band.
    min_events, min_nonevents : int
        The small-sample rule (``riskfm.evaluate.guards``): a curve with fewer events or
        non-events, or whose ``metrics`` cell says ``not_estimable``, is not drawn; the legend
        lists it as ``n/e (1 event < 10)``.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        If no curve can be drawn (every one has a single class). Single-class curves among
        drawable ones are skipped with a ``PlotWarning``.
    """
    curves = _curves_from_input(data, y_prob, split)
    drawable = {}
    for name, (y, p) in curves.items():
        n_pos = int(np.sum(y == 1))
        if len(y) == 0 or n_pos in (0, len(y)):
            warnings.warn(f"ROC: {name!r} skipped: only one class (n_pos={n_pos} of n={len(y)})",
                          PlotWarning, stacklevel=2)
            continue
        drawable[name] = (y, p)
    if not drawable:
        raise ValueError("ROC: no curve with both classes to draw")

    with publication_style():
        fig = new_figure(*size_in)
        ax = fig.add_subplot()
        ax.plot([0, 1], [0, 1], ls="--", lw=0.7, color=NEUTRAL, label="Chance", zorder=1)
        for i, (name, (y, p)) in enumerate(drawable.items()):
            cell = (metrics or {}).get(name) or {}
            reason = cell.get("not_estimable") or estimable(y, min_events=min_events, min_nonevents=min_nonevents)
            if reason:
                # No curve, band or number: only the reason, with the counts, in the legend.
                ax.plot([], [], ls="none", label=f"{target_label(name)}: {not_estimable_text(reason)}")
                continue
            fpr, tpr, _ = roc_curve_points(y, p)
            if cell.get("auroc") is not None:
                value = float(cell["auroc"])
                confidence = float(cell.get("confidence", confidence))
                lo, hi = (cell.get("auroc_ci") or [None, None])[:2]
                lo = math.nan if lo is None else float(lo)
                hi = math.nan if hi is None else float(hi)
            else:
                est = roc_auc(y, p, ci=ci, n_boot=n_boot, seed=seed, confidence=confidence)
                value, lo, hi = est.value, est.low, est.high
            ci_text = "" if math.isnan(lo) or math.isnan(hi) else f" [{lo:.2f}\u2013{hi:.2f}]"
            color = PALETTE[i % len(PALETTE)]
            if band:
                grid, lo_b, hi_b = roc_band(y, p, n_boot=band_n_boot, seed=seed, confidence=confidence)
                ax.fill_between(grid, lo_b, hi_b, color=color, alpha=0.15, lw=0, zorder=1.5)
            ax.plot(fpr, tpr, color=color, zorder=2,
                    label=f"{target_label(name)}: {value:.2f}{ci_text}")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.005)
        ax.set_aspect("equal")
        ax.set_xlabel("1 \u2212 specificity (false-positive rate)")
        ax.set_ylabel("Sensitivity (true-positive rate)")
        conf_pct = f"{100 * confidence:g}%"
        ax.legend(loc="lower right", title=f"AUROC [{conf_pct} CI]", title_fontsize=7, handlelength=1.5)
        if title:
            ax.set_title(title)
    return fig
