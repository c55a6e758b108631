"""Behaviour of riskfm.ct.calcium.scoring that the first mutmut run (docs/testing.md) showed untested.

Every expected number below is worked out by hand from the definition in the module docstring:
Agatston = area x weight(peak HU) x increment / 3, volume = area x increment,
mass = c x volume / 1000 x mean HU.
"""

import re

import numpy as np
import pandas as pd
import pytest

from riskfm.ct.calcium.scoring import (
    ArteryScore,
    agatston_weight,
    calibration_factor_from_insert,
    score_calcium,
)

COLUMNS = ["lesion", "slice", "artery", "label", "n_pixels", "area_mm2", "peak_hu", "mean_hu", "weight",
           "agatston", "volume_mm3", "mass_mg", "centroid_y", "centroid_x"]


def phantom(shape=(3, 12, 12), dtype=np.float64):
    return np.full(shape, -50.0, dtype=dtype)


def exact(msg: str) -> str:
    """A pytest.raises pattern matching the whole message (so a changed wording fails)."""
    return "^" + re.escape(msg) + "$"


# --------------------------------------------------------------------------- agatston_weight
def test_agatston_weight_is_an_integer_array_with_inclusive_lower_band_edges():
    w = agatston_weight([-1000.0, 129.999, 130, 199.999, 200, 299.999, 300, 399.999, 400, 3000])
    assert w.dtype.kind == "i"
    assert w.tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]


# --------------------------------------------------------------------------- the lesion table
def _three_lesions():
    """Spacing (2, 0.5, 0.8): pixel 0.4 mm^2, increment 2 mm (Agatston factor 2/3)."""
    hu = phantom()
    # slice 2, lesion A: vertical bar rows 1-6 at column 3, 210 HU with one 310 HU pixel -> weight 3.
    hu[2, 1:7, 3] = 210.0
    hu[2, 4, 3] = 310.0
    # slice 2, lesion B: 2 x 2 at rows 2-3, columns 8-9, 150 HU -> weight 1. Its first pixel comes
    # after A's in raster order, but its centroid row (2.5) is above A's (3.5): B is listed first.
    hu[2, 2:4, 8:10] = 150.0
    # slice 0, lesion C: row 5, columns 1-3 at 400 / 450 / 500 HU -> weight 4, mean 450.
    hu[0, 5, 1:4] = [400.0, 450.0, 500.0]
    # slice 1: 2 px = 0.8 mm^2 < 1 mm^2 -> dropped from the table and every score.
    hu[1, 8, 8:10] = 900.0
    return hu


def test_lesion_table_columns_order_and_values():
    s = score_calcium(_three_lesions(), (2.0, 0.5, 0.8), calibration_factor=0.8)
    t = s.lesions
    assert list(t.columns) == COLUMNS
    assert list(t.index) == [0, 1, 2]
    assert t["lesion"].tolist() == [1, 2, 3]
    assert t["slice"].tolist() == [0, 2, 2]
    assert t["artery"].tolist() == ["", "", ""]          # no label map: no artery
    assert t["label"].tolist() == [0, 0, 0]
    for col in ("lesion", "slice", "label", "n_pixels", "weight"):
        assert t[col].dtype.kind == "i", col
    assert t["n_pixels"].tolist() == [3, 4, 6]
    assert t["area_mm2"].tolist() == pytest.approx([1.2, 1.6, 2.4])
    assert t["peak_hu"].tolist() == [500.0, 150.0, 310.0]
    assert t["mean_hu"].tolist() == pytest.approx([450.0, 150.0, (5 * 210 + 310) / 6])
    assert t["weight"].tolist() == [4, 1, 3]
    assert t["agatston"].tolist() == pytest.approx([1.2 * 4 * 2 / 3, 1.6 * 1 * 2 / 3, 2.4 * 3 * 2 / 3])
    assert t["volume_mm3"].tolist() == pytest.approx([2.4, 3.2, 4.8])
    assert t["mass_mg"].tolist() == pytest.approx([0.8 * 2.4e-3 * 450.0, 0.8 * 3.2e-3 * 150.0,
                                                   0.8 * 4.8e-3 * (5 * 210 + 310) / 6])
    assert t["centroid_y"].tolist() == pytest.approx([5.0, 2.5, 3.5])
    assert t["centroid_x"].tolist() == pytest.approx([2.0, 8.5, 3.0])
    assert s.agatston == pytest.approx((1.2 * 4 + 1.6 + 2.4 * 3) * 2 / 3)
    assert s.volume_mm3 == pytest.approx(2.4 + 3.2 + 4.8)
    assert s.mass_mg == pytest.approx(t["mass_mg"].sum())
    assert s.n_lesions == 3


