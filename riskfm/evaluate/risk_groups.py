"""Risk groups from predicted risk, and the observed outcome in each group.

Three views of "what happens to patients grouped by their predicted risk":

- ``incidence_threshold`` / ``assign_risk_groups``: the ECG paper's vessel-specific incidence
  threshold splits patients into low / high (or low / intermediate / high) risk groups.
- ``reliability_table``: patients binned by predicted risk (quantile or uniform bins) with the
  observed event rate and its Wilson interval per bin, i.e. the numbers behind a reliability
  (calibration) diagram.
- ``cumulative_incidence_by_group``: Kaplan-Meier cumulative incidence 1 - S(t) per risk group
  with pointwise confidence bands, numbers at risk and the log-rank test.

Plots draw these results (``riskfm.plots``); nothing here draws.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from riskfm.evaluate._checks import (
    as_binary_1d,
    as_finite_1d,
    check_confidence,
    check_risks,
    check_same_length,
    z_value,
)
from riskfm.evaluate.results import Result, _save

RISK_GROUP_ORDER: tuple[str, ...] = ("low", "intermediate", "high")
BIN_STRATEGIES: tuple[str, ...] = ("quantile", "uniform")


def incidence_threshold(p_train: Any, prevalence: float) -> float:
    """Vessel-specific incidence threshold: the (1 - prevalence) quantile of predicted risk.

    The ECG paper calls the top fraction of patients equal to the training prevalence of a label
    "high risk"; riskfm reads this as the (1 - prevalence) quantile of the predicted risks of the
    training patients (numpy's default linear interpolation between order statistics).

    Parameters
    ----------
    p_train : array-like, shape [n]
        Predicted risks (probabilities in [0, 1]) of the training patients.
    prevalence : float
        Observed prevalence of the label in the training set, strictly between 0 and 1.

    Returns
    -------
    float
        Threshold t; ``assign_risk_groups(p, t)`` calls ``p >= t`` high risk, so about a fraction
        ``prevalence`` of the training patients is high risk.

    Examples
    --------
    >>> incidence_threshold([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0], 0.2)  # doctest: +ELLIPSIS
    0.82...
    """
    p = as_finite_1d(p_train, "p_train")
    if len(p) == 0:
        raise ValueError("p_train is empty")
    prevalence = float(prevalence)
    if not 0.0 < prevalence < 1.0:
        raise ValueError(f"prevalence must be strictly between 0 and 1, got {prevalence}")
    return float(np.quantile(p, 1.0 - prevalence))


def assign_risk_groups(p: Any, thresholds: float | Sequence[float]) -> np.ndarray:
    """Label each patient low / high (one threshold) or low / intermediate / high (two).

    Parameters
    ----------
    p : array-like, shape [n]
        Predicted risks.
    thresholds : float or sequence of 1 or 2 floats
        Increasing cut-offs. A patient with ``p >= t`` is above cut-off ``t``.

    Returns
    -------
    np.ndarray of str, shape [n]
        ``"low"`` / ``"high"``, or ``"low"`` / ``"intermediate"`` / ``"high"``.
    """
    p_arr = as_finite_1d(p, "p")
    t = np.atleast_1d(np.asarray(thresholds, dtype=np.float64))
    if t.ndim != 1 or len(t) not in (1, 2):
        raise ValueError(f"thresholds must be one number or two increasing numbers, got {thresholds!r}")
    if not np.isfinite(t).all():
        raise ValueError(f"thresholds must be finite, got {t.tolist()}")
    if len(t) == 2 and not t[0] < t[1]:
        raise ValueError(f"thresholds must be strictly increasing, got {t.tolist()}")
    labels = np.array(("low", "high") if len(t) == 1 else RISK_GROUP_ORDER)
    return labels[np.searchsorted(t, p_arr, side="right")]


def order_groups(groups: Sequence[Any]) -> list[Any]:
    """Distinct group labels in display order: low, intermediate, high first, then the rest sorted."""
    uniq = list(dict.fromkeys(groups))
    known = [g for g in RISK_GROUP_ORDER if g in uniq]
    rest = sorted((g for g in uniq if g not in RISK_GROUP_ORDER), key=str)
    return known + rest


# ----------------------------------------------------------------------------------------- bins


def wilson_interval(k: Any, n: Any, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for a binomial proportion k / n.

    Parameters
    ----------
    k : array-like of int
        Events.
    n : array-like of int
        Trials (n >= 1, k <= n); broadcast with ``k``.
    confidence : float
        Nominal coverage in (0, 1).

    Returns
    -------
    low, high : np.ndarray
        Bounds in [0, 1], same shape as the broadcast inputs. Unlike the Wald interval they stay
        inside [0, 1] and are not degenerate when k = 0 or k = n.
    """
    k_arr = np.asarray(k, dtype=np.float64)
    n_arr = np.asarray(n, dtype=np.float64)
    if np.any(n_arr < 1) or np.any(k_arr < 0) or np.any(k_arr > n_arr):
        raise ValueError("wilson_interval needs 0 <= k <= n and n >= 1")
    z = z_value(confidence)
    phat = k_arr / n_arr
    denom = 1.0 + z * z / n_arr
    centre = (phat + z * z / (2.0 * n_arr)) / denom
    half = z * np.sqrt(phat * (1.0 - phat) / n_arr + z * z / (4.0 * n_arr * n_arr)) / denom
    # The Wilson interval always contains k / n; min / max only undo floating-point rounding
    # (e.g. a lower bound of 1e-17 for k = 0).
    low = np.minimum(np.clip(centre - half, 0.0, 1.0), phat)
    high = np.maximum(np.clip(centre + half, 0.0, 1.0), phat)
    return low, high


def risk_bin_edges(p: Any, n_bins: int = 10, strategy: str = "quantile") -> np.ndarray:
    """Edges of bins of predicted risk.

    Parameters
    ----------
    p : array-like, shape [n]
        Predicted risks in [0, 1].
    n_bins : int
        Requested number of bins (>= 1).
    strategy : {"quantile", "uniform"}
        Equal-count bins (quantiles of ``p``; tied quantiles merge, so fewer bins may result) or
        equal-width bins on [0, 1].

    Returns
    -------
    np.ndarray, shape [n_edges]
        Increasing edges; bin i is [edge i, edge i+1), the last bin closed on the right.
    """
    p_arr = as_finite_1d(p, "p")
    if int(n_bins) != n_bins or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}")
    if strategy not in BIN_STRATEGIES:
        raise ValueError(f"strategy must be one of {BIN_STRATEGIES}, got {strategy!r}")
    if strategy == "uniform":
        if p_arr.min() < 0.0 or p_arr.max() > 1.0:
            raise ValueError("uniform bins need predicted risks in [0, 1]")
        # i / n_bins is the double nearest to each edge; np.linspace's 0.30000000000000004 (10 bins) would
        # put a predicted risk of exactly 0.3 in the bin [0.2, 0.3) instead of [0.3, 0.4).
        return np.arange(int(n_bins) + 1) / float(n_bins)
    # The i / n_bins quantiles with numpy's default (linear, Hyndman-Fan type 7) rule, but with the
    # virtual index (n - 1) i / n_bins in exact integer arithmetic: from np.linspace's probabilities
    # an edge that is an order statistic (a tied value) can come out one ulp off (n = 11, 10 bins:
    # 0.5000000000000001 for 0.5) and move every patient tied at that value into the other bin.
    x = np.sort(p_arr)
    j, rem = np.divmod((len(x) - 1) * np.arange(int(n_bins) + 1), int(n_bins))
    upper = x[np.minimum(j + 1, len(x) - 1)]
    edges = np.unique(np.where(rem == 0, x[j], x[j] + (rem / n_bins) * (upper - x[j])))
    if len(edges) == 1:  # every prediction identical: one bin
        edges = np.array([edges[0], edges[0]])
    return edges


