"""Move ECG attributions between the 10 s record and median-beat space by R-peak alignment.

A map over a 10 s record says *when* the model looked; clinicians read *where in the beat* (P wave,
QRS, ST segment, T wave). R peaks are found by neurokit2 on lead II (the rhythm lead, upright in most
patients) and reused for every lead, so all leads are cut at the same instants, as a median-beat
system does. Each beat window ``[R - before, R + after)`` of the signal gives the median beat
(sample-wise median) and of the attribution the mean attribution per beat offset.

The reverse, :func:`paste_beats`, spreads a median-beat map back over every beat of the record, to
draw a median-beat model's explanation on the 12-lead rhythm display.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from riskfm.ecg.beats import DEFAULT_BEAT_WINDOW_S, BeatDetectionError

__all__ = ["BeatSpaceAttribution", "lead_ii_r_peaks", "paste_beats", "to_median_beat"]


def lead_ii_r_peaks(signal: np.ndarray, fs: float, leads: Sequence[str], *, lead: str = "II") -> np.ndarray:
    """Return R-peak sample indices (int ``[n]``) of ``lead`` (default II) found by neurokit2.

    neurokit2 cleans the lead, then runs its own detector.

    ``signal`` is ``[leads, T]`` at ``fs`` Hz, rows named by ``leads``.

    Raises
    ------
    BeatDetectionError
        Lead II is not among ``leads``, is flat (absent), or neurokit2 finds no peaks.
    """
    import neurokit2 as nk

    leads = list(leads)
    if lead not in leads:
        raise BeatDetectionError(f"R-peak alignment uses lead {lead}, which is not among the leads {leads}")
    x = np.asarray(signal, dtype=np.float64)[leads.index(lead)]
    if x.size < int(2 * fs) or not np.isfinite(x).all() or np.ptp(x) <= 0:
        raise BeatDetectionError(f"lead {lead} is absent, flat or shorter than 2 s ({x.size} samples at {fs:g} Hz); "
                                 "cannot align beats")
    try:
        clean = nk.ecg_clean(x, sampling_rate=int(round(fs)))
        _, info = nk.ecg_peaks(clean, sampling_rate=int(round(fs)))
    except Exception as exc:  # noqa: BLE001 - neurokit raises assorted errors on unusable signals
        raise BeatDetectionError(f"neurokit2 could not detect R peaks on lead {lead}: {exc}") from exc
    return np.asarray(info["ECG_R_Peaks"], dtype=int)


@dataclass
class BeatSpaceAttribution:
    """An ECG attribution in median-beat space.

    Attributes
    ----------
    beat : float ``[leads, W]``, the median beat of the signal (its units: mV or z-scores).
    attribution : float ``[leads, W]``, the mean attribution at each offset from R over the beats.
    time_s : float ``[W]``, seconds relative to the R peak.
    peaks : int ``[n]``, the R peaks used (samples of the record).
    n_beats : beats inside the record (each contributes one window).
    leads : lead names.
    fs : Hz.
    """

    beat: np.ndarray
    attribution: np.ndarray
    time_s: np.ndarray
    peaks: np.ndarray
    n_beats: int
    leads: tuple[str, ...]
    fs: float


def _windows(peaks: np.ndarray, n: int, before: int, after: int) -> np.ndarray:
    peaks = np.asarray(peaks, dtype=int)
    return peaks[(peaks - before >= 0) & (peaks + after <= n)]


def to_median_beat(signal: np.ndarray, attribution: np.ndarray, fs: float, leads: Sequence[str], *,
                   window_s: tuple[float, float] = DEFAULT_BEAT_WINDOW_S, peaks: np.ndarray | None = None,
                   min_beats: int = 3) -> BeatSpaceAttribution:
    """Align a record's attribution ``[leads, T]`` on its R peaks (neurokit2, lead II) and average per offset.

    Parameters
    ----------
    signal, attribution : float ``[leads, T]`` of the same shape (the encoder input and its map).
    fs : Hz. leads : names of the rows.
    window_s : seconds (before, after) the R peak.
    peaks : R peaks to use instead of detecting them.
    min_beats : fewer complete beats raise ``BeatDetectionError``.
    """
    signal = np.asarray(signal, dtype=np.float64)
    attribution = np.asarray(attribution, dtype=np.float64)
    if signal.shape != attribution.shape or signal.ndim != 2:
        raise ValueError(f"signal {signal.shape} and attribution {attribution.shape} must both be [leads, T]")
    before, after = int(round(window_s[0] * fs)), int(round(window_s[1] * fs))
    if peaks is None:
        peaks = lead_ii_r_peaks(signal, fs, leads)
    used = _windows(peaks, signal.shape[1], before, after)
    if len(used) < min_beats:
        raise BeatDetectionError(f"only {len(used)} complete beats (R peaks found: {len(peaks)}) in a "
                                 f"{signal.shape[1] / fs:.1f} s record; at least {min_beats} are needed to move "
                                 "the attribution into median-beat space")
    idx = used[:, None] + np.arange(-before, after)[None, :]  # [beats, W]
    beats = signal[:, idx]  # [leads, beats, W]
    attrs = attribution[:, idx]
    return BeatSpaceAttribution(
        beat=np.median(beats, axis=1), attribution=attrs.mean(axis=1),
        time_s=np.arange(-before, after) / fs, peaks=used, n_beats=len(used), leads=tuple(leads), fs=float(fs))


def paste_beats(beat_values: np.ndarray, peaks: np.ndarray, n_samples: int, before: int) -> np.ndarray:
    """Spread a median-beat map ``[leads, W]`` over a record of ``n_samples``: each R peak gets a copy.

    Where two windows overlap (fast heart rates) the larger magnitude wins; samples outside every beat
    window are 0. ``before`` is the number of samples of the window before R.
    """
    beat_values = np.asarray(beat_values, dtype=np.float64)
    out = np.zeros((beat_values.shape[0], n_samples))
    width = beat_values.shape[1]
    for p in np.asarray(peaks, dtype=int):
        lo, hi = p - before, p - before + width
        a, b = max(lo, 0), min(hi, n_samples)
        if a >= b:
            continue
        seg = beat_values[:, a - lo:b - lo]
        cur = out[:, a:b]
        out[:, a:b] = np.where(np.abs(seg) > np.abs(cur), seg, cur)
    return out
