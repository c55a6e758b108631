"""Clinical categories of an Agatston score: CAC-DRS and the five risk buckets.

Agatston scores are real numbers here (a slice increment other than 3 mm scales them), while the
published categories are written for integers (``1-99``, ``100-299``). riskfm closes the integer
ranges into half-open real intervals so that every score falls into exactly one category and an
integer score falls where the published table puts it:

============  =================  ==========================
category      published          riskfm (real-valued score)
============  =================  ==========================
CAC-DRS 0     0                  score == 0
CAC-DRS 1     1-99               0 < score < 100
CAC-DRS 2     100-299            100 <= score < 300
CAC-DRS 3     >= 300             score >= 300
bucket I      0                  score == 0
bucket II     1-10               0 < score <= 10
bucket III    11-100             10 < score <= 100
bucket IV     101-400            100 < score <= 400
bucket V      > 400              score > 400
============  =================  ==========================
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["BUCKET_NAMES", "CAC_DRS_NAMES", "agatston_bucket", "cac_drs_category"]

#: Display names of the five buckets, index 0..4.
BUCKET_NAMES: tuple[str, ...] = ("0", "1-10", "11-100", "101-400", ">400")
#: Display names of the CAC-DRS Agatston categories, index 0..3.
CAC_DRS_NAMES: tuple[str, ...] = ("0", "1-99", "100-299", ">=300")


def _scores(score: Any, name: str) -> np.ndarray:
    arr = np.asarray(score, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: Agatston scores must be finite, got non-finite values")
    if np.any(arr < 0):
        raise ValueError(f"{name}: Agatston scores cannot be negative (min {arr.min():g})")
    return arr


def agatston_bucket(score: Any) -> np.ndarray | int:
    """Bucket index 0-4 (I-V: 0, 1-10, 11-100, 101-400, >400) of Agatston scores.

    Parameters
    ----------
    score : float or array-like of float
        Agatston scores (unitless, >= 0).

    Returns
    -------
    int or np.ndarray of int
        Index into :data:`BUCKET_NAMES`; a scalar in, a Python int out.

    Examples
    --------
    >>> agatston_bucket([0, 10, 10.5, 100, 401]).tolist()
    [0, 1, 2, 2, 4]
    """
    arr = _scores(score, "agatston_bucket")
    out = np.where(arr > 0, 1 + np.searchsorted([10.0, 100.0, 400.0], arr, side="left"), 0)
    return int(out) if out.ndim == 0 else out.astype(np.int64)


def cac_drs_category(score: Any) -> np.ndarray | int:
    """CAC-DRS Agatston category 0-3 (0, 1-99, 100-299, >=300) of Agatston scores.

    Parameters
    ----------
    score : float or array-like of float
        Agatston scores (unitless, >= 0).

    Returns
    -------
    int or np.ndarray of int
        Index into :data:`CAC_DRS_NAMES`; a scalar in, a Python int out.

    Examples
    --------
    >>> cac_drs_category([0, 99.9, 100, 300]).tolist()
    [0, 1, 2, 3]
    """
    arr = _scores(score, "cac_drs_category")
    out = np.where(arr > 0, 1 + np.searchsorted([100.0, 300.0], arr, side="right"), 0)
    return int(out) if out.ndim == 0 else out.astype(np.int64)
