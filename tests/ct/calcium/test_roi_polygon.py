"""The heart ROI's polygon rasterisation (numpy even-odd test, formerly matplotlib.path)."""

import numpy as np
import pytest
from scipy.spatial import ConvexHull

from riskfm.ct.calcium.roi import _hull_mask, _polygon_mask


def _half_planes(mask2d):
    """Independent reference: pixels inside or on the convex hull by its half-plane equations."""
    pts = np.argwhere(mask2d)
    hull = ConvexHull(pts)
    grid = np.argwhere(np.ones(mask2d.shape, bool))
    inside = np.all(grid @ hull.equations[:, :2].T + hull.equations[:, 2] <= 1e-9, axis=1)
    return inside.reshape(mask2d.shape)


def test_hand_made_polygons():
    square = _polygon_mask([(1, 1), (1, 4), (4, 4), (4, 1)], (6, 6))
    expected = np.zeros((6, 6), bool)
    expected[1:5, 1:5] = True  # the edges are in
    assert np.array_equal(square, expected)
    tri = _polygon_mask([(0, 0), (4, 0), (0, 4)], (5, 5))
    rr, cc = np.indices((5, 5))
    assert np.array_equal(tri, rr + cc <= 4)
    # Concave: an L shape; the notch stays out (even-odd rule).
    ell = _polygon_mask([(0, 0), (0, 2), (2, 2), (2, 6), (4, 6), (4, 0)], (5, 7))
    assert ell[3, 5] and ell[1, 1] and not ell[1, 4]
    # Clipped to the image, empty polygon empty.
    assert _polygon_mask([(-2, -2), (-2, 10), (10, 10), (10, -2)], (3, 3)).all()
    assert not _polygon_mask(np.zeros((0, 2)), (3, 3)).any()


@pytest.mark.parametrize("seed", range(5))
def test_hull_mask_matches_the_half_plane_reference(seed):
    rng = np.random.default_rng(seed)
    for _ in range(20):
        shape = tuple(rng.integers(5, 80, 2))
        mask = rng.random(shape) < rng.uniform(0.005, 0.2)
        if mask.sum() < 3:
            continue
        try:
            ref = _half_planes(mask)
        except Exception:  # collinear points: no hull
            assert not _hull_mask(mask).any()
            continue
        got = _hull_mask(mask)
        assert got.dtype == mask.dtype and np.array_equal(got, ref)


def test_degenerate_masks_give_nothing():
    line = np.zeros((8, 8), bool)
    line[2, 1:7] = True
    assert not _hull_mask(line).any()
    two = np.zeros((8, 8), bool)
    two[1, 1] = two[5, 5] = True
    assert not _hull_mask(two).any()
