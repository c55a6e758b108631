"""Synthetic coronary plaques: 1-3 overlapping Gaussian blobs at one attenuation.

A plaque is a set of blobs ``(centre, sigma)`` in voxel units and one peak attenuation. Its
occupancy is the soft union of the blobs, ``f = 1 - prod_i (1 - g_i)`` with
``g_i(v) = exp(-|v - c_i|^2 / (2 sigma_i^2))``, so overlapping blobs merge into one irregular
lesion whose core reaches 1 and whose edge fades like the partial-volume rim of a real plaque.
Inserting it blends the image towards the plaque HU: ``hu <- hu (1 - f) + peak f``; the lesion
mask is ``f >= 0.5``.

CORA's ranges (methods.md, seed 001): sigma 0.7-2.0 voxels, calcified 800-1500 HU, non-calcified
30-90 HU. The same blob function draws the plaques of the synthetic cohort
(:mod:`riskfm.synthetic.ct_render`), so pretraining and downstream data share one plaque model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "BLOB_SIGMA_VOX",
    "CALCIFIED_HU",
    "NONCALCIFIED_HU",
    "N_BLOBS",
    "Plaque",
    "blob_occupancy",
    "insert_plaque",
    "random_plaque",
]

CALCIFIED_HU: tuple[float, float] = (800.0, 1500.0)
NONCALCIFIED_HU: tuple[float, float] = (30.0, 90.0)
BLOB_SIGMA_VOX: tuple[float, float] = (0.7, 2.0)
N_BLOBS: tuple[int, int] = (1, 3)
#: Blobs are evaluated out to this many sigmas; beyond it a blob adds < 1e-4 occupancy.
REACH_SIGMAS = 4.3


def blob_occupancy(lo: Sequence[int], hi: Sequence[int], blobs: Sequence[tuple[np.ndarray, float]]) -> np.ndarray:
    """Return the soft union of Gaussian blobs on the voxel box ``[lo, hi)``.

    Parameters
    ----------
    lo, hi : sequence of 3 int
        Half-open voxel bounds ``(z, y, x)`` of the box to evaluate (``hi >= lo``).
    blobs : sequence of (centre, sigma)
        ``centre`` fractional voxel index ``(z, y, x)``; ``sigma`` in voxels (isotropic in index
        space).

    Returns
    -------
    np.ndarray
        float32 ``[hi - lo]`` occupancy in [0, 1): ``1 - prod(1 - g_i)``.

    Notes
    -----
    Each blob is separable, so it costs three 1-D exponentials and two broadcast products; the
    operation order is fixed because the synthetic cohort's volumes must not change by a bit.
    """
    lo = [int(v) for v in lo]
    hi = [int(v) for v in hi]
    keep_out = np.ones(tuple(b - a for a, b in zip(lo, hi)), dtype=np.float32)
    for c, sigma in blobs:
        ez, ey, ex = (np.exp(-0.5 * ((np.arange(lo[k], hi[k]) - c[k]) / sigma) ** 2).astype(np.float32)
                      for k in range(3))
        keep_out *= 1.0 - (ez[:, None, None] * ey[None, :, None]) * ex[None, None, :]
    return 1.0 - keep_out


@dataclass(frozen=True)
class Plaque:
    """One synthetic plaque.

    Attributes
    ----------
    centres : np.ndarray
        float64 ``[n_blobs, 3]`` blob centres, fractional voxel indices ``(z, y, x)``.
    sigmas : np.ndarray
        float64 ``[n_blobs]`` blob sigmas in voxels.
    peak_hu : float
        Attenuation of the plaque core in HU.
    calcified : bool
        True for a calcified plaque (800-1500 HU by default), False for non-calcified.
    """

    centres: np.ndarray
    sigmas: np.ndarray
    peak_hu: float
    calcified: bool

    @property
    def blobs(self) -> list[tuple[np.ndarray, float]]:
        """``(centre [3] voxel index, sigma in voxels)`` per blob."""
        return [(c, float(s)) for c, s in zip(self.centres, self.sigmas)]

    def box(self, shape: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """Return voxel bounds ``(lo, hi)``, int ``[3]``, holding the plaque (``REACH_SIGMAS`` sigmas).

        Both are clipped to ``shape`` (Z, Y, X).
        """
        reach = REACH_SIGMAS * self.sigmas[:, None]
        lo = np.floor((self.centres - reach).min(axis=0)).astype(int)
        hi = np.ceil((self.centres + reach).max(axis=0)).astype(int) + 1
        shape = np.asarray(shape, dtype=int)
        lo = np.clip(lo, 0, shape)
        return lo, np.clip(hi, lo, shape)

    def to_dict(self) -> dict:
        """Return a JSON-ready description (type, peak HU, blob sigmas and centres in voxels)."""
        return {"calcified": bool(self.calcified), "peak_hu": float(self.peak_hu),
                "n_blobs": len(self.sigmas), "sigmas_vox": [float(s) for s in self.sigmas],
                "centres_vox": [[float(v) for v in c] for c in self.centres]}


def random_plaque(
    rng: np.random.Generator,
    anchor: Sequence[float],
    *,
    calcified: bool,
    n_blobs: tuple[int, int] = N_BLOBS,
    sigma_vox: tuple[float, float] = BLOB_SIGMA_VOX,
    calcified_hu: tuple[float, float] = CALCIFIED_HU,
    noncalcified_hu: tuple[float, float] = NONCALCIFIED_HU,
    jitter_vox: float = 1.0,
) -> Plaque:
    """Draw a plaque of 1-3 overlapping Gaussian blobs around ``anchor``.

    Parameters
    ----------
    rng : numpy Generator
        All draws come from it (fixed order: count, sigmas, jitter, offsets, HU).
    anchor : sequence of 3 float
        Voxel index ``(z, y, x)`` the plaque grows from (a coronary voxel).
    calcified : bool
        Plaque type; sets the HU range.
    n_blobs : (int, int)
        Inclusive range of the blob count.
    sigma_vox : (float, float)
        Range of blob sigmas in voxels.
    calcified_hu, noncalcified_hu : (float, float)
        HU ranges of the two plaque types.
    jitter_vox : float
        The first blob sits up to this far (per axis) from the anchor: plaque is eccentric, it
        grows in the vessel wall, not exactly on the centreline.

    Returns
    -------
    Plaque
        Each further blob is centred ``U(0.3, 1.0) * (sigma_prev + sigma_new)`` voxels from a
        randomly chosen earlier blob in a random direction, so every blob overlaps the lesion.
    """
    lo_n, hi_n = int(n_blobs[0]), int(n_blobs[1])
    if not 1 <= lo_n <= hi_n:
        raise ValueError(f"n_blobs must be an inclusive range of counts >= 1, got {n_blobs!r}")
    if not 0 < sigma_vox[0] <= sigma_vox[1]:
        raise ValueError(f"sigma_vox must be a positive (low, high) range in voxels, got {sigma_vox!r}")
    n = int(rng.integers(lo_n, hi_n + 1))
    sigmas = rng.uniform(sigma_vox[0], sigma_vox[1], n)
    centres = np.empty((n, 3))
    centres[0] = np.asarray(anchor, dtype=np.float64) + rng.uniform(-jitter_vox, jitter_vox, 3)
    directions = rng.normal(size=(n, 3))
    distance = rng.uniform(0.3, 1.0, n)
    parents = rng.integers(0, np.maximum(np.arange(n), 1))
    for i in range(1, n):
        d = directions[i] / max(np.linalg.norm(directions[i]), 1e-12)
        centres[i] = centres[parents[i]] + d * distance[i] * (sigmas[parents[i]] + sigmas[i])
    lo, hi = calcified_hu if calcified else noncalcified_hu
    return Plaque(centres, sigmas, float(rng.uniform(lo, hi)), bool(calcified))


def insert_plaque(hu: np.ndarray, plaque: Plaque) -> tuple[tuple[slice, ...], np.ndarray]:
    """Blend a plaque into an HU array in place.

    Parameters
    ----------
    hu : np.ndarray
        float32 ``[Z, Y, X]`` in HU; modified in place: ``hu <- hu (1 - f) + peak f``.
    plaque : Plaque

    Returns
    -------
    (box, occupancy)
        The slices of the box the plaque touches and its float32 occupancy there, to build the
        lesion mask (``occupancy >= 0.5``).
    """
    if hu.ndim != 3:
        raise ValueError(f"hu must be a [Z, Y, X] array, got shape {hu.shape}")
    lo, hi = plaque.box(hu.shape)
    box = tuple(slice(a, b) for a, b in zip(lo, hi))
    f = blob_occupancy(lo, hi, plaque.blobs)
    region = hu[box]
    region *= 1.0 - f
    region += np.float32(plaque.peak_hu) * f
    return box, f
