"""Plausibility checks that keep implausible ECG records from silently giving wrong risk scores.

:func:`ecg_quality` (:mod:`riskfm.ecg.quality`) grades signal quality and is off by default;
these checks catch records that are *wrong*, not merely noisy, and are meant to run on every
record before it reaches an encoder:

* **too short**: the record lasts less than ``min_duration_fraction`` (50 %) of the encoder's
  input window (a 0.1 s fragment zero-padded to 10 s is not an ECG);
* **all leads flat**: every lead's standard deviation is below ``flat_std_mv`` (0.01 mV, the
  threshold of :class:`~riskfm.ecg.quality.QualityThresholds`): constant, all-zero or empty
  channels only;
* **units**: a lead's robust amplitude, the 99.5th percentile of ``|x - median(x)|`` over its
  finite samples, exceeds ``max_amplitude_mv`` (30 mV). Genuine ECG waves stay within a few mV,
  so this is µV data labelled as mV (amplitudes of hundreds to thousands of "mV"). The median
  removes a DC offset, and the percentile ignores up to 0.5 % of samples, so a pacing spike or
  an isolated artefact does not trigger it;
* **flat leads** (not an exclusion): leads that are flat while others are not are listed in
  ``flat_leads`` so the caller masks them absent (:func:`drop_leads`) instead of feeding the
  encoder a present-but-zero lead.

Reason strings
--------------
An excluded record gets ``exclude_reason = "ecg implausible: <category>: <details>"``:

* ``"ecg implausible: too short: record is 0.1 s, shorter than 50% of the encoder's 10 s window"``
* ``"ecg implausible: all leads flat: 12 of 12 leads have std < 0.01 mV (constant, zero or empty)"``
* ``"ecg implausible: units: amplitude 1550 mV in lead II exceeds 30 mV (µV data labelled mV?)"``
* ``"ecg implausible: no leads: the record has no leads"``

The category (the text between the first and the second ``": "``) is one of the ``CATEGORY_*``
constants and never holds numbers, so ``": ".join(reason.split(": ")[:2])`` (or
:func:`reason_category`) groups a cohort's exclusions stably; everything specific to the record
(durations, lead names, amplitudes) comes after the second colon. Checks run in the order too
short, no leads, all leads flat, units; the first that fails gives the reason.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from riskfm.ecg.leads import canonical_lead_name
from riskfm.ecg.quality import QualityThresholds
from riskfm.ecg.record import ECG

__all__ = [
    "CATEGORY_ALL_FLAT",
    "CATEGORY_NO_LEADS",
    "CATEGORY_TOO_SHORT",
    "CATEGORY_UNITS",
    "REASON_PREFIX",
    "ECGPlausibility",
    "ECGPlausibilityResult",
    "check_ecg_plausibility",
    "drop_leads",
    "reason_category",
    "robust_amplitude_mv",
]

#: Every exclusion reason starts with ``REASON_PREFIX + ": "``.
REASON_PREFIX = "ecg implausible"
CATEGORY_TOO_SHORT = "too short"
CATEGORY_NO_LEADS = "no leads"
CATEGORY_ALL_FLAT = "all leads flat"
CATEGORY_UNITS = "units"

#: Percentile of ``|x - median(x)|`` used as a lead's robust amplitude.
AMPLITUDE_PERCENTILE = 99.5


@dataclass(frozen=True)
class ECGPlausibility:
    """Limits of :func:`check_ecg_plausibility` (units in the attribute names).

    Attributes
    ----------
    enabled : bool
        False: every record is kept and no lead is masked.
    flat_std_mv : float
        A lead whose standard deviation is below this is flat (detached electrode, empty channel).
    max_amplitude_mv : float
        A robust per-lead amplitude beyond this is a units error (µV data labelled mV).
    min_duration_fraction : float
        A record shorter than this share of the encoder's window is excluded.
    mask_flat_leads : bool
        List flat leads (some, not all) in ``flat_leads`` so they are marked absent.
    """

    enabled: bool = True
    flat_std_mv: float = QualityThresholds.flat_std_mv
    max_amplitude_mv: float = 30.0
    min_duration_fraction: float = 0.5
    mask_flat_leads: bool = True

    def __post_init__(self) -> None:
        for name, low, strict in (("flat_std_mv", 0.0, False), ("min_duration_fraction", 0.0, False),
                                  ("max_amplitude_mv", 0.0, True)):
            value = getattr(self, name)
            try:
                number = float(value)
            except (TypeError, ValueError):
                number = math.nan
            if not math.isfinite(number) or number < low or (strict and number == low):
                bound = "> 0" if strict else ">= 0"
                raise ValueError(f"ECGPlausibility.{name} must be a finite number {bound}; got {value!r}")


@dataclass
class ECGPlausibilityResult:
    """Outcome of :func:`check_ecg_plausibility` for one record.

    Attributes
    ----------
    exclude_reason : str or None
        None to keep the record; else ``"ecg implausible: <category>: <details>"`` (see the module
        docstring).
    flat_leads : list of str
        Leads to mask absent (flat while other leads are not); empty when excluded.
    """

    exclude_reason: str | None = None
    flat_leads: list[str] = field(default_factory=list)

    @property
    def keep(self) -> bool:
        """True when the record passes (``exclude_reason is None``)."""
        return self.exclude_reason is None


def reason_category(reason: str) -> str:
    """Return the stable grouping key of a reason: ``"ecg implausible: units"`` for a units exclusion."""
    return ": ".join(reason.split(": ")[:2])


def _reason(category: str, details: str) -> str:
    return f"{REASON_PREFIX}: {category}: {details}"


def _fmt(value: float) -> str:
    """Format a short human number: ``1550``, ``31.2``, ``0.1``, ``10``."""
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"


def robust_amplitude_mv(signal: np.ndarray) -> np.ndarray:
    """Return the per-lead robust amplitude: 99.5th percentile of ``|x - median(x)|``.

    Parameters
    ----------
    signal : ndarray [n_leads, T]
        ECG samples in mV. Non-finite samples are ignored.

    Returns
    -------
    ndarray [n_leads], float64
        Amplitude per lead in mV (0 for a lead without finite samples).
    """
    x = np.asarray(signal, dtype=np.float64)
    out = np.zeros(x.shape[0])
    for i, row in enumerate(x):
        row = row[np.isfinite(row)]
        if row.size:
            out[i] = np.percentile(np.abs(row - np.median(row)), AMPLITUDE_PERCENTILE)
    return out


def _flat_mask(signal: np.ndarray, flat_std_mv: float) -> np.ndarray:
    """Return bool ``[n_leads]``: True for leads with < 2 finite samples or their std < ``flat_std_mv``."""
    x = np.asarray(signal, dtype=np.float64)
    flat = np.zeros(x.shape[0], dtype=bool)
    for i, row in enumerate(x):
        row = row[np.isfinite(row)]
        flat[i] = row.size < 2 or float(np.std(row)) < flat_std_mv
    return flat


def check_ecg_plausibility(ecg: ECG, window_s: float | None = None,
                          limits: ECGPlausibility | None = None) -> ECGPlausibilityResult:
    """Decide whether a raw record (mV, as read) is plausible enough to encode.

    Parameters
    ----------
    ecg : ECG
        The record as read, before filtering or normalisation.
    window_s : float, optional
        Length in seconds of the encoder's input window; the duration check is skipped when None.
    limits : ECGPlausibility, optional
        Thresholds (defaults: flat below 0.01 mV std, units error above 30 mV, at least 50 % of
        the window).

    Returns
    -------
    ECGPlausibilityResult
        ``exclude_reason`` (None = keep) and ``flat_leads`` to mask absent.

    Raises
    ------
    ValueError
        ``window_s`` is not a finite number > 0.
    """
    limits = limits or ECGPlausibility()
    if not limits.enabled:
        return ECGPlausibilityResult()
    if window_s is not None and not (math.isfinite(float(window_s)) and float(window_s) > 0):
        raise ValueError(f"check_ecg_plausibility: window_s must be a finite number of seconds > 0; got {window_s!r}")

    n_leads, n_samples = ecg.signal.shape
    if window_s is not None:
        duration = n_samples / ecg.fs
        if duration < limits.min_duration_fraction * float(window_s):
            return ECGPlausibilityResult(_reason(
                CATEGORY_TOO_SHORT,
                f"record is {_fmt(duration)} s, shorter than {_fmt(100 * limits.min_duration_fraction)}% "
                f"of the encoder's {_fmt(float(window_s))} s window",
            ))
    if n_leads == 0:
        return ECGPlausibilityResult(_reason(CATEGORY_NO_LEADS, "the record has no leads"))

    flat = _flat_mask(ecg.signal, limits.flat_std_mv)
    if flat.all():
        return ECGPlausibilityResult(_reason(
            CATEGORY_ALL_FLAT,
            f"{n_leads} of {n_leads} leads have std < {_fmt(limits.flat_std_mv)} mV (constant, zero or empty)",
        ))

    amplitude = robust_amplitude_mv(ecg.signal)
    worst = int(np.argmax(amplitude))
    if amplitude[worst] > limits.max_amplitude_mv:
        return ECGPlausibilityResult(_reason(
            CATEGORY_UNITS,
            f"amplitude {_fmt(amplitude[worst])} mV in lead {ecg.leads[worst]} exceeds "
            f"{_fmt(limits.max_amplitude_mv)} mV (µV data labelled mV?)",
        ))

    flat_leads = [ecg.leads[i] for i in np.flatnonzero(flat)] if limits.mask_flat_leads else []
    return ECGPlausibilityResult(None, flat_leads)


def drop_leads(ecg: ECG, leads: Sequence[str]) -> ECG:
    """Return a new ECG without the rows of ``leads`` (the others bit-identical), noting them in ``meta``.

    Parameters
    ----------
    ecg : ECG
    leads : sequence of str
        Lead names (exact, or aliases of standard leads such as ``"avr"``) to remove, e.g.
        ``check_ecg_plausibility(ecg).flat_leads``.

    Returns
    -------
    ECG
        Same ``fs``; ``meta`` copied, with the removed leads appended to
        ``meta["masked_flat_leads"]`` (a list, created when absent). With no leads to drop, a copy.

    Raises
    ------
    KeyError
        A name is not a lead of ``ecg``.
    ValueError
        Dropping would leave no lead (exclude the record instead).
    """
    drop: list[str] = []
    for name in leads:
        resolved = name if name in ecg.leads else canonical_lead_name(name)
        if resolved is None or resolved not in ecg.leads:
            raise KeyError(f"drop_leads: ECG has no lead {name!r}; it has {', '.join(ecg.leads)}")
        if resolved not in drop:
            drop.append(resolved)
    keep = [i for i, name in enumerate(ecg.leads) if name not in drop]
    if not keep:
        raise ValueError(f"drop_leads: removing {drop} would leave the ECG without leads")
    meta = dict(ecg.meta)
    if drop:
        meta["masked_flat_leads"] = [*meta.get("masked_flat_leads", []), *drop]
    return ECG(signal=ecg.signal[keep].copy(), fs=ecg.fs, leads=tuple(ecg.leads[i] for i in keep), meta=meta)
