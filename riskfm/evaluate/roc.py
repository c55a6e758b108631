"""ROC curves: the empirical curve, its AUROC with an interval, and a pointwise bootstrap band.

``roc_curve(y, p)`` gives one :class:`RocCurve`; ``roc_curves(predictions)`` one per target of a
predictions table (or per entry of a ``{name: (y, p)}`` mapping), in report order, as a
:class:`RocCurves` whose ``plot()`` draws them together (``riskfm.plots.roc.plot_roc``: the
figure only draws what is computed here).

The band (``band=True``) is pointwise: at each false-positive rate of an even grid, the
percentile interval of the sensitivity over stratified bootstrap resamples (positives and
negatives drawn separately; ``roc_curve_band``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from riskfm.evaluate._checks import check_binary_scores, check_confidence, check_n_boot
from riskfm.evaluate.discrimination import roc_auc, roc_curve_points
from riskfm.evaluate.guards import DEFAULT_MIN_EVENTS, DEFAULT_MIN_NONEVENTS, estimable
from riskfm.evaluate.results import Result, _save, bootstrap_method, jsonable, make_ci

__all__ = ["RocCurve", "RocCurves", "roc_curve", "roc_curve_band", "roc_curves"]


def roc_curve_band(y: Any, p: Any, *, n_boot: int = 200, seed: int = 0, confidence: float = 0.95,
                   n_grid: int = 101) -> pd.DataFrame:
    """Pointwise bootstrap band of the ROC curve: sensitivity quantiles at fixed false-positive rates.

    Parameters
    ----------
    y, p : array-like, shape [n]
        Labels (both classes) and scores.
    n_boot, seed, confidence
        Stratified resamples (positives and negatives drawn separately with ``rng.choice``, in
        that order, per resample), seed of ``numpy.random.default_rng``, coverage.
    n_grid : int
        False-positive rates on an even grid from 0 to 1 (``i / (n_grid - 1)``; at least 2).

    Returns
    -------
    pandas.DataFrame
        ``fpr`` (the grid, shape [n_grid]), ``ci_low`` and ``ci_high``: the ``alpha / 2`` and
        ``1 - alpha / 2`` quantiles of the resampled sensitivity at each rate (the upper envelope
        of each step curve, so vertical segments are covered).
    """
    y_b, p_f = check_binary_scores(y, p)
    check_confidence(confidence)
    n_boot = check_n_boot(n_boot)
    n_grid = check_n_boot(n_grid, minimum=2, name="n_grid")
    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(y_b), np.flatnonzero(~y_b)
    if len(pos) == 0 or len(neg) == 0:
        raise ValueError("ROC band needs both classes")
    # i / (n_grid - 1) is the double nearest to each rate, as k / n_neg is for the curve's rates:
    # np.linspace's 0.8333333333333333 (7 rates) is one ulp below 5 / 6, which missed the top of a
    # vertical segment there and gave its bottom instead.
    grid = np.arange(n_grid) / float(n_grid - 1)
    tprs = np.empty((n_boot, n_grid))
    for b in range(n_boot):
        idx = np.r_[rng.choice(pos, len(pos)), rng.choice(neg, len(neg))]
        fpr, tpr, _ = roc_curve_points(y_b[idx], p_f[idx])
        tprs[b] = np.interp(grid, fpr, tpr, right=1.0)
        # np.interp takes the first point of a vertical segment; the curve reaches its top there.
        tprs[b] = np.maximum(tprs[b], tpr[np.searchsorted(fpr, grid, side="right") - 1])
    alpha = 1.0 - confidence
    low, high = np.quantile(tprs, [alpha / 2, 1 - alpha / 2], axis=0)
    return pd.DataFrame({"fpr": grid, "ci_low": low, "ci_high": high})


@dataclass
class RocCurve(Result):
    """One ROC curve with its AUROC.

    Attributes
    ----------
    value : float
        The AUROC (NaN when not estimable).
    ci : (float, float) or None
        Its interval.
    method : str
        How the interval was obtained (``roc_auc``'s method, or the one quoted from metrics.json).
    n, n_pos : int
        Patients and positives.
    fpr, tpr, thresholds : np.ndarray, shape [m + 1]
        The empirical curve (``roc_curve_points``); empty when not estimable.
    band : pandas.DataFrame or None
        Pointwise band ``fpr``, ``ci_low``, ``ci_high`` (``roc_curve_band``), when requested.
    band_method : str or None
        ``"pointwise stratified bootstrap (<n> resamples)"``.
    confidence : float
    not_estimable : str or None
        The small-sample reason (then nothing is drawn, the legend gives the reason).
    """

    value: float
    ci: tuple[float, float] | None
    method: str
    n: int
    n_pos: int
    fpr: np.ndarray = field(default_factory=lambda: np.zeros(0))
    tpr: np.ndarray = field(default_factory=lambda: np.zeros(0))
    thresholds: np.ndarray = field(default_factory=lambda: np.zeros(0))
    band: pd.DataFrame | None = None
    band_method: str | None = None
    confidence: float = 0.95
    not_estimable: str | None = None
    _not_in_dict: ClassVar[tuple[str, ...]] = ("fpr", "tpr", "thresholds", "band")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the AUROC keys plus ``curve`` (``fpr``, ``tpr``, ``thresholds``) and ``band``."""
        out = super().to_dict()
        out["curve"] = jsonable({"fpr": self.fpr, "tpr": self.tpr, "thresholds": self.thresholds})
        out["band"] = None if self.band is None else jsonable(self.band)
        return out

    def plot(self, path: Any = None, *, name: str = "model", **kwargs: Any):
        """Plot this curve alone (``riskfm.plots.roc.plot_roc``); save it to ``path`` when given."""
        return RocCurves({name: self}).plot(path, **kwargs)


@dataclass
class RocCurves(Result):
    """Several ROC curves drawn together (one per target), in display order.

    Attributes
    ----------
    curves : dict
        Name -> :class:`RocCurve` (not-estimable ones included: the legend names their reason).
    skipped : dict
        Name -> why no curve at all (a single class).
    confidence : float
    """

    curves: dict[str, RocCurve]
    skipped: dict[str, str] = field(default_factory=dict)
    confidence: float = 0.95

    def plot(self, path: Any = None, **kwargs: Any):
        """ROC figure (``riskfm.plots.roc.plot_roc``: ``title``, ``size_in``); saved to ``path``."""
        from riskfm.plots.roc import plot_roc

        return _save(plot_roc(self, **kwargs), path)


def roc_curve(y: Any, p: Any, *, ci: str | None = "bootstrap", n_boot: int = 500, seed: int = 0,
              confidence: float = 0.95, band: bool = False, band_n_boot: int = 200, n_grid: int = 101,
              min_events: int | None = None, min_nonevents: int | None = None,
              quoted: Mapping[str, Any] | None = None) -> RocCurve:
    """Compute the ROC curve of one score, its AUROC with an interval, and optionally a pointwise band.

    Parameters
    ----------
    y, p : array-like, shape [n]
        Binary labels (both classes present) and finite scores, larger = more likely positive.
    ci, n_boot, seed, confidence
        AUROC interval (``riskfm.evaluate.roc_auc``); ``seed`` also seeds the band.
    band : bool
        Compute the pointwise band (``roc_curve_band``, ``band_n_boot`` resamples, ``n_grid`` rates).
    min_events, min_nonevents : int, optional
        Apply the small-sample rule: with fewer events or non-events nothing is computed and
        ``not_estimable`` gives the reason. Not applied when both are None.
    quoted : mapping, optional
        An AUROC already computed (``{"value", "ci", "method"}``, e.g. from metrics.json): quoted
        instead of recomputed, so that a figure and its metrics file agree.

    Returns
    -------
    RocCurve
    """
    y_b, p_f = check_binary_scores(y, p)
    n, n_pos = len(y_b), int(y_b.sum())
    if min_events is not None or min_nonevents is not None:
        reason = estimable(y_b, min_events=min_events, min_nonevents=min_nonevents)
        if reason is not None:
            return RocCurve(math.nan, None, "none", n, n_pos, confidence=confidence, not_estimable=reason)
    fpr, tpr, thr = roc_curve_points(y_b, p_f)
    if quoted is not None and quoted.get("value") is not None:
        value, ci_pair, method = float(quoted["value"]), make_ci(*(quoted.get("ci") or [None, None])), \
            str(quoted.get("method", "quoted"))
        confidence = float(quoted.get("confidence", confidence))
    else:
        est = roc_auc(y_b, p_f, ci=ci, n_boot=n_boot, seed=seed, confidence=confidence)
        value, ci_pair, method = est.value, est.ci, est.method
    b = roc_curve_band(y_b, p_f, n_boot=band_n_boot, seed=seed, confidence=confidence, n_grid=n_grid) if band else None
    return RocCurve(value, ci_pair, method, n, n_pos, fpr, tpr, thr, b,
                    bootstrap_method(band_n_boot, "pointwise stratified") if band else None, confidence)


def _inputs(data: Any, y_prob: Any, split: str | None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Normalise the accepted inputs to {name: (y [n], p [n])} in display order."""
    from riskfm.evaluate.run_metrics import ordered_targets

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
        raise ValueError("roc_curves needs a predictions DataFrame, a {name: (y, p)} mapping, or y and y_prob arrays")
    return {"model": (np.asarray(data), np.asarray(y_prob))}


def roc_curves(
    data: Any, y_prob: Any = None, *, split: str | None = None, metrics: Mapping[str, Any] | None = None,
    ci: str | None = "bootstrap", n_boot: int = 500, seed: int = 0, confidence: float = 0.95,
    band: bool = False, band_n_boot: int = 200, min_events: int = DEFAULT_MIN_EVENTS,
    min_nonevents: int = DEFAULT_MIN_NONEVENTS,
) -> RocCurves:
    """ROC curves of several targets (or models), ready to draw together.

    Parameters
    ----------
    data : pandas.DataFrame, mapping or array-like
        A long-format predictions table (``target``, ``y_true``, ``y_prob``; ``split`` optional):
        one curve per target, rows with unknown ``y_true`` dropped. Or ``{name: (y_true, y_prob)}``.
        Or the labels [n] of a single curve, with ``y_prob``.
    y_prob : array-like, shape [n], optional
        Scores of the single curve when ``data`` holds its labels.
    split : str, optional
        Which split to use when the table holds several.
    metrics : mapping, optional
        One split of ``metrics.json`` (``{target: cell}``; cells of this version or of the
        previous one): AUROC values and intervals are quoted from it, so figure and file agree,
        and a cell that says ``not_estimable`` gets no curve; curves it lacks are computed.
    ci, n_boot, seed, confidence
        Interval settings of ``riskfm.evaluate.roc_auc`` when numbers are computed here.
    band : bool
        Compute each curve's pointwise band (``roc_curve_band``, ``band_n_boot`` resamples).
    min_events, min_nonevents : int
        The small-sample rule (``riskfm.evaluate.guards``): a curve with fewer events or
        non-events is kept without numbers, its reason shown in the legend.

    Returns
    -------
    RocCurves

    Raises
    ------
    ValueError
        If no curve has both classes. Single-class curves among others are skipped with a
        ``RuntimeWarning`` (and listed in ``skipped``).
    """
    from riskfm.evaluate.run_metrics import upgrade_cell

    curves, skipped = {}, {}
    for name, (y, p) in _inputs(data, y_prob, split).items():
        n_pos = int(np.sum(y == 1))
        if len(y) == 0 or n_pos in (0, len(y)):
            skipped[name] = f"only one class (n_pos={n_pos} of n={len(y)})"
            warnings.warn(f"ROC: {name!r} skipped: {skipped[name]}", RuntimeWarning, stacklevel=2)
            continue
        cell = upgrade_cell((metrics or {}).get(name) or {})
        quoted = cell.get("auroc") if isinstance(cell.get("auroc"), Mapping) else None
        reason = (quoted or {}).get("not_estimable") or cell.get("not_estimable")
        if reason:
            y_b, _ = check_binary_scores(y, p)
            curves[name] = RocCurve(math.nan, None, "none", len(y_b), int(y_b.sum()), confidence=confidence,
                                    not_estimable=reason)
            continue
        curves[name] = roc_curve(y, p, ci=ci, n_boot=n_boot, seed=seed, confidence=confidence, band=band,
                                 band_n_boot=band_n_boot, min_events=min_events, min_nonevents=min_nonevents,
                                 quoted=quoted)
    if not curves:
        raise ValueError("ROC: no curve with both classes to draw")
    return RocCurves(curves, skipped, confidence)
