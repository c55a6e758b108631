"""score_calcium on phantoms with analytically known scores, and against an independent reference."""

import numpy as np
import pytest

from riskfm.ct.calcium import (
    agatston_bucket,
    agatston_weight,
    cac_drs_category,
    calibration_factor_from_insert,
    score_calcium,
)


def phantom(shape=(4, 40, 40)):
    return np.full(shape, -50.0, dtype=np.float32)


def test_weights_follow_peak_hu_bands():
    assert agatston_weight([129.9, 130, 199.9, 200, 299, 300, 399.9, 400, 2000]).tolist() == [0, 1, 1, 2, 2, 3, 3, 4, 4]


@pytest.mark.parametrize("peak, weight", [(150, 1), (250, 2), (350, 3), (800, 4)])
def test_square_lesion_scores_area_times_weight(peak, weight):
    hu = phantom()
    hu[1, 10:14, 10:15] = 140.0          # 20 pixels
    hu[1, 12, 12] = peak                  # the peak decides the weight, not the mean
    s = score_calcium(hu, (3.0, 0.5, 0.5))
    area = 20 * 0.25
    assert s.agatston == pytest.approx(area * weight)
    assert s.volume_mm3 == pytest.approx(area * 3.0)
    assert len(s.lesions) == 1 and s.lesions["weight"].iloc[0] == weight


def test_lesions_are_per_slice_and_min_area_drops_small_ones():
    hu = phantom()
    hu[0:3, 5:8, 5:8] = 450.0   # one 3D blob = three 2D lesions of 9 px
    hu[3, 30, 30] = 900.0       # 1 px of 0.25 mm^2 < 1 mm^2: ignored
    s = score_calcium(hu, (3.0, 0.5, 0.5))
    assert s.n_lesions == 3
    assert s.agatston == pytest.approx(3 * 9 * 0.25 * 4)
    assert score_calcium(hu, (3.0, 0.5, 0.5), min_area_mm2=0.0).n_lesions == 4


def test_connectivity_8_joins_diagonal_pixels_4_does_not():
    hu = phantom()
    for k in range(6):
        hu[0, 10 + k, 10 + k] = 300.0   # a diagonal line of 6 px of 1 mm^2
    assert score_calcium(hu, (3.0, 1.0, 1.0)).n_lesions == 1
    assert score_calcium(hu, (3.0, 1.0, 1.0), connectivity=4).n_lesions == 6


def test_slice_increment_scales_agatston_not_by_thickness():
    hu = phantom()
    hu[1, 10:12, 10:12] = 500.0
    base = score_calcium(hu, (3.0, 1.0, 1.0)).agatston
    assert base == pytest.approx(16.0)
    assert score_calcium(hu, (1.5, 1.0, 1.0)).agatston == pytest.approx(8.0)
    assert score_calcium(hu, (3.0, 1.0, 1.0), slice_increment=2.0).agatston == pytest.approx(16.0 * 2 / 3)


def test_per_artery_majority_label_roi_and_mass():
    hu = phantom()
    hu[1, 10:12, 10:14] = 300.0          # 8 px: 5 labelled LAD, 3 labelled LCX -> LAD
    hu[2, 20:22, 20:22] = 220.0          # RCA
    hu[2, 30:32, 30:32] = 900.0          # unlabelled (aortic): does not count with labels
    labels = np.zeros(hu.shape, np.uint8)
    labels[1, 10:12, 10:14] = 3
    labels[1, 10:12, 10:12] = 2
    labels[1, 10, 12] = 2
    labels[2, 20:22, 20:22] = 4
    s = score_calcium(hu, (3.0, 1.0, 1.0), labels=labels, calibration_factor=0.8)
    assert s.per_artery["LAD"].agatston == pytest.approx(8 * 3)
    assert s.per_artery["LCX"].agatston == 0 and s.per_artery["LM"].n_lesions == 0
    assert s.per_artery["RCA"].agatston == pytest.approx(4 * 2)
    assert s.agatston == pytest.approx(32)
    # mass = c x volume (cm^3) x mean HU
    assert s.per_artery["RCA"].mass_mg == pytest.approx(0.8 * (4 * 3.0 / 1000) * 220.0)
    assert set(s.table().index) == {"LM", "LAD", "LCX", "RCA", "total"}
    roi = np.zeros(hu.shape, bool)
    roi[2] = True
    assert score_calcium(hu, (3.0, 1.0, 1.0), roi=roi).agatston == pytest.approx(4 * 2 + 4 * 4)
    assert np.isnan(score_calcium(hu, (3.0, 1.0, 1.0)).mass_mg)  # no calibration, no mass


