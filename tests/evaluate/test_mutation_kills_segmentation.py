"""Tests written for mutants of riskfm/evaluate/segmentation.py that survived mutmut (docs/testing.md).

References: MONAI's ``SurfaceDistanceMetric`` and hand-worked values for the surface distance; the
clDice formula of Shit et al. worked by hand with given skeletons; ``ndimage.label`` block by block
and a voxel-by-voxel simple-point test written here (Bertrand & Malandain's 26/6 rule) for the
thinning helpers; a sequential, one-voxel-at-a-time thinning written here for :func:`thin_3d`.
"""

from __future__ import annotations

import itertools
import re
import sys
import types
import warnings

import numpy as np
import pytest
from scipy import ndimage

import riskfm.evaluate.segmentation as seg
from riskfm.evaluate.segmentation import (
    LesionScores,
    cl_dice,
    dice,
    dice_scores,
    lesion_detection,
    mean_surface_distance,
    skeletonize_3d,
    thin_3d,
)

_FULL = np.ones((3, 3, 3), bool)
_CROSS = ndimage.generate_binary_structure(3, 1)
# The 18-neighbourhood: every neighbour but the 8 corners (and not the centre).
_N18_REF = np.array([[[abs(z) + abs(y) + abs(x) <= 2 for x in (-1, 0, 1)] for y in (-1, 0, 1)]
                     for z in (-1, 0, 1)])
_N18_REF[1, 1, 1] = False
_FACE_POS = [(0, 1, 1), (2, 1, 1), (1, 0, 1), (1, 2, 1), (1, 1, 0), (1, 1, 2)]


def full(text: str) -> str:
    return "^" + re.escape(text) + "$"


# ------------------------------------------------------------------------------ error messages
def test_mask_shape_errors_name_the_metric():
    a, b = np.ones((3, 3, 3)), np.ones((3, 3, 4))
    for fn, name in [(dice, "dice"), (cl_dice, "cl_dice"), (mean_surface_distance, "mean_surface_distance"),
                     (lesion_detection, "lesion_detection")]:
        with pytest.raises(ValueError, match=full(f"{name}: prediction shape (3, 3, 3) differs from "
                                                  "reference shape (3, 3, 4)")):
            fn(a, b)


def test_dice_scores_names_must_match_labels():
    m = np.zeros((2, 2), int)
    with pytest.raises(ValueError, match=full("names must have one entry per label")):
        dice_scores(m, m, labels=(1, 2), names=["LM"])


def test_skeletonize_3d_rejects_a_2d_mask_with_its_shape():
    with pytest.raises(ValueError, match=full("skeletonize_3d expects a [Z, Y, X] mask, got shape (4, 5)")):
        skeletonize_3d(np.ones((4, 5)))


# ------------------------------------------------------------------------------ dice_scores
def test_dice_scores_overall_is_any_nonzero_label_on_both_sides():
    # pred: label 1 on 2 voxels, label 2 on 1; ref: label 1 on 1 voxel (shared), label 2 on 2 voxels.
    pred = np.array([1, 1, 2, 0, 0, 0])
    ref = np.array([1, 0, 2, 2, 0, 0])
    out = dice_scores(pred, ref, labels=(1, 2), names=["a", "b"])
    # By hand: label 1: 2*1/(2+1); label 2: 2*1/(1+2); overall (nonzero): P={0,1,2}, G={0,2,3} -> 2*2/6.
    assert out == pytest.approx({"a": 2 / 3, "b": 2 / 3, "overall": 2 / 3})
    # Background (0) must never count as foreground, nor may label 1 be left out of the overall.
    only_one = dice_scores(np.array([1, 0, 0, 0, 0, 0]), np.array([1, 1, 0, 0, 0, 0]), labels=(1,))
    assert only_one["overall"] == pytest.approx(2 * 1 / 3)


# ------------------------------------------------------------------------------ skeletonize_3d
def test_skeletonize_3d_uses_scikit_image_when_installed(monkeypatch):
    seen = {}
    skel = np.zeros((5, 5, 5), bool)
    skel[1:4, 2, 2] = True

    def fake_skeletonize(mask):
        seen["mask"] = mask
        return skel.copy()

    morphology = types.ModuleType("skimage.morphology")
    morphology.skeletonize = fake_skeletonize
    package = types.ModuleType("skimage")
    package.morphology = morphology
    monkeypatch.setitem(sys.modules, "skimage", package)
    monkeypatch.setitem(sys.modules, "skimage.morphology", morphology)
    mask = np.zeros((5, 5, 5), np.uint8)
    mask[1:4, 1:4, 1:4] = 7
    out = skeletonize_3d(mask)
    assert seen["mask"].dtype == bool and np.array_equal(seen["mask"], mask > 0)
    assert out.dtype == bool and np.array_equal(out, skel)


