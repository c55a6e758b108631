"""Agreement between a measurement and a reference: arrays in, small result objects out.

- :func:`bland_altman`: bias (with its t interval) and 95% limits of agreement of
  ``predicted - reference``.
- :func:`cohen_kappa`: Cohen's kappa (unweighted, linear or quadratic) with a confidence interval.
- :func:`ks_test`: two-sample Kolmogorov-Smirnov test of two score distributions.
- :func:`diagnostic_at_cutoffs`: sensitivity, specificity, PPV, NPV and F1 of "score >= cut-off"
  with Wilson intervals (bootstrap for F1), at the calcium cut-offs 1, 10, 100 and 400 by default.

Dice and the other segmentation overlaps live in :mod:`riskfm.evaluate.segmentation`.

Every function checks its input (``riskfm.evaluate._checks``) and names the argument that is
wrong. Values agree with statsmodels, scipy and scikit-learn on the same inputs
(tests/ct/calcium/test_agreement.py). Results follow ``riskfm.evaluate.results``: ``value``,
``ci`` = (low, high), ``method``, ``n``, ``to_dict()``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy import stats

from riskfm.evaluate._checks import as_finite_1d, check_confidence, check_n_boot, check_paired, z_value
from riskfm.evaluate.results import Result, _save, bootstrap_method, make_ci, percentile_ci
from riskfm.evaluate.risk_groups import wilson_interval

__all__ = [
    "BlandAltman",
    "KSResult",
    "Kappa",
    "bland_altman",
    "cohen_kappa",
    "diagnostic_at_cutoffs",
    "kappa_value",
    "ks_test",
]


# ------------------------------------------------------------------------------- Bland-Altman
@dataclass(frozen=True)
class BlandAltman(Result):
    """Bland-Altman agreement of ``predicted - reference``.

    Attributes
    ----------
    value : float
        The bias: mean difference (units of the scores).
    ci : (float, float)
        Its interval ``bias -+ t_{n-1} * SD / sqrt(n)`` (SD with ddof 1; Bland & Altman 1986),
        None with fewer than 2 pairs.
    method : str
        ``"t interval of the mean difference"``.
    n : int
        Pairs.
    sd : float
        Standard deviation of the differences (ddof as requested, 1 by default).
    loa : (float, float)
        Limits of agreement ``bias -+ z * sd`` (z = 1.96 for 95%); tables spell them ``loa_low``,
        ``loa_high``.
    confidence : float
    mean : np.ndarray
        Per-pair means ``(predicted + reference) / 2`` (the plot's x axis; not in ``to_dict``).
    diff : np.ndarray
        Per-pair differences (the plot's y axis; not in ``to_dict``).
    """

    value: float
    ci: tuple[float, float] | None
    method: str
    n: int
    sd: float
    loa: tuple[float, float]
    confidence: float
    mean: np.ndarray
    diff: np.ndarray
    _not_in_dict: ClassVar[tuple[str, ...]] = ("mean", "diff")

    @property
    def bias(self) -> float:
        """The mean difference, ``value``."""
        return self.value

    def plot(self, path: Any = None, *, title: str = "", units: str = ""):
        """Bland-Altman figure (:func:`riskfm.plots.bland_altman.plot_bland_altman`); saved to ``path`` when given."""
        from riskfm.plots.bland_altman import plot_bland_altman

        return _save(plot_bland_altman(self, title=title, units=units), path)


def bland_altman(reference: Any, predicted: Any, *, confidence: float = 0.95, ddof: int = 1) -> BlandAltman:
    """Bias and limits of agreement between paired measurements.

    Parameters
    ----------
    reference, predicted : array-like [N]
        Paired scores (e.g. reference and predicted Agatston per exam).
    confidence : float, default 0.95
        Coverage of the limits of agreement (z = 1.96 for 0.95) and of the bias interval.
    ddof : int, default 1
        Delta degrees of freedom of the SD of the limits (1: sample SD as in Bland & Altman 1986;
        statsmodels' ``mean_diff_plot`` uses 0).

    Returns
    -------
    BlandAltman
    """
    ref, pred = check_paired(reference, predicted, "reference", "predicted")
    z = z_value(confidence)
    if ref.size <= ddof:
        raise ValueError(f"bland_altman needs more than {ddof} pairs, got {ref.size}")
    diff = pred - ref
    bias = float(diff.mean())
    sd = float(diff.std(ddof=ddof))
    ci = None
    if ref.size > 1:
        half = float(stats.t.ppf(0.5 + confidence / 2.0, ref.size - 1)) * float(diff.std(ddof=1)) / math.sqrt(ref.size)
        ci = (bias - half, bias + half)
    return BlandAltman(bias, ci, "t interval of the mean difference", int(ref.size), sd,
                       (bias - z * sd, bias + z * sd), confidence, (pred + ref) / 2.0, diff)


# ------------------------------------------------------------------------------- Cohen's kappa
@dataclass(frozen=True)
class Kappa(Result):
    """Cohen's kappa with its interval.

    Attributes
    ----------
    value : float
        Kappa (NaN when both raters used one single category).
    ci : (float, float) or None
        Interval: asymptotic Wald (clipped to [-1, 1]) or percentile bootstrap.
    method : str
        ``"asymptotic"`` (Fleiss, Cohen and Everitt 1969) or ``"bootstrap (<n_boot> resamples)"``.
    n : int
        Rated items.
    se : float or None
        Large-sample standard error (None for bootstrap intervals).
    weights : str or None
        None (unweighted), ``"linear"`` or ``"quadratic"``.
    confidence : float
    """

    value: float
    ci: tuple[float, float] | None
    method: str
    n: int
    se: float | None
    weights: str | None
    confidence: float = 0.95

    def __post_init__(self) -> None:
        object.__setattr__(self, "ci", None if self.ci is None else make_ci(*self.ci))


def _scale(x: np.ndarray, y: np.ndarray, weights: str | None, categories: Sequence | None) -> np.ndarray:
    """Return the ordered categories whose positions give weighted kappa's distances.

    Weighted kappa penalises a disagreement by how many steps apart the two ratings are on the
    rating SCALE, so a category nobody used still counts as a step: with calcium buckets 0-4 and
    bucket 3 unused, 2 vs 4 is two steps, not one (scikit-learn's default, the categories seen,
    would make it one and overstate agreement). Integer codes fill the integer range between the
    smallest and largest rating; fractional codes need ``categories`` for weighted kappa, as does a
    scale whose order is not the codes' numeric order (given in order, e.g. ``[2, 0, 1]``).
    Unweighted kappa does not depend on unused categories.
    """
    seen = np.unique(np.concatenate([x, y]))
    if categories is not None:
        cats = np.asarray(list(categories))
        if cats.ndim != 1 or cats.size == 0:
            raise ValueError(f"categories must be a non-empty 1-D sequence, got {categories!r}")
        if np.unique(cats).size != cats.size:
            raise ValueError(f"categories must not repeat a category, got {cats.tolist()}")
        unknown = [v for v in seen.tolist() if v not in cats.tolist()]
        if unknown:
            raise ValueError(f"ratings {unknown} are not among categories {cats.tolist()}")
        return cats
    if weights is None:
        return seen
    if np.all(seen == np.round(seen)):  # ratings arrive as float64 (check_paired): whole numbers
        return np.arange(int(seen.min()), int(seen.max()) + 1)
    raise ValueError(f"weighted kappa ({weights}) needs the order of the categories: pass "
                     f"categories=[...] (ratings seen: {seen.tolist()})")


def _contingency(x: np.ndarray, y: np.ndarray, cats: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Category codes of two ratings as positions in ``cats``: (codes a, codes b, k)."""
    order = np.argsort(cats, kind="stable")
    codes = order[np.searchsorted(cats, np.concatenate([x, y]), sorter=order)]
    return codes[: x.size], codes[x.size:], cats.size


def _table(ca: np.ndarray, cb: np.ndarray, k: int) -> np.ndarray:
    table = np.zeros((k, k))
    np.add.at(table, (ca, cb), 1.0)
    return table


def _kappa_from_table(table: np.ndarray, weights: str | None) -> float:
    n = table.sum()
    p = table / n
    row, col = p.sum(1), p.sum(0)
    k = table.shape[0]
    i, j = np.indices((k, k))
    if weights is None:
        w = (i != j).astype(float)
    elif weights == "linear":
        w = np.abs(i - j).astype(float)
    else:
        w = ((i - j) ** 2).astype(float)
    expected = np.outer(row, col)
    denom = (w * expected).sum()
    if denom == 0:
        return float("nan")  # both raters used one single category: kappa undefined
    return float(1.0 - (w * p).sum() / denom)


def _check_weights(weights: str | None) -> None:
    if weights not in (None, "linear", "quadratic"):
        raise ValueError(f"weights must be None, 'linear' or 'quadratic', got {weights!r}")


def kappa_value(a: Any, b: Any, weights: str | None = None, categories: Sequence | None = None) -> float:
    """Cohen's kappa of two ratings [N], without an interval (see :func:`cohen_kappa`)."""
    x, y = check_paired(a, b, "a", "b")
    _check_weights(weights)
    ca, cb, k = _contingency(x, y, _scale(x, y, weights, categories))
    return _kappa_from_table(_table(ca, cb, k), weights)


def cohen_kappa(a: Any, b: Any, *, weights: str | None = None, categories: Sequence | None = None,
                confidence: float = 0.95, n_boot: int = 1000, seed: int = 0) -> Kappa:
    """Cohen's kappa between two categorical ratings (e.g. calcium buckets 0-4).

    Parameters
    ----------
    a, b : array-like of int [N]
        Ratings (category codes) of the same N items.
    weights : {None, "linear", "quadratic"}
        Unweighted kappa (the default, as in the calcium papers) or a weighted one.
    categories : sequence, optional
        Every category of the rating scale, in order (e.g. ``range(5)`` for calcium buckets).
        Weighted kappa measures a disagreement in steps along this scale, so a category no rater
        used still counts. Default: integer ratings span the integers from the smallest to the
        largest rating; non-integer ratings must give it for weighted kappa. Ratings outside it
        are refused.
    confidence : float, default 0.95
    n_boot : int, default 1000
        Bootstrap resamples for weighted kappa intervals.
    seed : int

    Returns
    -------
    Kappa
        Unweighted: the asymptotic interval ``kappa -+ z * se`` (clipped to [-1, 1]); weighted:
        percentile bootstrap over items (resamples where kappa is undefined are left out).
    """
    x, y = check_paired(a, b, "a", "b")
    _check_weights(weights)
    conf = check_confidence(confidence)
    ca, cb, k = _contingency(x, y, _scale(x, y, weights, categories))
    table = _table(ca, cb, k)
    kappa = _kappa_from_table(table, weights)
    z = z_value(conf)
    if weights is None and np.isfinite(kappa):
        n = table.sum()
        p = table / n
        row, col = p.sum(1), p.sum(0)
        pe = float((row * col).sum())
        # Fleiss, Cohen & Everitt (1969) large-sample variance of kappa.
        term_a = float((np.diag(p) * (1.0 - (row + col) * (1.0 - kappa)) ** 2).sum())
        off = p * (col[:, None] + row[None, :]) ** 2
        np.fill_diagonal(off, 0.0)
        term_b = (1.0 - kappa) ** 2 * float(off.sum())
        term_c = (kappa - pe * (1.0 - kappa)) ** 2
        se = float(np.sqrt(max(term_a + term_b - term_c, 0.0) / ((1.0 - pe) ** 2 * n)))
        # Wald interval (as statsmodels), clipped to kappa's range: near-perfect agreement on few
        # exams otherwise reports an upper limit above 1.
        low, high = max(kappa - z * se, -1.0), min(kappa + z * se, 1.0)
        return Kappa(kappa, (low, high), "asymptotic", int(x.size), se, None, conf)
    n_boot = check_n_boot(n_boot)
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(n_boot):
        idx = rng.integers(0, x.size, x.size)
        boots.append(_kappa_from_table(_table(ca[idx], cb[idx], k), weights))
    return Kappa(kappa, percentile_ci(boots, conf), bootstrap_method(n_boot, ""), int(x.size), None, weights, conf)


# ----------------------------------------------------------------------------- Kolmogorov-Smirnov
@dataclass(frozen=True)
class KSResult(Result):
    """Two-sample Kolmogorov-Smirnov test.

    Attributes
    ----------
    value : float
        The statistic: the largest gap between the two empirical CDFs.
    ci : None
        No interval.
    method : str
        ``"two-sample Kolmogorov-Smirnov (scipy)"``.
    n : int
        Both samples together.
    p_value : float
        Two-sided p-value (scipy's exact or asymptotic).
    n_a, n_b : int
        Sample sizes.
    """

    value: float
    ci: tuple[float, float] | None
    method: str
    n: int
    p_value: float
    n_a: int
    n_b: int

    @property
    def statistic(self) -> float:
        """The KS statistic, ``value``."""
        return self.value


def ks_test(a: Any, b: Any) -> KSResult:
    """Two-sided two-sample Kolmogorov-Smirnov test (scipy's exact / asymptotic p-value).

    Parameters
    ----------
    a, b : array-like of float
        Two samples (e.g. reference and predicted Agatston scores); lengths may differ.

    Returns
    -------
    KSResult
    """
    x, y = as_finite_1d(np.ravel(a), "a"), as_finite_1d(np.ravel(b), "b")
    for arr, name in ((x, "a"), (y, "b")):
        if arr.size == 0:
            raise ValueError(f"ks_test: {name} is empty")
    res = stats.ks_2samp(x, y)
    return KSResult(float(res.statistic), None, "two-sample Kolmogorov-Smirnov (scipy)", int(x.size + y.size),
                    float(res.pvalue), int(x.size), int(y.size))


# --------------------------------------------------------------------- accuracy at cut-offs
def diagnostic_at_cutoffs(reference: Any, predicted: Any, cutoffs: Sequence[float] = (1, 10, 100, 400), *,
                          confidence: float = 0.95, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Sensitivity, specificity, PPV, NPV and F1 of ``predicted >= cut-off`` against the reference.

    Parameters
    ----------
    reference, predicted : array-like of float [N]
        Reference and predicted scores (e.g. Agatston).
    cutoffs : sequence of float, default (1, 10, 100, 400)
        An exam is positive at cut-off c when its score is ``>= c``.
    confidence : float, default 0.95
        Wilson intervals for the proportions; percentile bootstrap (``n_boot`` resamples of the
        exams) for F1.

    Returns
    -------
    pandas.DataFrame
        One row per cut-off: ``cutoff, tp, fp, tn, fn`` and for each of ``sensitivity,
        specificity, ppv, npv, f1`` the value and ``<metric>_ci_low`` / ``<metric>_ci_high``. A
        metric whose denominator is 0 is NaN.
    """
    ref, pred = check_paired(reference, predicted, "reference", "predicted")
    conf = check_confidence(confidence)
    rng = np.random.default_rng(seed)
    boot_idx = rng.integers(0, ref.size, size=(check_n_boot(n_boot), ref.size))
    rows = []
    nan = float("nan")
    for c in cutoffs:
        r, p = ref >= c, pred >= c
        tp, fp = int(np.sum(r & p)), int(np.sum(~r & p))
        tn, fn = int(np.sum(~r & ~p)), int(np.sum(r & ~p))
        row: dict[str, float] = {"cutoff": float(c), "tp": tp, "fp": fp, "tn": tn, "fn": fn}
        for name, k, n in (("sensitivity", tp, tp + fn), ("specificity", tn, tn + fp),
                           ("ppv", tp, tp + fp), ("npv", tn, tn + fn)):
            if n == 0:
                row[name] = row[f"{name}_ci_low"] = row[f"{name}_ci_high"] = nan
            else:
                lo, hi = wilson_interval(k, n, conf)
                row[name], row[f"{name}_ci_low"], row[f"{name}_ci_high"] = k / n, float(lo), float(hi)
        denom = 2 * tp + fp + fn
        row["f1"] = 2 * tp / denom if denom else nan
        rb, pb = r[boot_idx], p[boot_idx]
        btp = np.sum(rb & pb, axis=1)
        bden = 2 * btp + np.sum(~rb & pb, axis=1) + np.sum(rb & ~pb, axis=1)
        f1b = np.divide(2.0 * btp, bden, out=np.full(bden.shape, np.nan), where=bden > 0)
        row["f1_ci_low"], row["f1_ci_high"] = percentile_ci(f1b, conf) or (nan, nan)
        rows.append(row)
    return pd.DataFrame(rows)
