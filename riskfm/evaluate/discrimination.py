"""Discrimination: AUROC with bootstrap or DeLong confidence intervals, and the DeLong test.

Everything here takes plain arrays: ``y`` holds binary labels (0/1 or bool) and ``p`` the
predicted risk or any score where larger means "more likely positive" (probabilities, logits).

The AUROC is computed with the rank (Mann-Whitney) formula using midranks, so tied scores count
one half, exactly as ``sklearn.metrics.roc_auc_score``::

    AUROC = (R_pos - n_pos (n_pos + 1) / 2) / (n_pos * n_neg)

where ``R_pos`` is the sum of the midranks of the positives in the pooled sample.

Confidence intervals
--------------------
``"bootstrap"``
    Stratified percentile bootstrap: each resample draws ``n_pos`` positives and ``n_neg``
    negatives with replacement, so every resample has the prevalence of the data and always
    both classes. All resamples are computed at once with numpy (see ``_bootstrap_aurocs``);
    ``stratified_bootstrap_indices`` returns the patients of each resample, and the interval is
    ``np.quantile(values, [alpha / 2, 1 - alpha / 2])`` of the resampled statistics.
``"delong"``
    DeLong, DeLong & Clarke-Pearson (1988): the variance of the AUROC from its structural
    components (the "placements" of each positive among the negatives and vice versa), computed
    in O(n log n) from midranks (Sun & Xu, 2014). The interval is the normal (Wald) interval
    ``AUROC +- z * se`` clipped to [0, 1].

References
----------
DeLong ER, DeLong DM, Clarke-Pearson DL. Comparing the areas under two or more correlated
receiver operating characteristic curves: a nonparametric approach. Biometrics 1988;44:837-845.

Sun X, Xu W. Fast implementation of DeLong's algorithm for comparing the areas under correlated
receiver operating characteristic curves. IEEE Signal Process Lett 2014;21:1389-1393.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import norm, rankdata

from riskfm.evaluate._checks import check_binary_scores, check_confidence, check_n_boot, z_value
from riskfm.evaluate.guards import estimable
from riskfm.evaluate.results import Estimate, Result, bootstrap_method, make_ci, percentile_ci

CI_METHODS: tuple[str, ...] = ("bootstrap", "delong")

# Upper bound on the number of elements in one block of bootstrap index matrices (int64, so
# ~32 MB per matrix): resamples are processed in as few blocks as fit, usually exactly one.
_MAX_BLOCK_ELEMENTS = 1 << 22


def _split_classes(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pos, neg = p[y], p[~y]
    if len(pos) == 0 or len(neg) == 0:
        raise ValueError(
            f"AUROC needs both classes; got {len(pos)} positives and {len(neg)} negatives"
        )
    return pos, neg


# ----------------------------------------------------------------------------------------- AUROC


def _auc_from_classes(pos: np.ndarray, neg: np.ndarray) -> float:
    """Mann-Whitney AUROC with midranks for ties; ``pos`` [n_pos], ``neg`` [n_neg] scores."""
    n_pos, n_neg = len(pos), len(neg)
    ranks = rankdata(np.concatenate([pos, neg]), method="average")
    return float((ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def _bootstrap_aurocs(pos: np.ndarray, neg: np.ndarray, idx_pos: np.ndarray, idx_neg: np.ndarray) -> np.ndarray:
    """AUROC of each stratified resample, all rows at once.

    Parameters
    ----------
    pos : np.ndarray, shape [n_pos]
        Scores of the positives.
    neg : np.ndarray, shape [n_neg]
        Scores of the negatives.
    idx_pos : np.ndarray of int, shape [B, n_pos]
        Row b lists the positives drawn (with replacement) in resample b.
    idx_neg : np.ndarray of int, shape [B, n_neg]
        Row b lists the negatives drawn in resample b.

    Returns
    -------
    np.ndarray, shape [B]
        AUROC of each resample, identical to the Mann-Whitney AUROC of the resampled data.

    Notes
    -----
    A resample is fully described by how many times each original positive and negative was
    drawn. With the negatives sorted once, the number of resampled negatives below (or tied with)
    a score is a cumulative sum of those multiplicities, read at the score's position in the
    sorted negatives (found once, by ``searchsorted``, for every original positive). So

        AUROC_b = sum_i c_b[i] * (below_b[i] + ties_b[i] / 2) / (n_pos * n_neg)

    where ``c_b[i]`` is the multiplicity of positive i in resample b. Cost O(B (n_pos + n_neg)).
    """
    n_boot, n_pos = idx_pos.shape
    n_neg = idx_neg.shape[1]
    order = np.argsort(neg, kind="stable")
    neg_sorted = neg[order]
    # Position of every original positive among the sorted negatives: [lo, hi) are its ties.
    lo = np.searchsorted(neg_sorted, pos, side="left")
    hi = np.searchsorted(neg_sorted, pos, side="right")

    # Multiplicities per resample via one flat bincount (row offsets keep resamples apart).
    rows_neg = np.arange(n_boot)[:, None] * n_neg
    rank_of = np.empty(n_neg, dtype=np.int64)
    rank_of[order] = np.arange(n_neg)  # original negative index -> position in sorted order
    counts_neg = np.bincount((rank_of[idx_neg] + rows_neg).ravel(), minlength=n_boot * n_neg)
    counts_neg = counts_neg.reshape(n_boot, n_neg)
    cum = np.zeros((n_boot, n_neg + 1), dtype=np.int64)
    np.cumsum(counts_neg, axis=1, out=cum[:, 1:])

    rows_pos = np.arange(n_boot)[:, None] * n_pos
    counts_pos = np.bincount((idx_pos + rows_pos).ravel(), minlength=n_boot * n_pos).reshape(n_boot, n_pos)

    below = cum[:, lo]  # [B, n_pos] resampled negatives strictly below each original positive
    below_or_tied = cum[:, hi]
    # 2x the Mann-Whitney count stays integral, so the sum is exact before the final division.
    twice_wins = (counts_pos * (below + below_or_tied)).sum(axis=1)
    return twice_wins / (2.0 * n_pos * n_neg)


def bootstrap_aurocs(y: Any, p: Any, n_boot: int = 500, seed: int | np.random.Generator | None = 0) -> np.ndarray:
    """AUROCs of ``n_boot`` stratified bootstrap resamples (vectorised, reproducible).

    Parameters
    ----------
    y : array-like, shape [n]
        Binary labels (0/1 or bool), both classes present.
    p : array-like, shape [n]
        Finite scores.
    n_boot : int
        Number of resamples.
    seed : int, numpy Generator or None
        Seed of ``numpy.random.default_rng``; the same seed gives the same resamples.

    Returns
    -------
    np.ndarray, shape [n_boot]
        The AUROC of every resample (positives and negatives resampled separately, keeping
        their counts).
    """
    y_b, p_f = check_binary_scores(y, p)
    pos, neg = _split_classes(y_b, p_f)
    return _bootstrap_from_classes(pos, neg, n_boot, seed)


def _bootstrap_from_classes(pos: np.ndarray, neg: np.ndarray, n_boot: int, seed: Any) -> np.ndarray:
    return _bootstrap_stat(pos, neg, n_boot, seed, _bootstrap_aurocs)


def _stratified_index_blocks(n_pos: int, n_neg: int, n_boot: int, seed: Any):
    """Yield the stratified resamples of every bootstrap here, in blocks, as ``(start, idx_pos, idx_neg)``.

    ``idx_pos`` [b, n_pos] and ``idx_neg`` [b, n_neg] hold, for resamples ``start .. start + b - 1``,
    the positions (within the positives, resp. the negatives, in their original order) drawn with
    replacement. One ``numpy.random.default_rng(seed)`` makes, per block, one ``integers`` call for
    the positives then one for the negatives; blocks only bound memory (usually there is one).
    ``stratified_bootstrap_indices`` returns exactly these resamples as patient rows.
    """
    rng = np.random.default_rng(seed)
    block = max(1, _MAX_BLOCK_ELEMENTS // (n_pos + n_neg))
    for start in range(0, n_boot, block):
        b = min(block, n_boot - start)
        idx_pos = rng.integers(0, n_pos, size=(b, n_pos))
        idx_neg = rng.integers(0, n_neg, size=(b, n_neg))
        yield start, idx_pos, idx_neg


def stratified_bootstrap_indices(y: Any, n_boot: int = 500, seed: int | np.random.Generator | None = 0) -> np.ndarray:
    """Patient rows of the stratified bootstrap resamples behind every interval of this module.

    ``roc_auc(ci="bootstrap")``, ``bootstrap_aurocs``, ``average_precision`` and
    ``paired_bootstrap_test`` with the same ``n_boot`` and ``seed`` use exactly these resamples, so
    ``metric(y[idx[b]], p[idx[b]])`` for each row ``b`` gives their bootstrap distribution.

    Parameters
    ----------
    y : array-like, shape [n]
        Binary labels (0/1 or bool), both classes present.
    n_boot : int
        Number of resamples.
    seed : int, numpy Generator or None
        Seed of ``numpy.random.default_rng``.

    Returns
    -------
    np.ndarray of int, shape [n_boot, n]
        Row b: the ``n_pos`` positives drawn with replacement from the positives (first ``n_pos``
        columns), then the ``n_neg`` negatives drawn from the negatives; values index ``y``.
    """
    y_b, _ = check_binary_scores(y, np.zeros(np.size(y)))
    rows_pos, rows_neg = np.flatnonzero(y_b), np.flatnonzero(~y_b)
    if len(rows_pos) == 0 or len(rows_neg) == 0:
        raise ValueError(f"the stratified bootstrap needs both classes; got {len(rows_pos)} positives "
                         f"and {len(rows_neg)} negatives")
    n_boot = check_n_boot(n_boot)
    out = np.empty((n_boot, len(y_b)), dtype=np.int64)
    for start, idx_pos, idx_neg in _stratified_index_blocks(len(rows_pos), len(rows_neg), n_boot, seed):
        out[start:start + len(idx_pos)] = np.hstack([rows_pos[idx_pos], rows_neg[idx_neg]])
    return out


# ----------------------------------------------------------------------------------------- comparison


@dataclass(frozen=True)
class PairedComparison(Result):
    """Two models on the same patients: their metric, the difference with its interval, and a test.

    Attributes
    ----------
    value : float
        The difference ``value1 - value2`` (NaN when not estimable).
    ci : (float, float) or None
        Interval of the difference: percentile bootstrap (``paired_bootstrap_test``) or DeLong's
        Wald interval (``delong_test``).
    method : str
        ``"paired stratified bootstrap (<n> resamples)"`` or ``"DeLong"``.
    n : int
        Patients.
    metric : str
        ``"auroc"`` or ``"auprc"``.
    value1, value2 : float
        The metric of model 1 and model 2 on all patients.
    z, p_value : float
        ``difference / sd(difference)`` and its two-sided normal p-value (DeLong: the analytic
        standard error; bootstrap: the SD of the resampled differences, the test of Hanley &
        McNeil as pROC's ``roc.test(method="bootstrap")``).
    n_pos : int
        Positives.
    n_boot : int or None
        Resamples (bootstrap only).
    confidence : float
    not_estimable : str or None
        Why nothing was computed (small-sample rule), else None.
    """

    value: float
    ci: tuple[float, float] | None
    method: str
    n: int
    metric: str
    value1: float
    value2: float
    z: float
    p_value: float
    n_pos: int
    n_boot: int | None = None
    confidence: float = 0.95
    not_estimable: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "ci", None if self.ci is None else make_ci(*self.ci))

    @classmethod
    def missing(cls, metric: str, reason: str, method: str, n: int, n_pos: int, confidence: float,
                n_boot: int | None = None) -> PairedComparison:
        """Return a comparison that is not estimable: every number NaN, the reason kept."""
        nan = math.nan
        return cls(nan, None, method, n, metric, nan, nan, nan, nan, n_pos, n_boot, confidence, reason)


# ----------------------------------------------------------------------------------------- DeLong


def _placements(pos: np.ndarray, neg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DeLong structural components from midranks (Sun & Xu 2014).

    Returns ``v10`` [n_pos]: for each positive, the fraction of negatives it outranks (ties 1/2);
    and ``v01`` [n_neg]: for each negative, the fraction of positives that outrank it.
    """
    n_pos, n_neg = len(pos), len(neg)
    r_all = rankdata(np.concatenate([pos, neg]), method="average")
    # A positive's rank among all minus its rank among positives = negatives below it (+ ties/2).
    v10 = (r_all[:n_pos] - rankdata(pos, method="average")) / n_neg
    v01 = 1.0 - (r_all[n_pos:] - rankdata(neg, method="average")) / n_pos
    return v10, v01


def delong_covariance(y: Any, scores: Any) -> tuple[np.ndarray, np.ndarray]:
    """AUROCs of k scores on the same patients and their DeLong covariance matrix.

    Parameters
    ----------
    y : array-like, shape [n]
        Binary labels with at least 2 positives and 2 negatives.
    scores : array-like, shape [n] or [k, n]
        One score per patient, or k scores (rows) for the same patients.

    Returns
    -------
    aurocs : np.ndarray, shape [k]
    covariance : np.ndarray, shape [k, k]
        ``S10 / n_pos + S01 / n_neg`` where S10 and S01 are the sample covariances (ddof 1) of the
        structural components of the positives and negatives.

    Raises
    ------
    ValueError
        On invalid input or fewer than 2 positives or 2 negatives (the sample covariance of the
        components is then undefined).
    """
    s = np.asarray(scores)
    if s.ndim == 1:
        s = s[None, :]
    if s.ndim != 2:
        raise ValueError(f"scores must have shape [n] or [k, n], got {s.shape}")
    y_b = None
    v10_rows, v01_rows = [], []
    for i, row in enumerate(s):
        y_b, p_f = check_binary_scores(y, row, name_p=f"scores[{i}]")
        pos, neg = _split_classes(y_b, p_f)
        if len(pos) < 2 or len(neg) < 2:
            raise ValueError(
                f"DeLong variance needs at least 2 positives and 2 negatives; got {len(pos)} and {len(neg)}"
            )
        v10, v01 = _placements(pos, neg)
        v10_rows.append(v10)
        v01_rows.append(v01)
    v10_m = np.vstack(v10_rows)  # [k, n_pos]
    v01_m = np.vstack(v01_rows)  # [k, n_neg]
    aurocs = v10_m.mean(axis=1)
    cov = np.atleast_2d(np.cov(v10_m, ddof=1)) / v10_m.shape[1] + np.atleast_2d(np.cov(v01_m, ddof=1)) / v01_m.shape[1]
    return aurocs, cov


def delong_variance(y: Any, p: Any) -> tuple[float, float]:
    """AUROC and its DeLong variance for one score.

    Parameters
    ----------
    y : array-like, shape [n]
        Binary labels with at least 2 positives and 2 negatives.
    p : array-like, shape [n]
        Finite scores.

    Returns
    -------
    (auroc, variance) : tuple of float
    """
    y_b, p_f = check_binary_scores(y, p)
    aurocs, cov = delong_covariance(y_b, p_f)
    return float(aurocs[0]), float(cov[0, 0])


def delong_test(y: Any, p1: Any, p2: Any, *, confidence: float = 0.95, min_events: int | None = None,
                min_nonevents: int | None = None) -> PairedComparison:
    """DeLong test for the difference between two correlated AUROCs (same patients, two models).

    Parameters
    ----------
    y : array-like, shape [n]
        Binary labels, at least 2 of each class.
    p1, p2 : array-like, shape [n]
        Scores of model 1 and model 2 for the same patients, in the same order.
    confidence : float
        Coverage of the Wald interval of the difference, ``diff -+ z * se(diff)``.
    min_events, min_nonevents : int, optional
        Apply the small-sample rule (``riskfm.evaluate.guards.estimable``; reports use 10 and
        10): with fewer events or non-events nothing is computed and every number is NaN, with
        ``not_estimable`` giving the reason. Not applied when both are None.

    Returns
    -------
    PairedComparison
        ``value`` = AUROC1 - AUROC2 with its DeLong interval (``method="DeLong"``), ``value1``,
        ``value2``, ``z`` = difference / se(difference) and the two-sided ``p_value``. When the
        difference has zero variance (e.g. identical rankings) ``z`` is 0 and ``p_value`` is 1 if
        the AUROCs are equal.

    Examples
    --------
    >>> y = [0, 0, 1, 1, 0, 1]
    >>> delong_test(y, [0.1, 0.2, 0.8, 0.7, 0.3, 0.9], [0.1, 0.2, 0.8, 0.7, 0.3, 0.9]).p_value
    1.0
    """
    a1 = np.asarray(p1)
    a2 = np.asarray(p2)
    if a1.ndim != 1 or a2.ndim != 1 or len(a1) != len(a2):
        raise ValueError(f"p1 and p2 must be 1-D of the same length, got shapes {a1.shape} and {a2.shape}")
    y_b, _ = check_binary_scores(y, a1, name_p="p1")
    check_binary_scores(y, a2, name_p="p2")
    zc = z_value(confidence)
    n, n_pos = len(y_b), int(y_b.sum())
    if min_events is not None or min_nonevents is not None:
        reason = estimable(y_b, min_events=min_events, min_nonevents=min_nonevents)
        if reason is not None:
            return PairedComparison.missing("auroc", reason, "DeLong", n, n_pos, confidence)
    aurocs, cov = delong_covariance(y, np.vstack([a1.astype(float), a2.astype(float)]))
    diff = float(aurocs[0] - aurocs[1])
    var = float(cov[0, 0] + cov[1, 1] - 2.0 * cov[0, 1])
    # Floating-point cancellation can leave a tiny negative variance for identical inputs.
    if var <= 1e-15:
        z = 0.0 if abs(diff) < 1e-12 else math.copysign(math.inf, diff)
    else:
        z = diff / math.sqrt(var)
    p_value = float(2.0 * norm.sf(abs(z)))
    se = math.sqrt(max(var, 0.0))
    return PairedComparison(diff, (max(-1.0, diff - zc * se), min(1.0, diff + zc * se)), "DeLong", n, "auroc",
                            float(aurocs[0]), float(aurocs[1]), float(z), p_value, n_pos, None, confidence)


# ----------------------------------------------------------------------------------------- public


def roc_auc(y: Any, p: Any, ci: str | None = "bootstrap", n_boot: int = 500,
            seed: int | np.random.Generator | None = 0, confidence: float = 0.95) -> Estimate:
    """AUROC with an optional confidence interval.

    Parameters
    ----------
    y : array-like, shape [n]
        Binary labels (0/1 or bool); both classes must be present; no NaN.
    p : array-like, shape [n]
        Finite scores; larger means more likely positive (predicted risk in [0, 1] or logits).
    ci : {"bootstrap", "delong", None}
        Interval method: stratified percentile bootstrap, DeLong normal interval, or none.
    n_boot : int
        Bootstrap resamples (ignored unless ``ci="bootstrap"``).
    seed : int, numpy Generator or None
        Bootstrap seed; the same seed reproduces the same interval.
    confidence : float
        Nominal coverage in (0, 1).

    Returns
    -------
    Estimate
        ``value`` equals ``sklearn.metrics.roc_auc_score(y, p)``; ``method`` is ``"none"``,
        ``"stratified bootstrap (<n_boot> resamples)"`` or ``"DeLong"``; ``ci`` is None when
        ``ci`` is None, or for DeLong with fewer than 2 positives or negatives (with a warning).

    Examples
    --------
    >>> est = roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], ci=None)
    >>> est.value
    0.75
    """
    if ci is not None and ci not in CI_METHODS:
        raise ValueError(f"ci must be one of {CI_METHODS} or None, got {ci!r}")
    z = z_value(confidence)
    y_b, p_f = check_binary_scores(y, p)
    pos, neg = _split_classes(y_b, p_f)
    n, n_pos = len(p_f), len(pos)
    value = _auc_from_classes(pos, neg)
    if ci is None:
        return Estimate(value, None, "none", n, n_pos, confidence)
    if ci == "bootstrap":
        aucs = _bootstrap_from_classes(pos, neg, n_boot, seed)
        return Estimate(value, percentile_ci(aucs, confidence), bootstrap_method(len(aucs)), n, n_pos, confidence,
                        se=float(aucs.std(ddof=1)) if len(aucs) > 1 else None)
    # DeLong
    if len(pos) < 2 or len(neg) < 2:
        warnings.warn(
            f"DeLong interval undefined with {len(pos)} positives and {len(neg)} negatives; CI left empty",
            RuntimeWarning, stacklevel=2,
        )
        return Estimate(value, None, "DeLong", n, n_pos, confidence)
    v10, v01 = _placements(pos, neg)
    var = float(np.var(v10, ddof=1) / len(pos) + np.var(v01, ddof=1) / len(neg))
    se = math.sqrt(max(var, 0.0))
    return Estimate(value, (max(0.0, value - z * se), min(1.0, value + z * se)), "DeLong", n, n_pos,
                    confidence, se=se)


def roc_curve_points(y: Any, p: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Empirical ROC curve: one point per distinct score threshold.

    Parameters
    ----------
    y : array-like, shape [n]
        Binary labels, both classes present.
    p : array-like, shape [n]
        Finite scores.

    Returns
    -------
    fpr, tpr : np.ndarray, shape [m + 1]
        False- and true-positive rates from (0, 0) to (1, 1) as the threshold decreases through
        the m distinct scores; tied scores move both rates in one step (a diagonal segment), so
        the trapezoidal area under these points equals the AUROC.
    thresholds : np.ndarray, shape [m + 1]
        Score threshold (predict positive when ``p >= threshold``) of each point; +inf first.
    """
    y_b, p_f = check_binary_scores(y, p)
    pos, neg = _split_classes(y_b, p_f)
    order = np.argsort(-p_f, kind="stable")
    p_sorted, y_sorted = p_f[order], y_b[order]
    # Last index of each run of equal scores: the curve moves only between distinct thresholds.
    last = np.r_[np.flatnonzero(np.diff(p_sorted) != 0), len(p_sorted) - 1]
    tp = np.cumsum(y_sorted)[last]
    fp = (last + 1) - tp
    tpr = np.r_[0.0, tp / len(pos)]
    fpr = np.r_[0.0, fp / len(neg)]
    thresholds = np.r_[np.inf, p_sorted[last]]
    return fpr, tpr, thresholds


# ----------------------------------------------------------------------------------------- AUPRC


def _resample_counts(idx: np.ndarray, n: int) -> np.ndarray:
    """Multiplicity of each of ``n`` items in each resample: ``idx`` [B, m] -> counts [B, n]."""
    n_boot = idx.shape[0]
    rows = np.arange(n_boot)[:, None] * n
    return np.bincount((idx + rows).ravel(), minlength=n_boot * n).reshape(n_boot, n)


def _weighted_average_precision(y_sorted: np.ndarray, last: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Average precision of each row of weights ``w`` [B, n] over scores sorted in decreasing order.

    ``y_sorted`` [n] are the labels in that order and ``last`` the index of the last item of each
    run of tied scores (the distinct thresholds). With integer weights (bootstrap multiplicities)
    the result equals ``sklearn.metrics.average_precision_score`` of the resampled data: items not
    drawn add no recall, so the step they sit on contributes nothing.
    """
    tp = np.cumsum(w * y_sorted, axis=1)[:, last]
    fp = np.cumsum(w * (~y_sorted), axis=1)[:, last]
    total_pos = tp[:, -1:]
    recall = tp / total_pos
    # Before the first drawn item tp + fp = 0; its recall step is 0, so any finite precision works.
    precision = tp / np.maximum(tp + fp, 1)
    d_recall = np.diff(recall, axis=1, prepend=0.0)
    return (d_recall * precision).sum(axis=1)


def _sorted_for_ap(pos: np.ndarray, neg: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    p_all = np.concatenate([pos, neg])
    y_all = np.r_[np.ones(len(pos), bool), np.zeros(len(neg), bool)]
    order = np.argsort(-p_all, kind="stable")
    p_sorted = p_all[order]
    last = np.r_[np.flatnonzero(np.diff(p_sorted) != 0), len(p_sorted) - 1]
    return order, y_all[order], last


def _bootstrap_aps(pos: np.ndarray, neg: np.ndarray, idx_pos: np.ndarray, idx_neg: np.ndarray) -> np.ndarray:
    """Average precision of each stratified resample (rows of ``idx_pos`` [B, n_pos], ``idx_neg`` [B, n_neg])."""
    order, y_sorted, last = _sorted_for_ap(pos, neg)
    w = np.concatenate([_resample_counts(idx_pos, len(pos)), _resample_counts(idx_neg, len(neg))], axis=1)
    return _weighted_average_precision(y_sorted, last, w[:, order])


def average_precision(y: Any, p: Any, ci: str | None = "bootstrap", n_boot: int = 500,
                      seed: int | np.random.Generator | None = 0, confidence: float = 0.95) -> Estimate:
    """Area under the precision-recall curve (average precision) with a bootstrap interval.

    ``AP = sum_k (R_k - R_{k-1}) P_k`` over the distinct score thresholds in decreasing order (the
    step-wise definition of ``sklearn.metrics.average_precision_score``; no interpolation). Its
    chance level is the prevalence, not 0.5.

    Parameters
    ----------
    y : array-like, shape [n]
        Binary labels, both classes present.
    p : array-like, shape [n]
        Finite scores; larger means more likely positive.
    ci : {"bootstrap", None}
        Stratified percentile bootstrap (vectorised like the AUROC bootstrap) or no interval.
    n_boot, seed, confidence
        Bootstrap resamples, seed and nominal coverage.

    Returns
    -------
    Estimate
        ``value`` equals ``sklearn.metrics.average_precision_score(y, p)``.
    """
    if ci not in ("bootstrap", None):
        raise ValueError(f"average_precision: ci must be 'bootstrap' or None, got {ci!r}")
    check_confidence(confidence)
    y_b, p_f = check_binary_scores(y, p)
    pos, neg = _split_classes(y_b, p_f)
    order, y_sorted, last = _sorted_for_ap(pos, neg)
    value = float(_weighted_average_precision(y_sorted, last, np.ones((1, len(p_f))))[0])
    if ci is None:
        return Estimate(value, None, "none", len(p_f), len(pos), confidence)
    aps = _bootstrap_stat(pos, neg, n_boot, seed, _bootstrap_aps)
    return Estimate(value, percentile_ci(aps, confidence), bootstrap_method(len(aps)), len(p_f), len(pos),
                    confidence, se=float(aps.std(ddof=1)) if len(aps) > 1 else None)


def _bootstrap_stat(pos: np.ndarray, neg: np.ndarray, n_boot: int, seed: Any, stat: Any) -> np.ndarray:
    """Statistic ``stat(pos, neg, idx_pos, idx_neg)`` of each stratified resample (``_stratified_index_blocks``)."""
    n_boot = check_n_boot(n_boot)
    out = np.empty(n_boot, dtype=np.float64)
    for start, idx_pos, idx_neg in _stratified_index_blocks(len(pos), len(neg), n_boot, seed):
        out[start:start + len(idx_pos)] = stat(pos, neg, idx_pos, idx_neg)
    return out


def paired_bootstrap_test(
    y: Any,
    p1: Any,
    p2: Any,
    metric: str = "auroc",
    n_boot: int = 500,
    seed: int | np.random.Generator | None = 0,
    confidence: float = 0.95,
    *,
    min_events: int | None = None,
    min_nonevents: int | None = None,
) -> PairedComparison:
    """Paired stratified bootstrap comparison of two models scored on the same patients.

    Each resample draws the same patients for both models (that is what makes it paired), so the
    correlation between the two scores is kept in the distribution of the difference.

    Parameters
    ----------
    y : array-like, shape [n]
        Binary labels, both classes present.
    p1, p2 : array-like, shape [n]
        Scores of model 1 and 2 for the same patients in the same order.
    metric : {"auroc", "auprc"}
        Metric compared.
    n_boot, seed, confidence
        Bootstrap settings.
    min_events, min_nonevents : int, optional
        Apply the small-sample rule (``riskfm.evaluate.guards.estimable``): with fewer events or
        non-events every number is NaN and ``not_estimable`` gives the reason. Not applied when
        both are None.

    Returns
    -------
    PairedComparison
    """
    stats = {"auroc": (_bootstrap_aurocs, _auc_from_classes),
             "auprc": (_bootstrap_aps, lambda pos, neg: float(_bootstrap_aps(
                 pos, neg, np.arange(len(pos))[None, :], np.arange(len(neg))[None, :])[0]))}
    if metric not in stats:
        raise ValueError(f"metric must be one of {tuple(stats)}, got {metric!r}")
    boot, point = stats[metric]
    y_b, a1 = check_binary_scores(y, p1, name_p="p1")
    _, a2 = check_binary_scores(y, p2, name_p="p2")
    n, n_pos = len(y_b), int(y_b.sum())
    if min_events is not None or min_nonevents is not None:
        reason = estimable(y_b, min_events=min_events, min_nonevents=min_nonevents)
        if reason is not None:
            return PairedComparison.missing(metric, reason, bootstrap_method(n_boot, "paired stratified"), n, n_pos,
                                            confidence, int(n_boot))
    pos1, neg1 = _split_classes(y_b, a1)
    pos2, neg2 = a2[y_b], a2[~y_b]
    n_boot = check_n_boot(n_boot, minimum=2)
    # The same resampled patients for both models: that is what makes the comparison paired.
    diffs = np.empty(n_boot)
    for start, idx_pos, idx_neg in _stratified_index_blocks(len(pos1), len(neg1), n_boot, seed):
        diffs[start:start + len(idx_pos)] = boot(pos1, neg1, idx_pos, idx_neg) - boot(pos2, neg2, idx_pos, idx_neg)
    v1, v2 = point(pos1, neg1), point(pos2, neg2)
    diff = v1 - v2
    sd = float(diffs.std(ddof=1))
    if sd <= 1e-15:
        z = 0.0 if abs(diff) < 1e-12 else math.copysign(math.inf, diff)
    else:
        z = diff / sd
    return PairedComparison(float(diff), percentile_ci(diffs, confidence), bootstrap_method(n_boot, "paired stratified"),
                            n, metric, float(v1), float(v2), float(z), float(2.0 * norm.sf(abs(z))), n_pos, n_boot,
                            confidence)
