"""The data contract: manifest, ``Cohort``, ``Sample`` and collation, patient-level splits, datasets."""

from riskfm.data.cohort import MODALITIES, Cohort
from riskfm.data.manifest import (
    BINARY_TARGETS,
    RESERVED_COLUMNS,
    STENOSIS_TARGETS,
    ManifestError,
    validate_manifest,
)
from riskfm.data.sample import ARTERIES, Sample, collate_samples
from riskfm.data.splits import kfold_splits, make_splits, site_split, stratified_split, subsample

__all__ = [
    "Cohort", "MODALITIES", "ManifestError", "validate_manifest", "RESERVED_COLUMNS", "BINARY_TARGETS",
    "STENOSIS_TARGETS", "ARTERIES", "Sample", "collate_samples", "stratified_split", "kfold_splits",
    "site_split", "subsample", "make_splits",
]
