"""The CT preparation steps and :func:`ct_pipeline`, the pipeline a :class:`CTInputSpec` owns.

``ct_pipeline(spec)`` composes, in order:

1. :class:`ReadCT` -- a NIfTI file or a DICOM series folder (:func:`riskfm.ct.read_ct`, HU);
2. :class:`CheckCTPlausibility` -- refuse masks, missing rescale, out-of-range values, oblique
   grids (:mod:`riskfm.ct.plausibility`);
3. :class:`ResampleCrop` -- to the spec's spacing (trilinear) and centre crop / pad to its
   shape with air, interpolating only the voxels kept (:func:`riskfm.ct.preprocess.resample_crop`);
4. :class:`ToHU16` -- round to int16 HU, the form the prepared cache keeps (one channel, a
   quarter of the float32 window stack).

The HU windows (one [0, 1] channel each) are applied after the cache, per item, by
:class:`WindowChannels`, after any augmentation of the HU values.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from riskfm.ct.spec import CTInputSpec
from riskfm.data.pipeline import Implausible, Item, Pipeline, Step, compose

__all__ = ["CheckCTPlausibility", "ReadCT", "ResampleCrop", "ToHU16", "WindowChannels", "ct_pipeline"]

#: Spacings equal to this many decimals (mm) are the same grid: no interpolation.
_SPACING_DECIMALS = 4


class ReadCT(Step):
    """Read the volume (``item.data`` becomes a :class:`~riskfm.ct.volume.CTVolume` in HU)."""

    name = "read_ct"

    def __call__(self, item: Item) -> Item:
        """Read ``item.source``; reader errors name the file and the problem."""
        from riskfm.ct.io import read_ct

        item.data = read_ct(item.source)
        item.meta["spacing"] = tuple(item.data.spacing)
        return item


class CheckCTPlausibility(Step):
    """Exclude a volume that is not a usable CT (the reasons of :func:`check_ct_plausibility`).

    Parameters
    ----------
    limits : CTPlausibility
        The limits (``data.checks.ct`` of a run config).
    """

    name = "check_ct_plausibility"

    def __init__(self, limits) -> None:
        self.limits = limits

    def params(self) -> dict:
        """Return the limits."""
        return {"limits": dataclasses.asdict(self.limits)}

    def __call__(self, item: Item) -> Item:
        """Raise :class:`Implausible` with every reason joined by ``"; "``, or return the item."""
        from riskfm.ct.plausibility import check_ct_plausibility

        reasons = check_ct_plausibility(item.data, self.limits)
        if reasons:
            raise Implausible("; ".join(reasons))
        return item


class ResampleCrop(Step):
    """Resample to ``spacing`` (mm) and centre crop / pad to ``shape`` (voxels) with air.

    Parameters
    ----------
    spacing : (float, float, float)
        Target spacing ``(z, y, x)`` in mm.
    shape : (int, int, int)
        Target grid ``(Z, Y, X)``.
    """

    name = "resample_crop"

    def __init__(self, spacing, shape) -> None:
        self.spacing = tuple(float(s) for s in spacing)
        self.shape = tuple(int(s) for s in shape)

    def params(self) -> dict:
        """Spacing in mm and shape in voxels."""
        return {"spacing": list(self.spacing), "shape": list(self.shape), "order": 1}

    def __call__(self, item: Item) -> Item:
        """``item.data`` becomes float32 ``shape`` HU; NaN inside the field of view is an error."""
        from riskfm.ct.preprocess import crop_or_pad, resample_crop

        vol = item.data
        if tuple(np.round(vol.spacing, _SPACING_DECIMALS)) == tuple(np.round(self.spacing, _SPACING_DECIMALS)):
            hu = crop_or_pad(vol.array, self.shape, fill=-1024.0)
            if not np.isfinite(hu).all():
                raise ValueError(f"{item.source}: CT volume holds NaN or infinite HU inside the prepared field "
                                 "of view")
        else:
            hu = resample_crop(vol, self.spacing, self.shape)
        item.data = hu
        item.meta["spacing"] = self.spacing
        return item


class ToHU16(Step):
    """Round HU to int16 (the cache's form; saturating at the int16 range)."""

    name = "to_hu16"

    def __call__(self, item: Item) -> Item:
        """Cast ``item.data`` to int16 HU."""
        item.data = np.clip(np.rint(np.asarray(item.data)), -32768, 32767).astype(np.int16)
        return item


class WindowChannels:
    """HU to one [0, 1] channel per (level, width) window: float32 ``[C, Z, Y, X]`` (after the cache).

    Parameters
    ----------
    windows : sequence of (float, float)
        (level, width) in HU.
    """

    def __init__(self, windows) -> None:
        self.windows = tuple((float(level), float(width)) for level, width in windows)

    def __call__(self, hu: np.ndarray) -> np.ndarray:
        """Return the window channels of ``hu`` ``[Z, Y, X]`` (HU, any dtype)."""
        from riskfm.ct.preprocess import window_channels

        return window_channels(hu, self.windows)


def ct_pipeline(spec: CTInputSpec, *, checks=None) -> Pipeline:
    """Build the whole deterministic preparation of one CT (file or DICOM folder) for ``spec``.

    Parameters
    ----------
    spec : CTInputSpec
        The encoder's input spec.
    checks : CTPlausibility, optional
        Plausibility limits (default limits when None).

    Returns
    -------
    Pipeline
        ``path -> Prepared`` with an int16 ``spec.shape`` HU array (no mask).
    """
    from riskfm.ct.plausibility import CTPlausibility

    checks = checks or CTPlausibility()
    steps: list[Step] = [ReadCT()]
    if checks.enabled:  # check_ct_plausibility returns nothing when disabled: keep the fingerprint lean
        steps.append(CheckCTPlausibility(checks))
    steps += [ResampleCrop(spec.spacing, spec.shape), ToHU16()]
    return compose("ct", steps, spec.shape, "int16")
