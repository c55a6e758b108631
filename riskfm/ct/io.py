"""Read CT volumes from NIfTI files and DICOM series folders.

:func:`read_ct` returns a :class:`~riskfm.ct.volume.CTVolume`: a float32 ``[Z, Y, X]`` array in HU,
the spacing ``(z, y, x)`` in mm and an affine from array indices ``(z, y, x)`` to patient LPS mm,
reoriented so that the array axes point Superior, Posterior, Left (see :mod:`riskfm.ct.volume`).

DICOM series are checked rather than trusted: the reader refuses, with an error naming the folder
or files and the problem, folders that mix series, series with two images at one position
(multi-phase CTA), missing slices or otherwise uneven slice steps, gantry tilt, slices whose
size or orientation disagree, and slice files that cannot be read whole (zero-byte or truncated
files, unparseable headers). Volumes with fewer than two slices along any axis are refused too.
Every such error is a :class:`CTReadError` (a ``ValueError``).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from riskfm.ct.volume import CTVolume, axis_codes, to_canonical

__all__ = [
    "AIR_HU",
    "CTFileNotFoundError",
    "CTReadError",
    "DuplicateSliceError",
    "GantryTiltError",
    "InconsistentSliceError",
    "MixedSeriesError",
    "NonUniformSpacingError",
    "UnreadableSliceError",
    "read_ct",
    "read_dicom_series",
    "read_nifti",
    "write_nifti",
]

#: HU given to voxels outside the scanner's field of view (PixelPaddingValue) and to padding.
AIR_HU = -1024.0

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
ENHANCED_CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2.1"

#: Slice steps may differ from the median step by max(SPACING_ATOL_MM, SPACING_RTOL x median step).
#: Scanners write positions rounded to 0.01-0.1 mm, so an absolute floor is needed for thin slices;
#: a missing slice doubles one step and is far outside either bound.
SPACING_RTOL = 0.01
SPACING_ATOL_MM = 0.01
#: Two slices whose positions along the slice normal differ by less than this are duplicates.
DUPLICATE_TOL_MM = 0.01
#: Gantry tilt is reported when slice origins drift in-plane (perpendicular to the slice normal) by
#: more than this fraction of the smallest pixel spacing over the series: beyond it, stacking the
#: slices on an orthogonal grid would misplace voxels by a visible fraction of a pixel.
TILT_SHIFT_FRACTION = 0.1
#: Direction cosines of two slices count as equal within this absolute tolerance.
ORIENTATION_ATOL = 1e-4

#: A volume needs at least this many slices along every array axis (one slice has no spacing).
MIN_SLICES = 2

_NIFTI_UNIT_TO_MM = {"mm": 1.0, "meter": 1000.0, "micron": 1e-3, "unknown": 1.0}
_MAX_LISTED = 5

# Which files of a DICOM folder claim to be slices (see read_dicom_series).
#: Extensions that DICOM slice files carry; a non-DICOM or empty file with one is an unreadable slice.
DICOM_EXTENSIONS = frozenset({".dcm", ".dicom", ".dic", ".dc3", ".ima"})
#: Names (lower case) of the non-image files that DICOM media and viewers leave next to a series.
STRAY_FILE_NAMES = frozenset(
    {"dicomdir", "lockfile", "version", "readme", "thumbs.db", "desktop.ini", "icon\r"}
)
#: Transfer syntaxes whose compressed frames end with the JPEG EOI / JPEG 2000 EOC marker (FFD9):
#: JPEG baseline, extended, lossless (two), JPEG-LS (two), JPEG 2000 (four), HTJ2K (three).
_FFD9_TERMINATED = frozenset(
    f"1.2.840.10008.1.2.4.{n}" for n in (50, 51, 57, 70, 80, 81, 90, 91, 92, 93, 201, 202, 203)
)
_RLE_LOSSLESS = "1.2.840.10008.1.2.5"
_PIXEL_DATA_TAG_LE = b"\xe0\x7f\x10\x00"
_ITEM_TAG_LE = b"\xfe\xff\x00\xe0"
# Runs of digits joined by separators ("1.3.12.2.1107", "0001", "20221208_113428") in file names.
_NUMBER_RUN = re.compile(r"\d+(?:[._-]\d+)*")


# --------------------------------------------------------------------------------------- errors
class CTReadError(ValueError):
    """A CT file or series could not be turned into a trustworthy volume.

    Attributes
    ----------
    path : pathlib.Path
        The file or folder the problem is about.
    problem : str
        What is wrong, in words (the message is ``"<path>: <problem>"``).
    """

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")

    def __reduce__(self):  # keep errors picklable across worker processes
        return (self.__class__, (self.path, self.problem))


class CTFileNotFoundError(CTReadError, FileNotFoundError):
    """The path given to :func:`read_ct` does not exist."""

    def __init__(self, path: str | Path, problem: str = "no such file or folder") -> None:
        super().__init__(path, problem)
        self.filename = str(path)

    def __str__(self) -> str:
        # OSError's own __str__ would print "[Errno None] None: '<path>'" once filename is set
        return f"{self.path}: {self.problem}"


class MixedSeriesError(CTReadError):
    """A DICOM folder holds CT images of more than one SeriesInstanceUID."""


class DuplicateSliceError(CTReadError):
    """Two or more CT images share one slice position (multi-phase CTA, copied files)."""


class NonUniformSpacingError(CTReadError):
    """The steps between consecutive slice positions are not equal (missing slice, mixed steps)."""


class GantryTiltError(CTReadError):
    """Slice origins move in-plane from slice to slice: the stack is sheared (gantry tilt)."""


class InconsistentSliceError(CTReadError):
    """Slices of one series disagree in size, pixel spacing or orientation, or lack geometry."""


class UnreadableSliceError(CTReadError):
    """A file that is, or claims to be, a slice of the series cannot be read whole.

    Zero-byte files, files truncated before or inside their pixel data, and DICOM files whose
    header cannot be parsed. ``path`` is the (first) unreadable file; the message names every
    unreadable file in the folder (up to five) and why each is unreadable.
    """


# ---------------------------------------------------------------------------------- entry point
def read_ct(path: str | Path) -> CTVolume:
    """Read a CT volume from a NIfTI file or a DICOM series folder.

    Parameters
    ----------
    path : str or Path
        A ``.nii`` / ``.nii.gz`` file, or a folder holding the files of one DICOM CT series
        (other files in the folder are skipped and counted in ``meta``).

    Returns
    -------
    CTVolume
        float32 ``[Z, Y, X]`` array in HU, spacing ``(z, y, x)`` in mm, affine from array indices
        ``(z, y, x, 1)`` to LPS mm, axes reoriented to Superior / Posterior / Left.

    Raises
    ------
    CTFileNotFoundError
        ``path`` does not exist (also a ``FileNotFoundError``).
    CTReadError
        Unsupported format, unreadable file, empty folder, non-finite values; subclasses
        :class:`MixedSeriesError`, :class:`DuplicateSliceError`, :class:`NonUniformSpacingError`,
        :class:`GantryTiltError`, :class:`InconsistentSliceError` and
        :class:`UnreadableSliceError` for DICOM series problems. Volumes with fewer than 2 slices
        along any axis are refused.

    Examples
    --------
    >>> vol = read_ct("patient_001/ct.nii.gz")  # doctest: +SKIP
    >>> vol.array.shape, vol.spacing  # doctest: +SKIP
    ((112, 102, 122), (1.5, 1.5, 1.5))
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise CTFileNotFoundError(path)
    if path.is_dir():
        return read_dicom_series(path)
    name = path.name.lower()
    if name.endswith((".nii", ".nii.gz")):
        return read_nifti(path)
    if _sniff_dicom(path) is not None:
        raise CTReadError(path, "is a single DICOM file; pass the folder that holds the whole series")
    raise CTReadError(
        path, "unsupported CT format: expected a NIfTI file (.nii, .nii.gz) or a folder with a DICOM series"
    )