def reliability_table(
    y: Any, p: Any, n_bins: int = 10, strategy: str = "quantile", confidence: float = 0.95
) -> pd.DataFrame:
    """Observed event rate against mean predicted risk per bin of predicted risk.

    Parameters
    ----------
    y : array-like, shape [n]
        Observed outcome, 0/1 (no NaN).
    p : array-like, shape [n]
        Predicted risk in [0, 1].
    n_bins : int
        Requested number of bins.
    strategy : {"quantile", "uniform"}
        See ``risk_bin_edges``.
    confidence : float
        Coverage of the Wilson interval of the observed rate.

    Returns
    -------
    pandas.DataFrame
        One row per non-empty bin, columns ``bin_low``, ``bin_high`` (edges), ``n``, ``n_events``,
        ``mean_predicted``, ``observed_rate`` and ``ci_low``, ``ci_high`` (the Wilson interval of the
        observed rate).
    """
    y_arr, p_arr = check_risks(y, p)
    edges = risk_bin_edges(p_arr, n_bins, strategy)
    n_b = len(edges) - 1
    # Inner edges only, so the maximum lands in the last bin rather than one past it.
    idx = np.searchsorted(edges[1:-1], p_arr, side="right")
    n = np.bincount(idx, minlength=n_b)
    events = np.bincount(idx, weights=y_arr, minlength=n_b)
    sum_p = np.bincount(idx, weights=p_arr, minlength=n_b)
    keep = n > 0
    low, high = wilson_interval(events[keep], n[keep], confidence)
    return pd.DataFrame({
        "bin_low": edges[:-1][keep],
        "bin_high": edges[1:][keep],
        "n": n[keep].astype(int),
        "n_events": events[keep].astype(int),
        "mean_predicted": sum_p[keep] / n[keep],
        "observed_rate": events[keep] / n[keep],
        "ci_low": low,
        "ci_high": high,
    })