def test_lesion_mass_is_a_float_nan_column_without_calibration():
    s = score_calcium(_three_lesions(), (2.0, 0.5, 0.8))
    assert s.lesions["mass_mg"].dtype.kind == "f"
    assert s.lesions["mass_mg"].isna().all()
    assert np.isnan(s.mass_mg)


def test_settings_record_the_conventions_used():
    s = score_calcium(_three_lesions(), (2.0, 0.5, 0.8))
    assert s.settings == {"threshold_hu": 130.0, "min_area_mm2": 1.0, "connectivity": 8,
                          "slice_increment_mm": 2.0, "pixel_area_mm2": pytest.approx(0.4),
                          "calibration_factor": None}
    s = score_calcium(_three_lesions(), (2.0, 0.5, 0.8), threshold=200, min_area_mm2=0.5, connectivity=4,
                      slice_increment=1.5, calibration_factor=0.9)
    assert s.settings == {"threshold_hu": 200.0, "min_area_mm2": 0.5, "connectivity": 4,
                          "slice_increment_mm": 1.5, "pixel_area_mm2": pytest.approx(0.4),
                          "calibration_factor": 0.9}


def test_to_dict_of_the_exam_and_of_an_artery():
    s = score_calcium(_three_lesions(), (2.0, 0.5, 0.8))
    d = s.to_dict()
    assert list(d) == ["agatston", "volume_mm3", "mass_mg", "n_lesions", "bucket", "cac_drs", "per_artery",
                       "settings"]
    assert d["agatston"] == pytest.approx(13.6 * 2 / 3) and d["volume_mm3"] == pytest.approx(10.4)
    assert np.isnan(d["mass_mg"]) and d["n_lesions"] == 3
    assert d["bucket"] == 1 and d["cac_drs"] == 1     # 9.07: bucket 1-10, CAC-DRS 1-99
    assert d["per_artery"] == {}
    assert d["settings"] == s.settings
    assert ArteryScore(12.5, 30.0, 4.0, 2).to_dict() == {"agatston": 12.5, "volume_mm3": 30.0, "mass_mg": 4.0,
                                                         "n_lesions": 2}


def test_min_area_is_inclusive():
    hu = phantom()
    hu[0, 2:4, 2:4] = 300.0          # 4 px x 0.25 mm^2 = 1.0 mm^2: kept
    hu[1, 2, 2:5] = 300.0            # 3 px = 0.75 mm^2: dropped
    s = score_calcium(hu, (3.0, 0.5, 0.5))
    assert s.lesions["n_pixels"].tolist() == [4]
    assert s.agatston == pytest.approx(3.0)


def test_connectivity_4_keeps_edge_neighbours_together():
    hu = phantom()
    hu[0, 2:4, 2:4] = 300.0                      # 2 x 2 square
    hu[0, 7, 6:9] = 300.0                        # a plus sign
    hu[0, 6:9, 7] = 300.0
    s = score_calcium(hu, (3.0, 1.0, 1.0), connectivity=4)
    assert s.lesions["n_pixels"].tolist() == [4, 5]


def test_slice_increment_below_one_mm_scales_agatston_and_volume():
    hu = phantom()
    hu[1, 2:4, 2:4] = 450.0                      # 4 mm^2, weight 4
    s = score_calcium(hu, (3.0, 1.0, 1.0), slice_increment=0.5)
    assert s.agatston == pytest.approx(16.0 * 0.5 / 3)
    assert s.volume_mm3 == pytest.approx(2.0)


