"""Registry of ECG file readers: format sniffing -> reader, used by :func:`riskfm.ecg.io.read_ecg`.

Each reader is an :class:`ECGReader`: a ``name``, a ``sniff(path) -> bool`` that decides from the
path (extension, sibling files, or the first bytes of the file) whether the reader handles it, and a
``read(path, leads) -> ECG``. :func:`riskfm.ecg.io.read_ecg` first applies its path rules (the file
must exist, see :func:`riskfm.ecg.io.ecg_source_problem`), then asks the readers in registration
order and calls the first whose ``sniff`` returns True.

Built-in readers, in order:

============  ==========================================================================
``hdf5``      ``"<file>.hdf5::<exam_id>"`` addresses (also ``.h5``, ``.hdf``), CODE-15% layout
``wfdb``      ``.hea``; a path ``p`` with ``p.hea`` beside it; ``.dat`` with its sibling ``.hea``
``dicom``     ``.dcm``, or any file with the DICOM ``DICM`` preamble
``muse``      XML whose first 2 KiB hold a GE MUSE ``<RestingECG`` root
``hl7_aecg``  XML whose first 2 KiB hold an HL7 v3 ``AnnotatedECG`` (``urn:hl7-org:v3``)
============  ==========================================================================

A ``.xml`` file is therefore read as MUSE or HL7 aECG by its content, whatever its name. Readers
added with :func:`register_ecg_reader` are asked after the built-in ones, so they can never change
how a file the built-in readers recognise is read (use ``replace=True`` with a built-in name to
swap that reader, in place).

Import rule: this module imports the reader modules (:mod:`~riskfm.ecg.wfdb_read`,
:mod:`~riskfm.ecg.dicom`, :mod:`~riskfm.ecg.muse`, :mod:`~riskfm.ecg.hl7`, :mod:`~riskfm.ecg.hdf5`),
which import :mod:`riskfm.ecg.assembly` and :mod:`riskfm.ecg.errors`; none of them imports this
module or :mod:`riskfm.ecg.io`, so there is no import cycle.

Examples
--------
A reader for ``.npy`` files holding float ``[12, T]`` arrays in mV sampled at 500 Hz:

>>> import numpy as np
>>> from riskfm.ecg import ECG, STANDARD_LEADS, read_ecg
>>> from riskfm.ecg.io import register_ecg_reader
>>> def read_npy(path, leads):
...     return ECG(signal=np.load(path), fs=500.0, leads=STANDARD_LEADS,
...                meta={"source": str(path), "format": "npy"})
>>> register_ecg_reader("npy", sniff=lambda path: str(path).lower().endswith(".npy"),
...                     read=read_npy)                                      # doctest: +SKIP
ECGReader(name='npy', ...)
>>> read_ecg("exam_0001.npy").leads[:2]                                     # doctest: +SKIP
('I', 'II')
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from riskfm.ecg import dicom, hdf5, hl7, muse, wfdb_read
from riskfm.ecg.record import ECG

__all__ = [
    "BUILTIN_READERS",
    "ECGReader",
    "ecg_readers",
    "file_head",
    "find_ecg_reader",
    "register_ecg_reader",
    "unregister_ecg_reader",
]

SniffFn = Callable[[str | os.PathLike], bool]
ReadFn = Callable[[str | os.PathLike, str], ECG]


@dataclass(frozen=True)
class ECGReader:
    """One ECG file format that :func:`riskfm.ecg.io.read_ecg` can read.

    Attributes
    ----------
    name : str
        Unique name of the format (``"wfdb"``, ``"muse"``, ...).
    sniff : callable
        ``sniff(path) -> bool``: True when this reader handles ``path``, which is exactly what the
        caller passed to ``read_ecg`` (a ``str`` or path-like; an HDF5 exam is the string
        ``"<file>.hdf5::<exam_id>"``). Must be cheap (look at the extension, sibling files, at
        most the first few KiB of the file) and must not raise for a file it does not handle.
    read : callable
        ``read(path, leads) -> ECG`` with ``leads`` ``"standard"`` or ``"all"`` (see
        :func:`riskfm.ecg.io.read_ecg`): an :class:`~riskfm.ecg.record.ECG` with float32
        ``[n_leads, T]`` (leads x samples) ``signal`` in mV, ``fs`` in Hz and canonical lead
        names. Failures should raise an :class:`~riskfm.ecg.errors.ECGReadError` subclass naming
        the file.
    description : str
        One line saying what the reader accepts (for listings and error messages).
    """

    name: str
    sniff: SniffFn
    read: ReadFn
    description: str = ""


# 2 KiB is enough for the XML prolog, comments and the root element with its namespace attributes.
_XML_HEAD_BYTES = 2048


def file_head(path: str | os.PathLike, n_bytes: int = _XML_HEAD_BYTES) -> bytes | None:
    """Read the first bytes of a file, for content sniffing.

    Parameters
    ----------
    path : str or path-like
        The file (``~`` is expanded).
    n_bytes : int
        How many bytes to read at most (default 2048).

    Returns
    -------
    bytes or None
        Up to ``n_bytes`` bytes, or None when the file cannot be opened (missing, a directory,
        no permission).
    """
    try:
        with Path(os.fspath(path)).expanduser().open("rb") as handle:
            return handle.read(n_bytes)
    except OSError:
        return None


def _sniff_hdf5(path: str | os.PathLike) -> bool:
    """``"<file>.hdf5::<exam_id>"`` (or ``.h5`` / ``.hdf``)."""
    return hdf5.split_hdf5_address(path) is not None


def _read_hdf5(path: str | os.PathLike, leads: str) -> ECG:
    file, key = hdf5.split_hdf5_address(path)
    return hdf5.read_hdf5_ecg(file, key, mode=leads)


def _sniff_wfdb(path: str | os.PathLike) -> bool:
    return wfdb_read.wfdb_record_path(path) is not None


def _read_wfdb(path: str | os.PathLike, leads: str) -> ECG:
    return wfdb_read.read_wfdb(path, leads)


def _sniff_dicom(path: str | os.PathLike) -> bool:
    return Path(os.fspath(path)).suffix.lower() == ".dcm" or dicom.is_dicom(path)


def _read_dicom(path: str | os.PathLike, leads: str) -> ECG:
    return dicom.read_dicom_ecg(path, leads)


def _sniff_muse(path: str | os.PathLike) -> bool:
    head = file_head(path)
    return head is not None and muse.is_muse_xml(head)


def _read_muse(path: str | os.PathLike, leads: str) -> ECG:
    return muse.read_muse_xml(Path(os.fspath(path)).expanduser(), leads)


def _sniff_hl7(path: str | os.PathLike) -> bool:
    head = file_head(path)
    return head is not None and hl7.is_hl7_aecg(head)


def _read_hl7(path: str | os.PathLike, leads: str) -> ECG:
    return hl7.read_hl7_aecg(Path(os.fspath(path)).expanduser(), leads)


#: The readers riskfm ships, in the order they are asked (see the module docstring).
BUILTIN_READERS: tuple[ECGReader, ...] = (
    ECGReader("hdf5", _sniff_hdf5, _read_hdf5, "HDF5 exam, CODE-15% layout ('<file>.hdf5::<exam_id>')"),
    ECGReader("wfdb", _sniff_wfdb, _read_wfdb, "WFDB record (.hea/.dat, or the record path without extension)"),
    ECGReader("dicom", _sniff_dicom, _read_dicom, "DICOM waveform (.dcm or DICM preamble)"),
    ECGReader("muse", _sniff_muse, _read_muse, "GE MUSE XML (<RestingECG>)"),
    ECGReader("hl7_aecg", _sniff_hl7, _read_hl7, "HL7 aECG XML (<AnnotatedECG xmlns='urn:hl7-org:v3'>)"),
)
_BUILTIN_NAMES = frozenset(reader.name for reader in BUILTIN_READERS)

# Rebound (never mutated) on every change, so a read_ecg running in another thread iterates a
# consistent snapshot.
_READERS: tuple[ECGReader, ...] = BUILTIN_READERS


def register_ecg_reader(name: str, sniff: SniffFn, read: ReadFn, *, description: str = "",
                        replace: bool = False) -> ECGReader:
    """Teach :func:`riskfm.ecg.io.read_ecg` a new ECG file format.

    Parameters
    ----------
    name : str
        Unique name of the format (shown in error messages and by :func:`ecg_readers`).
    sniff : callable
        ``sniff(path) -> bool``: True when ``read`` handles ``path`` (exactly what the caller
        passed to ``read_ecg``). Called for every file no earlier reader claimed, so keep it cheap
        (extension, or the first bytes of the file) and make it return False, not raise, for
        files it does not handle.
    read : callable
        ``read(path, leads) -> ECG``: ``leads`` is ``"standard"`` or ``"all"``; the result holds a
        float32 ``[n_leads, T]`` (leads x samples) signal in mV, ``fs`` in Hz and lead names
        (canonical names for the standard leads; :mod:`riskfm.ecg.assembly` has the unit
        conversion, lead selection/ordering and limb-lead derivation the built-in readers use).
    description : str
        One line saying what the reader accepts.
    replace : bool
        Replace the reader already registered under ``name`` (built-in or not), keeping its place
        in the order. Without it, a taken name is an error.

    Returns
    -------
    ECGReader
        The registered reader.

    Raises
    ------
    ValueError
        ``name`` is empty or taken (and ``replace`` is False), or ``replace`` is True and no reader
        has that name.
    TypeError
        ``sniff`` or ``read`` is not callable.

    Notes
    -----
    New readers are asked after every reader registered before them, built-in ones included, and
    only for paths that pass ``read_ecg``'s path rules (an existing file, or an HDF5 address), so
    :func:`riskfm.ecg.io.ecg_source_problem` stays a valid check for them.

    Examples
    --------
    >>> register_ecg_reader("npy", sniff=lambda p: str(p).endswith(".npy"), read=read_npy)  # doctest: +SKIP
    """
    global _READERS
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"register_ecg_reader: name must be a non-empty string; got {name!r}")
    for label, fn in (("sniff", sniff), ("read", read)):
        if not callable(fn):
            raise TypeError(f"register_ecg_reader({name!r}): {label} must be callable; got {fn!r}")
    reader = ECGReader(name, sniff, read, description)
    names = [r.name for r in _READERS]
    if replace:
        if name not in names:
            raise ValueError(f"register_ecg_reader: no reader named {name!r} to replace; registered: "
                             f"{', '.join(names)}")
        _READERS = tuple(reader if r.name == name else r for r in _READERS)
    elif name in names:
        raise ValueError(f"register_ecg_reader: a reader named {name!r} is already registered "
                         "(pass replace=True to replace it)")
    else:
        _READERS = (*_READERS, reader)
    return reader


def unregister_ecg_reader(name: str) -> ECGReader:
    """Remove a reader added with :func:`register_ecg_reader`; a replaced built-in gets its original back.

    Parameters
    ----------
    name : str
        The reader's name.

    Returns
    -------
    ECGReader
        The reader removed (or replaced by the built-in one).

    Raises
    ------
    KeyError
        No reader has that name.
    ValueError
        ``name`` is a built-in reader that was not replaced (built-in formats cannot be removed).
    """
    global _READERS
    current = {r.name: r for r in _READERS}
    if name not in current:
        raise KeyError(f"no ECG reader named {name!r}; registered: {', '.join(current)}")
    removed = current[name]
    if name in _BUILTIN_NAMES:
        original = next(r for r in BUILTIN_READERS if r.name == name)
        if removed is original:
            raise ValueError(f"{name!r} is a built-in ECG reader and cannot be unregistered "
                             "(register_ecg_reader(..., replace=True) swaps it)")
        _READERS = tuple(original if r.name == name else r for r in _READERS)
    else:
        _READERS = tuple(r for r in _READERS if r.name != name)
    return removed


def ecg_readers() -> tuple[ECGReader, ...]:
    """Return the registered readers, in the order :func:`riskfm.ecg.io.read_ecg` asks them.

    Returns
    -------
    tuple of ECGReader
        Built-in readers first (``hdf5``, ``wfdb``, ``dicom``, ``muse``, ``hl7_aecg``), then those
        added with :func:`register_ecg_reader`, in registration order.
    """
    return _READERS


def find_ecg_reader(path: str | os.PathLike) -> ECGReader | None:
    """Find the first registered reader whose ``sniff`` accepts ``path``, or None.

    Parameters
    ----------
    path : str or path-like
        As passed to :func:`riskfm.ecg.io.read_ecg`.

    Returns
    -------
    ECGReader or None
        None when no reader recognises the path (``read_ecg`` then raises ``ECGFormatError``).
    """
    for reader in _READERS:
        if reader.sniff(path):
            return reader
    return None

