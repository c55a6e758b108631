"""Training-time CT augmentation that keeps anatomy and laterality (no flips: arteries are left/right)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CTAugment:
    """Random HU noise (SD up to ``noise_hu``) and a contrast-level scale of the HU above water.

    Scanners differ in noise and in how bright the contrast-filled lumen is; both vary here. Input
    ``hu`` float32 ``[Z, Y, X]`` in HU; returns the same shape.
    """

    noise_hu: float = 15.0
    contrast_scale: float = 0.05

    def __call__(self, hu: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Return an augmented copy of a volume.

        Parameters
        ----------
        hu : ndarray [Z, Y, X]
            CT in HU.
        rng : numpy.random.Generator
            Source of the random draws.

        Returns
        -------
        ndarray [Z, Y, X], float32
            HU above 0 scaled by ``1 + U(-contrast_scale, contrast_scale)``, plus Gaussian noise of
            SD ``U(0, noise_hu)`` HU.
        """
        scale = 1.0 + rng.uniform(-self.contrast_scale, self.contrast_scale)
        out = np.where(hu > 0, hu * scale, hu)
        out = out + rng.normal(0.0, rng.uniform(0.0, self.noise_hu), size=hu.shape)
        return out.astype(np.float32)
