"""Read ECG files into :class:`~riskfm.ecg.record.ECG` objects in mV with canonical lead names.

Formats
-------
* **WFDB** (PhysioNet: PTB, PTB-XL, MIMIC-IV-ECG, ...): pass the ``.hea`` header, a ``.dat``
  signal file with a sibling header, or the record path without extension. Samples are read in
  physical units with :func:`wfdb.rdrecord` and converted to mV from each channel's header units.
  Channels stored in several signal files (PTB's ``.dat`` + ``.xyz``) are handled by wfdb.
* **GE MUSE XML**, **HL7 aECG XML** (:mod:`riskfm.ecg.muse`, :mod:`riskfm.ecg.hl7`) and
  **HDF5** arrays in the CODE-15% layout addressed as ``"<file>.hdf5::<exam_id>"``
  (:mod:`riskfm.ecg.hdf5`).
* **DICOM ECG waveform** (``.dcm``, or any file with the ``DICM`` preamble): the RHYTHM multiplex
  group is read (the first group when none is labelled RHYTHM), with pydicom applying each
  channel's sensitivity; values are converted to mV from the channel's sensitivity units.

Lead selection
--------------
``leads="standard"`` keeps only the channels that are one of the 12 standard leads, in canonical
order (``I, II, III, aVR, aVL, aVF, V1 .. V6``); the others are listed in
``meta["dropped_channels"]``. Missing standard leads are simply absent (``riskfm.ecg.prepare_ecg``
derives or masks them). ``leads="all"`` keeps every channel: the standard leads first in canonical
order, then the other channels in file order under their original names.

Errors
------
Every failure raises a subclass of :class:`ECGReadError` (a ``ValueError``) whose message starts
with the path and says what is wrong; a missing file raises :class:`ECGFileNotFoundError`, which
is also a ``FileNotFoundError``. Nothing is silently repaired: NaN/inf samples, duplicate leads
and unknown units are errors, not guesses.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from riskfm.ecg.leads import canonical_lead_name
from riskfm.ecg.record import ECG
from riskfm.ecg.spec import STANDARD_LEADS

__all__ = [
    "ECGReadError",
    "ECGFileNotFoundError",
    "ECGHeaderError",
    "ECGFormatError",
    "ECGUnitsError",
    "NonFiniteSampleError",
    "DuplicateLeadError",
    "NoRecognisedLeadsError",
    "EmptySignalError",
    "read_ecg",
    "millivolts_per_unit",
]


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


class ECGReadError(ValueError):
    """An ECG file that cannot be read as it is.

    The message is ``"<path>: <problem>"``; both parts are also kept as attributes.

    Attributes
    ----------
    path : str
        The file (or WFDB record) that failed.
    problem : str
        What is wrong with it.
    """

    def __init__(self, path: str | os.PathLike, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class ECGFileNotFoundError(ECGReadError, FileNotFoundError):
    """The ECG file, its WFDB header or one of its signal files does not exist."""


class ECGHeaderError(ECGReadError):
    """The header (WFDB ``.hea``) or DICOM dataset is unreadable, corrupt or inconsistent."""


class ECGFormatError(ECGReadError):
    """The file is not in a supported ECG format, or holds no ECG waveform."""


class ECGUnitsError(ECGReadError):
    """A kept channel is in units that cannot be converted to mV."""


class NonFiniteSampleError(ECGReadError):
    """Some samples of a kept lead are NaN (e.g. WFDB invalid-sample markers) or infinite."""


class DuplicateLeadError(ECGReadError):
    """Two channels map to the same lead name, so the lead is ambiguous."""


class NoRecognisedLeadsError(ECGReadError):
    """No channel maps to a standard 12-lead name (or, with ``leads="all"``, there is no channel)."""


class EmptySignalError(ECGReadError):
    """The record holds zero samples."""


# --------------------------------------------------------------------------------------------
# Units and channel selection (format independent)
# --------------------------------------------------------------------------------------------

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
class _Selection:
    """Which file channels to keep, under which names, in which order."""

    indices: list[int]
    names: list[str]
    dropped: list[int] = field(default_factory=list)


def _select_channels(names: Sequence[str], mode: str, path: str | os.PathLike) -> _Selection:
    """Decide which channels to keep from their names (before any sample is read).

    Parameters
    ----------
    names : sequence of str
        Channel names in file order.
    mode : {"standard", "all"}
        See :func:`read_ecg`.
    path : path-like
        For error messages.
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
        return _Selection(indices, standard, unknown)

    seen: dict[str, int] = {}
    for index in unknown:
        if names[index] in seen:
            raise DuplicateLeadError(
                path, f"duplicate channel name {names[index]!r} (channels {seen[names[index]]} and {index})"
            )
        seen[names[index]] = index
    if not indices and not unknown:
        raise NoRecognisedLeadsError(path, "the record has no channels")
    return _Selection(indices + unknown, standard + [names[i] for i in unknown], [])


