"""CT cases with their masks: found in a manifest or a folder, loaded onto a common grid.

A *case* is one CT (NIfTI file or DICOM folder) plus optional masks on the same grid: ``heart``,
``coronary`` (artery labels, nonzero = lumen), ``plaque`` (1 calcified, 2 non-calcified) and
``stenosis`` (nonzero = stenotic lesion). Masks are found

* in a manifest, from columns ``heart_mask_path``, ``coronary_mask_path``, ``plaque_mask_path``,
  ``stenosis_mask_path`` (relative to the manifest's folder) when present; otherwise
* beside the CT by name: ``P001.nii.gz`` -> ``P001_heart.nii.gz``, ``P001_coronary.nii.gz`` (or
  ``P001_labels.nii.gz``, the synthetic cohort's artery labels), ``P001_plaque.nii.gz``,
  ``P001_stenosis.nii.gz``; a DICOM folder ``P001/`` -> ``P001_heart.nii.gz`` beside it.

:func:`load_case` reads a case through :func:`riskfm.ct.transforms.ct_case_pipeline`: the CT's
plausibility checks, its masks, optionally a crop of everything to the heart, then CT (trilinear)
and masks (nearest) resampled to one spacing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from riskfm.ct.volume import CTVolume

__all__ = ["MASK_KINDS", "CTCase", "LoadedCase", "cases_from_folder", "cases_from_manifest", "find_cases",
           "load_case"]

#: Mask kinds and the file-name suffixes searched beside a CT, in order of preference.
MASK_KINDS: dict[str, tuple[str, ...]] = {
    "heart": ("_heart",),
    "coronary": ("_coronary", "_labels", "_arteries"),
    "plaque": ("_plaque",),
    "stenosis": ("_stenosis",),
}
_ALL_SUFFIXES = tuple(s for suffixes in MASK_KINDS.values() for s in suffixes)


@dataclass(frozen=True)
class CTCase:
    """One CT and the masks that go with it (paths; nothing is read yet)."""

    patient_id: str
    ct_path: Path
    masks: dict[str, Path] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)


@dataclass
class LoadedCase:
    """A case on its working grid: ``vol`` (HU) and ``masks`` (same shape, uint8 labels)."""

    case: CTCase
    vol: CTVolume
    masks: dict[str, np.ndarray]


def _stem(path: Path) -> str:
    name = path.name
    for ext in (".nii.gz", ".nii"):
        if name.endswith(ext):
            return name[: -len(ext)]
    return name


def companion_masks(ct_path: Path) -> dict[str, Path]:
    """Masks found beside a CT by the naming convention (see the module docstring)."""
    ct_path = Path(ct_path)
    stem = _stem(ct_path)
    found: dict[str, Path] = {}
    for kind, suffixes in MASK_KINDS.items():
        for suffix in suffixes:
            for ext in (".nii.gz", ".nii"):
                candidate = ct_path.parent / f"{stem}{suffix}{ext}"
                if candidate.is_file():
                    found[kind] = candidate
                    break
            if kind in found:
                break
    return found


def cases_from_manifest(manifest: str | Path) -> list[CTCase]:
    """Cases of a manifest's rows that have a ``ct_path``.

    Parameters
    ----------
    manifest : str or path
        CSV, TSV or Parquet (:func:`riskfm.tables.read_table`: ``patient_id`` and the path columns
        read as text); ``ct_path`` and ``<kind>_mask_path`` cells relative to its folder or
        absolute. Masks named by the convention beside each CT are found too.

    Returns
    -------
    list of CTCase
        One per row with a non-empty ``ct_path``, in row order; ``meta`` holds the other columns.

    Raises
    ------
    FileNotFoundError
        When the manifest does not exist.
    ValueError
        For an unreadable manifest (:class:`riskfm.tables.TableError`), one without a ``ct_path``
        column, or one in which no row has a CT.
    """
    from riskfm.tables import read_table

    manifest = Path(manifest)
    text = ["ct_path", *(f"{kind}_mask_path" for kind in MASK_KINDS)]
    frame = read_table(manifest, what="manifest", dtype=dict.fromkeys(text, str))
    if "ct_path" not in frame.columns:
        raise ValueError(f"{manifest}: no ct_path column; a CT manifest needs one (paths relative to the manifest)")
    root = manifest.parent
    cases = []
    for _, row in frame.iterrows():
        rel = row.get("ct_path")
        if not isinstance(rel, str) or not rel.strip():
            continue
        ct_path = (root / rel).resolve() if not Path(rel).is_absolute() else Path(rel)
        masks = companion_masks(ct_path)
        for kind in MASK_KINDS:
            value = row.get(f"{kind}_mask_path")
            if isinstance(value, str) and value.strip():
                masks[kind] = (root / value).resolve() if not Path(value).is_absolute() else Path(value)
        pid = str(row["patient_id"]) if "patient_id" in frame.columns else _stem(ct_path)
        meta = {k: row[k] for k in frame.columns if k not in ("ct_path",) and not k.endswith("_mask_path")}
        cases.append(CTCase(pid, ct_path, masks, meta))
    if not cases:
        raise ValueError(f"{manifest}: no row has a ct_path")
    return cases


def cases_from_folder(folder: str | Path) -> list[CTCase]:
    """Cases for every NIfTI file (not itself a mask) and every DICOM sub-folder of ``folder``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"CT folder not found: {folder}")
    cases = []
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.name.endswith((".nii", ".nii.gz")):
            if _stem(path).endswith(_ALL_SUFFIXES):
                continue
            cases.append(CTCase(_stem(path), path, companion_masks(path)))
        elif path.is_dir() and any(p.is_file() for p in path.iterdir()):
            cases.append(CTCase(path.name, path, companion_masks(path)))
    if not cases:
        raise ValueError(f"{folder}: no NIfTI files or DICOM folders found")
    return cases


