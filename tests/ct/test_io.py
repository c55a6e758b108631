"""CT readers: NIfTI round trips, real fixtures, and DICOM series the tests write themselves."""

from __future__ import annotations

import os
import pickle
import random
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate, generate_frames
from pydicom.uid import ExplicitVRLittleEndian, RLELossless, generate_uid

from riskfm.ct import CTReadError, CTVolume, read_ct
from riskfm.ct.io import (
    CT_IMAGE_STORAGE,
    DuplicateSliceError,
    GantryTiltError,
    InconsistentSliceError,
    MixedSeriesError,
    NonUniformSpacingError,
    UnreadableSliceError,
)

FIXTURES = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures"
CTA_NIFTI = FIXTURES / "ct" / "cardiac_cta" / "ct.nii.gz"
HEART_NIFTI = FIXTURES / "ct" / "cardiac_cta" / "heart.nii.gz"
DICOM_SERIES = FIXTURES / "ct" / "dicom_series"


def _needs(path: Path) -> None:
    if not path.exists():
        pytest.skip(f"real CT fixture {path} is absent (shared fixtures folder not available)")


# --------------------------------------------------------------------------------------- NIfTI
def _lps_of_ras_voxel(ras_affine: np.ndarray, ijk) -> np.ndarray:
    ras = ras_affine @ np.r_[np.asarray(ijk, dtype=float), 1.0]
    return ras[:3] * np.array([-1.0, -1.0, 1.0])


# Standard RAS grid (needs x and y flipped to reach S/P/L), and a permuted sagittal-like grid where
# file axis i runs anterior->posterior, j inferior->superior and k right->left.
NIFTI_AFFINES = {
    "ras": np.array([[0.7, 0, 0, -40.0], [0, 0.8, 0, 12.5], [0, 0, 2.5, -300.0], [0, 0, 0, 1]]),
    "permuted": np.array([[0, 0, -2.5, 60.0], [-0.7, 0, 0, 5.0], [0, 0.8, 0, -20.0], [0, 0, 0, 1]]),
}


@pytest.mark.parametrize("name", sorted(NIFTI_AFFINES))
def test_nifti_int16_with_scaling_round_trip(tmp_path, name):
    affine = NIFTI_AFFINES[name]
    shape = (6, 5, 4)  # file axes (i, j, k)
    stored = np.arange(np.prod(shape), dtype=np.int16).reshape(shape)
    image = nib.Nifti1Image(stored, affine)
    image.header.set_slope_inter(2.0, -1024.0)
    path = tmp_path / "ct.nii.gz"
    nib.save(image, path)

    vol = read_ct(path)

    # Canonical S/P/L axes; spacing is the file's zooms reordered to (z, y, x).
    assert vol.orientation == ("S", "P", "L") == vol.meta["orientation"]
    zooms = np.linalg.norm(affine[:3, :3], axis=0)  # per file axis
    axis_of_world = np.argmax(np.abs(affine[:3, :3]), axis=1)  # file axis along R/L, A/P, I/S
    expected_spacing = tuple(zooms[axis_of_world[w]] for w in (2, 1, 0))
    np.testing.assert_allclose(vol.spacing, expected_spacing, rtol=1e-6)
    assert vol.array.dtype == np.float32
    assert vol.meta["scl_slope"] == 2.0 and vol.meta["scl_inter"] == -1024.0

    # Every voxel holds scaled HU, and its LPS position is the one the file gives that value.
    hu = 2.0 * stored.astype(np.float64) - 1024.0
    np.testing.assert_array_equal(np.sort(vol.array.ravel()), np.sort(hu.ravel()))
    for index in [(0, 0, 0), (1, 2, 3), tuple(s - 1 for s in vol.shape)]:
        value = vol.array[index]
        ijk = np.argwhere(hu == value)[0]
        np.testing.assert_allclose(vol.index_to_lps(index), _lps_of_ras_voxel(affine, ijk), atol=1e-6)
    # S/P/L: array axis 0 steps towards +S (LPS row 2), axis 1 towards +P, axis 2 towards +L.
    assert vol.affine[2, 0] > 0 and vol.affine[1, 1] > 0 and vol.affine[0, 2] > 0


