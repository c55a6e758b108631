"""Each package's ``__all__`` is its public API, every public name is documented, docs/api.md lists them."""

import importlib
import inspect
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "docs"))
import make_api  # noqa: E402


@pytest.mark.parametrize("package", [p for p, _ in make_api.PACKAGES])
def test_all_names_exist_are_public_and_documented(package):
    module = importlib.import_module(package)
    assert len(module.__all__) == len(set(module.__all__)), f"{package}.__all__ lists a name twice"
    for name in module.__all__:
        assert not name.startswith("_") or name == "__version__", f"{package}.__all__ exports private {name}"
        obj = getattr(module, name)  # AttributeError: __all__ names something that is not there
        if inspect.isclass(obj) or inspect.isroutine(obj):
            assert (inspect.getdoc(obj) or "").strip(), f"{package}.{name} has no docstring"


def test_docs_api_md_matches_the_packages():
    expected = make_api.render()
    actual = (REPO / "docs" / "api.md").read_text() if (REPO / "docs" / "api.md").is_file() else ""
    assert actual == expected, "docs/api.md is out of date: run `python docs/make_api.py`"
