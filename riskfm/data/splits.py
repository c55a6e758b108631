"""Patient-level splits: stratified random, k-fold, by site (internal vs external), training subsampling.

Every function takes the cohort table (one row per patient) and returns patient ids, so a patient
can never sit on both sides of a split. Stratification uses a label key built from the binary
targets that are known (e.g. "any severe stenosis" x MACE), so rare outcomes are spread evenly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold, train_test_split

from riskfm.data.manifest import BINARY_TARGETS, STENOSIS_TARGETS


def stratification_key(df: pd.DataFrame, targets: Sequence[str] = BINARY_TARGETS) -> np.ndarray:
    """A per-patient string key from the binary targets used to stratify splits.

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
    """Internal (development) vs external validation by site; returns (internal_ids, external_ids)."""
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
    """The standard protocol: external sites held out, internal split into train / val / test.

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
