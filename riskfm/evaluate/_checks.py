"""Input checks shared by every module of ``riskfm.evaluate``.

Every statistic validates its arrays here, so that the same mistake gets the same message
wherever it is made, and the message names the argument that is wrong: lengths that differ,
labels that are not 0/1, NaN or infinite scores, an empty input, a confidence outside (0, 1), a
bootstrap size that is not a positive integer, masks of different shapes.

All checks return clean numpy arrays (1-D unless said otherwise) and raise ``ValueError``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import ndtri

__all__ = [
    "as_binary_1d",
    "as_finite_1d",
    "check_binary_scores",
    "check_confidence",
    "check_level_names",
    "check_masks",
    "check_n_boot",
    "check_paired",
    "check_risks",
    "check_same_length",
    "check_survival",
    "z_value",
]


def check_confidence(confidence: float) -> float:
    """``confidence`` as a float after checking that it lies in (0, 1)."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return float(confidence)


def z_value(confidence: float) -> float:
    """Two-sided standard-normal quantile of a coverage: 1.959964 for 0.95."""
    return float(ndtri(0.5 + check_confidence(confidence) / 2.0))


def check_n_boot(n_boot: Any, minimum: int = 1, name: str = "n_boot") -> int:
    """``n_boot`` as an int after checking it is an integer >= ``minimum``."""
    if int(n_boot) != n_boot or n_boot < minimum:
        what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ValueError(f"{name} must be {what}, got {n_boot!r}")
    return int(n_boot)


def _first_bad(bad: np.ndarray) -> str:
    return f"{int(bad.sum())} of {len(bad)} values are NaN or infinite (first at index {int(np.flatnonzero(bad)[0])})"


def as_finite_1d(x: Any, name: str) -> np.ndarray:
    """1-D float64 array of finite numbers (may be empty).

    Raises
    ------
    ValueError
        ``x`` is not 1-D, not numeric, or holds NaN or infinite values (the message names ``name``).
    """
    arr = np.asarray(x)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    try:
        arr = arr.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}") from exc
    bad = ~np.isfinite(arr)
    if bad.any():
        raise ValueError(f"{name} must be finite; {_first_bad(bad)}")
    return arr


def _binary_values(arr: np.ndarray, name: str) -> None:
    not_binary = (arr != 0) & (arr != 1)
    if not_binary.any():
        values = np.unique(arr[not_binary])[:5]
        raise ValueError(f"{name} must be binary 0/1; found other values {values.tolist()}")


def as_binary_1d(x: Any, name: str) -> np.ndarray:
    """1-D float64 array of 0.0 and 1.0 (may be empty); NaN is refused like any non-binary value."""
    arr = as_finite_1d(x, name)
    _binary_values(arr, name)
    return arr


def check_same_length(**arrays: Any) -> int:
    """Return the common length of the named arrays (0 when none are given).

    Raises
    ------
    ValueError
        Naming the arrays and their lengths when the lengths differ.
    """
    lengths = {k: len(v) for k, v in arrays.items()}
    if len(set(lengths.values())) > 1:
        names = list(lengths)
        listed = ", ".join(names[:-1]) + f" and {names[-1]}"
        raise ValueError(f"{listed} must have the same length, got "
                         + ", ".join(str(v) for v in lengths.values()))
    return next(iter(lengths.values()), 0)


