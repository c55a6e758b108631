"""Is this volume a CT in Hounsfield units on an axis-aligned grid? Cheap checks before a model sees it.

A reader can return a perfectly well-formed :class:`~riskfm.ct.volume.CTVolume` that is not a
usable CT: a segmentation mask saved where the image was expected, stored values whose rescale
slope / intercept were never applied (air at 0 instead of -1000 HU), values no scanner writes, or
an oblique acquisition whose voxels the model's axis-aligned grid would misplace.
:func:`check_ct_plausibility` returns the reasons to refuse such a volume; it never raises for
them and never changes the volume.

Reason strings
--------------
Every reason reads ``"ct implausible: <category>: <details>"``, one reason per category, in this
order:

* ``values out of scanner range`` -- non-finite voxels, or values below ``hu_min`` / above
  ``hu_max`` (the message gives the min and max and how many voxels are outside);
* ``binary mask`` -- at most 2 distinct values, or only non-negative integers up to
  :data:`MAX_LABEL_VALUE` (a segmentation mask or label map, not HU; a real CT always has
  voxels below 0 HU);
* ``no air`` -- fewer than ``min_air_fraction`` of the voxels below ``air_hu``; when the values
  look like raw stored values (minimum near 0 with air-like values there, maximum at least soft
  tissue + 1024 and within 0..65535) the message asks "stored values without rescale
  slope/intercept?". Not reported for a volume already reported as a binary mask;
* ``oblique`` -- an array axis is more than ``max_oblique_deg`` off its nearest patient axis
  (the message gives each such axis and its angle in degrees).

Examples
--------
>>> from riskfm.ct import read_ct  # doctest: +SKIP
>>> reasons = check_ct_plausibility(read_ct("case_001/ct.nii.gz"))  # doctest: +SKIP
>>> if reasons:  # doctest: +SKIP
...     raise ValueError("; ".join(reasons))
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from riskfm.ct.volume import CTVolume

__all__ = [
    "MAX_LABEL_VALUE",
    "REASON_PREFIX",
    "CTPlausibility",
    "check_ct_plausibility",
    "oblique_angles_deg",
]

#: Every reason starts with this, then the category and a colon.
REASON_PREFIX = "ct implausible"
#: A volume of non-negative integers no larger than this is a label map (TotalSegmentator has ~120
#: labels; 8-bit masks use 255), never HU: a real CT always has voxels below 0 HU.
MAX_LABEL_VALUE = 255
#: The stored-value range of a CT written without its rescale (12-bit detectors, some 16-bit).
_STORED_MAX = 65535.0
#: Values within this distance of 0 count as "near 0" for the missing-rescale hint.
_NEAR_ZERO = 200.0
#: The usual RescaleIntercept: stored air (~0) minus this is -1024 HU.
_USUAL_INTERCEPT = -1024.0
#: Voxels looked at first when counting distinct values (a real CT shows thousands at once).
_SAMPLE_SIZE = 1 << 20


@dataclass(frozen=True)
class CTPlausibility:
    """Limits of :func:`check_ct_plausibility`.

    Attributes
    ----------
    enabled : bool
        False turns every check off (:func:`check_ct_plausibility` returns ``[]``).
    air_hu : float
        A chest CT must contain air or lung (outside the body, lungs) below this HU ... Lung
        parenchyma sits around -850 HU, and a heart-cropped volume may hold little air below
        -900 HU, so the bound is -500 HU: no soft tissue reaches it, while every stored-without-
        rescale volume (air near 0) fails it.
    min_air_fraction : float
        ... in at least this share of its voxels.
    hu_min, hu_max : float
        No scanner writes values outside ``[hu_min, hu_max]``: padding is -1024..-3024 HU and
        extended-HU scales reach about 30,000 HU.
    max_oblique_deg : float
        Array axes more than this many degrees off their nearest patient axis are refused: the
        model's grid assumes axis-aligned voxels.
    """

    enabled: bool = True
    air_hu: float = -500.0
    min_air_fraction: float = 0.001
    hu_min: float = -3100.0
    hu_max: float = 31000.0
    max_oblique_deg: float = 1.0

    def __post_init__(self) -> None:
        if not self.hu_min < self.hu_max:
            raise ValueError(f"CTPlausibility: hu_min {self.hu_min} must be below hu_max {self.hu_max}")
        if not 0.0 <= self.min_air_fraction <= 1.0:
            raise ValueError(
                f"CTPlausibility.min_air_fraction must be in [0, 1]; got {self.min_air_fraction}"
            )
        if not 0.0 <= self.max_oblique_deg < 90.0:
            raise ValueError(f"CTPlausibility.max_oblique_deg must be in [0, 90); got {self.max_oblique_deg}")


def check_ct_plausibility(volume: CTVolume, limits: CTPlausibility | None = None) -> list[str]:
    """Return the reasons why ``volume`` is not a plausible CT in HU on an axis-aligned grid.

    Parameters
    ----------
    volume : CTVolume
        Any volume (see :mod:`riskfm.ct.volume`); typically straight from :func:`riskfm.ct.read_ct`.
    limits : CTPlausibility, optional
        The thresholds; the defaults when None.

    Returns
    -------
    list of str
        Empty when the volume is plausible (or ``limits.enabled`` is False); otherwise one string
        per failed check, each ``"ct implausible: <category>: <details>"`` (see the module
        docstring for the categories).

    Notes
    -----
    Cost: a few passes over the array (min / max, the air count) plus, only when a sample of
    about a million voxels shows few distinct values, a confirmation pass for the mask check.
    """
    limits = CTPlausibility() if limits is None else limits
    if not limits.enabled:
        return []
    array = np.asarray(volume.array)
    flat = array.reshape(-1)
    reasons: list[str] = []

    finite = np.isfinite(flat)
    n_nonfinite = int(flat.size - np.count_nonzero(finite))
    values = flat if n_nonfinite == 0 else flat[finite]
    if values.size == 0:
        return [_reason("values out of scanner range", f"all {flat.size} voxels are NaN or infinite")]
    lo, hi = float(values.min()), float(values.max())

    range_reason = _range_reason(values, lo, hi, n_nonfinite, limits)
    if range_reason:
        reasons.append(range_reason)
    mask_reason = _mask_reason(values, lo, hi)
    if mask_reason:
        reasons.append(mask_reason)
    else:
        air_reason = _air_reason(values, lo, hi, limits)
        if air_reason:
            reasons.append(air_reason)
    oblique_reason = _oblique_reason(volume, limits)
    if oblique_reason:
        reasons.append(oblique_reason)
    return reasons


def _reason(category: str, details: str) -> str:
    return f"{REASON_PREFIX}: {category}: {details}"


def _range_reason(values, lo: float, hi: float, n_nonfinite: int, limits: CTPlausibility) -> str | None:
    if n_nonfinite == 0 and lo >= limits.hu_min and hi <= limits.hu_max:
        return None
    parts = []
    if n_nonfinite:
        parts.append(f"{n_nonfinite} voxels are NaN or infinite")
    if lo < limits.hu_min or hi > limits.hu_max:
        n_low = int(np.count_nonzero(values < limits.hu_min)) if lo < limits.hu_min else 0
        n_high = int(np.count_nonzero(values > limits.hu_max)) if hi > limits.hu_max else 0
        parts.append(
            f"values run from min {lo:g} to max {hi:g} HU, but no scanner writes values outside "
            f"[{limits.hu_min:g}, {limits.hu_max:g}] HU ({n_low} voxels below, {n_high} above)"
        )
    return _reason("values out of scanner range", "; ".join(parts))


def _mask_reason(values: np.ndarray, lo: float, hi: float) -> str | None:
    """Return the reason for a mask (<= 2 distinct values) or label map (ints 0..MAX_LABEL_VALUE), or None."""
    # With at most two distinct values they are the min and the max. A real CT fails this on the
    # first voxels of a strided sample, so the full pass only runs for masks.
    sample = values[:: max(1, values.size // _SAMPLE_SIZE)]
    if np.all((sample == lo) | (sample == hi)) and np.all((values == lo) | (values == hi)):
        distinct = [lo] if lo == hi else [lo, hi]
        shown = ", ".join(f"{v:g}" for v in distinct)
        return _reason(
            "binary mask",
            f"the volume holds only {len(distinct)} distinct value{'s' if len(distinct) > 1 else ''} "
            f"({shown}): a segmentation mask or a blank image, not a CT in HU",
        )
    if not (lo >= 0.0 and hi <= MAX_LABEL_VALUE) or not np.array_equal(values, np.floor(values)):
        return None
    n_labels = int(np.count_nonzero(np.bincount(values.astype(np.int64), minlength=int(hi) + 1)))
    return _reason(
        "binary mask",
        f"the volume holds only {n_labels} distinct integer values in {lo:g}..{hi:g}: a label map or "
        f"mask (or an 8-bit image), not a CT in HU",
    )


def _air_reason(values: np.ndarray, lo: float, hi: float, limits: CTPlausibility) -> str | None:
    n_air = int(np.count_nonzero(values < limits.air_hu))
    fraction = n_air / values.size
    if fraction >= limits.min_air_fraction:
        return None
    details = (
        f"only {100 * fraction:.3f}% of voxels are below {limits.air_hu:g} HU (a chest CT needs at least "
        f"{100 * limits.min_air_fraction:.3f}%: lungs, outside the body); values run from {lo:g} to {hi:g}"
    )
    shifted_air = limits.air_hu - _USUAL_INTERCEPT  # where air sits if the -1024 intercept is missing
    # Raw stored values: air near 0 and soft tissue near 1024 (water + 1024), all within the
    # stored range.
    if abs(lo) <= _NEAR_ZERO and -_USUAL_INTERCEPT - _NEAR_ZERO <= hi <= _STORED_MAX:
        n_raw_air = int(np.count_nonzero(values < shifted_air))
        if n_raw_air / values.size >= limits.min_air_fraction:
            details += (
                f"; {100 * n_raw_air / values.size:.1f}% of voxels are below {shifted_air:g}, where air "
                f"sits before rescaling: stored values without rescale slope/intercept? "
                f"(apply RescaleIntercept, usually {_USUAL_INTERCEPT:g})"
            )
    return _reason("no air", details)


def _oblique_reason(volume: CTVolume, limits: CTPlausibility) -> str | None:
    angles = oblique_angles_deg(volume.affine)
    worst = float(angles.max())
    if worst <= limits.max_oblique_deg:
        return None
    codes = volume.orientation
    listed = ", ".join(
        f"axis {axis} ({codes[axis]}) {angles[axis]:.2f} deg"
        for axis in range(3)
        if angles[axis] > limits.max_oblique_deg
    )
    return _reason(
        "oblique",
        f"array axes are up to {worst:.2f} deg off the patient axes ({listed}; limit "
        f"{limits.max_oblique_deg:g} deg): the model's grid assumes axis-aligned voxels; resample the "
        f"volume onto an axis-aligned grid first",
    )


def oblique_angles_deg(affine: np.ndarray) -> np.ndarray:
    """Return the angle in degrees between each array axis and its nearest patient (LPS) axis.

    Parameters
    ----------
    affine : np.ndarray
        4x4 riskfm affine (array ``(z, y, x)`` -> LPS mm).

    Returns
    -------
    np.ndarray
        Three angles, one per array axis, in ``[0, 54.74]`` degrees; 0 for an axis-aligned grid.
    """
    directions = np.asarray(affine, dtype=np.float64)[:3, :3]
    magnitude = np.abs(directions)
    nearest = np.argmax(magnitude, axis=0)
    along = magnitude[nearest, np.arange(3)]
    # The off-axis part, measured directly: arccos(along / norm) loses precision near 0 degrees.
    off_axis = magnitude.copy()
    off_axis[nearest, np.arange(3)] = 0.0
    return np.degrees(np.arctan2(np.linalg.norm(off_axis, axis=0), along))