# --------------------------------------------------------------------------- artery labels
def _labelled():
    hu = phantom()
    labels = np.zeros(hu.shape, np.int16)
    hu[0, 1:3, 1:3] = 200.0                      # LM: 4 mm^2, weight 2 -> 8
    labels[0, 1:3, 1:3] = 1
    hu[1, 5, 5] = 450.0                          # RCA: a single 1 mm^2 pixel, weight 4 -> 4
    labels[1, 5, 5] = 4
    hu[2, 8, 8:10] = 250.0                       # two pixels, one LAD and one LCX: tie -> LAD
    labels[2, 8, 8] = 2
    labels[2, 8, 9] = 3
    labels[2, 0:4, 6:12] = 2                     # labelled soft tissue (-50 HU): not calcium
    labels[2, 5, 0:3] = 3
    hu[2, 5, 0:3] = 129.0                        # labelled, just below 130 HU: not calcium
    return hu, labels


def test_labelled_lesions_per_artery_and_in_the_table():
    hu, labels = _labelled()
    s = score_calcium(hu, (3.0, 1.0, 1.0), labels=labels, calibration_factor=1.0)
    t = s.lesions
    assert t["artery"].tolist() == ["LM", "RCA", "LAD"]
    assert t["label"].tolist() == [1, 4, 2]
    assert t["n_pixels"].tolist() == [4, 1, 2]
    assert t["mean_hu"].tolist() == pytest.approx([200.0, 450.0, 250.0])
    per = {k: v.to_dict() for k, v in s.per_artery.items()}
    assert per == {
        "LM": {"agatston": 8.0, "volume_mm3": 12.0, "mass_mg": pytest.approx(12e-3 * 200), "n_lesions": 1},
        "LAD": {"agatston": 4.0, "volume_mm3": 6.0, "mass_mg": pytest.approx(6e-3 * 250), "n_lesions": 1},
        "LCX": {"agatston": 0.0, "volume_mm3": 0.0, "mass_mg": 0.0, "n_lesions": 0},
        "RCA": {"agatston": 4.0, "volume_mm3": 3.0, "mass_mg": pytest.approx(3e-3 * 450), "n_lesions": 1},
    }
    assert s.agatston == 16.0 and s.volume_mm3 == 21.0 and s.n_lesions == 3


def test_table_has_one_row_per_artery_then_total():
    hu, labels = _labelled()
    s = score_calcium(hu, (3.0, 1.0, 1.0), labels=labels)
    tab = s.table()
    assert tab.index.name == "artery"
    assert list(tab.index) == ["LM", "LAD", "LCX", "RCA", "total"]
    assert list(tab.columns) == ["agatston", "volume_mm3", "mass_mg", "n_lesions"]
    assert tab["agatston"].tolist() == [8.0, 4.0, 0.0, 4.0, 16.0]
    assert tab["volume_mm3"].tolist() == [12.0, 6.0, 0.0, 3.0, 21.0]
    assert tab["n_lesions"].tolist() == [1, 1, 0, 1, 3]
    assert tab["mass_mg"].isna().all()
    # Without a label map: the total row only.
    tab = score_calcium(hu, (3.0, 1.0, 1.0)).table()
    assert list(tab.index) == ["total"] and tab.index.name == "artery"
    assert tab.loc["total"].to_dict() == {"agatston": 16.0, "volume_mm3": 21.0, "mass_mg": pytest.approx(np.nan, nan_ok=True),
                                          "n_lesions": 3}


def test_float_label_maps_with_integral_values_score_like_integer_ones():
    hu, labels = _labelled()
    as_int = score_calcium(hu, (3.0, 1.0, 1.0), labels=labels)
    as_float = score_calcium(hu, (3.0, 1.0, 1.0), labels=labels.astype(np.float64))
    pd.testing.assert_frame_equal(as_float.lesions, as_int.lesions)
    assert as_float.table().equals(as_int.table())


