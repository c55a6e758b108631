"""Random rotation, isotropic zoom and flips applied to an image patch and its labels together.

A transform maps output patch voxel ``o`` to input voxel index ``centre + A (o - o_c)`` with
``o_c = size // 2`` (so the patch is centred on ``centre``, as :func:`riskfm.ct.preprocess.crop_or_pad`
centres) and ``A = S^-1 R S F / zoom``: ``S = diag(spacing)`` makes the rotation ``R`` physical
(a 15 degree turn on anisotropic voxels stays a 15 degree turn in mm), ``F`` is a diagonal of
+-1 flips and ``zoom > 1`` magnifies. The image is sampled trilinearly and the labels by nearest
neighbour on the SAME sampling grid (one ``torch.nn.functional.affine_grid``), so image and mask
stay aligned voxel for voxel.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["PatchTransform", "random_transform", "rotation_matrix", "sample_patch", "source_bounds"]


def rotation_matrix(angles_deg: Sequence[float]) -> np.ndarray:
    """Return the rotation ``[3, 3]`` in the (z, y, x) frame: about z, then y, then x by the given degrees."""
    a, b, c = np.radians(np.asarray(angles_deg, dtype=np.float64))
    rz = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])  # turns the y-x plane
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])  # turns the z-x plane
    rx = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])  # turns the z-y plane
    return rx @ ry @ rz


@dataclass(frozen=True)
class PatchTransform:
    """A rotation (degrees about z, y, x), an isotropic zoom and per-axis flips (z, y, x)."""

    angles_deg: tuple[float, float, float] = (0.0, 0.0, 0.0)
    zoom: float = 1.0
    flips: tuple[bool, bool, bool] = (False, False, False)

    def index_matrix(self, spacing: Sequence[float]) -> np.ndarray:
        """Return ``A`` ``[3, 3]``: input-index step per output-index step on a grid of ``spacing`` mm."""
        if not (np.isfinite(self.zoom) and self.zoom > 0):
            raise ValueError(f"PatchTransform.zoom must be positive, got {self.zoom!r}")
        s = np.asarray(spacing, dtype=np.float64)
        flip = np.diag([-1.0 if f else 1.0 for f in self.flips])
        return (np.diag(1.0 / s) @ rotation_matrix(self.angles_deg) @ np.diag(s) @ flip) / self.zoom


def random_transform(
    rng: np.random.Generator,
    *,
    max_rotation_deg: float = 15.0,
    zoom_range: tuple[float, float] = (0.9, 1.1),
    flip_prob: float = 0.5,
) -> PatchTransform:
    """Draw angles ``U(-max, max)`` about each axis, zoom ``U(zoom_range)``, each flip with ``flip_prob``."""
    angles = rng.uniform(-max_rotation_deg, max_rotation_deg, 3)
    zoom = rng.uniform(zoom_range[0], zoom_range[1])
    flips = rng.random(3) < flip_prob
    return PatchTransform(tuple(float(a) for a in angles), float(zoom), tuple(bool(f) for f in flips))


def source_bounds(centre: Sequence[float], size: Sequence[int], matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the half-open input-index box ``(lo, hi)`` (int ``[3]`` each) holding every sample of a patch.

    The box has one voxel of margin.

    ``centre`` is the input voxel index ``(z, y, x)`` of the patch centre, ``size`` the patch size
    in voxels and ``matrix`` the ``[3, 3]`` :meth:`PatchTransform.index_matrix`.
    """
    size = np.asarray(size, dtype=np.float64)
    o_c = np.floor(size / 2)
    corners = np.stack(np.meshgrid(*[[0.0, n - 1] for n in size], indexing="ij"), -1).reshape(-1, 3) - o_c
    pts = np.asarray(centre, dtype=np.float64) + corners @ matrix.T
    return np.floor(pts.min(axis=0)).astype(int) - 1, np.ceil(pts.max(axis=0)).astype(int) + 2


def _grid(centre: np.ndarray, size: np.ndarray, in_shape: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """float32 ``[1, *size, 3]`` sampling grid in torch's normalised (x, y, z) coordinates.

    Input index ``i = centre + A (o - o_c)``; with ``align_corners=True`` index ``i`` sits at
    ``u = 2 i / (n - 1) - 1``. The grid is affine in ``o``, so it is built from three 1-D ramps by
    broadcasting (3-4x faster than ``torch.nn.functional.affine_grid``, which multiplies a dense
    homogeneous grid).
    """
    o_c = np.floor(size / 2)
    scale = 2.0 / np.maximum(in_shape - 1, 1)  # index -> normalised
    n = [int(s) for s in size]
    grid = np.empty((1, *n, 3), dtype=np.float32)
    for out_axis, in_axis in enumerate((2, 1, 0)):  # torch wants x, y, z
        row = matrix[in_axis] * scale[in_axis]
        offset = centre[in_axis] * scale[in_axis] - 1.0 - float(row @ o_c)
        rz = (row[0] * np.arange(n[0], dtype=np.float64) + offset).astype(np.float32)
        ry = (row[1] * np.arange(n[1], dtype=np.float64)).astype(np.float32)
        rx = (row[2] * np.arange(n[2], dtype=np.float64)).astype(np.float32)
        plane = grid[0, ..., out_axis]
        np.add(rz[:, None, None], ry[None, :, None], out=plane)
        plane += rx[None, None, :]
    return grid


def sample_patch(
    image: np.ndarray,
    labels: np.ndarray | None,
    centre: Sequence[float],
    size: Sequence[int],
    matrix: np.ndarray,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Resample a patch of ``image`` (trilinear) and ``labels`` (nearest) on one transformed grid.

    Parameters
    ----------
    image : np.ndarray
        float32 ``[Z, Y, X]`` (HU); must contain :func:`source_bounds` of the patch (crop and pad
        first), samples beyond its edge repeat the edge.
    labels : np.ndarray or None
        Integer ``[Z, Y, X]`` on the same grid (e.g. 0 background, 1 calcified, 2 non-calcified).
    centre : sequence of 3 float
        Input voxel index that lands on output voxel ``size // 2``.
    size : sequence of 3 int
        Patch size ``(Z, Y, X)`` in voxels.
    matrix : np.ndarray
        ``A`` from :meth:`PatchTransform.index_matrix`.

    Returns
    -------
    (patch, patch_labels)
        float32 ``[*size]`` and ``labels.dtype`` ``[*size]`` (None when ``labels`` is None).
    """
    # torch is imported here, not at module level: the synthetic cohort imports the plaque model
    # from this package and must stay light.
    import torch
    import torch.nn.functional as F

    size_arr = np.asarray(size, dtype=np.float64)
    grid = torch.from_numpy(_grid(np.asarray(centre, dtype=np.float64), size_arr,
                                  np.asarray(image.shape, dtype=np.float64), np.asarray(matrix, dtype=np.float64)))
    src = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None, None]
    patch = F.grid_sample(src, grid, mode="bilinear", padding_mode="border", align_corners=True)[0, 0].numpy()
    patch_labels = None
    if labels is not None and not labels.any():
        patch_labels = np.zeros(patch.shape, dtype=labels.dtype)  # nothing to resample
    elif labels is not None:
        lab = torch.from_numpy(np.ascontiguousarray(labels, dtype=np.float32))[None, None]
        picked = F.grid_sample(lab, grid, mode="nearest", padding_mode="zeros", align_corners=True)[0, 0]
        patch_labels = picked.numpy().round().astype(labels.dtype)
    return patch, patch_labels
