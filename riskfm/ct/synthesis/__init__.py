"""CORA's lesion-synthesis data engine: artery-centric patches with synthetic coronary plaques.

* :mod:`~riskfm.ct.synthesis.plaque` - Gaussian-blob plaques (also used by the synthetic cohort);
* :mod:`~riskfm.ct.synthesis.noise` - Beer-Lambert Poisson + electronic noise;
* :mod:`~riskfm.ct.synthesis.geometry` - joint rotation / zoom / flips of image and labels;
* :mod:`~riskfm.ct.synthesis.sampling` - patch centres on coronary voxels (and a mask-less fallback);
* :mod:`~riskfm.ct.synthesis.engine` - the whole chain, one patch per call, deterministic under a seed.
"""

from riskfm.ct.synthesis.engine import (
    LESION_CALCIFIED,
    LESION_NONCALCIFIED,
    LesionSynthesisEngine,
    SynthesisConfig,
    SyntheticPatch,
)
from riskfm.ct.synthesis.geometry import PatchTransform, random_transform, sample_patch
from riskfm.ct.synthesis.noise import beer_lambert_noise, expected_noise_sd
from riskfm.ct.synthesis.plaque import Plaque, blob_occupancy, insert_plaque, random_plaque
from riskfm.ct.synthesis.sampling import candidate_voxels, sample_centre, vessel_candidates

__all__ = [
    "LESION_CALCIFIED",
    "LESION_NONCALCIFIED",
    "LesionSynthesisEngine",
    "PatchTransform",
    "Plaque",
    "SynthesisConfig",
    "SyntheticPatch",
    "beer_lambert_noise",
    "blob_occupancy",
    "candidate_voxels",
    "expected_noise_sd",
    "insert_plaque",
    "random_plaque",
    "random_transform",
    "sample_centre",
    "sample_patch",
    "vessel_candidates",
]
