"""Segmentation metrics (riskfm.evaluate.segmentation) against MONAI, skeleton clDice, lesion-level rule."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from scipy import ndimage

from riskfm.evaluate.segmentation import (
    LesionScores,
    cl_dice,
    dice,
    lesion_detection,
    mean_surface_distance,
    skeletonize_3d,
    thin_3d,
)


def _blobs(seed: int, shape=(18, 22, 20), density=0.97, grow=2):
    rng = np.random.default_rng(seed)
    return ndimage.binary_dilation(rng.random(shape) > density, iterations=grow)


def _pairs():
    for seed in range(4):
        ref = _blobs(seed)
        pred = ref.copy()
        rng = np.random.default_rng(100 + seed)
        pred ^= ndimage.binary_dilation(rng.random(ref.shape) > 0.99)  # add and remove pieces
        yield pred, ref


def _monai(metric, pred, ref, **kw):
    p = torch.from_numpy(pred.astype(np.float32))[None, None]
    g = torch.from_numpy(ref.astype(np.float32))[None, None]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(metric(p, g, **kw).item())


# ------------------------------------------------------------------------------------ vs MONAI
def test_dice_equals_monai():
    from monai.metrics import DiceMetric

    for pred, ref in _pairs():
        expected = _monai(DiceMetric(include_background=True), pred, ref)
        assert dice(pred, ref) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (2.0, 0.7, 0.9)])
@pytest.mark.parametrize("symmetric", [True, False])
def test_mean_surface_distance_equals_monai(spacing, symmetric):
    from monai.metrics import SurfaceDistanceMetric

    for pred, ref in _pairs():
        metric = SurfaceDistanceMetric(include_background=True, symmetric=symmetric)
        expected = _monai(metric, pred, ref, spacing=spacing)
        assert mean_surface_distance(pred, ref, spacing, symmetric=symmetric) == pytest.approx(expected, rel=1e-5)


def test_surface_distance_of_shifted_boxes_is_the_shift_in_mm():
    ref = np.zeros((20, 20, 20), bool)
    ref[5:12, 5:12, 5:12] = True
    pred = np.roll(ref, 2, axis=2)
    # Every face shifted by 2 voxels along x (0.5 mm each); the side faces partly coincide.
    assert mean_surface_distance(pred, ref, (1.0, 1.0, 0.5)) == pytest.approx(
        _monai(__import__("monai.metrics", fromlist=["x"]).SurfaceDistanceMetric(include_background=True,
                                                                                  symmetric=True),
               pred, ref, spacing=(1.0, 1.0, 0.5)), rel=1e-5)


def test_empty_masks_follow_one_rule():
    """Both empty: NaN (undefined); exactly one empty: 0. The same for Dice, per-label Dice and clDice."""
    from riskfm.evaluate.segmentation import dice_scores

    empty = np.zeros((5, 5, 5), bool)
    full = np.zeros((5, 5, 5), bool)
    full[2, 2, 2] = True
    assert np.isnan(dice(empty, empty))
    assert dice(full, empty) == 0.0 and dice(empty, full) == 0.0  # a false positive is 0, not NaN
    assert np.isnan(cl_dice(empty, empty)) and cl_dice(full, empty) == 0.0 and cl_dice(empty, full) == 0.0
    labels = dice_scores(full.astype(int) * 2, empty.astype(int))
    assert labels["2"] == 0.0 and np.isnan(labels["1"]) and labels["overall"] == 0.0
    assert np.isnan(mean_surface_distance(empty, full))
    with pytest.raises(ValueError, match="shape"):
        dice(full, np.zeros((4, 5, 5)))
    # The old import path is a re-export of the one implementation.
    from riskfm.ct import seg_metrics

    assert seg_metrics.dice is dice and seg_metrics.cl_dice is cl_dice


def test_empty_mask_rule_against_monai():
    """Where MONAI's DiceMetric is defined the values agree; its two empty-reference conventions bracket ours.

    Ours (nnU-Net's): both empty -> NaN, reference empty and prediction not -> 0. MONAI with
    ``ignore_empty=True`` gives NaN for both empty (as we do) but also for an empty reference with a
    non-empty prediction; with ``ignore_empty=False`` it gives 0 there (as we do) but 1 for both empty.
    """
    from monai.metrics import DiceMetric

    empty = np.zeros((6, 6, 6), bool)
    blob = np.zeros_like(empty)
    blob[1:4, 1:4, 1:4] = True
    shifted = np.roll(blob, 1, axis=0)
    cases = {"overlap": (shifted, blob), "pred_empty": (empty, blob), "ref_empty": (blob, empty),
             "both_empty": (empty, empty)}
    ignore = {k: _monai(DiceMetric(include_background=True, ignore_empty=True), *v) for k, v in cases.items()}
    keep = {k: _monai(DiceMetric(include_background=True, ignore_empty=False), *v) for k, v in cases.items()}
    ours = {k: dice(*v) for k, v in cases.items()}
    for k in ("overlap", "pred_empty"):  # reference not empty: one answer everywhere
        assert ours[k] == pytest.approx(ignore[k], abs=1e-6) == pytest.approx(keep[k], abs=1e-6)
    assert np.isnan(ours["both_empty"]) and np.isnan(ignore["both_empty"]) and keep["both_empty"] == 1.0
    assert ours["ref_empty"] == 0.0 == keep["ref_empty"] and np.isnan(ignore["ref_empty"])


# ------------------------------------------------------------------------------------ clDice
def _tube(shape=(30, 24, 24), radius=2.0, centre=(12.0, 12.0)):
    _, y, x = np.indices(shape)
    return (y - centre[0]) ** 2 + (x - centre[1]) ** 2 <= radius**2


def test_cldice_of_a_tube_with_itself_is_one_and_a_thinner_prediction_keeps_its_centreline():
    ref = _tube(radius=3.0)
    assert cl_dice(ref, ref) == pytest.approx(1.0)
    thin = _tube(radius=1.0)
    # Plain Dice punishes the thin prediction; clDice does not: its centreline lies in the reference
    # and the reference's centreline lies in it.
    assert dice(thin, ref) < 0.4
    assert cl_dice(thin, ref) == pytest.approx(1.0)
    broken = ref.copy()
    broken[10:20] = False  # a gap cuts the centreline
    assert cl_dice(broken, ref) < 0.85


def test_cldice_guards_an_empty_skeleton():
    box = np.zeros((10, 10, 10), bool)
    box[2:8, 4:6, 4:6] = True  # thin and even-width: skeletons may vanish
    value = cl_dice(box, box, skeletonize=lambda m: np.zeros_like(m))
    assert value == pytest.approx(1.0)
    assert np.isfinite(cl_dice(box, box))


def test_thinning_preserves_topology_and_gives_a_curve():
    ring = np.zeros((12, 40, 40), bool)
    y, x = np.indices((40, 40))
    r = np.hypot(y - 20, x - 20)
    ring[4:8] = (r > 8) & (r < 12)
    skel = thin_3d(ring)
    assert skel.sum() < 0.2 * ring.sum() and (skel <= ring).all()
    assert ndimage.label(skel, np.ones((3, 3, 3)))[1] == 1
    # The hole survives: the skeleton's projection along z still encloses the centre.
    proj = skel.any(axis=0)
    assert ndimage.label(~proj)[1] == 2
    blobs = ndimage.binary_opening(np.random.default_rng(0).random((16, 24, 24)) > 0.4)
    s = thin_3d(blobs)
    assert ndimage.label(s, np.ones((3, 3, 3)))[1] == ndimage.label(blobs, np.ones((3, 3, 3)))[1]
    tube = np.argwhere(thin_3d(_tube(radius=2.5)))
    # A curve along the tube's axis: within one voxel of it, about one voxel per slice.
    assert np.abs(tube[:, 1:] - 12).max() <= 1 and len(tube) <= 1.5 * 30


def test_cldice_matches_skimage_skeletons_where_the_centreline_is_unambiguous():
    skimage = pytest.importorskip("skimage.morphology")
    bar = np.zeros((24, 15, 15), bool)
    bar[3:21, 6:9, 6:9] = True  # odd width: the centre line is one voxel
    pred = np.zeros_like(bar)
    pred[3:21, 5:10, 6:9] = True
    ref_skel = skimage.skeletonize(bar) > 0
    mine = thin_3d(bar)
    assert (ref_skel[:, 7, 7].sum() > 0) and (mine[:, 7, 7].sum() > 0)
    theirs = cl_dice(pred, bar, skeletonize=lambda m: skimage.skeletonize(m) > 0)
    assert cl_dice(pred, bar, skeletonize=thin_3d) == pytest.approx(theirs, abs=0.02)
    assert skeletonize_3d(bar).any()


# ------------------------------------------------------------------------------------ lesion level
def _cube(shape, corner, size):
    m = np.zeros(shape, bool)
    m[tuple(slice(c, c + s) for c, s in zip(corner, size))] = True
    return m


def test_overlap_must_exceed_ten_voxels():
    shape = (20, 20, 20)
    ref = _cube(shape, (2, 2, 2), (4, 4, 4))  # 64 voxels
    ten = _cube(shape, (2, 2, 2), (1, 2, 5))  # exactly 10 voxels overlap... of which 8 inside the ref
    ten = _cube(shape, (2, 2, 2), (1, 2, 4)) | _cube(shape, (3, 2, 2), (1, 1, 2))  # 8 + 2 = 10 overlap
    assert (ten & ref).sum() == 10
    s = lesion_detection(ten, ref)
    assert (s.tp_pred, s.n_pred, s.detected, s.n_ref) == (0, 1, 0, 1)
    eleven = ten | _cube(shape, (3, 2, 4), (1, 1, 1))
    assert (eleven & ref).sum() == 11
    s = lesion_detection(eleven, ref)
    assert (s.tp_pred, s.detected) == (1, 1) and s.precision == 1.0 and s.recall == 1.0 and s.f1 == 1.0


def test_false_positive_missed_lesion_and_split_prediction():
    shape = (30, 30, 30)
    a = _cube(shape, (2, 2, 2), (4, 4, 4))
    b = _cube(shape, (20, 20, 20), (4, 4, 4))
    ref = a | b
    halves = _cube(shape, (2, 2, 2), (2, 4, 4)) | _cube(shape, (5, 2, 2), (1, 4, 4))  # two parts on lesion a
    fp = _cube(shape, (10, 10, 10), (3, 3, 3))
    s = lesion_detection(halves | fp, ref)
    # Both halves overlap a by > 10 voxels (32 and 16): two true-positive predictions, one FP;
    # lesion a found, lesion b missed.
    assert (s.tp_pred, s.n_pred, s.detected, s.n_ref) == (2, 3, 1, 2)
    assert s.precision == pytest.approx(2 / 3) and s.recall == pytest.approx(0.5)
    assert s.f1 == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
    total = s + lesion_detection(b, ref)
    assert (total.tp_pred, total.n_pred, total.detected, total.n_ref) == (3, 4, 2, 4)


def test_one_prediction_bridging_two_lesions_counts_once_and_finds_both():
    shape = (20, 20, 20)
    ref = _cube(shape, (2, 2, 2), (3, 3, 3)) | _cube(shape, (2, 2, 8), (3, 3, 3))
    bridge = _cube(shape, (2, 2, 2), (3, 3, 9))
    s = lesion_detection(bridge, ref)
    assert (s.tp_pred, s.n_pred, s.detected, s.n_ref) == (1, 1, 2, 2)


def test_empty_prediction_and_empty_reference():
    shape = (10, 10, 10)
    ref = _cube(shape, (1, 1, 1), (3, 3, 3))
    s = lesion_detection(np.zeros(shape, bool), ref)
    assert s.recall == 0.0 and np.isnan(s.precision) and s.f1 == 0.0
    none = lesion_detection(np.zeros(shape, bool), np.zeros(shape, bool))
    assert np.isnan(none.f1) and none.to_dict()["n_ref"] == 0
    assert isinstance(none + s, LesionScores)