def _to_millivolts(
    samples: np.ndarray, units: Sequence[str | None], out_names: Sequence[str], path: str | os.PathLike
) -> np.ndarray:
    """Convert ``[T, n]`` samples in per-channel ``units`` to a float32 ``[n, T]`` array in mV."""
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
    signal = np.asarray(samples, dtype=np.float64).T * np.asarray(factors, dtype=np.float64)[:, None]
    return signal.astype(np.float32)


def _check_samples(signal: np.ndarray, leads: Sequence[str], channel_names: Sequence[str],
                   path: str | os.PathLike) -> None:
    """Raise when the signal is empty or holds NaN/inf samples (naming each bad lead)."""
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


def _assemble_leads(rows: Sequence[np.ndarray], names: Sequence[str], mode: str, path: str | os.PathLike,
                    ) -> tuple[np.ndarray, list[str], list[str], _Selection]:
    """Stack per-lead sample rows of an XML ECG (MUSE, HL7 aECG) into ``[leads, T]``.

    Checks equal lengths and finite samples, selects channels for ``mode`` and, in standard mode,
    derives missing limb leads from I and II (those XML files often store only I, II, V1-V6).
    Returns ``(signal, leads, derived_leads, selection)``.
    """
    from riskfm.ecg.preprocess import derive_limb_leads

    lengths = {r.size for r in rows}
    if len(lengths) != 1:
        raise ECGFormatError(path, f"leads have different sample counts {sorted(lengths)}")
    selection = _select_channels(names, mode, path)
    signal = np.stack([rows[i] for i in selection.indices]).astype(np.float32)
    _check_samples(signal, selection.names, [names[i] for i in selection.indices], path)
    leads = list(selection.names)
    derived: list[str] = []
    if mode == "standard":
        signal, new = derive_limb_leads(signal, leads)
        derived = list(new[len(leads):])
        order = [lead for lead in STANDARD_LEADS if lead in new]
        signal = signal[[list(new).index(lead) for lead in order]]
        leads = order
    return signal, leads, derived, selection


_AGE = re.compile(r"^\s*age\s*[:=]\s*([0-9]+(?:\.[0-9]+)?)\b", re.IGNORECASE)
_SEX = re.compile(r"^\s*(?:sex|gender)\s*[:=]\s*(\w+)", re.IGNORECASE)


def _normalise_sex(value: str) -> str:
    """``"F"``/``"M"`` for the usual spellings; the original text otherwise."""
    text = value.strip()
    lowered = text.lower()
    if lowered in ("f", "female", "w", "woman"):
        return "F"
    if lowered in ("m", "male", "man"):
        return "M"
    return text


def _demographics_from_comments(comments: Sequence[str]) -> dict:
    """Age (years) and sex from ``age: 81`` / ``sex: female`` lines (PTB-style WFDB comments)."""
    found: dict = {}
    for line in comments:
        if "age" not in found and (match := _AGE.match(line)):
            found["age"] = float(match.group(1))
        if "sex" not in found and (match := _SEX.match(line)):
            found["sex"] = _normalise_sex(match.group(1))
    return found


