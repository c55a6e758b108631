"""PTB-XL -> riskfm manifest.

Layout: ``ptbxl_database.csv`` (``ecg_id``, ``patient_id``, ``age``, ``sex`` (0 = male, 1 = female),
``filename_lr`` / ``filename_hr`` (``records100/00000/00001_lr`` / ``records500/00000/00001_hr``),
``scp_codes`` (a dict written as text), ``strat_fold`` 1-10, ...) and the WFDB records.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pandas as pd

from data_adapters import AdapterError, pick_one_per_patient, read_table, require_columns, write_manifest

__all__ = ["ptbxl_manifest"]


def ptbxl_manifest(root: str | os.PathLike, *, rate: int = 500, one_per_patient: str = "first",
                   out: str | os.PathLike | None = None, check_files: bool = True) -> pd.DataFrame:
    """Manifest rows for PTB-XL.

    Parameters
    ----------
    root : str or PathLike
        Folder holding ``ptbxl_database.csv`` and ``records100/``, ``records500/``.
    rate : {500, 100}
        ``records500`` (``filename_hr``) or ``records100`` (``filename_lr``).
    one_per_patient : {"first", "last", "record"}
        Earliest / latest ECG (by ``ecg_id``) per patient, or every ECG as its own row.
    out : str or PathLike, optional
        Write the manifest there (paths are written relative to ``root``; put it in ``root``).
    check_files : bool
        Raise when a listed record's ``.hea`` is missing.

    Returns
    -------
    pandas.DataFrame
        ``patient_id``, ``site`` ("ptbxl"), ``ecg_path``, ``ecg_id``, ``age``, ``sex`` ("M"/"F"),
        ``strat_fold``, ``scp_codes`` (the code names, ``;``-joined) plus empty label columns.
    """
    if rate not in (100, 500):
        raise ValueError(f"rate must be 100 or 500 Hz, got {rate!r}")
    root = Path(root)
    table = root / "ptbxl_database.csv"
    df = read_table(table)
    col = "filename_hr" if rate == 500 else "filename_lr"
    require_columns(df, ["ecg_id", "patient_id", "age", "sex", col, "scp_codes", "strat_fold"], table)
    if check_files:
        missing = [f for f in df[col] if not (root / f"{f}.hea").is_file()]
        if missing:
            raise AdapterError(f"{table}: {len(missing)} records listed in {col} are missing, e.g. "
                               f"{root / missing[0]}.hea")
    df = pick_one_per_patient(df, "patient_id", "ecg_id", one_per_patient)

    def codes(text: object) -> str:
        try:
            return ";".join(sorted(ast.literal_eval(str(text))))
        except (ValueError, SyntaxError) as exc:
            raise AdapterError(f"{table}: scp_codes {text!r} is not a dict literal") from exc

    pid = df["ecg_id"] if one_per_patient == "record" else df["patient_id"]
    manifest = pd.DataFrame({
        "patient_id": pid.map(lambda v: str(int(v))),
        "site": "ptbxl",
        "ecg_path": df[col].astype(str) + ".hea",  # the record name would do too; the header names the file
        "ecg_id": df["ecg_id"].astype(int),
        "subject_id": df["patient_id"].map(lambda v: str(int(v))),
        "age": df["age"].astype(float),
        "sex": df["sex"].map({0: "M", 1: "F"}),
        "strat_fold": df["strat_fold"].astype(int),
        "scp_codes": df["scp_codes"].map(codes),
    }).reset_index(drop=True)
    if out is not None:
        write_manifest(manifest, out)
    return manifest
