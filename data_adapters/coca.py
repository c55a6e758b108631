"""COCA (Stanford coronary calcium) layout -> per-artery label volumes and a riskfm manifest.

Gated part: one DICOM series per patient plus one plist XML per patient whose ``Images`` array holds
``{ImageIndex, ROIs[]}``; each ROI has a ``Name`` (the artery), ``Area`` in cm^2 and ``Point_px``,
a polygon of ``"(x, y)"`` strings in pixel coordinates (x = column, y = row). ``ImageIndex`` is the
slice index after sorting the slices by ascending z (ImagePositionPatient), which is the order of
:func:`riskfm.ct.read_ct`'s array axis 0. Polygons are rasterised with pixel centres (a pixel
belongs to the lesion when its centre lies inside the polygon) and each ROI's pixel count must
reproduce its ``Area``: when it does not, the slice index or the polygon convention is off and the
adapter stops with an error that names the file, image and ROI rather than writing wrong labels.

Non-gated part: ``scores.xlsx`` with columns ``filename, LCA, LAD, LCX, RCA, total`` (LCA is the
left main) -> :func:`read_nongated_scores`.

COCA is under a data use agreement: never commit any of it. The tests write files in this layout.

Expected folders for :func:`coca_gated_manifest`::

    gated_root/<patient_id>/**/*.dcm      one series per patient (any sub-folder depth)
    xml_root/<patient_id>.xml             the plist annotations (patients without one: no calcium)
"""

from __future__ import annotations

import os
import plistlib
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from data_adapters import AdapterError
from riskfm.arteries import ARTERY_LABELS

__all__ = [
    "COCA_ARTERIES",
    "CocaAnnotation",
    "coca_gated_manifest",
    "coca_label_volume",
    "read_coca_xml",
    "read_nongated_scores",
    "rasterise_polygon",
]

#: ROI name in the COCA XML -> riskfm artery label (1 LM, 2 LAD, 3 LCX, 4 RCA).
COCA_ARTERIES: dict[str, int] = {
    "Left Coronary Artery": ARTERY_LABELS["LM"],  # the left main
    "Left Anterior Descending Artery": ARTERY_LABELS["LAD"],
    "Left Circumflex Artery": ARTERY_LABELS["LCX"],
    "Right Coronary Artery": ARTERY_LABELS["RCA"],
}
_POINT = re.compile(r"^\s*\(\s*([-+0-9.eE]+)\s*,\s*([-+0-9.eE]+)\s*(?:,\s*[-+0-9.eE]+\s*)?\)\s*$")


class CocaAnnotation:
    """One ROI of a COCA XML: ``image_index``, ``name``, ``label``, ``area_cm2``, ``points`` [K, 2] (x, y)."""

    def __init__(self, image_index: int, name: str, label: int, area_cm2: float, points: np.ndarray) -> None:
        self.image_index = image_index
        self.name = name
        self.label = label
        self.area_cm2 = area_cm2
        self.points = points

    def __repr__(self) -> str:
        return f"CocaAnnotation(image={self.image_index}, {self.name!r}, area={self.area_cm2} cm2, {len(self.points)} points)"