def test_nifti_float32_round_trip_keeps_values(tmp_path):
    rng = np.random.default_rng(0)
    data = rng.normal(40.0, 300.0, size=(8, 7, 5)).astype(np.float32)
    affine = np.diag([-0.9, -0.9, 3.0, 1.0])  # LPS-style file, as TotalSegmentator writes them
    path = tmp_path / "float.nii"
    nib.save(nib.Nifti1Image(data, affine), path)

    vol = read_ct(path)

    assert vol.shape == (5, 7, 8)
    assert vol.spacing == pytest.approx((3.0, 0.9, 0.9))
    # An L, P, S file needs no flips: array[z, y, x] is data[x, y, z].
    np.testing.assert_array_equal(vol.array, data.transpose(2, 1, 0))
    assert vol.meta["format"] == "nifti" and vol.meta["source"] == str(path)


def test_nifti_4d_and_nan_are_refused(tmp_path):
    four_d = tmp_path / "phases.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 4, 2), np.int16), np.eye(4)), four_d)
    with pytest.raises(CTReadError, match="3-D") as excinfo:
        read_ct(four_d)
    assert str(four_d) in str(excinfo.value)

    with_nan = tmp_path / "nan.nii.gz"
    data = np.zeros((4, 4, 4), np.float32)
    data[1, 2, 3] = np.nan
    nib.save(nib.Nifti1Image(data, np.eye(4)), with_nan)
    with pytest.raises(CTReadError, match="NaN") as excinfo:
        read_ct(with_nan)
    assert str(with_nan) in str(excinfo.value)


def test_real_cardiac_cta_nifti():
    _needs(CTA_NIFTI)
    vol = read_ct(CTA_NIFTI)
    # File is 122 x 102 x 112 (L, P, S) at 1.5 mm: the array is [S, P, L].
    assert vol.shape == (112, 102, 122)
    assert vol.spacing == pytest.approx((1.5, 1.5, 1.5))
    assert vol.meta["source_orientation"] == ("L", "P", "S")
    assert vol.array.min() == pytest.approx(-1064.0) and vol.array.max() == pytest.approx(3343.0)
    # Lung air, soft tissue and contrast-filled chambers are all present.
    assert np.mean(vol.array < -700) > 0.05
    assert np.mean((vol.array > -100) & (vol.array < 100)) > 0.05
    heart = read_ct(HEART_NIFTI).array > 0.5
    assert heart.shape == vol.shape
    assert 150 < float(np.median(vol.array[heart])) < 600
    # Voxel [0, 0, 0] keeps the position the file gives voxel (0, 0, 0) (an LPS file: no flips).
    ras = nib.load(CTA_NIFTI).affine
    np.testing.assert_allclose(vol.index_to_lps((0, 0, 0)), _lps_of_ras_voxel(ras, (0, 0, 0)), atol=1e-4)


# --------------------------------------------------------------------------------------- DICOM
def test_real_dicom_series():
    _needs(DICOM_SERIES)
    vol = read_ct(DICOM_SERIES)
    assert vol.shape == (20, 512, 512)
    # z spacing is the 2 mm increment between positions, not the 3 mm SliceThickness.
    assert vol.spacing == pytest.approx((2.0, 0.9765625, 0.9765625))
    assert vol.meta["slice_thickness_mm"] == pytest.approx(3.0)
    assert vol.meta["rescale_intercept"] == -1024.0 and vol.meta["n_slices"] == 20
    z_mm = vol.index_to_lps(np.c_[np.arange(20), np.zeros(20), np.zeros(20)])[:, 2]
    assert np.all(np.diff(z_mm) == pytest.approx(2.0))
    positions = [
        float(pydicom.dcmread(DICOM_SERIES / f, stop_before_pixels=True).ImagePositionPatient[2])
        for f in vol.meta["files"]
    ]
    np.testing.assert_allclose(positions, z_mm)
    # Outside the body is air, the centre of the abdomen soft tissue.
    assert vol.array[:, :20, :20].mean() == pytest.approx(-1024.0, abs=30)
    centre = np.median(vol.array[:, 246:266, 246:266])
    assert -100 < centre < 150


