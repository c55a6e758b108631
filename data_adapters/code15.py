"""CODE-15% -> riskfm manifest.

Layout: ``exams.csv`` (``exam_id``, ``age``, ``is_male``, ``1dAVb``, ``RBBB``, ``LBBB``, ``SB``,
``ST``, ``AF``, ``patient_id``, ``death``, ``timey``, ``normal_ecg``, ``trace_file``) and HDF5 parts
``exams_part{k}.hdf5`` holding ``tracings`` ``[N, 4096, 12]`` (400 Hz, zero-padded) and
``exam_id`` ``[N]``. Each ECG is addressed as ``"exams_part{k}.hdf5::<exam_id>"``, which
``riskfm.ecg.read_ecg`` reads. ``death`` / ``timey`` (years) become ``event`` /
``time_to_event_days``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from data_adapters import AdapterError, pick_one_per_patient, read_table, require_columns, write_manifest

__all__ = ["code15_manifest", "CODE15_LABELS"]

CODE15_LABELS: tuple[str, ...] = ("1dAVb", "RBBB", "LBBB", "SB", "ST", "AF")


def code15_manifest(root: str | os.PathLike, *, one_per_patient: str = "first",
                    out: str | os.PathLike | None = None, check_files: bool = True) -> pd.DataFrame:
    """Manifest rows for CODE-15%.

    Parameters
    ----------
    root : str or PathLike
        Folder with ``exams.csv`` and the ``exams_part*.hdf5`` files.
    one_per_patient : {"first", "last", "record"}
        Lowest / highest ``exam_id`` per patient, or every exam as its own row.
    out : str or PathLike, optional
        Write the manifest there (paths relative to ``root``).
    check_files : bool
        Open each HDF5 part and check that its exam ids include the rows that point to it.

    Returns
    -------
    pandas.DataFrame
        ``patient_id``, ``site`` ("code15"), ``ecg_path`` (``part::exam_id``), ``exam_id``, ``age``,
        ``sex``, the six labels, ``normal_ecg``, ``event`` (death) and ``time_to_event_days``
        (``timey`` x 365.25).
    """
    root = Path(root)
    table = root / "exams.csv"
    df = read_table(table)
    require_columns(df, ["exam_id", "age", "is_male", "patient_id", "trace_file", *CODE15_LABELS], table)
    if check_files:
        import h5py

        for part, rows in df.groupby("trace_file"):
            file = root / str(part)
            if not file.is_file():
                raise AdapterError(f"{table}: trace_file {part!r} not found at {file}")
            with h5py.File(file, "r") as h:
                if "exam_id" not in h or "tracings" not in h:
                    raise AdapterError(f"{file}: expected datasets 'tracings' and 'exam_id', found {sorted(h)}")
                absent = sorted(set(rows["exam_id"].astype(int)) - set(np.asarray(h["exam_id"]).astype(int)))
            if absent:
                raise AdapterError(f"{file}: {len(absent)} exam ids listed in exams.csv are not in the file, "
                                   f"e.g. {absent[:5]}")
    df = pick_one_per_patient(df, "patient_id", "exam_id", one_per_patient)
    pid = df["exam_id"] if one_per_patient == "record" else df["patient_id"]
    manifest = pd.DataFrame({
        "patient_id": pid.astype(int).astype(str), "site": "code15",
        "ecg_path": [f"{f}::{int(e)}" for f, e in zip(df["trace_file"], df["exam_id"])],
        "exam_id": df["exam_id"].astype(int), "age": df["age"].astype(float),
        "sex": np.where(df["is_male"].astype(bool), "M", "F"),
    })
    for col in (*CODE15_LABELS, "normal_ecg"):
        if col in df.columns:
            manifest[col] = df[col].astype(float).to_numpy()
    if "death" in df.columns and "timey" in df.columns:
        manifest["event"] = df["death"].map(lambda v: np.nan if pd.isna(v) else float(bool(v))).to_numpy()
        manifest["time_to_event_days"] = (df["timey"].astype(float) * 365.25).to_numpy()
    manifest = manifest.reset_index(drop=True)
    if out is not None:
        write_manifest(manifest, out)
    return manifest