def test_skeletonize_3d_falls_back_to_thin_3d_without_scikit_image(monkeypatch):
    monkeypatch.setitem(sys.modules, "skimage.morphology", None)  # import raises ImportError
    bar = np.zeros((9, 5, 5), bool)
    bar[1:8, 1:4, 1:4] = True
    assert np.array_equal(skeletonize_3d(bar.astype(np.uint8) * 3), thin_3d(bar))


# ------------------------------------------------------------------------------ cl_dice
def _pick(table):
    """A skeletonize callable that returns a fixed skeleton per mask (looked up by its bytes)."""
    return lambda m: table[np.asarray(m, bool).tobytes()]


def test_cl_dice_formula_by_hand_with_given_skeletons():
    p = np.zeros((1, 1, 8), bool)
    g = np.zeros((1, 1, 8), bool)
    p[..., 0:4] = True
    g[..., 2:6] = True
    s_p = np.zeros_like(p)
    s_p[..., [1, 2]] = True  # one of two skeleton voxels inside g: Tprec = 1/2
    s_g = np.zeros_like(g)
    s_g[..., [3, 4]] = True  # one of two inside p: Tsens = 1/2
    value = cl_dice(p, g, skeletonize=_pick({p.tobytes(): s_p, g.tobytes(): s_g}))
    assert value == pytest.approx(2 * 0.5 * 0.5 / (0.5 + 0.5))
    s_g2 = np.zeros_like(g)
    s_g2[..., [2, 3, 4, 5]] = True  # Tsens = 2/4 still; Tprec 1/4 with a longer predicted skeleton
    s_p2 = np.zeros_like(p)
    s_p2[..., [0, 1, 2, 3]] = True
    value = cl_dice(p, g, skeletonize=_pick({p.tobytes(): s_p2, g.tobytes(): s_g2}))
    assert value == pytest.approx(2 * 0.5 * 0.5 / 1.0)
    s_p3 = np.zeros_like(p)
    s_p3[..., [0, 1, 2]] = True  # Tprec = 1/3, Tsens = 1/2 -> 2 (1/3)(1/2) / (5/6) = 0.4
    value = cl_dice(p, g, skeletonize=_pick({p.tobytes(): s_p3, g.tobytes(): s_g}))
    assert value == pytest.approx(0.4)


def test_cl_dice_is_zero_when_neither_skeleton_lies_in_the_other_mask():
    p = np.zeros((1, 1, 8), bool)
    g = np.zeros((1, 1, 8), bool)
    p[..., 0:5] = True
    g[..., 3:8] = True  # the masks overlap (voxels 3, 4), the skeletons do not reach across
    s_p = np.zeros_like(p)
    s_p[..., 1] = True
    s_g = np.zeros_like(g)
    s_g[..., 6] = True
    assert cl_dice(p, g, skeletonize=_pick({p.tobytes(): s_p, g.tobytes(): s_g})) == 0.0


# ------------------------------------------------------------------------------ surface distance
def _monai_msd(pred, ref, symmetric):
    torch = pytest.importorskip("torch")
    metrics = pytest.importorskip("monai.metrics")
    p = torch.from_numpy(pred.astype(np.float32))[None, None]
    g = torch.from_numpy(ref.astype(np.float32))[None, None]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(metrics.compute_average_surface_distance(p, g, symmetric=symmetric).item())


def test_mean_surface_distance_is_symmetric_by_default():
    ref = np.zeros((12, 12, 12), bool)
    ref[3:9, 3:9, 3:9] = True
    pred = np.zeros_like(ref)
    pred[4:7, 4:7, 4:7] = True  # inside the reference: the two directions differ
    both = _monai_msd(pred, ref, symmetric=True)
    one_way = _monai_msd(pred, ref, symmetric=False)
    assert abs(both - one_way) > 0.1
    assert mean_surface_distance(pred, ref) == pytest.approx(both, abs=1e-6)
    assert mean_surface_distance(pred, ref, symmetric=False) == pytest.approx(one_way, abs=1e-6)


def test_mean_surface_distance_crop_keeps_every_voxel():
    # argwhere's first voxels do not hold the smallest coordinate on every axis: the crop must
    # use the per-axis minimum over all voxels, or the reference pixel at column 1 is cut away.
    pred = np.zeros((8, 9), bool)
    ref = np.zeros((8, 9), bool)
    pred[2, 5] = pred[3, 6] = True
    ref[4, 1] = True
    by_hand = (np.sqrt(20) + np.sqrt(26) + np.sqrt(20)) / 3  # p->g: sqrt20, sqrt26; g->p: sqrt20
    assert mean_surface_distance(pred, ref) == pytest.approx(by_hand)
    assert mean_surface_distance(pred, ref) == pytest.approx(_monai_msd(pred, ref, True), abs=1e-6)


