"""A heart region of interest from CT alone: the fallback that keeps ribs and spine out of the score.

Heuristic, documented so users know what it does and does not do: the body is the largest
connected region above -500 HU (holes filled per slice); the lungs are the air inside it; on each
slice the region of interest is the convex hull of the lungs and of the retrosternal space (the
mediastinum lies between the lungs and reaches forward to the chest wall: without that space the
hull would cut through the anterior heart wall wherever the lungs do not reach the sternum, and
drop LAD and RCA calcium), minus the lungs, minus a chest-wall band (``wall_mm`` from the skin,
where the ribs run), minus bone -- large (> 2 cm^3) 3D components above 200 HU, dilated by 3 mm.
Aortic and valve calcium stay inside, and so do rib fragments next to the lungs: only a trained
model (or a heart mask) tells them apart.
Pass a real heart mask (``--roi``) whenever one is available.

:func:`heart_region` returns the same region together with the pieces it was built from (the
mediastinal region before bone removal, the lungs, the bone): the scan checks of
:mod:`riskfm.ct.calcium.scan_checks` measure the blood pool in the mediastinal region, because on a
contrast-enhanced scan the bright blood pool is itself a large component above 200 HU and the
bone removal takes it out of the region of interest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

__all__ = ["HeartRegion", "estimate_heart_roi", "heart_region"]


def _polygon_mask(vertices: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Pixels inside or on a polygon with integer vertices (even-odd rule), as a bool image.

    Parameters
    ----------
    vertices : array-like of int, shape [K, 2]
        The polygon's corners as (row, column) pixel coordinates, in order around it (either
        direction); the last corner connects back to the first.
    shape : (int, int)
        Shape (rows, columns) of the image.

    Returns
    -------
    np.ndarray of bool, shape ``shape``
        True for a pixel centre inside the polygon (an odd number of edges to its right on its
        row) or on an edge. Edges are tested exactly in integer arithmetic, so pixels on the
        boundary are always in.
    """
    v = np.asarray(vertices, dtype=np.int64).reshape(-1, 2)
    out = np.zeros(shape, bool)
    if len(v) == 0:
        return out
    r0, r1 = v[:, 0], np.roll(v[:, 0], -1)
    c0, c1 = v[:, 1], np.roll(v[:, 1], -1)
    cols = np.arange(shape[1])
    for row in range(max(int(v[:, 0].min()), 0), min(int(v[:, 0].max()) + 1, shape[0])):
        # Crossings of the row by edges with one end above it and one on or below it.
        cross = (r0 > row) != (r1 > row)
        at = c0[cross] + (c1[cross] - c0[cross]) * (row - r0[cross]) / (r1[cross] - r0[cross])
        inside = (cols[:, None] < at[None, :]).sum(axis=1) % 2 == 1
        # Boundary pixels: horizontal edges on the row, and the exact integer points of the others.
        flat = (r0 == row) & (r1 == row)
        for a, b in zip(np.minimum(c0[flat], c1[flat]), np.maximum(c0[flat], c1[flat])):
            inside[max(a, 0):b + 1] = True
        span = (np.minimum(r0, r1) <= row) & (np.maximum(r0, r1) >= row) & (r0 != r1)
        num = (c1[span] - c0[span]) * (row - r0[span])
        den = r1[span] - r0[span]
        exact = num % den == 0
        on = c0[span][exact] + num[exact] // den[exact]
        inside[on[(on >= 0) & (on < shape[1])]] = True
        out[row] = inside
    return out


def _hull_mask(mask2d: np.ndarray) -> np.ndarray:
    """Return the filled convex hull of a 2D mask's pixels (pixels on the hull included).

    ``mask2d`` is ``[Y, X]``; the result has its shape and dtype and is all zero when the pixels
    span no area (fewer than 3, or collinear).
    """
    from scipy.spatial import ConvexHull, QhullError

    pts = np.argwhere(mask2d)
    if len(pts) < 3:
        return np.zeros_like(mask2d)
    try:
        hull = ConvexHull(pts)
    except QhullError:  # collinear points: no area
        return np.zeros_like(mask2d)
    return _polygon_mask(pts[hull.vertices], mask2d.shape).astype(mask2d.dtype, copy=False)


