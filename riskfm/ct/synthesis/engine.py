"""The lesion-synthesis data engine of CORA: one call makes one pretraining patch.

For a volume (HU, resampled to the pretraining spacing) and its candidate coronary voxels, a call

1. centres a patch on a random coronary voxel (artery-centric sampling);
2. draws a rotation (+-15 degrees about each axis), an isotropic zoom (0.9-1.1) and flips;
3. crops the input region that transformed patch needs (padding with air);
4. with probability ``lesion_prob`` inserts 1..``max_lesions`` plaques, the first anchored at the
   centre voxel and the others at coronary voxels within ``lesion_radius_vox`` of it; each is
   calcified (800-1500 HU) with probability ``calcified_prob``, otherwise non-calcified
   (30-90 HU), built from 1-3 overlapping Gaussian blobs (sigma 0.7-2.0 voxels);
5. resamples image (trilinear) and lesion labels (nearest) on one transformed grid;
6. adds Beer-Lambert Poisson + electronic noise (I0 1e5, L 200 mm, sigma_e 2.0) - after the
   resampling, so interpolation does not smooth the noise away;
7. turns HU into the four CORA windows (fat, soft tissue, angiographic, calcification) in [0, 1].

Every random draw comes from the generator passed in, in a fixed order: the same generator state
gives the same patch, bit for bit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from riskfm.ct.preprocess import window_channels
from riskfm.ct.spec import CORA_WINDOWS
from riskfm.ct.synthesis.geometry import PatchTransform, random_transform, sample_patch, source_bounds
from riskfm.ct.synthesis.noise import (
    DEFAULT_I0,
    DEFAULT_PATH_MM,
    DEFAULT_SIGMA_E,
    MU_WATER_PER_MM,
    beer_lambert_noise,
)
from riskfm.ct.synthesis.plaque import (
    BLOB_SIGMA_VOX,
    CALCIFIED_HU,
    N_BLOBS,
    NONCALCIFIED_HU,
    insert_plaque,
    random_plaque,
)
from riskfm.ct.synthesis.sampling import sample_centre

__all__ = ["LESION_CALCIFIED", "LESION_NONCALCIFIED", "LesionSynthesisEngine", "SynthesisConfig", "SyntheticPatch"]

#: Values of :attr:`SyntheticPatch.lesion_type`.
LESION_CALCIFIED = 1
LESION_NONCALCIFIED = 2
AIR_HU = -1024.0


@dataclass(frozen=True)
class SynthesisConfig:
    """Parameters of the engine (defaults: CORA, methods.md).

    Attributes
    ----------
    patch_size : (int, int, int)
        Patch ``(Z, Y, X)`` in voxels (CORA pretrains on 64^3; its Table S1 shows 96^3).
    lesion_prob : float
        Probability that a patch receives plaques; the rest stay lesion-free so the detector also
        learns what normal vessel looks like.
    max_lesions : int
        A patch with plaques gets 1..max_lesions of them.
    calcified_prob : float
        Probability that a plaque is calcified.
    n_blobs, sigma_vox, calcified_hu, noncalcified_hu
        Plaque shape and attenuation ranges (1-3 blobs, sigma 0.7-2.0 voxels, 800-1500 HU and
        30-90 HU).
    lesion_radius_vox : float
        Further plaques are anchored at coronary voxels within this distance of the centre.
    noise : bool
        Add Beer-Lambert noise with ``i0``, ``path_mm``, ``sigma_e``, ``mu_water``.
    max_rotation_deg, zoom_range, flip_prob
        Geometric augmentation (degrees about each axis; isotropic zoom; per-axis flip chance).
    windows : sequence of (level, width)
        HU windows of the output channels (CORA's four by default).
    """

    patch_size: tuple[int, int, int] = (64, 64, 64)
    lesion_prob: float = 0.8
    max_lesions: int = 2
    calcified_prob: float = 0.5
    n_blobs: tuple[int, int] = N_BLOBS
    sigma_vox: tuple[float, float] = BLOB_SIGMA_VOX
    calcified_hu: tuple[float, float] = CALCIFIED_HU
    noncalcified_hu: tuple[float, float] = NONCALCIFIED_HU
    lesion_radius_vox: float = 8.0
    noise: bool = True
    i0: float = DEFAULT_I0
    path_mm: float = DEFAULT_PATH_MM
    sigma_e: float = DEFAULT_SIGMA_E
    mu_water: float = MU_WATER_PER_MM
    max_rotation_deg: float = 15.0
    zoom_range: tuple[float, float] = (0.9, 1.1)
    flip_prob: float = 0.5
    windows: tuple[tuple[float, float], ...] = CORA_WINDOWS

    def __post_init__(self) -> None:
        size = tuple(int(s) for s in self.patch_size)
        if len(size) != 3 or min(size) < 1:
            raise ValueError(f"SynthesisConfig.patch_size must be three positive sizes, got {self.patch_size!r}")
        object.__setattr__(self, "patch_size", size)
        for name in ("lesion_prob", "calcified_prob", "flip_prob"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"SynthesisConfig.{name} must be a probability in [0, 1], got {v!r}")
        if int(self.max_lesions) < 1:
            raise ValueError(f"SynthesisConfig.max_lesions must be >= 1, got {self.max_lesions!r}")
        if not (0 < self.zoom_range[0] <= self.zoom_range[1]):
            raise ValueError(f"SynthesisConfig.zoom_range must be 0 < low <= high, got {self.zoom_range!r}")
        if not 0 <= self.max_rotation_deg <= 180:
            raise ValueError(f"SynthesisConfig.max_rotation_deg must be in [0, 180], got {self.max_rotation_deg!r}")
        for name in ("calcified_hu", "noncalcified_hu"):
            lo, hi = getattr(self, name)
            if not lo <= hi:
                raise ValueError(f"SynthesisConfig.{name} must be a (low, high) HU range, got {(lo, hi)!r}")


@dataclass
class SyntheticPatch:
    """One engine output.

    Attributes
    ----------
    image : np.ndarray
        float32 ``[C, Z, Y, X]`` in [0, 1], one channel per window (the network input).
    mask : np.ndarray
        uint8 ``[Z, Y, X]``: 1 where a synthetic plaque is (the pretraining target).
    lesion_type : np.ndarray
        uint8 ``[Z, Y, X]``: 0 none, 1 calcified, 2 non-calcified.
    hu : np.ndarray
        float32 ``[Z, Y, X]`` the patch in HU after plaques, resampling and noise.
    centre : np.ndarray
        int64 ``[3]``: the volume voxel the patch is centred on (output voxel ``size // 2``).
    transform : PatchTransform
    lesions : list of dict
        One per plaque: ``calcified``, ``peak_hu``, ``n_blobs``, ``sigmas_vox``, ``centres_vox``
        (volume voxel indices).
    """

    image: np.ndarray
    mask: np.ndarray
    lesion_type: np.ndarray
    hu: np.ndarray
    centre: np.ndarray
    transform: PatchTransform
    lesions: list[dict] = field(default_factory=list)


def _crop(hu: np.ndarray, lo: np.ndarray, hi: np.ndarray, fill: float) -> np.ndarray:
    """float32 copy of ``hu[lo:hi]`` with ``fill`` where the box leaves the volume."""
    out = np.full(tuple(hi - lo), fill, dtype=np.float32)
    src = tuple(slice(max(a, 0), min(b, n)) for a, b, n in zip(lo, hi, hu.shape))
    if all(s.stop > s.start for s in src):
        dst = tuple(slice(s.start - a, s.stop - a) for s, a in zip(src, lo))
        out[dst] = hu[src]
    return out


class LesionSynthesisEngine:
    """Callable making pretraining patches (see the module docstring for the steps).

    Parameters
    ----------
    config : SynthesisConfig, optional

    Examples
    --------
    >>> import numpy as np
    >>> hu = np.full((40, 40, 40), 40.0, np.float32)
    >>> vessel = np.zeros(hu.shape, bool); vessel[20, 20, 5:35] = True; hu[vessel] = 400.0
    >>> engine = LesionSynthesisEngine(SynthesisConfig(patch_size=(16, 16, 16), lesion_prob=1.0))
    >>> p = engine(hu, (1.0, 1.0, 1.0), np.flatnonzero(vessel), np.random.default_rng(0))
    >>> p.image.shape, p.mask.shape, bool(p.mask.any())
    ((4, 16, 16, 16), (16, 16, 16), True)
    """

    def __init__(self, config: SynthesisConfig | None = None) -> None:
        self.config = config if config is not None else SynthesisConfig()

    def __call__(
        self,
        hu: np.ndarray,
        spacing: Sequence[float],
        candidates: np.ndarray,
        rng: np.random.Generator,
    ) -> SyntheticPatch:
        """Make one patch.

        Parameters
        ----------
        hu : np.ndarray
            ``[Z, Y, X]`` volume in HU (any float or int dtype), already at the pretraining spacing.
        spacing : sequence of 3 float
            Its voxel size ``(z, y, x)`` in mm (makes rotations physical).
        candidates : np.ndarray
            Flat indices into ``hu`` of coronary voxels (see
            :func:`~riskfm.ct.synthesis.sampling.candidate_voxels`).
        rng : numpy Generator

        Returns
        -------
        SyntheticPatch
        """
        cfg = self.config
        hu = np.asarray(hu)
        if hu.ndim != 3:
            raise ValueError(f"hu must be a [Z, Y, X] volume, got shape {hu.shape}")
        candidates = np.asarray(candidates)
        size = np.asarray(cfg.patch_size)

        centre = sample_centre(rng, candidates, hu.shape)
        transform = random_transform(rng, max_rotation_deg=cfg.max_rotation_deg, zoom_range=cfg.zoom_range,
                                     flip_prob=cfg.flip_prob)
        matrix = transform.index_matrix(spacing)
        lo, hi = source_bounds(centre, size, matrix)
        region = _crop(hu, lo, hi, AIR_HU)
        labels = np.zeros(region.shape, dtype=np.uint8)

        lesions: list[dict] = []
        if rng.random() < cfg.lesion_prob:
            n_lesions = int(rng.integers(1, int(cfg.max_lesions) + 1))
            anchors = [centre.astype(np.float64)]
            if n_lesions > 1:
                coords = np.column_stack(np.unravel_index(candidates, hu.shape))
                near = coords[np.sum((coords - centre) ** 2, axis=1) <= cfg.lesion_radius_vox**2]
                picks = rng.integers(0, len(near), n_lesions - 1)
                anchors += [near[i].astype(np.float64) for i in picks]
            for anchor in anchors:
                calcified = bool(rng.random() < cfg.calcified_prob)
                plaque = random_plaque(rng, anchor - lo, calcified=calcified, n_blobs=cfg.n_blobs,
                                       sigma_vox=cfg.sigma_vox, calcified_hu=cfg.calcified_hu,
                                       noncalcified_hu=cfg.noncalcified_hu)
                box, occupancy = insert_plaque(region, plaque)
                kind = LESION_CALCIFIED if calcified else LESION_NONCALCIFIED
                labels[box] = np.where(occupancy >= 0.5, kind, labels[box])
                record = plaque.to_dict()
                record["centres_vox"] = [[c + float(o) for c, o in zip(cv, lo)] for cv in record["centres_vox"]]
                lesions.append(record)

        patch_hu, lesion_type = sample_patch(region, labels, centre - lo, size, matrix)
        if cfg.noise:
            patch_hu = beer_lambert_noise(patch_hu, rng, i0=cfg.i0, path_mm=cfg.path_mm, sigma_e=cfg.sigma_e,
                                          mu_water=cfg.mu_water)
        image = window_channels(patch_hu, cfg.windows)
        return SyntheticPatch(image=image, mask=(lesion_type > 0).astype(np.uint8), lesion_type=lesion_type,
                              hu=patch_hu, centre=centre, transform=transform, lesions=lesions)