# --------------------------------------------------------------------------------------------
# Format detection
# --------------------------------------------------------------------------------------------


def _is_dicom(path: Path) -> bool:
    """True when the file has the DICOM Part 10 preamble (128 bytes, then ``DICM``)."""
    try:
        with path.open("rb") as handle:
            head = handle.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


def _detect_format(path: Path) -> tuple[str, Path]:
    """Return ``("wfdb", record_path_without_extension)`` or ``("dicom", file_path)``."""
    suffix = path.suffix.lower()
    if suffix == ".hea":
        if not path.is_file():
            raise ECGFileNotFoundError(path, "WFDB header file not found")
        return "wfdb", path.with_suffix("")
    if suffix == ".dcm":
        if not path.is_file():
            raise ECGFileNotFoundError(path, "DICOM file not found")
        return "dicom", path
    # A record name may itself contain dots ("JS00001.v2"), so test "<path>.hea" before suffixes.
    if Path(f"{path}.hea").is_file():
        return "wfdb", path
    if suffix == ".dat":
        header = path.with_suffix(".hea")
        if header.is_file():
            return "wfdb", path.with_suffix("")
        if not path.is_file():
            raise ECGFileNotFoundError(path, "WFDB signal file not found")
        raise ECGFileNotFoundError(path, f"WFDB header {header.name} not found next to the signal file")
    if not path.exists():
        raise ECGFileNotFoundError(path, f"no such file (nor a WFDB header {path.name}.hea)")
    if path.is_dir():
        raise ECGFormatError(path, "is a directory, not an ECG file or WFDB record")
    if _is_dicom(path):
        return "dicom", path
    if suffix in (".hdf5", ".h5", ".hdf"):
        raise ECGFormatError(path, "an HDF5 file holds many ECGs: address one as '<file>.hdf5::<exam_id>'")
    xml_kind = _xml_kind(path)
    if xml_kind is not None:
        return xml_kind, path
    raise ECGFormatError(
        path, f"unrecognised ECG file format (suffix {path.suffix!r}); supported: WFDB record "
              "(.hea/.dat), DICOM waveform (.dcm or DICM preamble), GE MUSE XML, HL7 aECG XML and "
              "HDF5 ('<file>.hdf5::<exam_id>')"
    )


def _xml_kind(path: Path) -> str | None:
    """``"muse"`` / ``"hl7"`` from the first KiB of an XML file, else None."""
    from riskfm.ecg.hl7 import is_hl7_aecg
    from riskfm.ecg.muse import is_muse_xml

    try:
        with path.open("rb") as handle:
            head = handle.read(2048)
    except OSError:
        return None
    if is_muse_xml(head):
        return "muse"
    if is_hl7_aecg(head):
        return "hl7"
    if path.suffix.lower() == ".xml":
        raise ECGFormatError(path, "XML file is neither a GE MUSE <RestingECG> nor an HL7 aECG <AnnotatedECG>")
    return None


# --------------------------------------------------------------------------------------------
# WFDB
# --------------------------------------------------------------------------------------------