# ----------------------------------------------------------------------------------------- survival


@dataclass
class CumulativeIncidence(Result):
    """Cumulative incidence per group (a composite result: one curve per group).

    Attributes
    ----------
    curves : dict
        Group label -> DataFrame with columns ``time_days``, ``incidence`` (1 - S(t) for
        Kaplan-Meier; the Aalen-Johansen incidence with competing events), ``ci_low``,
        ``ci_high`` (pointwise confidence band of the incidence), starting at time 0. Groups are
        in display order (low, intermediate, high, then others).
    logrank_p : float or None
        p-value of the log-rank test across groups; None with fewer than 2 groups, no events, or
        competing events.
    confidence : float
        Coverage of the bands.
    method : str
        How the curves and bands were estimated.
    n, n_events : int
        Patients and events (of interest).
    horizon_days : float or None
        Horizon at which follow-up was censored (a fixed-horizon outcome), else None.

    ``to_dict()`` gives ``{"method", "n", "n_events", "confidence", "logrank_p", "horizon_days",
    "curves": {group: {"time_days": [...], "incidence": [...], "ci_low": [...], "ci_high": [...]}}}``;
    ``plot(path=None, **kwargs)`` draws ``riskfm.plots.incidence.plot_cumulative_incidence``.
    """

    curves: dict[Any, pd.DataFrame]
    logrank_p: float | None
    confidence: float
    method: str = "Kaplan-Meier (exponential Greenwood band)"
    n: int = 0
    n_events: int = 0
    horizon_days: float | None = None
    _durations: dict[Any, np.ndarray] = field(default_factory=dict, repr=False)

    def plot(self, path: Any = None, **kwargs: Any):
        """Cumulative incidence figure with numbers at risk; saved to ``path`` when given.

        ``kwargs`` go to ``riskfm.plots.incidence.plot_cumulative_incidence`` (``title``,
        ``legend_title``, ``times_days``, ...). Returns the Figure.
        """
        from riskfm.plots.incidence import plot_cumulative_incidence

        return _save(plot_cumulative_incidence(self, **kwargs), path)

    @property
    def groups(self) -> list[Any]:
        """Group labels in display order."""
        return list(self.curves)

    @property
    def max_time_days(self) -> float:
        """The longest follow-up (days) of any patient (0 without patients)."""
        return float(max((np.max(d) for d in self._durations.values() if len(d)), default=0.0))

    def at_risk(self, times_days: Sequence[float]) -> pd.DataFrame:
        """Numbers at risk (follow-up time >= t) per group at the given times.

        Parameters
        ----------
        times_days : sequence of float
            Times in days.

        Returns
        -------
        pandas.DataFrame
            Index: group labels; columns: the times; integer counts.
        """
        t = np.asarray(times_days, dtype=np.float64)
        rows = {}
        for g, d in self._durations.items():
            d_sorted = np.sort(d)
            rows[g] = len(d_sorted) - np.searchsorted(d_sorted, t, side="left")
        return pd.DataFrame.from_dict(rows, orient="index", columns=list(t)).astype(int)


