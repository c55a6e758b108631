"""Read ECG files into :class:`~riskfm.ecg.record.ECG` objects in mV with canonical lead names.

Formats
-------
:func:`read_ecg` dispatches through a registry of readers (:mod:`riskfm.ecg.readers`): each
reader has a name, a ``sniff`` function deciding from the path (extension, sibling files, the first
bytes of the file) whether it handles it, and a ``read`` function. The built-in readers, asked in
this order:

* **HDF5** arrays in the CODE-15% layout addressed as ``"<file>.hdf5::<exam_id>"``
  (:mod:`riskfm.ecg.hdf5`).
* **WFDB** (PhysioNet: PTB, PTB-XL, MIMIC-IV-ECG, ...; :mod:`riskfm.ecg.wfdb_read`): pass the
  ``.hea`` header, a ``.dat`` signal file with a sibling header, or the record path without
  extension. Samples are read in physical units with :func:`wfdb.rdrecord` and converted to mV from
  each channel's header units. Channels stored in several signal files (PTB's ``.dat`` + ``.xyz``)
  are handled by wfdb.
* **DICOM ECG waveform** (``.dcm``, or any file with the ``DICM`` preamble;
  :mod:`riskfm.ecg.dicom`): the RHYTHM multiplex group is read (the first group when none is
  labelled RHYTHM), with pydicom applying each channel's sensitivity; values are converted to mV
  from the channel's sensitivity units.
* **GE MUSE XML** and **HL7 aECG XML** (:mod:`riskfm.ecg.muse`, :mod:`riskfm.ecg.hl7`), told apart
  by their root element (``<RestingECG>`` / ``<AnnotatedECG xmlns="urn:hl7-org:v3">``) in the first
  2 KiB of the file, whatever its name.

Adding a format
---------------
:func:`register_ecg_reader` adds a reader; it is asked after the built-in ones (so it never
changes how those formats are read), and only for paths that pass the path rules below (an
existing file, or an HDF5 address). :func:`ecg_readers` lists the readers in order;
:func:`unregister_ecg_reader` removes one. The helpers of :mod:`riskfm.ecg.assembly` (units to
mV, lead names and order, limb-lead derivation) are there for new readers too.

Examples
--------
A reader for ``.npy`` files holding float ``[12, T]`` (leads x samples) arrays in mV at 500 Hz:

>>> import numpy as np
>>> from riskfm.ecg import ECG, STANDARD_LEADS
>>> from riskfm.ecg.io import read_ecg, register_ecg_reader
>>> def read_npy(path, leads):
...     signal = np.load(path)                                   # [12, T] in mV
...     return ECG(signal=signal, fs=500.0, leads=STANDARD_LEADS,
...                meta={"source": str(path), "format": "npy"})
>>> register_ecg_reader("npy", sniff=lambda path: str(path).lower().endswith(".npy"),
...                     read=read_npy, description="12-lead [12, T] mV arrays at 500 Hz")  # doctest: +SKIP
>>> ecg = read_ecg("exam_0001.npy")                              # doctest: +SKIP
>>> ecg.signal.shape, ecg.fs                                     # doctest: +SKIP
((12, 5000), 500.0)

Lead selection
--------------
``leads="standard"`` keeps only the channels that are one of the 12 standard leads, in canonical
order (``I, II, III, aVR, aVL, aVF, V1 .. V6``); the others are listed in
``meta["dropped_channels"]``. Missing standard leads are simply absent (``riskfm.ecg.prepare_ecg``
derives or masks them). ``leads="all"`` keeps every channel: the standard leads first in canonical
order, then the other channels in file order under their original names.

Errors
------
Every failure raises a subclass of :class:`ECGReadError` (a ``ValueError``, defined in
:mod:`riskfm.ecg.errors` and importable from here) whose message starts with the path and says
what is wrong; a missing file raises :class:`ECGFileNotFoundError`, which is also a
``FileNotFoundError``. Nothing is silently repaired: NaN/inf samples, duplicate leads and unknown
units are errors, not guesses. A signal file shorter than its header declares (WFDB fixed-width
formats 8, 16, 24, 32, 61, 80, 160, 212, 310, 311; DICOM ``WaveformData``) raises
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
from dataclasses import dataclass
from pathlib import Path

from riskfm.ecg.assembly import millivolts_per_unit
from riskfm.ecg.errors import (  # the error classes have always been importable from here
    DuplicateLeadError,
    ECGFileNotFoundError,
    ECGFormatError,
    ECGHeaderError,
    ECGReadError,
    ECGUnitsError,
    EmptySignalError,
    NonFiniteSampleError,
    NoRecognisedLeadsError,
    TruncatedSignalError,
)
from riskfm.ecg.hdf5 import split_hdf5_address
from riskfm.ecg.readers import (
    BUILTIN_READERS,
    ECGReader,
    ecg_readers,
    file_head,
    find_ecg_reader,
    register_ecg_reader,
    unregister_ecg_reader,
)
from riskfm.ecg.record import ECG

__all__ = [
    "DuplicateLeadError",
    "ECGFileNotFoundError",
    "ECGFormatError",
    "ECGHeaderError",
    "ECGReadError",
    "ECGUnitsError",
    "EmptySignalError",
    "NonFiniteSampleError",
    "NoRecognisedLeadsError",
    "TruncatedSignalError",
    "ECGReader",
    "read_ecg",
    "ecg_source_problem",
    "ecg_readers",
    "millivolts_per_unit",
    "register_ecg_reader",
    "unregister_ecg_reader",
]


# --------------------------------------------------------------------------------------------
# Path rules
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Source:
    """Where :func:`read_ecg` finds an ECG, decided from the path and file-system metadata only.

    ``kind`` is ``"wfdb"`` (``path`` = the record without extension, its ``.hea`` exists),
    ``"dicom"`` (a ``.dcm`` file), ``"hdf5"`` (``path`` = the HDF5 file, ``key`` = the exam id) or
    ``"file"`` (an existing file whose format the reader registry recognises, or not).
    """

    kind: str
    path: Path
    key: str | None = None


def _locate(path: str | os.PathLike) -> _Source:
    """Resolve a :func:`read_ecg` path to the file(s) it names, without opening any file.

    This is the single place where the path rules live: :func:`read_ecg` (before asking the
    reader registry) and :func:`ecg_source_problem` both call it, so the cheap existence check of a
    manifest and the reader can never disagree about which file a path means.

    Raises
    ------
    ECGFileNotFoundError
        Nothing to read at ``path`` (message says what was looked for).
    ECGFormatError
        ``path`` is a directory, or an HDF5 file without ``::<exam_id>``.
    """
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


# --------------------------------------------------------------------------------------------
# Public entry point
# --------------------------------------------------------------------------------------------


def _unrecognised(path: Path) -> ECGFormatError:
    """Build the error for an existing file that no registered reader recognises."""
    builtin = {reader.name for reader in BUILTIN_READERS}
    extra = [reader.name for reader in ecg_readers() if reader.name not in builtin]
    also = f"; also registered: {', '.join(extra)}" if extra else ""
    if path.suffix.lower() == ".xml" and file_head(path) is not None:
        return ECGFormatError(
            path, f"XML file is neither a GE MUSE <RestingECG> nor an HL7 aECG <AnnotatedECG>{also}"
        )
    return ECGFormatError(
        path, f"unrecognised ECG file format (suffix {path.suffix!r}); supported: WFDB record "
              "(.hea/.dat), DICOM waveform (.dcm or DICM preamble), GE MUSE XML, HL7 aECG XML and "
              f"HDF5 ('<file>.hdf5::<exam_id>'){also}"
    )


def read_ecg(path: str | os.PathLike, *, leads: str = "standard") -> ECG:
    """Read an ECG file into an :class:`ECG` (float32 ``[n_leads, T]`` in mV, canonical names).

    The path rules (see :func:`ecg_source_problem`) are applied first; then the registered readers
    (:func:`ecg_readers`: the built-in formats, then those added with :func:`register_ecg_reader`)
    are asked in order, and the first whose ``sniff`` accepts ``path`` reads it.

    Parameters
    ----------
    path : str or path-like
        A WFDB record (``.hea`` header, ``.dat`` signal file with a sibling header, or the record
        path without extension), a DICOM waveform file (``.dcm`` or any file with the DICM
        preamble), a GE MUSE XML or HL7 aECG XML file (recognised by their root elements; limb
        leads they lack are derived from I and II), or one exam of a CODE-15%-style HDF5 file
        addressed as ``"<file>.hdf5::<exam_id>"``; or a file a registered reader recognises.
    leads : {"standard", "all"}
        ``"standard"`` (default): keep the channels that are standard 12-lead leads, in canonical
        order ``I, II, III, aVR, aVL, aVF, V1 .. V6`` (those the file lacks are absent), and list
        the others in ``meta["dropped_channels"]``. ``"all"``: keep every channel, the standard
        leads first in canonical order, then the rest in file order under their original names.

    Returns
    -------
    ECG
        ``signal`` float32 ``[n_leads, T]`` (leads x samples) in mV, ``fs`` in Hz, ``leads`` names, and ``meta`` with
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
        No registered reader recognises the file (the message names it), or a DICOM file without a
        waveform.
    NoRecognisedLeadsError, DuplicateLeadError
        No channel is a standard lead; two channels name the same lead.
    ECGUnitsError
        A kept channel's units are not a voltage.
    NonFiniteSampleError, EmptySignalError
        NaN/inf samples in a kept lead (the message names the lead and the count); no samples.
    ValueError
        ``leads`` is neither ``"standard"`` nor ``"all"``.
    TypeError
        A reader added with :func:`register_ecg_reader` returned something other than an ECG.

    Examples
    --------
    >>> ecg = read_ecg("records500/00000/00001_hr")          # doctest: +SKIP
    >>> ecg.leads[:3], ecg.fs, ecg.signal.shape               # doctest: +SKIP
    (('I', 'II', 'III'), 500.0, (12, 5000))
    """
    if leads not in ("standard", "all"):
        raise ValueError(f"read_ecg: leads must be 'standard' or 'all'; got {leads!r}")
    _locate(path)  # the path rules: missing files, directories, bare HDF5 files
    reader = find_ecg_reader(path)
    if reader is None:
        raise _unrecognised(Path(os.fspath(path)).expanduser())
    ecg = reader.read(path, leads)
    if not isinstance(ecg, ECG):
        raise TypeError(f"ECG reader {reader.name!r} returned {type(ecg).__name__} for {os.fspath(path)}, "
                        "not a riskfm.ecg.ECG")
    return ecg
