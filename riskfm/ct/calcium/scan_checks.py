"""Can this scan be calcium-scored? Checks that run before an Agatston score is computed.

The Agatston score is defined on **non-contrast, ECG-gated cardiac CT** reconstructed as axial
3 mm slices. On any other scan the same arithmetic still returns a number (a contrast-enhanced CTA
scores its whole blood pool as "calcium"; an abdominal CT scores costal cartilage, aorta and
vertebrae) and that number comes with a clinical category. :func:`check_calcium_scan` measures
what tells such scans apart and returns one :class:`Finding` per problem, each with its code, its
level, the measured value, the limit and the fix. It never raises for them and never changes the
volume; :func:`riskfm.ct.calcium.scan.score_scan` refuses a scan with a ``"refuse"`` finding
unless forced, and writes every finding next to the score.

The checks (codes; limits are the fields of :class:`ScanCheckLimits`; docs/calcium.md,
"Which scans can be scored", gives the measured values on real and synthetic scans)
------------------------------------------------------------------------------------------------
* ``not_ct`` (refuse) -- :func:`riskfm.ct.plausibility.check_ct_plausibility` reasons other than
  obliquity: values no scanner writes, a mask instead of HU, no air at all.
* ``oblique`` (refuse) -- an array axis more than ``max_oblique_deg`` (1 deg) off its patient
  axis: lesions are 2D components of *axial* slices and the slice increment is measured along z.
* ``contrast`` -- the median HU of the soft-tissue-to-contrast voxels (``contrast_band_hu``,
  0..700 HU: fat, air and cortical bone left out) of the heart region -- the heart mask when one
  is given, else the mediastinal region of :func:`riskfm.ct.calcium.roi.heart_region` before its
  bone removal (the bright blood pool of a CTA is itself a "bone-sized" component above 200 HU,
  which the bone removal would take away). Non-contrast blood and myocardium are 30-60 HU, so
  the median of that region stays there; an arterial-phase CTA blood pool is 250-500 HU.
  ``refuse`` at ``contrast_refuse_hu`` (120 HU) and above, ``warning`` from
  ``contrast_warn_hu`` (90 HU): with blood at 100 HU, noise alone lifts blood-pool voxels over
  the 130 HU calcium threshold.
* ``no_lungs`` (refuse) -- the heart sits between the lungs, so a scan through the heart shows
  lung on nearly every slice. A slice "shows lung" when 2D regions below -400 HU whose **mean** HU
  is lung-like (``lung_mean_hu``, -950..-500: outside air and bowel gas average about -980..-1000
  HU even in noisy scans; lung parenchyma -700..-900; each region at least ``lung_min_area_cm2``)
  make up at least ``lung_slice_fraction`` (10%) of the slice's lung + tissue area. Refused when
  fewer than ``min_lung_slices`` (50%) of the slices show lung: an abdominal, pelvic, head or
  neck scan. Measured on regions, not on the body outline, so heart-cropped volumes (lungs cut by
  the crop) pass.
* ``heart_roi_empty``, ``heart_roi_volume``, ``heart_roi_width`` (refuse) -- the heart region (the
  given mask, else :func:`~riskfm.ct.calcium.roi.estimate_heart_roi`) is empty; its volume is
  outside ``roi_volume_ml`` (30-3000 mL); or its mean cross-section over the slices it covers is
  above ``roi_max_area_cm2`` (250 cm^2). An adult heart with its pericardial fat is about
  300-1000 mL and at most about 100-150 cm^2 across; the estimated region also holds the great
  vessels and mediastinal fat, so its bounds are wide: 30 mL is a tenth of the smallest adult
  heart (the scan misses the heart), and a region wider than 250 cm^2 is the hull of gas-filled
  bowel, not a mediastinum. The volume bounds are not narrower because a short synthetic or
  partial-coverage exam holds a fraction of a heart (the synthetic exams' regions are 62-204 mL).
* ``z_extent`` -- the scan's length along z (slices x increment): ``refuse`` below 20 mm or above
  700 mm (``z_extent_mm``: no room for a heart; a whole-body scan), ``warning`` above
  ``z_extent_warn_mm`` (250 mm): longer than an ECG-gated cardiac scan (about 100-200 mm), most
  likely a non-gated chest CT, whose motion blur lowers the score (see ``riskfm cac nongated``).
* ``slice_thickness`` -- the reconstructed slice thickness (DICOM SliceThickness, or the slice
  spacing when the file does not record it, e.g. NIfTI): ``warning`` outside ``thickness_ok_mm``
  (2.5-3.0 mm, the Agatston convention and its common 2.5 mm variant): thinner slices raise peak
  HU and detect smaller lesions (higher scores), thicker slices the opposite, and the score is
  only scaled by ``increment / 3 mm`` (:func:`~riskfm.ct.calcium.score_calcium`); ``refuse``
  outside ``thickness_refuse_mm`` (1.5-5.0 mm), where published conversions do not reach.
* ``slice_increment`` -- ``warning`` when the increment differs from the thickness by more than
  ``increment_tol_mm`` (overlapping or gapped reconstructions; the score is scaled by the
  increment), ``refuse`` when the increment exceeds ``thickness_refuse_mm[1]``.

Examples
--------
>>> from riskfm.ct import read_ct                                         # doctest: +SKIP
>>> findings = check_calcium_scan(read_ct("cta/ct.nii.gz"))                # doctest: +SKIP
>>> [f.code for f in findings if f.refuses]                               # doctest: +SKIP
['contrast']
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from riskfm.ct.calcium.roi import HeartRegion, heart_region
from riskfm.ct.calcium.scoring import REFERENCE_INCREMENT_MM
from riskfm.ct.volume import CTVolume

__all__ = ["LEVELS", "Finding", "ScanCheckLimits", "check_calcium_scan", "contrast_hu", "lung_slice_share", "summarize"]

#: Finding levels: ``"refuse"`` stops :func:`~riskfm.ct.calcium.scan.score_scan` unless forced,
#: ``"warning"`` travels with the score.
LEVELS: tuple[str, ...] = ("refuse", "warning")
_LUNG_AIR_HU = -400.0


@dataclass(frozen=True)
class Finding:
    """One reason to doubt a calcium score of this scan.

    Attributes
    ----------
    code : str
        Stable identifier (``contrast``, ``no_lungs``, ``heart_roi_volume``, ``slice_thickness``, ...).
    level : {"refuse", "warning"}
    message : str
        What was measured and why it matters, in a sentence.
    value : float
        The measured value (NaN when not measurable).
    unit : str
        Unit of ``value`` (``HU``, ``mL``, ``mm``, ``cm^2``, ``deg``, ``% of slices``).
    limit : str
        The limit that was crossed, in words (``">= 120 HU refused"``).
    fix : str
        What to do about it.
    """

    code: str
    level: str
    message: str
    value: float
    unit: str
    limit: str
    fix: str

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise ValueError(f"Finding.level must be one of {LEVELS}, got {self.level!r}")

    @property
    def refuses(self) -> bool:
        """True for a refusal-level finding."""
        return self.level == "refuse"

    def to_dict(self) -> dict[str, Any]:
        """Return the finding's fields as a plain dict (for JSON and CSV output)."""
        return asdict(self)

    def __str__(self) -> str:
        value = "n/a" if not np.isfinite(self.value) else f"{self.value:.4g} {self.unit}".strip()
        return f"[{self.code}] {self.message} (measured {value}; limit {self.limit}); fix: {self.fix}"