# ----------------------------------------------------------------------------------------- NIfTI
def read_nifti(path: str | Path) -> CTVolume:
    """Read a 3-D NIfTI-1/2 CT volume (``.nii`` or ``.nii.gz``).

    Stored values are scaled by ``scl_slope`` / ``scl_inter`` (nibabel's ``get_fdata``), the
    NIfTI affine (voxel ``(i, j, k)`` -> RAS mm, in the header's spatial unit) is converted to the
    riskfm convention (array ``(z, y, x)`` -> LPS mm) and the volume is reoriented to S/P/L axes.
    The spacing comes from the header zooms (pixdim), converted to mm.

    Parameters
    ----------
    path : str or Path
        The NIfTI file.

    Returns
    -------
    CTVolume
        See :func:`read_ct`. ``meta`` holds ``source``, ``format`` ("nifti"), ``source_orientation``
        (nibabel axis codes of the file's i, j, k axes), ``orientation``, ``scl_slope``,
        ``scl_inter``, ``stored_dtype``, ``qform_code``, ``sform_code``, ``n_slices``.

    Raises
    ------
    CTReadError
        Unreadable file, not 3-D (a 4-D file with more than one volume), fewer than 2 slices
        along any axis, singular affine, zooms that disagree with the affine, or non-finite voxel
        values.
    """
    import nibabel as nib

    path = Path(path).expanduser()
    if not path.exists():
        raise CTFileNotFoundError(path)
    try:
        image = nib.load(str(path))
    except Exception as exc:  # nibabel raises several types for corrupt or foreign files
        raise CTReadError(path, f"cannot read as NIfTI: {exc}") from exc
    header = image.header

    shape = tuple(int(s) for s in image.shape)
    if len(shape) < 3 or any(s != 1 for s in shape[3:]):
        raise CTReadError(path, f"expected a 3-D CT volume; the NIfTI image has shape {shape}")
    try:
        data = np.asarray(image.get_fdata(dtype=np.float32, caching="unchanged"))
    except Exception as exc:
        raise CTReadError(path, f"cannot read the voxel data: {exc}") from exc
    data = data.reshape(shape[:3])
    if data.size == 0:
        raise CTReadError(path, f"the NIfTI volume is empty (shape {shape[:3]})")
    thin = [f"file axis {'ijk'[axis]}" for axis, n in enumerate(shape[:3]) if n < MIN_SLICES]
    if thin:
        raise CTReadError(
            path,
            f"{_too_few_slices(min(shape[:3]))} (NIfTI shape {shape[:3]}: {' and '.join(thin)} "
            f"{'has' if len(thin) == 1 else 'have'} one slice); a single image is not a volume",
        )

    spatial_unit = header.get_xyzt_units()[0]
    to_mm = _NIFTI_UNIT_TO_MM.get(spatial_unit, 1.0)
    zooms = tuple(float(z) * to_mm for z in header.get_zooms()[:3])
    if not all(np.isfinite(z) and z > 0 for z in zooms):
        raise CTReadError(path, f"voxel sizes (pixdim) must be positive; got {zooms} mm")

    ras_affine = np.array(image.affine, dtype=np.float64)
    ras_affine[:3, :] *= to_mm
    if not np.all(np.isfinite(ras_affine)) or abs(np.linalg.det(ras_affine[:3, :3])) < 1e-12:
        raise CTReadError(path, f"the NIfTI affine is singular or not finite:\n{ras_affine}")
    # RAS -> LPS flips the first two world axes; array (i, j, k) -> (k, j, i) reverses the columns.
    lps_affine = np.diag([-1.0, -1.0, 1.0, 1.0]) @ ras_affine
    zyx_affine = lps_affine[:, [2, 1, 0, 3]]

    meta = {
        "source": str(path),
        "format": "nifti",
        "source_orientation": tuple(nib.aff2axcodes(image.affine)),
        # nibabel moves scl_slope / scl_inter from the header to the data proxy on load.
        "scl_slope": _finite_or_none(getattr(image.dataobj, "slope", 1.0)),
        "scl_inter": _finite_or_none(getattr(image.dataobj, "inter", 0.0)),
        "stored_dtype": str(header.get_data_dtype()),
        "qform_code": int(header["qform_code"]),
        "sform_code": int(header["sform_code"]),
        "spatial_unit": spatial_unit,
    }
    try:
        volume = CTVolume(data.transpose(2, 1, 0), zooms[::-1], zyx_affine, meta)
    except ValueError as exc:  # zooms disagreeing with the affine: which one is right is unknown
        raise CTReadError(path, f"inconsistent NIfTI header: {exc}") from exc
    volume = to_canonical(volume)
    volume.meta["n_slices"] = volume.shape[0]
    _check_finite(volume, path)
    return volume


