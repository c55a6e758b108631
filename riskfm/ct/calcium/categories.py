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


def _category(score: Any, name: str, edges: list[float], side: str) -> np.ndarray | int:
    """Category 0 for a score of 0, else ``1 + searchsorted(edges, score, side)``; checks the scores.

    Parameters
    ----------
    score : float or array-like of float
        Agatston scores; finite and >= 0, or ``ValueError`` (naming ``name``).
    name : str
        The public function, for messages.
    edges : list of float
        Upper edges of categories 1, 2, ...; ``side="left"`` closes them on the right
        (``(a, b]``), ``side="right"`` on the left (``[a, b)``).
    side : {"left", "right"}

    Returns
    -------
    int or np.ndarray of int64
        A Python int for a scalar score, else an array of the score's shape.
    """
    arr = np.asarray(score, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: Agatston scores must be finite, got non-finite values")
    if np.any(arr < 0):
        raise ValueError(f"{name}: Agatston scores cannot be negative (min {arr.min():g})")
    out = np.where(arr > 0, 1 + np.searchsorted(edges, arr, side=side), 0)
    return int(out) if out.ndim == 0 else out.astype(np.int64)


def agatston_bucket(score: Any) -> np.ndarray | int:
    """Bucket index 0-4 (I-V: 0, 1-10, 11-100, 101-400, >400) of Agatston scores.

    Bucket I is exactly 0; II-V are ``(0, 10]``, ``(10, 100]``, ``(100, 400]`` and above 400, so
    any positive score (0.4 after the slice-increment factor, say) is at least bucket II.

    Parameters
    ----------
    score : float or array-like of float
        Agatston scores (unitless, finite, >= 0), any shape.

    Returns
    -------
    int or np.ndarray of int64
        Index into :data:`BUCKET_NAMES`, same shape as ``score``; a scalar in, a Python int out.

    Raises
    ------
    ValueError
        For a negative or non-finite score.

    Examples
    --------
    >>> agatston_bucket([0, 10, 10.5, 100, 401]).tolist()
    [0, 1, 2, 2, 4]
    """
    return _category(score, "agatston_bucket", [10.0, 100.0, 400.0], "left")


def cac_drs_category(score: Any) -> np.ndarray | int:
    """CAC-DRS Agatston category 0-3 (0, 1-99, 100-299, >=300) of Agatston scores.

    Category 0 is exactly 0; 1-3 are ``(0, 100)``, ``[100, 300)`` and 300 or more: unlike the
    buckets, a boundary score opens the higher category.

    Parameters
    ----------
    score : float or array-like of float
        Agatston scores (unitless, >= 0, no NaN or inf); a scalar or an array of any shape.

    Returns
    -------
    int or np.ndarray of int64
        Index into :data:`CAC_DRS_NAMES` per score (a Python int when ``score`` is a scalar).

    Raises
    ------
    ValueError
        If any score is negative, NaN or infinite (a category would be meaningless).

    Examples
    --------
    >>> cac_drs_category([0, 99.9, 100, 300]).tolist()
    [0, 1, 2, 3]
    """
    return _category(score, "cac_drs_category", [100.0, 300.0], "right")
