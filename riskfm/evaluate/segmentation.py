"""Segmentation overlap on plain numpy masks: Dice, clDice, surface distance, lesion detection.

The one home of segmentation metrics in riskfm (``riskfm.ct.seg_metrics`` re-exports them).
Each function scores one case (one exam, one volume) and returns a float (lesion detection:
counts that add up over cases); a cohort summary is the mean over cases with the undefined ones
left out (``np.nanmean``) and counted.

* :func:`dice` - ``2 |P & G| / (|P| + |G|)`` of two binary masks.
* :func:`dice_scores` - Dice per label and overall (any non-zero label) of two label maps.
* :func:`cl_dice` - centreline Dice (Shit et al., CVPR 2021): ``Tprec = |S(P) & G| / |S(P)|``,
  ``Tsens = |S(G) & P| / |S(G)|``, ``clDice = 2 Tprec Tsens / (Tprec + Tsens)``, with ``S`` a 3-D
  skeleton. Skeletonising a thin, even-width structure can return an empty skeleton: then the
  mask itself stands in for its skeleton (the 0/0 guard; see methods.md, pitfalls).
* :func:`mean_surface_distance` - the symmetric mean surface distance in mm, as MONAI's
  ``SurfaceDistanceMetric(symmetric=True)``: surface voxels are ``mask & ~erode(mask)`` (6-connected
  erosion, outside counts as background), and the distances from every surface voxel of each mask
  to the nearest surface voxel of the other are pooled and averaged.
* :func:`lesion_detection` - lesion-level precision / recall / F1: every connected component of
  the reference is a lesion; a predicted component is a true positive if it overlaps a reference
  lesion by more than ``min_overlap`` (10) voxels, and a reference lesion is detected if some
  predicted component overlaps it by more than that.

Empty masks (one rule for Dice and clDice)
------------------------------------------
- reference and prediction both empty: **NaN** -- there is nothing to overlap, so the score is
  undefined; it is left out of means (``np.nanmean``) and should be counted, never averaged in as
  1 or 0 (either would bias a mean over exams by how many exams lack a structure);
- reference empty, prediction not: **0** -- every predicted voxel is a false positive;
- prediction empty, reference not: **0**.

This is nnU-Net's rule (``2 TP / (2 TP + FP + FN)``, NaN when the denominator is 0) and MONAI's
``DiceMetric`` with ``ignore_empty=False`` except for two empty masks, which MONAI scores 1; MONAI's
``ignore_empty=True`` gives NaN whenever the reference is empty, which would hide false positives.
The mean surface distance is NaN when either mask is empty (a distance to nothing is undefined).

3-D skeletons come from ``skimage.morphology.skeletonize`` (Lee's thinning) when scikit-image is
installed; otherwise from :func:`thin_3d`, riskfm's own topology-preserving thinning (sequential
directional passes over simple, non-end points; the same family of algorithm, not identical
skeletons).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from riskfm.evaluate._checks import check_masks

__all__ = [
    "LesionScores",
    "cl_dice",
    "dice",
    "dice_scores",
    "lesion_detection",
    "mean_surface_distance",
    "skeletonize_3d",
    "thin_3d",
]


def _empty_rule(p: np.ndarray, g: np.ndarray) -> float | None:
    """Apply the empty-mask rule: NaN when both masks are empty, 0 when exactly one is, None otherwise."""
    has_p, has_g = bool(p.any()), bool(g.any())
    if not has_g and not has_p:
        return float("nan")
    if not (has_g and has_p):
        return 0.0
    return None


def dice(pred: Any, ref: Any) -> float:
    """Dice of two binary masks (nonzero = foreground), any shape.

    Parameters
    ----------
    pred, ref : array-like
        Predicted and reference masks of the same shape.

    Returns
    -------
    float
        ``2 |P & G| / (|P| + |G|)`` in [0, 1]; NaN when both masks are empty, 0 when only one is
        (see the module docstring).

    Examples
    --------
    >>> import numpy as np
    >>> dice(np.array([1, 1, 0]), np.array([1, 0, 0]))
    0.6666666666666666
    >>> dice(np.zeros(3), np.zeros(3))
    nan
    """
    p, g = check_masks(pred, ref, "dice")
    empty = _empty_rule(p, g)
    if empty is not None:
        return empty
    return 2.0 * int(np.logical_and(p, g).sum()) / (int(p.sum()) + int(g.sum()))


def dice_scores(predicted: Any, reference: Any, labels: Sequence[int] = (1, 2, 3, 4),
                names: Sequence[str] | None = None) -> dict[str, float]:
    """Dice per label and overall (any non-zero label vs background) on two label maps.

    Parameters
    ----------
    predicted, reference : array-like of int, same shape
        Label maps (0 background), e.g. artery calcium labels 1 LM, 2 LAD, 3 LCX, 4 RCA.
    labels : sequence of int
        Labels to report.
    names : sequence of str, optional
        Keys for the labels (default ``str(label)``).

    Returns
    -------
    dict
        ``{name: dice, ..., "overall": dice}`` with the empty-mask rule of :func:`dice`: a label
        absent from both maps gives NaN, a label predicted where the reference has none gives 0.
    """
    pred = np.asarray(predicted)
    ref = np.asarray(reference)
    if pred.shape != ref.shape:
        raise ValueError(f"predicted and reference label maps differ in shape: {pred.shape} vs {ref.shape}")
    keys = [str(v) for v in labels] if names is None else list(names)
    if len(keys) != len(labels):
        raise ValueError("names must have one entry per label")
    out = {key: dice(pred == v, ref == v) for key, v in zip(keys, labels)}
    out["overall"] = dice(pred > 0, ref > 0)
    return out


# ----------------------------------------------------------------------------- skeletons
_OFFSETS = np.stack(np.meshgrid(*[np.arange(-1, 2)] * 3, indexing="ij"), -1).reshape(27, 3)  # centre = 13
_FACES = [i for i, o in enumerate(_OFFSETS) if np.abs(o).sum() == 1]
_N18 = np.array([np.abs(o).sum() <= 2 for o in _OFFSETS]).reshape(3, 3, 3)
_N18[1, 1, 1] = False
_STRUCT26 = np.ones((3, 3, 3), bool)
_STRUCT6 = ndimage.generate_binary_structure(3, 1)


def _components_per_block(blocks: np.ndarray, structure: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Label K independent 3x3x3 blocks at once: ``blocks`` [K, 3, 3, 3] -> labels [K, 3, 3, 3], counts [K].

    The blocks are stacked along z with an empty slab between neighbours, so no component can
    join two blocks, and ``ndimage.label`` runs once (in C) for all of them.
    """
    k = blocks.shape[0]
    stacked = np.zeros((k, 4, 3, 3), bool)
    stacked[:, :3] = blocks
    labels, _ = ndimage.label(stacked.reshape(4 * k, 3, 3), structure=structure)
    labels = labels.reshape(k, 4, 3, 3)[:, :3]
    flat = labels.reshape(k, -1)
    # Distinct nonzero labels per block: labels are globally unique, so count unique values.
    nz = flat[flat > 0]
    owner = np.nonzero(flat > 0)[0]
    uniq = np.unique(np.stack([owner, nz], 1), axis=0) if nz.size else np.zeros((0, 2), int)
    counts = np.bincount(uniq[:, 0], minlength=k) if uniq.size else np.zeros(k, int)
    return labels, counts


