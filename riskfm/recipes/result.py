"""What every recipe returns: one :class:`RecipeResult` (metrics, tables, figures, files, extras).

A recipe writes its outputs under its folder and returns them in memory in one shape, whatever
the recipe: the numbers it reports (``metrics``), its tables (``tables``, DataFrames), the figures
it drew (``figures``, PNG paths), its other written outputs (``files``, paths) and the objects a
caller may want to keep using (``extras``: trained models, fit histories, classifiers, index
splits). :attr:`RecipeResult.paths` is every written path (``files`` and ``figures`` together) and
:meth:`RecipeResult.to_dict` the JSON-ready view (everything but ``extras``). A result is read by
its fields only; it is not a mapping (no ``result[key]``).

Examples
--------
>>> import pandas as pd
>>> r = RecipeResult("example", metrics={"auroc": 0.8}, tables={"per_case": pd.DataFrame({"x": [1]})})
>>> r.to_dict()["tables"]["per_case"]
[{'x': 1}]
>>> r.tables["per_case"].shape
(1, 1)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["RecipeResult", "jsonable"]


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON types: dict keys as text, NaN / inf as None, paths as text.

    Parameters
    ----------
    value : any
        Nested dicts, lists, tuples, numpy arrays and scalars, numbers, strings, bools, None,
        paths.

    Returns
    -------
    any
        The same structure built from dict, list, str, int, float, bool and None only.

    Raises
    ------
    TypeError
        For any other object (a model, a DataFrame): JSON must not silently hold its repr.
    """
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [jsonable(v) for v in value]
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write a {type(value).__name__} to JSON")


@dataclass(frozen=True, repr=False)
class RecipeResult:
    """The outputs of one recipe run.

    Parameters
    ----------
    name : str
        The recipe, e.g. ``"cac_low_data"``, ``"cora_plaque"``.
    metrics : dict
        The numbers the recipe reports (as written to its JSON file where it writes one); nested
        dicts of numbers, strings, lists.
    tables : dict of str -> pandas.DataFrame
        Its tables (one row per exam / case / fold / subgroup ...), most also written as CSV.
    figures : dict of str -> Path
        The figures it wrote (PNG).
    files : dict of str -> Path
        Its other written outputs (CSV, JSON, folders of masks, ...).
    extras : dict of str -> any
        In-memory objects that are not outputs: trained models, fit histories, classifiers,
        index splits. Left out of :meth:`to_dict`.
    """

    name: str
    metrics: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: dict[str, Path] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def paths(self) -> dict[str, Path]:
        """Every path the recipe wrote: ``files`` then ``figures`` (dict name -> Path)."""
        return {**self.files, **self.figures}

    def to_dict(self) -> dict[str, Any]:
        """Return the result as plain JSON types, without ``extras`` (models do not belong in JSON).

        Returns
        -------
        dict
            ``{"name", "metrics", "tables", "figures", "files"}``: tables as lists of row
            records, paths as text, NaN as None.
        """
        return {
            "name": self.name,
            "metrics": jsonable(self.metrics),
            "tables": {k: jsonable(t.to_dict(orient="records")) for k, t in self.tables.items()},
            "figures": jsonable(self.figures),
            "files": jsonable(self.files),
        }

    def __repr__(self) -> str:
        def keys(d: Mapping[str, Any]) -> str:
            return "[" + ", ".join(map(str, d)) + "]"

        return (f"RecipeResult(name={self.name!r}, metrics={keys(self.metrics)}, tables={keys(self.tables)}, "
                f"figures={keys(self.figures)}, files={keys(self.files)}, extras={keys(self.extras)})")
