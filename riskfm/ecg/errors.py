"""Errors raised by the ECG readers (:func:`riskfm.ecg.io.read_ecg` and every registered reader).

Every failure to read an ECG file is a subclass of :class:`ECGReadError` (a ``ValueError``) whose
message is ``"<path>: <problem>"``. This module imports nothing from riskfm, so every reader and
the lead-assembly helpers can use it without an import cycle. The classes are re-exported by
:mod:`riskfm.ecg.io`, where they have always been importable.
"""

from __future__ import annotations

import os

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
    "describe_exception",
]


class ECGReadError(ValueError):
    """An ECG file that cannot be read as it is.

    The message is ``"<path>: <problem>"``; both parts are also kept as attributes.

    Parameters
    ----------
    path : str or path-like
        The file (or WFDB record, or ``"<file>.hdf5::<exam_id>"`` address) that failed.
    problem : str
        What is wrong with it.

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

    Parameters
    ----------
    path : str or path-like
        The record that failed.
    signal_file : str
        See the attribute of the same name.
    samples_in_file, samples_in_header : int
        Samples per channel the data holds, and the number the header declares.
    file_bytes : int
        Size of the stored data in bytes (0 selects the ``empty`` hint instead of "file truncated?").
    declared_by : str
        What declares ``samples_in_header`` (``"the header"``, ``"NumberOfWaveformSamples"``).
    empty : str
        Hint used when ``file_bytes`` is 0.

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


def describe_exception(exc: BaseException) -> str:
    """``"TypeName: message"`` of a third-party exception (its bare message is often cryptic or empty).

    Parameters
    ----------
    exc : BaseException
        The exception raised by a third-party library (wfdb, pydicom, h5py ...).

    Returns
    -------
    str
        ``"TypeName: message"``, or just ``"TypeName"`` when the message is empty.
    """
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