def _simple_points(cubes: np.ndarray) -> np.ndarray:
    """Tell, per 3x3x3 neighbourhood, whether its centre is a simple point.

    ``cubes`` is bool ``[K, 3, 3, 3]``; the result is bool ``[K]``.

    Bertrand & Malandain (26/6 topology): the object minus the centre has exactly one
    26-component in the 26-neighbourhood, and the background in the 18-neighbourhood has exactly
    one 6-component that is 6-adjacent to the centre.
    """
    obj = cubes.copy()
    obj[:, 1, 1, 1] = False
    _, n_obj = _components_per_block(obj, _STRUCT26)
    back = ~cubes & _N18
    labels, _ = _components_per_block(back, _STRUCT6)
    faces = labels.reshape(len(cubes), 27)[:, _FACES]  # [K, 6]
    faces = np.sort(faces, axis=1)
    distinct = (faces > 0).any(axis=1).astype(int)
    distinct += np.sum((faces[:, 1:] != faces[:, :-1]) & (faces[:, :-1] > 0), axis=1)
    return (n_obj == 1) & (distinct == 1)


def thin_3d(mask: np.ndarray, max_iter: int = 1000) -> np.ndarray:
    """Topology-preserving 3-D thinning to a curve skeleton (numpy / scipy, vectorised).

    Each pass peels border voxels facing one of six directions (up, down, north, south, east,
    west) and is split into the 8 parity subfields of ``(z, y, x)``: two voxels of one subfield are
    never 26-adjacent, so all the simple, non-end voxels of a subfield (simple: removal changes no
    component, cavity or tunnel; end: exactly one 26-neighbour) can be removed at once with the
    same result as removing them one by one. Passes repeat until nothing changes. The subfield
    order can leave the curve zig-zagging by one voxel, with one-voxel spurs (the skeleton of a
    straight tube has ~1.3 voxels per slice); clDice only asks whether skeleton voxels lie inside
    the other mask, which that does not change. Installs with
    scikit-image use its compiled ``skeletonize`` instead (see :func:`skeletonize_3d`).
    """
    img = np.pad(np.asarray(mask) > 0, 1)
    directions = [(0, -1), (0, 1), (1, -1), (1, 1), (2, -1), (2, 1)]
    zz, yy, xx = np.indices(img.shape, sparse=True)
    subfield = (zz % 2) * 4 + (yy % 2) * 2 + (xx % 2)
    for _ in range(max_iter):
        changed = False
        for axis, step in directions:
            for field in range(8):
                border = img & ~np.roll(img, -step, axis=axis) & (subfield == field)
                points = np.argwhere(border)
                if not len(points):
                    continue
                idx = points[:, None, :] + _OFFSETS[None]  # [K, 27, 3]
                cubes = img[idx[..., 0], idx[..., 1], idx[..., 2]].reshape(-1, 3, 3, 3)
                not_end = cubes.reshape(len(cubes), -1).sum(axis=1) - 1 > 1
                if not not_end.any():
                    continue
                keep = np.zeros(len(cubes), bool)
                keep[not_end] = _simple_points(cubes[not_end])
                if keep.any():
                    img[tuple(points[keep].T)] = False
                    changed = True
        if not changed:
            break
    return img[1:-1, 1:-1, 1:-1]


