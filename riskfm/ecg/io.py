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
and unknown units are errors, not guesses. A signal file shorter than its header declares (WFDB
fixed-width formats 8, 16, 24, 32, 61, 80, 160, 212, 310, 311; DICOM ``WaveformData``) raises
:class:`TruncatedSignalError` naming the file and both sample counts, before any decoding; a file
longer than declared is read to the declared length.

Checking a manifest
-------------------
:func:`ecg_source_problem` applies the path rules of :func:`read_ecg` (same code) with file-system
metadata only and returns why a path names no file, or None: cheap enough for every row of a large
manifest.
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
    "TruncatedSignalError",
    "read_ecg",
    "ecg_source_problem",
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


class TruncatedSignalError(ECGReadError):
    """The stored samples are fewer than the header declares (a file cut short in a copy or download).

    Raised for a WFDB signal file shorter than its header's ``sig_len`` and for DICOM
    ``WaveformData`` shorter than ``NumberOfWaveformSamples``.

    Attributes
    ----------
    signal_file : str
        The WFDB signal file as the header names it (``"s0010_re.dat"``), or the DICOM waveform
        group (``"waveform group 0 (RHYTHM)"``).
    samples_in_file, samples_in_header : int
        Samples per channel the data holds, and the number the header declares.
    """

    def __init__(self, path: str | os.PathLike, signal_file: str, samples_in_file: int,
                 samples_in_header: int, file_bytes: int, *, declared_by: str = "the header",
                 empty: str = "the file is empty") -> None:
        self.signal_file = signal_file
        self.samples_in_file = samples_in_file
        self.samples_in_header = samples_in_header
        hint = empty if file_bytes == 0 else "file truncated?"
        what = signal_file if signal_file.startswith("waveform group") else f"signal file {signal_file}"
        super().__init__(
            path, f"{what} holds {samples_in_file:,} samples per channel but {declared_by} "
                  f"says {samples_in_header:,} ({hint})"
        )


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


