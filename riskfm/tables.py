"""One reader for riskfm's tabular inputs (manifests, predictions, case lists): CSV, TSV or Parquet.

:func:`read_table` is the only place a table file is opened: every reader of a manifest or a
predictions file goes through it, so they all accept the same formats, keep identifiers as text
(``"007"`` stays ``"007"``) and fail with a message naming the file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["PARQUET_SUFFIXES", "TEXT_SUFFIXES", "TableError", "read_table"]

#: Suffixes read as Parquet.
PARQUET_SUFFIXES: tuple[str, ...] = (".parquet", ".pq")
#: Suffixes read as delimited text: tab-separated for ``.tsv``, comma-separated otherwise.
TEXT_SUFFIXES: tuple[str, ...] = (".csv", ".tsv", ".txt")


class TableError(ValueError):
    """A table file that cannot be read; the message names the file."""


def read_table(
    path: str | os.PathLike,
    *,
    what: str = "manifest",
    dtype: Mapping[str, Any] | None = None,
    na_values: Sequence[str] | None = None,
    error: type[Exception] = TableError,
) -> pd.DataFrame:
    r"""Read a CSV, TSV or Parquet table with identifiers kept as text.

    Parameters
    ----------
    path : str or path
        ``.csv`` / ``.txt`` (comma-separated), ``.tsv`` (tab-separated) or ``.parquet`` / ``.pq``;
        the suffix is matched case-insensitively.
    what : str, default "manifest"
        What the file is, for messages (``"manifest"``, ``"predictions file"``, ...).
    dtype : mapping column -> type, optional
        Column types of a text file, on top of ``patient_id`` as ``str`` (always). In a Parquet
        file the columns given ``str`` here (and ``patient_id``) that hold integers are turned
        into text; other Parquet types are kept.
    na_values : sequence of str, optional
        Extra cell values read as missing (e.g. ``"?"``, ``"unknown"``), besides empty cells and
        pandas' usual spellings (``NA``, ``N/A``, ``nan``, ``NULL``, ...) in text files.
    error : exception class, default TableError
        Raised, with the file's name, for an unknown suffix or an unreadable file (callers pass
        their own, e.g. ``ManifestError``).

    Returns
    -------
    pandas.DataFrame
        One row per line of the table; column names stripped of surrounding spaces.

    Raises
    ------
    FileNotFoundError
        ``"<what> not found: <path>"`` when ``path`` is not a file.
    error
        ``"<path>: unknown <what> format ..."`` for another suffix, ``"<path>: cannot parse
        <what>: ..."`` when the file cannot be parsed (bad quoting, wrong encoding, empty file,
        corrupt Parquet, unreadable).

    Examples
    --------
    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "m.csv"
    >>> _ = p.write_text("patient_id,age\n007,61\n")
    >>> read_table(p)["patient_id"].tolist()
    ['007']
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    suffix = path.suffix.lower()
    if suffix not in PARQUET_SUFFIXES + TEXT_SUFFIXES:
        raise error(f"{path}: unknown {what} format {suffix!r}; use .csv, .tsv or .parquet")
    types = {"patient_id": str, **(dict(dtype) if dtype else {})}
    na = list(na_values) if na_values else None
    try:
        if suffix in PARQUET_SUFFIXES:
            df = pd.read_parquet(path)
            for col, kind in types.items():
                if kind is str and col in df.columns and pd.api.types.is_integer_dtype(df[col]):
                    df[col] = df[col].astype(str)
            if na:
                df = df.replace(na, np.nan)
        else:
            df = pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",", dtype=types, keep_default_na=True,
                             na_values=na)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError, ValueError) as exc:
        raise error(f"{path}: cannot parse {what}: {exc}") from exc
    df.columns = [str(c).strip() for c in df.columns]
    return df
