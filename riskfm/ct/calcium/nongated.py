"""Non-gated chest CT: calcium buckets from per-slice summaries with gradient-boosted trees.

Seed 003's non-gated model: for each axial slice a summary vector of the *predicted* calcium --
calcified area (mm^2), max HU in it, area weighted by each lesion's max HU (sum of area x peak HU
/ 1000) and the number of lesions; the five slices with the largest predicted area are concatenated
(20 values, largest first, zero-padded for short scans) and a gradient-boosted tree classifier
(scikit-learn) predicts the bucket (0, 1-10, 11-100, 101-400, >400). Trees are used because
non-gated scans blur and miss-register calcium: the per-slice Agatston sum is biased, and a learned
mapping from the summaries corrects it without assuming a form.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import ndimage

from riskfm.ct.calcium.categories import agatston_bucket

__all__ = ["N_TOP_SLICES", "SLICE_FEATURES", "BucketClassifier", "exam_features", "slice_summaries"]

#: Names of the four per-slice summary values.
SLICE_FEATURES: tuple[str, ...] = ("area_mm2", "max_hu", "area_x_peak_hu", "n_lesions")
#: Slices kept per exam (those with the largest predicted calcified area).
N_TOP_SLICES = 5


def slice_summaries(hu: Any, calcium: Any, spacing: Sequence[float], *, connectivity: int = 8) -> np.ndarray:
    """Per-slice summaries of a predicted calcium mask.

    Parameters
    ----------
    hu : array-like [Z, Y, X]
        CT in HU.
    calcium : array-like [Z, Y, X]
        Predicted calcium (bool, or an artery label map where > 0 is calcium).
    spacing : (z, y, x) mm
    connectivity : {8, 4}

    Returns
    -------
    np.ndarray
        float64 ``[Z, 4]``: area (mm^2), max HU (0 when empty), sum over lesions of area x peak HU
        / 1000 (mm^2 x kHU), lesion count.
    """
    arr = np.asarray(hu, dtype=np.float64)
    mask = np.asarray(calcium) > 0
    if arr.ndim != 3 or mask.shape != arr.shape:
        raise ValueError(f"hu and calcium must be [Z, Y, X] of one shape, got {arr.shape} and {mask.shape}")
    pixel = float(spacing[1]) * float(spacing[2])
    st = np.ones((3, 3), bool) if connectivity == 8 else ndimage.generate_binary_structure(2, 1)
    out = np.zeros((arr.shape[0], 4))
    for z in np.flatnonzero(mask.any(axis=(1, 2))):
        lab, n = ndimage.label(mask[z], structure=st)
        idx = np.arange(1, n + 1)
        areas = ndimage.sum_labels(np.ones_like(arr[z]), lab, idx) * pixel
        peaks = np.asarray(ndimage.maximum(arr[z], lab, idx))
        out[z] = (areas.sum(), peaks.max(), float(np.sum(areas * peaks)) / 1000.0, n)
    return out


def exam_features(summaries: np.ndarray, n_top: int = N_TOP_SLICES) -> np.ndarray:
    """Return the exam vector: the ``n_top`` slices with the largest calcified area, largest first.

    With the default ``n_top`` (5) the vector has 20 values.

    Parameters
    ----------
    summaries : np.ndarray [Z, 4]
        Output of :func:`slice_summaries` (columns :data:`SLICE_FEATURES`).
    n_top : int, default 5
        Slices kept (:data:`N_TOP_SLICES`).

    Returns
    -------
    np.ndarray
        float64 ``[n_top * 4]``: the chosen slices' four summaries (area mm^2, max HU, area x peak
        HU / 1000, lesion count) one slice after another; slices beyond the scan are zeros.
    """
    s = np.asarray(summaries, dtype=np.float64)
    if s.ndim != 2 or s.shape[1] != 4:
        raise ValueError(f"summaries must be [Z, 4], got {s.shape}")
    order = np.argsort(-s[:, 0], kind="stable")[:n_top]
    out = np.zeros((n_top, 4))
    out[: order.size] = s[order]
    return out.ravel()


class BucketClassifier:
    """Gradient-boosted trees mapping exam vectors to calcium buckets 0-4.

    Parameters
    ----------
    n_estimators, max_depth, learning_rate : passed to
        ``sklearn.ensemble.GradientBoostingClassifier``.
    seed : int

    Attributes
    ----------
    model_ : GradientBoostingClassifier
        The fitted trees.
    classes_ : np.ndarray
        Buckets seen in training.
    """

    def __init__(self, n_estimators: int = 150, max_depth: int = 3, learning_rate: float = 0.1, seed: int = 0) -> None:
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.seed = seed

    def fit(self, features: Any, buckets: Any = None, *, agatston: Any = None) -> BucketClassifier:
        """Fit on ``[N, 20]`` exam vectors and buckets (or reference Agatston scores)."""
        from sklearn.ensemble import GradientBoostingClassifier

        x = np.asarray(features, dtype=np.float64)
        if (buckets is None) == (agatston is None):
            raise ValueError("give exactly one of buckets or agatston")
        y = np.asarray(agatston_bucket(agatston) if buckets is None else buckets, dtype=np.int64).ravel()
        if x.ndim != 2 or x.shape[0] != y.size:
            raise ValueError(f"features must be [N, F] with N = len(buckets) = {y.size}, got {x.shape}")
        if np.unique(y).size < 2:
            raise ValueError("BucketClassifier needs exams of at least two buckets")
        self.model_ = GradientBoostingClassifier(n_estimators=self.n_estimators, max_depth=self.max_depth,
                                                 learning_rate=self.learning_rate, random_state=self.seed)
        self.model_.fit(x, y)
        self.classes_ = self.model_.classes_
        return self

    def predict(self, features: Any) -> np.ndarray:
        """Bucket index 0-4 per exam."""
        return self.model_.predict(np.asarray(features, dtype=np.float64))

    def predict_proba(self, features: Any) -> np.ndarray:
        """``[N, len(classes_)]`` bucket probabilities."""
        return self.model_.predict_proba(np.asarray(features, dtype=np.float64))