def skeletonize_3d(mask: np.ndarray) -> np.ndarray:
    """Return the 3-D skeleton of a binary mask.

    Uses scikit-image's ``skeletonize`` if installed, else :func:`thin_3d`. ``mask`` is ``[Z, Y, X]``
    (nonzero = foreground); the skeleton is bool of the same shape.

    Raises
    ------
    ValueError
        When ``mask`` is not 3-D.
    """
    mask = np.asarray(mask) > 0
    if mask.ndim != 3:
        raise ValueError(f"skeletonize_3d expects a [Z, Y, X] mask, got shape {mask.shape}")
    try:
        from skimage.morphology import skeletonize
    except ImportError:
        return thin_3d(mask)
    return np.asarray(skeletonize(mask)) > 0


def cl_dice(pred: Any, ref: Any, *, skeletonize=skeletonize_3d) -> float:
    """Centreline Dice of two binary 3-D masks.

    Parameters
    ----------
    pred, ref : np.ndarray
        ``[Z, Y, X]`` masks (nonzero = vessel).
    skeletonize : callable
        ``mask -> bool skeleton``; default :func:`skeletonize_3d`.

    Returns
    -------
    float
        In [0, 1]; NaN when both masks are empty, 0 when only one is (the rule of :func:`dice`).
        An empty skeleton of a non-empty mask (thin even-width shapes) is replaced by the mask
        itself, so the ratio is never 0/0.
    """
    p, g = check_masks(pred, ref, "cl_dice")
    empty = _empty_rule(p, g)
    if empty is not None:
        return empty
    s_p, s_g = skeletonize(p), skeletonize(g)
    if not s_p.any():
        s_p = p
    if not s_g.any():
        s_g = g
    t_prec = float(np.logical_and(s_p, g).sum()) / float(s_p.sum())
    t_sens = float(np.logical_and(s_g, p).sum()) / float(s_g.sum())
    if t_prec + t_sens == 0:
        return 0.0
    return 2.0 * t_prec * t_sens / (t_prec + t_sens)


# ---------------------------------------------------------------------------- surface distance
def _surface(mask: np.ndarray) -> np.ndarray:
    # Face-connected erosion of the mask's own rank (a fixed 3-D structure rejected 2-D masks).
    face = ndimage.generate_binary_structure(mask.ndim, 1)
    return mask & ~ndimage.binary_erosion(mask, structure=face, border_value=0)


