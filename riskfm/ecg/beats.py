"""R-peak detection and median beats: one representative beat per lead.

A median beat (the sample-wise median of R-aligned beats, as resting-ECG systems such as GE MUSE
compute it) keeps the P-QRS-T morphology and ST level of a 10 s record while averaging away noise,
heart-rate variability and where in the record each beat falls. Models trained on a few hundred
patients learn ST/T features far more reliably from median beats than from raw rhythm strips, and
interpretability work compares median beats of risk groups.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage, signal

#: Default beat window around the R peak in seconds: P wave before, end of T wave after.
DEFAULT_BEAT_WINDOW_S: tuple[float, float] = (0.25, 0.45)


class BeatDetectionError(ValueError):
    """Too few beats found to form a median beat (flat, saturated or very noisy record)."""


def detect_r_peaks(x: np.ndarray, fs: float, *, min_rr_s: float = 0.3) -> np.ndarray:
    """Return R-peak sample indices (sorted int ``[n]``) detected from all leads together.

    A Pan-Tompkins-style detector over all leads together: each lead is band-passed to the QRS band
    (5-20 Hz, which removes baseline wander, T waves and most noise), the squared slopes of every
    lead are summed (robust to one noisy or inverted lead) and smoothed over 100 ms, and peaks at
    least ``min_rr_s`` apart above 30% of the record's 99th percentile are taken. Each peak is then
    moved to the largest absolute deflection of the lead with the most energy within +-60 ms.

    Parameters
    ----------
    x : float array ``[leads, T]`` (mV or normalised; baseline-free is best).
    fs : sampling rate in Hz.
    """
    x = np.nan_to_num(np.asarray(x, dtype=np.float64))
    if x.ndim != 2 or x.shape[1] < int(fs):
        raise BeatDetectionError(f"need [leads, T] with at least 1 s of signal, got shape {x.shape}")
    high = min(20.0, 0.45 * fs)
    sos = signal.butter(2, [5.0, high], btype="bandpass", fs=fs, output="sos")
    qrs = signal.sosfiltfilt(sos, x, axis=1)
    slope = (np.diff(qrs, axis=1) ** 2).sum(axis=0)
    energy = ndimage.uniform_filter1d(slope, max(1, int(0.1 * fs)))
    height = 0.3 * np.percentile(energy, 99)
    if height <= 0:
        return np.zeros(0, dtype=int)
    peaks, _ = signal.find_peaks(energy, height=height, distance=max(1, int(min_rr_s * fs)))
    ref = x[np.argmax(np.sum(x**2, axis=1))]
    half = int(0.06 * fs)
    refined = []
    for p in peaks:
        lo, hi = max(0, p - half), min(x.shape[1], p + half + 1)
        refined.append(lo + int(np.argmax(np.abs(ref[lo:hi]))))
    return np.unique(np.asarray(refined, dtype=int))


def median_beat(x: np.ndarray, fs: float, *, window_s: tuple[float, float] = DEFAULT_BEAT_WINDOW_S,
                min_beats: int = 3, peaks: np.ndarray | None = None) -> np.ndarray:
    """Return the median beat per lead: float32 ``[leads, round(before * fs) + round(after * fs)]``.

    ``x`` is ``[leads, T]`` at ``fs`` Hz (mV or normalised units, kept in the output);
    ``window_s`` is (before, after) the R peak in seconds; ``peaks`` replaces detection
    (:func:`detect_r_peaks`). Beats whose window would leave the record are skipped; fewer than
    ``min_beats`` complete beats raise ``BeatDetectionError`` (callers exclude such records with the reason).
    """
    x = np.asarray(x, dtype=np.float32)
    before, after = int(round(window_s[0] * fs)), int(round(window_s[1] * fs))
    if peaks is None:
        peaks = detect_r_peaks(x, fs)
    peaks = [p for p in np.asarray(peaks, dtype=int) if p - before >= 0 and p + after <= x.shape[1]]
    if len(peaks) < min_beats:
        raise BeatDetectionError(f"only {len(peaks)} complete beats found (need {min_beats})")
    beats = np.stack([x[:, p - before:p + after] for p in peaks])  # [beats, leads, samples]
    return np.median(beats, axis=0).astype(np.float32)
