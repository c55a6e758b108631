"""Synthetic non-contrast chest CT with coronary calcium of known score, for tests and the demo.

Layout of one exam (riskfm canonical axes: ``[z, y, x]`` = inferior->superior, anterior->posterior,
patient right->left; all sizes in mm scale with the field of view so any grid works):

* air outside an elliptical body: skin-fat ring (-100 HU), muscle / soft tissue (~40 HU);
* two lungs (-850 HU) with the mediastinum between them;
* the heart: an ellipsoid of blood / myocardium (~40 HU; there is no contrast) in the anterior left
  chest, wrapped in an epicardial fat shell (-100 HU) bounded by a thin pericardium (~30 HU);
* the coronary arteries run in the fat shell: the left main (LM) leaves the aortic root at the
  heart's top towards the patient's left, the LAD runs down the anterior surface, the LCX round the
  left atrio-ventricular groove, the RCA round the right one;
* calcifications are Gaussian blobs (sigma 0.5-2.2 mm, peak 180-1100 HU added) on the arteries, and
  every such voxel is labelled with its artery (1 LM, 2 LAD, 3 LCX, 4 RCA) in ``labels``;
* distractors that look like calcium but are not coronary: calcium in the aortic wall (ascending and
  descending aorta), aortic-valve calcium inside the heart near its base (both inside the heart
  region of interest, so thresholding alone over-counts) and bone (spine 300-700 HU, ribs) outside
  it.

The reference score of an exam is :func:`riskfm.ct.calcium.score_calcium` applied to the exam with
its artery labels: by construction the "known" score the segmentation model must reproduce.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from riskfm.ct.calcium.scoring import ARTERY_LABELS, CalciumScore, score_calcium

__all__ = ["CalciumExam", "make_calcium_cohort", "make_calcium_exam", "DISTRACTOR_LABELS"]

#: Values of :attr:`CalciumExam.distractors`.
DISTRACTOR_LABELS: dict[str, int] = {"aortic_wall": 1, "aortic_valve": 2, "bone": 3}
_BURDEN = (0.22, 0.18, 0.2, 0.2, 0.2)  # probabilities of none / trace / mild / moderate / severe calcium


@dataclass
class CalciumExam:
    """One synthetic exam and its ground truth.

    Attributes
    ----------
    hu : np.ndarray
        float32 ``[Z, Y, X]`` in HU.
    spacing : (float, float, float)
        (z, y, x) in mm.
    labels : np.ndarray
        uint8 ``[Z, Y, X]``: coronary calcium per artery (0 none, 1 LM, 2 LAD, 3 LCX, 4 RCA).
    heart_roi : np.ndarray
        bool ``[Z, Y, X]``: heart + epicardial fat + a 3 mm margin (keeps bone out).
    pericardium : np.ndarray
        bool ``[Z, Y, X]``: the pericardial sac (heart + epicardial fat), for fat volume.
    distractors : np.ndarray
        uint8 ``[Z, Y, X]``: non-coronary calcium and bone (:data:`DISTRACTOR_LABELS`).
    reference : CalciumScore
        ``score_calcium(hu, spacing, labels=labels)``.
    meta : dict
        ``seed``, ``sex`` ("M"/"F"), ``age`` (years), ``gated`` and ``eat_hu``.
    """

    hu: np.ndarray
    spacing: tuple[float, float, float]
    labels: np.ndarray
    heart_roi: np.ndarray
    pericardium: np.ndarray
    distractors: np.ndarray
    reference: CalciumScore
    meta: dict[str, Any] = field(default_factory=dict)


def _ellipse(yy, xx, cy, cx, ry, rx):
    return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0


def _blob(hu, label_map, label, centre_mm, sigma_mm, peak, coords, spacing, label_floor=60.0):
    """Add a Gaussian blob of ``peak`` HU; label voxels where it adds more than ``label_floor`` HU."""
    zz, yy, xx = coords
    reach = [int(np.ceil(3.5 * s / d)) + 1 for s, d in zip(sigma_mm, spacing)]
    ci = [int(round(c / d)) for c, d in zip(centre_mm, spacing)]
    sl = tuple(slice(max(c - r, 0), min(c + r + 1, n)) for c, r, n in zip(ci, reach, hu.shape))
    if any(s.start >= s.stop for s in sl):
        return
    d2 = (((zz[sl[0]][:, None, None] - centre_mm[0]) / sigma_mm[0]) ** 2
          + ((yy[sl[1]][None, :, None] - centre_mm[1]) / sigma_mm[1]) ** 2
          + ((xx[sl[2]][None, None, :] - centre_mm[2]) / sigma_mm[2]) ** 2)
    add = peak * np.exp(-0.5 * d2)
    region = hu[sl]
    # Calcium replaces soft tissue rather than adding to it where the blob dominates.
    np.maximum(region, np.minimum(region + add, 40.0 + add), out=region)
    if label_map is not None:
        lab = label_map[sl]
        lab[add > label_floor] = label


def make_calcium_exam(
    seed: int | np.random.Generator = 0,
    *,
    shape: tuple[int, int, int] = (16, 112, 112),
    spacing: tuple[float, float, float] = (3.0, 1.25, 1.25),
    gated: bool = True,
    burden: int | None = None,
) -> CalciumExam:
    """Render one synthetic non-contrast chest CT with coronary calcium.

    Parameters
    ----------
    seed : int or numpy Generator
        All randomness comes from it.
    shape : (int, int, int)
        Grid (Z, Y, X); at least (8, 48, 48).
    spacing : (float, float, float)
        (z, y, x) in mm.
    gated : bool, default True
        False mimics a non-gated chest CT: twice the noise and in-plane motion blur of the heart.
    burden : int, optional
        Force a calcium burden level 0 (none) .. 4 (severe); by default drawn at random.

    Returns
    -------
    CalciumExam
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    Z, Y, X = (int(s) for s in shape)
    if Z < 8 or Y < 48 or X < 48:
        raise ValueError(f"shape must be at least (8, 48, 48), got {shape}")
    sz, sy, sx = (float(s) for s in spacing)
    if min(sz, sy, sx) <= 0:
        raise ValueError(f"spacing must be positive (mm), got {spacing}")
    zz, yy, xx = np.arange(Z) * sz, np.arange(Y) * sy, np.arange(X) * sx
    H, W, D = Y * sy, X * sx, Z * sz
    y2, x2 = yy[:, None], xx[None, :]

    # ---- body, lungs, mediastinum (one 2D layout, the same on every slice) ---------------------
    body_c = (H * 0.5, W * 0.5)
    body_r = (H * 0.40 * rng.uniform(0.95, 1.03), W * 0.47 * rng.uniform(0.95, 1.03))
    plane = np.full((Y, X), -1000.0)
    plane[_ellipse(y2, x2, *body_c, *body_r)] = -100.0
    plane[_ellipse(y2, x2, *body_c, body_r[0] - 0.03 * H, body_r[1] - 0.03 * W)] = 40.0
    lung_r = (H * 0.28, W * 0.17)
    lungs = (_ellipse(y2, x2, H * 0.5, W * 0.27, *lung_r) | _ellipse(y2, x2, H * 0.5, W * 0.73, *lung_r))
    plane[lungs] = -850.0
    plane[_ellipse(y2, x2, H * 0.42, W * 0.5, H * 0.2, W * 0.12) & ~lungs] = -90.0  # mediastinal fat
    hu = np.repeat(plane[None], Z, axis=0)
    distractors = np.zeros((Z, Y, X), np.uint8)

    # ---- bone: spine and ribs, outside the heart ---------------------------------------------
    spine_c = (H * 0.78, W * 0.5)
    spine = _ellipse(y2, x2, *spine_c, H * 0.07, W * 0.06)
    cortex = spine & ~_ellipse(y2, x2, *spine_c, H * 0.055, W * 0.045)
    bone_hu = rng.uniform(250.0, 450.0)
    hu[:, spine] = bone_hu
    hu[:, cortex] = bone_hu + 350.0
    distractors[:, spine] = DISTRACTOR_LABELS["bone"]
    for side in (-1, 1):
        for ang in np.deg2rad(rng.uniform(-60, 60, size=3) + np.array([-50, 0, 50])):
            cy = body_c[0] - np.cos(ang) * (body_r[0] - 0.06 * H)
            cx = body_c[1] + side * np.sin(abs(ang) + 0.6) * (body_r[1] - 0.06 * W)
            rib = _ellipse(y2, x2, cy, cx, 0.02 * H, 0.03 * W)
            rib_hu = rng.uniform(450, 800)
            for zi in np.flatnonzero(rng.random(Z) < 0.6):  # a rib crosses only some axial slices
                hu[zi][rib] = rib_hu
                distractors[zi][rib] = DISTRACTOR_LABELS["bone"]

    # ---- heart, epicardial fat, pericardium (3D ellipsoids) ------------------------------------
    hc = np.array([D * rng.uniform(0.42, 0.5), H * rng.uniform(0.4, 0.45), W * rng.uniform(0.53, 0.58)])
    hr = np.array([D * rng.uniform(0.3, 0.36), H * rng.uniform(0.19, 0.22), W * rng.uniform(0.19, 0.22)])
    fat_mm = rng.uniform(3.0, 6.0)  # epicardial fat thickness: drives the fat volume subgroups
    Zg, Yg, Xg = np.meshgrid(zz, yy, xx, indexing="ij")

    def ell(r_extra: float) -> np.ndarray:
        return (((Zg - hc[0]) / (hr[0] + r_extra)) ** 2 + ((Yg - hc[1]) / (hr[1] + r_extra)) ** 2
                + ((Xg - hc[2]) / (hr[2] + r_extra)) ** 2) <= 1.0

    heart = ell(0.0)
    pericardium = ell(fat_mm)
    sac = ell(fat_mm + 1.5) & ~pericardium
    eat_hu = rng.uniform(-105.0, -80.0)
    hu[pericardium] = eat_hu
    hu[sac] = 30.0
    hu[heart] = rng.uniform(35.0, 50.0)
    heart_roi = ell(fat_mm + 3.0)

    # ---- aorta: ascending (above the heart base, right of centre) and descending ---------------
    asc_c = (hc[1] - 0.02 * H, W * 0.45)
    asc_r = 0.08 * min(H, W)
    desc_c = (H * 0.66, W * 0.58)
    desc_r = 0.06 * min(H, W)
    top = hc[0] + 0.5 * hr[0]
    for zi, z in enumerate(zz):
        if z >= top:
            m = _ellipse(y2, x2, *asc_c, asc_r, asc_r) & ~lungs
            hu[zi][m] = 40.0
        hu[zi][_ellipse(y2, x2, *desc_c, desc_r, desc_r) & ~lungs] = 40.0

    labels = np.zeros((Z, Y, X), np.uint8)
    coords = (zz, yy, xx)

    # Aortic wall calcium (present in most exams, more often with coronary calcium) and valve calcium.
    for _ in range(rng.poisson(2.0)):
        ang = rng.uniform(0, 2 * np.pi)
        if rng.random() < 0.5 and top < D - sz:
            c = (rng.uniform(top, D - sz), asc_c[0] + asc_r * np.sin(ang), asc_c[1] + asc_r * np.cos(ang))
        else:
            c = (rng.uniform(0, D), desc_c[0] + desc_r * np.sin(ang), desc_c[1] + desc_r * np.cos(ang))
        _blob(hu, distractors, DISTRACTOR_LABELS["aortic_wall"], c, (sz * 0.6, 1.2, 1.2),
              rng.uniform(200, 900), coords, spacing)
    if rng.random() < 0.5:
        c = (hc[0] + 0.55 * hr[0], asc_c[0] + rng.normal(0, 1.5), asc_c[1] + rng.normal(0, 1.5))
        _blob(hu, distractors, DISTRACTOR_LABELS["aortic_valve"], c, (sz * 0.6, 1.8, 1.8),
              rng.uniform(250, 1000), coords, spacing)

    # ---- coronary arteries in the fat shell and their calcium -----------------------------------
    def surface(zf: float, phi: float) -> np.ndarray:
        """Point in the middle of the fat shell at height fraction zf (-1..1) and azimuth phi."""
        scale = np.sqrt(max(1.0 - zf ** 2, 0.05))
        r = np.array([hr[1], hr[2]]) * scale + fat_mm * 0.5
        return np.array([hc[0] + zf * hr[0], hc[1] - r[0] * np.cos(phi), hc[2] + r[1] * np.sin(phi)])

    # Each artery as a function t in [0, 1] -> point (mm). phi = 0 is anterior, +pi/2 patient left.
    courses = {
        "LM": lambda t: surface(0.72, -0.2 + 0.5 * t),
        "LAD": lambda t: surface(0.62 - 1.3 * t, 0.35 + 0.15 * t),
        "LCX": lambda t: surface(0.45 - 0.25 * t, 0.7 + 1.6 * t),
        "RCA": lambda t: surface(0.4 - 0.6 * t, -0.5 - 2.0 * t),
    }
    level = int(rng.choice(5, p=_BURDEN)) if burden is None else int(burden)
    if not 0 <= level <= 4:
        raise ValueError(f"burden must be 0-4, got {burden}")
    n_lesions = [0, 1, rng.integers(1, 4), rng.integers(3, 7), rng.integers(6, 12)][level]
    size = [(0, 0), (0.5, 0.8), (0.7, 1.5), (1.0, 2.0), (1.3, 2.4)][level]
    weights = np.array([0.15, 0.4, 0.2, 0.25])
    for _ in range(int(n_lesions)):
        artery = str(rng.choice(list(courses), p=weights))
        centre = courses[artery](rng.uniform(0.05, 0.95))
        s = rng.uniform(*size)
        peak = rng.uniform(180.0, 450.0) if level == 1 else rng.uniform(250.0, 1100.0)
        _blob(hu, labels, ARTERY_LABELS[artery], centre, (max(sz * 0.5, s), s, s), peak, coords, spacing)

    # ---- acquisition: noise (and motion blur when not gated) ------------------------------------
    noise_sd = rng.uniform(8.0, 14.0) * (1.0 if gated else 2.0)
    if not gated:
        hu = ndimage.gaussian_filter(hu, sigma=(0, 0.7, 0.7))
    hu = (hu + rng.normal(0.0, noise_sd, hu.shape)).astype(np.float32)
    hu = np.clip(hu, -1024, 3071)
    labels[hu < 130] = 0  # ground truth is calcium: voxels the blob did not lift over 130 HU are not
    reference = score_calcium(hu, spacing, labels=labels)
    meta = {"seed": seed if isinstance(seed, int) else None, "sex": str(rng.choice(["M", "F"])),
            "age": int(np.clip(rng.normal(60, 11), 30, 90)), "gated": bool(gated), "burden": level,
            "eat_hu": float(eat_hu), "epicardial_fat_mm": float(fat_mm)}
    return CalciumExam(hu, (sz, sy, sx), labels, heart_roi, pericardium, distractors, reference, meta)


