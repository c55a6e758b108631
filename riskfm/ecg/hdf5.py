"""ECGs stored as arrays in HDF5 files, CODE-15% layout -> :class:`~riskfm.ecg.record.ECG` in mV.

A CODE-15% part (``exams_part{k}.hdf5``) holds ``tracings`` float32 ``[N, 4096, 12]`` (400 Hz;
7.3 s or 10 s recordings centred and zero-padded to 4096 samples) and ``exam_id`` ``[N]``. One
record is addressed as ``"<file>.hdf5::<exam_id>"`` (what :mod:`data_adapters.code15` writes into
manifests), or with ``read_hdf5_ecg(file, exam_id)``.

Lead order of CODE-15% is DI, DII, DIII, aVR, aVL, aVF, V1-V6; the amplitude unit is taken as mV
(``amplitude_mv=1.0``); pass another factor if your copy's documentation says otherwise.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from riskfm.ecg.assembly import check_samples, select_channels
from riskfm.ecg.errors import ECGFileNotFoundError, ECGFormatError, ECGHeaderError
from riskfm.ecg.record import ECG

__all__ = ["CODE15_LEADS", "read_hdf5_ecg", "split_hdf5_address"]

#: Lead order of the CODE / CODE-15% tracings.
CODE15_LEADS: tuple[str, ...] = ("DI", "DII", "DIII", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6")

_SEP = "::"


def split_hdf5_address(path: str | os.PathLike) -> tuple[Path, str] | None:
    """``"x.hdf5::123"`` -> ``(Path("x.hdf5"), "123")``; None when ``path`` is no HDF5 address.

    Parameters
    ----------
    path : str or path-like
        A :func:`riskfm.ecg.io.read_ecg` path. Only the last ``::`` separates the key, and the part
        before it must end in ``.hdf5``, ``.h5`` or ``.hdf`` (case-insensitive).

    Returns
    -------
    tuple of (pathlib.Path, str) or None
        The HDF5 file (``~`` expanded) and the exam id as written (possibly empty), or None.
    """
    text = os.fspath(path)
    if _SEP not in text:
        return None
    file, key = text.rsplit(_SEP, 1)
    if Path(file).suffix.lower() not in (".hdf5", ".h5", ".hdf"):
        return None
    return Path(file).expanduser(), key


def read_hdf5_ecg(path: str | os.PathLike, exam_id: int | str, *, fs: float = 400.0,
                  leads: Sequence[str] = CODE15_LEADS, tracings: str = "tracings", ids: str = "exam_id",
                  amplitude_mv: float = 1.0, trim_padding: bool = True, mode: str = "standard") -> ECG:
    """Read one exam of a CODE-15%-style HDF5 file.

    Parameters
    ----------
    path : str or PathLike
        The ``.hdf5`` file.
    exam_id : int or str
        Value of the ``ids`` dataset identifying the exam.
    fs : float
        Sampling rate in Hz (400 for CODE-15%).
    leads : sequence of str
        Name of each of the last-axis channels.
    tracings, ids : str
        Dataset names of the ``[N, T, leads]`` signals and the ``[N]`` identifiers.
    amplitude_mv : float
        mV per stored unit.
    trim_padding : bool
        Drop leading / trailing samples that are exactly zero in every lead (CODE-15% pads short
        recordings to 4096 samples).
    mode : {"standard", "all"}
        As ``read_ecg(leads=...)``.

    Returns
    -------
    ECG
        float32 ``[n_leads, T]`` (leads x samples) in mV, ``fs`` in Hz, canonical lead names in
        standard order; ``meta["source"]`` is ``"<file>::<exam_id>"`` and ``meta["format"]``
        ``"hdf5"``.

    Raises
    ------
    ECGFileNotFoundError, ECGFormatError
        Missing file; no such datasets or exam id; inconsistent shapes. Messages name the file.
    """
    import h5py

    path = Path(path)
    source = f"{path}{_SEP}{exam_id}"
    if not path.is_file():
        raise ECGFileNotFoundError(source, "HDF5 file not found")
    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        raise ECGHeaderError(source, f"not a readable HDF5 file: {exc}") from exc
    with handle:
        for name in (tracings, ids):
            if name not in handle:
                raise ECGFormatError(source, f"HDF5 file has no dataset {name!r} (has {sorted(handle)})")
        data, id_values = handle[tracings], handle[ids][()]
        if data.ndim != 3 or data.shape[0] != id_values.shape[0] or data.shape[2] != len(leads):
            raise ECGFormatError(source, f"{tracings!r} has shape {data.shape}; expected [N={id_values.shape[0]}, "
                                         f"T, {len(leads)}]")
        key = str(exam_id)
        matches = np.flatnonzero(np.asarray([str(v.decode() if isinstance(v, bytes) else v) for v in id_values]) == key)
        if matches.size == 0:
            raise ECGFormatError(source, f"exam id {key} not in dataset {ids!r}")
        raw = np.asarray(data[int(matches[0])], dtype=np.float64).T * amplitude_mv  # [leads, T]
    if trim_padding:
        nonzero = np.flatnonzero(np.any(raw != 0, axis=0))
        raw = raw[:, nonzero[0]:nonzero[-1] + 1] if nonzero.size else raw[:, :0]
    selection = select_channels(list(leads), mode, source)
    signal = raw[selection.indices].astype(np.float32)
    check_samples(signal, selection.names, [leads[i] for i in selection.indices], source)
    meta = {"source": source, "format": "hdf5", "exam_id": key, "units": ["mV"] * len(selection.indices),
            "channel_names": [leads[i] for i in selection.indices], "original_channel_names": list(leads),
            "dropped_channels": [leads[i] for i in selection.dropped], "comments": []}
    return ECG(signal=signal, fs=fs, leads=tuple(selection.names), meta=meta)