def test_calibration_from_insert():
    hu = phantom()
    insert = np.zeros(hu.shape, bool)
    insert[0, 0:5, 0:5] = True
    hu[insert] = 250.0
    c = calibration_factor_from_insert(hu, insert, 200.0)
    assert c == pytest.approx(0.8)
    s1 = score_calcium(hu, (3.0, 1.0, 1.0), calibration_roi=insert, calibration_density_mg_cm3=200.0)
    s2 = score_calcium(hu, (3.0, 1.0, 1.0), calibration_factor=0.8)
    assert s1.mass_mg == pytest.approx(s2.mass_mg)


@pytest.mark.parametrize("kwargs, match", [
    ({"spacing": (3.0, 1.0)}, "spacing"),
    ({"labels": np.full((4, 40, 40), 7)}, "labels must be"),
    ({"roi": np.zeros((2, 2, 2), bool)}, "roi must have the shape"),
    ({"connectivity": 6}, "connectivity"),
    ({"calibration_factor": -1.0}, "calibration_factor"),
])
def test_bad_input_raises_clear_errors(kwargs, match):
    args = {"spacing": (3.0, 1.0, 1.0)}
    args.update(kwargs)
    spacing = args.pop("spacing")
    with pytest.raises(ValueError, match=match):
        score_calcium(phantom(), spacing, **args)
    bad = phantom()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        score_calcium(bad, (3.0, 1.0, 1.0))


def test_categories_at_their_boundaries():
    assert agatston_bucket([0, 0.1, 10, 10.01, 100, 100.5, 400, 401]).tolist() == [0, 1, 1, 2, 2, 3, 3, 4]
    assert cac_drs_category([0, 1, 99, 99.9, 100, 299, 300]).tolist() == [0, 1, 1, 1, 2, 2, 3]
    assert agatston_bucket(5) == 1 and isinstance(cac_drs_category(300.0), int)
    with pytest.raises(ValueError, match="negative"):
        agatston_bucket([-1])


# --------------------------------------------------------- the 130 HU threshold, exactly
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int16])
def test_a_voxel_at_exactly_130_hu_is_calcium(dtype):
    """The clinical definition is HU >= 130: a lesion at exactly 130 HU counts, with weight 1."""
    hu = phantom().astype(dtype)
    hu[1, 10:12, 10:12] = 130             # 4 px of 1 mm^2 at exactly the threshold
    s = score_calcium(hu, (3.0, 1.0, 1.0))
    assert s.n_lesions == 1 and s.lesions["n_pixels"].iloc[0] == 4 and s.lesions["weight"].iloc[0] == 1
    assert s.agatston == 4.0 and s.volume_mm3 == 12.0


@pytest.mark.parametrize("below", [129.99, 129.0])
def test_a_voxel_just_below_130_hu_is_not_calcium(below):
    hu = phantom()
    hu[1, 10:12, 10:12] = below
    assert float(hu[1, 10, 10]) < 130.0   # still below 130 after the float32 round trip
    s = score_calcium(hu, (3.0, 1.0, 1.0))
    assert s.n_lesions == 0 and s.agatston == 0.0 and s.volume_mm3 == 0.0


