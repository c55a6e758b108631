"""Where patches are centred: on coronary voxels (artery-centric sampling), or a fallback without a mask.

CORA centres every pretraining patch on a voxel of a coronary mask (from a segmentation model), so
every patch holds vessel and every synthetic plaque sits on a vessel. When a volume has no coronary
mask, :func:`vessel_candidates` finds *thin bright* voxels instead: contrast-range voxels
(150-700 HU by default) that disappear under a morphological opening with a ball of
``max_radius_mm`` (so chambers, aorta and other thick bright structures are excluded and what
is left is vessel-calibre), optionally restricted to a (dilated) heart mask. If that leaves
nothing, the heart mask itself, and then any non-air voxel, are used: patches then still train
the detector, on anatomy that is less coronary.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

__all__ = ["candidate_voxels", "sample_centre", "vessel_candidates"]


def _ball_opening(mask: np.ndarray, radius_mm: float, spacing: Sequence[float]) -> np.ndarray:
    """Return the opening of ``mask`` with a ball of ``radius_mm`` (exact, two distance transforms in mm)."""
    if not mask.any():
        return mask.copy()
    inside = ndimage.distance_transform_edt(mask, sampling=spacing)
    eroded = inside > radius_mm
    if not eroded.any():
        return np.zeros_like(mask)
    return ndimage.distance_transform_edt(~eroded, sampling=spacing) <= radius_mm


def vessel_candidates(
    hu: np.ndarray,
    spacing: Sequence[float],
    heart_mask: np.ndarray | None = None,
    *,
    hu_range: tuple[float, float] = (150.0, 700.0),
    max_radius_mm: float = 2.5,
    heart_margin_mm: float = 10.0,
    min_voxels: int = 20,
) -> tuple[np.ndarray, str]:
    """Return a mask of likely coronary voxels for a volume without a coronary mask.

    Parameters
    ----------
    hu : np.ndarray
        ``[Z, Y, X]`` in HU.
    spacing : sequence of 3 float
        ``(z, y, x)`` mm.
    heart_mask : np.ndarray, optional
        ``[Z, Y, X]`` heart mask; candidates are kept within ``heart_margin_mm`` of it (the
        coronaries run on the heart's surface).
    hu_range : (float, float)
        Contrast-enhanced lumen range in HU.
    max_radius_mm : float
        Bright structures thicker than a ball of this radius (chambers, aorta) are removed;
        coronary lumens are 1-2.5 mm in radius.
    heart_margin_mm : float
        Dilation of the heart mask in mm.
    min_voxels : int
        Fewer candidates than this counts as "none found".

    Returns
    -------
    (mask, source)
        bool ``[Z, Y, X]`` and which rule produced it: ``"thin-bright"``, ``"heart"`` or
        ``"body"``.
    """
    hu = np.asarray(hu)
    if hu.ndim != 3:
        raise ValueError(f"hu must be [Z, Y, X], got shape {hu.shape}")
    bright = (hu >= hu_range[0]) & (hu <= hu_range[1])
    thin = bright & ~_ball_opening(bright, max_radius_mm, spacing)
    region = None
    if heart_mask is not None:
        heart_mask = np.asarray(heart_mask) > 0
        if heart_mask.shape != hu.shape:
            raise ValueError(f"heart_mask shape {heart_mask.shape} does not match the CT shape {hu.shape}")
        if heart_mask.any():
            region = ndimage.distance_transform_edt(~heart_mask, sampling=spacing) <= heart_margin_mm
            thin &= region
    # Isolated bright specks (noise, calcium edges) are not vessels: keep components of a few voxels.
    labels, n = ndimage.label(thin, structure=np.ones((3, 3, 3)))
    if n:
        sizes = np.bincount(labels.ravel())
        keep = sizes >= 4
        keep[0] = False
        thin = keep[labels]
    if thin.sum() >= min_voxels:
        return thin, "thin-bright"
    if region is not None and heart_mask.sum() >= min_voxels:
        return heart_mask, "heart"
    return hu > -500.0, "body"


def candidate_voxels(mask: np.ndarray, *, margin: Sequence[int] | int = 0) -> np.ndarray:
    """Return flat int64 indices of the nonzero voxels of ``mask`` ``[Z, Y, X]`` away from its edges.

    Voxels must lie at least ``margin`` voxels (one value, or one per axis) from the edges. The
    margin keeps patch centres away from the border, so less of a patch is padding; voxels closer
    to the edge are used only if nothing else is left.
    """
    mask = np.asarray(mask)
    if mask.ndim != 3:
        raise ValueError(f"mask must be [Z, Y, X], got shape {mask.shape}")
    margins = np.broadcast_to(np.asarray(margin, dtype=int), (3,))
    inner = np.zeros(mask.shape, dtype=bool)
    inner[tuple(slice(min(m, n // 2), max(n - m, n - n // 2)) for m, n in zip(margins, mask.shape))] = True
    flat = np.flatnonzero((mask != 0) & inner)
    if flat.size == 0:
        flat = np.flatnonzero(mask)
    return flat.astype(np.int64)


def sample_centre(rng: np.random.Generator, candidates: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Draw one candidate voxel uniformly; return its index ``(z, y, x)``, int64 ``[3]``.

    ``candidates`` are flat indices into a volume of ``shape`` (Z, Y, X).

    Raises
    ------
    ValueError
        If there are no candidates.
    """
    if len(candidates) == 0:
        raise ValueError("no candidate voxels to centre a patch on (empty coronary mask and no fallback)")
    flat = candidates[int(rng.integers(len(candidates)))]
    return np.asarray(np.unravel_index(int(flat), tuple(int(s) for s in shape)), dtype=np.int64)