def _retrosternal(lungs2d: np.ndarray, inner2d: np.ndarray) -> np.ndarray:
    """Inner-body pixels between the two lungs' centres (left-right) and in front of their middle.

    Empty when a slice does not show two lungs (above the apices, below the bases).
    """
    lab, n = ndimage.label(lungs2d)
    if n < 2:
        return np.zeros_like(lungs2d)
    sizes = np.bincount(lab.ravel())[1:]
    two = np.argsort(sizes)[-2:] + 1
    x_lo, x_hi = sorted(float(np.nonzero(lab == t)[1].mean()) for t in two)
    y_mid = float(np.nonzero(lungs2d)[0].mean())
    yy, xx = np.indices(lungs2d.shape)
    return inner2d & (xx >= x_lo) & (xx <= x_hi) & (yy <= y_mid)


@dataclass(frozen=True)
class HeartRegion:
    """What :func:`heart_region` found, all bool ``[Z, Y, X]``.

    Attributes
    ----------
    roi : the heart region of interest (:func:`estimate_heart_roi`): ``mediastinum & ~bone``.
    mediastinum : the per-slice hull of the lungs and retrosternal space, minus the lungs and the
        chest-wall band, before bone removal (holds the blood pool even when contrast makes it bright).
    lungs : voxels below -400 HU inside the (per-slice hole-filled) body.
    bone : bright components above ``bone_volume_cm3``, dilated by 3 mm.
    """

    roi: np.ndarray
    mediastinum: np.ndarray
    lungs: np.ndarray
    bone: np.ndarray


def estimate_heart_roi(hu: Any, spacing: Any, *, bone_volume_cm3: float = 2.0, wall_mm: float = 8.0) -> np.ndarray:
    """Mediastinal region of interest (bool ``[Z, Y, X]``) from a chest CT in HU.

    Parameters
    ----------
    hu : array-like [Z, Y, X]
        Chest CT in HU.
    spacing : (z, y, x) mm
    bone_volume_cm3 : float, default 2.0
        Bright 3D components larger than this are bone (calcified plaques are far smaller).
    wall_mm : float, default 8
        In-plane depth of the chest wall band removed (skin, ribs, sternum edge). Deeper bands cut
        into the anterior heart surface in thin patients (12 mm dropped a tenth of the LAD / RCA
        calcium voxels of the synthetic exams; 8 mm drops 0.4%); rib fragments that a thinner band
        lets in are the segmentation network's to reject.

    Returns
    -------
    np.ndarray of bool [Z, Y, X]
    """
    return heart_region(hu, spacing, bone_volume_cm3=bone_volume_cm3, wall_mm=wall_mm).roi


def heart_region(hu: Any, spacing: Any, *, bone_volume_cm3: float = 2.0, wall_mm: float = 8.0) -> HeartRegion:
    """:func:`estimate_heart_roi` with the pieces it was built from (see :class:`HeartRegion`).

    Parameters are those of :func:`estimate_heart_roi`.
    """
    arr = np.asarray(hu, dtype=np.float32)
    if arr.ndim != 3:
        raise ValueError(f"hu must be [Z, Y, X], got shape {arr.shape}")
    sp = np.asarray(spacing, dtype=float)
    body_lab, n = ndimage.label(arr > -500)
    if n == 0:
        empty = np.zeros(arr.shape, bool)
        return HeartRegion(empty, empty.copy(), empty.copy(), empty.copy())
    sizes = np.bincount(body_lab.ravel())[1:]
    body = body_lab == (1 + int(np.argmax(sizes)))
    filled = np.stack([ndimage.binary_fill_holes(s) for s in body])
    lungs = filled & (arr < -400)
    bright, nb = ndimage.label(arr > 200)
    bone = np.zeros(arr.shape, bool)
    if nb:
        vol_cm3 = np.bincount(bright.ravel())[1:] * float(np.prod(sp)) / 1000.0
        big = np.flatnonzero(vol_cm3 > bone_volume_cm3) + 1
        bone = np.isin(bright, big)
        if bone.any():
            reach = np.maximum(np.round(3.0 / sp).astype(int), 1)
            bone = ndimage.binary_dilation(bone, structure=np.ones(tuple(2 * reach + 1), bool))
    # In-plane erosion of the body by the chest-wall depth (distance transform in mm per slice).
    inner = np.stack([ndimage.distance_transform_edt(s, sampling=sp[1:]) > wall_mm for s in filled])
    hull = np.zeros(arr.shape, bool)
    for z in range(arr.shape[0]):
        if lungs[z].any():
            hull[z] = _hull_mask(lungs[z] | _retrosternal(lungs[z], inner[z]))
    mediastinum = hull & inner & ~lungs
    return HeartRegion(mediastinum & ~bone, mediastinum, lungs, bone)
