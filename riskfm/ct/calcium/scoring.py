"""Coronary artery calcium scores: Agatston, volume and mass, per lesion and per artery.

Conventions (the clinical definition, with every choice a parameter; docs/calcium.md explains why)
-------------------------------------------------------------------------------------------------
* Candidate voxels: ``HU >= threshold`` (130 HU), inside ``roi`` when given and, when an artery
  ``labels`` map is given, where ``labels > 0`` (a lesion is calcium that someone or something
  assigned to an artery).
* Lesions are connected components **within one axial slice** (2D; 8-connectivity by default, as
  in the original Agatston method), never across slices.
* A lesion smaller than ``min_area_mm2`` (1 mm^2) is noise and is dropped from every score.
* Agatston: area (mm^2) x weight, where the weight comes from the lesion's peak HU
  (130-199 -> 1, 200-299 -> 2, 300-399 -> 3, >= 400 -> 4), times ``slice_increment / 3 mm``
  because the score was defined on contiguous 3 mm slices: thinner or overlapping slices count
  each lesion on more slices, and the factor undoes that.
* Volume: lesion area x slice increment (mm^3), i.e. voxel volume for contiguous slices.
* Mass: ``calibration_factor`` (mg HA / cm^3 per HU) x volume (cm^3) x the lesion's mean HU (mg).
  Without a calibration factor (given, or derived from a calibration-insert ROI of known density by
  :func:`calibration_factor_from_insert`) the mass is NaN: a default factor would silently
  mis-state mass on scanners and tube voltages it was not measured on.
* A lesion's artery is the most frequent non-zero label among its pixels (ties -> lower label).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import ndimage

from riskfm.arteries import ARTERY_LABELS, ARTERY_NAMES  # label ids of calcium label maps (1 LM ... 4 RCA)
from riskfm.ct.calcium.categories import agatston_bucket, cac_drs_category

__all__ = [
    "ARTERY_LABELS",
    "ARTERY_NAMES",
    "LESION_COLUMNS",
    "ArteryScore",
    "CalciumScore",
    "agatston_weight",
    "calibration_factor_from_insert",
    "score_calcium",
]

#: Slice thickness / increment (mm) on which the Agatston score was defined.
REFERENCE_INCREMENT_MM = 3.0
#: Columns of :attr:`CalciumScore.lesions`.
LESION_COLUMNS: tuple[str, ...] = (
    "lesion", "slice", "artery", "label", "n_pixels", "area_mm2", "peak_hu", "mean_hu", "weight",
    "agatston", "volume_mm3", "mass_mg", "centroid_y", "centroid_x",
)


def agatston_weight(peak_hu: Any) -> np.ndarray:
    """Agatston density weight from a lesion's peak HU.

    Parameters
    ----------
    peak_hu : array-like of float
        Peak attenuation of each lesion (HU).

    Returns
    -------
    np.ndarray of int
        1 for 130-199 HU, 2 for 200-299, 3 for 300-399, 4 for >= 400 and 0 below 130 HU.
    """
    peak = np.asarray(peak_hu, dtype=np.float64)
    return np.searchsorted(np.array([130.0, 200.0, 300.0, 400.0]), peak, side="right").astype(np.int64)


@dataclass(frozen=True)
class ArteryScore:
    """Scores of one artery (or of the whole exam).

    Attributes
    ----------
    agatston : float
        Agatston score (unitless).
    volume_mm3 : float
        Volume score in mm^3.
    mass_mg : float
        Mass score in mg hydroxyapatite (NaN without a calibration factor).
    n_lesions : int
        Number of 2D lesions (per-slice components) counted.
    """

    agatston: float
    volume_mm3: float
    mass_mg: float
    n_lesions: int

    def to_dict(self) -> dict[str, float]:
        """Return the scores as a plain dict.

        Returns
        -------
        dict
            ``agatston`` (unitless), ``volume_mm3`` (mm^3), ``mass_mg`` (mg HA, NaN without
            calibration) and ``n_lesions`` (int).
        """
        return {"agatston": self.agatston, "volume_mm3": self.volume_mm3, "mass_mg": self.mass_mg,
                "n_lesions": self.n_lesions}


@dataclass
class CalciumScore:
    """Result of :func:`score_calcium`.

    Attributes
    ----------
    agatston, volume_mm3, mass_mg : float
        Exam totals (Agatston unitless, volume mm^3, mass mg; mass NaN without calibration).
    per_artery : dict of str -> ArteryScore
        ``LM``, ``LAD``, ``LCX``, ``RCA`` when a label map was given, else empty.
    lesions : pandas.DataFrame
        One row per counted lesion, columns :data:`LESION_COLUMNS` (``slice`` is the z index,
        centroids are array indices).
    settings : dict
        The conventions used (threshold, min area, connectivity, slice increment, calibration).
    """

    agatston: float
    volume_mm3: float
    mass_mg: float
    per_artery: dict[str, ArteryScore]
    lesions: pd.DataFrame
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def n_lesions(self) -> int:
        """Number of counted 2D lesions in the exam (rows of :attr:`lesions`)."""
        return len(self.lesions)

    @property
    def bucket(self) -> int:
        """Bucket index 0-4 (0, 1-10, 11-100, 101-400, >400)."""
        return agatston_bucket(self.agatston)

    @property
    def cac_drs(self) -> int:
        """CAC-DRS Agatston category 0-3 (0, 1-99, 100-299, >=300)."""
        return cac_drs_category(self.agatston)

    def table(self) -> pd.DataFrame:
        """Per-artery table plus a ``total`` row: agatston, volume_mm3, mass_mg, n_lesions."""
        rows = {name: s.to_dict() for name, s in self.per_artery.items()}
        rows["total"] = {"agatston": self.agatston, "volume_mm3": self.volume_mm3,
                         "mass_mg": self.mass_mg, "n_lesions": self.n_lesions}
        out = pd.DataFrame.from_dict(rows, orient="index")
        out.index.name = "artery"
        return out

    def to_dict(self) -> dict[str, Any]:
        """Return the exam's scores as plain types, without the lesion table.

        Returns
        -------
        dict
            ``agatston``, ``volume_mm3`` (mm^3), ``mass_mg`` (mg HA), ``n_lesions``, ``bucket``
            (0-4), ``cac_drs`` (0-3), ``per_artery`` (artery name -> :meth:`ArteryScore.to_dict`)
            and a copy of ``settings``.
        """
        return {"agatston": self.agatston, "volume_mm3": self.volume_mm3, "mass_mg": self.mass_mg,
                "n_lesions": self.n_lesions, "bucket": self.bucket, "cac_drs": self.cac_drs,
                "per_artery": {k: v.to_dict() for k, v in self.per_artery.items()},
                "settings": dict(self.settings)}


def _check_spacing(spacing: Any) -> tuple[float, float, float]:
    try:
        sp = tuple(float(s) for s in spacing)
    except TypeError as exc:
        raise ValueError(f"spacing must be 3 numbers (z, y, x) in mm, got {spacing!r}") from exc
    if len(sp) != 3 or not all(np.isfinite(sp)) or min(sp) <= 0:
        raise ValueError(f"spacing must be 3 positive finite numbers (z, y, x) in mm, got {spacing!r}")
    return sp  # type: ignore[return-value]


def _check_mask(mask: Any, shape: tuple[int, ...], name: str) -> np.ndarray:
    arr = np.asarray(mask)
    if arr.shape != shape:
        raise ValueError(f"{name} must have the shape of hu {shape}, got {arr.shape}")
    return arr


def calibration_factor_from_insert(hu: Any, insert_roi: Any, density_mg_cm3: float,
                                   water_roi: Any | None = None) -> float:
    """Mass calibration factor from a calibration insert of known hydroxyapatite density.

    ``c = density / (mean HU in the insert - mean HU of water)``; without a water ROI water is
    taken as 0 HU (a calibrated scanner).

    Parameters
    ----------
    hu : array-like [Z, Y, X]
        The exam in HU (the phantom under the patient, or a separate phantom scan).
    insert_roi : array-like of bool [Z, Y, X]
        Voxels inside the insert (keep a margin from its edge: partial volume lowers the mean).
    density_mg_cm3 : float
        Known insert density in mg HA / cm^3 (e.g. 200).
    water_roi : array-like of bool [Z, Y, X], optional
        Voxels of a water-equivalent insert.

    Returns
    -------
    float
        Calibration factor in mg HA / cm^3 per HU.
    """
    hu = np.asarray(hu, dtype=np.float64)
    roi = _check_mask(insert_roi, hu.shape, "insert_roi").astype(bool)
    if not roi.any():
        raise ValueError("insert_roi is empty: the calibration insert has no voxels")
    if not (np.isfinite(density_mg_cm3) and density_mg_cm3 > 0):
        raise ValueError(f"density_mg_cm3 must be positive, got {density_mg_cm3!r}")
    water = 0.0
    if water_roi is not None:
        w = _check_mask(water_roi, hu.shape, "water_roi").astype(bool)
        if not w.any():
            raise ValueError("water_roi is empty")
        water = float(hu[w].mean())
    delta = float(hu[roi].mean()) - water
    if delta <= 0:
        raise ValueError(f"calibration insert mean HU ({delta + water:.1f}) is not above water ({water:.1f}): "
                         "check the insert ROI")
    return float(density_mg_cm3) / delta


def _structure(connectivity: int) -> np.ndarray:
    # In-plane structure only: the z neighbours are zero so that labelling the whole volume at once
    # yields exactly the per-slice 2D components of the definition (one C call instead of a loop).
    st = np.zeros((3, 3, 3), dtype=bool)
    if connectivity == 8:
        st[1] = True
    elif connectivity == 4:
        st[1] = ndimage.generate_binary_structure(2, 1)
    else:
        raise ValueError(f"connectivity must be 4 or 8 (in-plane), got {connectivity!r}")
    return st


def score_calcium(
    hu: Any,
    spacing: Any,
    *,
    labels: Any | None = None,
    roi: Any | None = None,
    threshold: float = 130.0,
    min_area_mm2: float = 1.0,
    connectivity: int = 8,
    slice_increment: float | None = None,
    calibration_factor: float | None = None,
    calibration_roi: Any | None = None,
    calibration_density_mg_cm3: float | None = None,
) -> CalciumScore:
    """Agatston, volume and mass scores of a non-contrast CT, per lesion and per artery.

    Parameters
    ----------
    hu : array-like [Z, Y, X]
        Axial slices in HU (``read_ct(...).array``).
    spacing : (float, float, float)
        Voxel spacing (z, y, x) in mm; the pixel area is ``y * x``.
    labels : array-like of int [Z, Y, X], optional
        Artery label map (0 none, 1 LM, 2 LAD, 3 LCX, 4 RCA). When given, only labelled voxels count
        and scores are reported per artery.
    roi : array-like of bool [Z, Y, X], optional
        Nothing outside it counts (e.g. a heart mask that keeps ribs and spine out).
    threshold : float, default 130
        Calcium threshold in HU (voxels ``>= threshold``).
    min_area_mm2 : float, default 1.0
        Lesions smaller than this (mm^2) are ignored.
    connectivity : {8, 4}, default 8
        In-plane pixel connectivity of a lesion.
    slice_increment : float, optional
        Distance between slice centres (mm); default ``spacing[0]``. The Agatston score is scaled
        by ``slice_increment / 3``; the volume uses it as the slice height.
    calibration_factor : float, optional
        mg HA / cm^3 per HU, for the mass score.
    calibration_roi, calibration_density_mg_cm3 : optional
        Alternatively, a calibration-insert mask on ``hu`` and its density (mg HA / cm^3); the
        factor is derived by :func:`calibration_factor_from_insert`.

    Returns
    -------
    CalciumScore

    Raises
    ------
    ValueError
        Wrong shapes, non-finite HU, bad spacing or parameters, labels outside 0-4, or both a
        calibration factor and a calibration ROI.

    Examples
    --------
    >>> hu = np.full((1, 10, 10), 0.0); hu[0, 2:4, 2:4] = 250.0   # 4 pixels of 1 mm^2 at 250 HU
    >>> score_calcium(hu, (3.0, 1.0, 1.0)).agatston                # 4 mm^2 x weight 2
    8.0
    """
    arr = np.asarray(hu)
    if arr.ndim != 3:
        raise ValueError(f"hu must be a 3D array [Z, Y, X] in HU, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise ValueError(f"hu must be a real numeric array, got dtype {arr.dtype}")
    sz, sy, sx = _check_spacing(spacing)
    if not np.isfinite(threshold):
        raise ValueError(f"threshold must be finite (HU), got {threshold!r}")
    if not (np.isfinite(min_area_mm2) and min_area_mm2 >= 0):
        raise ValueError(f"min_area_mm2 must be >= 0, got {min_area_mm2!r}")
    increment = sz if slice_increment is None else float(slice_increment)
    if not (np.isfinite(increment) and increment > 0):
        raise ValueError(f"slice_increment must be positive (mm), got {slice_increment!r}")
    if calibration_roi is not None:
        if calibration_factor is not None:
            raise ValueError("give either calibration_factor or calibration_roi, not both")
        if calibration_density_mg_cm3 is None:
            raise ValueError("calibration_roi needs calibration_density_mg_cm3 (mg HA / cm^3)")
        calibration_factor = calibration_factor_from_insert(arr, calibration_roi, calibration_density_mg_cm3)
    if calibration_factor is not None and not (np.isfinite(calibration_factor) and calibration_factor > 0):
        raise ValueError(f"calibration_factor must be positive (mg/cm^3 per HU), got {calibration_factor!r}")
    structure = _structure(int(connectivity))

    candidate = arr >= threshold
    # min / max propagate NaN and keep +-inf: two fast reductions instead of a full isfinite mask.
    if np.issubdtype(arr.dtype, np.floating) and arr.size and not (np.isfinite(arr.min()) and np.isfinite(arr.max())):
        raise ValueError("hu holds NaN or infinite values; fill them (e.g. with -1024 HU) before scoring")
    if roi is not None:
        candidate &= _check_mask(roi, arr.shape, "roi").astype(bool)
    lab_arr = None
    if labels is not None:
        lab_arr = _check_mask(labels, arr.shape, "labels")
        if not np.issubdtype(lab_arr.dtype, np.integer):
            if not np.all(np.equal(np.mod(lab_arr, 1), 0)):
                raise ValueError("labels must hold integer artery labels 0-4")
            lab_arr = lab_arr.astype(np.int64)
        lmin, lmax = (int(lab_arr.min()), int(lab_arr.max())) if lab_arr.size else (0, 0)
        if lmin < 0 or lmax > 4:
            raise ValueError(f"labels must be 0 (none), 1 LM, 2 LAD, 3 LCX or 4 RCA; found {lmin}..{lmax}")
        candidate &= lab_arr > 0

    settings = {"threshold_hu": float(threshold), "min_area_mm2": float(min_area_mm2),
                "connectivity": int(connectivity), "slice_increment_mm": increment,
                "pixel_area_mm2": sy * sx, "calibration_factor": calibration_factor}
    pixel_area = sy * sx

    # Label slice by slice (2D labelling of a slice is cheaper than one 3D pass with an in-plane
    # structure, which still visits every 3x3x3 neighbour) and only slices holding candidates.
    plane = structure[1]
    z_idx, comp_parts, value_parts, y_parts, x_parts = [], [], [], [], []
    n = 0
    rows_any = candidate.any(axis=2)  # [Z, Y]
    cols_any = candidate.any(axis=1)  # [Z, X]
    for z in np.flatnonzero(rows_any.any(axis=1)):
        # Work on the slice's bounding box of candidates only: calcium and bone cover a small part
        # of a 512 x 512 slice, and labelling / nonzero cost grows with the pixels visited.
        r = np.flatnonzero(rows_any[z])
        c = np.flatnonzero(cols_any[z])
        r0, r1, c0, c1 = r[0], r[-1] + 1, c[0], c[-1] + 1
        box = candidate[z, r0:r1, c0:c1]
        lab2d, k = ndimage.label(box, structure=plane)
        ys, xs = np.nonzero(box)  # nonzero on bool is ~4x faster than on int labels
        comp_parts.append(lab2d[ys, xs].astype(np.int64) + n)
        ys, xs = ys + r0, xs + c0
        value_parts.append(arr[z, ys, xs].astype(np.float64))
        y_parts.append(ys)
        x_parts.append(xs)
        z_idx.append(np.full(ys.size, z, dtype=np.int64))
        n += int(k)
    cat = (lambda parts, dt: np.concatenate(parts) if parts else np.zeros(0, dt))  # noqa: E731
    comp, values = cat(comp_parts, np.int64), cat(value_parts, np.float64)
    zyx = (cat(z_idx, np.int64), cat(y_parts, np.int64), cat(x_parts, np.int64))
    n_pix = np.bincount(comp, minlength=n + 1)[1:]
    sums = np.bincount(comp, weights=values, minlength=n + 1)[1:]
    # ufunc.at has a fast path for 1D int indices (numpy >= 1.25): no sort, unlike ndimage.maximum.
    peak = np.full(n + 1, -np.inf)
    np.maximum.at(peak, comp, values)
    peak = peak[1:]
    area = n_pix * pixel_area
    keep = area >= min_area_mm2
    slice_of = np.zeros(n, dtype=np.int64)
    cy = np.zeros(n)
    cx = np.zeros(n)
    if n:
        slice_of[comp - 1] = zyx[0]
        cy = np.bincount(comp, weights=zyx[1], minlength=n + 1)[1:] / n_pix
        cx = np.bincount(comp, weights=zyx[2], minlength=n + 1)[1:] / n_pix
    artery_label = np.zeros(n, dtype=np.int64)
    if lab_arr is not None and n:
        lab_vals = lab_arr[zyx].astype(np.int64)
        counts = np.zeros((n, 5), dtype=np.int64)
        np.add.at(counts, (comp - 1, lab_vals), 1)
        counts[:, 0] = -1  # 0 never wins (candidates are labelled anyway)
        artery_label = counts.argmax(axis=1)  # argmax picks the lower label on ties

    mean_hu = sums / np.maximum(n_pix, 1)  # every component has >= 1 pixel; max() guards n = 0
    weight = agatston_weight(peak)
    agatston = area * weight * (increment / REFERENCE_INCREMENT_MM)
    volume = area * increment
    if calibration_factor is not None:
        mass = calibration_factor * (volume / 1000.0) * mean_hu
    else:
        mass = np.full(n, np.nan)

    idx = np.flatnonzero(keep)
    lesions = pd.DataFrame({
        "lesion": np.arange(1, idx.size + 1),
        "slice": slice_of[idx],
        "artery": [ARTERY_NAMES.get(int(a), "") for a in artery_label[idx]],
        "label": artery_label[idx],
        "n_pixels": n_pix[idx],
        "area_mm2": area[idx],
        "peak_hu": peak[idx],
        "mean_hu": mean_hu[idx],
        "weight": weight[idx],
        "agatston": agatston[idx],
        "volume_mm3": volume[idx],
        "mass_mg": mass[idx],
        "centroid_y": cy[idx],
        "centroid_x": cx[idx],
    }, columns=list(LESION_COLUMNS))
    lesions = lesions.sort_values(["slice", "centroid_y", "centroid_x"], kind="stable").reset_index(drop=True)
    lesions["lesion"] = np.arange(1, len(lesions) + 1)

    def _total(rows: pd.DataFrame) -> ArteryScore:
        mass_total = float(rows["mass_mg"].sum()) if calibration_factor is not None else float("nan")
        return ArteryScore(float(rows["agatston"].sum()), float(rows["volume_mm3"].sum()), mass_total,
                           int(len(rows)))

    per_artery: dict[str, ArteryScore] = {}
    if lab_arr is not None:
        for name, value in ARTERY_LABELS.items():
            per_artery[name] = _total(lesions[lesions["label"] == value])
    total = _total(lesions)
    return CalciumScore(total.agatston, total.volume_mm3, total.mass_mg, per_artery, lesions, settings)