def _read_wfdb(record: Path, source: Path, mode: str) -> ECG:
    """Read a WFDB record (``record`` = path without extension) into an ECG in mV."""
    import wfdb

    try:
        header = wfdb.rdheader(str(record))
    except FileNotFoundError as exc:
        raise ECGFileNotFoundError(source, f"WFDB header not found: {exc.filename or exc}") from exc
    except Exception as exc:  # wfdb raises assorted types (HeaderSyntaxError, IndexError, ...)
        raise ECGHeaderError(source, f"unreadable or corrupt WFDB header: {exc}") from exc

    if header.fs is None or not np.isfinite(float(header.fs)) or float(header.fs) <= 0:
        raise ECGHeaderError(source, f"corrupt WFDB header: sampling frequency {header.fs!r} is not > 0 Hz")
    if header.sig_len == 0:
        raise EmptySignalError(source, "zero-length signal (the WFDB header declares 0 samples)")

    def read(**kwargs):
        """wfdb.rdrecord with its assorted exceptions turned into ECGReadError subclasses."""
        try:
            return wfdb.rdrecord(str(record), physical=True, **kwargs)
        except FileNotFoundError as exc:
            missing = exc.filename or str(exc)
            raise ECGFileNotFoundError(source, f"WFDB signal file not found: {missing}") from exc
        except Exception as exc:  # truncated/corrupt signal files surface as numpy/wfdb errors
            raise ECGReadError(source, f"cannot read WFDB signal data: {exc}") from exc

    if isinstance(header, wfdb.Record):
        names = [str(name) for name in (header.sig_name or [])]
        # wfdb accepts a record line declaring more signals than there are signal lines; reading
        # the samples then fails obscurely, so report the inconsistency as a header problem.
        if header.n_sig is not None and len(names) != header.n_sig:
            raise ECGHeaderError(
                source, f"corrupt WFDB header: record line declares {header.n_sig} signals but "
                        f"{len(names)} signal lines follow"
            )
        selection = _select_channels(names, mode, source)
        # Read only the kept channels: faster, and a bad dropped channel cannot fail the read.
        rec = read(channels=selection.indices)
        samples = rec.p_signal
        kept_units = list(rec.units or [None] * len(selection.indices))
    else:
        # A multi-segment record's top header lists segments, not channels: read it whole
        # (segments merged into one record by wfdb) and select afterwards.
        rec = read(m2s=True)
        names = [str(name) for name in (rec.sig_name or [])]
        selection = _select_channels(names, mode, source)
        samples = None if rec.p_signal is None else rec.p_signal[:, selection.indices]
        kept_units = [(rec.units or [None] * len(names))[i] for i in selection.indices]

    if samples is None or samples.ndim != 2 or samples.shape[1] != len(selection.indices):
        raise ECGReadError(source, "WFDB reader returned no physical signal for the selected channels")
    channel_names = [names[i] for i in selection.indices]
    signal = _to_millivolts(samples, kept_units, selection.names, source)
    _check_samples(signal, selection.names, channel_names, source)

    comments = [str(line) for line in (header.comments or [])]
    meta: dict = {
        "source": str(source),
        "format": "wfdb",
        "record_name": header.record_name,
        "units": kept_units,
        "channel_names": channel_names,
        "original_channel_names": names,
        "dropped_channels": [names[i] for i in selection.dropped],
        "comments": comments,
    }
    if header.base_date is not None or header.base_time is not None:
        meta["acquisition_date"] = None if header.base_date is None else header.base_date.isoformat()
        meta["acquisition_time"] = None if header.base_time is None else header.base_time.isoformat()
    meta.update(_demographics_from_comments(comments))
    return ECG(signal=signal, fs=float(header.fs), leads=tuple(selection.names), meta=meta)


# --------------------------------------------------------------------------------------------
# DICOM
# --------------------------------------------------------------------------------------------

_WAVEFORM_DTYPES = {(8, "SB"): np.int8, (8, "UB"): np.uint8, (16, "SS"): np.int16, (16, "US"): np.uint16,
                    (32, "SL"): np.int32, (32, "UL"): np.uint32}


def _dicom_channel_name(channel) -> tuple[str, str]:
    """(name used for lead matching, name as written) of a DICOM channel definition."""
    written = ""
    code_value = ""
    if "ChannelSourceSequence" in channel and len(channel.ChannelSourceSequence):
        source = channel.ChannelSourceSequence[0]
        written = str(source.get("CodeMeaning", "") or "")
        code_value = str(source.get("CodeValue", "") or "")
    label = str(channel.get("ChannelLabel", "") or "")
    written = written or label or code_value
    # Prefer the human-readable meaning, fall back to the coded value (SCPECG "5.6.3-9-1").
    for candidate in (written, label, code_value):
        if candidate and canonical_lead_name(candidate) is not None:
            return candidate, written
    return written, written