@pytest.mark.parametrize("value", [2.5, 0.5, 3.999])
def test_non_integral_labels_are_refused(value):
    hu, labels = _labelled()
    labels = labels.astype(np.float64)
    labels[0, 0, 0] = value
    with pytest.raises(ValueError, match=exact("labels must hold integer artery labels 0-4")):
        score_calcium(hu, (3.0, 1.0, 1.0), labels=labels)


@pytest.mark.parametrize("value, found", [(5, "0..5"), (-1, "-1..4")])
def test_labels_outside_0_to_4_are_refused(value, found):
    hu, labels = _labelled()
    labels[0, 0, 0] = value
    with pytest.raises(ValueError, match=exact("labels must be 0 (none), 1 LM, 2 LAD, 3 LCX or 4 RCA; "
                                               f"found {found}")):
        score_calcium(hu, (3.0, 1.0, 1.0), labels=labels)


def test_an_empty_volume_scores_zero_with_and_without_labels():
    hu = np.zeros((0, 8, 8))
    for labels in (None, np.zeros((0, 8, 8), np.int64)):
        s = score_calcium(hu, (3.0, 1.0, 1.0), labels=labels)
        assert s.agatston == 0.0 and s.volume_mm3 == 0.0 and s.n_lesions == 0
        assert list(s.lesions.columns) == COLUMNS
    assert {k: v.n_lesions for k, v in s.per_artery.items()} == {"LM": 0, "LAD": 0, "LCX": 0, "RCA": 0}


# --------------------------------------------------------------------------- bad input
def _bad(**kwargs):
    args = {"hu": phantom(), "spacing": (3.0, 1.0, 1.0)}
    args.update(kwargs)
    return args


@pytest.mark.parametrize("args, match", [
    (_bad(hu=np.zeros((4, 4))), r"^hu must be a 3D array \[Z, Y, X\] in HU, got shape \(4, 4\)$"),
    (_bad(hu=np.zeros((2, 4, 4), complex)), r"^hu must be a real numeric array, got dtype complex128$"),
    (_bad(hu=np.zeros((2, 4, 4), bool)), r"^hu must be a real numeric array, got dtype bool$"),
    (_bad(spacing=3.0), r"^spacing must be 3 numbers \(z, y, x\) in mm, got 3\.0$"),
    (_bad(spacing=(3.0, 1.0, 0.0)), r"^spacing must be 3 positive finite numbers \(z, y, x\) in mm"),
    (_bad(spacing=(3.0, -1.0, 1.0)), r"^spacing must be 3 positive finite numbers"),
    (_bad(spacing=(3.0, np.nan, 1.0)), r"^spacing must be 3 positive finite numbers"),
    (_bad(spacing=(np.inf, 1.0, 1.0)), r"^spacing must be 3 positive finite numbers"),
    (_bad(threshold=np.nan), r"^threshold must be finite \(HU\), got nan$"),
    (_bad(min_area_mm2=-1.0), r"^min_area_mm2 must be >= 0, got -1\.0$"),
    (_bad(min_area_mm2=np.inf), r"^min_area_mm2 must be >= 0, got inf$"),
    (_bad(slice_increment=0.0), r"^slice_increment must be positive \(mm\), got 0\.0$"),
    (_bad(slice_increment=-1.0), r"^slice_increment must be positive \(mm\), got -1\.0$"),
    (_bad(slice_increment=np.inf), r"^slice_increment must be positive \(mm\), got inf$"),
    (_bad(calibration_factor=0.0), r"^calibration_factor must be positive \(mg/cm\^3 per HU\), got 0\.0$"),
    (_bad(calibration_factor=0.8, calibration_roi=np.ones((3, 12, 12), bool), calibration_density_mg_cm3=200.0),
     exact("give either calibration_factor or calibration_roi, not both")),
    (_bad(calibration_roi=np.ones((3, 12, 12), bool)),
     exact("calibration_roi needs calibration_density_mg_cm3 (mg HA / cm^3)")),
    (_bad(labels=np.zeros((2, 12, 12), np.int64)), exact("labels must have the shape of hu (3, 12, 12), got (2, 12, 12)")),
    (_bad(roi=np.zeros((3, 12), bool)), exact("roi must have the shape of hu (3, 12, 12), got (3, 12)")),
])
def test_bad_input_messages_name_the_argument(args, match):
    args = dict(args)                       # the parameters are shared between runs: do not pop them
    hu, spacing = args.pop("hu"), args.pop("spacing")
    with pytest.raises(ValueError, match=match):
        score_calcium(hu, spacing, **args)


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_non_finite_hu_is_refused(bad):
    hu = phantom()
    hu[1, 3, 3] = bad
    with pytest.raises(ValueError, match=exact("hu holds NaN or infinite values; fill them (e.g. with -1024 HU) "
                                               "before scoring")):
        score_calcium(hu, (3.0, 1.0, 1.0))


