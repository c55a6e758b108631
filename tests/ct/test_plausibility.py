"""HU / geometry plausibility: real CTs pass, masks, missing rescale, out-of-range and oblique fail."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from riskfm.ct import CTVolume, read_ct
from riskfm.ct.plausibility import CTPlausibility, check_ct_plausibility, oblique_angles_deg

from .test_io import CTA_NIFTI, DICOM_SERIES, HEART_NIFTI, _needs  # the real fixtures and their skip


@pytest.fixture(scope="module")
def cta() -> CTVolume:
    _needs(CTA_NIFTI)
    return read_ct(CTA_NIFTI)


def _categories(reasons: list[str]) -> list[str]:
    for reason in reasons:
        assert reason.startswith("ct implausible: "), reason
    return [reason.split(": ")[1] for reason in reasons]


def _phantom(shape=(12, 24, 24), spacing=(2.0, 0.8, 0.8), affine=None) -> CTVolume:
    """A small chest-like phantom: air around a soft-tissue body with two 'lungs' and a bone."""
    array = np.full(shape, -1000.0, np.float32)
    array[:, 3:-3, 3:-3] = 40.0
    array[:, 6:12, 5:10] = -850.0
    array[:, 6:12, 14:19] = -850.0
    array[:, 16:19, 10:13] = 900.0
    array += np.random.default_rng(0).normal(0.0, 15.0, size=shape).astype(np.float32)
    return CTVolume(array, spacing, affine)


def _rotated_affine(degrees: float, spacing=(2.0, 0.8, 0.8)) -> np.ndarray:
    """A riskfm affine whose y and x axes are rotated by ``degrees`` about the S axis."""
    t = np.radians(degrees)
    directions = np.array(
        [
            [0.0, -np.sin(t), np.cos(t)],  # L component of axes (z, y, x)
            [0.0, np.cos(t), np.sin(t)],  # P
            [1.0, 0.0, 0.0],  # S
        ]
    )
    affine = np.eye(4)
    affine[:3, :3] = directions * np.asarray(spacing)[None, :]
    affine[:3, 3] = (-100.0, -120.0, -300.0)
    return affine


# ------------------------------------------------------------------------------- real CTs pass
def test_real_cardiac_cta_is_plausible(cta):
    assert check_ct_plausibility(cta) == []


def test_real_dicom_series_is_plausible():
    _needs(DICOM_SERIES)
    assert check_ct_plausibility(read_ct(DICOM_SERIES)) == []


def test_synthetic_phantom_is_plausible():
    assert check_ct_plausibility(_phantom()) == []


# ------------------------------------------------------------------------------ binary masks
def test_real_heart_mask_is_flagged_as_binary_mask():
    _needs(HEART_NIFTI)
    mask = read_ct(HEART_NIFTI)
    assert nib.load(HEART_NIFTI).get_data_dtype() == np.uint8
    reasons = check_ct_plausibility(mask)
    assert _categories(reasons) == ["binary mask"]
    assert "only 2 distinct values (0, 1)" in reasons[0]


@pytest.mark.parametrize(
    "values",
    [(0.0, 1.0), (0.0, 255.0), (-1024.0, 1000.0), (7.0,)],
    ids=["0-1", "0-255", "two-HU-levels", "constant"],
)
def test_few_valued_volumes_are_flagged_as_binary_mask(values):
    rng = np.random.default_rng(1)
    array = rng.choice(np.asarray(values, np.float32), size=(10, 20, 20))
    reasons = check_ct_plausibility(CTVolume(array, (1.0, 1.0, 1.0)))
    assert "binary mask" in _categories(reasons)
    assert f"only {len(values)} distinct value" in reasons[_categories(reasons).index("binary mask")]


def test_label_map_is_flagged_as_binary_mask():
    labels = np.random.default_rng(2).integers(0, 18, size=(10, 20, 20)).astype(np.float32)
    reasons = check_ct_plausibility(CTVolume(labels, (1.0, 1.0, 1.0)))
    assert _categories(reasons) == ["binary mask"]
    assert "18 distinct integer values in 0..17" in reasons[0] and "label map" in reasons[0]


def test_mask_in_a_large_volume_is_confirmed_beyond_the_sample():
    # 2.6 M voxels: the strided sample sees every other voxel, all -1000 or 1000; a third value at
    # an unsampled voxel must still make it "not a mask" (the full array is checked).
    array = np.where(np.arange(128 * 128 * 160) % 4 < 2, -1000.0, 1000.0).astype(np.float32)
    array[1] = 35.5
    volume = CTVolume(array.reshape(128, 128, 160), (1.0, 1.0, 1.0))
    assert "binary mask" not in _categories(check_ct_plausibility(volume))
    array[1] = 1000.0
    volume = CTVolume(array.reshape(128, 128, 160), (1.0, 1.0, 1.0))
    assert "binary mask" in _categories(check_ct_plausibility(volume))


# ------------------------------------------------------------------------------------- no air
def test_cta_without_rescale_is_flagged_no_air(cta):
    stored = CTVolume(cta.array + 1024.0, cta.spacing, cta.affine, cta.meta)
    reasons = check_ct_plausibility(stored)
    assert _categories(reasons) == ["no air"]
    assert "stored values without rescale slope/intercept?" in reasons[0]
    assert "below -500 HU" in reasons[0] and "values run from -40 to 4367" in reasons[0]


def test_volume_without_air_but_not_raw_values_gets_no_rescale_hint():
    array = np.random.default_rng(3).normal(40.0, 30.0, size=(10, 20, 20)).astype(np.float32)
    reasons = check_ct_plausibility(CTVolume(array, (1.0, 1.0, 1.0)))
    assert _categories(reasons) == ["no air"]
    assert "rescale" not in reasons[0]


def test_air_fraction_limit_is_configurable():
    phantom = _phantom()
    air = float(np.mean(phantom.array < -500.0))
    assert check_ct_plausibility(phantom, CTPlausibility(min_air_fraction=air * 0.9)) == []
    reasons = check_ct_plausibility(phantom, CTPlausibility(min_air_fraction=min(1.0, air * 1.1)))
    assert _categories(reasons) == ["no air"]


# ------------------------------------------------------------------------------ out of range
@pytest.mark.parametrize("value", [40000.0, -5000.0])
def test_values_beyond_the_scanner_range_are_flagged(cta, value):
    array = cta.array.copy()
    array[50, 50, 50] = value
    reasons = check_ct_plausibility(CTVolume(array, cta.spacing, cta.affine))
    assert _categories(reasons) == ["values out of scanner range"]
    extreme = f"min {value:g}" if value < 0 else f"max {value:g}"
    assert extreme in reasons[0] and "[-3100, 31000] HU" in reasons[0]


def test_padding_and_extended_hu_are_within_range():
    phantom = _phantom()
    array = phantom.array.copy()
    array[0, 0, :4] = -3024.0  # padding some scanners write outside the field of view
    array[5, 17, 11] = 30000.0  # a metal implant on an extended-HU scale
    assert check_ct_plausibility(CTVolume(array, phantom.spacing)) == []


def test_non_finite_values_are_flagged():
    array = _phantom().array.copy()
    array[0, 0, 0] = np.nan
    array[1, 1, 1] = np.inf
    reasons = check_ct_plausibility(CTVolume(array, (2.0, 0.8, 0.8)))
    assert _categories(reasons) == ["values out of scanner range"]
    assert "2 voxels are NaN or infinite" in reasons[0]


# ----------------------------------------------------------------------------------- oblique
def _save_rotated_nifti(path: Path, degrees: float) -> None:
    """A NIfTI whose voxel axes are rotated by ``degrees`` about the S (z) axis."""
    data = _phantom().array.transpose(2, 1, 0).astype(np.int16)  # (x, y, z) file axes
    t = np.radians(degrees)
    rotation = np.array([[np.cos(t), -np.sin(t), 0.0], [np.sin(t), np.cos(t), 0.0], [0.0, 0.0, 1.0]])
    affine = np.eye(4)
    affine[:3, :3] = rotation @ np.diag([0.8, 0.8, 2.0])
    affine[:3, 3] = (90.0, 110.0, -300.0)
    nib.save(nib.Nifti1Image(data, affine), path)


def test_nifti_rotated_by_10_degrees_is_flagged_oblique(tmp_path):
    path = tmp_path / "oblique.nii.gz"
    _save_rotated_nifti(path, 10.0)
    reasons = check_ct_plausibility(read_ct(path))
    assert _categories(reasons) == ["oblique"]
    assert "up to 10.00 deg off the patient axes" in reasons[0]
    assert "axis 1 (P) 10.00 deg" in reasons[0] and "axis 2 (L) 10.00 deg" in reasons[0]
    assert "axis 0" not in reasons[0]


def test_nifti_rotated_by_a_fifth_of_a_degree_is_not_oblique(tmp_path):
    path = tmp_path / "nearly_straight.nii.gz"
    _save_rotated_nifti(path, 0.2)
    volume = read_ct(path)
    assert check_ct_plausibility(volume) == []
    np.testing.assert_allclose(oblique_angles_deg(volume.affine), [0.0, 0.2, 0.2], atol=1e-6)
    # The limit is a setting: at 0.1 deg the same volume is refused.
    reasons = check_ct_plausibility(volume, CTPlausibility(max_oblique_deg=0.1))
    assert _categories(reasons) == ["oblique"] and "0.20 deg" in reasons[0]


@pytest.mark.parametrize("degrees", [0.0, 0.5, 3.0, 30.0, 45.0])
def test_oblique_angles_of_a_rotated_affine(degrees):
    angles = oblique_angles_deg(_rotated_affine(degrees))
    np.testing.assert_allclose(angles, [0.0, degrees, degrees], atol=1e-9)


def test_flipped_and_permuted_axes_are_not_oblique():
    affine = np.zeros((4, 4))
    affine[:3, :3] = [[0.0, 0.0, -0.8], [0.0, -0.7, 0.0], [2.5, 0.0, 0.0]]
    affine[3, 3] = 1.0
    np.testing.assert_allclose(oblique_angles_deg(affine), 0.0, atol=1e-12)
    assert check_ct_plausibility(_phantom(spacing=(2.5, 0.7, 0.8), affine=affine)) == []


# --------------------------------------------------------------------- several reasons, switch
def test_several_problems_give_one_reason_each_in_order():
    array = np.random.default_rng(4).normal(1100.0, 200.0, size=(10, 20, 20)).astype(np.float32)
    array[0, 0, 0] = 50000.0
    volume = CTVolume(array, (2.0, 0.8, 0.8), _rotated_affine(5.0))
    assert _categories(check_ct_plausibility(volume)) == ["values out of scanner range", "no air", "oblique"]


def test_disabled_checks_return_nothing(cta):
    off = CTPlausibility(enabled=False)
    assert check_ct_plausibility(CTVolume(cta.array + 1024.0, cta.spacing, cta.affine), off) == []
    assert check_ct_plausibility(CTVolume(np.zeros((4, 4, 4)), (1.0, 1.0, 1.0)), off) == []


def test_limits_are_validated():
    with pytest.raises(ValueError, match="hu_min"):
        CTPlausibility(hu_min=100.0, hu_max=0.0)
    with pytest.raises(ValueError, match="min_air_fraction"):
        CTPlausibility(min_air_fraction=2.0)
    with pytest.raises(ValueError, match="max_oblique_deg"):
        CTPlausibility(max_oblique_deg=-1.0)
