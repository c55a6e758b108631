"""CT preprocessing: resampling, crop / pad, mask crops, HU windows and the spec-driven pipeline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from riskfm.ct import CORA_WINDOWS, CTInputSpec, CTVolume, prepare_ct, read_ct
from riskfm.ct.preprocess import crop_or_pad, crop_to_mask, resample_to_spacing, window_channels

FIXTURES = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures"
CTA_NIFTI = FIXTURES / "ct" / "cardiac_cta" / "ct.nii.gz"
HEART_NIFTI = FIXTURES / "ct" / "cardiac_cta" / "heart.nii.gz"


def _oblique_volume(shape=(20, 16, 12), spacing=(2.0, 0.8, 0.6), seed=0) -> CTVolume:
    rng = np.random.default_rng(seed)
    array = rng.normal(0.0, 400.0, size=shape).astype(np.float32)
    angle = np.radians(20.0)
    rotation = np.array([[1, 0, 0], [0, np.cos(angle), -np.sin(angle)], [0, np.sin(angle), np.cos(angle)]])
    affine = np.eye(4)
    affine[:3, :3] = rotation[:, ::-1] @ np.diag(spacing)  # axis 0 ~ S, 1 ~ P, 2 = L
    affine[:3, 3] = [-12.0, 30.0, -250.0]
    return CTVolume(array, spacing, affine, {"source": "synthetic"})


@pytest.mark.parametrize(("factor", "expected"), [(2.0, (10, 8, 6)), (0.5, (40, 32, 24))])
def test_resample_halves_and_doubles_shape_and_keeps_uniform_hu(factor, expected):
    vol = CTVolume(np.full((20, 16, 12), 300.0, np.float32), (1.0, 1.0, 1.0))
    out = resample_to_spacing(vol, (factor, factor, factor))
    assert out.shape == expected
    assert out.spacing == (factor, factor, factor)
    # A uniform volume stays uniform up to its edges (no air blended in at the border).
    np.testing.assert_allclose(out.array, 300.0, atol=1e-3)
    # The field of view keeps its centre: the LPS centre of the grid does not move.
    centre_in = vol.index_to_lps((np.array(vol.shape) - 1) / 2)
    centre_out = out.index_to_lps((np.array(out.shape) - 1) / 2)
    np.testing.assert_allclose(centre_out, centre_in, atol=1e-9)


def test_resample_block_in_air_keeps_its_hu_inside():
    array = np.full((24, 24, 24), -1024.0, np.float32)
    array[6:18, 6:18, 6:18] = 400.0
    out = resample_to_spacing(CTVolume(array, (1.0, 1.0, 1.0)), (0.5, 2.0, 1.5))
    assert out.shape == (48, 12, 16)
    assert out.array.max() == pytest.approx(400.0) and out.array.min() == pytest.approx(-1024.0)
    # The block's centre still reads 400 HU and the corners air.
    assert out.array[24, 6, 8] == pytest.approx(400.0)
    assert out.array[0, 0, 0] == pytest.approx(-1024.0)


def test_resample_is_trilinear_at_the_positions_its_affine_claims():
    vol = _oblique_volume()
    out = resample_to_spacing(vol, (1.3, 1.1, 0.9))
    rng = np.random.default_rng(1)
    new_index = rng.uniform(0, np.array(out.shape) - 1, size=(50, 3)).round()
    lps = out.index_to_lps(new_index)
    old_index = np.linalg.solve(vol.affine[:3, :3], (lps - vol.affine[:3, 3]).T)
    expected = ndimage.map_coordinates(vol.array.astype(np.float64), old_index, order=1, mode="nearest")
    got = out.array[tuple(new_index.astype(int).T)]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-2)
    assert out.meta["resampled_from_spacing"] == vol.spacing and out.meta["source"] == "synthetic"


def test_resample_nearest_and_spline_orders():
    labels = np.zeros((10, 10, 10), np.float32)
    labels[3:7, 2:8, 4:6] = 2.0
    labels[0, 0, 0] = 5.0
    nearest = resample_to_spacing(CTVolume(labels, (1.0, 1.0, 1.0)), (0.7, 1.3, 0.5), order=0)
    assert set(np.unique(nearest.array)) <= {0.0, 2.0, 5.0}
    smooth = resample_to_spacing(
        CTVolume(np.full((8, 8, 8), 50.0, np.float32), (1.0, 1.0, 1.0)), (0.5, 1, 2), order=3
    )
    assert smooth.shape == (16, 8, 4)
    np.testing.assert_allclose(smooth.array, 50.0, atol=1e-3)
    with pytest.raises(ValueError, match="order"):
        resample_to_spacing(smooth, (1.0, 1.0, 1.0), order=7)
    with pytest.raises(ValueError, match="spacing"):
        resample_to_spacing(smooth, (1.0, 0.0, 1.0))


def test_crop_or_pad_centre_and_around_a_voxel():
    array = np.arange(5 * 6 * 7, dtype=np.float32).reshape(5, 6, 7)
    cropped = crop_or_pad(array, (3, 4, 5))
    np.testing.assert_array_equal(cropped, array[1:4, 1:5, 1:6])
    padded = crop_or_pad(array, (7, 6, 9))
    assert padded.shape == (7, 6, 9)
    np.testing.assert_array_equal(padded[1:6, :, 1:8], array)
    assert np.all(padded[0] == -1024.0) and np.all(padded[:, :, 0] == -1024.0)
    # Centred on a voxel near the corner: that voxel lands at shape // 2, the rest is padding.
    around = crop_or_pad(array, (3, 3, 3), center=(0, 0, 6))
    assert around[1, 1, 1] == array[0, 0, 6]
    assert np.all(around[0] == -1024.0) and np.all(around[:, :, 2] == -1024.0)
    # Leading axes (channels) are kept; masks pad with 0.
    mask = np.ones((2, 4, 4, 4), np.uint8)
    assert crop_or_pad(mask, (6, 2, 4), fill=0).shape == (2, 6, 2, 4)
    with pytest.raises(ValueError, match="fill"):
        crop_or_pad(mask, (6, 2, 4))


def test_crop_to_mask_keeps_positions_and_records_the_box():
    vol = _oblique_volume(shape=(20, 16, 12), spacing=(2.0, 1.0, 0.5))
    mask = np.zeros(vol.shape, bool)
    mask[8:11, 5:9, 4:6] = True
    crop = crop_to_mask(vol, mask, margin_mm=2.0)  # 1 voxel in z, 2 in y, 4 in x
    assert crop.meta["crop_bbox"] == ((7, 12), (3, 11), (0, 10))
    np.testing.assert_array_equal(crop.array, vol.array[7:12, 3:11, 0:10])
    np.testing.assert_allclose(crop.index_to_lps((0, 0, 0)), vol.index_to_lps((7, 3, 0)), atol=1e-9)
    with pytest.raises(ValueError, match="empty"):
        crop_to_mask(vol, np.zeros(vol.shape), 1.0)
    with pytest.raises(ValueError, match="shape"):
        crop_to_mask(vol, mask[1:], 1.0)


def test_window_channels_range_level_and_cora_channels():
    hu = np.array([[[-3000.0, -100.0, 50.0, 350.0, 500.0, 4000.0]]], np.float32)
    channels = window_channels(hu, CORA_WINDOWS)
    assert channels.shape == (4, 1, 1, 6) and channels.dtype == np.float32
    assert channels.min() >= 0.0 and channels.max() <= 1.0
    # A voxel at each window's level maps to 0.5 in that window's channel.
    for c, level_column in enumerate([1, 2, 3, 4]):
        assert channels[c, 0, 0, level_column] == pytest.approx(0.5, abs=1e-6)
    assert np.all(channels[:, 0, 0, 0] == 0.0) and np.all(channels[:, 0, 0, -1] == 1.0)
    # Linear inside the window: fat window (-100, 140) spans -170..-30 HU.
    assert window_channels(np.array([-135.0]), [(-100.0, 140.0)])[0, 0] == pytest.approx(0.25, abs=1e-6)
    with pytest.raises(ValueError, match="widths"):
        window_channels(hu, [(0.0, 0.0)])


def test_prepare_ct_shape_dtype_and_equivalence_with_the_steps():
    vol = _oblique_volume(shape=(40, 64, 64), spacing=(2.5, 0.7, 0.7))
    spec = CTInputSpec(spacing=(2.0, 1.5, 1.5), shape=(32, 48, 48))
    x = prepare_ct(vol, spec)
    assert x.shape == (4, 32, 48, 48) and x.dtype == np.float32
    assert 0.0 <= x.min() and x.max() <= 1.0
    steps = window_channels(
        crop_or_pad(resample_to_spacing(vol, spec.spacing).array, spec.shape), spec.windows
    )
    np.testing.assert_allclose(x, steps, atol=1e-6)
    # z: 40 x 2.5 mm -> 50 slices at 2 mm, cropped to 32; y/x: 64 x 0.7 -> 30 voxels, padded with air.
    assert np.all(x[:, :, :9, :] == 0.0) and np.all(x[:, :, -9:, :] == 0.0)


def _count_interpolated(monkeypatch):
    """Record every 1-D interpolation pass: (axis, samples asked for, voxels written)."""
    from riskfm.ct import preprocess

    calls = []
    original = preprocess._interpolate_axis

    def counting(array, axis, coords, order):
        out = original(array, axis, coords, order)
        calls.append((axis, coords.size, 0 if out is array else out.size))
        return out

    monkeypatch.setattr(preprocess, "_interpolate_axis", counting)
    return calls


def test_prepare_ct_interpolates_only_the_voxels_that_survive_the_crop(monkeypatch):
    """The speed property, counted instead of timed (timing: benchmarks/bench_prepare_ct.py).

    A 120 x 256 x 256 volume at 1 x 0.5 x 0.5 mm resamples to a 60 x 85 x 85 grid that the spec
    crops to 40 x 64 x 64: prepare_ct must ask for exactly the cropped samples along every axis, and
    write far fewer voxels than resampling the whole grid first.
    """
    vol = _oblique_volume(shape=(120, 256, 256), spacing=(1.0, 0.5, 0.5))
    spec = CTInputSpec()   # 2 x 1.5 x 1.5 mm, 40 x 64 x 64
    calls = _count_interpolated(monkeypatch)
    x = prepare_ct(vol, spec)
    assert x.shape == (len(spec.windows), *spec.shape)
    assert sorted(axis for axis, _, _ in calls) == [0, 1, 2]
    assert all(n_samples == spec.shape[axis] for axis, n_samples, _ in calls), calls
    cropped_first = sum(written for _, _, written in calls)

    calls.clear()
    full = resample_to_spacing(vol, spec.spacing)
    assert full.shape == (60, 85, 85)
    resampled_first = sum(written for _, _, written in calls)
    assert all(n_samples == full.shape[axis] for axis, n_samples, _ in calls), calls
    # Same pass order in both routes; cropping first writes 2.62 M voxels here against 3.91 M.
    assert cropped_first <= 0.7 * resampled_first, (cropped_first, resampled_first)


def test_prepare_ct_refuses_nan():
    vol = _oblique_volume(shape=(40, 64, 64), spacing=(2.5, 1.2, 1.2))
    spec = CTInputSpec()
    prepare_ct(vol, spec)
    vol.array[20, 32, 32] = np.nan  # inside the prepared field of view
    with pytest.raises(ValueError, match="NaN"):
        prepare_ct(vol, spec)


def test_prepare_real_cta_cropped_to_the_heart():
    if not (CTA_NIFTI.exists() and HEART_NIFTI.exists()):
        pytest.skip(f"real CT fixtures under {CTA_NIFTI.parent} are absent")
    vol = read_ct(CTA_NIFTI)
    heart = read_ct(HEART_NIFTI).array > 0.5
    cropped = crop_to_mask(vol, heart, margin_mm=5.0)
    assert all(c < v for c, v in zip(cropped.shape, vol.shape))
    x = prepare_ct(cropped, CTInputSpec(spacing=(1.5, 1.5, 1.5), shape=(64, 64, 64)))
    assert x.shape == (4, 64, 64, 64)
    # Contrast-filled chambers: the angiographic window (350, 700) is well used at the centre.
    assert 0.2 < float(np.median(x[2, 24:40, 24:40, 24:40])) < 0.9
