"""The package's layering: one home per idea, checked on the source (issue: one public API).

* no import cycle anywhere in riskfm (imports inside functions included);
* figures only in riskfm/plots: no other module imports matplotlib;
* statistics only in riskfm/evaluate: no other module defines a bootstrap or draws resamples the
  size of its data with replacement.
"""

import ast
from pathlib import Path

import riskfm

from .ecg.test_readers import import_cycles, import_graph

PACKAGE = Path(riskfm.__file__).resolve().parent


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path.relative_to(PACKAGE.parent).as_posix(), ast.parse(path.read_text(), filename=str(path))


def test_no_import_cycle_in_the_package():
    assert import_cycles(import_graph(PACKAGE)) == []


def test_only_plots_import_matplotlib():
    offenders = []
    for name, tree in _modules():
        if name.startswith("riskfm/plots/"):
            continue
        for node in ast.walk(tree):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{name}:{node.lineno} imports {m}" for m in mods if m.split(".")[0] == "matplotlib"]
    assert offenders == []


def test_only_evaluate_bootstraps():
    offenders = []
    for name, tree in _modules():
        if name.startswith("riskfm/evaluate/"):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and "bootstrap" in node.name.lower():
                offenders.append(f"{name}:{node.lineno} defines {node.name}")
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "choice":
                replace = [k.value for k in node.keywords if k.arg == "replace"]
                # resampling = drawing with replacement (numpy's default) without sampling weights `p`
                weighted = any(k.arg == "p" for k in node.keywords)
                if not weighted and (not replace or (isinstance(replace[0], ast.Constant) and replace[0].value)):
                    offenders.append(f"{name}:{node.lineno} draws with replacement")
    # Not statistics: a draw of one value (synthetic sex), and a training batch topped up with
    # repeats when a segmentation set has fewer items than the batch (two call sites).
    allowed = {"riskfm/synthetic/calcium.py": 1, "riskfm/train/tasks/calcium_segmentation.py": 2}
    by_file: dict[str, list[str]] = {}
    for o in offenders:
        by_file.setdefault(o.split(":")[0], []).append(o)
    assert {f: v for f, v in by_file.items() if len(v) > allowed.get(f, 0)} == {}


def test_ruff_finds_nothing():
    """The lint rules (pyproject.toml: pyflakes, isort, bugbear, numpydoc docstrings) hold in CI too."""
    import shutil
    import subprocess
    import sys

    import pytest

    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    if not Path(ruff).exists():
        pytest.skip("ruff is not installed (it comes with the dev extra)")
    repo = PACKAGE.parent
    result = subprocess.run([ruff, "check", "--no-cache", "."], cwd=repo, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:]