def _write_slice(
    path: Path,
    stored: np.ndarray,
    *,
    series_uid: str,
    position,
    instance: int,
    orientation=(1, 0, 0, 0, 1, 0),
    pixel_spacing=(0.8, 0.6),
    slope: float = 1.0,
    intercept: float = 0.0,
    padding: int | None = None,
    padding_vr: str | None = None,
    sop_uid: str | None = None,
    image_type=("ORIGINAL", "PRIMARY", "AXIAL"),
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sop_uid = sop_uid or generate_uid()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CT_IMAGE_STORAGE
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = CT_IMAGE_STORAGE
    ds.SOPInstanceUID = sop_uid
    ds.Modality = "CT"
    ds.ImageType = list(image_type)
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.1"
    ds.SeriesInstanceUID = series_uid
    ds.InstanceNumber = instance
    ds.ImagePositionPatient = [float(v) for v in position]
    ds.ImageOrientationPatient = [float(v) for v in orientation]
    ds.PixelSpacing = [float(v) for v in pixel_spacing]
    ds.SliceThickness = 3.0
    ds.Rows, ds.Columns = stored.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1 if stored.dtype == np.int16 else 0
    ds.RescaleSlope = slope
    ds.RescaleIntercept = intercept
    if padding is not None:
        ds.add_new(0x00280120, padding_vr or ("SS" if stored.dtype == np.int16 else "US"), padding)
    ds.PixelData = stored.tobytes()
    ds.save_as(path, enforce_file_format=True)


def _write_series(
    folder: Path,
    n: int = 6,
    *,
    step: float = 2.5,
    z0: float = -120.0,
    series_uid: str | None = None,
    positions=None,
    names=None,
    **kwargs,
) -> list[np.ndarray]:
    """Write n 16x16 slices in shuffled file order with shuffled InstanceNumbers.

    Stored value = 256 * k + 16 * row + col for the k-th slice from the feet, so every voxel tells
    where it came from. Returns the positions (LPS mm) of the slices in k order.
    """
    folder.mkdir(parents=True, exist_ok=True)
    series_uid = series_uid or generate_uid()
    rows, cols = np.mgrid[0:16, 0:16]
    if positions is None:
        positions = [np.array([-30.0, 20.0, z0 + k * step]) for k in range(n)]
    rng = random.Random(len(positions))
    instances = list(range(1, len(positions) + 1))
    rng.shuffle(instances)
    for k, position in enumerate(positions):
        stored = (256 * k + 16 * rows + cols).astype(np.int16)
        name = names[k] if names else f"img_{generate_uid()[-12:]}.dcm"  # random names: no order
        _write_slice(
            folder / name, stored, series_uid=series_uid, position=position, instance=instances[k], **kwargs
        )
    return positions


def _decode(value: float) -> tuple[int, int, int]:
    value = int(round(value))
    return value // 256, (value % 256) // 16, value % 16


def test_dicom_order_comes_from_positions_not_instance_numbers(tmp_path):
    positions = _write_series(tmp_path / "series", n=7)
    vol = read_ct(tmp_path / "series")
    assert vol.shape == (7, 16, 16)
    assert vol.spacing == pytest.approx((2.5, 0.8, 0.6))  # (step, row spacing, column spacing)
    slice_index = vol.array[:, 0, 0] // 256
    np.testing.assert_array_equal(slice_index, np.arange(7))
    # Each voxel sits where its file puts it: IPP + col * dx * row_cosine + row * dy * col_cosine.
    for index in [(0, 0, 0), (3, 5, 9), (6, 15, 15)]:
        k, row, col = _decode(vol.array[index])
        expected = positions[k] + col * 0.6 * np.array([1, 0, 0]) + row * 0.8 * np.array([0, 1, 0])
        np.testing.assert_allclose(vol.index_to_lps(index), expected, atol=1e-6)
    assert vol.meta["format"] == "dicom" and vol.meta["n_slices"] == 7


def test_dicom_flipped_orientation_is_reoriented_with_positions_kept(tmp_path):
    # Rows run right-to-left reversed and columns anterior: a volume to flip on both in-plane axes.
    orientation = (-1, 0, 0, 0, -1, 0)
    positions = _write_series(tmp_path / "series", n=4, orientation=orientation, step=-1.25)
    vol = read_ct(tmp_path / "series")
    assert vol.orientation == ("S", "P", "L")
    # The slice normal (row x column cosine) still points superior: only y and x need flipping.
    assert vol.meta["source_orientation"] == ("S", "A", "R")
    assert vol.spacing == pytest.approx((1.25, 0.8, 0.6))
    for index in [(0, 0, 0), (2, 7, 3), (3, 15, 15)]:
        k, row, col = _decode(vol.array[index])
        expected = positions[k] + col * 0.6 * np.array([-1, 0, 0]) + row * 0.8 * np.array([0, -1, 0])
        np.testing.assert_allclose(vol.index_to_lps(index), expected, atol=1e-6)


def test_dicom_rescale_per_slice_and_padding_to_air(tmp_path):
    folder = tmp_path / "series"
    uid = generate_uid()
    stored = np.full((16, 16), 1100, dtype=np.int16)
    stored[:, :3] = -2000  # outside the reconstruction circle
    for k, (slope, intercept) in enumerate([(1.0, -1024.0), (0.5, -1000.0), (2.0, -2000.0)]):
        _write_slice(
            folder / f"s{k}.dcm", stored, series_uid=uid, position=(0, 0, 5.0 * k), instance=k + 1,
            slope=slope, intercept=intercept, padding=-2000,
        )  # fmt: skip
    vol = read_ct(folder)
    np.testing.assert_allclose(vol.array[:, 0, 5], [1100 - 1024, 550 - 1000, 2200 - 2000])
    # Padding is matched on stored values (before rescale) and becomes air whatever the slope.
    assert np.all(vol.array[:, :, :3] == -1024.0)
    assert vol.meta["n_padding_voxels"] == 3 * 16 * 3
    assert vol.meta["rescale_slope"] == [1.0, 0.5, 2.0]


def test_dicom_padding_value_written_with_the_other_sign(tmp_path):
    # Signed pixels whose header writes the padding -2000 as the unsigned 63536 (VR US).
    folder = tmp_path / "series"
    uid = generate_uid()
    stored = np.full((16, 16), 1000, dtype=np.int16)
    stored[0] = -2000
    for k in range(2):
        _write_slice(
            folder / f"s{k}.dcm",
            stored,
            series_uid=uid,
            position=(0, 0, k),
            instance=k + 1,
            padding=63536,
            padding_vr="US",
        )
    vol = read_ct(folder)
    assert np.all(vol.array[:, 0] == -1024.0) and np.all(vol.array[:, 1:] == 1000.0)


def test_dicom_skips_non_dicom_files_and_localizers(tmp_path):
    folder = tmp_path / "series"
    _write_series(folder, n=3)
    (folder / "README.txt").write_text("scanned on a Tuesday")
    (folder / ".DS_Store").write_bytes(b"\x00\x01binary")
    _write_slice(
        folder / "scout.dcm", np.zeros((16, 16), np.int16), series_uid=generate_uid(), position=(0, 0, 0),
        instance=1, image_type=("ORIGINAL", "PRIMARY", "LOCALIZER"),
    )  # fmt: skip
    vol = read_ct(folder)
    assert vol.shape == (3, 16, 16)
    assert vol.meta["n_non_dicom_files"] == 2
    assert vol.meta["skipped"] == {"localizer (scout) images": 1}


def test_mixed_series_is_refused_naming_both(tmp_path):
    folder = tmp_path / "study"
    _write_series(folder, n=4, series_uid="1.2.3.4.100")
    _write_series(folder, n=3, series_uid="1.2.3.4.200")
    with pytest.raises(MixedSeriesError) as excinfo:
        read_ct(folder)
    message = str(excinfo.value)
    assert str(folder) in message
    assert "1.2.3.4.100 (4 slices" in message and "1.2.3.4.200 (3 slices" in message
    assert isinstance(excinfo.value, CTReadError) and isinstance(excinfo.value, ValueError)


def test_duplicate_positions_are_refused_naming_files(tmp_path):
    folder = tmp_path / "cta"
    positions = [np.array([0.0, 0.0, z]) for z in (0.0, 2.0, 2.0, 4.0)]  # two phases at z = 2
    _write_series(folder, positions=positions, names=["a.dcm", "phase1.dcm", "phase2.dcm", "d.dcm"])
    with pytest.raises(DuplicateSliceError) as excinfo:
        read_ct(folder)
    message = str(excinfo.value)
    assert str(folder) in message and "phase1.dcm" in message and "phase2.dcm" in message
    assert "multi-phase" in message


def test_missing_slice_is_refused_naming_the_gap(tmp_path):
    folder = tmp_path / "series"
    positions = [np.array([0.0, 0.0, z]) for z in (0.0, 2.5, 5.0, 10.0, 12.5)]  # 7.5 mm is missing
    _write_series(folder, positions=positions, names=[f"z{i}.dcm" for i in range(5)])
    with pytest.raises(NonUniformSpacingError) as excinfo:
        read_ct(folder)
    message = str(excinfo.value)
    assert str(folder) in message and "5.000 mm between z2.dcm" in message and "z3.dcm" in message
    assert "median step 2.500 mm" in message


def test_gantry_tilt_is_refused(tmp_path):
    folder = tmp_path / "tilted"
    tilt = np.radians(15.0)
    # Slice origins slide along y as the table moves: 2.5 mm steps along z, tan(15 deg) * 2.5 in y.
    positions = [np.array([0.0, k * 2.5 * np.tan(tilt), k * 2.5]) for k in range(5)]
    _write_series(folder, positions=positions)
    with pytest.raises(GantryTiltError, match=r"gantry tilt about 15\.00 deg") as excinfo:
        read_ct(folder)
    assert str(folder) in str(excinfo.value)


def test_slices_of_different_size_are_refused(tmp_path):
    folder = tmp_path / "series"
    uid = generate_uid()
    _write_slice(
        folder / "a.dcm", np.zeros((16, 16), np.int16), series_uid=uid, position=(0, 0, 0), instance=1
    )
    _write_slice(
        folder / "b.dcm", np.zeros((16, 12), np.int16), series_uid=uid, position=(0, 0, 1), instance=2
    )
    with pytest.raises(InconsistentSliceError, match="Rows x Columns") as excinfo:
        read_ct(folder)
    assert "b.dcm" in str(excinfo.value)


def test_missing_path_and_empty_folders(tmp_path):
    missing = tmp_path / "no_such_series"
    with pytest.raises(FileNotFoundError) as excinfo:
        read_ct(missing)
    assert isinstance(excinfo.value, CTReadError) and str(missing) in str(excinfo.value)
    # the message a user reads, not OSError's "[Errno None] None: '<path>'"
    assert str(excinfo.value) == f"{missing}: no such file or folder"

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CTReadError, match="holds no files") as excinfo:
        read_ct(empty)
    assert str(empty) in str(excinfo.value)

    no_dicom = tmp_path / "notes"
    no_dicom.mkdir()
    (no_dicom / "a.txt").write_text("not an image")
    with pytest.raises(CTReadError, match="no CT image slices.*1 non-DICOM files"):
        read_ct(no_dicom)

    with pytest.raises(CTReadError, match="unsupported CT format"):
        read_ct(no_dicom / "a.txt")


