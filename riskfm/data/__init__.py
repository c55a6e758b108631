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
from riskfm.data.splits import (
    FoldSplit,
    kfold_splits,
    low_data_folds,
    make_splits,
    nested_subsets,
    site_split,
    split_indices,
    stratified_split,
    subsample,
)

__all__ = [
    "Cohort", "MODALITIES", "ManifestError", "validate_manifest", "RESERVED_COLUMNS", "BINARY_TARGETS",
    "STENOSIS_TARGETS", "ARTERIES", "Sample", "collate_samples", "stratified_split", "kfold_splits",
    "site_split", "subsample", "make_splits", "split_indices", "nested_subsets", "low_data_folds", "FoldSplit",
]