def _dicom_age_years(age: str) -> float | None:
    """DICOM Age String (``"042Y"``, ``"006M"``, ``"003W"``, ``"010D"``) in years."""
    match = re.fullmatch(r"\s*(\d{1,3})\s*([DWMY])\s*", str(age or ""), re.IGNORECASE)
    if not match:
        return None
    value = float(match.group(1))
    per_year = {"D": 365.25, "W": 365.25 / 7, "M": 12.0, "Y": 1.0}[match.group(2).upper()]
    return value / per_year


def _read_dicom(path: Path, mode: str) -> ECG:
    """Read the RHYTHM multiplex group of a DICOM waveform file into an ECG in mV."""
    import pydicom
    from pydicom.waveforms.numpy_handler import multiplex_array

    try:
        ds = pydicom.dcmread(str(path))
    except FileNotFoundError as exc:
        raise ECGFileNotFoundError(path, "DICOM file not found") from exc
    except Exception as exc:  # InvalidDicomError, truncated files, ...
        raise ECGHeaderError(path, f"unreadable or corrupt DICOM file: {exc}") from exc
    if "WaveformSequence" not in ds or not len(ds.WaveformSequence):
        modality = ds.get("Modality", "unknown")
        raise ECGFormatError(path, f"DICOM file has no WaveformSequence (modality {modality}); not an ECG")

    groups = ds.WaveformSequence
    labels = [str(group.get("MultiplexGroupLabel", "") or "").strip() for group in groups]
    index = next((i for i, label in enumerate(labels) if label.upper() == "RHYTHM"), 0)
    group = groups[index]

    try:
        fs = float(group.SamplingFrequency)
        channels = list(group.ChannelDefinitionSequence)
    except (AttributeError, TypeError, ValueError) as exc:
        raise ECGHeaderError(path, f"waveform group {index} lacks SamplingFrequency or channel "
                                   f"definitions: {exc}") from exc
    match_names, written_names = zip(*(_dicom_channel_name(ch) for ch in channels)) if channels else ((), ())
    selection = _select_channels(list(match_names), mode, path)

    units: list[str | None] = []
    for i in selection.indices:
        channel = channels[i]
        if "ChannelSensitivity" not in channel:
            # Without a sensitivity pydicom returns raw ADC counts: refuse rather than guess a scale.
            units.append(None)
            continue
        unit_seq = channel.get("ChannelSensitivityUnitsSequence")
        units.append(str(unit_seq[0].get("CodeValue", "")) if unit_seq else None)

    try:
        samples = ds.waveform_array(index)  # (samples, channels), sensitivity and baseline applied
    except Exception as exc:
        raise ECGReadError(path, f"cannot decode waveform group {index} ({labels[index] or 'unlabelled'}): "
                                 f"{exc}") from exc
    if samples.ndim != 2 or samples.shape[1] != len(channels):
        raise ECGHeaderError(path, f"waveform group {index} decodes to shape {samples.shape} but declares "
                                   f"{len(channels)} channels")
    samples = samples[:, selection.indices].astype(np.float64)

    # Samples equal to the padding value carry no data; mark them NaN so they are reported below.
    pad_bytes = group.get("WaveformPaddingValue")
    dtype = _WAVEFORM_DTYPES.get((int(group.WaveformBitsAllocated), str(group.WaveformSampleInterpretation)))
    if pad_bytes is not None and dtype is not None and len(pad_bytes) >= np.dtype(dtype).itemsize:
        pad_value = np.frombuffer(bytes(pad_bytes)[: np.dtype(dtype).itemsize], dtype=dtype)[0]
        raw = multiplex_array(ds, index, as_raw=True)[:, selection.indices]
        samples[raw == pad_value] = np.nan

    channel_names = [written_names[i] for i in selection.indices]
    unit_labels = [u if u is not None else "raw counts (no ChannelSensitivity)" for u in units]
    signal = _to_millivolts(samples, unit_labels, selection.names, path)
    _check_samples(signal, selection.names, channel_names, path)

    meta: dict = {
        "source": str(path),
        "format": "dicom",
        "waveform_group": index,
        "waveform_group_label": labels[index],
        "waveform_groups": labels,
        "units": units,
        "channel_names": channel_names,
        "original_channel_names": list(written_names),
        "dropped_channels": [written_names[i] for i in selection.dropped],
        "comments": [],
    }
    age = _dicom_age_years(ds.get("PatientAge", ""))
    if age is not None:
        meta["age"] = age
    sex = str(ds.get("PatientSex", "") or "").strip()
    if sex:
        meta["sex"] = _normalise_sex(sex)
    acquired = str(ds.get("AcquisitionDateTime", "") or "").strip()
    if acquired:
        meta["acquisition_datetime"] = acquired
    return ECG(signal=signal, fs=fs, leads=tuple(selection.names), meta=meta)