# --------------------------------------------------------------------------- calibration
def _insert_and_water():
    hu = phantom()
    insert = np.zeros(hu.shape, bool)
    insert[0, 0:3, 0:3] = True
    water = np.zeros(hu.shape, bool)
    water[0, 6:9, 6:9] = True
    hu[insert] = 250.0
    hu[water] = 10.0
    return hu, insert, water


def test_calibration_factor_subtracts_the_water_insert():
    hu, insert, water = _insert_and_water()
    assert calibration_factor_from_insert(hu, insert, 200.0, water_roi=water) == pytest.approx(200.0 / 240.0)
    assert calibration_factor_from_insert(hu, insert, 200.0) == pytest.approx(200.0 / 250.0)


def test_calibration_accepts_any_positive_density_and_any_positive_contrast():
    hu, insert, water = _insert_and_water()
    assert calibration_factor_from_insert(hu, insert, 0.5) == pytest.approx(0.5 / 250.0)
    hu[insert] = 10.5                                   # 0.5 HU above water
    assert calibration_factor_from_insert(hu, insert, 200.0, water_roi=water) == pytest.approx(400.0)


def test_calibration_of_a_float32_scan_is_computed_in_float64():
    hu, insert, _ = _insert_and_water()
    hu = hu.astype(np.float32)
    insert[0, 0:5, 0:5] = True                          # 25 voxels of float32(250.1)
    hu[insert] = 250.1
    assert calibration_factor_from_insert(hu, insert, 200.0) == pytest.approx(200.0 / float(np.float32(250.1)),
                                                                              rel=1e-12)


@pytest.mark.parametrize("insert_hu, match", [
    (5.0, exact("calibration insert mean HU (5.0) is not above water (10.0): check the insert ROI")),
    (10.0, exact("calibration insert mean HU (10.0) is not above water (10.0): check the insert ROI")),
])
def test_calibration_insert_not_above_water_is_refused(insert_hu, match):
    hu, insert, water = _insert_and_water()
    hu[insert] = insert_hu
    with pytest.raises(ValueError, match=match):
        calibration_factor_from_insert(hu, insert, 200.0, water_roi=water)


@pytest.mark.parametrize("density", [0.0, -1.0, np.inf, np.nan])
def test_calibration_density_must_be_positive_and_finite(density):
    hu, insert, _ = _insert_and_water()
    with pytest.raises(ValueError, match=r"^density_mg_cm3 must be positive, got "):
        calibration_factor_from_insert(hu, insert, density)


def test_calibration_roi_errors_name_the_roi():
    hu, insert, water = _insert_and_water()
    empty = np.zeros(hu.shape, bool)
    with pytest.raises(ValueError, match=exact("insert_roi is empty: the calibration insert has no voxels")):
        calibration_factor_from_insert(hu, empty, 200.0)
    with pytest.raises(ValueError, match=exact("water_roi is empty")):
        calibration_factor_from_insert(hu, insert, 200.0, water_roi=empty)
    with pytest.raises(ValueError, match=exact("insert_roi must have the shape of hu (3, 12, 12), got (3, 12)")):
        calibration_factor_from_insert(hu, insert[:, 0], 200.0)
    with pytest.raises(ValueError, match=exact("water_roi must have the shape of hu (3, 12, 12), got (3, 12)")):
        calibration_factor_from_insert(hu, insert, 200.0, water_roi=water[:, 0])