def check_binary_scores(y: Any, p: Any, *, name_y: str = "y", name_p: str = "p") -> tuple[np.ndarray, np.ndarray]:
    """Validate labels and scores and return them as 1-D arrays (bool labels, float64 scores).

    Parameters
    ----------
    y : array-like, shape [n]
        Binary labels: 0/1 (int or float) or bool. NaN (unknown) is refused: drop those rows first.
    p : array-like, shape [n]
        Finite scores (predicted risk in [0, 1], or logits).
    name_y, name_p : str
        Names used in error messages.

    Returns
    -------
    y : np.ndarray of bool, shape [n]
    p : np.ndarray of float64, shape [n]

    Raises
    ------
    ValueError
        If the arrays are not 1-D, differ in length, are empty, ``p`` is not finite, or ``y`` holds
        anything other than 0 and 1. Both classes are *not* required here.
    """
    y_arr = np.asarray(y)
    p_arr = np.asarray(p)
    if y_arr.ndim != 1:
        raise ValueError(f"{name_y} must be 1-D, got shape {y_arr.shape}")
    if p_arr.ndim != 1:
        raise ValueError(f"{name_p} must be 1-D, got shape {p_arr.shape}")
    if len(y_arr) != len(p_arr):
        raise ValueError(f"{name_y} and {name_p} must have the same length, got {len(y_arr)} and {len(p_arr)}")
    if len(y_arr) == 0:
        raise ValueError(f"{name_y} and {name_p} are empty")
    p_arr = as_finite_1d(p_arr, name_p)
    if y_arr.dtype == bool:
        return y_arr, p_arr
    try:
        y_num = y_arr.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name_y} must be binary 0/1, got dtype {y_arr.dtype}") from exc
    if np.isnan(y_num).any():
        raise ValueError(
            f"{name_y} contains {int(np.isnan(y_num).sum())} NaN (unknown) labels; exclude those rows first"
        )
    _binary_values(y_num, name_y)
    return y_num == 1, p_arr


def check_risks(y: Any, p: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate binary outcomes and predicted risks of equal, non-zero length.

    Returns
    -------
    y, p : np.ndarray
        1-D arrays ``[n]``: the outcomes as float 0/1 and the predicted risks in [0, 1].

    Raises
    ------
    ValueError
        When the outcomes are not binary, the risks are not finite or outside [0, 1], the lengths
        differ or both are empty.
    """
    y_arr = as_binary_1d(y, "y")
    p_arr = as_finite_1d(p, "p")
    check_same_length(y=y_arr, p=p_arr)
    if len(p_arr) == 0:
        raise ValueError("y and p are empty")
    if p_arr.min() < 0.0 or p_arr.max() > 1.0:
        raise ValueError(f"p must be predicted risks in [0, 1]; found range [{p_arr.min():g}, {p_arr.max():g}]")
    return y_arr, p_arr


def check_paired(a: Any, b: Any, name_a: str, name_b: str) -> tuple[np.ndarray, np.ndarray]:
    """Two paired measurements (flattened to 1-D float64): same length, non-empty, finite."""
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


def check_survival(time_days: Any, event: Any, name: str = "") -> tuple[np.ndarray, np.ndarray]:
    """Follow-up in days (finite, >= 0, non-empty) and events (0/1) of equal length; events as bool."""
    t = as_finite_1d(time_days, f"{name}time_days")
    e = as_binary_1d(event, f"{name}event")
    if len(t) != len(e):
        raise ValueError(f"{name}time_days and event must have the same length, got {len(t)} and {len(e)}")
    if len(t) == 0:
        raise ValueError(f"{name}time_days is empty")
    if (t < 0).any():
        raise ValueError(f"{name}time_days must be >= 0; {int((t < 0).sum())} negative values")
    return t, e.astype(bool)


def check_masks(pred: Any, ref: Any, name: str = "") -> tuple[np.ndarray, np.ndarray]:
    """Two masks as bool arrays (nonzero = foreground) of the same shape."""
    p, g = np.asarray(pred) > 0, np.asarray(ref) > 0
    if p.shape != g.shape:
        raise ValueError(f"{name}: prediction shape {p.shape} differs from reference shape {g.shape}")
    return p, g


def check_level_names(levels: Any, name: str) -> None:
    """Refuse subgroup levels that print the same, such as ``1`` and ``"1"``.

    Tables, figures and ``metrics.json`` name a level by its text, so two such levels would
    show as two rows with one name. ``levels`` are the attribute's levels; ``name`` (the
    attribute) goes into the error.
    """
    seen: dict[str, Any] = {}
    for level in levels:
        text = str(level)
        if text in seen:
            raise ValueError(f"{name}: levels {seen[text]!r} and {level!r} both print as {text!r}; "
                             "give the column one type")
        seen[text] = level
