"""The lesion-synthesis engine: plaques, noise, joint geometry, sampling, determinism, real CTA."""

from __future__ import annotations

import numpy as np
import pytest

from riskfm.ct import CORA_WINDOWS, read_ct
from riskfm.ct.preprocess import window_channels
from riskfm.ct.synthesis import (
    LESION_CALCIFIED,
    LesionSynthesisEngine,
    PatchTransform,
    SynthesisConfig,
    beer_lambert_noise,
    blob_occupancy,
    candidate_voxels,
    expected_noise_sd,
    insert_plaque,
    random_plaque,
    sample_patch,
    vessel_candidates,
)
from riskfm.ct.synthesis.geometry import source_bounds


def _vessel_phantom(shape=(48, 48, 48)):
    """Soft tissue (40 HU) with one contrast-filled tube (400 HU) along x and its mask."""
    hu = np.full(shape, 40.0, np.float32)
    z, y, _ = np.indices(shape)
    vessel = (z - shape[0] // 2) ** 2 + (y - shape[1] // 2) ** 2 <= 4
    hu[vessel] = 400.0
    return hu, vessel


# ------------------------------------------------------------------------------------ plaques
def test_blob_occupancy_is_the_soft_union_of_gaussians():
    blobs = [(np.array([5.2, 6.0, 4.5]), 1.3), (np.array([6.0, 7.1, 5.0]), 0.8)]
    lo, hi = (2, 3, 1), (10, 11, 9)
    got = blob_occupancy(lo, hi, blobs)
    grid = np.stack(np.meshgrid(*[np.arange(a, b) for a, b in zip(lo, hi)], indexing="ij"), -1)
    keep_out = np.ones(got.shape)
    for c, s in blobs:
        keep_out *= 1 - np.exp(-np.sum((grid - c) ** 2, -1) / (2 * s**2))
    np.testing.assert_allclose(got, 1 - keep_out, atol=1e-6)
    assert got.dtype == np.float32


def test_the_synthetic_cohort_draws_its_plaques_with_the_engine():
    import riskfm.synthetic.ct_render as ct_render
    from riskfm.ct.synthesis import plaque

    assert ct_render.blob_occupancy is plaque.blob_occupancy
    assert ct_render.CALCIFIED_HU == (800.0, 1500.0) and ct_render.NONCALCIFIED_HU == (30.0, 90.0)


@pytest.mark.parametrize("calcified", [True, False])
def test_random_plaques_follow_coras_ranges(calcified):
    rng = np.random.default_rng(0)
    plaques = [random_plaque(rng, (10.0, 10.0, 10.0), calcified=calcified) for _ in range(200)]
    counts = {len(p.sigmas) for p in plaques}
    assert counts == {1, 2, 3}
    sigmas = np.concatenate([p.sigmas for p in plaques])
    assert sigmas.min() >= 0.7 and sigmas.max() <= 2.0
    peaks = np.array([p.peak_hu for p in plaques])
    lo, hi = (800, 1500) if calcified else (30, 90)
    assert peaks.min() >= lo and peaks.max() <= hi and peaks.max() - peaks.min() > 0.5 * (hi - lo)
    # Overlapping blobs: every blob lies within (sigma_i + sigma_j) of another one.
    for p in plaques:
        for i in range(1, len(p.sigmas)):
            d = np.linalg.norm(p.centres[:i] - p.centres[i], axis=1)
            assert np.any(d <= p.sigmas[:i] + p.sigmas[i] + 1e-9)


def test_insert_plaque_blends_towards_the_plaque_hu():
    hu = np.full((20, 20, 20), 400.0, np.float32)
    plaque = random_plaque(np.random.default_rng(3), (10, 10, 10), calcified=False, n_blobs=(1, 1),
                           sigma_vox=(2.0, 2.0), jitter_vox=0.0)
    box, f = insert_plaque(hu, plaque)
    core = hu[10, 10, 10]
    assert core == pytest.approx(400 * (1 - f.max()) + plaque.peak_hu * f.max(), abs=1e-3)
    assert hu.min() >= plaque.peak_hu - 1e-3 and hu.max() <= 400.0
    assert hu[0, 0, 0] == 400.0  # untouched far away


# ------------------------------------------------------------------------------------ noise
@pytest.mark.parametrize("hu", [-100.0, 0.0, 400.0])
def test_noise_is_unbiased_and_matches_the_beer_lambert_variance(hu):
    rng = np.random.default_rng(0)
    noisy = beer_lambert_noise(np.full(200_000, hu, np.float32), rng)
    sd = expected_noise_sd(hu)
    assert noisy.mean() == pytest.approx(hu, abs=0.1 * sd + 0.05)
    assert noisy.std() == pytest.approx(sd, rel=0.02)


def test_noise_variance_scales_with_one_over_i0_and_grows_with_attenuation():
    rng = np.random.default_rng(1)
    water = np.zeros(200_000, np.float32)
    var_full = beer_lambert_noise(water, rng, i0=1e5, sigma_e=0.0).var()
    var_quarter = beer_lambert_noise(water, rng, i0=2.5e4, sigma_e=0.0).var()
    assert var_quarter / var_full == pytest.approx(4.0, rel=0.05)
    sds = [beer_lambert_noise(np.full(50_000, h, np.float32), rng).std() for h in (-800, 0, 400, 1000)]
    assert np.all(np.diff(sds) > 0)


def test_exact_poisson_and_normal_approximation_agree():
    hu = np.full(200_000, 200.0, np.float32)
    exact = beer_lambert_noise(hu, np.random.default_rng(2), exact_below=np.inf)
    approx = beer_lambert_noise(hu, np.random.default_rng(2))
    assert exact.std() == pytest.approx(approx.std(), rel=0.03)
    assert exact.mean() == pytest.approx(approx.mean(), abs=0.2)


def test_electronic_noise_dominates_at_low_counts():
    rng = np.random.default_rng(3)
    bright = np.full(100_000, 1200.0, np.float32)  # ~16 photons expected
    quiet = beer_lambert_noise(bright, rng, sigma_e=0.0).std()
    loud = beer_lambert_noise(bright, rng, sigma_e=4.0).std()
    assert loud > quiet
    with pytest.raises(ValueError, match="i0"):
        beer_lambert_noise(bright, rng, i0=0)


# ------------------------------------------------------------------------------------ geometry
def test_identity_transform_is_a_plain_crop():
    vol = np.random.default_rng(0).normal(size=(20, 22, 24)).astype(np.float32)
    labels = (vol > 1).astype(np.uint8)
    patch, lab = sample_patch(vol, labels, (10, 11, 12), (8, 8, 8), np.eye(3))
    np.testing.assert_allclose(patch, vol[6:14, 7:15, 8:16], atol=1e-5)
    np.testing.assert_array_equal(lab, labels[6:14, 7:15, 8:16])


def test_flip_and_quarter_turn_match_numpy():
    vol = np.random.default_rng(1).normal(size=(16, 16, 16)).astype(np.float32)
    flip = PatchTransform(flips=(False, True, False)).index_matrix((1, 1, 1))
    patch, _ = sample_patch(vol, None, (8, 8, 8), (16, 16, 16), flip)
    # Output index o maps to input 8 - (o - 8): a mirror about voxel 8.
    np.testing.assert_allclose(patch[:, 1:, :], np.flip(vol, 1)[:, :15, :], atol=1e-5)
    turn = PatchTransform(angles_deg=(90.0, 0.0, 0.0)).index_matrix((1, 1, 1))
    patch, _ = sample_patch(vol, None, (8, 8, 8), (15, 15, 15), turn)
    core = vol[1:16, 1:16, 1:16]
    candidates = [np.rot90(core, k, axes=(1, 2)) for k in (1, 3)]
    assert min(np.abs(patch - c).max() for c in candidates) < 1e-4


def test_rotation_is_physical_on_anisotropic_voxels():
    # 45 degrees in the y-x plane on 2:1 voxels: the index map is not a pure rotation.
    a = PatchTransform(angles_deg=(45.0, 0.0, 0.0)).index_matrix((1.0, 2.0, 1.0))
    s = np.diag([1.0, 2.0, 1.0])
    physical = s @ a @ np.linalg.inv(s)
    np.testing.assert_allclose(physical @ physical.T, np.eye(3), atol=1e-12)


def test_image_and_mask_stay_aligned_after_augmentation():
    hu = np.full((40, 40, 40), -100.0, np.float32)
    mask = np.zeros(hu.shape, np.uint8)
    hu[14:22, 18:24, 12:26] = 1000.0
    mask[14:22, 18:24, 12:26] = 1
    rng = np.random.default_rng(5)
    for _ in range(10):
        t = PatchTransform(tuple(rng.uniform(-15, 15, 3)), rng.uniform(0.9, 1.1), tuple(rng.random(3) < 0.5))
        patch, lab = sample_patch(hu, mask, (19.5, 20.0, 20.0), (32, 32, 32), t.index_matrix((1.0, 0.8, 0.8)))
        inside = lab == 1
        assert inside.sum() > 100
        # Nearest-neighbour labels sit on the trilinear image: labelled voxels are bright, the rest dark
        # except a one-voxel interpolation rim.
        assert np.median(patch[inside]) == pytest.approx(1000.0)
        assert (patch[inside] > 450).mean() > 0.9
        assert (patch[~inside] < 450).mean() > 0.97


def test_source_bounds_hold_every_sample():
    t = PatchTransform((15.0, -15.0, 15.0), 0.9, (True, False, True)).index_matrix((1.0, 1.0, 1.0))
    lo, hi = source_bounds((50, 50, 50), (64, 64, 64), t)
    # Corners of the patch land inside [lo, hi - 1].
    o = np.array(np.meshgrid([0, 63], [0, 63], [0, 63], indexing="ij")).reshape(3, -1).T - 32
    pts = 50 + o @ t.T
    assert np.all(pts >= lo) and np.all(pts <= hi - 1)


# ------------------------------------------------------------------------------------ engine
def test_engine_is_deterministic_under_a_seed():
    hu, vessel = _vessel_phantom()
    engine = LesionSynthesisEngine(SynthesisConfig(patch_size=(24, 24, 24), lesion_prob=1.0))
    cand = candidate_voxels(vessel)
    a = engine(hu, (1.0, 1.0, 1.0), cand, np.random.default_rng(11))
    b = engine(hu, (1.0, 1.0, 1.0), cand, np.random.default_rng(11))
    c = engine(hu, (1.0, 1.0, 1.0), cand, np.random.default_rng(12))
    assert np.array_equal(a.image, b.image) and np.array_equal(a.mask, b.mask) and a.lesions == b.lesions
    assert not np.array_equal(a.image, c.image)


def test_engine_outputs_windows_of_its_hu_and_centres_on_the_vessel():
    hu, vessel = _vessel_phantom()
    engine = LesionSynthesisEngine(SynthesisConfig(patch_size=(24, 24, 24), lesion_prob=1.0))
    for seed in range(5):
        p = engine(hu, (1.0, 1.0, 1.0), candidate_voxels(vessel), np.random.default_rng(seed))
        assert p.image.shape == (4, 24, 24, 24) and p.image.dtype == np.float32
        assert p.image.min() >= 0.0 and p.image.max() <= 1.0
        np.testing.assert_array_equal(p.image, window_channels(p.hu, CORA_WINDOWS))
        assert vessel[tuple(p.centre)]
        assert p.mask.any() and set(np.unique(p.lesion_type)) <= {0, 1, 2}
        assert np.array_equal(p.mask, (p.lesion_type > 0).astype(np.uint8))


def test_inserted_lesions_have_coras_hu_without_noise_or_motion():
    hu, vessel = _vessel_phantom()
    cfg = SynthesisConfig(patch_size=(24, 24, 24), lesion_prob=1.0, max_lesions=1, noise=False,
                          max_rotation_deg=0.0, zoom_range=(1.0, 1.0), flip_prob=0.0)
    engine = LesionSynthesisEngine(cfg)
    seen = set()
    for seed in range(12):
        p = engine(hu, (1.0, 1.0, 1.0), candidate_voxels(vessel), np.random.default_rng(seed))
        (lesion,) = p.lesions
        calc = lesion["calcified"]
        seen.add(calc)
        lo, hi = (800, 1500) if calc else (30, 90)
        assert lo <= lesion["peak_hu"] <= hi
        inside = p.hu[p.mask > 0]
        # Occupancy >= 0.5 inside the mask: halfway or more from the background towards the plaque HU.
        if calc:
            assert inside.min() >= 0.5 * (40 + lesion["peak_hu"]) - 1 and inside.max() <= lesion["peak_hu"] + 1e-3
            assert (p.lesion_type[p.mask > 0] == LESION_CALCIFIED).all()
        else:
            assert inside.max() <= 0.5 * (400 + lesion["peak_hu"]) + 1 and inside.min() >= min(lo, 40) - 1e-3
        assert p.hu.max() <= max(400.0, lesion["peak_hu"]) + 1e-3
    assert seen == {True, False}


def test_lesion_free_patches_and_config_errors():
    hu, vessel = _vessel_phantom()
    engine = LesionSynthesisEngine(SynthesisConfig(patch_size=(16, 16, 16), lesion_prob=0.0))
    p = engine(hu, (1.0, 1.0, 1.0), candidate_voxels(vessel), np.random.default_rng(0))
    assert not p.mask.any() and p.lesions == []
    with pytest.raises(ValueError, match="lesion_prob"):
        SynthesisConfig(lesion_prob=1.5)
    with pytest.raises(ValueError, match="no candidate"):
        engine(hu, (1.0, 1.0, 1.0), np.array([], dtype=np.int64), np.random.default_rng(0))


# ------------------------------------------------------------------------------------ real CTA
@pytest.fixture(scope="module")
def cardiac_cta(fixtures_dir):
    folder = fixtures_dir / "ct" / "cardiac_cta"
    vol = read_ct(folder / "ct.nii.gz")
    heart = read_ct(folder / "heart.nii.gz").array > 0.5
    return vol, heart


def test_mask_less_fallback_finds_thin_contrast_structures_by_the_heart(cardiac_cta):
    vol, heart = cardiac_cta
    mask, source = vessel_candidates(vol.array, vol.spacing, heart)
    assert source == "thin-bright"
    values = vol.array[mask]
    assert values.min() >= 150 and values.max() <= 700
    # Thin structures, not the blood pool: far fewer voxels than all contrast-range voxels.
    assert mask.sum() < 0.5 * ((vol.array >= 150) & (vol.array <= 700) & heart).sum()


def test_lesions_inserted_into_the_real_cardiac_cta(cardiac_cta):
    vol, heart = cardiac_cta
    mask, _ = vessel_candidates(vol.array, vol.spacing, heart)
    cand = candidate_voxels(mask, margin=8)
    engine = LesionSynthesisEngine(SynthesisConfig(patch_size=(32, 32, 32), lesion_prob=1.0))
    n_calc = 0
    for seed in range(6):
        p = engine(vol.array, vol.spacing, cand, np.random.default_rng(seed))
        assert p.image.shape == (4, 32, 32, 32) and 0.0 <= p.image.min() and p.image.max() <= 1.0
        assert np.isfinite(p.hu).all() and p.mask.any()
        # CT HU stays in a scanner's range; the calcification window lights up on calcified plaque.
        assert -1100 < p.hu.min() and p.hu.max() < 3500
        calc = p.lesion_type == LESION_CALCIFIED
        if calc.any():
            n_calc += 1
            assert np.median(p.hu[calc]) > 500
            assert np.median(p.image[3][calc]) > np.median(p.image[3][p.mask == 0]) + 0.2
    assert n_calc >= 1


def test_noise_statistics_on_the_real_blood_pool(cardiac_cta):
    vol, heart = cardiac_cta
    pool = heart & (vol.array > 300) & (vol.array < 500)
    assert pool.sum() > 1000
    clean = vol.array[pool]
    noisy = beer_lambert_noise(clean, np.random.default_rng(0))
    added = noisy - clean
    assert abs(added.mean()) < 1.0
    # The added noise has the Beer-Lambert SD of the voxels' attenuation.
    expected = np.sqrt(np.mean(expected_noise_sd(clean) ** 2))
    assert added.std() == pytest.approx(expected, rel=0.05)