@dataclass(frozen=True)
class ScanCheckLimits:
    """Thresholds of :func:`check_calcium_scan` (the module docstring says why each value).

    Attributes
    ----------
    contrast_band_hu : (float, float)
        HU range of the voxels whose median measures the blood pool (fat, air and cortical bone out).
    contrast_warn_hu, contrast_refuse_hu : float
        Median at or above which the scan is flagged / refused as contrast-enhanced.
    contrast_min_voxels : int
        Fewer voxels in the band than this: contrast is not measured.
    lung_mean_hu : (float, float)
        Mean HU of a 2D region below -400 HU that counts as lung.
    lung_min_area_cm2 : float
        Smaller lung-like regions are ignored (bowel gas bubbles, noise).
    lung_slice_fraction : float
        A slice shows lung when lung makes up at least this share of its lung + tissue area.
    min_lung_slices : float
        Share of the slices that must show lung.
    roi_volume_ml : (float, float)
        Accepted heart-region volume in mL.
    roi_max_area_cm2 : float
        Largest accepted mean cross-section of the heart region (cm^2).
    z_extent_mm : (float, float)
        Accepted scan length along z (mm).
    z_extent_warn_mm : float
        Longer scans are flagged as probably not ECG-gated cardiac.
    thickness_ok_mm : (float, float)
        Slice thickness without a finding (the Agatston convention).
    thickness_refuse_mm : (float, float)
        Slice thickness (and largest increment) accepted at all.
    increment_tol_mm : float
        Allowed difference between the slice increment and the thickness.
    max_oblique_deg : float
        Largest angle of an array axis to its patient axis.
    tolerance_mm : float
        Rounding slack on the thickness bounds (headers write 2.9999 or 3.0001).
    """

    contrast_band_hu: tuple[float, float] = (0.0, 700.0)
    contrast_warn_hu: float = 90.0
    contrast_refuse_hu: float = 120.0
    contrast_min_voxels: int = 100
    lung_mean_hu: tuple[float, float] = (-950.0, -500.0)
    lung_min_area_cm2: float = 2.0
    lung_slice_fraction: float = 0.10
    min_lung_slices: float = 0.5
    roi_volume_ml: tuple[float, float] = (30.0, 3000.0)
    roi_max_area_cm2: float = 250.0
    z_extent_mm: tuple[float, float] = (20.0, 700.0)
    z_extent_warn_mm: float = 250.0
    thickness_ok_mm: tuple[float, float] = (2.5, 3.0)
    thickness_refuse_mm: tuple[float, float] = (1.5, 5.0)
    increment_tol_mm: float = 0.1
    max_oblique_deg: float = 1.0
    tolerance_mm: float = 0.05

    def __post_init__(self) -> None:
        if not self.contrast_warn_hu <= self.contrast_refuse_hu:
            raise ValueError("ScanCheckLimits: contrast_warn_hu must not exceed contrast_refuse_hu")
        for name in ("contrast_band_hu", "lung_mean_hu", "roi_volume_ml", "z_extent_mm", "thickness_ok_mm",
                     "thickness_refuse_mm"):
            lo, hi = getattr(self, name)
            if not lo < hi:
                raise ValueError(f"ScanCheckLimits.{name} must be (low, high) with low < high, got {(lo, hi)}")


