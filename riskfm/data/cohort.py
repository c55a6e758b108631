"""``Cohort``: a validated manifest with resolved paths and an account of every excluded row."""

from __future__ import annotations

import logging
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from riskfm.data.manifest import (
    BINARY_TARGETS,
    PATH_COLUMNS,
    clinical_columns,
    read_manifest_table,
    resolve_path,
    validate_manifest,
)

log = logging.getLogger(__name__)

MODALITIES: tuple[str, ...] = ("ecg", "ct", "clinical")


@dataclass
class Cohort:
    """Patients of one manifest, ready for splitting and datasets.

    Attributes:
        df: one row per kept patient; ``ecg_path``/``ct_path`` are absolute (empty when absent).
        root: the manifest's folder (relative paths are resolved against it).
        clinical_columns: the clinical variables (every non-reserved column).
        exclusions: one row per excluded patient with ``patient_id``, ``row`` (1-based file line),
            ``reason``. Nothing is dropped without a row here.
        source: the manifest file.
    """

    df: pd.DataFrame
    root: Path
    clinical_columns: list[str]
    exclusions: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["patient_id", "row", "reason"]))
    source: Path | None = None
    missing_files: pd.DataFrame | None = None  # listed files absent, kept as a missing modality

    @classmethod
    def from_manifest(
        cls,
        path: str | os.PathLike,
        *,
        modalities: tuple[str, ...] | list[str] = MODALITIES,
        on_missing_file: str = "exclude",
    ) -> Cohort:
        """Load and validate a manifest (CSV/Parquet).

        Parameters
        ----------
        path : the manifest; relative ECG/CT paths are resolved against its folder.
        modalities : modalities the run uses; only their files are checked.
        on_missing_file : what to do when a listed ECG/CT file does not exist: ``"exclude"`` the
            patient (counted in ``exclusions`` with the reason), ``"missing"`` keep the patient with
            that modality marked absent (also counted), or ``"raise"`` a ``FileNotFoundError``
            naming the row and file.
        """
        if on_missing_file not in ("exclude", "missing", "raise"):
            raise ValueError(f"on_missing_file must be 'exclude', 'missing' or 'raise', got {on_missing_file!r}")
        unknown = set(modalities) - set(MODALITIES)
        if unknown:
            raise ValueError(f"unknown modalities {sorted(unknown)}; choose from {list(MODALITIES)}")
        path = Path(path).resolve()
        df = validate_manifest(read_manifest_table(path), path)
        root = path.parent
        df["_row"] = np.arange(len(df)) + 2  # file line, header is line 1
        excluded: list[dict] = []
        notes: list[dict] = []
        for col, mod in zip(PATH_COLUMNS, ("ecg", "ct")):
            resolved = [resolve_path(v, root) for v in df[col]]
            df[col] = ["" if p is None else str(p) for p in resolved]
            if mod not in modalities:
                continue
            # "file.hdf5::exam_id" addresses one record inside a container file (CODE-15%)
            missing = np.array([p is not None and not Path(str(p).split("::")[0]).exists() for p in resolved])
            for i in np.flatnonzero(missing):
                msg = f"{col} file not found: {resolved[i]}"
                if on_missing_file == "raise":
                    raise FileNotFoundError(f"{path}: row {df['_row'].iloc[i]} (patient {df['patient_id'].iloc[i]!r}): {msg}")
                (excluded if on_missing_file == "exclude" else notes).append(
                    {"patient_id": df["patient_id"].iloc[i], "row": int(df["_row"].iloc[i]), "reason": msg})
            if on_missing_file == "missing":
                df.loc[missing, col] = ""
        cohort = cls(df.reset_index(drop=True), root, clinical_columns(df), source=path)
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

    @staticmethod
    def exclusion_counts(excl: pd.DataFrame) -> dict[str, int]:
        # Group "ecg_path file not found: /x/P1.hea" and "... /x/P2.hea" under one reason.
        return dict(Counter(str(r).split(": ")[0] for r in excl["reason"]))

    def report(self) -> str:
        """Human-readable summary: kept, excluded by reason, modality availability, label counts."""
        lines = [f"cohort {self.source}: {len(self.df)} patients kept, {len(self.exclusions)} excluded"]
        if len(self.exclusions):
            for reason, k in self.exclusion_counts(self.exclusions).items():
                lines.append(f"  excluded {k}: {reason}")
        if self.missing_files is not None:
            lines.append(f"  {len(self.missing_files)} listed files missing, modality treated as absent")
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
        return self.df["patient_id"].to_numpy()

    def subset(self, patient_ids) -> Cohort:
        """The same cohort restricted to ``patient_ids`` (order kept from the manifest)."""
        keep = self.df["patient_id"].isin(set(patient_ids))
        return Cohort(self.df[keep].reset_index(drop=True), self.root, list(self.clinical_columns),
                      self.exclusions, self.source, self.missing_files)

    def has(self, modality: str) -> np.ndarray:
        """Boolean presence per patient for ``ecg``/``ct`` (a path given) or ``clinical`` (any value)."""
        if modality in ("ecg", "ct"):
            return (self.df[f"{modality}_path"] != "").to_numpy()
        if modality == "clinical":
            if not self.clinical_columns:
                return np.zeros(len(self.df), dtype=bool)
            return self.df[self.clinical_columns].notna().any(axis=1).to_numpy()
        raise ValueError(f"unknown modality {modality!r}")
