"""Per-record signal quality: flat or saturated leads, missing samples, excessive noise.

:func:`ecg_quality` inspects a raw recording (mV, before filtering) and returns a
:class:`QualityReport`; ``report.ok`` is False when any lead fails a check, and ``report.reasons``
says which lead failed which check, so cohort loading can exclude records with counted reasons
(``riskfm.data.dataset.prepare_cohort(..., ecg_quality=True)`` and the ECG store's index).

Checks (thresholds are parameters of :class:`QualityThresholds`):

* **nan**: a lead has non-finite samples;
* **flat**: a lead's standard deviation is below ``flat_std_mv`` (0.01 mV = 10 uV): a detached
  electrode or an empty channel; a lead that is exactly zero counts as flat;
* **saturated**: at least ``saturation_fraction`` (2 %) of a lead's samples sit at its minimum or
  maximum value (the amplifier clipped: a genuine ECG touches its extremes only briefly), or the
  lead exceeds ``max_abs_mv`` (10 mV, far beyond physiological amplitudes);
* **noisy**: more than ``noise_power_fraction`` (50 %) of a lead's power lies above
  ``noise_band_hz`` (40 Hz) - where the QRS complex has little energy - i.e. EMG or mains noise
  dominates the signal.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from riskfm.ecg.record import ECG

__all__ = ["QualityThresholds", "QualityReport", "ecg_quality"]


@dataclass(frozen=True)
class QualityThresholds:
    """Limits of :func:`ecg_quality` (units in the attribute names)."""

    flat_std_mv: float = 0.01
    saturation_fraction: float = 0.02
    max_abs_mv: float = 10.0
    noise_band_hz: float = 40.0
    noise_power_fraction: float = 0.5


@dataclass
class QualityReport:
    """Outcome of :func:`ecg_quality` for one record.

    Attributes
    ----------
    flat, saturated, nan, noisy : list of str
        Leads failing each check.
    noise_fraction : dict
        Lead -> share of power above the noise band (0..1).
    """

    flat: list[str] = field(default_factory=list)
    saturated: list[str] = field(default_factory=list)
    nan: list[str] = field(default_factory=list)
    noisy: list[str] = field(default_factory=list)
    noise_fraction: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when no lead fails a check."""
        return not (self.flat or self.saturated or self.nan or self.noisy)

    @property
    def reasons(self) -> list[str]:
        """One short text per failed check, e.g. ``"flat lead: V3, V4"`` (empty when ok)."""
        out = []
        for label, leads in (("NaN samples", self.nan), ("flat lead", self.flat),
                             ("saturated lead", self.saturated), ("excessive noise", self.noisy)):
            if leads:
                out.append(f"{label}: {', '.join(leads)}")
        return out

    def as_dict(self) -> dict:
        """Return a flat dict for an index table: ``quality_ok`` and ``quality_flags`` ("" when ok)."""
        return {"quality_ok": self.ok, "quality_flags": "; ".join(self.reasons)}


def ecg_quality(ecg: ECG, thresholds: QualityThresholds | None = None) -> QualityReport:
    """Check every lead of a raw recording (see the module docstring for the checks).

    Parameters
    ----------
    ecg : ECG
        Recording in mV as read (before filtering or normalisation).
    thresholds : QualityThresholds, optional

    Returns
    -------
    QualityReport
    """
    t = thresholds or QualityThresholds()
    report = QualityReport()
    x = np.asarray(ecg.signal, dtype=np.float64)
    nyquist = ecg.fs / 2
    for name, row in zip(ecg.leads, x):
        finite = np.isfinite(row)
        if not finite.all():
            report.nan.append(name)
            row = row[finite]
        if row.size < 2 or np.std(row) < t.flat_std_mv:
            report.flat.append(name)
            continue
        lo, hi = row.min(), row.max()
        at_rails = max(np.mean(row == lo), np.mean(row == hi))
        if at_rails >= t.saturation_fraction or np.abs(row).max() > t.max_abs_mv:
            report.saturated.append(name)
        if t.noise_band_hz < nyquist:
            spectrum = np.abs(np.fft.rfft(row - row.mean())) ** 2
            freqs = np.fft.rfftfreq(row.size, d=1.0 / ecg.fs)
            total = spectrum.sum()
            fraction = float(spectrum[freqs > t.noise_band_hz].sum() / total) if total > 0 else 0.0
            report.noise_fraction[name] = fraction
            if fraction > t.noise_power_fraction:
                report.noisy.append(name)
    return report
