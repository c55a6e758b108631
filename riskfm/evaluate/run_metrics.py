"""The outputs every run writes: ``predictions.csv`` in, ``metrics.json`` out.

``predictions.csv`` (long format, one row per patient x target)::

    patient_id, split, target, y_true, y_prob [, time_to_event_days, event, site]

``y_true`` is 0, 1 or empty/NaN (label unknown), ``y_prob`` the predicted risk in [0, 1];
``time_to_event_days`` (days, >= 0) and ``event`` (0/1) carry follow-up for survival figures.

``metrics.json``: every estimate is an object with ``value``, ``ci`` ([low, high] or null),
``method`` and ``n`` (``riskfm.evaluate.results``)::

    {split: {target: {"n": 412, "n_pos": 57, "n_excluded_unknown": 3, "prevalence": 0.138,
                      "auroc": {"value": 0.81, "ci": [0.76, 0.85],
                                "method": "stratified bootstrap (500 resamples)", "n": 412,
                                "n_pos": 57, "confidence": 0.95, "se": 0.024}}}}

Rows whose ``y_true`` is unknown are excluded and counted in ``n_excluded_unknown``. When a
split/target has fewer than 10 events or 10 non-events (``riskfm.evaluate.guards``; a single
class or no known label included) the AUROC is not estimable: its ``value`` and ``ci`` are null,
and ``not_estimable`` (in the AUROC object and in the cell) gives the reason with the counts,
e.g. ``"1 event < 10"`` (a single class or no known label also keeps its ``note``). Splits and
targets are written in a fixed order (the known names first, e.g. train, val, test and
stenosis_rca ... mace_30d, then others sorted), so files from different runs diff cleanly.

Files of the previous version (flat ``"auroc": 0.81, "auroc_ci": [...]``, ``"ci_method"``) are
read by ``read_metrics`` and upgraded to this shape (``upgrade_metrics``), so older run folders
still load.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from riskfm.evaluate.discrimination import CI_METHODS, roc_auc
from riskfm.evaluate.guards import DEFAULT_MIN_EVENTS, DEFAULT_MIN_NONEVENTS, estimable
from riskfm.evaluate.results import Estimate, bootstrap_method, jsonable, make_ci
from riskfm.tables import read_table

# Mirrors the manifest contract's binary targets (riskfm.data.manifest.BINARY_TARGETS); kept here
# so that evaluate depends on nothing but numpy / pandas / scipy.
TARGETS: tuple[str, ...] = ("stenosis_rca", "stenosis_lm", "stenosis_lad", "stenosis_lcx", "mace_30d")
SPLIT_ORDER: tuple[str, ...] = ("train", "val", "validation", "test", "external")
REQUIRED_COLUMNS: tuple[str, ...] = ("patient_id", "split", "target", "y_true", "y_prob")
OPTIONAL_COLUMNS: tuple[str, ...] = ("time_to_event_days", "event", "site")


class PredictionsError(ValueError):
    """A predictions table that cannot be used as it is; the message names the source and column."""


def _ordered(names: Iterable[Any], known: tuple[str, ...]) -> list[str]:
    uniq = list(dict.fromkeys(str(n) for n in names))
    return [n for n in known if n in uniq] + sorted(n for n in uniq if n not in known)


def ordered_splits(names: Iterable[Any]) -> list[str]:
    """Split names in report order: train, val, validation, test, external, then the rest sorted."""
    return _ordered(names, SPLIT_ORDER)


def ordered_targets(names: Iterable[Any]) -> list[str]:
    """Target names in report order: the five contract targets first, then the rest sorted."""
    return _ordered(names, TARGETS)


# ----------------------------------------------------------------------------------------- input


def _first_bad(mask: pd.Series, df: pd.DataFrame, col: str, source: str, what: str) -> PredictionsError:
    i = int(np.flatnonzero(mask.to_numpy())[0])
    # Files are located by line (header = line 1); in-memory tables by 0-based row position.
    where = f"row {i}" if source.startswith("<") else f"line {i + 2}"
    value = df[col].iloc[i]
    value = value.item() if isinstance(value, np.generic) else value  # 1.5, not np.float64(1.5)
    return PredictionsError(
        f"{source}: column {col!r} {what}; {where} (patient {df['patient_id'].iloc[i]!r}, "
        f"target {df['target'].iloc[i]!r}) has {value!r} ({int(mask.sum())} bad rows in all)"
    )


def validate_predictions(df: pd.DataFrame, source: str | os.PathLike = "<predictions>") -> pd.DataFrame:
    """Check a predictions table against the contract and return a normalised copy.

    Parameters
    ----------
    df : pandas.DataFrame
        Long-format predictions (see the module docstring).
    source : str or path
        Name used in error messages (the file it came from).

    Returns
    -------
    pandas.DataFrame
        Copy with ``patient_id``, ``split``, ``target`` as str and ``y_true``, ``y_prob``,
        ``time_to_event_days``, ``event`` (when present) as float (NaN = unknown).

    Raises
    ------
    PredictionsError
        Missing required columns; empty split or target names; ``y_true`` not in {0, 1, NaN};
        ``y_prob`` missing, non-numeric or outside [0, 1]; negative ``time_to_event_days``;
        ``event`` not in {0, 1, NaN}; duplicate (patient_id, split, target) rows (e.g. the padding
        a DistributedSampler adds, which would bias the metrics).
    """
    source = str(source)
    if not isinstance(df, pd.DataFrame):
        raise PredictionsError(f"{source}: expected a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise PredictionsError(
            f"{source}: missing required column(s) {missing}; predictions need {list(REQUIRED_COLUMNS)} "
            f"(found {list(df.columns)})"
        )
    df = df.reset_index(drop=True).copy()
    for col in ("patient_id", "split", "target"):
        empty = df[col].isna() | (df[col].astype(str).str.strip() == "")
        if empty.any():
            raise _first_bad(empty, df, col, source, "must not be empty")
        df[col] = df[col].astype(str).str.strip()

    y = pd.to_numeric(df["y_true"], errors="coerce")
    bad = (df["y_true"].notna() & y.isna()) | (y.notna() & ~y.isin([0, 1]))
    if bad.any():
        raise _first_bad(bad, df, "y_true", source, "must be 0, 1 or empty (unknown)")
    df["y_true"] = y.astype(float)

    p = pd.to_numeric(df["y_prob"], errors="coerce")
    bad = p.isna() | ~np.isfinite(p) | (p < 0) | (p > 1)
    if bad.any():
        raise _first_bad(bad, df, "y_prob", source, "must be a predicted risk in [0, 1]")
    df["y_prob"] = p.astype(float)

    if "time_to_event_days" in df.columns:
        t = pd.to_numeric(df["time_to_event_days"], errors="coerce")
        bad = (df["time_to_event_days"].notna() & t.isna()) | (t < 0) | np.isinf(t)
        if bad.any():
            raise _first_bad(bad, df, "time_to_event_days", source, "must be a finite time in days >= 0 or empty")
        df["time_to_event_days"] = t.astype(float)
    if "event" in df.columns:
        e = pd.to_numeric(df["event"], errors="coerce")
        bad = (df["event"].notna() & e.isna()) | (e.notna() & ~e.isin([0, 1]))
        if bad.any():
            raise _first_bad(bad, df, "event", source, "must be 0, 1 or empty")
        df["event"] = e.astype(float)

    dup = df.duplicated(subset=["patient_id", "split", "target"], keep=False)
    if dup.any():
        first = df.loc[dup, ["patient_id", "split", "target"]].iloc[0].tolist()
        raise PredictionsError(
            f"{source}: {int(dup.sum())} rows repeat a (patient_id, split, target) triple, first {first}; "
            "each patient must appear once per split and target (drop sampler padding before writing)"
        )
    return df


def read_predictions(path: str | os.PathLike) -> pd.DataFrame:
    """Read and validate ``predictions.csv`` (or a Parquet file with the same columns).

    Parameters
    ----------
    path : str or path
        ``.csv`` / ``.tsv`` / ``.parquet`` file.

    Returns
    -------
    pandas.DataFrame
        Validated, normalised table (see ``validate_predictions``).

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    PredictionsError
        If the file cannot be parsed or breaks the contract; the message names the file.
    """
    path = Path(path)
    # Ids and names stay text: "007" must not become 7.
    df = read_table(path, what="predictions file", dtype=dict.fromkeys(("patient_id", "split", "target", "site"), str),
                    error=PredictionsError)
    return validate_predictions(df, source=path)


# ----------------------------------------------------------------------------------------- metrics


def _ci_method(ci: str | None, n_boot: int) -> str:
    """Return the ``method`` of an AUROC interval requested as ``ci``."""
    return {None: "none", "bootstrap": bootstrap_method(n_boot), "delong": "DeLong"}.get(ci, str(ci))


def _cell_metrics(y: np.ndarray, p: np.ndarray, ci: str | None, n_boot: int, seed: int,
                  confidence: float, min_events: int = DEFAULT_MIN_EVENTS,
                  min_nonevents: int = DEFAULT_MIN_NONEVENTS) -> dict[str, Any]:
    known = ~np.isnan(y)
    y_k, p_k = y[known], p[known]
    n, n_pos = int(known.sum()), int(y_k.sum())
    cell: dict[str, Any] = {
        "n": n,
        "n_pos": n_pos,
        "n_excluded_unknown": int((~known).sum()),
        "prevalence": n_pos / n if n else None,
    }
    reason = estimable(y_k, min_events=min_events, min_nonevents=min_nonevents)
    if n == 0:
        cell["note"] = "no rows with a known y_true: AUROC undefined"
    elif n_pos in (0, n):
        cell["note"] = f"only one class (n_pos={n_pos} of n={n}): AUROC undefined"
    if reason is not None:
        cell["auroc"] = Estimate.missing(reason, _ci_method(ci, n_boot), n, n_pos, confidence).to_dict()
        cell["not_estimable"] = reason
        return cell
    est = roc_auc(y_k, p_k, ci=ci, n_boot=n_boot, seed=seed, confidence=confidence)
    if ci is not None and est.ci is None:
        cell["note"] = f"{ci} interval undefined with n_pos={n_pos}, n_neg={n - n_pos}"
    cell["auroc"] = est.to_dict()
    return cell


def metrics_from_predictions(
    df: pd.DataFrame, ci: str | None = "bootstrap", n_boot: int = 500, seed: int = 0, confidence: float = 0.95,
    *, min_events: int = DEFAULT_MIN_EVENTS, min_nonevents: int = DEFAULT_MIN_NONEVENTS,
) -> dict[str, dict[str, dict[str, Any]]]:
    """Build the ``metrics.json`` structure from a predictions table.

    Parameters
    ----------
    df : pandas.DataFrame
        Long-format predictions (validated here; see ``validate_predictions``).
    ci : {"bootstrap", "delong", None}
        AUROC interval method.
    n_boot : int
        Bootstrap resamples per split/target.
    seed : int
        Bootstrap seed. Every split/target uses the same seed, so one cell's interval does not
        change when other splits or targets are added.
    confidence : float
        Nominal interval coverage.
    min_events, min_nonevents : int
        The small-sample rule (``riskfm.evaluate.guards.estimable``): with fewer events or
        non-events the AUROC and its interval are None and ``not_estimable`` says why.

    Returns
    -------
    dict
        ``{split: {target: {"n", "n_pos", "n_excluded_unknown", "prevalence", "auroc"[,
        "not_estimable"][, "note"]}}}`` in report order, ``auroc`` an estimate object
        (``{"value", "ci", "method", "n", "n_pos", "confidence", "se"[, "not_estimable"]}``);
        plain Python types, undefined values as None.

    Raises
    ------
    ValueError
        ``ci`` not one of ``"bootstrap"``, ``"delong"``, None (even when no cell is estimable).
    PredictionsError
        ``df`` breaks the predictions contract (see ``validate_predictions``).
    """
    # Checked here, not only in roc_auc: a run whose every cell is not estimable never calls
    # roc_auc, and would otherwise write the misspelt name as the interval method.
    if ci is not None and ci not in CI_METHODS:
        raise ValueError(f"ci must be one of {CI_METHODS} or None, got {ci!r}")
    df = validate_predictions(df, source="<predictions DataFrame>")
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for split in ordered_splits(df["split"]):
        d_split = df[df["split"] == split]
        out[split] = {}
        for target in ordered_targets(d_split["target"]):
            d = d_split[d_split["target"] == target]
            out[split][target] = _cell_metrics(d["y_true"].to_numpy(float), d["y_prob"].to_numpy(float),
                                               ci, n_boot, seed, confidence, min_events, min_nonevents)
    return out


# ----------------------------------------------------------------------------------------- files


def _jsonable(x: Any, where: str = "metrics") -> Any:
    """``results.jsonable`` that refuses what JSON cannot hold (naming where it is)."""
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v, f"{where}.{k}") for k, v in x.items()}
    if isinstance(x, (list, tuple, np.ndarray)):
        return [_jsonable(v, f"{where}[{i}]") for i, v in enumerate(x)]
    out = jsonable(x)
    if out is not None and not isinstance(out, (bool, str, int, float, dict, list)):
        raise TypeError(f"{where}: cannot write a {type(x).__name__} to JSON")
    return out


def write_metrics(metrics: Mapping[str, Any], path: str | os.PathLike) -> Path:
    """Write a metrics dictionary as JSON.

    NaN and infinities become null, numpy scalars and arrays become numbers and lists, and keys
    keep the order of ``metrics`` (``metrics_from_predictions`` builds them in report order). The
    file is written to a temporary name and moved into place, so a reader never sees half a file.

    Parameters
    ----------
    metrics : mapping
        E.g. the output of ``metrics_from_predictions``.
    path : str or path
        Destination, e.g. ``runs/x/metrics.json``; parent folders are created.

    Returns
    -------
    Path
        The written file.
    """
    path = Path(path)
    data = _jsonable(metrics)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def read_metrics(path: str | os.PathLike) -> dict[str, Any]:
    """Read a ``metrics.json`` (null stays None), upgrading a file of the previous version.

    Parameters
    ----------
    path : str or path
        The file, e.g. ``runs/x/metrics.json``.

    Returns
    -------
    dict
        ``{split: {target: cell}}`` in the current shape (see the module docstring): a cell
        written by the previous version (``"auroc": 0.81, "auroc_ci": [...]``) is converted by
        :func:`upgrade_metrics`.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"metrics file not found: {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON: {exc}") from exc
    return upgrade_metrics(data)