# ----------------------------------------------------------------------------------- measures
def contrast_hu(hu: np.ndarray, region: np.ndarray, band: tuple[float, float] = (0.0, 700.0),
                min_voxels: int = 100) -> float:
    """Return the median HU of the voxels of ``region`` within ``band`` (NaN when fewer than ``min_voxels``).

    Parameters
    ----------
    hu : ndarray [Z, Y, X]
        CT in HU.
    region : ndarray of bool [Z, Y, X]
        Voxels to measure.
    band : (float, float)
        Inclusive HU range of the voxels that count.
    min_voxels : int
        Fewest voxels in the band for a result.

    Returns
    -------
    float
        Median HU, or NaN.
    """
    values = np.asarray(hu)[np.asarray(region, dtype=bool)]
    values = values[(values >= band[0]) & (values <= band[1])]
    if values.size < max(int(min_voxels), 1):
        return float("nan")
    return float(np.median(values))


def lung_slice_share(hu: np.ndarray, spacing: Any, limits: ScanCheckLimits | None = None) -> tuple[float, np.ndarray]:
    """Return the share of slices that show lung, and the lung share of each slice (see the module docstring).

    Parameters
    ----------
    hu : ndarray [Z, Y, X]
        CT in HU, axial slices along axis 0.
    spacing : sequence of 3 floats
        Voxel spacing (z, y, x) in mm (y and x give the pixel area).
    limits : ScanCheckLimits, optional
        Lung thresholds; the defaults when None.

    Returns
    -------
    share : float
        The share of slices whose lung share reaches ``limits.lung_slice_fraction``.
    per_slice : ndarray [Z]
        Per-slice lung share (lung area / (lung + tissue area)), in [0, 1].
    """
    limits = limits or ScanCheckLimits()
    arr = np.asarray(hu)
    pixel_cm2 = float(spacing[1]) * float(spacing[2]) / 100.0
    min_pixels = limits.lung_min_area_cm2 / pixel_cm2
    lo, hi = limits.lung_mean_hu
    shares = np.zeros(arr.shape[0])
    for z in range(arr.shape[0]):
        low = arr[z] < _LUNG_AIR_HU
        lab, n = ndimage.label(low)
        if n == 0:
            continue
        flat = lab.ravel()
        count = np.bincount(flat, minlength=n + 1)[1:]
        mean = np.bincount(flat, weights=arr[z].ravel().astype(np.float64), minlength=n + 1)[1:] / count
        lung_px = float(count[(mean >= lo) & (mean <= hi) & (count >= min_pixels)].sum())
        tissue_px = float(low.size - low.sum())
        shares[z] = lung_px / max(lung_px + tissue_px, 1.0)
    return float(np.mean(shares >= limits.lung_slice_fraction)), shares


