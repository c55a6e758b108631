"""``Cohort``: a validated manifest with resolved paths and an account of every excluded row."""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from riskfm.data.columns import (
    duplicated_headers,
    parse_clinical_spec,
    reserved_lookalikes,
    type_clinical_columns,
)
from riskfm.data.manifest import (
    BINARY_TARGETS,
    PATH_COLUMNS,
    RESERVED_COLUMNS,
    STENOSIS_TARGETS,
    ManifestError,
    clinical_columns,
    read_manifest_table,
    resolve_path,
    validate_manifest,
)

log = logging.getLogger(__name__)

MODALITIES: tuple[str, ...] = ("ecg", "ct", "clinical")

#: Label columns each run target needs in the manifest.
TARGET_COLUMNS: dict[str, tuple[str, ...]] = {
    "stenosis": STENOSIS_TARGETS,
    **{t: (t,) for t in BINARY_TARGETS},
    "survival": ("time_to_event_days", "event"),
}


def _source_problem(modality: str, path: Path) -> str | None:
    """Why ``path`` cannot be read for ``modality`` without opening it, or None when it can be found."""
    if modality == "ecg":
        from riskfm.ecg.io import ecg_source_problem

        return ecg_source_problem(path)
    # A CT is a NIfTI file or a DICOM folder ("dicom/p1/" and "dicom/p1" name the same folder).
    return None if path.exists() else "no such file or folder"


def _check_headers(raw: pd.DataFrame, path: Path, declared: Mapping | None) -> None:
    """Columns pasted twice, and reserved columns under another spelling (label leakage)."""
    dups = duplicated_headers(list(raw.columns))
    if dups:
        copy, original = dups[0]
        raise ManifestError(f"{path}: column {original!r} appears more than once in the header (the copy was "
                            f"read as {copy!r}); keep one")
    candidates = [c for c in raw.columns if declared is None or c in declared]
    pairs = reserved_lookalikes(candidates, RESERVED_COLUMNS)
    if pairs:
        col, res = pairs[0]
        others = f" (also: {', '.join(f'{c!r}~{r!r}' for c, r in pairs[1:4])})" if len(pairs) > 1 else ""
        raise ManifestError(
            f"{path}: column {col!r} looks like the reserved column {res!r}{others}. A label under another "
            f"spelling would become a model input (label leakage): rename it to {res!r} if it is that column, "
            "or list the clinical variables explicitly in data.clinical_columns")


def _check_requested(raw: pd.DataFrame, path: Path, modalities: Sequence[str], targets: Sequence[str],
                     allow_empty: bool = False) -> None:
    """Check that requested targets and modalities have their columns, with at least one filled cell.

    ``allow_empty``: a modality column may be empty (e.g. scoring ECG-only patients).
    """
    def empty(col: str) -> bool:
        values = raw[col]
        if values.dtype == object or pd.api.types.is_string_dtype(values):
            values = values.astype("string").str.strip().replace("", pd.NA)
        return bool(values.isna().all())

    for target in targets:
        needed = TARGET_COLUMNS.get(target, ())
        absent = [c for c in needed if c not in raw.columns]
        if absent:
            raise ManifestError(f"{path}: target {target!r} needs column(s) {absent}, which the manifest lacks "
                                f"(columns: {list(raw.columns)})")
        blank = [c for c in needed if empty(c)]
        if blank:
            raise ManifestError(f"{path}: target {target!r}: column(s) {blank} hold no labels (every cell is empty)")
    for mod in modalities:
        if mod in ("ecg", "ct"):
            col = f"{mod}_path"
            if col not in raw.columns:
                raise ManifestError(f"{path}: modality {mod!r} is requested but the manifest has no {col!r} column "
                                    f"(columns: {list(raw.columns)})")
            if empty(col):
                if not allow_empty:
                    raise ManifestError(f"{path}: modality {mod!r} is requested but column {col!r} is empty in "
                                        "every row")
                log.warning("%s: column %r is empty in every row: no patient has modality %r", path, col, mod)


