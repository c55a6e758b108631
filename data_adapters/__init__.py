"""Public ECG dataset layouts -> riskfm manifests (one row per patient, paths relative to the manifest).

* :func:`data_adapters.ptbxl.ptbxl_manifest`: PTB-XL (``ptbxl_database.csv``, ``records100/``,
  ``records500/``, ``strat_fold``);
* :func:`data_adapters.mimic_iv_ecg.mimic_iv_ecg_manifest`: MIMIC-IV-ECG (``record_list.csv``,
  ``machine_measurements.csv``);
* :func:`data_adapters.code15.code15_manifest`: CODE-15% (``exams.csv`` + ``exams_part*.hdf5``).

Each returns a DataFrame and, with ``out=``, writes ``manifest.csv`` next to the data so relative
paths resolve. These cohorts have no coronary labels: the label columns stay empty and their own
labels are kept as clinical / extra columns for pretraining or transfer experiments.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

__all__ = ["AdapterError", "write_manifest", "pick_one_per_patient"]


class AdapterError(ValueError):
    """A dataset folder that does not have the expected layout; the message names the file and column."""


def require_columns(df: pd.DataFrame, columns: list[str], path: str | os.PathLike) -> None:
    """Raise :class:`AdapterError` naming ``path`` and the missing columns."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise AdapterError(f"{path}: missing column(s) {missing} (has {list(df.columns)})")


def read_table(path: Path) -> pd.DataFrame:
    """CSV -> DataFrame, with a clear error when the file is absent."""
    if not path.is_file():
        raise AdapterError(f"{path}: file not found (is this the dataset's root folder?)")
    return pd.read_csv(path)


def pick_one_per_patient(df: pd.DataFrame, patient_col: str, order_col: str, how: str) -> pd.DataFrame:
    """Keep one record per patient, or every record.

    ``how="first"`` / ``"last"`` keeps each patient's first / last record by ``order_col``;
    ``how="record"`` keeps every record with the record id as ``patient_id`` (then splits are NOT
    patient-disjoint unless you group by the ``subject_id`` column yourself).

    Parameters
    ----------
    df : pandas.DataFrame
        One row per record, with columns ``patient_col`` and ``order_col``.
    patient_col : str
        Column identifying the patient.
    order_col : str
        Column ordering a patient's records (e.g. a date).
    how : {"first", "last", "record"}
        Which records to keep.

    Returns
    -------
    pandas.DataFrame
        The kept rows, with ``df``'s columns (``df`` itself for ``"record"``; otherwise sorted by
        ``patient_col``, ``order_col``).

    Raises
    ------
    ValueError
        For any other ``how``.
    """
    if how not in ("first", "last", "record"):
        raise ValueError(f"how must be 'first', 'last' or 'record'; got {how!r}")
    if how == "record":
        return df
    df = df.sort_values([patient_col, order_col], kind="stable")
    return df.groupby(patient_col, sort=False).head(1) if how == "first" else df.groupby(patient_col).tail(1)


def write_manifest(df: pd.DataFrame, out: str | os.PathLike) -> Path:
    """Write ``df`` as a manifest CSV (validated by riskfm's manifest contract first)."""
    from riskfm.data.manifest import validate_manifest

    out = Path(out)
    validate_manifest(df, out)
    out.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(out, index=False)
    return out