# ------------------------------------------------------------------------------ lesion level
def test_lesion_scores_to_dict_keys_and_values():
    s = LesionScores(tp_pred=2, n_pred=4, detected=1, n_ref=3)
    assert s.to_dict() == pytest.approx({"precision": 0.5, "recall": 1 / 3, "f1": 2 * 0.5 / 3 / (0.5 + 1 / 3),
                                         "tp_pred": 2, "n_pred": 4, "detected": 1, "n_ref": 3})
    assert list(s.to_dict()) == ["precision", "recall", "f1", "tp_pred", "n_pred", "detected", "n_ref"]


def test_lesions_are_26_connected_by_default():
    # Two 3x3x3 cubes touching only at a corner: one lesion with 26-connectivity, two with 6.
    m = np.zeros((10, 10, 10), bool)
    m[1:4, 1:4, 1:4] = True
    m[4:7, 4:7, 4:7] = True
    s = lesion_detection(m, m)
    assert (s.tp_pred, s.n_pred, s.detected, s.n_ref) == (1, 1, 1, 1)
    s6 = lesion_detection(m, m, connectivity=1)
    assert (s6.tp_pred, s6.n_pred, s6.detected, s6.n_ref) == (2, 2, 2, 2)
    # A prediction that is one 26-connected lesion against a reference that is one as well,
    # built differently on each side (only the reference's components join at a corner).
    pred = np.zeros_like(m)
    pred[1:7, 1:7, 1:7] = True
    s = lesion_detection(pred, m)
    assert (s.tp_pred, s.n_pred, s.detected, s.n_ref) == (1, 1, 1, 1)
    s = lesion_detection(m, pred)
    assert (s.tp_pred, s.n_pred, s.detected, s.n_ref) == (1, 1, 1, 1)


# ------------------------------------------------------------------------------ thinning helpers
def test_components_per_block_matches_ndimage_label_block_by_block():
    rng = np.random.default_rng(0)
    blocks = rng.random((40, 3, 3, 3)) > 0.6
    blocks[-1] = False  # an empty last block still gets a count (0)
    blocks[5] = False
    for structure in (_FULL, _CROSS):
        labels, counts = seg._components_per_block(blocks, structure)
        assert counts.shape == (40,) and counts.dtype.kind == "i"
        for b, lab, n in zip(blocks, labels, counts):
            ref_lab, ref_n = ndimage.label(b, structure=structure)
            assert n == ref_n
            assert np.array_equal(lab > 0, b)
            # same partition: one label per reference component, distinct across components
            pairs = {(int(r), int(x)) for r, x in zip(ref_lab[b], lab[b])}
            assert len(pairs) == ref_n == len({x for _, x in pairs})
    labels, counts = seg._components_per_block(np.zeros((3, 3, 3, 3), bool), _FULL)
    assert counts.tolist() == [0, 0, 0] and counts.dtype.kind == "i" and not labels.any()


def _simple_ref(cube: np.ndarray) -> bool:
    """Bertrand & Malandain's rule, one cube at a time."""
    obj = cube.copy()
    obj[1, 1, 1] = False
    if ndimage.label(obj, structure=_FULL)[1] != 1:
        return False
    lab, _ = ndimage.label(~cube & _N18_REF, structure=_CROSS)
    return len({int(lab[f]) for f in _FACE_POS} - {0}) == 1


def test_simple_points_match_a_cube_by_cube_reference():
    rng = np.random.default_rng(1)
    cubes = np.concatenate([rng.random((400, 3, 3, 3)) > d for d in (0.2, 0.4, 0.6, 0.8)])
    cubes[:, 1, 1, 1] = True
    cubes[:20] = True  # interior points: no background face at all (not simple)
    cubes[20:40, :, :, :] = False  # isolated points (not simple)
    cubes[20:40, 1, 1, 1] = True
    mine = seg._simple_points(cubes)
    ref = np.array([_simple_ref(c) for c in cubes])
    assert mine.dtype == bool and np.array_equal(mine, ref)
    assert 100 < ref.sum() < len(ref) - 100  # both kinds are well represented
    # batches mixing simple and non-simple cubes give the same answer as one cube at a time
    for i in range(0, 60):
        assert seg._simple_points(cubes[i:i + 1])[0] == ref[i]