def test_rim_pixels_at_exactly_130_hu_add_to_the_lesion_area():
    hu = phantom()
    hu[1, 10:12, 10:12] = 250.0           # core: 4 px, weight 2
    hu[1, 12, 10:12] = 130.0              # rim at the threshold: counts -> 6 px
    hu[1, 9, 10:12] = 129.99              # rim just below: does not
    s = score_calcium(hu, (3.0, 1.0, 1.0))
    assert s.lesions["n_pixels"].tolist() == [6]
    assert s.agatston == 6.0 * 2
    # A threshold given explicitly is inclusive too.
    hu[1, 12, 10:12] = 250.0
    assert score_calcium(hu, (3.0, 1.0, 1.0), threshold=250.0).lesions["n_pixels"].tolist() == [6]


# --------------------------------------------------------- independent reference on real scans
def _components_8(mask2d):
    """8-connected components of a 2D mask by a plain flood fill (no scipy): lists of (y, x)."""
    todo = set(zip(*(idx.tolist() for idx in np.nonzero(mask2d))))
    components = []
    while todo:
        stack = [todo.pop()]
        component = []
        while stack:
            y, x = stack.pop()
            component.append((y, x))
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    if (y + dy, x + dx) in todo:
                        todo.remove((y + dy, x + dx))
                        stack.append((y + dy, x + dx))
        components.append(component)
    return components


def reference_agatston(hu, spacing, threshold=130.0, min_area=1.0):
    """The definition written out: per slice, flood-filled 8-connected lesions, area x peak weight.

    Independent of riskfm and of the scipy labelling riskfm uses.
    """
    pixel = spacing[1] * spacing[2]
    total = 0.0
    for z in range(hu.shape[0]):
        plane = hu[z]
        for component in _components_8(plane >= threshold):
            area = len(component) * pixel
            if area < min_area:
                continue
            peak = max(float(plane[y, x]) for y, x in component)
            w = 1 if peak < 200 else 2 if peak < 300 else 3 if peak < 400 else 4
            total += area * w
    return total * spacing[0] / 3.0


def test_reference_flood_fill_on_a_phantom():
    hu = phantom()
    for k in range(6):
        hu[0, 10 + k, 10 + k] = 300.0          # diagonal: one 8-connected lesion of 6 mm^2, weight 3
    hu[1, 5:7, 5:7] = 130.0                    # 4 mm^2 at exactly 130 HU, weight 1
    hu[1, 20, 20] = 900.0                      # 1 px = 1 mm^2 (kept: not < 1 mm^2), weight 4
    assert reference_agatston(hu, (3.0, 1.0, 1.0)) == 6 * 3 + 4 * 1 + 1 * 4
    assert reference_agatston(hu, (3.0, 0.5, 0.5)) == (6 * 3 + 4 * 1) * 0.25  # the 0.25 mm^2 px is dropped


@pytest.mark.parametrize("rel", ["ct/dicom_series", "ct/cardiac_cta/ct.nii.gz"])
def test_matches_independent_reference_on_real_scans(fixtures_dir, rel):
    from riskfm.ct import read_ct

    vol = read_ct(fixtures_dir / rel)
    hu = vol.array
    if rel.endswith("nii.gz"):
        heart = read_ct(fixtures_dir / "ct/cardiac_cta/heart.nii.gz").array > 0.5
        hu = np.where(heart, hu, -1000.0).astype(np.float32)  # contrast CTA: chambers only, a hard case
    # Both scans hold voxels at exactly 130 HU, so the comparison also pins the inclusive threshold.
    assert np.any(hu == 130.0)
    ref = reference_agatston(hu, vol.spacing)
    got = score_calcium(hu, vol.spacing).agatston
    assert ref > 0
    # The same lesions and weights give the same sum up to the order of the additions.
    assert got == pytest.approx(ref, rel=1e-9)
