"""Lead assembly shared by every ECG reader: units to mV, canonical lead names, standard order.

A reader parses its own file format into per-channel samples, channel names and units, then hands
them to the functions here, which are format independent:

* :func:`millivolts_per_unit` - factor from a voltage unit (``"uV"``, ``"mV"``, ``"V"`` ...) to mV;
* :func:`select_channels` - which channels to keep for ``leads="standard"`` / ``"all"``, renamed to
  the canonical names (``I, II, III, aVR, aVL, aVF, V1 .. V6``) in standard order, refusing
  duplicate leads;
* :func:`to_millivolts` - ``[T, n]`` samples in per-channel units -> float32 ``[n, T]`` in mV;
* :func:`check_samples` - refuse empty signals and NaN/inf samples, naming each bad lead;
* :func:`assemble_leads` - all of the above for per-lead rows (XML formats), deriving the limb leads
  III, aVR, aVL, aVF from I and II when the file lacks them;
* :func:`normalise_sex` - ``"F"`` / ``"M"`` from the usual spellings.

Import rule: this module imports only :mod:`riskfm.ecg.errors`, :mod:`riskfm.ecg.leads`,
:mod:`riskfm.ecg.spec` and (lazily) :mod:`riskfm.ecg.preprocess`. Readers import it; it never
imports a reader, the reader registry or :mod:`riskfm.ecg.io`, so the readers have no import cycle.
A reader you add with :func:`riskfm.ecg.io.register_ecg_reader` can use it too.

Examples
--------
>>> import numpy as np
>>> rows = [np.ones(500) * 1000.0, np.ones(500) * 500.0]          # two leads in uV
>>> signal, leads, derived, _ = assemble_leads(
...     [r * millivolts_per_unit("uV") for r in rows], ["DII", "I"], "standard", "ecg.xml")
>>> leads, derived, signal.shape
(['I', 'II', 'III', 'aVR', 'aVL', 'aVF'], ['III', 'aVR', 'aVL', 'aVF'], (6, 500))
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from riskfm.ecg.errors import (
    DuplicateLeadError,
    ECGFormatError,
    ECGUnitsError,
    EmptySignalError,
    NonFiniteSampleError,
    NoRecognisedLeadsError,
)
from riskfm.ecg.leads import canonical_lead_name
from riskfm.ecg.spec import STANDARD_LEADS

__all__ = [
    "Selection",
    "assemble_leads",
    "check_samples",
    "millivolts_per_unit",
    "normalise_sex",
    "select_channels",
    "to_millivolts",
]

# Spellings of voltage units found in WFDB headers and DICOM/UCUM codes. Lower-cased on lookup:
# "MV" in an ECG header means millivolt, never megavolt.
_MV_PER_UNIT: dict[str, float] = {
    "mv": 1.0, "millivolt": 1.0, "millivolts": 1.0,
    "uv": 1e-3, "\u00b5v": 1e-3, "\u03bcv": 1e-3, "microvolt": 1e-3, "microvolts": 1e-3,
    "nv": 1e-6, "nanovolt": 1e-6, "nanovolts": 1e-6,
    "v": 1e3, "volt": 1e3, "volts": 1e3,
}


def millivolts_per_unit(unit: str | None) -> float | None:
    """Factor that converts a value in ``unit`` to mV, or None when ``unit`` is not a voltage.

    Parameters
    ----------
    unit : str or None
        Unit as written by the file: ``"mV"``, ``"uV"``/``"µV"``, ``"V"``, ``"nV"`` or their
        spelled-out names (case-insensitive).

    Returns
    -------
    float or None
        mV per ``unit`` (1.0 for mV, 1e-3 for uV, 1e3 for V), or None when unknown.
    """
    if unit is None:
        return None
    return _MV_PER_UNIT.get(str(unit).strip().lower())


@dataclass
class Selection:
    """Which file channels to keep, under which names, in which order.

    Attributes
    ----------
    indices : list of int
        File channel index of each kept lead, in output order.
    names : list of str
        Output name of each kept lead: canonical names for standard leads (in ``STANDARD_LEADS``
        order), then, with ``leads="all"``, the other channels under their names in the file.
    dropped : list of int
        File channel indices not kept (``leads="standard"`` only; empty for ``"all"``).
    """

    indices: list[int]
    names: list[str]
    dropped: list[int] = field(default_factory=list)


def select_channels(names: Sequence[str], mode: str, path: str | os.PathLike) -> Selection:
    """Decide which channels to keep from their names (before any sample is read).

    Parameters
    ----------
    names : sequence of str
        Channel names in file order (any alias :func:`riskfm.ecg.leads.canonical_lead_name` knows).
    mode : {"standard", "all"}
        ``"standard"``: the standard 12-lead leads present, in canonical order, the rest dropped.
        ``"all"``: those, then every other channel in file order under its own name.
    path : path-like
        The file, for error messages.

    Returns
    -------
    Selection
        Kept channel indices and names in output order, and the dropped indices.

    Raises
    ------
    DuplicateLeadError
        Two channels name the same lead (or, with ``"all"``, two other channels share a name).
    NoRecognisedLeadsError
        ``"standard"`` and no channel is a standard lead; ``"all"`` and there is no channel.
    """
    canonical_to_index: dict[str, int] = {}
    unknown: list[int] = []
    for index, name in enumerate(names):
        canonical = canonical_lead_name(name)
        if canonical is None:
            unknown.append(index)
            continue
        if canonical in canonical_to_index:
            first = names[canonical_to_index[canonical]]
            raise DuplicateLeadError(
                path,
                f"duplicate lead {canonical}: channels {canonical_to_index[canonical]} ({first!r}) and "
                f"{index} ({name!r}) both name it",
            )
        canonical_to_index[canonical] = index

    standard = [lead for lead in STANDARD_LEADS if lead in canonical_to_index]
    indices = [canonical_to_index[lead] for lead in standard]
    if mode == "standard":
        if not indices:
            raise NoRecognisedLeadsError(
                path,
                f"no recognisable ECG leads among channels {list(names)}; expected names such as "
                f"{', '.join(STANDARD_LEADS)} (or aliases like 'ii', 'DII', 'Lead II', 'MDC_ECG_LEAD_II')",
            )
        return Selection(indices, standard, unknown)

    seen: dict[str, int] = {}
    for index in unknown:
        if names[index] in seen:
            raise DuplicateLeadError(
                path, f"duplicate channel name {names[index]!r} (channels {seen[names[index]]} and {index})"
            )
        seen[names[index]] = index
    if not indices and not unknown:
        raise NoRecognisedLeadsError(path, "the record has no channels")
    return Selection(indices + unknown, standard + [names[i] for i in unknown], [])


def to_millivolts(
    samples: np.ndarray, units: Sequence[str | None], out_names: Sequence[str], path: str | os.PathLike
) -> np.ndarray:
    """Convert samples in per-channel units to mV, transposed to one row per lead.

    Parameters
    ----------
    samples : np.ndarray
        ``[T, n]`` (samples x channels) physical values, channel ``k`` in ``units[k]``.
    units : sequence of str or None
        Unit of each of the ``n`` channels (see :func:`millivolts_per_unit`).
    out_names : sequence of str
        Lead name of each channel, for error messages.
    path : path-like
        The file, for error messages.

    Returns
    -------
    np.ndarray
        float32 ``[n, T]`` (leads x samples) in mV. Scaled in float64, then stored as float32.

    Raises
    ------
    ECGUnitsError
        A channel's unit is not a voltage; the message names the lead and the unit.
    """
    factors = []
    for unit, name in zip(units, out_names):
        factor = millivolts_per_unit(unit)
        if factor is None:
            raise ECGUnitsError(
                path, f"lead {name} is in units {unit!r}, which cannot be converted to mV "
                      "(expected mV, uV or V)"
            )
        factors.append(factor)
    # Scale in float64, then store float32: mV values of ECGs need ~4 significant digits only.
    # The result is written once, transposed and cast in one pass into a C-ordered array (what ECG
    # keeps, so it does not copy again). Channels already in mV are not multiplied: x * 1.0 == x
    # exactly, so the values are those of the scaled path.
    samples = np.asarray(samples, dtype=np.float64)
    factors = np.asarray(factors, dtype=np.float64)
    if np.any(factors != 1.0):
        samples = samples * factors[None, :]
    return np.ascontiguousarray(samples.T, dtype=np.float32)


def check_samples(signal: np.ndarray, leads: Sequence[str], channel_names: Sequence[str],
                  path: str | os.PathLike) -> None:
    """Raise when the signal is empty or holds NaN/inf samples (naming each bad lead).

    Parameters
    ----------
    signal : np.ndarray
        ``[n_leads, T]`` (leads x samples), in mV.
    leads : sequence of str
        Output name of each row.
    channel_names : sequence of str
        Name of each row as written in the file (quoted in the message when it differs).
    path : path-like
        The file, for error messages.

    Raises
    ------
    EmptySignalError
        ``T`` is 0.
    NonFiniteSampleError
        Some samples are NaN or infinite; the message gives, per lead, how many of ``T``.
    """
    if signal.shape[1] == 0:
        raise EmptySignalError(path, f"zero-length signal (0 samples in {signal.shape[0]} leads)")
    finite = np.isfinite(signal)
    if finite.all():
        return
    problems = []
    for row in np.flatnonzero(~finite.all(axis=1)):
        n_nan = int(np.isnan(signal[row]).sum())
        n_inf = int(np.isinf(signal[row]).sum())
        parts = [f"{n} {kind}" for n, kind in ((n_nan, "NaN"), (n_inf, "inf")) if n]
        original = channel_names[row]
        label = leads[row] if original == leads[row] else f"{leads[row]} (channel {original!r})"
        problems.append(f"lead {label}: {' and '.join(parts)} of {signal.shape[1]} samples")
    raise NonFiniteSampleError(
        path, "non-finite samples (missing or invalid values) in " + "; ".join(problems)
    )


def assemble_leads(rows: Sequence[np.ndarray], names: Sequence[str], mode: str, path: str | os.PathLike,
                   ) -> tuple[np.ndarray, list[str], list[str], Selection]:
    """Stack per-lead sample rows (MUSE, HL7 aECG and similar XML ECGs) into ``[n_leads, T]``.

    Checks equal lengths and finite samples, selects channels for ``mode`` and, in standard mode,
    derives missing limb leads (III, aVR, aVL, aVF) from I and II (Einthoven / Goldberger; those
    XML files often store only I, II, V1-V6) and orders the result as ``STANDARD_LEADS``.

    Parameters
    ----------
    rows : sequence of np.ndarray
        One ``[T]`` array per channel in file order, already in mV.
    names : sequence of str
        Channel names in file order.
    mode : {"standard", "all"}
        As ``read_ecg(leads=...)``; limb leads are derived in ``"standard"`` mode only.
    path : path-like
        The file, for error messages.

    Returns
    -------
    signal : np.ndarray
        float32 ``[n_leads, T]`` (leads x samples) in mV.
    leads : list of str
        Name of each row of ``signal``.
    derived : list of str
        The leads computed from I and II rather than read from the file.
    selection : Selection
        Which file channels were kept (and dropped).

    Raises
    ------
    ECGFormatError
        The rows have different lengths.
    DuplicateLeadError, NoRecognisedLeadsError, EmptySignalError, NonFiniteSampleError
        As :func:`select_channels` and :func:`check_samples`.
    """
    from riskfm.ecg.preprocess import derive_limb_leads  # lazy: preprocess imports scipy

    lengths = {r.size for r in rows}
    if len(lengths) != 1:
        raise ECGFormatError(path, f"leads have different sample counts {sorted(lengths)}")
    selection = select_channels(names, mode, path)
    signal = np.stack([rows[i] for i in selection.indices]).astype(np.float32)
    check_samples(signal, selection.names, [names[i] for i in selection.indices], path)
    leads = list(selection.names)
    derived: list[str] = []
    if mode == "standard":
        signal, new = derive_limb_leads(signal, leads)
        derived = list(new[len(leads):])
        order = [lead for lead in STANDARD_LEADS if lead in new]
        signal = signal[[list(new).index(lead) for lead in order]]
        leads = order
    return signal, leads, derived, selection


def normalise_sex(value: str) -> str:
    """``"F"``/``"M"`` for the usual spellings of sex; the original text (stripped) otherwise.

    Parameters
    ----------
    value : str
        As written in the file (``"female"``, ``"MALE"``, ``"W"``, ``"F"`` ...).

    Returns
    -------
    str
        ``"F"``, ``"M"``, or ``value`` stripped of surrounding whitespace.
    """
    text = value.strip()
    lowered = text.lower()
    if lowered in ("f", "female", "w", "woman"):
        return "F"
    if lowered in ("m", "male", "man"):
        return "M"
    return text
