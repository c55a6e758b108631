"""Every split riskfm makes: patient-level splits of a cohort table, and index splits of case lists.

Patient-level splits (stratified random, k-fold, by site, training subsampling) take the cohort
table (one row per patient) and return patient ids, so a patient can never sit on both sides of a
split. Stratification uses a label key built from the binary targets that are known (e.g. "any
severe stenosis" x MACE), so rare outcomes are spread evenly.

Index splits take a number of cases (the CT recipes' lists of exams or loaded CTs) and return
positions into that list: :func:`split_indices` (one random train / test split, the CORA
recipes), :func:`nested_subsets` (growing training subsets, each inside the next: data-efficiency
curves) and :func:`low_data_folds` (K-fold cross-validation with nested, subsampled training
folds, the calcium low-data protocol). The same seed always gives the same split.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold, train_test_split

from riskfm.data.manifest import BINARY_TARGETS, STENOSIS_TARGETS

__all__ = ["FoldSplit", "kfold_splits", "low_data_folds", "make_splits", "nested_subsets", "site_split",
           "split_indices", "stratification_key", "stratified_split", "subsample"]


def stratification_key(df: pd.DataFrame, targets: Sequence[str] = BINARY_TARGETS) -> np.ndarray:
    """Return a per-patient string key from the binary targets, used to stratify splits.

    Stenosis targets are collapsed to "any severe stenosis" so strata stay populated; unknown
    labels form their own level. Strata with fewer than ``2`` members are merged into "rare".
    """
    parts = []
    sten = [t for t in targets if t in STENOSIS_TARGETS and t in df]
    if sten:
        vals = df[sten].to_numpy(dtype=float)
        anyp = np.where(np.nan_to_num(vals, nan=0).max(axis=1) > 0, "1", np.where(np.isnan(vals).all(axis=1), "u", "0"))
        parts.append(anyp)
    for t in targets:
        if t not in STENOSIS_TARGETS and t in df:
            v = df[t].to_numpy(dtype=float)
            parts.append(np.where(np.isnan(v), "u", np.where(v > 0, "1", "0")))
    if not parts:
        return np.zeros(len(df), dtype="U1")
    key = np.array(["".join(p) for p in zip(*parts)])
    uniq, counts = np.unique(key, return_counts=True)
    rare = set(uniq[counts < 2])
    return np.array(["rare" if k in rare else k for k in key])


def _stratify_or_none(key: np.ndarray) -> np.ndarray | None:
    _, counts = np.unique(key, return_counts=True)
    return key if counts.min() >= 2 and len(counts) > 1 else None


def stratified_split(
    df: pd.DataFrame, test_fraction: float = 0.2, seed: int = 0, targets: Sequence[str] = BINARY_TARGETS
) -> tuple[np.ndarray, np.ndarray]:
    """Random patient-level split stratified on the targets; returns (train_ids, test_ids)."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    ids = df["patient_id"].to_numpy()
    if len(ids) < 2:
        raise ValueError(f"need at least 2 patients to split, got {len(ids)}")
    key = stratification_key(df, targets)
    tr, te = train_test_split(ids, test_size=test_fraction, random_state=seed,
                              stratify=_stratify_or_none(key))
    return np.sort(tr), np.sort(te)


