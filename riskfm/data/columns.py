"""Which manifest columns are clinical variables, and of what type: checks that cannot leak labels.

A manifest written by another site is trusted only as far as it can be checked. Three mistakes
used to pass silently and are now errors (:class:`~riskfm.data.manifest.ManifestError`):

* **a label under another spelling** (``Stenosis_LAD``, ``MACE 30d``, ``Event``): it would have
  become a model input, i.e. label leakage. A column matches a reserved column when the two are
  equal after lower-casing and removing spaces, underscores, dashes and dots, or when its words
  include all words of a multi-word reserved name (``lad_stenosis_severe`` vs ``stenosis_lad``).
* **a column pasted twice** (pandas reads the second ``age`` as ``age.1``).
* **a mostly numeric column with a few text cells** (``age = "sixty"``): it would have turned into
  a one-hot of every distinct age. At least :data:`MOSTLY_NUMERIC` of the filled cells parse as
  numbers but some do not: the error names the rows and values.

``data.clinical_columns`` in a run config lists the variables explicitly, each with an optional
type (``numeric`` or ``categorical``): a listed column is used as declared (a declared numeric
column with a text cell is an error naming it), and columns not listed are ignored. Without it,
every non-reserved column is a clinical variable with an inferred type, and the run writes
:func:`clinical_summary` so the user sees what was taken.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

CLINICAL_TYPES: tuple[str, ...] = ("numeric", "categorical")

#: Share of filled cells that must parse as numbers for a column to be "mostly numeric".
MOSTLY_NUMERIC = 0.8

_SHOWN = 5


def _words(name: str) -> list[str]:
    return [w for w in re.split(r"[^0-9a-z]+", str(name).lower()) if w]


def _squash(name: str) -> str:
    return "".join(_words(name))


def reserved_lookalikes(columns: Sequence[str], reserved: Sequence[str]) -> list[tuple[str, str]]:
    """Return (column, reserved column) pairs where a non-reserved column looks like a reserved one."""
    pairs = []
    exact = set(reserved)
    for col in columns:
        if col in exact or str(col).startswith("_"):
            continue
        words = set(_words(col))
        for res in reserved:
            res_words = _words(res)
            same = _squash(col) == _squash(res)
            contains = len(res_words) > 1 and set(res_words) <= words
            if same or contains:
                pairs.append((col, res))
                break
    return pairs


def duplicated_headers(columns: Sequence[str]) -> list[tuple[str, str]]:
    """Return (copy, original) pairs for headers that pandas renamed ``x.1``, ``x.2``, ... on reading."""
    present = set(columns)
    pairs = []
    for col in columns:
        m = re.fullmatch(r"(.+)\.(\d+)", str(col))
        if m and m.group(1) in present:
            pairs.append((col, m.group(1)))
    return pairs


def parse_clinical_spec(spec: Any) -> dict[str, str | None] | None:
    """Return ``data.clinical_columns`` as ``{column: type or None}`` (None = infer); None when not given.

    Accepts a list of names, a list mixing names and ``{name: type}`` mappings, or a mapping of
    name to type (``null`` to infer).
    """
    if spec is None:
        return None
    items: list[tuple[str, Any]] = []
    if isinstance(spec, Mapping):
        items = list(spec.items())
    else:
        for entry in spec:
            if isinstance(entry, Mapping):
                items += list(entry.items())
            else:
                items.append((entry, None))
    out: dict[str, str | None] = {}
    for name, kind in items:
        if kind is not None and kind not in CLINICAL_TYPES:
            raise ValueError(f"data.clinical_columns: type of {name!r} must be one of {CLINICAL_TYPES} "
                             f"or empty to infer it; got {kind!r}")
        if str(name) in out:
            raise ValueError(f"data.clinical_columns: {name!r} is listed twice")
        out[str(name)] = kind
    return out


def _filled(series: pd.Series) -> pd.Series:
    if series.dtype == object or pd.api.types.is_string_dtype(series):
        stripped = series.astype("string").str.strip()
        return series[stripped.notna() & (stripped != "")]
    return series[series.notna()]


def _not_numeric_cells(series: pd.Series) -> pd.Series:
    filled = _filled(series)
    parsed = pd.to_numeric(filled, errors="coerce")
    return filled[parsed.isna()]


def _describe_cells(bad: pd.Series, rows: pd.Series | None) -> str:
    shown = []
    for idx, value in list(bad.items())[:_SHOWN]:
        row = int(rows.loc[idx]) if rows is not None else int(idx) + 2
        shown.append(f"row {row}: {value!r}")
    more = f" and {len(bad) - _SHOWN} more" if len(bad) > _SHOWN else ""
    return ", ".join(shown) + more


def type_clinical_columns(
    df: pd.DataFrame,
    columns: Sequence[str],
    declared: Mapping[str, str | None] | None,
    path: str | Path,
    rows: pd.Series | None = None,
) -> tuple[pd.DataFrame, dict[str, str]]:
    """Give each clinical column one type and convert it; returns (converted copy, types).

    Numeric columns become float (empty cells NaN); categorical columns become text labels
    (empty cells NaN). ``rows`` maps the frame's index to file lines for messages.
    Raises ``ManifestError`` for a mostly numeric column with text cells (inferred) or a declared
    numeric column with text cells.
    """
    from riskfm.data.manifest import ManifestError

    df = df.copy()
    types: dict[str, str] = {}
    for col in columns:
        kind = (declared or {}).get(col)
        series = df[col]
        if kind is None:
            if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
                kind = "numeric"
            else:
                filled = _filled(series)
                bad = _not_numeric_cells(series)
                if len(filled) and len(bad) < len(filled) and (len(filled) - len(bad)) / len(filled) >= MOSTLY_NUMERIC:
                    raise ManifestError(
                        f"{path}: column {col!r} is mostly numeric but {len(bad)} of {len(filled)} filled cells are "
                        f"not numbers ({_describe_cells(bad, rows)}); correct those cells, leave them empty for "
                        f"'not recorded', or declare the column in data.clinical_columns as {{{col}: categorical}}"
                    )
                kind = "numeric" if len(filled) and not len(bad) else "categorical"
        if kind == "numeric":
            bad = _not_numeric_cells(series)
            if len(bad):
                raise ManifestError(
                    f"{path}: column {col!r} is declared numeric but has {len(bad)} cells that are not numbers "
                    f"({_describe_cells(bad, rows)}); correct them or leave them empty for 'not recorded'"
                )
            values = series.astype(float) if pd.api.types.is_bool_dtype(series) else series
            if values.dtype == object or pd.api.types.is_string_dtype(values):
                values = values.astype("string").str.strip().replace("", pd.NA)
            df[col] = pd.to_numeric(values, errors="coerce").astype(float)
        else:
            df[col] = series.map(_category_text)
        types[col] = kind
    return df, types


def _category_text(value: Any) -> Any:
    if value is None or value is pd.NA or (isinstance(value, float | np.floating) and np.isnan(value)):
        return np.nan
    if isinstance(value, float | np.floating) and float(value).is_integer():
        value = int(value)  # 1.0 read from a CSV with empty cells is the level "1"
    text = str(value).strip()
    return text if text else np.nan


def clinical_summary(df: pd.DataFrame, types: Mapping[str, str]) -> pd.DataFrame:
    """Return one row per clinical variable: type, missing share, range (numeric) or levels (categorical)."""
    rows = []
    for col, kind in types.items():
        s = df[col]
        missing = float(s.isna().mean()) if len(s) else float("nan")
        if kind == "numeric":
            finite = s.dropna()
            values = "" if finite.empty else f"{finite.min():g} .. {finite.max():g}"
        else:
            levels = s.dropna().astype(str).value_counts()
            values = ", ".join(levels.index[:6]) + (f", ... ({len(levels)} levels)" if len(levels) > 6 else "")
        rows.append({"column": col, "type": kind, "missing": round(missing, 4), "values": values})
    return pd.DataFrame(rows, columns=["column", "type", "missing", "values"])


def format_summary(summary: pd.DataFrame) -> str:
    """Return the summary as aligned text for the console and cohort_report.txt."""
    if summary.empty:
        return "clinical variables: none"
    lines = ["clinical variables (column, type, missing, values):"]
    width = max(len(c) for c in summary["column"])
    for _, r in summary.iterrows():
        lines.append(f"  {r['column']:<{width}}  {r['type']:<11}  {100 * r['missing']:5.1f}%  {r['values']}")
    return "\n".join(lines)
