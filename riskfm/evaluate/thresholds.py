"""Operating points: classification metrics at a threshold, and ways to choose the threshold.

A patient is called positive (high risk) when ``p >= threshold``. At that threshold:

- sensitivity = TP / (TP + FN), specificity = TN / (TN + FP), PPV = TP / (TP + FP),
  NPV = TN / (TN + FN), each with a Wilson score interval (Wilson 1927);
- F1 = 2 TP / (2 TP + FP + FN), whose interval comes from a stratified parametric bootstrap
  (TP ~ Binomial(n_pos, sensitivity), FP ~ Binomial(n_neg, 1 - specificity): exactly the
  distribution of the counts under the stratified nonparametric bootstrap).

Thresholds are chosen on one set of patients (training or validation) and applied unchanged to
the others; choosing them on the test set would bias every metric above.

- ``youden_threshold``: maximises sensitivity + specificity - 1 (Youden 1950).
- ``threshold_at_sensitivity`` / ``threshold_at_specificity``: the highest (lowest) threshold that
  reaches a target sensitivity (specificity).
- ``incidence_threshold`` (``riskfm.evaluate.risk_groups``): the top fraction equal to the
  training prevalence is high risk.
- ``three_level_thresholds``: a sensitivity-based lower and a specificity-based upper cut-off
  for low / intermediate / high risk (rule-out and rule-in).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from riskfm.evaluate._checks import check_binary_scores, check_confidence
from riskfm.evaluate.discrimination import _split_classes
from riskfm.evaluate.results import Estimate, Result, bootstrap_method, percentile_ci
from riskfm.evaluate.risk_groups import wilson_interval


@dataclass(frozen=True)
class ThresholdMetrics(Result):
    """Confusion counts and derived metrics at one threshold (a composite result).

    Attributes
    ----------
    threshold : float
        Positive when ``p >= threshold``.
    n, n_pos : int
        Patients and positives.
    tp, fp, tn, fn : int
        Confusion counts.
    sensitivity, specificity, ppv, npv : Estimate
        Proportions with Wilson intervals (``method="Wilson"``). PPV (NPV) has a NaN value and no
        interval when nobody is called positive (negative).
    f1 : Estimate
        F1 score with a stratified parametric-bootstrap interval
        (``method="parametric bootstrap (<n_boot> resamples)"``).
    method : str
        How the intervals were obtained.

    ``to_dict()`` nests each metric as ``{"value", "ci", "method", "n", ...}``; ``to_row()`` gives
    the table columns ``sensitivity``, ``sensitivity_ci_low``, ``sensitivity_ci_high``, ...
    """

    threshold: float
    n: int
    n_pos: int
    tp: int
    fp: int
    tn: int
    fn: int
    sensitivity: Estimate
    specificity: Estimate
    ppv: Estimate
    npv: Estimate
    f1: Estimate
    method: str = "Wilson (F1: parametric bootstrap)"


def _proportion(k: int, n: int, confidence: float, n_total: int, n_pos: int) -> Estimate:
    if n == 0:
        return Estimate(math.nan, None, "Wilson", n_total, n_pos, confidence)
    low, high = wilson_interval(k, n, confidence)
    return Estimate(k / n, (float(low), float(high)), "Wilson", n_total, n_pos, confidence)


def threshold_metrics(
    y: Any, p: Any, threshold: float, *, confidence: float = 0.95, n_boot: int = 2000, seed: int = 0
) -> ThresholdMetrics:
    """Sensitivity, specificity, PPV, NPV (Wilson CIs) and F1 (bootstrap CI) at ``p >= threshold``.

    Parameters
    ----------
    y : array-like, shape [n]
        Binary labels, both classes present.
    p : array-like, shape [n]
        Predicted risk (or any score on the scale of ``threshold``).
    threshold : float
        Cut-off; ``p >= threshold`` is positive.
    confidence : float
        Nominal coverage of every interval.
    n_boot, seed : int
        Parametric-bootstrap draws and seed of the F1 interval.

    Returns
    -------
    ThresholdMetrics
    """
    check_confidence(confidence)
    y_b, p_f = check_binary_scores(y, p)
    pos, neg = _split_classes(y_b, p_f)
    threshold = float(threshold)
    if math.isnan(threshold):
        raise ValueError("threshold is NaN")
    n, n_pos, n_neg = len(p_f), len(pos), len(neg)
    tp = int((pos >= threshold).sum())
    fp = int((neg >= threshold).sum())
    fn, tn = n_pos - tp, n_neg - fp
    f1 = 2 * tp / (2 * tp + fp + fn) if (2 * tp + fp + fn) else math.nan
    rng = np.random.default_rng(seed)
    tp_b = rng.binomial(n_pos, tp / n_pos, size=n_boot)
    fp_b = rng.binomial(n_neg, fp / n_neg, size=n_boot)
    denom = 2 * tp_b + fp_b + (n_pos - tp_b)
    f1_b = np.where(denom > 0, 2 * tp_b / np.maximum(denom, 1), np.nan)
    return ThresholdMetrics(
        threshold, n, n_pos, tp, fp, tn, fn,
        sensitivity=_proportion(tp, n_pos, confidence, n, n_pos),
        specificity=_proportion(tn, n_neg, confidence, n, n_pos),
        ppv=_proportion(tp, tp + fp, confidence, n, n_pos),
        npv=_proportion(tn, tn + fn, confidence, n, n_pos),
        f1=Estimate(f1, percentile_ci(f1_b, confidence), bootstrap_method(n_boot, "parametric"), n, n_pos,
                    confidence),
    )


def _operating_points(y: Any, p: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct thresholds (decreasing) with the sensitivity and specificity of ``p >= t``."""
    y_b, p_f = check_binary_scores(y, p)
    pos, neg = _split_classes(y_b, p_f)
    thr = np.unique(p_f)[::-1]
    sens = 1.0 - np.searchsorted(np.sort(pos), thr, side="left") / len(pos)
    spec = np.searchsorted(np.sort(neg), thr, side="left") / len(neg)
    return thr, sens, spec


