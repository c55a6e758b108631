"""A self-contained HTML report: text, tables and figures embedded as base64 PNG in one file.

The file needs nothing else (no scripts, no web fonts, no linked images), so it can be mailed,
archived with a run, or opened offline in any browser.
"""

from __future__ import annotations

import base64
import html
import math
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

CSS = """
body{font-family:Helvetica,Arial,'DejaVu Sans',sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#222;line-height:1.45}
h1{font-size:1.6em;border-bottom:2px solid #0072B2;padding-bottom:.2em}
h2{font-size:1.25em;margin-top:2em;border-bottom:1px solid #ccc}
h3{font-size:1.05em}
nav ul{columns:2;font-size:.95em}
table{border-collapse:collapse;font-size:.82em;margin:.6em 0 1.2em}
th,td{border-bottom:1px solid #ddd;padding:.25em .6em;text-align:right}
th{background:#f3f6f9}
td:first-child,th:first-child{text-align:left}
figure{display:inline-block;margin:.5em 1em 1em 0;vertical-align:top}
figure img{max-width:520px;width:100%;border:1px solid #eee}
figcaption{font-size:.82em;color:#555;max-width:520px}
.note{color:#8a5300;font-size:.9em}
.meta{color:#666;font-size:.85em}
"""


@dataclass
class Section:
    """One report section.

    Attributes
    ----------
    title : str
    text : str
        Paragraph(s) of plain text (escaped; blank lines separate paragraphs).
    tables : list of (caption, DataFrame)
    figures : list of (caption, path to a PNG)
    notes : list of str
        Warnings shown in the section (e.g. what was skipped and why).
    """

    title: str
    text: str = ""
    tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)
    figures: list[tuple[str, Path]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _fmt(x: Any) -> str:
    if x is None:
        return "\u2013"
    if isinstance(x, float):
        if math.isnan(x):
            return "\u2013"
        if x != 0 and abs(x) < 1e-3:
            return f"{x:.2e}"
        return f"{x:.3f}"
    return html.escape(str(x))


def table_html(df: pd.DataFrame, max_rows: int = 200) -> str:
    """HTML table of a DataFrame (floats to 3 decimals, NaN and None as a dash, at most ``max_rows`` rows).

    A dash means "not applicable"; statistics that are not estimable are given as text by the
    caller (``n/e (reason)``), so that no number is missing without its reason.
    """
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(v)}</td>" for v in row) + "</tr>"
                   for row in df.head(max_rows).itertuples(index=False))
    more = f"<p class='meta'>{len(df) - max_rows} more rows in the CSV.</p>" if len(df) > max_rows else ""
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{more}"


def image_data_uri(path: str | os.PathLike) -> str:
    """``data:image/png;base64,...`` URI of a PNG file."""
    data = Path(path).read_bytes()
    if not data.startswith(b"\x89PNG"):
        raise ValueError(f"{path}: not a PNG file")
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def write_html_report(sections: list[Section], path: str | os.PathLike, *, title: str = "riskfm evaluation",
                      subtitle: str = "") -> Path:
    """Write a self-contained report.

    Parameters
    ----------
    sections : list of Section
    path : str or path
        Destination ``.html`` (parent folders created).
    title, subtitle : str
        Page heading and a line under it (e.g. the predictions file).

    Returns
    -------
    Path
    """
    path = Path(path)
    parts = [f"<h1>{html.escape(title)}</h1>"]
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts.append(f"<p class='meta'>{html.escape(subtitle)} \u00b7 generated {stamp} by riskfm</p>")
    parts.append("<nav><ul>" + "".join(f"<li><a href='#s{i}'>{html.escape(s.title)}</a></li>"
                                       for i, s in enumerate(sections)) + "</ul></nav>")
    for i, s in enumerate(sections):
        parts.append(f"<section id='s{i}'><h2>{html.escape(s.title)}</h2>")
        for para in filter(None, (p.strip() for p in s.text.split("\n\n"))):
            parts.append(f"<p>{html.escape(para)}</p>")
        for note in s.notes:
            parts.append(f"<p class='note'>{html.escape(note)}</p>")
        for caption, fig in s.figures:
            parts.append(f"<figure><img alt='{html.escape(caption)}' src='{image_data_uri(fig)}'>"
                         f"<figcaption>{html.escape(caption)}</figcaption></figure>")
        for caption, df in s.tables:
            parts.append(f"<h3>{html.escape(caption)}</h3>{table_html(df)}")
        parts.append("</section>")
    doc = ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
           f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>"
           + "\n".join(parts) + "</body></html>\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(doc, encoding="utf-8")
    return path
