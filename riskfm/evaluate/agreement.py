"""Agreement between a measurement and a reference: arrays in, small result objects out.

- :func:`bland_altman`: bias and 95% limits of agreement of ``predicted - reference``.
- :func:`cohen_kappa`: Cohen's kappa (unweighted, linear or quadratic) with a confidence interval.
- :func:`ks_test`: two-sample Kolmogorov-Smirnov test of two score distributions.
- :func:`diagnostic_at_cutoffs`: sensitivity, specificity, PPV, NPV and F1 of "score >= cut-off"
  with Wilson intervals (bootstrap for F1), at the calcium cut-offs 1, 10, 100 and 400 by default.
- :func:`dice_scores`: Dice per label and overall on label maps.

Every function checks its input and names the argument that is wrong. Values agree with
statsmodels, scipy and scikit-learn on the same inputs (tests/ct/calcium/test_agreement.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import ndtri

from riskfm.evaluate.risk_groups import wilson_interval

__all__ = [
    "BlandAltman",
    "KSResult",
    "Kappa",
    "bland_altman",
    "cohen_kappa",
    "dice_scores",
    "diagnostic_at_cutoffs",
    "ks_test",
]


def _paired(a: Any, b: Any, name_a: str, name_b: str) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(a, dtype=np.float64).ravel()
    y = np.asarray(b, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"{name_a} and {name_b} must have the same length, got {x.size} and {y.size}")
    if x.size == 0:
        raise ValueError(f"{name_a} and {name_b} are empty")
    for arr, name in ((x, name_a), (y, name_b)):
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} holds NaN or infinite values (position {int(np.flatnonzero(~np.isfinite(arr))[0])})")
    return x, y


def _check_confidence(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return float(confidence)


# ------------------------------------------------------------------------------- Bland-Altman
@dataclass(frozen=True)
class BlandAltman:
    """Bland-Altman agreement of ``predicted - reference``.

    Attributes
    ----------
    bias : float
        Mean difference (units of the scores).
    sd : float
        Standard deviation of the differences (ddof as requested, 1 by default).
    loa_low, loa_high : float
        Limits of agreement ``bias -+ z * sd`` (z = 1.96 for 95%).
    confidence : float
    n : int
    mean : np.ndarray
        Per-pair means ``(predicted + reference) / 2`` (the plot's x axis).
    diff : np.ndarray
        Per-pair differences (the plot's y axis).
    """

    bias: float
    sd: float
    loa_low: float
    loa_high: float
    confidence: float
    n: int
    mean: np.ndarray
    diff: np.ndarray

    def to_dict(self) -> dict[str, float]:
        d = asdict(self)
        d.pop("mean")
        d.pop("diff")
        return d

    def plot(self, path: str | None = None, *, title: str = "", units: str = ""):
        """Bland-Altman figure (see :func:`riskfm.plots.bland_altman.plot_bland_altman`)."""
        from riskfm.plots.bland_altman import plot_bland_altman

        return plot_bland_altman(self, path, title=title, units=units)


def bland_altman(reference: Any, predicted: Any, *, confidence: float = 0.95, ddof: int = 1) -> BlandAltman:
    """Bias and limits of agreement between paired measurements.

    Parameters
    ----------
    reference, predicted : array-like [N]
        Paired scores (e.g. reference and predicted Agatston per exam).
    confidence : float, default 0.95
        Coverage of the limits of agreement (z = 1.96 for 0.95).
    ddof : int, default 1
        Delta degrees of freedom of the SD (1: sample SD as in Bland & Altman 1986; statsmodels'
        ``mean_diff_plot`` uses 0).

    Returns
    -------
    BlandAltman
    """
    ref, pred = _paired(reference, predicted, "reference", "predicted")
    z = float(ndtri(0.5 + _check_confidence(confidence) / 2.0))
    if ref.size <= ddof:
        raise ValueError(f"bland_altman needs more than {ddof} pairs, got {ref.size}")
    diff = pred - ref
    bias = float(diff.mean())
    sd = float(diff.std(ddof=ddof))
    return BlandAltman(bias, sd, bias - z * sd, bias + z * sd, confidence, int(ref.size), (pred + ref) / 2.0, diff)


# ------------------------------------------------------------------------------- Cohen's kappa
@dataclass(frozen=True)
class Kappa:
    """Cohen's kappa with its interval.

    Attributes
    ----------
    value, ci_low, ci_high : float
    se : float
        Large-sample standard error (NaN for bootstrap intervals).
    weights : str or None
    method : str
        ``"asymptotic"`` (Fleiss, Cohen and Everitt 1969) or ``"bootstrap"``.
    n : int
    """

    value: float
    ci_low: float
    ci_high: float
    se: float
    weights: str | None
    method: str
    n: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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


def cohen_kappa(a: Any, b: Any, *, weights: str | None = None, confidence: float = 0.95,
                n_boot: int = 1000, seed: int = 0) -> Kappa:
    """Cohen's kappa between two categorical ratings (e.g. calcium buckets 0-4).

    Parameters
    ----------
    a, b : array-like of int [N]
        Ratings (category codes) of the same N items.
    weights : {None, "linear", "quadratic"}
        Unweighted kappa (the default, as in the calcium papers) or a weighted one.
    confidence : float, default 0.95
    n_boot : int, default 1000
        Bootstrap resamples for weighted kappa intervals.
    seed : int

    Returns
    -------
    Kappa
        Unweighted: the asymptotic interval ``kappa -+ z * se`` (clipped to [-1, 1]); weighted:
        percentile bootstrap.
    """
    x, y = _paired(a, b, "a", "b")
    if weights not in (None, "linear", "quadratic"):
        raise ValueError(f"weights must be None, 'linear' or 'quadratic', got {weights!r}")
    conf = _check_confidence(confidence)
    cats, codes = np.unique(np.concatenate([x, y]), return_inverse=True)
    ca, cb = codes[: x.size], codes[x.size:]
    k = cats.size
    table = np.zeros((k, k))
    np.add.at(table, (ca, cb), 1.0)
    kappa = _kappa_from_table(table, weights)
    z = float(ndtri(0.5 + conf / 2.0))
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
        return Kappa(kappa, low, high, se, None, "asymptotic", int(x.size))
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(int(n_boot)):
        idx = rng.integers(0, x.size, x.size)
        t = np.zeros((k, k))
        np.add.at(t, (ca[idx], cb[idx]), 1.0)
        boots.append(_kappa_from_table(t, weights))
    boots_arr = np.asarray(boots)
    boots_arr = boots_arr[np.isfinite(boots_arr)]
    lo, hi = ((float(np.quantile(boots_arr, (1 - conf) / 2)), float(np.quantile(boots_arr, (1 + conf) / 2)))
              if boots_arr.size else (float("nan"), float("nan")))
    return Kappa(kappa, lo, hi, float("nan"), weights, "bootstrap", int(x.size))


# ----------------------------------------------------------------------------- Kolmogorov-Smirnov
@dataclass(frozen=True)
class KSResult:
    """Two-sample Kolmogorov-Smirnov test: ``statistic`` (max CDF gap), ``pvalue``, sizes."""

    statistic: float
    pvalue: float
    n_a: int
    n_b: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def ks_test(a: Any, b: Any) -> KSResult:
    """Two-sided two-sample Kolmogorov-Smirnov test (scipy's exact / asymptotic p-value).

    Parameters
    ----------
    a, b : array-like of float
        Two samples (e.g. reference and predicted Agatston scores); lengths may differ.
    """
    x = np.asarray(a, dtype=np.float64).ravel()
    y = np.asarray(b, dtype=np.float64).ravel()
    for arr, name in ((x, "a"), (y, "b")):
        if arr.size == 0 or not np.all(np.isfinite(arr)):
            raise ValueError(f"ks_test: {name} must be a non-empty array of finite values")
    res = stats.ks_2samp(x, y)
    return KSResult(float(res.statistic), float(res.pvalue), int(x.size), int(y.size))


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
        Wilson intervals for the proportions; percentile bootstrap (``n_boot`` resamples) for F1.

    Returns
    -------
    pandas.DataFrame
        One row per cut-off: ``cutoff, tp, fp, tn, fn`` and for each of ``sensitivity,
        specificity, ppv, npv, f1`` the value and ``<metric>_low`` / ``<metric>_high``. A metric
        whose denominator is 0 is NaN.
    """
    ref, pred = _paired(reference, predicted, "reference", "predicted")
    conf = _check_confidence(confidence)
    rng = np.random.default_rng(seed)
    boot_idx = rng.integers(0, ref.size, size=(int(n_boot), ref.size))
    rows = []
    for c in cutoffs:
        r, p = ref >= c, pred >= c
        tp, fp = int(np.sum(r & p)), int(np.sum(~r & p))
        tn, fn = int(np.sum(~r & ~p)), int(np.sum(r & ~p))
        row: dict[str, float] = {"cutoff": float(c), "tp": tp, "fp": fp, "tn": tn, "fn": fn}
        for name, k, n in (("sensitivity", tp, tp + fn), ("specificity", tn, tn + fp),
                           ("ppv", tp, tp + fp), ("npv", tn, tn + fn)):
            if n == 0:
                row[name] = row[f"{name}_low"] = row[f"{name}_high"] = float("nan")
            else:
                lo, hi = wilson_interval(k, n, conf)
                row[name], row[f"{name}_low"], row[f"{name}_high"] = k / n, float(lo), float(hi)
        denom = 2 * tp + fp + fn
        row["f1"] = 2 * tp / denom if denom else float("nan")
        rb, pb = r[boot_idx], p[boot_idx]
        btp = np.sum(rb & pb, axis=1)
        bden = 2 * btp + np.sum(~rb & pb, axis=1) + np.sum(rb & ~pb, axis=1)
        f1b = np.divide(2.0 * btp, bden, out=np.full(bden.shape, np.nan), where=bden > 0)
        f1b = f1b[np.isfinite(f1b)]
        row["f1_low"], row["f1_high"] = ((float(np.quantile(f1b, (1 - conf) / 2)), float(np.quantile(f1b, (1 + conf) / 2)))
                                         if f1b.size else (float("nan"), float("nan")))
        rows.append(row)
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------- Dice
def dice_scores(predicted: Any, reference: Any, labels: Sequence[int] = (1, 2, 3, 4),
                names: Sequence[str] | None = None) -> dict[str, float]:
    """Dice per label and overall (any non-zero label vs background) on two label maps.

    Parameters
    ----------
    predicted, reference : array-like of int, same shape
        Label maps (0 background), e.g. artery calcium labels 1 LM, 2 LAD, 3 LCX, 4 RCA.
    labels : sequence of int
        Labels to report.
    names : sequence of str, optional
        Keys for the labels (default ``str(label)``).

    Returns
    -------
    dict
        ``{name: dice, ..., "overall": dice}``; a label absent from both maps gives NaN (there is
        nothing to overlap: averaging it as 1 or 0 would bias means over exams), as MONAI's
        ``compute_dice(ignore_empty=True)`` does when the reference is empty.
    """
    pred = np.asarray(predicted)
    ref = np.asarray(reference)
    if pred.shape != ref.shape:
        raise ValueError(f"predicted and reference label maps differ in shape: {pred.shape} vs {ref.shape}")
    keys = [str(v) for v in labels] if names is None else list(names)
    if len(keys) != len(labels):
        raise ValueError("names must have one entry per label")

    def dice(a: np.ndarray, b: np.ndarray) -> float:
        total = int(a.sum()) + int(b.sum())
        return 2.0 * int(np.sum(a & b)) / total if total else float("nan")

    out = {key: dice(pred == v, ref == v) for key, v in zip(keys, labels)}
    out["overall"] = dice(pred > 0, ref > 0)
    return out
