"""WFDB records (PhysioNet: PTB, PTB-XL, MIMIC-IV-ECG, ...) -> :class:`~riskfm.ecg.record.ECG` in mV.

A record is named by its ``.hea`` header, a ``.dat`` signal file with a sibling header, or the
record path without extension (record names may contain dots, ``JS00001.v2``); see
:func:`wfdb_record_path`. Samples are read in physical units with :func:`wfdb.rdrecord` and
converted to mV from each channel's header units. Channels stored in several signal files (PTB's
``.dat`` + ``.xyz``) are handled by wfdb; multi-segment records are merged.

The header is parsed once (:func:`wfdb.rdheader`, for the checks below); the samples of a
single-segment record are then read by the steps of :func:`wfdb.rdrecord` run on that header
(:func:`wfdb.rdrecord` itself would parse it again, which cost more than decoding a 10 s record).
A wfdb without those steps, a header without a signal length, and multi-segment records go through
:func:`wfdb.rdrecord`. The mV array is written once, float32 and C-ordered.

Before wfdb decodes anything, the header is checked against the signal files of the kept channels:
a signal format WFDB does not define is an :class:`~riskfm.ecg.errors.ECGHeaderError`, and a
fixed-width signal file (formats 8, 16, 24, 32, 61, 80, 160, 212, 310, 311) shorter than the
header's ``sig_len`` is a :class:`~riskfm.ecg.errors.TruncatedSignalError` naming the file and
both sample counts. A file longer than declared is read to the declared length.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from riskfm.ecg.assembly import check_samples, normalise_sex, select_channels, to_millivolts
from riskfm.ecg.errors import (
    ECGFileNotFoundError,
    ECGHeaderError,
    ECGReadError,
    EmptySignalError,
    TruncatedSignalError,
    describe_exception,
)
from riskfm.ecg.record import ECG

__all__ = ["read_wfdb", "wfdb_record_path"]


def wfdb_record_path(path: str | os.PathLike) -> Path | None:
    """Return the WFDB record (path without extension) that ``path`` names, or None when it names none.

    Uses file-system metadata only (never opens a file). The rules, in order: a ``.hea`` path is
    its record; a ``.dcm`` path is never WFDB; ``<path>.hea`` existing makes ``path`` itself the
    record (so record names may contain dots); a ``.dat`` path with its sibling ``.hea`` is that
    record.

    Parameters
    ----------
    path : str or path-like
        What the caller passed to :func:`riskfm.ecg.io.read_ecg` (``~`` is expanded).

    Returns
    -------
    pathlib.Path or None
        The record path without extension (``ptb/s0010_re``), or None.
    """
    path = Path(os.fspath(path)).expanduser()
    suffix = path.suffix.lower()
    if suffix == ".hea":
        return path.with_suffix("")
    if suffix == ".dcm":
        return None
    if Path(f"{path}.hea").is_file():
        return path
    if suffix == ".dat" and path.with_suffix(".hea").is_file():
        return path.with_suffix("")
    return None


def read_wfdb(path: str | os.PathLike, mode: str = "standard") -> ECG:
    """Read a WFDB record into an ECG in mV.

    Parameters
    ----------
    path : str or path-like
        The record's ``.hea`` header, a ``.dat`` signal file with a sibling header, or the record
        path without extension (see :func:`wfdb_record_path`).
    mode : {"standard", "all"}
        As ``read_ecg(leads=...)``.

    Returns
    -------
    ECG
        float32 ``[n_leads, T]`` (leads x samples) in mV, ``fs`` in Hz from the header; ``meta``
        has ``format="wfdb"``, ``record_name``, ``units``, ``channel_names``,
        ``original_channel_names``, ``dropped_channels``, ``comments``, acquisition date/time when
        the header has them, and ``age`` (years) / ``sex`` from ``age:`` / ``sex:`` comments.

    Raises
    ------
    ECGFileNotFoundError
        No WFDB record at ``path``, or its header or a kept signal file is missing.
    ECGHeaderError, TruncatedSignalError, EmptySignalError
        Corrupt header; signal file shorter than declared; zero samples.
    ECGUnitsError, NonFiniteSampleError, NoRecognisedLeadsError, DuplicateLeadError
        As :func:`riskfm.ecg.assembly.to_millivolts`, :func:`~riskfm.ecg.assembly.check_samples`
        and :func:`~riskfm.ecg.assembly.select_channels`.
    """
    source = Path(os.fspath(path)).expanduser()
    record = wfdb_record_path(source)
    if record is None:
        raise ECGFileNotFoundError(source, f"no such file (nor a WFDB header {source.name}.hea)")
    return _read_wfdb(record, source, mode)


_AGE = re.compile(r"^\s*age\s*[:=]\s*([0-9]+(?:\.[0-9]+)?)\b", re.IGNORECASE)
_SEX = re.compile(r"^\s*(?:sex|gender)\s*[:=]\s*(\w+)", re.IGNORECASE)


def _demographics_from_comments(comments: Sequence[str]) -> dict:
    """Age (years) and sex from ``age: 81`` / ``sex: female`` lines (PTB-style WFDB comments)."""
    found: dict = {}
    for line in comments:
        if "age" not in found and (match := _AGE.match(line)):
            found["age"] = float(match.group(1))
        if "sex" not in found and (match := _SEX.match(line)):
            found["sex"] = normalise_sex(match.group(1))
    return found


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
    """Return the first non-comment line of a WFDB header (for error messages), or None.

    The line is stripped and cut at 200 characters; only the first 4096 characters are read
    (latin-1). None when the file cannot be read or has no such line.
    """
    try:
        with header_file.open("r", encoding="latin-1") as handle:
            for line in handle.read(4096).splitlines():
                if line.strip() and not line.lstrip().startswith("#"):
                    return line.strip()[:200]
    except OSError:
        pass
    return None


@functools.cache
def _wfdb_segment_reader():
    """Return wfdb's single-segment sample reader (private API), or None when this wfdb lacks it.

    Looked up on first use, so importing riskfm does not import wfdb.

    The names and keyword arguments checked here are exactly those :func:`_rdrecord_with_header`
    uses; any other wfdb makes :func:`_read_wfdb` fall back to :func:`wfdb.rdrecord`.
    """
    import inspect

    try:
        from wfdb.io import _signal
        from wfdb.io.record import Record

        params = set(inspect.signature(_signal._rd_segment).parameters)
    except (ImportError, AttributeError, TypeError, ValueError):
        return None
    wanted = {"file_name", "dir_name", "pn_dir", "fmt", "n_sig", "sig_len", "byte_offset", "samps_per_frame",
              "skew", "init_value", "sampfrom", "sampto", "channels", "ignore_skew", "no_file", "sig_data",
              "return_res"}
    methods = ("check_read_inputs", "_arrange_fields", "dac", "convert_dtype")
    if not wanted <= params or not all(hasattr(Record, name) for name in methods):
        return None
    return _signal._rd_segment


def _can_read_with_header(header) -> bool:
    """Tell whether :func:`_rdrecord_with_header` reproduces ``wfdb.rdrecord`` for ``header``.

    That is a single-segment record with a declared length and at least one channel to read, and
    a wfdb with the private pieces it uses. Otherwise (header without ``sig_len``, whose length
    wfdb infers from the file size) the caller uses :func:`wfdb.rdrecord`.
    """
    import wfdb

    return (_wfdb_segment_reader() is not None and isinstance(header, wfdb.Record) and header.sig_len is not None
            and bool(header.n_sig))


def _rdrecord_with_header(header, record: Path, channels: Sequence[int]):
    """``wfdb.rdrecord(record, physical=True, channels=channels)`` on an already parsed header.

    The same calls, in the same order, as the single-segment branch of :func:`wfdb.rdrecord`
    (wfdb 4.x, default arguments: all samples, smoothed frames, 64-bit physical values), minus its
    own :func:`wfdb.rdheader` call. ``header`` is left unchanged (rdrecord rebinds the channel
    fields of the record it returns, so a shallow copy is enough).
    tests/ecg/test_wfdb_read_once.py pins the result against ``wfdb.rdrecord``.
    """
    import copy

    rec = copy.copy(header)
    channels = list(channels)
    sampto = rec.sig_len
    rec.check_read_inputs(0, sampto, channels, True, True, 64)
    rec.e_d_signal = _wfdb_segment_reader()(
        file_name=rec.file_name, dir_name=os.path.abspath(os.path.dirname(str(record))), pn_dir=None,
        fmt=rec.fmt, n_sig=rec.n_sig, sig_len=rec.sig_len, byte_offset=rec.byte_offset,
        samps_per_frame=rec.samps_per_frame, skew=rec.skew, init_value=rec.init_value, sampfrom=0,
        sampto=sampto, channels=channels, ignore_skew=False, no_file=False, sig_data=None, return_res=64,
    )
    rec._arrange_fields(channels=channels, sampfrom=0, smooth_frames=True)
    rec.dac(expanded=False, return_res=64, inplace=True)
    if rec.n_sig > 0:
        rec.convert_dtype(True, 64, True)
    return rec


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
        detail = describe_exception(exc)
        if "record line" in str(exc) and (line := _first_header_line(header_file)) is not None:
            detail += f"; record line {line!r}"
            if not re.fullmatch(r"[A-Za-z0-9_]+", line.split()[0].split("/")[0]):
                detail += " (WFDB record names may hold only letters, digits and '_')"
        raise ECGHeaderError(source, f"unreadable or corrupt WFDB header ({detail})") from exc

    if header.fs is None or not np.isfinite(float(header.fs)) or float(header.fs) <= 0:
        raise ECGHeaderError(source, f"corrupt WFDB header: sampling frequency {header.fs!r} is not > 0 Hz")
    if header.sig_len == 0:
        raise EmptySignalError(source, "zero-length signal (the WFDB header declares 0 samples)")

    def read(header=None, **kwargs):
        """Read the samples, wfdb's assorted exceptions turned into ECGReadError subclasses.

        With ``header``, the single-segment branch of wfdb.rdrecord runs on it (no second parse).
        """
        try:
            if header is not None and _can_read_with_header(header):
                return _rdrecord_with_header(header, record, kwargs["channels"])
            return wfdb.rdrecord(str(record), physical=True, **kwargs)
        except FileNotFoundError as exc:
            missing = exc.filename or str(exc)
            raise ECGFileNotFoundError(source, f"WFDB signal file not found: {missing}") from exc
        except Exception as exc:  # corrupt signal files surface as numpy/wfdb errors
            raise ECGReadError(source, f"cannot read WFDB signal data ({describe_exception(exc)})") from exc

    if isinstance(header, wfdb.Record):
        names = [str(name) for name in (header.sig_name or [])]
        # wfdb accepts a record line declaring more signals than there are signal lines; reading
        # the samples then fails obscurely, so report the inconsistency as a header problem.
        if header.n_sig is not None and len(names) != header.n_sig:
            raise ECGHeaderError(
                source, f"corrupt WFDB header: record line declares {header.n_sig} signals but "
                        f"{len(names)} signal lines follow"
            )
        selection = select_channels(names, mode, source)
        _check_wfdb_signal_files(header, record, selection.indices, source)
        # Read only the kept channels: faster, and a bad dropped channel cannot fail the read.
        # The samples are read against the header parsed above: wfdb.rdrecord would parse it a
        # second time, and parsing costs more than decoding a 10 s record.
        rec = read(channels=selection.indices, header=header)
        samples = rec.p_signal
        kept_units = list(rec.units or [None] * len(selection.indices))
    else:
        # A multi-segment record's top header lists segments, not channels: read it whole
        # (segments merged into one record by wfdb) and select afterwards.
        rec = read(m2s=True)
        names = [str(name) for name in (rec.sig_name or [])]
        selection = select_channels(names, mode, source)
        samples = None if rec.p_signal is None else rec.p_signal[:, selection.indices]
        kept_units = [(rec.units or [None] * len(names))[i] for i in selection.indices]

    if samples is None or samples.ndim != 2 or samples.shape[1] != len(selection.indices):
        raise ECGReadError(source, "WFDB reader returned no physical signal for the selected channels")
    channel_names = [names[i] for i in selection.indices]
    signal = to_millivolts(samples, kept_units, selection.names, source)
    check_samples(signal, selection.names, channel_names, source)

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