# ------------------------------------------------------------------------------------- checks
def check_calcium_scan(
    volume: CTVolume,
    heart_mask: Any | None = None,
    *,
    region: HeartRegion | None = None,
    slice_thickness: float | None = None,
    slice_increment: float | None = None,
    limits: ScanCheckLimits | None = None,
) -> list[Finding]:
    """Return the reasons why an Agatston score of ``volume`` would be wrong or unconventional.

    Parameters
    ----------
    volume : CTVolume
        The scan (``riskfm.ct.read_ct(...)``, or ``CTVolume(hu, spacing)`` for arrays).
    heart_mask : array-like of bool [Z, Y, X], optional
        A real heart mask on the scan's grid: the region checks and the contrast check use it.
        Without one the region is estimated (:func:`~riskfm.ct.calcium.roi.heart_region`).
    region : HeartRegion, optional
        An estimate already computed for this volume (saves recomputing it); ignored when
        ``heart_mask`` is given.
    slice_thickness : float, optional
        Reconstructed slice thickness in mm; default ``volume.meta["slice_thickness_mm"]`` (DICOM),
        else the slice spacing.
    slice_increment : float, optional
        Distance between slice centres in mm; default the z spacing.
    limits : ScanCheckLimits, optional

    Returns
    -------
    list of Finding
        Empty for a scan that fits the Agatston convention; refusals first.
    """
    from riskfm.ct.plausibility import check_ct_plausibility, oblique_angles_deg

    limits = limits or ScanCheckLimits()
    hu = volume.array
    spacing = volume.spacing
    voxel_ml = float(np.prod(spacing)) / 1000.0
    findings: list[Finding] = []

    # ---- is it a CT in HU at all --------------------------------------------------------------
    for reason in check_ct_plausibility(volume):
        if ": oblique:" in reason:
            continue  # reported below with the calcium-specific explanation
        findings.append(Finding("not_ct", "refuse", reason, float("nan"), "", "a CT in HU",
                                "pass the CT image itself, with its rescale slope / intercept applied"))

    # ---- geometry ------------------------------------------------------------------------------
    angle = float(np.max(oblique_angles_deg(volume.affine)))
    if angle > limits.max_oblique_deg:
        findings.append(Finding(
            "oblique", "refuse",
            f"the slices are tilted {angle:.2f} deg from axial: Agatston lesions are 2D components of axial "
            "slices and the increment is measured along z", angle, "deg", f"<= {limits.max_oblique_deg:g} deg",
            "reconstruct axial slices (or resample onto an axis-aligned grid) before scoring"))

    increment = float(spacing[0]) if slice_increment is None else float(slice_increment)
    recorded = slice_thickness if slice_thickness is not None else volume.meta.get("slice_thickness_mm")
    thickness_known = recorded is not None and np.isfinite(float(recorded)) and float(recorded) > 0
    thickness = float(recorded) if thickness_known else increment
    source = "slice thickness" if thickness_known else "slice spacing (no slice thickness recorded)"
    tol = limits.tolerance_mm
    lo_ok, hi_ok = limits.thickness_ok_mm
    lo_ref, hi_ref = limits.thickness_refuse_mm
    factor = increment / REFERENCE_INCREMENT_MM
    if thickness < lo_ref - tol or thickness > hi_ref + tol:
        findings.append(Finding(
            "slice_thickness", "refuse",
            f"{source} {thickness:g} mm is outside {lo_ref:g}-{hi_ref:g} mm: Agatston is defined on 3 mm slices "
            f"and scores from {thickness:g} mm slices are not comparable (thin slices raise peak HU and find "
            "smaller lesions; thick ones blur them away)", thickness, "mm",
            f"{lo_ref:g}-{hi_ref:g} mm accepted, {lo_ok:g}-{hi_ok:g} mm conventional",
            "reconstruct 3 mm (or 2.5 mm) axial slices for calcium scoring"))
    elif thickness < lo_ok - tol or thickness > hi_ok + tol:
        findings.append(Finding(
            "slice_thickness", "warning",
            f"{source} {thickness:g} mm is not the Agatston convention ({lo_ok:g}-{hi_ok:g} mm): the score is "
            f"scaled by increment / 3 mm = {factor:.2f}, which corrects the slice count but not partial volume "
            f"({'thinner slices score higher' if thickness < lo_ok else 'thicker slices score lower'})",
            thickness, "mm", f"{lo_ok:g}-{hi_ok:g} mm", "reconstruct 3 mm axial slices for a conventional score"))
    if thickness_known and increment > hi_ref + tol:  # (unknown thickness: the increment was checked above)
        findings.append(Finding(
            "slice_increment", "refuse",
            f"slice increment {increment:g} mm leaves calcium between slices unimaged", increment, "mm",
            f"<= {hi_ref:g} mm", "reconstruct contiguous 3 mm slices"))
    elif thickness_known and abs(increment - thickness) > limits.increment_tol_mm:
        kind = "overlapping" if increment < thickness else "gapped"
        findings.append(Finding(
            "slice_increment", "warning",
            f"{kind} slices: increment {increment:g} mm vs thickness {thickness:g} mm (Agatston assumes contiguous "
            f"slices); the score is scaled by increment / 3 mm = {factor:.2f}", increment, "mm",
            f"equal to the thickness +- {limits.increment_tol_mm:g} mm",
            "reconstruct contiguous slices (increment = thickness = 3 mm)"))

    z_extent = hu.shape[0] * increment
    z_lo, z_hi = limits.z_extent_mm
    if z_extent < z_lo or z_extent > z_hi:
        findings.append(Finding(
            "z_extent", "refuse",
            f"the scan covers {z_extent:.0f} mm along z: {'no room for a heart' if z_extent < z_lo else 'a whole-body scan'}",
            z_extent, "mm", f"{z_lo:g}-{z_hi:g} mm", "score the cardiac (or chest) series of the study"))
    elif z_extent > limits.z_extent_warn_mm:
        findings.append(Finding(
            "z_extent", "warning",
            f"the scan covers {z_extent:.0f} mm along z, longer than an ECG-gated cardiac scan (about 100-200 mm): "
            "probably a non-gated chest CT, on which motion blur lowers the Agatston score",
            z_extent, "mm", f"<= {limits.z_extent_warn_mm:g} mm",
            "score the ECG-gated calcium-scoring series, or use the non-gated model (riskfm cac nongated)"))

    # ---- anatomy: a chest at heart level -------------------------------------------------------
    lung_share, _ = lung_slice_share(hu, spacing, limits)
    if lung_share < limits.min_lung_slices:
        findings.append(Finding(
            "no_lungs", "refuse",
            f"lung shows on {100 * lung_share:.0f}% of the slices: the heart lies between the lungs, so this scan "
            "does not pass through the heart (abdominal, pelvic, head or neck anatomy)", 100 * lung_share,
            "% of slices", f">= {100 * limits.min_lung_slices:g}% of slices with >= {100 * limits.lung_slice_fraction:g}% lung",
            "score a cardiac or chest CT"))

    given = heart_mask is not None
    if given:
        mask = np.asarray(heart_mask, dtype=bool)
        if mask.shape != hu.shape:
            raise ValueError(f"heart mask grid {mask.shape} differs from the CT grid {hu.shape}")
        contrast_region = mask
    else:
        if region is None:
            region = heart_region(hu, spacing)
        mask = region.roi
        contrast_region = region.mediastinum
    what = "given heart mask" if given else "estimated heart region"
    n_mask = int(mask.sum())
    if n_mask == 0:
        findings.append(Finding(
            "heart_roi_empty", "refuse", f"the {what} is empty: no heart in the field of view", 0.0, "mL",
            f"{limits.roi_volume_ml[0]:g}-{limits.roi_volume_ml[1]:g} mL",
            "score a scan through the heart, or pass its heart mask (--roi)"))
    else:
        vol_ml = n_mask * voxel_ml
        v_lo, v_hi = limits.roi_volume_ml
        if vol_ml < v_lo or vol_ml > v_hi:
            findings.append(Finding(
                "heart_roi_volume", "refuse",
                f"the {what} holds {vol_ml:.0f} mL ({'too small: the heart is not in the field of view' if vol_ml < v_lo else 'larger than any heart'}; "
                "an adult heart with its pericardial fat is about 300-1000 mL)", vol_ml, "mL", f"{v_lo:g}-{v_hi:g} mL",
                "score a scan through the heart, or pass its heart mask (--roi)"))
        n_slices = int(mask.any(axis=(1, 2)).sum())
        area_cm2 = n_mask * float(spacing[1]) * float(spacing[2]) / 100.0 / max(n_slices, 1)
        if area_cm2 > limits.roi_max_area_cm2:
            findings.append(Finding(
                "heart_roi_width", "refuse",
                f"the {what} is {area_cm2:.0f} cm^2 across on average, wider than any heart (at most about 150 cm^2): "
                "not a mediastinum", area_cm2, "cm^2", f"<= {limits.roi_max_area_cm2:g} cm^2",
                "score a cardiac or chest CT, or pass its heart mask (--roi)"))

    # ---- contrast ------------------------------------------------------------------------------
    blood = contrast_hu(hu, contrast_region, limits.contrast_band_hu, limits.contrast_min_voxels)
    if np.isfinite(blood) and blood >= limits.contrast_warn_hu:
        refuse = blood >= limits.contrast_refuse_hu
        where = "heart mask" if given else "mediastinal region"
        lo_b, hi_b = limits.contrast_band_hu
        findings.append(Finding(
            "contrast", "refuse" if refuse else "warning",
            f"contrast-enhanced: median {blood:.0f} HU of the {lo_b:g}..{hi_b:g} HU voxels in the {where} "
            "(non-contrast blood and myocardium are 30-60 HU, a contrast blood pool 200-500 HU); enhanced blood "
            "above 130 HU is scored as calcium", blood, "HU",
            f">= {limits.contrast_refuse_hu:g} HU refused, >= {limits.contrast_warn_hu:g} HU flagged",
            "score the non-contrast calcium-scoring series acquired before the contrast injection"))

    findings.sort(key=lambda f: LEVELS.index(f.level))  # stable: refusals first, in check order
    return findings


def summarize(findings: list[Finding]) -> str:
    """Return one ``; ``-joined line of ``level code: message`` for a CSV column (empty for no findings)."""
    return "; ".join(f"{f.level} {f.code}: {f.message}" for f in findings)
