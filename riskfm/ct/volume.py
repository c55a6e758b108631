"""The CT volume container shared by the readers, preprocessing and the data contract.

Array and affine conventions (read this once; every riskfm CT function follows it)
----------------------------------------------------------------------------------
* ``array`` is indexed ``[z, y, x]`` (numpy order, slowest axis first) and holds HU as float32.
* ``spacing`` is ``(z, y, x)`` in mm: the distance between neighbouring voxel centres along each
  array axis, in the same order as the array axes.
* ``affine`` is a 4x4 matrix mapping **homogeneous array indices** ``(z, y, x, 1)`` -- exactly the
  order used to index ``array`` -- to **patient LPS coordinates in mm** (DICOM patient space:
  +x towards the patient's Left, +y Posterior, +z Superior)::

      lps_mm = (affine @ [z_index, y_index, x_index, 1])[:3]

  Column ``a`` of ``affine[:3, :3]`` is the step in mm taken when array index ``a`` grows by one, so
  its norm equals ``spacing[a]``; ``affine[:3, 3]`` is the LPS position of the centre of voxel
  ``[0, 0, 0]``. Note that this differs from NIfTI (voxel ``(i, j, k)`` -> RAS) on purpose: the
  index order matches the array, and LPS matches DICOM, so no axis flip hides anywhere.
* The readers reorient every volume to the closest canonical orientation, so that array axis 0
  runs towards Superior, axis 1 towards Posterior and axis 2 towards Left (``meta["orientation"]``
  = ``("S", "P", "L")``). For a standard axial head-first series this is the DICOM pixel layout
  itself (rows top to bottom = anterior to posterior, columns = patient right to left) with slices
  ordered from feet to head. Oblique acquisitions keep their obliquity in the affine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import permutations

import numpy as np

__all__ = ["CTVolume", "axis_codes", "to_canonical"]

# LPS world axes and the letters for their positive and negative directions.
_POSITIVE_CODES = ("L", "P", "S")
_NEGATIVE_CODES = ("R", "A", "I")


def axis_codes(affine: np.ndarray) -> tuple[str, str, str]:
    """Return the anatomical direction each array axis points to, from a riskfm (z, y, x) -> LPS affine.

    Parameters
    ----------
    affine : np.ndarray
        4x4 affine in the riskfm convention (see the module docstring).

    Returns
    -------
    tuple of str
        One letter per array axis (axis 0 first): the patient direction (L/R, P/A, S/I) that the
        axis is closest to, e.g. ``("S", "P", "L")`` for a canonical riskfm volume.
    """
    directions = np.asarray(affine, dtype=np.float64)[:3, :3]
    codes = []
    for axis in range(3):
        column = directions[:, axis]
        world = int(np.argmax(np.abs(column)))
        codes.append(_POSITIVE_CODES[world] if column[world] > 0 else _NEGATIVE_CODES[world])
    return tuple(codes)  # type: ignore[return-value]


@dataclass(eq=False)
class CTVolume:
    """A CT volume in Hounsfield units with its geometry.

    Attributes
    ----------
    array : np.ndarray
        float32 ``[Z, Y, X]`` in HU. Converted to a C-contiguous float32 array on construction.
    spacing : tuple of float
        Voxel spacing ``(z, y, x)`` in mm; finite and positive.
    affine : np.ndarray or None
        4x4 float64 matrix mapping homogeneous array indices ``(z, y, x, 1)`` to patient LPS
        coordinates in mm (see the module docstring). ``None`` builds an axis-aligned affine with
        the given spacing and voxel ``[0, 0, 0]`` at the origin, which suits synthetic volumes.
    meta : dict
        Provenance and acquisition details: ``source`` (path), ``format`` ("nifti" / "dicom"),
        ``orientation`` (axis codes of the array axes), and reader-specific keys such as
        ``series_uid``, ``n_slices``, ``rescale_slope`` / ``rescale_intercept``.

    Raises
    ------
    ValueError
        If the array is not 3-D or is empty, the spacing is not three positive finite numbers, or
        the affine is not a finite 4x4 affine whose column norms match the spacing (within 1 %).
    """

    array: np.ndarray
    spacing: tuple[float, float, float]
    affine: np.ndarray | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        array = np.asarray(self.array)
        if array.ndim != 3:
            raise ValueError(f"CTVolume.array must be 3-D [Z, Y, X]; got shape {array.shape}")
        if array.size == 0:
            raise ValueError(f"CTVolume.array is empty (shape {array.shape})")
        self.array = np.ascontiguousarray(array, dtype=np.float32)

        try:
            spacing = tuple(float(s) for s in self.spacing)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"CTVolume.spacing must be three numbers (z, y, x) in mm; got {self.spacing!r}"
            ) from exc
        if len(spacing) != 3 or not all(np.isfinite(s) and s > 0 for s in spacing):
            raise ValueError(
                f"CTVolume.spacing must be three positive finite numbers (z, y, x) in mm; got {self.spacing!r}"
            )
        self.spacing = spacing  # type: ignore[assignment]

        if self.affine is None:
            affine = np.diag([*spacing, 1.0])
        else:
            affine = np.array(self.affine, dtype=np.float64)
            if affine.shape != (4, 4):
                raise ValueError(f"CTVolume.affine must be 4x4; got shape {affine.shape}")
            if not np.all(np.isfinite(affine)):
                raise ValueError("CTVolume.affine contains non-finite values")
            if not np.allclose(affine[3], [0.0, 0.0, 0.0, 1.0]):
                raise ValueError(f"CTVolume.affine last row must be [0, 0, 0, 1]; got {affine[3].tolist()}")
            # A spacing that disagrees with the affine would put every physical measurement
            # (volumes, distances, resampling) on a different scale from the geometry.
            column_norms = np.linalg.norm(affine[:3, :3], axis=0)
            if not np.allclose(column_norms, spacing, rtol=1e-2, atol=1e-4):
                raise ValueError(
                    f"CTVolume.affine voxel sizes {tuple(np.round(column_norms, 4).tolist())} mm disagree "
                    f"with spacing {spacing} mm (z, y, x)"
                )
        self.affine = affine
        self.meta = dict(self.meta)

    @property
    def shape(self) -> tuple[int, int, int]:
        """Array shape ``(Z, Y, X)`` in voxels."""
        return self.array.shape  # type: ignore[return-value]

    @property
    def voxel_volume_mm3(self) -> float:
        """Volume of one voxel in mm^3."""
        return float(np.prod(self.spacing))

    @property
    def orientation(self) -> tuple[str, str, str]:
        """Patient direction of each array axis, e.g. ``("S", "P", "L")`` (see :func:`axis_codes`)."""
        return axis_codes(self.affine)

    def index_to_lps(self, index: np.ndarray) -> np.ndarray:
        """Return the LPS positions in mm of voxel indices.

        Parameters
        ----------
        index : array-like
            ``[..., 3]`` array indices in ``(z, y, x)`` order (may be fractional).

        Returns
        -------
        np.ndarray
            ``[..., 3]`` float64 LPS coordinates in mm.
        """
        index = np.asarray(index, dtype=np.float64)
        return index @ self.affine[:3, :3].T + self.affine[:3, 3]

    def __repr__(self) -> str:
        source = self.meta.get("source", "")
        return (
            f"CTVolume(shape={self.shape}, spacing={tuple(round(s, 4) for s in self.spacing)} mm, "
            f"orientation={''.join(self.orientation)}, source={source!r})"
        )


def to_canonical(volume: CTVolume) -> CTVolume:
    """Flip and permute the array axes so they point to Superior, Posterior and Left.

    Only axis permutations and flips are applied (no interpolation), so HU values are untouched
    and the physical position of every voxel is preserved: the affine is updated accordingly.
    Each array axis is matched to the patient axis it is most closely aligned with (the pairing
    that maximises the summed absolute direction cosines), so oblique volumes are handled and keep
    their obliquity in the affine.

    Parameters
    ----------
    volume : CTVolume
        Any volume whose affine follows the riskfm convention.

    Returns
    -------
    CTVolume
        A new volume with ``orientation == ("S", "P", "L")`` and ``meta["orientation"]`` set; it
        shares the array with ``volume`` when no flip or permutation was needed.
    """
    directions = volume.affine[:3, :3] / np.asarray(volume.spacing)[None, :]
    # world_axis_source[w] = array axis mapped onto world axis w (0 = L, 1 = P, 2 = S).
    world_axis_source = max(
        permutations(range(3)),
        key=lambda sources: sum(abs(directions[w, src]) for w, src in enumerate(sources)),
    )
    # Output axis 0 must follow S (world 2), axis 1 P (world 1), axis 2 L (world 0).
    order = [world_axis_source[2 - out_axis] for out_axis in range(3)]
    flips = [directions[2 - out_axis, order[out_axis]] < 0 for out_axis in range(3)]
    meta = dict(volume.meta)
    meta["orientation"] = ("S", "P", "L")
    if order == [0, 1, 2] and not any(flips):
        return CTVolume(volume.array, volume.spacing, volume.affine, meta)

    array = volume.array.transpose(order)
    affine = np.eye(4)
    affine[:3, 3] = volume.affine[:3, 3]
    for out_axis, src in enumerate(order):
        column = volume.affine[:3, src]
        if flips[out_axis]:
            # The new first voxel along this axis is the old last one.
            affine[:3, 3] += column * (volume.array.shape[src] - 1)
            column = -column
        affine[:3, out_axis] = column
    flip_axes = tuple(axis for axis in range(3) if flips[axis])
    if flip_axes:
        array = np.flip(array, axis=flip_axes)
    spacing = tuple(volume.spacing[src] for src in order)
    return CTVolume(np.ascontiguousarray(array), spacing, affine, meta)