def _too_few_slices(n: int) -> str:
    return f"a CT volume needs at least {MIN_SLICES} slices; got {n}"


def _finite_or_none(value) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None


# ----------------------------------------------------------------------------------------- DICOM
def read_dicom_series(folder: str | Path) -> CTVolume:
    """Read one CT series from a folder of single-frame DICOM files.

    Every file directly in ``folder`` is read. Files that are not DICOM and are not slices (notes,
    thumbnails, ``.DS_Store``) are skipped and counted (``meta["n_non_dicom_files"]``, names in
    ``meta["non_dicom_files"]``), and DICOM objects that are not axial CT images (other SOP
    classes such as a DICOMDIR, localizer / scout images) are skipped and counted by reason
    (``meta["skipped"]``). The remaining CT images must form exactly one series.

    A file that is, or claims to be, a slice but cannot be read whole is never skipped: the read
    fails with :class:`UnreadableSliceError` naming the file and why, since a silently dropped
    first or last slice shortens the volume and a dropped middle slice looks like a gap. Such a
    file is

    * a DICOM file (``DICM`` prefix at byte 128, or a preamble-less dataset that says it is CT)
      that cannot be parsed, whose file meta header lacks its SOP class or transfer syntax, or
      that is a CT image but whose pixel data is missing or incomplete: for uncompressed transfer
      syntaxes the PixelData must hold Rows x Columns x SamplesPerPixel x BitsAllocated / 8
      bytes; compressed (encapsulated) pixel data must end with its sequence delimiter, hold
      well-formed fragments and, for JPEG-family syntaxes, end with the FFD9 end marker;
    * a non-DICOM file (zero bytes, shorter than a DICOM header, or foreign content) that claims
      to be a slice: it has a DICOM extension (``.dcm``, ``.dicom``, ``.dic``, ``.dc3``, ``.ima``),
      or is named like the readable slices (the same name once runs of digits are ignored, e.g.
      ``CT.1.3.12.2.1107...16599`` next to ``CT.1.3.12.2.1107...16573``, ``IM0021`` next to
      ``IM0001``), or is an empty file without an extension (a numeric suffix such as ``.16599``
      is not an extension).

    Stray files are still skipped when unreadable: hidden files (names starting with ``.``, such
    as ``.DS_Store`` and macOS ``._*`` files), the names in :data:`STRAY_FILE_NAMES` (DICOMDIR,
    LOCKFILE, VERSION, README, Thumbs.db, desktop.ini), and non-DICOM files with another
    extension (``.txt``, ``.json``, ``.jpg``, ...) or a different name pattern. Truncated DICOM
    objects that are not CT images (a DICOMDIR, a secondary capture) are skipped as non-CT
    objects. Files are checked on their bytes and headers only: no pixel data is decoded twice.

    Slices are ordered by their ImagePositionPatient projected on the slice normal (the cross
    product of the ImageOrientationPatient row and column cosines), never by InstanceNumber or
    SliceLocation. The z spacing is the measured step between slice positions (not SliceThickness,
    which may be larger for overlapping reconstructions); y / x spacing is PixelSpacing (row, col).
    Stored values go through each slice's RescaleSlope / RescaleIntercept; stored values equal to
    PixelPaddingValue (or within PixelPaddingValue..PixelPaddingRangeLimit) become air, -1024 HU.
    A series needs at least 2 slices.

    Parameters
    ----------
    folder : str or Path
        Folder holding the series (subfolders are not searched).

    Returns
    -------
    CTVolume
        See :func:`read_ct`. ``meta`` holds ``source``, ``format`` ("dicom"), ``series_uid``,
        ``study_uid``, ``series_description``, ``manufacturer``, ``n_slices``, ``files`` (in slice
        order), ``slice_thickness_mm``, ``rescale_slope``, ``rescale_intercept``,
        ``pixel_padding_value``, ``n_padding_voxels``, ``source_orientation``, ``orientation``,
        ``n_non_dicom_files``, ``non_dicom_files``, ``skipped``.

    Raises
    ------
    CTReadError
        And its subclasses: see :func:`read_ct`. Tolerances are the module constants
        ``SPACING_RTOL`` / ``SPACING_ATOL_MM`` (uneven steps), ``DUPLICATE_TOL_MM``,
        ``TILT_SHIFT_FRACTION`` and ``ORIENTATION_ATOL``.
    """
    folder = Path(folder).expanduser()
    if not folder.exists():
        raise CTFileNotFoundError(folder)
    if not folder.is_dir():
        raise CTReadError(folder, "a DICOM series must be given as the folder that holds its files")

    entries = sorted(folder.iterdir())
    files = [p for p in entries if p.is_file()]
    n_subfolders = sum(1 for p in entries if p.is_dir())
    if not files:
        detail = f" (it has {n_subfolders} subfolders; pass the folder of one series)" if n_subfolders else ""
        raise CTReadError(folder, f"the folder holds no files{detail}")

    slices: list[tuple[Path, object]] = []
    unreadable: list[tuple[Path, str]] = []
    not_dicom: list[tuple[Path, str]] = []  # (file, why it would be unreadable if it were a slice)
    skipped: Counter[str] = Counter()
    for file in files:
        kind, payload = _scan_file(file)
        if kind == "slice":
            slices.append((file, payload))
        elif kind == "skip":
            skipped[payload] += 1
        elif kind == "not_dicom":
            not_dicom.append((file, payload))
        elif _is_stray_name(file.name):  # an unreadable DICOMDIR or hidden file is not a slice
            skipped["unreadable hidden or DICOMDIR-like files"] += 1
        else:
            unreadable.append((file, payload))

    slice_patterns = {_name_pattern(file.name) for file, _ in slices}
    non_dicom_files = []
    for file, why in not_dicom:
        if _claims_to_be_slice(file, slice_patterns):
            unreadable.append((file, why))
        else:
            non_dicom_files.append(file.name)
    if unreadable:
        _raise_unreadable(folder, sorted(unreadable), len(slices))

    if not slices:
        found = [f"{len(non_dicom_files)} non-DICOM files"] + [
            f"{n} {reason}" for reason, n in sorted(skipped.items())
        ]
        nifti = [f.name for f in files if f.name.lower().endswith((".nii", ".nii.gz"))]
        hint = f"; to read a NIfTI volume pass the file itself, e.g. {folder / nifti[0]}" if nifti else ""
        raise CTReadError(
            folder, f"no CT image slices in the folder ({len(files)} files: {', '.join(found)}){hint}"
        )

    series = _single_series(folder, slices)
    volume = _assemble_series(folder, series)
    volume.meta.update(
        n_non_dicom_files=len(non_dicom_files),
        non_dicom_files=non_dicom_files,
        skipped=dict(skipped),
        n_subfolders_ignored=n_subfolders,
    )
    _check_finite(volume, folder)
    return volume


