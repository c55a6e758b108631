"""Training-time ECG augmentation: what varies between devices and recordings, not what carries disease.

Gain changes (amplifier calibration differs by a few percent between devices) and additive
broadband noise (electrode contact, muscle) are label-preserving; time warps, lead swaps or
baseline shifts are not used because they change ST levels and territorial patterns, which are
exactly what stenosis models read.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ECGAugment:
    """Random global gain in ``[1 - gain, 1 + gain]`` and Gaussian noise with SD up to ``noise_mv``.

    Call with ``x`` float32 ``[leads, T]`` (mV, or z-scored units when the spec normalises; the
    noise SD is then relative) and a ``numpy.random.Generator``; absent (all-zero) leads stay zero.
    """

    gain: float = 0.1
    noise_mv: float = 0.02

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Return an augmented copy of one ECG.

        Parameters
        ----------
        x : ndarray [leads, T]
            Prepared ECG in mV (or z-scored units when the spec normalises).
        rng : numpy.random.Generator
            Source of the random draws.

        Returns
        -------
        ndarray [leads, T], float32
            ``x * U(1 - gain, 1 + gain)`` plus Gaussian noise of SD ``U(0, noise_mv)``; all-zero
            (absent) leads stay zero.
        """
        present = np.any(x != 0, axis=1, keepdims=True)
        scale = 1.0 + rng.uniform(-self.gain, self.gain)
        noise = rng.normal(0.0, rng.uniform(0.0, self.noise_mv), size=x.shape).astype(np.float32)
        return np.where(present, x * scale + noise, 0.0).astype(np.float32)