_OLD_METHODS = {"bootstrap": "stratified bootstrap", "delong": "DeLong", "none": "none", "wald": "Wald",
                "wilson": "Wilson", "parametric-bootstrap": "parametric bootstrap"}
_CALIBRATION_KEYS = {"calibration_intercept": "intercept", "calibration_slope": "slope", "ece": "ece",
                     "ece_bins": "bins", "ece_strategy": "strategy", "brier": "brier", "scaled_brier": "scaled_brier",
                     "spiegelhalter_z": "spiegelhalter_z", "spiegelhalter_p": "spiegelhalter_p"}


def _upgrade_pairs(d: Mapping[str, Any], n: Any = None, n_pos: Any = None, method: str = "unknown",
                   confidence: Any = None) -> dict[str, Any]:
    """``{"k": v, "k_ci": [lo, hi]}`` -> ``{"k": {"value": v, "ci": ..., "method", "n", ...}}``, recursively."""
    out: dict[str, Any] = {}
    n, n_pos = d.get("n", n), d.get("n_pos", n_pos)
    for k, v in d.items():
        if str(k).endswith("_ci") and str(k)[:-3] in d:
            continue
        if f"{k}_ci" in d and not isinstance(v, Mapping):
            ci = d[f"{k}_ci"] or [None, None]
            est = {"value": v, "ci": list(make_ci(*ci)) if make_ci(*ci) else None, "method": method, "n": n,
                   "n_pos": n_pos}
            if confidence is not None:
                est["confidence"] = confidence
            if v is None and d.get("not_estimable"):
                est["not_estimable"] = d["not_estimable"]
            out[k] = est
        elif isinstance(v, Mapping):
            out[k] = _upgrade_pairs(v, n, n_pos, method, confidence)
        else:
            out[k] = v
    return out