def kfold_splits(
    df: pd.DataFrame, k: int = 5, seed: int = 0, targets: Sequence[str] = BINARY_TARGETS
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified k-fold at patient level: a list of (train_ids, test_ids), test folds disjoint and covering."""
    if k < 2:
        raise ValueError(f"k must be >= 2, got {k}")
    ids = df["patient_id"].to_numpy()
    key = stratification_key(df, targets)
    _, counts = np.unique(key, return_counts=True)
    if counts.min() < k:
        key = np.zeros(len(ids))  # a stratum smaller than k cannot be spread over k folds
    skf = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    return [(np.sort(ids[tr]), np.sort(ids[te])) for tr, te in skf.split(ids, key)]


def site_split(df: pd.DataFrame, external_sites: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Split patients into internal (development) and external validation by site.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per patient, columns ``patient_id`` and ``site``.
    external_sites : sequence of str
        Sites held out for external validation; each must occur in ``df["site"]``.

    Returns
    -------
    internal_ids, external_ids : np.ndarray
        Sorted patient ids of the other sites and of ``external_sites``.

    Raises
    ------
    ValueError
        When an external site is not in the cohort.
    """
    sites = set(df["site"].astype(str))
    unknown = [s for s in external_sites if s not in sites]
    if unknown:
        raise ValueError(f"external site(s) {unknown} not in the cohort; sites present: {sorted(sites)}")
    ext = df["site"].astype(str).isin(set(external_sites)).to_numpy()
    ids = df["patient_id"].to_numpy()
    return np.sort(ids[~ext]), np.sort(ids[ext])


def subsample(
    df: pd.DataFrame, ids: Sequence[str], fraction: float, seed: int = 0, targets: Sequence[str] = BINARY_TARGETS
) -> np.ndarray:
    """Keep ``fraction`` (e.g. 1.0, 0.75, 0.5, 0.25) of the training patients ``ids``, stratified.

    Used for low-data protocols: the test part is never touched. Nested for a fixed seed is not
    guaranteed; each fraction is an independent stratified draw.
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    ids = np.asarray(ids)
    if fraction == 1.0:
        return np.sort(ids)
    sub = df[df["patient_id"].isin(set(ids))]
    key = stratification_key(sub, targets)
    keep, _ = train_test_split(sub["patient_id"].to_numpy(), train_size=fraction, random_state=seed,
                               stratify=_stratify_or_none(key))
    return np.sort(keep)


def make_splits(
    df: pd.DataFrame,
    *,
    external_sites: Sequence[str] = (),
    test_fraction: float = 0.2,
    val_fraction: float = 0.15,
    train_fraction: float = 1.0,
    seed: int = 0,
    targets: Sequence[str] = BINARY_TARGETS,
) -> dict[str, np.ndarray]:
    """Split by the standard protocol: external sites held out, internal split into train / val / test.

    Returns ``{"train", "val", "test"[, "external"]}`` -> patient ids. ``val`` (for early stopping)
    is carved from the development part; ``train_fraction`` subsamples the training part only.
    """
    internal = df
    out: dict[str, np.ndarray] = {}
    if external_sites:
        int_ids, ext_ids = site_split(df, external_sites)
        internal = df[df["patient_id"].isin(set(int_ids))]
        out["external"] = ext_ids
    dev, test = stratified_split(internal, test_fraction, seed, targets)
    dev_df = internal[internal["patient_id"].isin(set(dev))]
    train, val = stratified_split(dev_df, val_fraction, seed + 1, targets)
    out["train"] = subsample(dev_df, train, train_fraction, seed + 2, targets)
    out["val"], out["test"] = val, test
    return {k: out[k] for k in ("train", "val", "test", "external") if k in out}


# ------------------------------------------------------------------------------ index splits


def split_indices(n: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random train / test split of ``n`` cases by position.

    Parameters
    ----------
    n : int
        Number of cases (>= 2).
    test_fraction : float in (0, 1)
        Share of the cases held out; the test part holds ``round(n * test_fraction)`` cases,
        at least 1 and at most ``n - 1``.
    seed : int
        Seed of the permutation (``numpy.random.default_rng([seed, 99])``).

    Returns
    -------
    train, test : np.ndarray of int, shapes [n - n_test] and [n_test]
        Sorted positions in ``range(n)``; disjoint, together covering every position.

    Raises
    ------
    ValueError
        For ``test_fraction`` outside (0, 1) or ``n < 2``.

    Examples
    --------
    >>> train, test = split_indices(10, 0.3, seed=0)
    >>> test.tolist()
    [0, 5, 8]
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    if n < 2:
        raise ValueError(f"need at least 2 cases to split, got {n}")
    order = np.random.default_rng([seed, 99]).permutation(n)
    n_test = min(n - 1, max(1, int(round(n * test_fraction))))
    return np.sort(order[n_test:]), np.sort(order[:n_test])


def nested_subsets(indices: Sequence[int] | np.ndarray, sizes: Sequence[int], seed: int) -> dict[int, np.ndarray]:
    """Training subsets of growing size, each inside the next: the first ``n`` of one seeded shuffle.

    Parameters
    ----------
    indices : sequence of int
        The positions to draw from (e.g. the training part of :func:`split_indices`).
    sizes : sequence of int
        Subset sizes; sizes above ``len(indices)`` are capped at it, non-positive sizes are
        dropped, and repeated sizes collapse into one.
    seed : int
        Seed of the shuffle (``numpy.random.default_rng([seed, 7])``).

    Returns
    -------
    dict of int -> np.ndarray of int
        Size ``n`` -> the first ``n`` positions of the shuffle (in shuffled order, not sorted),
        sizes ascending; a smaller subset is always a prefix of a larger one.

    Raises
    ------
    ValueError
        When no size is positive.

    Examples
    --------
    >>> {n: s.tolist() for n, s in nested_subsets([1, 2, 3, 4, 6, 7, 9], (2, 50, 5), seed=0).items()}
    {2: [3, 7], 5: [3, 7, 6, 1, 9], 7: [3, 7, 6, 1, 9, 4, 2]}
    """
    order = np.random.default_rng([seed, 7]).permutation(np.asarray(indices))
    kept = sorted({min(int(n), len(order)) for n in sizes if int(n) > 0})
    if not kept:
        raise ValueError(f"sizes must hold positive counts, got {sizes!r}")
    return {n: order[:n] for n in kept}


@dataclass(frozen=True)
class FoldSplit:
    """One (fold, fraction) cell of :func:`low_data_folds`.

    Attributes
    ----------
    fold : int
        Index of the test fold, ``0 .. n_folds - 1``.
    fraction : float
        Share of the training fold kept, in (0, 1].
    train, test : np.ndarray of int
        Sorted positions into the case list.
    """

    fold: int
    fraction: float
    train: np.ndarray
    test: np.ndarray


def low_data_folds(n: int, *, n_folds: int = 5, fractions: Sequence[float] = (1.0, 0.75, 0.5, 0.25),
                   seed: int = 0) -> list[FoldSplit]:
    """K-fold splits of ``n`` cases with training folds subsampled to each fraction, test folds intact.

    Parameters
    ----------
    n : int
        Number of cases (>= ``n_folds``).
    n_folds : int, default 5
        Number of folds (>= 2); the test folds are disjoint and cover ``range(n)``.
    fractions : sequence of float in (0, 1]
        Training fractions. The subsets are nested: each training fold is put in one random order
        and truncated to ``max(1, round(fraction * size))`` cases, so a smaller subset lies inside
        every larger one and curves over the fractions differ only by data quantity.
    seed : int
        Seed of ``numpy.random.default_rng``.

    Returns
    -------
    list of FoldSplit
        ``n_folds * len(fractions)`` cells, fold-major (all fractions of fold 0 first).

    Raises
    ------
    ValueError
        For ``n_folds < 2``, ``n < n_folds`` or a fraction outside (0, 1].

    Examples
    --------
    >>> cells = low_data_folds(12, n_folds=3, fractions=(1.0, 0.5), seed=0)
    >>> cells[1].fold, cells[1].fraction, cells[1].train.tolist(), cells[1].test.tolist()
    (0, 0.5, [0, 1, 3, 11], [2, 4, 7, 9])
    """
    if n_folds < 2 or n < n_folds:
        raise ValueError(f"need n_folds >= 2 and at least n_folds cases; got n_folds={n_folds}, n={n}")
    fr = [float(f) for f in fractions]
    if not fr or any(not 0 < f <= 1 for f in fr):
        raise ValueError(f"fractions must lie in (0, 1], got {fractions}")
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    folds = np.array_split(order, n_folds)
    out = []
    for k in range(n_folds):
        test = np.sort(folds[k])
        train_all = rng.permutation(np.concatenate([folds[j] for j in range(n_folds) if j != k]))
        for f in fr:
            m = max(1, int(round(f * train_all.size)))
            out.append(FoldSplit(k, f, np.sort(train_all[:m]), test))
    return out