def read_coca_xml(path: str | os.PathLike) -> list[CocaAnnotation]:
    """Read the ROIs of one COCA plist XML.

    Raises
    ------
    AdapterError
        Unreadable plist, missing ``Images`` / ``ImageIndex`` / ``ROIs`` keys, an unknown ROI name,
        or a malformed ``Point_px`` entry; the message names the file, image and ROI.
    """
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            doc = plistlib.load(fh)
    except FileNotFoundError:
        raise AdapterError(f"{path}: annotation file not found") from None
    except Exception as exc:  # plistlib raises InvalidFileException / ExpatError
        raise AdapterError(f"{path}: not a readable plist XML ({exc})") from exc
    if not isinstance(doc, dict) or "Images" not in doc:
        raise AdapterError(f"{path}: no top-level 'Images' array")
    out = []
    for i, image in enumerate(doc["Images"]):
        if "ImageIndex" not in image:
            raise AdapterError(f"{path}: Images[{i}] has no 'ImageIndex'")
        idx = int(image["ImageIndex"])
        for j, roi in enumerate(image.get("ROIs", [])):
            where = f"{path}: Images[{i}] (ImageIndex {idx}) ROIs[{j}]"
            name = str(roi.get("Name", "")).strip()
            if name not in COCA_ARTERIES:
                raise AdapterError(f"{where}: unknown ROI Name {name!r}; expected one of {list(COCA_ARTERIES)}")
            pts = []
            for s in roi.get("Point_px", []):
                m = _POINT.match(str(s))
                if not m:
                    raise AdapterError(f"{where}: Point_px entry {s!r} is not '(x, y)'")
                pts.append((float(m.group(1)), float(m.group(2))))
            if not pts:
                raise AdapterError(f"{where}: empty Point_px polygon")
            if "Area" not in roi:
                raise AdapterError(f"{where}: no 'Area' (cm^2)")
            out.append(CocaAnnotation(idx, name, COCA_ARTERIES[name], float(roi["Area"]), np.asarray(pts)))
    return out