def _sniff_dicom(path: Path) -> str | None:
    """'part10' for files with the DICM preamble, 'raw' for preamble-less datasets, else None."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(132)
    except OSError:
        return None
    if len(head) == 132 and head[128:132] == b"DICM":
        return "part10"
    # Old files without the 128-byte preamble start directly with a group 0x0002 or 0x0008 tag
    # (little endian); anything else is not worth a forced parse.
    if head[:2] in (b"\x02\x00", b"\x08\x00") and len(head) >= 8:
        return "raw"
    return None


def _scan_file(path: Path) -> tuple[str, object]:
    """Classify one file of a series folder.

    Returns ``("slice", dataset)`` for a complete CT image to stack, ``("skip", reason)`` for a
    DICOM object that is not one, ``("unreadable", why)`` for a DICOM file that cannot be read
    whole, and ``("not_dicom", why)`` for a file without DICOM content (``why`` says what would be
    wrong with it if it were meant as a slice; the caller decides from its name).
    """
    import pydicom

    kind = _sniff_dicom(path)
    if kind is None:
        return "not_dicom", _not_dicom_why(path)
    if kind == "raw":
        try:
            dataset = pydicom.dcmread(path, force=True)
        except Exception as exc:  # a forced parse of a foreign file can fail in many ways
            return "not_dicom", f"cannot be parsed as a DICOM dataset without preamble: {exc}"
        if "PixelData" not in dataset and not _looks_like_ct(dataset):
            return "not_dicom", "a DICOM-like dataset without preamble, pixel data or CT modality"
        if "PixelData" in dataset and "ImagePositionPatient" not in dataset:
            return "not_dicom", "a DICOM-like dataset without preamble or ImagePositionPatient"
    else:
        try:
            dataset = pydicom.dcmread(path)
        except Exception as exc:  # a file that claims to be DICOM but is broken must not vanish quietly
            return "unreadable", f"parse error: the DICOM file cannot be parsed ({type(exc).__name__}: {exc})"
        missing = [
            keyword
            for keyword in ("MediaStorageSOPClassUID", "TransferSyntaxUID")
            if not _file_meta(dataset, keyword)
        ]
        if missing:
            return "unreadable", (
                f"truncated or damaged: its file meta header lacks {' and '.join(missing)} "
                f"(the file has {_size(path)} bytes)"
            )
    reason = _not_ct_slice_reason(dataset)
    if reason:
        return "skip", reason
    why = _incomplete_pixel_data(path, dataset)
    if why:
        return "unreadable", why
    return "slice", dataset


def _looks_like_ct(dataset) -> bool:
    sop_class = str(dataset.get("SOPClassUID") or _file_meta(dataset, "MediaStorageSOPClassUID") or "")
    return sop_class == CT_IMAGE_STORAGE or str(dataset.get("Modality", "")).upper() == "CT"


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _not_dicom_why(path: Path) -> str:
    size = _size(path)
    if size == 0:
        return "zero bytes (an empty file)"
    if size < 132:
        return (
            f"truncated: {size} bytes, too short for a DICOM header (the 'DICM' prefix sits at bytes 128-131)"
        )
    return f"not DICOM: {size} bytes without the 'DICM' prefix at byte 128 or DICOM tags at its start"


def _is_stray_name(name: str) -> bool:
    """Hidden files and the files DICOM media / viewers leave next to a series (DICOMDIR, ...)."""
    return name.startswith(".") or name.lower() in STRAY_FILE_NAMES


def _extension(name: str) -> str:
    """Return the lower-case extension of ``name``; a numeric suffix (``CT.1.2.840.5``) is none."""
    suffix = Path(name).suffix.lower()
    return suffix if re.search(r"[a-z]", suffix) else ""


def _name_pattern(name: str) -> str:
    """``name`` with every run of digits (and the dots between them) replaced by '#'."""
    return _NUMBER_RUN.sub("#", name.lower())


def _claims_to_be_slice(file: Path, slice_patterns: set[str]) -> bool:
    """Whether a file without DICOM content is meant as a slice (see read_dicom_series)."""
    name = file.name
    if _is_stray_name(name):
        return False
    extension = _extension(name)
    if extension in DICOM_EXTENSIONS or _name_pattern(name) in slice_patterns:
        return True
    return not extension and _size(file) == 0


def _raise_unreadable(folder: Path, unreadable: list[tuple[Path, str]], n_readable: int) -> None:
    first, why = unreadable[0]
    others = ""
    if len(unreadable) > 1:
        listed = "; ".join(f"{f.name}: {w}" for f, w in unreadable[1 : 1 + _MAX_LISTED])
        more = f"; and {len(unreadable) - 1 - _MAX_LISTED} more" if len(unreadable) > 1 + _MAX_LISTED else ""
        others = f". {len(unreadable) - 1} more unreadable files in {folder}: {listed}{more}"
    raise UnreadableSliceError(
        first,
        f"unreadable DICOM slice file: {why}{others}. Skipping it would silently drop a slice "
        f"({n_readable} other slice files are readable); copy or export the series again",
    )


def _incomplete_pixel_data(path: Path, dataset) -> str | None:
    """Why a CT image's pixel data is missing or incomplete, or None if it is whole.

    Only lengths and item headers are looked at; the pixels are decoded once, later.
    """
    if "PixelData" not in dataset:
        return _missing_pixel_data_why(path, dataset)
    pixel_data = dataset.PixelData
    if not isinstance(pixel_data, bytes | bytearray):
        return None  # deferred or unusual value: the decoder will tell
    syntax = _file_meta(dataset, "TransferSyntaxUID")
    encapsulated = bool(getattr(syntax, "is_encapsulated", False)) if syntax else False
    if not encapsulated:
        needed = _native_pixel_bytes(dataset)
        if needed is not None and len(pixel_data) < needed[0]:
            return f"truncated: its pixel data holds {len(pixel_data)} bytes, {needed[1]} needs {needed[0]}"
        return None
    return _encapsulated_problem(pixel_data, str(syntax), getattr(syntax, "name", str(syntax)))


def _native_pixel_bytes(dataset) -> tuple[int, str] | None:
    """(bytes one uncompressed frame needs, how that was computed), or None if unknown."""
    try:
        rows, cols = int(dataset.Rows), int(dataset.Columns)
        bits = int(dataset.BitsAllocated)
        samples = int(dataset.get("SamplesPerPixel", 1) or 1)
    except (AttributeError, TypeError, ValueError):
        return None
    needed = (rows * cols * samples * bits + 7) // 8
    formula = (
        f"Rows x Columns x SamplesPerPixel x BitsAllocated / 8 = {rows} x {cols} x {samples} x {bits} / 8"
    )
    return needed, formula


def _encapsulated_problem(pixel_data: bytes, syntax: str, syntax_name: str) -> str | None:
    """Why encapsulated (compressed) pixel data is incomplete, or None: item headers and end marker."""
    fragments: list[bytes] = []
    offset, size = 0, len(pixel_data)
    while offset < size:
        if offset + 8 > size or pixel_data[offset : offset + 4] != _ITEM_TAG_LE:
            return f"truncated or damaged {syntax_name} pixel data: no item header at byte {offset} of {size}"
        length = int.from_bytes(pixel_data[offset + 4 : offset + 8], "little")
        end = offset + 8 + length
        if end > size:
            return (
                f"truncated: a {syntax_name} pixel data fragment declares {length} bytes but only "
                f"{size - offset - 8} are present"
            )
        fragments.append(pixel_data[offset + 8 : end])
        offset = end
    frames = fragments[1:]  # the first item is the basic offset table
    if not any(frames):
        return f"truncated: its {syntax_name} pixel data holds no compressed frame data"
    if syntax in _FFD9_TERMINATED:
        last = next(f for f in reversed(frames) if f)
        # Allow zero padding and a few stray bytes after the end marker.
        if b"\xff\xd9" not in last[-64:].rstrip(b"\x00")[-8:]:
            return (
                f"truncated: its {syntax_name} codestream ({sum(map(len, frames))} bytes) lacks the "
                f"FFD9 end marker"
            )
    elif syntax == _RLE_LOSSLESS:
        first = frames[0]
        if len(first) < 64:
            return f"truncated: its RLE frame ({len(first)} bytes) is shorter than the 64-byte RLE header"
        header = np.frombuffer(first[:64], dtype="<u4")
        n_segments = int(header[0])
        if not 1 <= n_segments <= 15 or any(int(o) >= len(first) for o in header[1 : 1 + n_segments]):
            return (
                f"truncated or damaged: its RLE header lists {n_segments} segments at offsets "
                f"{header[1 : 1 + min(n_segments, 15)].tolist()} in a {len(first)}-byte frame"
            )
    return None


def _missing_pixel_data_why(path: Path, dataset) -> str:
    """Describe where a CT image without a complete PixelData element ends (reads the file once)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        return f"no pixel data, and the file cannot be read again: {exc}"
    size = len(data)
    at = data.find(_PIXEL_DATA_TAG_LE, 132 if data[128:132] == b"DICM" else 0)
    if at < 0:
        return f"truncated: the file ({size} bytes) ends before its pixel data element"
    explicit = data[at + 4 : at + 6] in (b"OB", b"OW", b"OD", b"OF", b"OL", b"OV", b"UN")
    header = 12 if explicit else 8
    length_bytes = data[at + header - 4 : at + header]
    present = max(0, size - at - header)
    if len(length_bytes) < 4:
        return f"truncated: the file ({size} bytes) ends inside the header of its pixel data element"
    length = int.from_bytes(length_bytes, "little")
    if length == 0xFFFFFFFF:
        syntax = _file_meta(dataset, "TransferSyntaxUID")
        name = getattr(syntax, "name", syntax) or "compressed"
        return (
            f"truncated: the file ({size} bytes) ends inside its encapsulated {name} pixel data "
            f"after {present} bytes, before the end-of-sequence delimiter"
        )
    needed = _native_pixel_bytes(dataset)
    formula = f"; {needed[1]} needs {needed[0]}" if needed else ""
    return f"truncated: its pixel data holds {present} bytes, its header declares {length}{formula}"


