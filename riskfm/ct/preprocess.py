"""CT preprocessing driven by an encoder's :class:`~riskfm.ct.spec.CTInputSpec`.

The steps are small functions that compose: :func:`resample_to_spacing` (new voxel grid, affine
kept), :func:`crop_or_pad` (centre or around a voxel, padding with air), :func:`crop_to_mask`
(bounding box of a mask plus a margin in mm) and :func:`window_channels` (one [0, 1] channel per
HU window). :func:`prepare_ct` runs resample -> crop/pad -> windows for one spec and returns what
the encoder consumes.

Resampling grid
---------------
A volume of ``n`` voxels at spacing ``s`` resampled to spacing ``t`` gets
``m = round(n * s / t)`` voxels (at least 1) at exactly spacing ``t``, centred on the same point
as the input (the centre of the field of view does not move). New voxel ``k`` sits at input index
``(n - 1) / 2 + (k - (m - 1) / 2) * t / s``. Interpolation is separable (axis by axis), which for
``order`` 0 and 1 gives exactly nearest-neighbour and trilinear interpolation at a fraction of the
cost of a generic 3-D interpolator; higher orders use ``scipy.ndimage.affine_transform``. Samples
within half a voxel of the input's edge take the edge voxel's value; samples further out (only
possible when padding) take ``fill`` (air, -1024 HU). Downsampling does not low-pass filter first.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from riskfm.ct.io import AIR_HU
from riskfm.ct.spec import CTInputSpec
from riskfm.ct.volume import CTVolume

__all__ = [
    "CORA_SPACING",
    "crop_or_pad",
    "crop_to_mask",
    "prepare_ct",
    "resample_mask",
    "resample_crop",
    "resample_to_spacing",
    "window_channels",
]

#: CORA's resampling target as printed in the paper, "0.5 x 0.5 x 5 mm^3", in riskfm's (z, y, x)
#: order. methods.md keeps it as printed and as a parameter: every function taking a spacing
#: accepts another one (riskfm's synthetic cohort is at (2.0, 1.5, 1.5) mm).
CORA_SPACING: tuple[float, float, float] = (5.0, 0.5, 0.5)


# ------------------------------------------------------------------------------------ resampling
def _grid_size(n_in: int, spacing_in: float, spacing_out: float) -> int:
    # floor(x + 0.5) rounds halves up, unlike Python's banker's round().
    return max(1, int(np.floor(n_in * spacing_in / spacing_out + 0.5)))


def _axis_samples(
    n_in: int, spacing_in: float, spacing_out: float, n_grid: int, start: int, n_out: int
) -> tuple[np.ndarray, np.ndarray]:
    """Input-index coordinates of output samples ``start .. start + n_out - 1`` on the new grid.

    Returns the float64 coordinates ``[n_out]`` and a boolean ``[n_out]`` that is False where the
    sample falls off the new grid (padding) or more than half a voxel outside the input.
    """
    ratio = spacing_out / spacing_in
    grid_index = start + np.arange(n_out, dtype=np.float64)
    coords = (n_in - 1) / 2.0 + (grid_index - (n_grid - 1) / 2.0) * ratio
    eps = 1e-6
    valid = (grid_index >= 0) & (grid_index < n_grid) & (coords >= -0.5 - eps) & (coords <= n_in - 0.5 + eps)
    return coords, valid


def _interpolate_axis(array: np.ndarray, axis: int, coords: np.ndarray, order: int) -> np.ndarray:
    n = array.shape[axis]
    if coords.size == n and np.allclose(coords, np.arange(n), rtol=0.0, atol=1e-9):
        return array  # identity along this axis: nothing to do
    clipped = np.clip(coords, 0.0, n - 1)
    if order == 0 or n == 1:
        return np.take(array, np.floor(clipped + 0.5).astype(np.intp).clip(0, n - 1), axis=axis)
    lower = np.minimum(np.floor(clipped).astype(np.intp), n - 2)
    weight_shape = [1] * array.ndim
    weight_shape[axis] = -1
    weight = (clipped - lower).astype(np.float32).reshape(weight_shape)
    below = np.take(array, lower, axis=axis)
    above = np.take(array, lower + 1, axis=axis)
    above -= below
    above *= weight
    above += below
    return above


def _sample(
    array: np.ndarray, coords: Sequence[np.ndarray], valid: Sequence[np.ndarray], order: int, fill: float
) -> np.ndarray:
    """Sample a 3-D array on the separable grid ``coords`` (one coordinate vector per axis)."""
    if order in (0, 1):
        out = array
        # Shrinking axes first keeps the intermediate arrays small.
        for axis in sorted(range(3), key=lambda a: coords[a].size / array.shape[a]):
            out = _interpolate_axis(out, axis, coords[axis], order)
        if out is array:  # every axis was an identity: never hand back (or overwrite) the input
            out = array.copy()
    else:
        from scipy import ndimage

        steps = [c[1] - c[0] if c.size > 1 else 1.0 for c in coords]
        out = ndimage.affine_transform(
            array,
            np.asarray(steps),
            offset=[c[0] for c in coords],
            output_shape=tuple(c.size for c in coords),
            order=order,
            mode="nearest",
            output=np.float32,
        )
    for axis in range(3):
        if not valid[axis].all():
            index = [slice(None)] * 3
            index[axis] = ~valid[axis]
            out[tuple(index)] = fill
    return out


def _check_order(order: int) -> int:
    if int(order) != order or not 0 <= order <= 5:
        raise ValueError(f"interpolation order must be an integer 0..5; got {order!r}")
    return int(order)


def _check_spacing(spacing, name: str = "spacing") -> tuple[float, float, float]:
    try:
        values = tuple(float(s) for s in spacing)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be three numbers (z, y, x) in mm; got {spacing!r}") from exc
    if len(values) != 3 or not all(np.isfinite(s) and s > 0 for s in values):
        raise ValueError(f"{name} must be three positive finite numbers (z, y, x) in mm; got {spacing!r}")
    return values  # type: ignore[return-value]


def resample_to_spacing(
    vol: CTVolume, spacing: Sequence[float], order: int = 1, fill: float = AIR_HU
) -> CTVolume:
    """Resample a volume to a new voxel spacing, keeping its position in patient space.

    Parameters
    ----------
    vol : CTVolume
        Input volume, float32 ``[Z, Y, X]`` in HU.
    spacing : sequence of 3 float
        Target spacing ``(z, y, x)`` in mm.
    order : int
        Interpolation order: 0 nearest (use it for label masks), 1 trilinear (default), 2-5 spline.
    fill : float
        Value for samples outside the input (HU; -1024 air). Within the resampled field of view
        every sample lies inside the input, so this matters only for degenerate grids.

    Returns
    -------
    CTVolume
        ``[round(Z * sz / tz), round(Y * sy / ty), round(X * sx / tx)]`` voxels at exactly
        ``spacing``, with the affine updated so every voxel keeps its LPS position, and
        ``meta["resampled_from_spacing"]`` recording the input spacing.
    """
    target = _check_spacing(spacing)
    order = _check_order(order)
    shape = vol.shape
    coords, valid, diagonal = [], [], []
    for n, s, t in zip(shape, vol.spacing, target):
        n_grid = _grid_size(n, s, t)
        c, v = _axis_samples(n, s, t, n_grid, 0, n_grid)
        coords.append(c)
        valid.append(v)
        diagonal.append(t / s)
    array = _sample(vol.array, coords, valid, order, fill)

    # New index m maps to input index c0 + m * ratio per axis: compose that with the old affine.
    new_to_old = np.eye(4)
    new_to_old[:3, :3] = np.diag(diagonal)
    new_to_old[:3, 3] = [c[0] for c in coords]
    meta = dict(vol.meta, resampled_from_spacing=tuple(vol.spacing))
    return CTVolume(array, target, vol.affine @ new_to_old, meta)


def resample_mask(mask: np.ndarray, vol: CTVolume, spacing: Sequence[float]) -> np.ndarray:
    """Resample a label mask lying on ``vol``'s grid to ``spacing`` (nearest neighbour).

    Parameters
    ----------
    mask : np.ndarray
        Integer or bool ``[Z, Y, X]`` on the grid of ``vol`` (e.g. heart, coronary or plaque labels).
    vol : CTVolume
        The volume the mask belongs to (its spacing and affine).
    spacing : sequence of 3 float
        Target spacing ``(z, y, x)`` in mm.

    Returns
    -------
    np.ndarray
        ``mask.dtype`` array on exactly the grid ``resample_to_spacing(vol, spacing)`` produces, so
        image and labels stay aligned voxel for voxel.
    """
    mask = np.asarray(mask)
    if mask.shape != vol.shape:
        raise ValueError(f"mask shape {mask.shape} does not match the volume shape {vol.shape}")
    as_volume = CTVolume(mask.astype(np.float32), vol.spacing, vol.affine, {})
    out = resample_to_spacing(as_volume, spacing, order=0, fill=0.0).array
    return out.astype(mask.dtype) if mask.dtype != bool else out > 0.5


# ------------------------------------------------------------------------------- crop and pad
def _window_starts(
    in_shape: Sequence[int], out_shape: Sequence[int], center: Sequence[float] | None
) -> list[int]:
    if center is None:
        # Integer centring: the extra voxel of an odd difference goes to the end.
        return [(n - s) // 2 for n, s in zip(in_shape, out_shape)]
    center = np.asarray(center, dtype=np.float64).ravel()
    if center.size != len(out_shape) or not np.all(np.isfinite(center)):
        raise ValueError(f"center must be {len(out_shape)} finite voxel indices; got {center.tolist()}")
    return [int(np.floor(c + 0.5)) - s // 2 for c, s in zip(center, out_shape)]


def crop_or_pad(
    array: np.ndarray,
    shape: Sequence[int],
    fill: float = AIR_HU,
    center: Sequence[float] | None = None,
) -> np.ndarray:
    """Cut or pad the trailing axes of an array to ``shape``.

    Parameters
    ----------
    array : np.ndarray
        ``[..., Z, Y, X]`` (any leading axes, e.g. channels, are kept).
    shape : sequence of int
        Target size of the trailing ``len(shape)`` axes, e.g. ``(Z, Y, X)`` in voxels.
    fill : float
        Value of padded voxels (default -1024 HU, air); must be representable in ``array.dtype``
        (pass 0 for label masks).
    center : sequence of float, optional
        Voxel index (one per trailing axis) the output is centred on: output voxel
        ``shape // 2`` is input voxel ``round(center)``. Default: the array centre, with the
        input's centre voxel ``(n - s) // 2 + s // 2`` landing at output ``s // 2``.

    Returns
    -------
    np.ndarray
        ``[..., *shape]`` array of ``array.dtype``; a new array (never a view of the input).
    """
    array = np.asarray(array)
    shape = tuple(int(s) for s in shape)
    if not shape or len(shape) > array.ndim or any(s < 1 for s in shape):
        raise ValueError(
            f"shape must be 1..{array.ndim} positive sizes for an array of shape {array.shape}; got {shape}"
        )
    if np.asarray(fill).astype(array.dtype) != fill:
        raise ValueError(f"fill {fill!r} cannot be stored in an array of dtype {array.dtype}")
    lead = array.ndim - len(shape)
    starts = _window_starts(array.shape[lead:], shape, center)
    out = np.full(array.shape[:lead] + shape, fill, dtype=array.dtype)
    source, target = [], []
    for n, s, start in zip(array.shape[lead:], shape, starts):
        first, last = max(start, 0), min(start + s, n)
        if last <= first:
            return out  # the window misses the array entirely
        source.append(slice(first, last))
        target.append(slice(first - start, last - start))
    out[(Ellipsis, *target)] = array[(Ellipsis, *source)]
    return out


def crop_to_mask(vol: CTVolume, mask: np.ndarray, margin_mm: float | Sequence[float] = 10.0) -> CTVolume:
    """Crop a volume to the bounding box of a mask plus a margin.

    Parameters
    ----------
    vol : CTVolume
        Volume ``[Z, Y, X]`` in HU.
    mask : np.ndarray
        ``[Z, Y, X]`` on the same grid as ``vol`` (e.g. a heart mask); nonzero voxels count.
    margin_mm : float or sequence of 3 float
        Margin in mm added on each side (per axis if three values), rounded up to whole voxels
        and clipped at the volume's edges.

    Returns
    -------
    CTVolume
        The cropped volume (a copy) with its affine origin moved so voxels keep their LPS
        position; ``meta["crop_bbox"]`` holds the half-open voxel bounds
        ``((z0, z1), (y0, y1), (x0, x1))`` in the input grid, to crop other masks the same way.

    Raises
    ------
    ValueError
        If the mask's shape differs from the volume's, the mask is empty or the margin negative.
    """
    mask = np.asarray(mask)
    if mask.shape != vol.shape:
        raise ValueError(f"mask shape {mask.shape} does not match the volume shape {vol.shape}")
    margins = np.broadcast_to(np.asarray(margin_mm, dtype=np.float64), (3,))
    if not np.all(np.isfinite(margins)) or np.any(margins < 0):
        raise ValueError(f"margin_mm must be finite and >= 0; got {margin_mm!r}")
    bounds = []
    for axis in range(3):
        others = tuple(a for a in range(3) if a != axis)
        present = np.flatnonzero(np.any(mask, axis=others))
        if present.size == 0:
            raise ValueError("the mask is empty: there is nothing to crop to")
        pad = int(np.ceil(margins[axis] / vol.spacing[axis] - 1e-9))
        bounds.append((max(int(present[0]) - pad, 0), min(int(present[-1]) + 1 + pad, vol.shape[axis])))
    array = vol.array[tuple(slice(lo, hi) for lo, hi in bounds)].copy()
    affine = vol.affine.copy()
    affine[:3, 3] = (
        vol.affine[:3, :3] @ np.array([lo for lo, _ in bounds], dtype=np.float64) + vol.affine[:3, 3]
    )
    meta = dict(vol.meta, crop_bbox=tuple(bounds))
    return CTVolume(array, vol.spacing, affine, meta)


# ------------------------------------------------------------------------------------- windows
def window_channels(hu: np.ndarray, windows: Sequence[tuple[float, float]]) -> np.ndarray:
    """Turn HU into one [0, 1] channel per (level, width) window.

    Parameters
    ----------
    hu : np.ndarray
        HU array of any shape, typically ``[Z, Y, X]``.
    windows : sequence of (level, width)
        Window centre and width in HU. Channel ``c`` is ``clip(hu, level - width/2,
        level + width/2)`` mapped linearly onto [0, 1], so a voxel at ``level`` becomes 0.5.

    Returns
    -------
    np.ndarray
        float32 ``[C, *hu.shape]`` with ``C = len(windows)``. NaN input stays NaN.
    """
    windows = np.asarray(windows, dtype=np.float64)
    if windows.ndim != 2 or windows.shape[1] != 2 or windows.shape[0] == 0:
        raise ValueError(
            f"windows must be a non-empty sequence of (level, width) pairs in HU; got {windows.tolist()}"
        )
    if not np.all(np.isfinite(windows)) or np.any(windows[:, 1] <= 0):
        raise ValueError(f"window levels must be finite and widths positive (HU); got {windows.tolist()}")
    hu = np.asarray(hu, dtype=np.float32)
    out = np.empty((windows.shape[0], *hu.shape), dtype=np.float32)
    for channel, (level, width) in enumerate(windows):
        plane = out[channel]
        np.subtract(hu, np.float32(level - width / 2.0), out=plane)
        np.divide(plane, np.float32(width), out=plane)
        np.clip(plane, 0.0, 1.0, out=plane)
    return out


# --------------------------------------------------------------------------------- the pipeline
def resample_crop(vol: CTVolume, spacing: Sequence[float], shape: Sequence[int], order: int = 1) -> np.ndarray:
    """Resample to ``spacing`` and centre crop / pad to ``shape`` in one pass (HU, air outside).

    Equal to ``crop_or_pad(resample_to_spacing(vol, spacing, order).array, shape)`` but interpolates
    only the voxels that survive the crop: a few ms for a ~40 x 64 x 64 target.

    Parameters
    ----------
    vol : CTVolume
        Volume ``[Z, Y, X]`` in HU with its spacing in mm.
    spacing : sequence of 3 float
        Target spacing ``(z, y, x)`` in mm.
    shape : sequence of 3 int
        Target grid ``(Z, Y, X)`` in voxels.
    order : int
        Interpolation order (1 trilinear by default; see :func:`resample_to_spacing`).

    Returns
    -------
    np.ndarray
        float32 ``shape`` in HU (-1024 where the volume does not reach).

    Raises
    ------
    ValueError
        If NaN or infinite HU reach the prepared field of view, or ``spacing`` / ``shape`` are invalid.
    """
    target = _check_spacing(spacing, "spacing")
    order = _check_order(order)
    shape = tuple(int(s) for s in shape)
    if len(shape) != 3 or any(s < 1 for s in shape):
        raise ValueError(f"shape must be three positive sizes (Z, Y, X); got {shape!r}")
    coords, valid = [], []
    for n, s, t, size in zip(vol.shape, vol.spacing, target, shape):
        n_grid = _grid_size(n, s, t)
        c, v = _axis_samples(n, s, t, n_grid, (n_grid - size) // 2, size)
        coords.append(c)
        valid.append(v)
    hu = _sample(vol.array, coords, valid, order, AIR_HU)
    # Checking the sampled grid (not the whole input) is cheaper and enough: interpolation carries
    # any NaN that could reach the encoder into it, and NaN outside the crop cannot.
    if not np.isfinite(hu).all():
        source = vol.meta.get("source", "the volume")
        raise ValueError(f"{source}: CT volume holds NaN or infinite HU inside the prepared field of view")
    return hu


def prepare_ct(vol: CTVolume, spec: CTInputSpec, order: int = 1) -> np.ndarray:
    """Preprocess a volume exactly as an encoder with input spec ``spec`` expects.

    Equivalent to ``window_channels(crop_or_pad(resample_to_spacing(vol, spec.spacing).array,
    spec.shape), spec.windows)`` (centre crop / pad with -1024 HU), but interpolates only the
    voxels that survive the crop, so it costs a few ms for a ~40 x 64 x 64 volume.

    Parameters
    ----------
    vol : CTVolume
        Volume ``[Z, Y, X]`` in HU with its spacing in mm.
    spec : CTInputSpec
        Target ``spacing`` (z, y, x) mm, ``shape`` (Z, Y, X) voxels and HU ``windows``.
    order : int
        Interpolation order (1 trilinear by default; see :func:`resample_to_spacing`).

    Returns
    -------
    np.ndarray
        float32 ``[C, *spec.shape]`` in [0, 1], ``C = len(spec.windows)``.

    Raises
    ------
    ValueError
        If NaN or infinite HU reach the prepared field of view, or the spec's spacing / shape /
        windows are invalid.
    """
    return window_channels(resample_crop(vol, spec.spacing, spec.shape, order), spec.windows)