def find_cases(source: str | Path) -> list[CTCase]:
    """Cases from a manifest (CSV / Parquet file) or a folder of CTs."""
    source = Path(source)
    if source.is_file():
        return cases_from_manifest(source)
    return cases_from_folder(source)


def load_case(
    case: CTCase,
    spacing: Sequence[float] | None = None,
    *,
    kinds: Sequence[str] = ("heart", "coronary", "plaque", "stenosis"),
    crop_heart: bool = False,
    margin_mm: float = 10.0,
    checks=None,
) -> LoadedCase:
    """Read a case and put CT and masks on one grid.

    Parameters
    ----------
    case : CTCase
    spacing : sequence of 3 float, optional
        Target spacing ``(z, y, x)`` mm (default: keep the CT's grid).
    kinds : sequence of str
        Mask kinds to read when the case has them.
    crop_heart : bool
        Crop CT and masks to the heart mask's bounding box plus ``margin_mm`` (CORA's stenosis
        input); requires a heart mask.
    checks : CTPlausibility, optional
        Plausibility limits for the CT (defaults when None): a mask, a scout or a series without
        its rescale given as the CT is refused with the reasons, never trained on.

    Returns
    -------
    LoadedCase

    Raises
    ------
    ValueError
        The CT is implausible (:class:`~riskfm.data.pipeline.Implausible`, naming the file), a mask
        lies on another grid, or ``crop_heart`` is set for a case without a heart mask.
    """
    from riskfm.ct.transforms import ct_case_pipeline
    from riskfm.data.pipeline import Implausible

    pipeline = ct_case_pipeline(spacing, kinds=kinds, crop_to="heart" if crop_heart else None,
                                margin_mm=margin_mm, checks=checks)
    try:
        item = pipeline.run(str(case.ct_path), {"mask_paths": dict(case.masks)})
    except Implausible as exc:
        raise Implausible(f"{case.ct_path}: {exc}") from None
    return LoadedCase(case, item.data, item.meta["masks"])
