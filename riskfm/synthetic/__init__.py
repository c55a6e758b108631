"""The embedded synthetic multimodal cohort: riskfm's default data for the demo, tests and benchmarks.

``make_cohort`` writes a complete on-disk cohort in the manifest format (WFDB ECGs, NIfTI CTs,
clinical columns, targets) plus ``oracle.csv`` with each label's true probability, so the
Bayes-optimal AUROC of every target is known.
"""

from riskfm.synthetic.cohort import SyntheticCohort, make_cohort
from riskfm.synthetic.patients import DEFAULT_SITES, SiteProfile, sample_patients

__all__ = ["make_cohort", "SyntheticCohort", "sample_patients", "SiteProfile", "DEFAULT_SITES"]