def make_calcium_cohort(n: int, out_dir: str | Path, *, seed: int = 0, gated: bool = True,
                        shape: tuple[int, int, int] = (16, 112, 112),
                        spacing: tuple[float, float, float] = (3.0, 1.25, 1.25)) -> Path:
    """Write ``n`` synthetic exams as NIfTI (CT, artery labels, heart ROI, pericardium) + manifest.

    Parameters
    ----------
    n : int
        Number of exams (patient ids ``cac0000``...).
    out_dir : str or Path
        Folder to write; ``manifest.csv`` lists ``patient_id, ct_path, labels_path, roi_path,
        pericardium_path, sex, age, agatston`` and per-artery reference scores.
    seed : int
        Exam ``i`` uses seed ``seed * 100003 + i``.
    gated, shape, spacing
        As in :func:`make_calcium_exam`.

    Returns
    -------
    Path
        The manifest path.
    """
    import nibabel as nib
    import pandas as pd

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(int(n)):
        exam = make_calcium_exam(seed * 100003 + i, shape=shape, spacing=spacing, gated=gated)
        pid = f"cac{i:04d}"
        # riskfm [z, y, x] = (S, P, L) -> NIfTI (i, j, k) = (x, y, z) with an LPS->RAS flip so that
        # read_ct gives back the same array (x toward L = -R, y toward P = -A, z toward S).
        sz, sy, sx = exam.spacing
        affine = np.diag([-sx, -sy, sz, 1.0])

        def save(arr: np.ndarray, name: str, dtype: Any, pid: str = pid, affine: np.ndarray = affine) -> str:
            path = out / f"{pid}_{name}.nii.gz"
            nib.save(nib.Nifti1Image(np.asarray(arr, dtype=dtype).transpose(2, 1, 0), affine), str(path))
            return path.name

        row = {"patient_id": pid, "ct_path": save(exam.hu, "ct", np.int16),
               "labels_path": save(exam.labels, "labels", np.uint8),
               "roi_path": save(exam.heart_roi, "heart", np.uint8),
               "pericardium_path": save(exam.pericardium, "pericardium", np.uint8),
               "sex": exam.meta["sex"], "age": exam.meta["age"]}
        # Scores of the saved (int16-rounded) CT, so that reading the files back reproduces them.
        ref = score_calcium(np.asarray(exam.hu, np.int16), exam.spacing, labels=exam.labels)
        row["agatston"] = ref.agatston
        for name, s in ref.per_artery.items():
            row[f"agatston_{name}"] = s.agatston
        rows.append(row)
    manifest = out / "manifest.csv"
    pd.DataFrame(rows).to_csv(manifest, index=False)
    return manifest
