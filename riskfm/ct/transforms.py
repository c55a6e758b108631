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

Dense tasks work on whole volumes, on each file's own field of view, not on the spec's fixed
grid, so their pipelines are not cached:

* :func:`ct_volume_pipeline` (sliding-window inference of a spec's network): read, check,
  :class:`ResampleVolume` to the spec's spacing, :class:`Window` with its windows;
* :func:`ct_case_pipeline` (a CT with its label masks, for CORA's dense and plaque tasks and
  pretraining): read, check, :class:`ReadMasks`, optionally :class:`CropToMask` (the heart),
  :class:`ResampleVolume` (CT trilinear, masks nearest).

:meth:`~riskfm.data.pipeline.Pipeline.apply` runs any of them on a volume already in memory.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from riskfm.ct.spec import CTInputSpec
from riskfm.data.pipeline import Implausible, Item, Pipeline, Step, compose

__all__ = ["CheckCTPlausibility", "CropToMask", "ReadCT", "ReadMasks", "ResampleCrop", "ResampleVolume", "ToHU16",
           "Window", "WindowChannels", "ct_case_pipeline", "ct_pipeline", "ct_volume_pipeline"]

#: Spacings equal to this many decimals (mm) are the same grid: no interpolation.
_SPACING_DECIMALS = 4


class ReadCT(Step):
    """Read the volume (``item.data`` becomes a :class:`~riskfm.ct.volume.CTVolume` in HU)."""

    name = "read_ct"
    reads = True

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


class ReadMasks(Step):
    """Read the label masks that lie on the CT's grid (``item.meta["masks"]``: kind -> uint8 ``[Z, Y, X]``).

    The mask files come in ``item.meta["mask_paths"]`` (kind -> path, e.g. from
    :func:`riskfm.ct.cases.companion_masks`); kinds not in ``kinds`` or without a file are skipped.

    Parameters
    ----------
    kinds : sequence of str
        Mask kinds to read (``"heart"``, ``"coronary"``, ``"plaque"``, ``"stenosis"``, ...).
    """

    name = "read_masks"

    def __init__(self, kinds) -> None:
        self.kinds = tuple(str(k) for k in kinds)

    def params(self) -> dict:
        """Return the kinds read."""
        return {"kinds": list(self.kinds)}

    def __call__(self, item: Item) -> Item:
        """Read each mask; a mask on another grid than its CT is an error naming the file."""
        from riskfm.ct.io import read_ct

        paths = item.meta.get("mask_paths") or {}
        masks = {}
        for kind in self.kinds:
            if kind not in paths:
                continue
            mask = read_ct(paths[kind])
            if mask.shape != item.data.shape:
                raise ValueError(f"{paths[kind]}: mask grid {mask.shape} differs from its CT grid {item.data.shape}")
            masks[kind] = np.rint(mask.array).clip(0, 255).astype(np.uint8)
        item.meta["masks"] = masks
        return item


class CropToMask(Step):
    """Crop the CT and its masks to one mask's bounding box plus a margin (CORA's heart crop).

    Parameters
    ----------
    kind : str
        The mask whose box is kept (e.g. ``"heart"``); a case without it is an error.
    margin_mm : float
        Margin around the box, in mm.
    """

    name = "crop_to_mask"

    def __init__(self, kind: str, margin_mm: float) -> None:
        self.kind, self.margin_mm = str(kind), float(margin_mm)

    def params(self) -> dict:
        """Return the mask kind and the margin in mm."""
        return {"kind": self.kind, "margin_mm": self.margin_mm}

    def __call__(self, item: Item) -> Item:
        """Crop ``item.data`` (a CTVolume) and every mask in ``item.meta["masks"]``."""
        from riskfm.ct.preprocess import crop_to_mask

        masks = item.meta.get("masks") or {}
        if self.kind not in masks:
            raise ValueError(f"{item.source}: cropping to the {self.kind} needs a {self.kind} mask (none found "
                             "for this case)")
        cropped = crop_to_mask(item.data, masks[self.kind], self.margin_mm)
        bounds = tuple(slice(a, b) for a, b in cropped.meta["crop_bbox"])
        item.meta["masks"] = {k: m[bounds].copy() for k, m in masks.items()}
        item.data = cropped
        return item


class ResampleVolume(Step):
    """Resample the whole volume to ``spacing`` (mm), keeping its field of view; masks follow (nearest).

    ``item.data`` stays a :class:`~riskfm.ct.volume.CTVolume` (float32 HU, trilinear; voxels
    outside the source are air); a volume already on the spacing (to 4 decimals, in mm) is kept as
    it is.

    Parameters
    ----------
    spacing : (float, float, float)
        Target spacing ``(z, y, x)`` in mm.
    """

    name = "resample_volume"

    def __init__(self, spacing) -> None:
        self.spacing = tuple(float(s) for s in spacing)

    def params(self) -> dict:
        """Spacing in mm and the interpolation orders."""
        return {"spacing": list(self.spacing), "order": 1, "mask_order": 0}

    def __call__(self, item: Item) -> Item:
        """Resample ``item.data`` and ``item.meta["masks"]`` (when any)."""
        from riskfm.ct.preprocess import resample_mask, resample_to_spacing

        vol = item.data
        if tuple(np.round(vol.spacing, _SPACING_DECIMALS)) != tuple(np.round(self.spacing, _SPACING_DECIMALS)):
            if item.meta.get("masks"):
                item.meta["masks"] = {k: resample_mask(m, vol, self.spacing) for k, m in item.meta["masks"].items()}
            item.data = resample_to_spacing(vol, self.spacing)
        item.meta["spacing"] = tuple(item.data.spacing)
        return item


class Window(Step):
    """HU to one [0, 1] channel per (level, width) window, as a pipeline step.

    ``item.data`` (a CTVolume or an HU array ``[Z, Y, X]``) becomes float32 ``[C, Z, Y, X]``; a
    volume's grid (spacing, affine, meta) is kept in ``item.meta["volume"]``.

    Parameters
    ----------
    windows : sequence of (float, float)
        (level, width) in HU.
    """

    name = "window"

    def __init__(self, windows) -> None:
        self.channels = WindowChannels(windows)

    def params(self) -> dict:
        """Return the (level, width) windows in HU."""
        return {"windows": [list(w) for w in self.channels.windows]}

    def __call__(self, item: Item) -> Item:
        """Window ``item.data``."""
        from riskfm.ct.volume import CTVolume

        if isinstance(item.data, CTVolume):
            item.meta["volume"] = item.data
            item.data = self.channels(item.data.array)
        else:
            item.data = self.channels(item.data)
        return item


def _checked_read(checks) -> list[Step]:
    from riskfm.ct.plausibility import CTPlausibility

    checks = checks or CTPlausibility()
    # check_ct_plausibility returns nothing when disabled: keep the fingerprint lean
    return [ReadCT(), CheckCTPlausibility(checks)] if checks.enabled else [ReadCT()]


def ct_volume_pipeline(spec: CTInputSpec, *, checks=None) -> Pipeline:
    """Build the whole-volume preparation of a spec's network (sliding-window inference).

    Read, check, resample to ``spec.spacing`` keeping the whole field of view, window with
    ``spec.windows``: ``run(path).data`` (or ``apply(Item(source, data=volume)).data``) is float32
    ``[C, Z, Y, X]`` on the resampled grid, whose volume is ``item.meta["volume"]``.

    Parameters
    ----------
    spec : CTInputSpec
        The network's input spec (its ``shape`` is the sliding window, not used here).
    checks : CTPlausibility, optional
        Plausibility limits (default limits when None).
    """
    steps = [*_checked_read(checks), ResampleVolume(spec.spacing), Window(spec.windows)]
    return compose("ct", steps, None, "float32")


def ct_case_pipeline(spacing=None, *, kinds=("heart", "coronary", "plaque", "stenosis"), crop_to: str | None = None,
                     margin_mm: float = 10.0, checks=None) -> Pipeline:
    """Build the preparation of a CT with its label masks (CORA's dense tasks, plaque, pretraining).

    ``run(path, {"mask_paths": {kind: path}})`` returns an item whose ``data`` is the CTVolume (HU)
    and ``meta["masks"]`` its masks on the same grid.

    Parameters
    ----------
    spacing : (float, float, float), optional
        Target spacing in mm (CT trilinear, masks nearest); None keeps the CT's grid.
    kinds : sequence of str
        Mask kinds to read when the case has them.
    crop_to : str, optional
        Crop CT and masks to this mask's bounding box plus ``margin_mm`` (``"heart"``: CORA's
        stenosis input).
    margin_mm : float
        The crop's margin in mm.
    checks : CTPlausibility, optional
        Plausibility limits for the CT (default limits when None).
    """
    steps: list[Step] = [*_checked_read(checks), ReadMasks(kinds)]
    if crop_to is not None:
        steps.append(CropToMask(crop_to, margin_mm))
    if spacing is not None:
        steps.append(ResampleVolume(spacing))
    return compose("ct", steps, None, "float32")


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
    steps = [*_checked_read(checks), ResampleCrop(spec.spacing, spec.shape), ToHU16()]
    return compose("ct", steps, spec.shape, "int16")