@dataclass
class Cohort:
    """Patients of one manifest, ready for splitting and datasets.

    Attributes
    ----------
    df : DataFrame
        One row per kept patient; ``ecg_path``/``ct_path`` are absolute (empty when absent).
    root : Path
        The manifest's folder (relative paths are resolved against it).
    clinical_columns : list of str
        The clinical variables (every non-reserved column, or those a config lists).
    clinical_types : dict of str to str
        Column -> ``"numeric"`` (float, NaN missing) or ``"categorical"`` (text, NaN missing); the
        columns of ``df`` are converted accordingly.
    exclusions : DataFrame
        One row per excluded patient with ``patient_id``, ``row`` (1-based file line), ``reason``.
        Nothing is dropped without a row here.
    source : Path or None
        The manifest file.
    missing_files : DataFrame or None
        Listed files that do not exist, kept as a missing modality (``patient_id``, ``row``,
        ``reason``); None when every listed file exists.
    notes : DataFrame
        Patients kept with a repaired or masked input (``patient_id``, ``note``).
    """

    df: pd.DataFrame
    root: Path
    clinical_columns: list[str]
    exclusions: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["patient_id", "row", "reason"]))
    source: Path | None = None
    missing_files: pd.DataFrame | None = None  # listed files absent, kept as a missing modality
    clinical_types: dict[str, str] = field(default_factory=dict)  # column -> "numeric" | "categorical"
    notes: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["patient_id", "note"]))

    @classmethod
    def from_manifest(
        cls,
        path: str | os.PathLike,
        *,
        modalities: Sequence[str] | None = None,
        on_missing_file: str = "exclude",
        targets: Sequence[str] | None = None,
        clinical: Mapping[str, str | None] | Sequence | None = None,
        na_values: Sequence[str] = (),
        allow_empty_modalities: bool = False,
    ) -> Cohort:
        """Load and validate a manifest (CSV/Parquet).

        Parameters
        ----------
        path : the manifest; relative ECG/CT paths are resolved against its folder. An ECG path
            may be anything :func:`riskfm.ecg.read_ecg` reads, including a WFDB record name
            without extension (PhysioNet's convention); a CT path a NIfTI file or a DICOM folder.
        modalities : modalities the run uses; only their files are checked. A requested ``ecg`` or
            ``ct`` modality whose path column is absent or entirely empty is an error, as is a
            requested ``clinical`` modality without clinical columns. None (default): every
            modality the manifest has, none required.
        on_missing_file : what to do when a listed ECG/CT file does not exist: ``"exclude"`` the
            patient (counted in ``exclusions`` with the reason), ``"missing"`` keep the patient with
            that modality marked absent (also counted), or ``"raise"`` a ``FileNotFoundError``
            naming the row and file.
        targets : run targets (``stenosis``, ``stenosis_lad``, ``mace_30d``, ``survival``); a
            target whose label column(s) are absent or entirely empty is an error.
        clinical : the clinical variables, as ``data.clinical_columns`` of a run config (names,
            optionally with ``numeric`` / ``categorical`` types; see :mod:`riskfm.data.columns`).
            None: every non-reserved column, type inferred, after checking that no column is a
            reserved column under another spelling.
        na_values : extra cell texts that mean "not recorded" (e.g. ``"?"``, ``"unknown"``).
        allow_empty_modalities : accept a requested modality's path column when it is empty in
            every row (logged), for applying a trained model to patients who lack that modality;
            the column itself must still be there (a misnamed column is an error, not an absence).
        """
        if on_missing_file not in ("exclude", "missing", "raise"):
            raise ValueError(f"on_missing_file must be 'exclude', 'missing' or 'raise', got {on_missing_file!r}")
        required = modalities is not None
        modalities = tuple(MODALITIES if modalities is None else modalities)
        unknown = set(modalities) - set(MODALITIES)
        if unknown:
            raise ValueError(f"unknown modalities {sorted(unknown)}; choose from {list(MODALITIES)}")
        path = Path(path).resolve()
        raw = read_manifest_table(path, na_values=na_values)
        declared = parse_clinical_spec(clinical)  # a mapping's types are validated too
        _check_headers(raw, path, declared)
        df = validate_manifest(raw, path)
        _check_requested(raw, path, modalities if required else (), targets or (), allow_empty_modalities)
        root = path.parent
        df["_row"] = np.arange(len(df)) + 2  # file line, header is line 1
        columns = clinical_columns(df)
        if declared is not None:
            absent = [c for c in declared if c not in df.columns]
            if absent:
                raise ManifestError(f"{path}: data.clinical_columns lists {absent}, which the manifest lacks "
                                    f"(its clinical columns: {columns})")
            reserved = [c for c in declared if c in RESERVED_COLUMNS]
            if reserved:
                raise ManifestError(f"{path}: data.clinical_columns lists reserved columns {reserved}; "
                                    "ids, paths and labels cannot be model inputs")
            columns = list(declared)
        if required and "clinical" in modalities and not columns:
            raise ManifestError(f"{path}: modality 'clinical' is requested but the manifest has no clinical "
                                f"columns (columns: {list(raw.columns)})")
        df, types = type_clinical_columns(df, columns, declared, path, rows=df["_row"])
        excluded: list[dict] = []
        notes: list[dict] = []
        for col, mod in zip(PATH_COLUMNS, ("ecg", "ct")):
            resolved = [resolve_path(v, root) for v in df[col]]
            df[col] = ["" if p is None else str(p) for p in resolved]
            if mod not in modalities:
                continue
            problems = [None if p is None else _source_problem(mod, p) for p in resolved]
            missing = np.array([p is not None for p in problems])
            for i in np.flatnonzero(missing):
                msg = f"{col} file not found: {resolved[i]} ({problems[i]})"
                if on_missing_file == "raise":
                    raise FileNotFoundError(f"{path}: row {df['_row'].iloc[i]} (patient {df['patient_id'].iloc[i]!r}): {msg}")
                (excluded if on_missing_file == "exclude" else notes).append(
                    {"patient_id": df["patient_id"].iloc[i], "row": int(df["_row"].iloc[i]), "reason": msg})
            if on_missing_file == "missing":
                df.loc[missing, col] = ""
        cohort = cls(df.reset_index(drop=True), root, columns, source=path, clinical_types=types)
        if notes:
            log.warning("%s: %d listed files do not exist; those modalities are treated as absent", path, len(notes))
            cohort.missing_files = pd.DataFrame(notes)
        cohort.exclude(excluded)
        return cohort

    # -- bookkeeping ---------------------------------------------------------------------------------
    def exclude(self, records: list[dict]) -> None:
        """Drop patients with a reason each; reasons are kept in ``exclusions`` and logged as counts."""
        if not records:
            return
        ids = {r["patient_id"] for r in records}
        rows = self.df.set_index("patient_id")["_row"].to_dict()
        recs = [{"patient_id": r["patient_id"], "row": r.get("row", rows.get(r["patient_id"])), "reason": r["reason"]}
                for r in records]
        self.df = self.df[~self.df["patient_id"].isin(ids)].reset_index(drop=True)
        new = pd.DataFrame(recs)
        self.exclusions = new if self.exclusions.empty else pd.concat([self.exclusions, new], ignore_index=True)
        for reason, k in self.exclusion_counts(new).items():
            log.warning("%s: excluded %d patient(s): %s", self.source or "cohort", k, reason)

    def note(self, records: list[dict]) -> None:
        """Record patients kept with a repaired or masked input (``patient_id``, ``note``), counted in the report."""
        if records:
            new = pd.DataFrame(records, columns=["patient_id", "note"])
            self.notes = new if self.notes.empty else pd.concat([self.notes, new], ignore_index=True)

    @staticmethod
    def reason_category(reason: str) -> str:
        """Return the countable part of an exclusion reason.

        ``"ecg_path file not found"`` of ``"ecg_path file not found: /x/P1.hea"``; two parts for
        plausibility checks (``"ecg implausible: units"``).
        """
        parts = str(reason).split(": ")
        return ": ".join(parts[:2]) if parts[0].endswith("implausible") and len(parts) > 2 else parts[0]

    @classmethod
    def exclusion_counts(cls, excl: pd.DataFrame, column: str = "reason") -> dict[str, int]:
        """Return reason category (:meth:`reason_category`) -> number of rows of ``excl[column]``."""
        # Group "ecg_path file not found: /x/P1.hea" and "... /x/P2.hea" under one reason.
        return dict(Counter(cls.reason_category(r) for r in excl[column]))

    def report(self) -> str:
        """Return a human-readable summary: kept, excluded by reason, modality availability, label counts."""
        lines = [f"cohort {self.source}: {len(self.df)} patients kept, {len(self.exclusions)} excluded"]
        if len(self.exclusions):
            for reason, k in self.exclusion_counts(self.exclusions).items():
                lines.append(f"  excluded {k}: {reason}")
        if self.missing_files is not None:
            lines.append(f"  {len(self.missing_files)} listed files missing, modality treated as absent")
        if len(self.notes):
            for note, k in self.exclusion_counts(self.notes, "note").items():
                lines.append(f"  kept {k}: {note}")
        for col in PATH_COLUMNS:
            lines.append(f"  {col.split('_')[0]} available: {int((self.df[col] != '').sum())}")
        for t in BINARY_TARGETS:
            known = self.df[t].notna()
            lines.append(f"  {t}: {int(known.sum())} known, {int(self.df.loc[known, t].sum())} positive")
        return "\n".join(lines)

    # -- access --------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.df)

    @property
    def patient_ids(self) -> np.ndarray:
        """Patient ids of the kept patients, in manifest order."""
        return self.df["patient_id"].to_numpy()

    def subset(self, patient_ids) -> Cohort:
        """Return the same cohort restricted to ``patient_ids`` (order kept from the manifest)."""
        keep = self.df["patient_id"].isin(set(patient_ids))
        return Cohort(self.df[keep].reset_index(drop=True), self.root, list(self.clinical_columns),
                      self.exclusions, self.source, self.missing_files, dict(self.clinical_types), self.notes)

    def has(self, modality: str) -> np.ndarray:
        """Return bool ``[n_patients]``: ``ecg``/``ct`` present (a path given) or ``clinical`` (any value)."""
        if modality in ("ecg", "ct"):
            return (self.df[f"{modality}_path"] != "").to_numpy()
        if modality == "clinical":
            if not self.clinical_columns:
                return np.zeros(len(self.df), dtype=bool)
            return self.df[self.clinical_columns].notna().any(axis=1).to_numpy()
        raise ValueError(f"unknown modality {modality!r}")