def mean_surface_distance(
    pred: np.ndarray, ref: np.ndarray, spacing: Sequence[float] | float = 1.0, *, symmetric: bool = True
) -> float:
    """Mean surface distance in mm between two binary masks.

    Parameters
    ----------
    pred, ref : np.ndarray
        Binary masks of the same shape (2-D or 3-D).
    spacing : sequence of float, or float
        Voxel size per axis in mm (one entry per axis of the masks); a single number is the same
        size on every axis (default 1 mm).
    symmetric : bool
        True: distances both ways pooled (average symmetric surface distance, MONAI
        ``symmetric=True``); False: prediction-to-reference only.

    Returns
    -------
    float
        mm; NaN if either mask is empty.
    """
    p, g = check_masks(pred, ref, "mean_surface_distance")
    sizes = np.asarray(spacing, dtype=np.float64)
    if sizes.ndim > 1 or sizes.size not in (1, p.ndim):
        # A default of (1, 1, 1) once made every 2-D call fail with numpy's broadcast message.
        raise ValueError(f"mean_surface_distance: spacing {np.atleast_1d(sizes).tolist()} needs one entry per "
                         f"axis of the {p.ndim}-D masks (or a single number)")
    spacing = np.broadcast_to(sizes, (p.ndim,))
    if not p.any() or not g.any():
        return float("nan")
    # Distances only depend on the union's bounding box (plus the 1-voxel rim MONAI crops with).
    both = np.argwhere(p | g)
    box = tuple(slice(max(lo - 1, 0), hi + 2) for lo, hi in zip(both.min(axis=0), both.max(axis=0)))
    p, g = p[box], g[box]
    e_p, e_g = _surface(p), _surface(g)
    d_to_g = ndimage.distance_transform_edt(~e_g, sampling=spacing)[e_p]
    if not symmetric:
        return float(d_to_g.mean())
    d_to_p = ndimage.distance_transform_edt(~e_p, sampling=spacing)[e_g]
    return float(np.concatenate([d_to_g, d_to_p]).mean())


# ------------------------------------------------------------------------------- lesion level
@dataclass(frozen=True)
class LesionScores:
    """Lesion-level detection counts and scores.

    Attributes
    ----------
    tp_pred : int
        Predicted components overlapping a reference lesion by more than ``min_overlap`` voxels.
    n_pred : int
        Predicted components.
    detected : int
        Reference lesions overlapped by more than ``min_overlap`` voxels by some predicted component.
    n_ref : int
        Reference lesions (connected components).
    """

    tp_pred: int
    n_pred: int
    detected: int
    n_ref: int

    @property
    def precision(self) -> float:
        """Lesion precision ``tp_pred / n_pred`` (NaN without predicted components)."""
        return self.tp_pred / self.n_pred if self.n_pred else float("nan")

    @property
    def recall(self) -> float:
        """Lesion recall (sensitivity) ``detected / n_ref`` (NaN without reference lesions)."""
        return self.detected / self.n_ref if self.n_ref else float("nan")

    @property
    def f1(self) -> float:
        """Harmonic mean of precision and recall.

        0 when either is undefined or both are 0 while some lesion exists (predicted or reference);
        NaN when neither mask has a lesion.
        """
        p, r = self.precision, self.recall
        if np.isnan(p) or np.isnan(r) or p + r == 0:
            return 0.0 if (self.n_pred or self.n_ref) else float("nan")
        return 2 * p * r / (p + r)

    def __add__(self, other: LesionScores) -> LesionScores:
        return LesionScores(self.tp_pred + other.tp_pred, self.n_pred + other.n_pred,
                            self.detected + other.detected, self.n_ref + other.n_ref)

    def to_dict(self) -> dict:
        """Return ``precision``, ``recall``, ``f1`` and the four counts as a plain dict."""
        return {"precision": self.precision, "recall": self.recall, "f1": self.f1, "tp_pred": self.tp_pred,
                "n_pred": self.n_pred, "detected": self.detected, "n_ref": self.n_ref}


def lesion_detection(
    pred: np.ndarray, ref: np.ndarray, *, min_overlap: int = 10, connectivity: int = 3
) -> LesionScores:
    """Lesion-level scoring of one case (CORA's stenosis detection rule).

    Parameters
    ----------
    pred, ref : np.ndarray
        Binary masks of the same shape.
    min_overlap : int
        A match needs MORE than this many overlapping voxels (CORA: 10).
    connectivity : {1, 2, 3}
        Neighbourhood of the connected components (3: 26-connected in 3-D).

    Returns
    -------
    LesionScores
        Sum them over cases (``+``) for cohort precision / recall / F1.
    """
    p, g = check_masks(pred, ref, "lesion_detection")
    structure = ndimage.generate_binary_structure(p.ndim, connectivity)
    lab_p, n_p = ndimage.label(p, structure=structure)
    lab_g, n_g = ndimage.label(g, structure=structure)
    both = (lab_p > 0) & (lab_g > 0)
    # Overlap voxel counts per (predicted, reference) component pair.
    pairs = lab_p[both].astype(np.int64) * (n_g + 1) + lab_g[both]
    ids, counts = np.unique(pairs, return_counts=True)
    matched = counts > min_overlap
    pred_ids = np.unique(ids[matched] // (n_g + 1))
    ref_ids = np.unique(ids[matched] % (n_g + 1))
    return LesionScores(int(pred_ids.size), int(n_p), int(ref_ids.size), int(n_g))