def _reaching(y: Any, p: Any, name: str, target: float) -> tuple[np.ndarray, np.ndarray]:
    """Distinct thresholds (decreasing) and the positions of those whose ``name`` reaches ``target``."""
    if not 0.0 < target <= 1.0:
        raise ValueError(f"{name} must be in (0, 1], got {target}")
    thr, sens, spec = _operating_points(y, p)
    rate = sens if name == "sensitivity" else spec
    return thr, np.flatnonzero(rate >= target - 1e-12)


def youden_threshold(y: Any, p: Any) -> float:
    """Threshold maximising Youden's J = sensitivity + specificity - 1 (ties: the highest threshold).

    Parameters
    ----------
    y : array-like, shape [n]
        Binary labels, both classes present.
    p : array-like, shape [n]
        Scores.

    Returns
    -------
    float
        One of the observed scores.
    """
    thr, sens, spec = _operating_points(y, p)
    return float(thr[int(np.argmax(sens + spec - 1.0))])


def threshold_at_sensitivity(y: Any, p: Any, sensitivity: float) -> float:
    """Highest threshold whose sensitivity is at least ``sensitivity`` (most specific such rule).

    Parameters
    ----------
    y, p : array-like, shape [n]
        Labels and scores.
    sensitivity : float
        Target in (0, 1].

    Returns
    -------
    float
        One of the observed scores.
    """
    thr, ok = _reaching(y, p, "sensitivity", sensitivity)
    return float(thr[ok[0]])  # thresholds decrease, so the first that qualifies is the highest


def threshold_at_specificity(y: Any, p: Any, specificity: float) -> float:
    """Lowest threshold whose specificity is at least ``specificity`` (most sensitive such rule).

    Parameters
    ----------
    y : array-like, shape [n]
        Binary labels of the patients the threshold is chosen on, both classes present.
    p : array-like, shape [n]
        Their scores (positive when ``p >= threshold``).
    specificity : float
        Target in (0, 1]. Specificity 1 may need a threshold above every score: then the
        smallest float above the maximum score is returned (nobody positive).

    Returns
    -------
    float
    """
    thr, ok = _reaching(y, p, "specificity", specificity)
    if len(ok) == 0:
        return float(np.nextafter(thr[0], np.inf))
    return float(thr[ok[-1]])


def three_level_thresholds(y: Any, p: Any, sensitivity: float = 0.9, specificity: float = 0.9) -> tuple[float, float]:
    """Cut-offs for low / intermediate / high risk: a rule-out and a rule-in threshold.

    Below the lower cut-off (chosen for ``sensitivity``) a patient is low risk: few events are
    missed. At or above the upper cut-off (chosen for ``specificity``) a patient is high risk.

    Parameters
    ----------
    y, p : array-like, shape [n]
        Labels and predicted risks of the patients the cut-offs are chosen on (training or
        validation, never test).
    sensitivity, specificity : float
        Targets of the lower and upper cut-off.

    Returns
    -------
    (low_cut, high_cut) : tuple of float
        For ``riskfm.evaluate.assign_risk_groups(p, [low_cut, high_cut])``.

    Raises
    ------
    ValueError
        If the sensitivity cut-off is not below the specificity cut-off: the model reaches both
        targets at a single threshold, so there is no intermediate group (raise the targets or
        use one threshold).
    """
    low = threshold_at_sensitivity(y, p, sensitivity)
    high = threshold_at_specificity(y, p, specificity)
    if not low < high:
        raise ValueError(
            f"sensitivity-{sensitivity:g} cut-off {low:.4g} is not below the specificity-{specificity:g} "
            f"cut-off {high:.4g}: one threshold meets both targets, so there is no intermediate group "
            "(raise the targets or use a single threshold)"
        )
    return low, high