def upgrade_cell(cell: Mapping[str, Any]) -> dict[str, Any]:
    """One ``metrics.json`` cell in the current shape; a cell already current is returned as a copy.

    A cell of the previous version holds ``"auroc"`` as a number with ``"auroc_ci"``,
    ``"ci_method"`` and ``"confidence"`` beside it (and likewise ``auprc`` / ``auprc_ci``, flat
    calibration keys, ``<metric>_ci`` in thresholds and subgroups): every ``k`` / ``k_ci`` pair
    becomes an estimate object ``{"value", "ci", "method", "n", "n_pos"}`` and the calibration
    keys move under ``"calibration"``.
    """
    flat_auroc = "auroc" in cell and not isinstance(cell["auroc"], Mapping)
    if not flat_auroc and not any(str(k).endswith("_ci") for k in cell):
        return dict(cell)
    old_method = str(cell.get("ci_method", "unknown"))  # not recorded: say so, never "none"
    method = _OLD_METHODS.get(old_method, old_method)
    conf = cell.get("confidence")
    rest = {k: v for k, v in cell.items() if k not in ("ci_method", "confidence")}
    calib = {new: rest.pop(old) for old, new in _CALIBRATION_KEYS.items() if old in rest}
    ci_keys = {k: rest.pop(k) for k in ("calibration_intercept_ci", "calibration_slope_ci") if k in rest}
    out = _upgrade_pairs(rest, method=method, confidence=conf)
    if "auroc" in out and not isinstance(out["auroc"], Mapping):  # an AUROC without its interval
        out["auroc"] = {"value": out["auroc"], "ci": None, "method": method, "n": cell.get("n"),
                        "n_pos": cell.get("n_pos")}
        if out["auroc"]["value"] is None and cell.get("not_estimable"):
            out["auroc"]["not_estimable"] = cell["not_estimable"]
    for k in ("auprc",):
        if isinstance(out.get(k), Mapping):
            out[k]["method"] = "stratified bootstrap"
    if calib:
        for name in ("intercept", "slope"):
            if name in calib:
                ci = ci_keys.get(f"calibration_{name}_ci") or [None, None]
                calib[name] = {"value": calib[name], "ci": list(make_ci(*ci)) if make_ci(*ci) else None,
                               "method": "Wald", "n": cell.get("n"), "n_pos": cell.get("n_pos")}
        out["calibration"] = calib
    return out


