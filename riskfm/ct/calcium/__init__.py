"""Coronary artery calcium: scoring, categories, segmentation and the non-gated bucket model.

Also epicardial fat and the building blocks of the low-data and fairness protocols
(docs/calcium.md).

:func:`score_calcium` is a pure function of arrays; :func:`score_scan` scores a *scan* and first
checks that it is one the Agatston score is defined on (:func:`check_calcium_scan`: non-contrast,
heart in view, axial, 1.5-5 mm slices), raising :class:`UnsuitableScanError` unless forced. It
returns a :class:`CalciumReport` (per-artery Agatston / volume / mass, categories, findings; writes
its tables, draws its overlay). ``riskfm cac score`` is a thin wrapper over :func:`score_scan`.

Examples
--------
>>> import numpy as np
>>> from riskfm.ct.calcium import score_calcium
>>> hu = np.zeros((1, 8, 8)); hu[0, 2:4, 2:5] = 420.0          # 6 pixels of 0.25 mm^2, peak 420 HU
>>> score_calcium(hu, (3.0, 0.5, 0.5), min_area_mm2=1.0).agatston   # 1.5 mm^2 x weight 4
6.0
"""

from riskfm.ct.calcium.categories import BUCKET_NAMES, CAC_DRS_NAMES, agatston_bucket, cac_drs_category
from riskfm.ct.calcium.epicardial import epicardial_fat_volume
from riskfm.ct.calcium.scan import (
    CalciumReport,
    ScanScore,
    UnsuitableScanError,
    load_calcium_model,
    score_scan,
)
from riskfm.ct.calcium.scan_checks import Finding, ScanCheckLimits, check_calcium_scan
from riskfm.ct.calcium.scoring import (
    ARTERY_LABELS,
    ARTERY_NAMES,
    ArteryScore,
    CalciumScore,
    agatston_weight,
    calibration_factor_from_insert,
    score_calcium,
)

__all__ = [
    "ARTERY_LABELS",
    "ARTERY_NAMES",
    "BUCKET_NAMES",
    "CAC_DRS_NAMES",
    "ArteryScore",
    "CalciumReport",
    "CalciumScore",
    "Finding",
    "ScanCheckLimits",
    "ScanScore",
    "UnsuitableScanError",
    "agatston_bucket",
    "agatston_weight",
    "cac_drs_category",
    "calibration_factor_from_insert",
    "check_calcium_scan",
    "epicardial_fat_volume",
    "load_calcium_model",
    "score_calcium",
    "score_scan",
]
