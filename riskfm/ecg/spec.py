"""What an ECG encoder expects of its input (the ECG half of the encoder contract)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

#: Canonical 12-lead order used everywhere in riskfm (ECGFounder's order).
STANDARD_LEADS: tuple[str, ...] = (
    "I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6",
)


@dataclass(frozen=True)
class ECGInputSpec:
    """Preprocessing an ECG encoder was trained with.

    Attributes
    ----------
    fs : float
        Sampling rate in Hz the encoder expects.
    n_samples : int
        Samples per window (``fs * seconds``).
    leads : tuple of str
        Lead names in the order of the encoder's input channels.
    bandpass_hz : (float, float) or None
        (low, high) band-pass corners in Hz, or None for no filtering.
    notch_hz : float or None
        Mains frequency to notch (50 or 60 Hz), or None.
    baseline_median_s : float or None
        Window in seconds of a median-filter baseline to subtract, or None.
    normalisation : str
        ``"global_zscore"`` (one z-score over the whole leads x samples array), ``"lead_zscore"``
        (per lead) or ``"none"`` (keep mV).
    representation : str
        ``"raw"`` (the ``n_samples`` window itself) or ``"median_beat"`` (the window is cut into
        R-aligned beats and the encoder sees their per-lead median,
        ``[leads, round(before * fs) + round(after * fs)]``; see ``riskfm.ecg.beats``).
    beat_window_s : (float, float)
        Seconds (before, after) the R peak kept in a median beat.
    licence : str
        Licence of the weights this spec belongs to.
    source : str
        Where the weights come from (paper / repository), for provenance.
    extra : dict
        Any further settings recorded with the spec.
    """

    #: The batch key that feeds an encoder of this spec (``collate_samples`` output).
    batch_key: ClassVar[str] = "ecg"

    fs: float = 500.0
    n_samples: int = 5000
    leads: tuple[str, ...] = STANDARD_LEADS
    bandpass_hz: tuple[float, float] | None = None
    notch_hz: float | None = None
    baseline_median_s: float | None = None
    normalisation: str = "none"
    representation: str = "raw"
    beat_window_s: tuple[float, float] = (0.25, 0.45)
    licence: str = "MIT"
    source: str = "riskfm"
    extra: dict = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        """Window length in seconds (``n_samples / fs``)."""
        return self.n_samples / self.fs

    @property
    def input_samples(self) -> int:
        """Length of the time axis the encoder receives."""
        if self.representation == "median_beat":
            return int(round(self.beat_window_s[0] * self.fs)) + int(round(self.beat_window_s[1] * self.fs))
        return self.n_samples