def cumulative_incidence_by_group(
    time_days: Any, event: Any, groups: Any, confidence: float = 0.95, *, horizon_days: float | None = None
) -> CumulativeIncidence:
    """Kaplan-Meier cumulative incidence 1 - S(t) per group, with the log-rank test.

    Parameters
    ----------
    time_days : array-like, shape [n]
        Follow-up time in days (time to event or to censoring), finite and >= 0.
    event : array-like, shape [n]
        1 if the event was observed at ``time_days``, 0 if censored.
    groups : array-like, shape [n]
        Group label per patient (e.g. from ``assign_risk_groups``); no missing labels.
    confidence : float
        Coverage of the pointwise bands (lifelines' exponential Greenwood intervals).
    horizon_days : float, optional
        Horizon of a fixed-horizon outcome (30 for 30-day MACE): follow-up is censored there
        (``riskfm.evaluate.horizons.censor_at``: later events count as censored) and the figure
        ends there. Default: the whole follow-up.

    Returns
    -------
    CumulativeIncidence
    """
    from lifelines import KaplanMeierFitter  # local: lifelines is slow to import
    from lifelines.statistics import multivariate_logrank_test

    from riskfm.evaluate.horizons import censor_at

    if horizon_days is not None:
        time_days, event = censor_at(time_days, event, horizon_days)
    t = as_finite_1d(time_days, "time_days")
    e = as_binary_1d(event, "event")
    g = np.asarray(groups, dtype=object)
    if g.ndim != 1:
        raise ValueError(f"groups must be 1-D, got shape {g.shape}")
    check_same_length(time_days=t, event=e, groups=g)
    if len(t) == 0:
        raise ValueError("time_days, event and groups are empty")
    if (t < 0).any():
        raise ValueError(f"time_days must be >= 0; {int((t < 0).sum())} negative values")
    if pd.isna(g).any():
        raise ValueError(f"groups has {int(pd.isna(g).sum())} missing labels")
    check_confidence(confidence)

    curves: dict[Any, pd.DataFrame] = {}
    durations: dict[Any, np.ndarray] = {}
    for label in order_groups(g.tolist()):
        m = g == label
        kmf = KaplanMeierFitter(alpha=1.0 - confidence).fit(t[m], event_observed=e[m], label=str(label))
        inc = kmf.cumulative_density_.iloc[:, 0]
        # lifelines derives these bands as 1 - (survival band): take min / max so that "low" is
        # the lower bound whatever column order it uses.
        band = kmf.confidence_interval_cumulative_density_.to_numpy(dtype=np.float64)
        curves[label] = pd.DataFrame({
            "time_days": inc.index.to_numpy(dtype=np.float64),
            "incidence": inc.to_numpy(dtype=np.float64),
            "ci_low": band.min(axis=1),
            "ci_high": band.max(axis=1),
        })
        durations[label] = t[m]

    logrank_p = None
    if len(curves) >= 2 and e.sum() > 0:
        res = multivariate_logrank_test(t, g.astype(str), event_observed=e)
        p = float(res.p_value)
        logrank_p = p if math.isfinite(p) else None
    return CumulativeIncidence(curves, logrank_p, confidence, n=len(t), n_events=int(e.sum()),
                               horizon_days=None if horizon_days is None else float(horizon_days),
                               _durations=durations)