def _not_ct_slice_reason(dataset) -> str | None:
    """Why ``dataset`` is not a single-frame axial CT image to stack, or None if it is one.

    A CT image without pixel data is not skipped here: it is a truncated slice (see
    :func:`_incomplete_pixel_data`).
    """
    # Anonymisers sometimes blank SOPClassUID; the file meta header still says what the object is.
    sop_class = dataset.get("SOPClassUID") or _file_meta(dataset, "MediaStorageSOPClassUID") or ""
    if str(sop_class) == ENHANCED_CT_IMAGE_STORAGE or int(dataset.get("NumberOfFrames", 1) or 1) > 1:
        return "multi-frame (enhanced) CT objects, not supported"
    if sop_class and str(sop_class) != CT_IMAGE_STORAGE:
        return f"non-CT objects ({getattr(sop_class, 'name', sop_class)})"
    if not sop_class and str(dataset.get("Modality", "")).upper() != "CT":
        return "objects that are neither CT Image Storage nor modality CT"
    image_type = [str(v).upper() for v in (dataset.get("ImageType") or [])]
    if "LOCALIZER" in image_type:
        return "localizer (scout) images"
    return None


def _file_meta(dataset, keyword: str):
    file_meta = getattr(dataset, "file_meta", None)
    return file_meta.get(keyword) if file_meta is not None else None