# --------------------------------------------------------------------------------------------
# Public entry point
# --------------------------------------------------------------------------------------------


def read_ecg(path: str | os.PathLike, *, leads: str = "standard") -> ECG:
    """Read an ECG file into an :class:`ECG` (float32 ``[n_leads, T]`` in mV, canonical names).

    Parameters
    ----------
    path : str or path-like
        A WFDB record (``.hea`` header, ``.dat`` signal file with a sibling header, or the record
        path without extension), a DICOM waveform file (``.dcm`` or any file with the DICM
        preamble), a GE MUSE XML or HL7 aECG XML file (recognised by their root elements; limb
        leads they lack are derived from I and II), or one exam of a CODE-15%-style HDF5 file
        addressed as ``"<file>.hdf5::<exam_id>"``.
    leads : {"standard", "all"}
        ``"standard"`` (default): keep the channels that are standard 12-lead leads, in canonical
        order ``I, II, III, aVR, aVL, aVF, V1 .. V6`` (those the file lacks are absent), and list
        the others in ``meta["dropped_channels"]``. ``"all"``: keep every channel, the standard
        leads first in canonical order, then the rest in file order under their original names.

    Returns
    -------
    ECG
        ``signal`` float32 ``[n_leads, T]`` in mV, ``fs`` in Hz, ``leads`` names, and ``meta`` with
        ``source``, ``format``, ``units`` and ``channel_names`` (per kept lead, as in the file),
        ``original_channel_names`` (all channels), ``dropped_channels``, ``comments`` (WFDB header
        comments), and ``age`` (years) / ``sex`` (``"F"``/``"M"``) when the file states them.

    Raises
    ------
    ECGFileNotFoundError
        The file, its header or a signal file does not exist (also a ``FileNotFoundError``).
    ECGHeaderError
        Unreadable or corrupt header / DICOM dataset.
    ECGFormatError
        Not a supported format, or a DICOM file without a waveform.
    NoRecognisedLeadsError, DuplicateLeadError
        No channel is a standard lead; two channels name the same lead.
    ECGUnitsError
        A kept channel's units are not a voltage.
    NonFiniteSampleError, EmptySignalError
        NaN/inf samples in a kept lead (the message names the lead and the count); no samples.
    ValueError
        ``leads`` is neither ``"standard"`` nor ``"all"``.

    Examples
    --------
    >>> ecg = read_ecg("records500/00000/00001_hr")          # doctest: +SKIP
    >>> ecg.leads[:3], ecg.fs, ecg.signal.shape               # doctest: +SKIP
    (('I', 'II', 'III'), 500.0, (12, 5000))
    """
    if leads not in ("standard", "all"):
        raise ValueError(f"read_ecg: leads must be 'standard' or 'all'; got {leads!r}")
    from riskfm.ecg.hdf5 import read_hdf5_ecg, split_hdf5_address

    address = split_hdf5_address(path)
    if address is not None:
        return read_hdf5_ecg(address[0], address[1], mode=leads)
    path = Path(os.fspath(path)).expanduser()
    fmt, target = _detect_format(path)
    if fmt == "wfdb":
        return _read_wfdb(target, path, leads)
    if fmt == "muse":
        from riskfm.ecg.muse import read_muse_xml

        return read_muse_xml(target, leads)
    if fmt == "hl7":
        from riskfm.ecg.hl7 import read_hl7_aecg

        return read_hl7_aecg(target, leads)
    return _read_dicom(target, leads)