def _describe(exc: BaseException) -> str:
    """``"TypeName: message"`` of a third-party exception (its bare message is often cryptic or empty)."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


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


@dataclass(frozen=True)
class _Source:
    """Where :func:`read_ecg` finds an ECG, decided from the path and file-system metadata only.

    ``kind`` is ``"wfdb"`` (``path`` = the record without extension, its ``.hea`` exists),
    ``"dicom"`` (a ``.dcm`` file), ``"hdf5"`` (``path`` = the HDF5 file, ``key`` = the exam id) or
    ``"file"`` (an existing file whose format is recognised from its first bytes).
    """

    kind: str
    path: Path
    key: str | None = None


def _locate(path: str | os.PathLike) -> _Source:
    """Resolve a :func:`read_ecg` path to the file(s) it names, without opening any file.

    This is the single place where the path rules live: :func:`read_ecg` (through
    :func:`_detect_format`) and :func:`ecg_source_problem` both call it, so the cheap existence
    check of a manifest and the reader can never disagree about which file a path means.

    Raises
    ------
    ECGFileNotFoundError
        Nothing to read at ``path`` (message says what was looked for).
    ECGFormatError
        ``path`` is a directory, or an HDF5 file without ``::<exam_id>``.
    """
    from riskfm.ecg.hdf5 import split_hdf5_address

    address = split_hdf5_address(path)
    if address is not None:
        file, key = address
        if not file.is_file():
            raise ECGFileNotFoundError(f"{file}::{key}", "HDF5 file not found")
        if not key.strip():
            raise ECGFormatError(f"{file}::{key}", "no exam id after '::' (expected '<file>.hdf5::<exam_id>')")
        return _Source("hdf5", file, key)

    path = Path(os.fspath(path)).expanduser()
    suffix = path.suffix.lower()
    if suffix == ".hea":
        if not path.is_file():
            raise ECGFileNotFoundError(path, "WFDB header file not found")
        return _Source("wfdb", path.with_suffix(""))
    if suffix == ".dcm":
        if not path.is_file():
            raise ECGFileNotFoundError(path, "DICOM file not found")
        return _Source("dicom", path)
    # A record name may itself contain dots ("JS00001.v2"), so test "<path>.hea" before suffixes.
    if Path(f"{path}.hea").is_file():
        return _Source("wfdb", path)
    if suffix == ".dat":
        header = path.with_suffix(".hea")
        if header.is_file():
            return _Source("wfdb", path.with_suffix(""))
        if not path.is_file():
            raise ECGFileNotFoundError(path, "WFDB signal file not found")
        raise ECGFileNotFoundError(path, f"WFDB header {header.name} not found next to the signal file")
    if not path.exists():
        raise ECGFileNotFoundError(path, f"no such file (nor a WFDB header {path.name}.hea)")
    if path.is_dir():
        raise ECGFormatError(path, "is a directory, not an ECG file or WFDB record")
    if suffix in (".hdf5", ".h5", ".hdf"):
        raise ECGFormatError(path, "an HDF5 file holds many ECGs: address one as '<file>.hdf5::<exam_id>'")
    return _Source("file", path)


def _detect_format(source: _Source) -> tuple[str, Path]:
    """``(format, target)`` of a located source; ``"file"`` sources are recognised by content.

    Returns ``("wfdb", record_path_without_extension)``, ``("dicom" | "muse" | "hl7", file)``.
    """
    if source.kind != "file":
        return source.kind, source.path
    path = source.path
    if _is_dicom(path):
        return "dicom", path
    xml_kind = _xml_kind(path)
    if xml_kind is not None:
        return xml_kind, path
    raise ECGFormatError(
        path, f"unrecognised ECG file format (suffix {path.suffix!r}); supported: WFDB record "
              "(.hea/.dat), DICOM waveform (.dcm or DICM preamble), GE MUSE XML, HL7 aECG XML and "
              "HDF5 ('<file>.hdf5::<exam_id>')"
    )


def ecg_source_problem(path: str | os.PathLike) -> str | None:
    """Why :func:`read_ecg` would not find ``path``, or None when the file(s) it names exist.

    A cheap check for every row of a large manifest: it applies exactly the path rules of
    :func:`read_ecg` (one shared code path) using file-system metadata only, never opening a file.
    So None means "the file is there", not "the file is a valid ECG": a WFDB header is not parsed
    (a missing ``.dat`` it names, or a corrupt file, is only found by :func:`read_ecg`).

    Parameters
    ----------
    path : str or path-like
        Anything :func:`read_ecg` accepts: a WFDB record without extension (``ecg/P00001`` with
        ``ecg/P00001.hea`` beside it; names may contain dots, ``JS00001.v2``), a ``.hea`` header,
        a ``.dat`` signal file with its sibling header, a ``.dcm`` / ``.xml`` / other existing
        file, or ``"<file>.hdf5::<exam_id>"``.

    Returns
    -------
    str or None
        None when the source exists; else a short reason without the path, e.g.
        ``"no such file (nor a WFDB header P00001.hea)"``, ``"WFDB header P00001.hea not found
        next to the signal file"``, ``"HDF5 file not found"``, ``"is a directory, not an ECG file
        or WFDB record"``.
    """
    try:
        _locate(path)
    except ECGReadError as exc:
        return exc.problem
    return None


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


# Fixed-width WFDB signal formats: bits per stored sample (fmt 8 stores 8-bit first differences,
# 80/160 offset binary, 61 big-endian; 212 packs two 12-bit samples into 3 bytes). 310 and 311
# pack three 10-bit samples into 4 bytes and are handled by _wfdb_bytes_for. FLAC formats
# (508/516/524) are compressed, so their size says nothing about their length: not checked.
_WFDB_BITS_PER_SAMPLE = {"8": 8, "80": 8, "16": 16, "61": 16, "160": 16, "24": 24, "32": 32, "212": 12}
_WFDB_PACKED_10BIT = ("310", "311")
# Every signal format WFDB defines (0 = null signal, no samples stored).
_WFDB_FORMATS = frozenset({"0", *_WFDB_BITS_PER_SAMPLE, *_WFDB_PACKED_10BIT, "508", "516", "524"})


def _wfdb_bytes_for(fmt: str, n_samples: int) -> int:
    """Bytes a signal file of format ``fmt`` needs to hold ``n_samples`` interleaved samples."""
    if fmt in _WFDB_BITS_PER_SAMPLE:
        return -(-n_samples * _WFDB_BITS_PER_SAMPLE[fmt] // 8)
    # 310/311: every 4-byte word holds 3 samples. A trailing single sample needs 2 bytes; two
    # trailing samples need 3 bytes in 311 (bits 0-19) and the whole word in 310 (its second
    # sample lies in the word's upper 16-bit half).
    words, extra = divmod(n_samples, 3)
    tail = {0: 0, 1: 2, 2: 4 if fmt == "310" else 3}[extra]
    return 4 * words + tail


def _wfdb_samples_in(fmt: str, n_bytes: int) -> int:
    """Most interleaved samples that ``n_bytes`` of format ``fmt`` hold completely."""
    if fmt in _WFDB_BITS_PER_SAMPLE:
        return n_bytes * 8 // _WFDB_BITS_PER_SAMPLE[fmt]
    words, extra = divmod(n_bytes, 4)
    return 3 * words + sum(_wfdb_bytes_for(fmt, k) <= extra for k in (1, 2))


def _check_wfdb_signal_files(header, record: Path, channels: Sequence[int], source: Path) -> None:
    """Check the header against the signal files of ``channels`` before wfdb reads them.

    Raises :class:`ECGHeaderError` for a signal format WFDB does not define, and
    :class:`ECGFileNotFoundError` / :class:`TruncatedSignalError` when a signal file holding one of
    ``channels`` is missing or holds fewer samples than the header's ``sig_len`` (size on disk
    minus the byte offset, per fixed-width format). Without this, wfdb meets a truncated file with
    numpy errors ("Samples were not loaded correctly", "could not broadcast input array ...").
    A file longer than the header says is fine (wfdb reads the declared length). The size check
    is skipped for compressed (FLAC) formats and when the header gives no length.
    """
    sig_len = header.sig_len
    files = list(header.file_name or [])
    if len(files) != header.n_sig:
        return
    fmts = [str(f) if f is not None else None for f in (header.fmt or [None] * len(files))]
    names = list(header.sig_name or [""] * len(files))
    for i in channels:
        if fmts[i] is not None and fmts[i] not in _WFDB_FORMATS:
            raise ECGHeaderError(
                source, f"corrupt WFDB header: channel {names[i]!r} has signal format {fmts[i]!r}, which WFDB "
                        f"does not define (known: {', '.join(sorted(_WFDB_FORMATS, key=int))})"
            )
    if not sig_len:
        return
    spf = [int(n) if n else 1 for n in (header.samps_per_frame or [1] * len(files))]
    offsets = [int(b) if b else 0 for b in (header.byte_offset or [0] * len(files))]
    wanted = {files[i] for i in channels}
    for name in dict.fromkeys(files):  # file order, each file once
        if name not in wanted:
            continue
        in_file = [i for i, f in enumerate(files) if f == name]
        file_fmts = {fmts[i] for i in in_file}
        if len(file_fmts) != 1:
            continue  # mixed formats in one file: not a valid WFDB layout, leave it to wfdb
        fmt = file_fmts.pop()
        if fmt not in _WFDB_BITS_PER_SAMPLE and fmt not in _WFDB_PACKED_10BIT:
            continue
        file_path = record.parent / name
        try:
            size = file_path.stat().st_size
        except FileNotFoundError:
            raise ECGFileNotFoundError(source, f"WFDB signal file not found: {file_path}") from None
        except OSError:
            continue  # unreadable for another reason: wfdb's own error says which
        if not file_path.is_file():
            continue
        frame = sum(spf[i] for i in in_file)
        n_bytes = max(size - offsets[in_file[0]], 0)
        if n_bytes >= _wfdb_bytes_for(fmt, sig_len * frame):
            continue
        held = _wfdb_samples_in(fmt, n_bytes) // frame
        raise TruncatedSignalError(source, name, held, int(sig_len), size)


def _first_header_line(header_file: Path) -> str | None:
    """The first non-comment line of a WFDB header (for error messages), or None."""
    try:
        with header_file.open("r", encoding="latin-1") as handle:
            for line in handle.read(4096).splitlines():
                if line.strip() and not line.lstrip().startswith("#"):
                    return line.strip()[:200]
    except OSError:
        pass
    return None


def _read_wfdb(record: Path, source: Path, mode: str) -> ECG:
    """Read a WFDB record (``record`` = path without extension) into an ECG in mV."""
    import wfdb

    header_file = Path(f"{record}.hea")
    if header_file.is_file() and header_file.stat().st_size == 0:
        raise ECGHeaderError(source, f"corrupt WFDB header: {header_file.name} is empty (0 bytes)")
    try:
        header = wfdb.rdheader(str(record))
    except FileNotFoundError as exc:
        raise ECGFileNotFoundError(source, f"WFDB header not found: {exc.filename or exc}") from exc
    except Exception as exc:  # wfdb raises assorted types (HeaderSyntaxError, IndexError, ...)
        detail = _describe(exc)
        if "record line" in str(exc) and (line := _first_header_line(header_file)) is not None:
            detail += f"; record line {line!r}"
            if not re.fullmatch(r"[A-Za-z0-9_]+", line.split()[0].split("/")[0]):
                detail += " (WFDB record names may hold only letters, digits and '_')"
        raise ECGHeaderError(source, f"unreadable or corrupt WFDB header ({detail})") from exc

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
        except Exception as exc:  # corrupt signal files surface as numpy/wfdb errors
            raise ECGReadError(source, f"cannot read WFDB signal data ({_describe(exc)})") from exc

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
        _check_wfdb_signal_files(header, record, selection.indices, source)
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


def _check_dicom_waveform_length(group, index: int, label: str, path: Path) -> None:
    """Raise :class:`TruncatedSignalError` when WaveformData is shorter than the group declares."""
    try:
        n_samples = int(group.NumberOfWaveformSamples)
        n_channels = int(group.NumberOfWaveformChannels)
        bytes_per_sample = int(group.WaveformBitsAllocated) // 8
        data = group.get("WaveformData")
        n_bytes = 0 if data is None else len(data)
    except (AttributeError, TypeError, ValueError):
        return  # incomplete group: pydicom's own error will say what is missing
    if n_channels <= 0 or bytes_per_sample <= 0 or n_bytes >= n_samples * n_channels * bytes_per_sample:
        return
    held = n_bytes // (n_channels * bytes_per_sample)
    raise TruncatedSignalError(path, f"waveform group {index} ({label or 'unlabelled'})", held, n_samples,
                               n_bytes, declared_by="NumberOfWaveformSamples", empty="WaveformData is empty")


def _read_dicom(path: Path, mode: str) -> ECG:
    """Read the RHYTHM multiplex group of a DICOM waveform file into an ECG in mV."""
    import pydicom
    from pydicom.waveforms.numpy_handler import multiplex_array

    try:
        ds = pydicom.dcmread(str(path))
    except FileNotFoundError as exc:
        raise ECGFileNotFoundError(path, "DICOM file not found") from exc
    except Exception as exc:  # InvalidDicomError, truncated files, ...
        raise ECGHeaderError(path, f"unreadable or corrupt DICOM file ({_describe(exc)})") from exc
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

    _check_dicom_waveform_length(group, index, labels[index], path)
    try:
        samples = ds.waveform_array(index)  # (samples, channels), sensitivity and baseline applied
    except Exception as exc:
        raise ECGReadError(path, f"cannot decode waveform group {index} ({labels[index] or 'unlabelled'}): "
                                 f"{_describe(exc)} (waveform data truncated or inconsistent with its "
                                 "channel/sample counts?)") from exc
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
    from riskfm.ecg.hdf5 import read_hdf5_ecg

    source = _locate(path)
    if source.kind == "hdf5":
        return read_hdf5_ecg(source.path, source.key, mode=leads)
    path = Path(os.fspath(path)).expanduser()
    fmt, target = _detect_format(source)
    if fmt == "wfdb":
        return _read_wfdb(target, path, leads)
    if fmt == "muse":
        from riskfm.ecg.muse import read_muse_xml

        return read_muse_xml(target, leads)
    if fmt == "hl7":
        from riskfm.ecg.hl7 import read_hl7_aecg

        return read_hl7_aecg(target, leads)
    return _read_dicom(target, leads)
