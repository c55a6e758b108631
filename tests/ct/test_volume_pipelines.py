"""Whole-volume CT preparation through pipelines: case loading (CT + masks) and sliding-window input.

The CORA dense, plaque and pretraining tasks and sliding-window inference read CTs through
:func:`ct_case_pipeline` / :func:`ct_volume_pipeline`, so they get the plausibility checks every
risk-model CT gets: a label mask or a series without its rescale is refused, never trained on.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from riskfm.ct import read_ct
from riskfm.ct.cases import CTCase, load_case
from riskfm.ct.io import write_nifti
from riskfm.ct.preprocess import crop_to_mask, resample_mask, resample_to_spacing, window_channels
from riskfm.ct.spec import CORA_WINDOWS, CTInputSpec
from riskfm.ct.transforms import ct_case_pipeline, ct_volume_pipeline
from riskfm.data.pipeline import Implausible, Item

SPACING = (3.4, 3.0, 3.0)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    from riskfm.synthetic import make_cohort

    return make_cohort(n=2, seed=3, out_dir=tmp_path_factory.mktemp("vol_cohort"), missing_ct=0.0,
                       missing_ecg=1.0, ct_shape=(24, 32, 32), ct_spacing=SPACING, n_workers=1)


@pytest.fixture(scope="module")
def case(cohort):
    from riskfm.ct.cases import cases_from_manifest

    return cases_from_manifest(cohort.manifest_path)[0]


def test_loaded_case_is_the_read_crop_resample_chain(case):
    # the same arrays as the chain written out by hand: read, heart crop, CT trilinear, masks nearest
    target = (6.8, 6.0, 6.0)
    loaded = load_case(case, target, crop_heart=True)
    vol = read_ct(case.ct_path)
    masks = {k: np.rint(read_ct(p).array).clip(0, 255).astype(np.uint8) for k, p in case.masks.items()}
    cropped = crop_to_mask(vol, masks["heart"], 10.0)
    box = tuple(slice(a, b) for a, b in cropped.meta["crop_bbox"])
    masks = {k: m[box] for k, m in masks.items()}
    expected = resample_to_spacing(cropped, target)
    np.testing.assert_array_equal(loaded.vol.array, expected.array)
    np.testing.assert_array_equal(loaded.vol.affine, expected.affine)
    assert set(loaded.masks) == set(masks) == {"heart", "coronary", "plaque"}
    for k, m in masks.items():
        np.testing.assert_array_equal(loaded.masks[k], resample_mask(m, cropped, target))
    same_grid = load_case(case)  # no spacing: the CT's own grid, untouched
    np.testing.assert_array_equal(same_grid.vol.array, vol.array)


def test_a_label_mask_given_as_the_ct_is_refused_naming_the_file(case, tmp_path):
    wrong = CTCase(case.patient_id, case.masks["heart"], {})  # a heart mask where the CT should be
    with pytest.raises(Implausible, match=r"_heart\.nii\.gz: ct implausible: .*mask"):
        load_case(wrong, SPACING)
    from riskfm.ct.plausibility import CTPlausibility

    loaded = load_case(wrong, checks=CTPlausibility(enabled=False))  # the user's explicit opt-out
    assert loaded.vol.shape == read_ct(case.masks["heart"]).shape


def test_a_mask_on_another_grid_and_a_missing_heart_are_errors(case, tmp_path):
    vol = read_ct(case.masks["heart"])
    small = tmp_path / "small_heart.nii.gz"
    write_nifti(small, vol.array[:-2], vol.affine, dtype=np.uint8)
    with pytest.raises(ValueError, match=r"small_heart\.nii\.gz: mask grid .* differs from its CT grid"):
        load_case(CTCase("x", case.ct_path, {"heart": small}))
    with pytest.raises(ValueError, match="needs a heart mask"):
        load_case(CTCase("x", case.ct_path, {}), crop_heart=True)


def test_sliding_window_input_is_the_specs_whole_volume_preparation(case):
    spec = CTInputSpec(spacing=(6.8, 6.0, 6.0), shape=(8, 8, 8), windows=CORA_WINDOWS)
    pipeline = ct_volume_pipeline(spec)
    from_file = pipeline.run(str(case.ct_path))
    vol = read_ct(case.ct_path)
    in_memory = pipeline.apply(Item("memory", data=vol))
    expected = resample_to_spacing(vol, spec.spacing)
    np.testing.assert_array_equal(from_file.data, window_channels(expected.array, CORA_WINDOWS))
    np.testing.assert_array_equal(in_memory.data, from_file.data)
    assert from_file.data.shape == (len(CORA_WINDOWS), *expected.shape)  # the whole field of view, not spec.shape
    assert in_memory.meta["volume"].spacing == spec.spacing
    assert pipeline.shape is None and pipeline.fingerprint != ct_volume_pipeline(
        CTInputSpec(spacing=spec.spacing, shape=spec.shape, windows=CORA_WINDOWS[:2])).fingerprint


def test_predict_volume_refuses_a_mask_and_maps_a_ct(case):
    from riskfm.ct.sliding import predict_volume

    class Dense(torch.nn.Module):
        input_spec = CTInputSpec(spacing=(6.8, 6.0, 6.0), shape=(8, 8, 8), windows=CORA_WINDOWS)

        def forward_dense(self, x):
            return x[:, :1]  # the first window channel itself

    prob = predict_volume(Dense(), read_ct(case.ct_path), overlap=0.0)
    expected = window_channels(resample_to_spacing(read_ct(case.ct_path), (6.8, 6.0, 6.0)).array, CORA_WINDOWS[:1])[0]
    np.testing.assert_allclose(prob.array, expected, atol=1e-6)
    with pytest.raises(Implausible, match="mask"):
        predict_volume(Dense(), read_ct(case.masks["heart"]))


def test_a_pipeline_without_a_fixed_shape_is_not_cached(tmp_path):
    from riskfm.data.cache import PreparedCache

    with pytest.raises(ValueError, match="no fixed output shape"):
        PreparedCache(tmp_path, ct_case_pipeline((1.0, 1.0, 1.0)))
    with pytest.raises(ValueError, match="no fixed output shape"):
        ct_case_pipeline()(str(tmp_path / "x.nii.gz"))
