"""Basic ECG measurements and riskfm's "clinically normal ECG" rule, for a normal-ECG subset.

The ECG paper reports performance "in a clinically normal-ECG subset" without saying how normal
was decided (the abstract only). When a cohort has no normal-ECG marker of its own (a reader's or
the machine's statement), riskfm decides from what it can measure on the record itself:

* **heart rate** from the median R-R interval (R peaks by :func:`riskfm.ecg.beats.detect_r_peaks`
  over all leads), normal 50-100 bpm;
* **rhythm regularity**: coefficient of variation of the R-R intervals, normal <= 0.15 (a crude
  screen for atrial fibrillation and frequent ectopy, not a rhythm diagnosis);
* **QRS duration** on the median beat: where the spatial slope (root of the summed squared
  derivatives of all leads) stays above 10% of its peak around R, normal < 120 ms (no bundle-branch
  block or ventricular rhythm);
* **ST deviation** per lead: the median beat's level at the J point (QRS end) minus the PR-segment
  level (the 20 ms before QRS onset), as the universal definition of myocardial infarction measures
  it. Normal when no lead is depressed by more than 0.1 mV (1 mm) and no lead is elevated by more
  than 0.1 mV, except V2-V3, where up to 0.2 mV of J-point elevation is common in healthy adults
  (the universal definition's limit for men over 40).

An ECG is normal when all four hold (:class:`NormalECGRule`, every limit a parameter). A record
whose beats cannot be found (fewer than 3 complete beats, flat or unreadable) is *unmeasurable*:
it is in neither group, and callers count and report it. The measurements run on the record
band-passed 0.67-40 Hz (ECGFounder's band, which removes baseline wander without flattening the
ST segment) at 250 Hz, in mV.

These are plain algorithmic measurements, not a validated interval program (GE 12SL, Philips DXL):
QRS onset and end from a slope threshold, ST at the J point against the PR level. They are good enough
to leave out overt abnormalities (tachy- and bradycardia, irregular rhythm, wide QRS, ST
deviation), which is what the paper's subset is for.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import numpy as np

from riskfm.ecg.beats import DEFAULT_BEAT_WINDOW_S, BeatDetectionError, detect_r_peaks, median_beat
from riskfm.ecg.spec import STANDARD_LEADS, ECGInputSpec

__all__ = ["MEASUREMENT_SPEC", "ECGMeasurements", "NormalECGRule", "measure_ecg", "measure_ecg_file"]

#: Preprocessing of the measurements: 250 Hz, 0.67-40 Hz zero-phase band-pass, mV, whole record.
MEASUREMENT_SPEC = ECGInputSpec(fs=250.0, n_samples=2500, bandpass_hz=(0.67, 40.0), normalisation="none")

_QRS_SLOPE_FRACTION = 0.10  # QRS = where the spatial slope stays above this share of its peak
_QRS_SEARCH_S = 0.15  # look for QRS onset / end at most this far from R
_PR_WINDOW_S = 0.02  # the PR level: median of this window just before QRS onset
# ST measured at the J point itself: on the synthetic cohort's records later points (J+40, J+60 ms)
# already ride on the T wave at heart rates over 90 bpm and read healthy V3s as 0.2-0.3 mV elevated.
_ST_AFTER_J_S = 0.0


@dataclass(frozen=True)
class ECGMeasurements:
    """Measurements of one ECG (see the module docstring for how each is made).

    Attributes
    ----------
    heart_rate_bpm : float
        60 / median R-R interval.
    rr_cv : float
        Standard deviation / mean of the R-R intervals.
    qrs_ms : float
        QRS duration on the median beat.
    st_deviation_mv : dict of str -> float
        ST level at the J point minus the PR level, per lead (absent leads left out).
    n_beats : int
        R peaks found.
    """

    heart_rate_bpm: float
    rr_cv: float
    qrs_ms: float
    st_deviation_mv: dict[str, float] = field(default_factory=dict)
    n_beats: int = 0

    @property
    def max_abs_st_mv(self) -> float:
        """The largest absolute ST deviation over the leads (NaN without leads)."""
        return max((abs(v) for v in self.st_deviation_mv.values()), default=math.nan)


@dataclass(frozen=True)
class NormalECGRule:
    """Limits of a clinically normal ECG (defaults: the module docstring's rule).

    Attributes
    ----------
    heart_rate_bpm : (float, float)
        Inclusive normal range of the heart rate.
    max_rr_cv : float
        Largest coefficient of variation of R-R intervals of a regular rhythm.
    max_qrs_ms : float
        QRS duration must be below this.
    max_st_deviation_mv : float
        Every lead's absolute ST deviation must be at most this...
    max_st_elevation_v2_v3_mv : float
        ... except ST elevation in V2 and V3, allowed up to this.
    """

    heart_rate_bpm: tuple[float, float] = (50.0, 100.0)
    max_rr_cv: float = 0.15
    max_qrs_ms: float = 120.0
    max_st_deviation_mv: float = 0.1
    max_st_elevation_v2_v3_mv: float = 0.2

    def st_limit(self, lead: str, value: float) -> float:
        """Return the largest allowed absolute ST deviation of ``value`` in ``lead``."""
        return self.max_st_elevation_v2_v3_mv if lead in ("V2", "V3") and value > 0 else self.max_st_deviation_mv

    def reasons(self, m: ECGMeasurements) -> list[str]:
        """Return why ``m`` is not normal (empty list: normal)."""
        out = []
        lo, hi = self.heart_rate_bpm
        if not lo <= m.heart_rate_bpm <= hi:
            out.append(f"heart rate {m.heart_rate_bpm:.0f} bpm outside {lo:g}-{hi:g}")
        if m.rr_cv > self.max_rr_cv:
            out.append(f"irregular rhythm (R-R CV {m.rr_cv:.2f} > {self.max_rr_cv:g})")
        if not m.qrs_ms < self.max_qrs_ms:
            out.append(f"QRS {m.qrs_ms:.0f} ms >= {self.max_qrs_ms:g}")
        beyond = {lead: v for lead, v in m.st_deviation_mv.items() if abs(v) > self.st_limit(lead, v)}
        if beyond:
            lead = max(beyond, key=lambda k: abs(beyond[k]))
            out.append(f"ST deviation {beyond[lead]:+.2f} mV in {lead} beyond {self.st_limit(lead, beyond[lead]):g}"
                       + (f" (and {len(beyond) - 1} more lead(s))" if len(beyond) > 1 else ""))
        return out

    def is_normal(self, m: ECGMeasurements) -> bool:
        """Return True when every limit holds."""
        return not self.reasons(m)


def _qrs_bounds(beat: np.ndarray, fs: float, r_index: int) -> tuple[int, int]:
    """QRS onset and end (samples of ``beat``) from the spatial slope around the R peak."""
    slope = np.sqrt((np.diff(beat, axis=1) ** 2).sum(axis=0))
    reach = int(round(_QRS_SEARCH_S * fs))
    lo, hi = max(0, r_index - reach), min(len(slope), r_index + reach)
    peak = float(slope[lo:hi].max())
    if peak <= 0:
        raise BeatDetectionError("flat median beat: no QRS to measure")
    above = slope >= _QRS_SLOPE_FRACTION * peak
    onset = r_index
    while onset > lo and above[onset - 1]:
        onset -= 1
    end = min(r_index, len(slope) - 1)
    while end < hi - 1 and above[end + 1]:
        end += 1
    return onset, end + 1  # slope[i] is between samples i and i + 1


def measure_ecg(x: np.ndarray, fs: float, leads: tuple[str, ...] = STANDARD_LEADS, *,
                lead_present: np.ndarray | None = None,
                window_s: tuple[float, float] = DEFAULT_BEAT_WINDOW_S) -> ECGMeasurements:
    """Measure heart rate, rhythm regularity, QRS duration and ST deviation of one record.

    Parameters
    ----------
    x : float array ``[leads, T]``
        The record in mV, band-passed (baseline-free), at ``fs`` Hz.
    fs : float
        Sampling rate in Hz.
    leads : tuple of str
        Names of the rows of ``x``.
    lead_present : bool array ``[leads]``, optional
        Leads recorded; absent leads get no ST value (default: every non-flat lead).
    window_s : (float, float)
        Median-beat window (seconds before, after R).

    Returns
    -------
    ECGMeasurements

    Raises
    ------
    BeatDetectionError
        Fewer than 3 complete beats (an unmeasurable record).
    """
    x = np.asarray(x, dtype=np.float64)
    peaks = detect_r_peaks(x, fs)
    if len(peaks) < 3:
        raise BeatDetectionError(f"only {len(peaks)} R peaks found (need 3)")
    rr = np.diff(peaks) / fs
    beat = median_beat(x, fs, window_s=window_s, peaks=peaks).astype(np.float64)
    r_index = int(round(window_s[0] * fs))
    onset, end = _qrs_bounds(beat, fs, r_index)
    pr = slice(max(0, onset - int(round(_PR_WINDOW_S * fs))), max(1, onset))
    st_at = min(beat.shape[1] - 1, end + int(round(_ST_AFTER_J_S * fs)))
    present = np.ptp(x, axis=1) > 0 if lead_present is None else np.asarray(lead_present, bool)
    st = {lead: float(beat[i, st_at] - np.median(beat[i, pr])) for i, lead in enumerate(leads) if present[i]}
    return ECGMeasurements(heart_rate_bpm=float(60.0 / np.median(rr)), rr_cv=float(rr.std() / rr.mean()),
                           qrs_ms=float(1000.0 * (end - onset) / fs), st_deviation_mv=st, n_beats=len(peaks))


def measure_ecg_file(path: str | os.PathLike, spec: ECGInputSpec = MEASUREMENT_SPEC) -> ECGMeasurements:
    """Read one ECG file (any format riskfm reads), preprocess it per ``spec`` and measure it.

    Raises
    ------
    BeatDetectionError
        The record has too few beats to measure.
    ValueError, OSError
        The file cannot be read.
    """
    from riskfm.ecg.io import read_ecg
    from riskfm.ecg.preprocess import prepare_ecg

    x, present = prepare_ecg(read_ecg(path), spec, crop=False)
    return measure_ecg(x, spec.fs, spec.leads, lead_present=present)
