"""Write docs/api.md: the public API of riskfm, one table per package, from each ``__all__``.

Run ``python docs/make_api.py`` after changing a package's ``__all__``; ``tests/test_public_api.py``
fails while docs/api.md differs from what this script writes.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from pathlib import Path

# The packages a user imports, in the order a reader meets them; each lists its API in ``__all__``.
PACKAGES = (
    ("riskfm", "train, load and use a run (the five-line use)"),
    ("riskfm.encoders", "the encoder registry"),
    ("riskfm.data", "the manifest contract, cohorts, samples and patient-level splits"),
    ("riskfm.ecg", "reading and preparing ECGs"),
    ("riskfm.ct", "reading and preparing CT, the CORA encoder and its training"),
    ("riskfm.ct.calcium", "coronary calcium: scoring, categories, segmentation"),
    ("riskfm.clinical", "clinical variables as text or a table"),
    ("riskfm.models", "fusion, heads and the risk model"),
    ("riskfm.evaluate", "every statistic (and only there)"),
    ("riskfm.plots", "every figure (and only there)"),
    ("riskfm.explain", "attributions on waveforms, voxels and clinical variables"),
    ("riskfm.recipes", "the papers' studies, one function each"),
    ("riskfm.synthetic", "the synthetic cohort with a known oracle"),
    ("riskfm.train", "run configuration and training"),
)

OUT = Path(__file__).resolve().parent / "api.md"


def summary(obj: object) -> str:
    """Return the first line of an object's docstring, or its kind for a constant."""
    if inspect.ismodule(obj) or inspect.isclass(obj) or inspect.isroutine(obj) or callable(obj):
        doc = inspect.getdoc(obj) or ""
        return doc.strip().splitlines()[0].strip() if doc.strip() else ""
    return f"constant ({type(obj).__name__})"


def kind(obj: object) -> str:
    """Return 'class', 'function' or 'constant'."""
    if inspect.isclass(obj):
        return "class"
    if callable(obj):
        return "function"
    return "constant"


def render() -> str:
    """Return the text of docs/api.md."""
    lines = [
        "# Public API",
        "",
        "<!-- written by docs/make_api.py from each package's __all__; tests/test_public_api.py checks it -->",
        "",
        "Everything a user imports, package by package. A name not listed here is internal: it may",
        "change without notice. The five-line use is in README.md; every name below has a numpydoc",
        "docstring (`help(riskfm.evaluate.roc_auc)`).",
        "",
    ]
    for name, what in PACKAGES:
        module = importlib.import_module(name)
        lines += [f"## `{name}`: {what}", "", "| name | kind | what it is |", "|---|---|---|"]
        for public in sorted(module.__all__, key=str.lower):
            obj = getattr(module, public)
            text = summary(obj).replace("|", "\\|")
            lines.append(f"| `{public}` | {kind(obj)} | {text} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    OUT.write_text(render())
    print(f"wrote {OUT}", file=sys.stderr)