def rasterise_polygon(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Pixels whose centres lie inside (or on) a float polygon.

    Parameters
    ----------
    points : array [K, 2]
        Vertices (x = column, y = row) in pixel units; pixel (r, c) has its centre at (c, r).
    shape : (rows, cols)

    Returns
    -------
    np.ndarray of bool [rows, cols]
        A polygon of one or two points (a clicked pixel) marks the pixels it touches.
    """
    from matplotlib.path import Path as MplPath

    pts = np.asarray(points, dtype=np.float64)
    mask = np.zeros(shape, dtype=bool)
    if len(pts) < 3:
        r = np.clip(np.round(pts[:, 1]).astype(int), 0, shape[0] - 1)
        c = np.clip(np.round(pts[:, 0]).astype(int), 0, shape[1] - 1)
        mask[r, c] = True
        return mask
    c0, c1 = int(np.floor(pts[:, 0].min())), int(np.ceil(pts[:, 0].max())) + 1
    r0, r1 = int(np.floor(pts[:, 1].min())), int(np.ceil(pts[:, 1].max())) + 1
    c0, r0 = max(c0, 0), max(r0, 0)
    c1, r1 = min(c1, shape[1]), min(r1, shape[0])
    if c0 >= c1 or r0 >= r1:
        return mask
    rr, cc = np.mgrid[r0:r1, c0:c1]
    # A tiny positive radius counts centres on the boundary as inside (vertex-aligned polygons).
    inside = MplPath(pts).contains_points(np.column_stack([cc.ravel(), rr.ravel()]), radius=1e-9)
    inside |= MplPath(pts).contains_points(np.column_stack([cc.ravel(), rr.ravel()]), radius=-1e-9)
    mask[r0:r1, c0:c1] = inside.reshape(rr.shape)
    return mask


def coca_label_volume(annotations: list[CocaAnnotation], shape: tuple[int, int, int], pixel_spacing_mm: tuple[float, float],
                      *, source: str = "<xml>", area_rtol: float = 0.25, area_atol_pixels: float = 2.0) -> np.ndarray:
    """Per-artery label volume ``[Z, Y, X]`` (uint8 0-4) from COCA ROIs, with the Area check.

    Parameters
    ----------
    annotations : list of CocaAnnotation
    shape : (Z, Y, X)
        Grid of the CT (``read_ct(...).array.shape``).
    pixel_spacing_mm : (row, col) spacing in mm
    source : str
        File name for error messages.
    area_rtol, area_atol_pixels : float
        The rasterised area may differ from ``Area`` by ``max(area_rtol * Area, area_atol_pixels
        pixels)``: drawing tools count boundary pixels in their own way, but a shifted slice index
        or swapped x/y gives a polygon over the wrong pixels and an area far outside this.

    Raises
    ------
    AdapterError
        An ImageIndex outside the series, or a rasterised area that disagrees with ``Area``.
    """
    labels = np.zeros(shape, dtype=np.uint8)
    pixel_cm2 = pixel_spacing_mm[0] * pixel_spacing_mm[1] / 100.0
    for a in annotations:
        if not 0 <= a.image_index < shape[0]:
            raise AdapterError(f"{source}: ImageIndex {a.image_index} ({a.name}) is outside the series of "
                               f"{shape[0]} slices (indices 0..{shape[0] - 1} after sorting by ascending z)")
        mask = rasterise_polygon(a.points, shape[1:])
        got = mask.sum() * pixel_cm2
        tol = max(area_rtol * a.area_cm2, area_atol_pixels * pixel_cm2)
        if abs(got - a.area_cm2) > tol:
            raise AdapterError(
                f"{source}: ImageIndex {a.image_index}, ROI {a.name!r}: the polygon covers {int(mask.sum())} pixels "
                f"= {got:.4f} cm^2 but its Area is {a.area_cm2:.4f} cm^2 (tolerance {tol:.4f}); the slice order, "
                "the (x, y) convention or the pixel spacing does not match this series")
        labels[a.image_index][mask] = a.label
    return labels


def _nifti_affine(affine_zyx_lps: np.ndarray) -> np.ndarray:
    """Convert riskfm's (z, y, x) -> LPS affine to a NIfTI (i=x, j=y, k=z) -> RAS affine.

    Both are 4 x 4 and map voxel indices to mm.
    """
    perm = np.zeros((4, 4))
    perm[0, 2] = perm[1, 1] = perm[2, 0] = perm[3, 3] = 1.0  # (i, j, k) -> (z, y, x)
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine_zyx_lps @ perm


def _check_axial(folder: Path) -> None:
    import pydicom

    for f in sorted(folder.rglob("*")):
        if not f.is_file():
            continue
        try:
            ds = pydicom.dcmread(f, stop_before_pixels=True)
        except Exception:
            continue
        iop = getattr(ds, "ImageOrientationPatient", None)
        if iop is not None and not np.allclose([float(v) for v in iop], [1, 0, 0, 0, 1, 0], atol=1e-3):
            raise AdapterError(f"{f}: ImageOrientationPatient {list(iop)} is not standard axial; COCA "
                               "polygons are in the stored pixel grid, so this series cannot be labelled safely")
        return


def coca_gated_manifest(gated_root: str | os.PathLike, xml_root: str | os.PathLike, out: str | os.PathLike, *,
                        score: bool = True) -> pd.DataFrame:
    """Convert the gated COCA layout: CT NIfTI + per-artery label NIfTI per patient, and a manifest.

    Parameters
    ----------
    gated_root : path
        ``<patient_id>/`` folders, each holding one DICOM series (any depth).
    xml_root : path
        ``<patient_id>.xml`` plist annotations; a patient without one has no calcium.
    out : path
        Output folder: ``ct/<id>.nii.gz``, ``labels/<id>.nii.gz`` and ``manifest.csv`` (paths
        relative to it).
    score : bool, default True
        Add the reference Agatston score (total and per artery) computed from CT and labels.

    Returns
    -------
    DataFrame
        The manifest: ``patient_id, ct_path, calcium_labels_path, n_rois`` and, with ``score``,
        ``agatston, agatston_LM, agatston_LAD, agatston_LCX, agatston_RCA``.
    """
    import nibabel as nib

    from data_adapters import write_manifest
    from riskfm.ct import read_ct
    from riskfm.ct.calcium import score_calcium

    gated_root, xml_root, out = Path(gated_root), Path(xml_root), Path(out)
    if not gated_root.is_dir():
        raise AdapterError(f"{gated_root}: gated folder not found")
    patients = sorted(p for p in gated_root.iterdir() if p.is_dir())
    if not patients:
        raise AdapterError(f"{gated_root}: no patient folders")
    (out / "ct").mkdir(parents=True, exist_ok=True)
    (out / "labels").mkdir(parents=True, exist_ok=True)
    rows = []
    for folder in patients:
        pid = folder.name
        series = folder
        dcm_dirs = sorted({f.parent for f in folder.rglob("*") if f.is_file() and f.suffix.lower() in (".dcm", "")})
        if len(dcm_dirs) == 1:
            series = dcm_dirs[0]
        _check_axial(series)
        vol = read_ct(series)
        xml = xml_root / f"{pid}.xml"
        anns = read_coca_xml(xml) if xml.is_file() else []
        labels = coca_label_volume(anns, vol.array.shape, vol.spacing[1:], source=str(xml))
        aff = _nifti_affine(vol.affine)
        ct_rel, lab_rel = Path("ct") / f"{pid}.nii.gz", Path("labels") / f"{pid}.nii.gz"
        nib.save(nib.Nifti1Image(np.round(vol.array).astype(np.int16).transpose(2, 1, 0), aff), str(out / ct_rel))
        nib.save(nib.Nifti1Image(labels.transpose(2, 1, 0), aff), str(out / lab_rel))
        row: dict[str, Any] = {"patient_id": pid, "ct_path": ct_rel.as_posix(),
                               "calcium_labels_path": lab_rel.as_posix(), "n_rois": len(anns)}
        if score:
            s = score_calcium(vol.array, vol.spacing, labels=labels)
            row["agatston"] = s.agatston
            for name, a in s.per_artery.items():
                row[f"agatston_{name}"] = a.agatston
        rows.append(row)
    df = pd.DataFrame(rows)
    write_manifest(df, out / "manifest.csv")
    return df


def read_nongated_scores(path: str | os.PathLike) -> pd.DataFrame:
    """Read the non-gated ``scores.xlsx`` (or a CSV with the same columns).

    Returns
    -------
    DataFrame
        ``patient_id`` (the ``filename`` column), ``agatston_LM`` (from ``LCA``), ``agatston_LAD``,
        ``agatston_LCX``, ``agatston_RCA``, ``agatston`` (``total``); a ``total`` that differs from
        the sum of the arteries by more than 1 is an error naming the row.
    """
    path = Path(path)
    if not path.is_file():
        raise AdapterError(f"{path}: scores file not found")
    try:
        df = pd.read_excel(path) if path.suffix.lower() in (".xlsx", ".xls") else pd.read_csv(path)
    except ImportError as exc:
        raise AdapterError(f"{path}: reading .xlsx needs openpyxl (pip install openpyxl)") from exc
    df.columns = [str(c).strip() for c in df.columns]
    need = ["filename", "LCA", "LAD", "LCX", "RCA", "total"]
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise AdapterError(f"{path}: missing column(s) {missing} (has {list(df.columns)})")
    out = pd.DataFrame({"patient_id": df["filename"].astype(str).str.strip()})
    for src, dst in (("LCA", "agatston_LM"), ("LAD", "agatston_LAD"), ("LCX", "agatston_LCX"),
                     ("RCA", "agatston_RCA"), ("total", "agatston")):
        vals = pd.to_numeric(df[src], errors="coerce")
        bad = vals.isna() | (vals < 0)
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise AdapterError(f"{path}: row {i + 2} ({out['patient_id'].iloc[i]}): column {src} is not a score >= 0: {df[src].iloc[i]!r}")
        out[dst] = vals.astype(float)
    diff = (out[["agatston_LM", "agatston_LAD", "agatston_LCX", "agatston_RCA"]].sum(axis=1) - out["agatston"]).abs()
    if (diff > 1.0).any():
        i = int(np.flatnonzero((diff > 1.0).to_numpy())[0])
        raise AdapterError(f"{path}: row {i + 2} ({out['patient_id'].iloc[i]}): total {out['agatston'].iloc[i]} differs "
                           "from LCA + LAD + LCX + RCA by more than 1")
    return out