def _thin_ref(mask: np.ndarray) -> np.ndarray:
    """Sequential thinning, one voxel at a time, in the order thin_3d's docstring gives."""
    img = np.pad(mask > 0, 1)
    while True:
        changed = False
        for axis, step in [(0, -1), (0, 1), (1, -1), (1, 1), (2, -1), (2, 1)]:
            for parity in itertools.product((0, 1), repeat=3):
                for z, y, x in np.argwhere(img):
                    if (z % 2, y % 2, x % 2) != parity:
                        continue
                    nb = [z, y, x]
                    nb[axis] += step
                    if img[tuple(nb)]:
                        continue  # not a border voxel in this direction
                    cube = img[z - 1:z + 2, y - 1:y + 2, x - 1:x + 2]
                    if cube.sum() - 1 > 1 and _simple_ref(cube):  # not an end point, and simple
                        img[z, y, x] = False
                        changed = True
        if not changed:
            return img[1:-1, 1:-1, 1:-1]


def _shapes():
    bar = np.zeros((10, 6, 6), bool)
    bar[1:9, 1:4, 1:5] = True
    ring = np.zeros((4, 10, 10), bool)
    ring[1:3, 1:9, 1:9] = True
    ring[1:3, 4:6, 4:6] = False  # a tunnel through the z axis
    blob = ndimage.binary_opening(np.random.default_rng(3).random((8, 9, 10)) > 0.35)
    # A lone voxel in subfield 0 (padded index (2, 2, 2)) is the only border voxel of that subfield
    # facing down, and an end point; the bar's lowest layer lies in the odd-z subfields after it.
    dot_bar = np.zeros((12, 8, 8), bool)
    dot_bar[1, 1, 1] = True
    dot_bar[4:10, 3:6, 3:7] = True
    return {"bar": bar, "ring": ring, "blob": blob, "dot_bar": dot_bar}


@pytest.mark.parametrize("name", ["bar", "ring", "blob", "dot_bar"])
def test_thin_3d_equals_one_voxel_at_a_time_thinning(name):
    mask = _shapes()[name]
    skel = thin_3d(mask)
    assert skel.dtype == bool and skel.shape == mask.shape
    assert np.array_equal(skel, _thin_ref(mask))
    # topology kept: object components and background components (cavities) are unchanged
    assert ndimage.label(skel, _FULL)[1] == ndimage.label(mask, _FULL)[1]
    assert ndimage.label(~np.pad(skel, 1), _CROSS)[1] == ndimage.label(~np.pad(mask, 1), _CROSS)[1]
    # thin: no voxel left that is simple and not an end point
    padded = np.pad(skel, 1)
    for z, y, x in np.argwhere(padded):
        cube = padded[z - 1:z + 2, y - 1:y + 2, x - 1:x + 2]
        assert cube.sum() - 1 <= 1 or not _simple_ref(cube)


def test_thin_3d_keeps_end_points_of_a_line():
    line = np.zeros((9, 3, 3), bool)
    line[1:8, 1, 1] = True
    assert np.array_equal(thin_3d(line), line)


def test_thin_3d_stops_after_the_first_pass_that_changes_nothing(monkeypatch):
    calls = []
    original = seg._simple_points

    def counting(cubes):
        calls.append(len(cubes))
        return original(cubes)

    monkeypatch.setattr(seg, "_simple_points", counting)
    line = np.zeros((9, 3, 3), bool)
    line[1:8, 1, 1] = True
    thin_3d(line)
    # Nothing is removable: one pass (6 directions x 8 subfields at most) and the loop ends.
    assert 0 < len(calls) <= 48


def test_mean_surface_distance_spacing_on_2d_masks():
    # The default spacing used to be (1, 1, 1), which made every 2-D call fail inside numpy.
    pred = np.zeros((6, 8), bool)
    ref = np.zeros((6, 8), bool)
    pred[1, 1] = True
    ref[1, 4] = True  # 3 columns apart
    assert mean_surface_distance(pred, ref) == pytest.approx(3.0)
    assert mean_surface_distance(pred, ref, 0.5) == pytest.approx(1.5)
    assert mean_surface_distance(pred, ref, (2.0, 0.5)) == pytest.approx(1.5)
    assert mean_surface_distance(pred, ref, (0.5, 2)) == pytest.approx(6.0)
    with pytest.raises(ValueError, match=full("mean_surface_distance: spacing [1.0, 1.0, 1.0] needs one entry "
                                              "per axis of the 2-D masks (or a single number)")):
        mean_surface_distance(pred, ref, (1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match=full("mean_surface_distance: spacing [[1.0, 1.0]] needs one entry "
                                              "per axis of the 2-D masks (or a single number)")):
        mean_surface_distance(pred, ref, [[1.0, 1.0]])
