"""The manifest contract: one row per patient, reserved columns, paths relative to the manifest's folder."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from riskfm.arteries import STENOSIS_COLUMNS
from riskfm.tables import read_table

#: Severe-stenosis labels, one per artery in :data:`riskfm.arteries.ARTERIES` order (RCA, LM, LAD, LCX).
STENOSIS_TARGETS: tuple[str, ...] = STENOSIS_COLUMNS
BINARY_TARGETS: tuple[str, ...] = (*STENOSIS_TARGETS, "mace_30d")
SURVIVAL_COLUMNS: tuple[str, ...] = ("time_to_event_days", "event")
PATH_COLUMNS: tuple[str, ...] = ("ecg_path", "ct_path")
ID_COLUMNS: tuple[str, ...] = ("patient_id", "site")
RESERVED_COLUMNS: tuple[str, ...] = (*ID_COLUMNS, *PATH_COLUMNS, *BINARY_TARGETS, *SURVIVAL_COLUMNS)
#: Columns read as text whatever they hold (an id "007" or a path must not become a number).
TEXT_COLUMNS: tuple[str, ...] = (*ID_COLUMNS, *PATH_COLUMNS)


class ManifestError(ValueError):
    """A manifest that cannot be used as it is; the message names the file, row and column."""


def read_manifest_table(path: str | os.PathLike, na_values: Sequence[str] = ()) -> pd.DataFrame:
    """Read a CSV, TSV or Parquet manifest (:func:`riskfm.tables.read_table`); ids and paths stay text.

    Parameters
    ----------
    path : str or path
        The manifest file.
    na_values : sequence of str
        Cells read as missing besides empty ones and pandas' usual spellings (``NA``, ``N/A``,
        ``nan``, ``NULL``, ...), e.g. ``"?"``, ``"unknown"``.

    Returns
    -------
    pandas.DataFrame
        The rows as read, ``patient_id``, ``site``, ``ecg_path`` and ``ct_path`` as text (not yet
        validated: see :func:`validate_manifest`).

    Raises
    ------
    FileNotFoundError
        When the file does not exist.
    ManifestError
        For an unknown format or a file that cannot be parsed; the message names the file.
    """
    return read_table(path, what="manifest", dtype=dict.fromkeys(TEXT_COLUMNS, str), na_values=na_values,
                      error=ManifestError)


def _raise_bad_row(df: pd.DataFrame, col: str, bad: pd.Series, path: Path, rule: str) -> None:
    """Raise a ``ManifestError`` naming the first row of ``col`` flagged in ``bad`` (if any)."""
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise ManifestError(
            f"{path}: column {col!r} must be {rule}; row {i + 2} (patient {df['patient_id'].iloc[i]!r}) "
            f"has {df[col].iloc[i]!r} ({int(bad.sum())} bad rows in all)"
        )


def _check_binary(df: pd.DataFrame, col: str, path: Path) -> None:
    vals = pd.to_numeric(df[col], errors="coerce")
    _raise_bad_row(df, col, df[col].notna() & (vals.isna() | ~vals.isin([0, 1])), path, "0, 1 or empty")
    df[col] = vals.astype(float)


def validate_manifest(df: pd.DataFrame, path: str | os.PathLike = "<manifest>") -> pd.DataFrame:
    """Check and normalise the reserved columns; returns a copy.

    Raises ``ManifestError`` (naming the file, row and column) for a missing ``patient_id`` column,
    empty or duplicate patient ids, labels outside {0, 1, empty}, and negative or non-numeric event
    times. Missing optional reserved columns are added empty (a cohort may have no CT, no survival
    data, ...). Row numbers in messages are 1-based file lines (header = line 1).
    """
    path = Path(path)
    df = df.copy()
    if "patient_id" not in df.columns:
        raise ManifestError(f"{path}: required column 'patient_id' is missing (columns: {list(df.columns)})")
    pid = df["patient_id"].astype("string").str.strip()
    empty = pid.isna() | (pid == "")
    if empty.any():
        i = int(np.flatnonzero(empty.to_numpy())[0])
        raise ManifestError(f"{path}: row {i + 2} has an empty patient_id ({int(empty.sum())} such rows)")
    dup = pid.duplicated(keep=False)
    if dup.any():
        ids = sorted(pid[dup].unique())[:5]
        raise ManifestError(
            f"{path}: patient_id must be unique (one row per patient); duplicated: {ids}"
            f"{' ...' if dup.sum() > 5 else ''}"
        )
    df["patient_id"] = pid.astype(str)
    for col in ID_COLUMNS[1:] + PATH_COLUMNS:
        if col not in df.columns:
            df[col] = ""
        df[col] = df[col].fillna("").astype(str).str.strip()
    for col in (*BINARY_TARGETS, "event"):
        if col not in df.columns:
            df[col] = np.nan
        _check_binary(df, col, path)
    col = "time_to_event_days"
    if col not in df.columns:
        df[col] = np.nan
    t = pd.to_numeric(df[col], errors="coerce")
    _raise_bad_row(df, col, (df[col].notna() & t.isna()) | (t < 0), path, "a non-negative number of days")
    df[col] = t.astype(float)
    return df


def clinical_columns(df: pd.DataFrame) -> list[str]:
    """Every column that is not reserved is a clinical variable (numeric or categorical)."""
    return [c for c in df.columns if c not in RESERVED_COLUMNS and not c.startswith("_")]


def resolve_path(value: str, root: Path) -> Path | None:
    """Return a manifest path made absolute against the manifest's folder (``root``); None for an empty cell.

    ``~`` is expanded; absolute paths are returned as they are.
    """
    if not value:
        return None
    p = Path(value).expanduser()
    return p if p.is_absolute() else root / p