def _instance_uid(dataset) -> str:
    return str(dataset.get("SOPInstanceUID") or _file_meta(dataset, "MediaStorageSOPInstanceUID") or "")


def _single_series(folder: Path, slices: list[tuple[Path, object]]) -> list[tuple[Path, object]]:
    groups: dict[str, list[tuple[Path, object]]] = defaultdict(list)
    for file, dataset in slices:
        groups[str(dataset.get("SeriesInstanceUID") or "<no SeriesInstanceUID>")].append((file, dataset))
    if len(groups) == 1:
        return next(iter(groups.values()))
    described = []
    for uid, members in sorted(groups.items(), key=lambda item: -len(item[1])):
        description = str(members[0][1].get("SeriesDescription", "") or "")
        described.append(f"{uid} ({len(members)} slices{', ' + repr(description) if description else ''})")
    raise MixedSeriesError(
        folder,
        f"the folder mixes {len(groups)} CT series; riskfm reads one series per folder: "
        + "; ".join(described),
    )


def _geometry(file: Path, dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, int]]:
    """(position, orientation cosines [6], pixel spacing (row, col), (rows, cols)) of one slice."""
    missing = [
        name
        for name in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "Rows", "Columns")
        if dataset.get(name) is None
    ]
    if missing:
        raise InconsistentSliceError(
            file, f"CT slice lacks {', '.join(missing)}: its place in the volume is unknown"
        )
    try:
        position = np.array([float(v) for v in dataset.ImagePositionPatient], dtype=np.float64)
        cosines = np.array([float(v) for v in dataset.ImageOrientationPatient], dtype=np.float64)
        pixel_spacing = np.array([float(v) for v in dataset.PixelSpacing], dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InconsistentSliceError(file, f"unreadable geometry attribute: {exc}") from exc
    if position.shape != (3,) or cosines.shape != (6,) or pixel_spacing.shape != (2,):
        raise InconsistentSliceError(
            file,
            f"ImagePositionPatient / ImageOrientationPatient / PixelSpacing have {position.size} / "
            f"{cosines.size} / {pixel_spacing.size} values instead of 3 / 6 / 2",
        )
    if not (np.all(np.isfinite(pixel_spacing)) and np.all(pixel_spacing > 0)):
        raise InconsistentSliceError(file, f"PixelSpacing must be positive; got {pixel_spacing.tolist()} mm")
    return position, cosines, pixel_spacing, (int(dataset.Rows), int(dataset.Columns))


def _files(paths, limit: int = _MAX_LISTED) -> str:
    names = [p.name for p in paths]
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def _assemble_series(folder: Path, series: list[tuple[Path, object]]) -> CTVolume:
    files = [file for file, _ in series]
    if len(series) < MIN_SLICES:
        raise CTReadError(
            folder,
            f"{_too_few_slices(len(series))} ({_files(files)}); the slice spacing of a volume "
            f"cannot be measured from one image",
        )
    geometry = [_geometry(file, dataset) for file, dataset in series]
    positions = np.stack([g[0] for g in geometry])

    # Every slice must share the first slice's grid; name the files that differ.
    reference = geometry[0]
    for label, index, same in (
        ("size (Rows x Columns)", 3, lambda a, b: a == b),
        ("ImageOrientationPatient", 1, lambda a, b: np.allclose(a, b, atol=ORIENTATION_ATOL)),
        ("PixelSpacing", 2, lambda a, b: np.allclose(a, b, rtol=1e-4, atol=1e-4)),
    ):
        odd = [file for file, g in zip(files, geometry) if not same(g[index], reference[index])]
        if odd:
            values = sorted({str(np.round(g[index], 5).tolist()) for g in geometry})
            raise InconsistentSliceError(
                folder,
                f"slices disagree in {label} ({', '.join(values)}): {files[0].name} differs from "
                f"{_files(odd)}; a volume needs one grid for all slices",
            )

    rows, cols = reference[3]
    pixel_spacing = reference[2]
    row_cosine, col_cosine = reference[1][:3], reference[1][3:]
    if min(np.linalg.norm(row_cosine), np.linalg.norm(col_cosine)) < 1e-6:
        raise InconsistentSliceError(
            folder, f"ImageOrientationPatient has a zero direction cosine: {reference[1].tolist()}"
        )
    row_cosine = row_cosine / np.linalg.norm(row_cosine)
    col_cosine = col_cosine / np.linalg.norm(col_cosine)
    if abs(float(row_cosine @ col_cosine)) > 1e-3:
        raise InconsistentSliceError(
            folder,
            f"ImageOrientationPatient row and column cosines are not orthogonal: {reference[1].tolist()}",
        )
    normal = np.cross(row_cosine, col_cosine)

    # Order along the slice normal: InstanceNumber and SliceLocation are not reliable.
    along_normal = positions @ normal
    order = np.argsort(along_normal, kind="stable")
    along_normal = along_normal[order]
    positions = positions[order]
    series = [series[i] for i in order]
    files = [files[i] for i in order]
    steps = np.diff(along_normal)

    _check_duplicates(folder, series, along_normal, steps)
    _check_uniform_steps(folder, files, along_normal, steps)
    step = float((along_normal[-1] - along_normal[0]) / (len(series) - 1))
    _check_tilt(folder, series, positions, normal, pixel_spacing)

    array = np.empty((len(series), rows, cols), dtype=np.float32)
    slopes, intercepts = [], []
    n_padding = 0
    padding_value = None
    for index, (file, dataset) in enumerate(series):
        stored = _pixels(file, dataset, rows, cols)
        slope = float(dataset.get("RescaleSlope", 1.0) or 1.0)
        intercept = float(dataset.get("RescaleIntercept", 0.0) or 0.0)
        if not (np.isfinite(slope) and np.isfinite(intercept)) or slope == 0:
            raise CTReadError(file, f"invalid RescaleSlope {slope} / RescaleIntercept {intercept}")
        slopes.append(slope)
        intercepts.append(intercept)
        out = array[index]
        np.multiply(stored, slope, out=out, casting="unsafe")
        out += intercept
        padded = _padding_mask(dataset, stored)
        if padded is not None:
            padding_value = int(dataset.PixelPaddingValue)
            out[padded] = AIR_HU
            n_padding += int(padded.sum())

    affine = np.eye(4)
    affine[:3, 0] = normal * step
    affine[:3, 1] = col_cosine * pixel_spacing[0]  # moving down one row follows the column cosine
    affine[:3, 2] = row_cosine * pixel_spacing[1]  # moving along a row follows the row cosine
    affine[:3, 3] = positions[0]

    first = series[0][1]
    meta = {
        "source": str(folder),
        "format": "dicom",
        "series_uid": str(first.get("SeriesInstanceUID", "")),
        "study_uid": str(first.get("StudyInstanceUID", "")),
        "series_description": str(first.get("SeriesDescription", "") or ""),
        "manufacturer": str(first.get("Manufacturer", "") or ""),
        "n_slices": len(series),
        "files": [file.name for file in files],
        "slice_thickness_mm": _float_or_none(first.get("SliceThickness")),
        "rescale_slope": slopes[0] if len(set(slopes)) == 1 else slopes,
        "rescale_intercept": intercepts[0] if len(set(intercepts)) == 1 else intercepts,
        "pixel_padding_value": padding_value,
        "n_padding_voxels": n_padding,
        "image_orientation_patient": np.concatenate([row_cosine, col_cosine]).round(6).tolist(),
        "source_orientation": axis_codes(affine),
    }
    volume = CTVolume(array, (step, float(pixel_spacing[0]), float(pixel_spacing[1])), affine, meta)
    return to_canonical(volume)


def _check_duplicates(folder, series, along_normal, steps) -> None:
    duplicate_at = np.flatnonzero(steps < DUPLICATE_TOL_MM)
    if duplicate_at.size == 0:
        return
    groups: list[list[int]] = []
    for i in duplicate_at:
        if groups and groups[-1][-1] == i:
            groups[-1].append(i + 1)
        else:
            groups.append([i, i + 1])
    described = []
    for group in groups[:_MAX_LISTED]:
        names = ", ".join(series[i][0].name for i in group)
        uids = {_instance_uid(series[i][1]) for i in group}
        why = (
            "the same SOPInstanceUID: a copied file"
            if len(uids) == 1 and "" not in uids
            else "different images"
        )
        described.append(f"{along_normal[group[0]]:.2f} mm: {names} ({why})")
    more = f"; and {len(groups) - _MAX_LISTED} more positions" if len(groups) > _MAX_LISTED else ""
    raise DuplicateSliceError(
        folder,
        f"{len(groups)} slice positions hold more than one image (multi-phase CTA or repeated "
        f"acquisitions in one series; split the phases into separate folders): "
        + "; ".join(described)
        + more,
    )


def _check_uniform_steps(folder, files, along_normal, steps) -> None:
    median = float(np.median(steps))
    tolerance = max(SPACING_ATOL_MM, SPACING_RTOL * median)
    uneven = np.flatnonzero(np.abs(steps - median) > tolerance)
    if uneven.size == 0:
        return
    described = [
        f"{steps[i]:.3f} mm between {files[i].name} ({along_normal[i]:.2f} mm) and "
        f"{files[i + 1].name} ({along_normal[i + 1]:.2f} mm)"
        for i in uneven[:_MAX_LISTED]
    ]
    more = f"; and {uneven.size - _MAX_LISTED} more" if uneven.size > _MAX_LISTED else ""
    raise NonUniformSpacingError(
        folder,
        f"slice positions are not evenly spaced (median step {median:.3f} mm, tolerance {tolerance:.3f} mm): "
        f"gap of " + "; gap of ".join(described) + more + " -- a slice is missing or steps are mixed",
    )


def _check_tilt(folder, series, positions, normal, pixel_spacing) -> None:
    offsets = positions - positions[0]
    in_plane = offsets - np.outer(offsets @ normal, normal)
    shift = np.linalg.norm(in_plane, axis=1)
    tolerance = TILT_SHIFT_FRACTION * float(np.min(pixel_spacing))
    if float(shift.max()) <= tolerance:
        return
    extent = float(abs(offsets[-1] @ normal))
    angle = float(np.degrees(np.arctan2(shift[-1], extent)))
    header_tilt = series[0][1].get("GantryDetectorTilt")
    header = f", header GantryDetectorTilt {float(header_tilt):g} deg" if header_tilt is not None else ""
    raise GantryTiltError(
        folder,
        f"slice origins drift {shift.max():.2f} mm in-plane over {extent:.1f} mm along the slice normal "
        f"(gantry tilt about {angle:.2f} deg{header}; tolerance {tolerance:.3f} mm): stacking these slices would "
        f"shear the anatomy; resample the series to an untilted grid first",
    )


def _pixels(file: Path, dataset, rows: int, cols: int) -> np.ndarray:
    try:
        stored = dataset.pixel_array
    except Exception as exc:  # missing decoder plugins and corrupt pixel data both end here
        syntax = getattr(getattr(dataset, "file_meta", None), "TransferSyntaxUID", None)
        name = getattr(syntax, "name", syntax)
        raise CTReadError(
            file,
            f"cannot decode pixel data (transfer syntax {name}): {exc}; a decoder such as pylibjpeg or "
            f"python-gdcm may be needed",
        ) from exc
    if stored.shape != (rows, cols):
        raise InconsistentSliceError(
            file, f"pixel data shape {stored.shape} does not match Rows x Columns {rows} x {cols}"
        )
    return stored


def _padding_mask(dataset, stored: np.ndarray) -> np.ndarray | None:
    """Boolean mask of stored values that mean "outside the field of view", or None."""
    if dataset.get("PixelPaddingValue") is None:
        return None
    values = [_as_stored(dataset.PixelPaddingValue, stored.dtype)]
    if dataset.get("PixelPaddingRangeLimit") is not None:
        values.append(_as_stored(dataset.PixelPaddingRangeLimit, stored.dtype))
    low, high = min(values), max(values)
    mask = (stored >= low) & (stored <= high)
    return mask if mask.any() else None


def _as_stored(value, dtype: np.dtype) -> int:
    """Return a padding value as the stored integer type reads it (the header may use the other sign)."""
    if isinstance(value, bytes | bytearray):
        value = int.from_bytes(value[:2], "little", signed=np.issubdtype(dtype, np.signedinteger))
    value = int(value)
    info = np.iinfo(dtype) if np.issubdtype(dtype, np.integer) else None
    if info is None or info.min <= value <= info.max:
        return value
    bits = 8 * np.dtype(dtype).itemsize
    # e.g. -2000 written as US 63536 for signed pixels, or the reverse: reinterpret the bits.
    return value - (1 << bits) if value > info.max else value + (1 << bits)


def _float_or_none(value) -> float | None:
    try:
        return float(value) if value is not None and value != "" else None
    except (TypeError, ValueError):
        return None


def _check_finite(volume: CTVolume, path: Path) -> None:
    finite = np.isfinite(volume.array)
    if not finite.all():
        raise CTReadError(path, f"{int((~finite).sum())} of {finite.size} voxels are NaN or infinite")


def write_nifti(path: str | Path, array: np.ndarray, affine: np.ndarray, dtype=np.float32) -> Path:
    """Write a riskfm array ``[Z, Y, X]`` with its index->LPS ``affine`` as a NIfTI file.

    The inverse of :func:`read_nifti`'s conversion: NIfTI stores ``[i, j, k] -> RAS`` mm, so the
    axes are reversed and the first two world axes flipped; :func:`read_ct` of the file gives the
    same array and affine back. Masks are written with an integer ``dtype`` (e.g. ``np.uint8``).
    """
    import nibabel as nib

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lps_to_ras = np.diag([-1.0, -1.0, 1.0, 1.0])
    zyx_to_ijk = np.array([[0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1]], dtype=float)
    ras_affine = lps_to_ras @ np.asarray(affine, dtype=float) @ zyx_to_ijk
    data = np.ascontiguousarray(np.asarray(array).transpose(2, 1, 0)).astype(dtype)
    nib.save(nib.Nifti1Image(data, ras_affine), str(path))
    return path
