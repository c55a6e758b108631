"""The ECG container that every riskfm reader returns and every ECG step consumes."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from riskfm.ecg.leads import canonical_lead_name

__all__ = ["ECG"]


@dataclass(eq=False)
class ECG:
    """A multi-lead ECG recording in millivolts with its lead names and provenance.

    Attributes
    ----------
    signal : np.ndarray
        float32 ``[n_leads, T]`` in mV, one row per lead. Converted to a C-contiguous float32
        array on construction.
    fs : float
        Sampling rate in Hz; finite and positive.
    leads : tuple of str
        One name per row of ``signal``: canonical names (``"I"`` .. ``"V6"``) for the standard
        leads, the file's own names for anything else (e.g. Frank leads ``"vx"``). Unique.
    meta : dict
        Provenance and acquisition details written by the readers, e.g. ``source`` (path),
        ``format`` ("wfdb" / "dicom"), ``units`` (original units per kept channel),
        ``channel_names`` (original names per kept channel), ``original_channel_names`` (all
        channels in the file), ``dropped_channels``, ``comments``, ``age`` (years), ``sex``.

    Raises
    ------
    ValueError
        If ``signal`` is not 2-D, the number of lead names differs from the number of rows,
        lead names repeat, or ``fs`` is not a finite positive number.
    """

    signal: np.ndarray
    fs: float
    leads: tuple[str, ...]
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        signal = np.ascontiguousarray(self.signal, dtype=np.float32)
        if signal.ndim != 2:
            raise ValueError(f"ECG signal must be 2-D [n_leads, T]; got shape {signal.shape}")
        leads = tuple(str(name) for name in self.leads)
        if len(leads) != signal.shape[0]:
            raise ValueError(
                f"ECG has {signal.shape[0]} signal rows but {len(leads)} lead names {leads}"
            )
        duplicates = sorted({name for name in leads if leads.count(name) > 1})
        if duplicates:
            raise ValueError(f"ECG lead names must be unique; repeated: {duplicates}")
        try:
            fs = float(self.fs)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"ECG sampling rate fs must be a number in Hz; got {self.fs!r}") from exc
        if not math.isfinite(fs) or fs <= 0:
            raise ValueError(f"ECG sampling rate fs must be finite and > 0 Hz; got {self.fs!r}")
        self.signal = signal
        self.leads = leads
        self.fs = fs
        self.meta = dict(self.meta) if self.meta is not None else {}

    @property
    def n_leads(self) -> int:
        """Number of leads (rows of ``signal``)."""
        return int(self.signal.shape[0])

    @property
    def n_samples(self) -> int:
        """Number of samples per lead, T."""
        return int(self.signal.shape[1])

    @property
    def duration_s(self) -> float:
        """Recording length in seconds (``T / fs``)."""
        return self.n_samples / self.fs

    def lead(self, name: str) -> np.ndarray:
        """One lead's samples.

        Parameters
        ----------
        name : str
            Lead name: exact (``"vx"``) or any alias of a standard lead (``"avr"``, ``"DII"``).

        Returns
        -------
        np.ndarray
            float32 ``[T]`` in mV, a view into ``signal``.

        Raises
        ------
        KeyError
            When the recording has no such lead; the message lists the leads it has.
        """
        if name in self.leads:
            return self.signal[self.leads.index(name)]
        canonical = canonical_lead_name(name)
        if canonical is not None and canonical in self.leads:
            return self.signal[self.leads.index(canonical)]
        raise KeyError(f"ECG has no lead {name!r}; it has {', '.join(self.leads)}")

    def __repr__(self) -> str:
        source = self.meta.get("source")
        where = f", source={str(source)!r}" if source else ""
        return (
            f"ECG(leads={list(self.leads)}, T={self.n_samples}, fs={self.fs:g} Hz, "
            f"duration={self.duration_s:.3g} s{where})"
        )