def upgrade_metrics(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """Upgrade a whole ``{split: {target: cell}}`` structure: every cell to the current shape.

    Each mapping cell goes through :func:`upgrade_cell`; anything else is kept as it is.
    """
    return {split: ({target: upgrade_cell(c) if isinstance(c, Mapping) else c for target, c in by_t.items()}
                    if isinstance(by_t, Mapping) else by_t)
            for split, by_t in metrics.items()}


def _nan_if_none(x: Any) -> float:
    return math.nan if x is None else float(x)


def _auroc_of(cell: Mapping[str, Any]) -> Mapping[str, Any]:
    """Return the AUROC estimate object of a cell of either version (empty when there is none)."""
    auroc = upgrade_cell(cell).get("auroc") if cell else None
    return auroc if isinstance(auroc, Mapping) else {}


def auroc_table(metrics: Mapping[str, Any], oracle: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """AUROC summary table, one row per split x target, for printing.

    Parameters
    ----------
    metrics : mapping
        ``metrics.json`` structure (this version's or the previous one's cells).
    oracle : mapping, optional
        Metrics of the same shape from a reference model (e.g. the model trained on the true
        labels of a synthetic cohort); adds an ``oracle_auroc`` column (NaN where it has no entry).

    Returns
    -------
    pandas.DataFrame
        Index (split, target); columns ``auroc``, ``ci_low``, ``ci_high`` (float, NaN when
        undefined or not estimable), ``n``, ``n_pos`` (nullable int), optionally ``oracle_auroc``,
        and ``note``: why the AUROC is missing (the cell's ``not_estimable`` reason, e.g.
        ``"1 event < 10"``, else its ``note``), empty when it is reported.
    """
    if not isinstance(metrics, Mapping):
        raise ValueError(f"metrics must be a mapping {{split: {{target: {{...}}}}}}, got {type(metrics).__name__}")
    rows, index = [], []
    for split, by_target in metrics.items():
        if not isinstance(by_target, Mapping):
            raise ValueError(f"metrics[{split!r}] must be a mapping of targets, got {type(by_target).__name__}")
        for target, cell in by_target.items():
            auroc = _auroc_of(cell)
            ci = auroc.get("ci") or [None, None]
            row = {
                "auroc": _nan_if_none(auroc.get("value")),
                "ci_low": _nan_if_none(ci[0]),
                "ci_high": _nan_if_none(ci[1]),
                "n": cell.get("n"),
                "n_pos": cell.get("n_pos"),
            }
            if oracle is not None:
                ref = oracle.get(split, {}).get(target, {})
                row["oracle_auroc"] = _nan_if_none(_auroc_of(ref).get("value"))
            missing = auroc.get("value") is None
            row["note"] = (cell.get("not_estimable") or cell.get("note") or "") if missing else ""
            rows.append(row)
            index.append((str(split), str(target)))
    columns = ["auroc", "ci_low", "ci_high", "n", "n_pos"] + (["oracle_auroc"] if oracle is not None else []) + ["note"]
    idx = (pd.MultiIndex.from_tuples(index, names=["split", "target"]) if index
           else pd.MultiIndex.from_arrays([[], []], names=["split", "target"]))
    table = pd.DataFrame(rows, columns=columns, index=idx)
    for col in ("n", "n_pos"):
        table[col] = table[col].astype("Int64")
    return table