def test_read_errors_survive_pickling_for_worker_processes(tmp_path):
    error = MixedSeriesError(tmp_path, "two series")
    clone = pickle.loads(pickle.dumps(error))
    assert type(clone) is MixedSeriesError and str(clone) == str(error) and clone.path == tmp_path


# ----------------------------------------------------------------------- unreadable slice files
def _copy_real_series(tmp_path: Path) -> Path:
    """A writable copy of the real 20-slice series (the fixture files are read-only)."""
    _needs(DICOM_SERIES)
    folder = tmp_path / "series"
    folder.mkdir()
    for file in sorted(DICOM_SERIES.iterdir()):
        shutil.copyfile(file, folder / file.name)
    return folder


def _real_slice_order() -> list[str]:
    """File names of the real series from the feet up, from the headers alone."""
    z = {
        f.name: float(pydicom.dcmread(f, stop_before_pixels=True).ImagePositionPatient[2])
        for f in DICOM_SERIES.iterdir()
    }
    return sorted(z, key=z.get)


def _truncate(path: Path, n_bytes: int) -> None:
    path.write_bytes(path.read_bytes()[:n_bytes])


@pytest.mark.filterwarnings("ignore:End of file reached before delimiter:UserWarning")
@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_real_series_with_a_truncated_slice_is_refused_naming_it(tmp_path, where):
    folder = _copy_real_series(tmp_path)
    order = _real_slice_order()
    name = order[{"first": 0, "middle": len(order) // 2, "last": -1}[where]]
    _truncate(folder / name, (folder / name).stat().st_size // 2)

    with pytest.raises(UnreadableSliceError) as excinfo:
        read_ct(folder)
    message = str(excinfo.value)
    assert excinfo.value.path == folder / name and str(folder / name) in message
    assert "unreadable" in message and "truncated" in message
    # Compressed (JPEG 2000) pixel data cut in half: the file ends before the sequence delimiter.
    assert "ends inside its encapsulated JPEG 2000" in message
    assert isinstance(excinfo.value, CTReadError)


@pytest.mark.filterwarnings("ignore:End of file reached before delimiter:UserWarning")
@pytest.mark.parametrize("n_bytes", [100, 300, 2000])
def test_real_series_with_a_slice_cut_in_its_header_is_refused(tmp_path, n_bytes):
    folder = _copy_real_series(tmp_path)
    name = _real_slice_order()[7]
    _truncate(folder / name, n_bytes)
    with pytest.raises(UnreadableSliceError, match="unreadable DICOM slice file: truncated") as excinfo:
        read_ct(folder)
    assert excinfo.value.path.name == name


def test_real_series_with_a_zero_byte_file_named_like_the_slices_is_refused(tmp_path):
    folder = _copy_real_series(tmp_path)
    name = sorted(p.name for p in folder.iterdir())[-1]
    empty = folder / (name[:-3] + "999")  # CT.1.3.12.2.1107....16999 next to ....16592
    empty.write_bytes(b"")
    with pytest.raises(UnreadableSliceError, match="unreadable DICOM slice file: zero bytes") as excinfo:
        read_ct(folder)
    assert excinfo.value.path == empty and str(empty) in str(excinfo.value)
    assert "20 other slice files are readable" in str(excinfo.value)


def test_real_series_keeps_skipping_stray_files(tmp_path):
    folder = _copy_real_series(tmp_path)
    (folder / "README.txt").write_text("arterial phase, 3 mm")
    (folder / "export.json").write_text('{"patient": "anonymous"}')
    (folder / "thumbnail.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(300))
    (folder / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1" + bytes(200))
    (folder / "._CT.1.3.12.2.1107.5.1.4.60064.1").write_bytes(b"")  # macOS AppleDouble, empty
    (folder / "Thumbs.db").write_bytes(b"")
    (folder / "notes.txt").write_bytes(b"")  # empty, but a .txt is never a slice
    dicomdir = Dataset()  # a DICOMDIR-like object: DICOM, but Media Storage Directory, no pixels
    dicomdir.file_meta = FileMetaDataset()
    dicomdir.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.1.3.10"
    dicomdir.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    dicomdir.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dicomdir.FileSetID = "SITE_EXPORT"
    dicomdir.save_as(folder / "DICOMDIR", enforce_file_format=True)

    vol = read_ct(folder)

    assert vol.shape == (20, 512, 512) and vol.meta["n_slices"] == 20
    assert vol.meta["n_non_dicom_files"] == 7
    assert set(vol.meta["non_dicom_files"]) == {
        "README.txt", "export.json", "thumbnail.jpg", ".DS_Store", "._CT.1.3.12.2.1107.5.1.4.60064.1",
        "Thumbs.db", "notes.txt",
    }  # fmt: skip
    assert vol.meta["skipped"] == {"non-CT objects (Media Storage Directory Storage)": 1}


def test_truncated_uncompressed_slice_names_the_missing_bytes(tmp_path):
    folder = tmp_path / "series"
    _write_series(folder, n=5, names=[f"IM{k:04d}" for k in range(1, 6)])
    _truncate(folder / "IM0003", (folder / "IM0003").stat().st_size - 100)
    with pytest.raises(UnreadableSliceError) as excinfo:
        read_ct(folder)
    message = str(excinfo.value)
    assert str(folder / "IM0003") in message and "unreadable" in message
    # 16 x 16 int16 pixels need 512 bytes; the last 100 are gone.
    assert "pixel data holds 412 bytes" in message
    assert "Rows x Columns x SamplesPerPixel x BitsAllocated / 8 = 16 x 16 x 1 x 16 / 8 needs 512" in message


@pytest.mark.filterwarnings("ignore:End of file reached before delimiter:UserWarning")
def test_rle_series_reads_and_a_truncated_rle_slice_is_refused(tmp_path):
    folder = tmp_path / "series"
    _write_series(folder, n=4, names=[f"IM{k:04d}" for k in range(1, 5)])
    uncompressed = read_ct(folder).array
    for file in folder.iterdir():
        dataset = pydicom.dcmread(file)
        dataset.compress(RLELossless)
        dataset.save_as(file)
    np.testing.assert_array_equal(read_ct(folder).array, uncompressed)

    _truncate(folder / "IM0002", (folder / "IM0002").stat().st_size - 30)
    with pytest.raises(UnreadableSliceError, match="ends inside its encapsulated RLE Lossless pixel data"):
        read_ct(folder)


def test_real_slice_with_a_cut_codestream_but_intact_delimiter_is_refused(tmp_path):
    # A writer that stopped mid-frame yet closed the sequence: only the JPEG 2000 end marker is missing.
    folder = _copy_real_series(tmp_path)
    name = _real_slice_order()[5]
    dataset = pydicom.dcmread(folder / name)
    frame = next(generate_frames(dataset.PixelData, number_of_frames=1))
    dataset.PixelData = encapsulate([frame[: len(frame) // 2]])
    dataset.save_as(folder / name)
    with pytest.raises(UnreadableSliceError, match="lacks the FFD9 end marker") as excinfo:
        read_ct(folder)
    assert excinfo.value.path == folder / name


@pytest.mark.parametrize("name", ["IM0009", "extra.dcm", "EXTRA.IMA", "slice_without_extension"])
def test_zero_byte_slice_files_are_refused(tmp_path, name):
    folder = tmp_path / "series"
    _write_series(folder, n=4, names=[f"IM{k:04d}" for k in range(1, 5)])
    (folder / name).write_bytes(b"")
    with pytest.raises(UnreadableSliceError, match="zero bytes") as excinfo:
        read_ct(folder)
    assert excinfo.value.path == folder / name


def test_non_dicom_file_named_like_the_slices_is_refused(tmp_path):
    folder = tmp_path / "series"
    _write_series(folder, n=4, names=[f"IM{k:04d}" for k in range(1, 5)])
    (folder / "IM0005").write_bytes(b"\x00" * 60)  # cut inside the 128-byte preamble
    (folder / "IM0006.dcm").write_text("this is not an image at all, but it says .dcm" * 10)
    with pytest.raises(UnreadableSliceError) as excinfo:
        read_ct(folder)
    message = str(excinfo.value)
    assert excinfo.value.path.name == "IM0005" and "truncated: 60 bytes, too short" in message
    assert "1 more unreadable files" in message and "IM0006.dcm: not DICOM" in message


@pytest.mark.filterwarnings("ignore:End of file reached before delimiter:UserWarning")
def test_unparseable_dicom_files_are_refused(tmp_path):
    folder = tmp_path / "series"
    _write_series(folder, n=3, names=["a.dcm", "b.dcm", "c.dcm"])
    # Cut right after the PixelData tag and VR: the 4-byte value length is missing.
    data = (folder / "b.dcm").read_bytes()
    (folder / "b.dcm").write_bytes(data[: data.find(b"\xe0\x7f\x10\x00") + 8])
    with pytest.raises(UnreadableSliceError, match="unreadable DICOM slice file: parse error") as excinfo:
        read_ct(folder)
    assert excinfo.value.path == folder / "b.dcm"

    # The DICM prefix, then a file meta group that holds neither SOP class nor transfer syntax.
    (folder / "b.dcm").write_bytes(data)
    broken = folder / "broken.dcm"
    broken.write_bytes(bytes(128) + b"DICM" + b"\x02\x00\x00\x00UL\x04\x00" + b"\xff" * 40)
    with pytest.raises(
        UnreadableSliceError, match="file meta header lacks MediaStorageSOPClassUID"
    ) as excinfo:
        read_ct(folder)
    assert excinfo.value.path == broken


def test_unreadable_stray_and_empty_files_stay_skipped(tmp_path):
    folder = tmp_path / "series"
    _write_series(folder, n=3, names=["IM0001", "IM0002", "IM0003"])
    for name in ("DICOMDIR", ".DS_Store", "LOCKFILE", "notes.txt", "scan.json", "preview.png"):
        (folder / name).write_bytes(b"")
    vol = read_ct(folder)
    assert vol.shape == (3, 16, 16) and vol.meta["n_non_dicom_files"] == 6


def test_unreadable_error_survives_pickling(tmp_path):
    error = UnreadableSliceError(tmp_path / "IM0001", "unreadable DICOM slice file: zero bytes")
    clone = pickle.loads(pickle.dumps(error))
    assert type(clone) is UnreadableSliceError and str(clone) == str(error)


# ------------------------------------------------------------------------ structural refusals
def test_single_slice_dicom_series_is_refused_and_two_slices_are_read(tmp_path):
    one = tmp_path / "one"
    _write_series(one, n=1)
    with pytest.raises(CTReadError, match="a CT volume needs at least 2 slices; got 1") as excinfo:
        read_ct(one)
    assert str(one) in str(excinfo.value)

    two = tmp_path / "two"
    _write_series(two, n=2, step=3.0)
    vol = read_ct(two)
    assert vol.shape == (2, 16, 16) and vol.spacing[0] == pytest.approx(3.0)


def test_real_series_reduced_to_one_slice_is_refused(tmp_path):
    _needs(DICOM_SERIES)
    folder = tmp_path / "one"
    folder.mkdir()
    first = sorted(DICOM_SERIES.iterdir())[0]
    shutil.copyfile(first, folder / first.name)
    with pytest.raises(CTReadError, match="a CT volume needs at least 2 slices; got 1"):
        read_ct(folder)


@pytest.mark.parametrize("shape", [(1, 5, 4), (6, 1, 4), (6, 5, 1), (1, 1, 4)])
def test_nifti_with_one_slice_along_an_axis_is_refused(tmp_path, shape):
    path = tmp_path / "thin.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros(shape, np.int16), np.diag([0.7, 0.8, 2.5, 1.0])), path)
    with pytest.raises(CTReadError, match="a CT volume needs at least 2 slices; got 1") as excinfo:
        read_ct(path)
    assert str(path) in str(excinfo.value)
    assert f"NIfTI shape {shape}" in str(excinfo.value)


def test_nifti_with_two_slices_is_read(tmp_path):
    path = tmp_path / "two.nii"
    nib.save(nib.Nifti1Image(np.zeros((6, 5, 2), np.int16), np.diag([0.7, 0.8, 2.5, 1.0])), path)
    assert read_ct(path).shape == (2, 5, 6)


def test_nifti_suffixes_and_folder_with_trailing_slash(tmp_path):
    data = np.arange(6 * 5 * 4, dtype=np.int16).reshape(6, 5, 4)
    affine = np.diag([0.7, 0.8, 2.5, 1.0])
    volumes = {}
    for name in ("ct.nii", "ct.nii.gz", "CT.NII.GZ"):
        nib.save(nib.Nifti1Image(data, affine), tmp_path / name)
        volumes[name] = read_ct(tmp_path / name)
        assert volumes[name].meta["format"] == "nifti"
        np.testing.assert_array_equal(volumes[name].array, volumes["ct.nii"].array)
    for name in ("ct.nii.bz2", "ct.mha"):
        (tmp_path / name).write_bytes(b"\x00" * 400)
        with pytest.raises(CTReadError, match="unsupported CT format"):
            read_ct(tmp_path / name)

    folder = tmp_path / "series"
    _write_series(folder, n=3)
    for given in (str(folder) + "/", str(folder) + os.sep, f"{folder}/."):
        vol = read_ct(given)
        assert vol.shape == (3, 16, 16) and vol.meta["format"] == "dicom"


def test_real_series_folder_with_trailing_slash():
    _needs(DICOM_SERIES)
    vol = read_ct(str(DICOM_SERIES) + "/")
    assert vol.shape == (20, 512, 512)


# ------------------------------------------------------------------------------------ CTVolume
def test_ctvolume_validates_its_input():
    vol = CTVolume(np.zeros((2, 3, 4), np.int16), (2.0, 0.5, 0.5))
    assert vol.array.dtype == np.float32 and vol.spacing == (2.0, 0.5, 0.5)
    np.testing.assert_allclose(vol.affine, np.diag([2.0, 0.5, 0.5, 1.0]))
    with pytest.raises(ValueError, match="3-D"):
        CTVolume(np.zeros((3, 4)), (1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="empty"):
        CTVolume(np.zeros((0, 4, 4)), (1.0, 1.0, 1.0))
    for bad in [(0.0, 1.0, 1.0), (1.0, float("nan"), 1.0), (1.0, 1.0)]:
        with pytest.raises(ValueError, match="spacing"):
            CTVolume(np.zeros((2, 2, 2)), bad)
    with pytest.raises(ValueError, match="disagree"):
        CTVolume(np.zeros((2, 2, 2)), (1.0, 1.0, 1.0), affine=np.diag([2.0, 1.0, 1.0, 1.0]))


def test_write_nifti_round_trips_array_and_affine(tmp_path):
    from riskfm.ct.io import write_nifti

    # an S/P/L grid with its origin somewhere in the patient, as read_ct returns volumes
    affine = np.array([[0, 0, 0.7, -40.0], [0, 0.8, 0, 12.5], [2.5, 0, 0, -300.0], [0, 0, 0, 1]])
    array = np.random.default_rng(0).integers(-1000, 1500, (6, 5, 4)).astype(np.float32)
    vol = read_ct(write_nifti(tmp_path / "x.nii.gz", array, affine, np.int16))
    np.testing.assert_array_equal(vol.array, array)
    np.testing.assert_allclose(vol.affine, affine, atol=1e-5)
    np.testing.assert_allclose(vol.spacing, (2.5, 0.8, 0.7), rtol=1e-6)
