"""Epicardial adipose tissue (EAT) volume: fat HU inside the pericardium.

EAT = voxels between -190 and -30 HU (the usual fat window) inside a pericardium mask; the volume
is their count times the voxel volume, in mL. The fairness protocol groups exams by its quartiles.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["FAT_HU", "epicardial_fat_volume"]

#: Fat attenuation range in HU (inclusive).
FAT_HU: tuple[float, float] = (-190.0, -30.0)


def epicardial_fat_volume(hu: Any, spacing: Any, pericardium: Any, *,
                          fat_hu: tuple[float, float] = FAT_HU) -> float:
    """Return the epicardial fat volume (mL) inside a pericardium mask.

    Parameters
    ----------
    hu : array-like [Z, Y, X]
        CT in HU.
    spacing : (z, y, x) mm
    pericardium : array-like of bool [Z, Y, X]
        The pericardial sac (heart plus epicardial fat).
    fat_hu : (float, float)
        Inclusive HU range counted as fat.

    Returns
    -------
    float
        Volume in mL (cm^3).
    """
    arr = np.asarray(hu)
    mask = np.asarray(pericardium).astype(bool)
    if arr.ndim != 3 or mask.shape != arr.shape:
        raise ValueError(f"hu and pericardium must be [Z, Y, X] of one shape, got {arr.shape} and {mask.shape}")
    lo, hi = fat_hu
    if not lo < hi:
        raise ValueError(f"fat_hu must be (low, high) with low < high, got {fat_hu}")
    voxel_mm3 = float(np.prod([float(s) for s in spacing]))
    n = int(np.count_nonzero(mask & (arr >= lo) & (arr <= hi)))
    return n * voxel_mm3 / 1000.0
