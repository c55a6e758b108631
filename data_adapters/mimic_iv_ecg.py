"""MIMIC-IV-ECG -> riskfm manifest.

Layout: ``record_list.csv`` (``subject_id``, ``study_id``, ``file_name``, ``ecg_time``, ``path``,
e.g. ``files/p1000/p10000032/s40689238/40689238``) and ``machine_measurements.csv`` (``subject_id``,
``study_id``, ``report_0`` .. ``report_17``, ``rr_interval``, ``qrs_onset`` ..., ``p_axis``,
``qrs_axis``, ``t_axis``). Records are 10 s, 500 Hz WFDB files whose leads are stored in the order
I, II, III, aVR, aVF, aVL, V1-V6 (aVF before aVL): ``read_ecg`` matches leads by name, so the
rows come out in the canonical order without any special case.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from data_adapters import AdapterError, pick_one_per_patient, read_table, require_columns, write_manifest

__all__ = ["mimic_iv_ecg_manifest", "MEASUREMENT_COLUMNS"]

#: Numeric machine measurements carried over as clinical columns.
MEASUREMENT_COLUMNS: tuple[str, ...] = ("rr_interval", "p_onset", "p_end", "qrs_onset", "qrs_end", "t_end",
                                        "p_axis", "qrs_axis", "t_axis")


def mimic_iv_ecg_manifest(root: str | os.PathLike, *, one_per_patient: str = "first",
                          out: str | os.PathLike | None = None, check_files: bool = True) -> pd.DataFrame:
    """Manifest rows for MIMIC-IV-ECG.

    Parameters
    ----------
    root : str or PathLike
        Folder holding ``record_list.csv``, ``machine_measurements.csv`` (optional) and ``files/``.
    one_per_patient : {"first", "last", "record"}
        Earliest / latest ECG (by ``ecg_time``) per subject, or every study as its own row.
    out : str or PathLike, optional
        Write the manifest there (paths relative to ``root``).
    check_files : bool
        Raise when a record's ``.hea`` is missing.

    Returns
    -------
    pandas.DataFrame
        ``patient_id`` (subject, or study with ``"record"``), ``site`` ("mimic_iv_ecg"),
        ``ecg_path``, ``study_id``, ``ecg_time``, the machine measurements present, and
        ``machine_report`` (the non-empty ``report_*`` lines joined with `` | ``).
    """
    root = Path(root)
    table = root / "record_list.csv"
    df = read_table(table)
    require_columns(df, ["subject_id", "study_id", "ecg_time", "path"], table)
    if check_files:
        missing = [p for p in df["path"] if not (root / f"{p}.hea").is_file()]
        if missing:
            raise AdapterError(f"{table}: {len(missing)} records listed in 'path' are missing, e.g. "
                               f"{root / missing[0]}.hea")
    measures = root / "machine_measurements.csv"
    if measures.is_file():
        mm = pd.read_csv(measures)
        require_columns(mm, ["subject_id", "study_id"], measures)
        reports = [c for c in mm.columns if c.startswith("report_")]
        mm["machine_report"] = mm[reports].apply(
            lambda r: " | ".join(str(v).strip() for v in r if pd.notna(v) and str(v).strip()), axis=1)
        keep = ["study_id", "machine_report", *[c for c in MEASUREMENT_COLUMNS if c in mm.columns]]
        df = df.merge(mm[keep], on="study_id", how="left", validate="one_to_one")
    df["ecg_time"] = pd.to_datetime(df["ecg_time"], errors="raise")
    df = pick_one_per_patient(df, "subject_id", "ecg_time", one_per_patient)
    pid = df["study_id"] if one_per_patient == "record" else df["subject_id"]
    manifest = pd.DataFrame({"patient_id": pid.astype(int).astype(str), "site": "mimic_iv_ecg",
                             "ecg_path": df["path"].astype(str) + ".hea", "study_id": df["study_id"].astype(int),
                             "subject_id": df["subject_id"].astype(int).astype(str),
                             "ecg_time": df["ecg_time"].dt.strftime("%Y-%m-%d %H:%M:%S")})
    for col in ("machine_report", *MEASUREMENT_COLUMNS):
        if col in df.columns:
            manifest[col] = df[col].to_numpy()
    manifest = manifest.reset_index(drop=True)
    if out is not None:
        write_manifest(manifest, out)
    return manifest
