"""ECG: readers, lead names, preprocessing, quality checks, the ECG store and the encoders.

Readers for WFDB, DICOM, GE MUSE XML, HL7 aECG and HDF5 (more with ``register_ecg_reader``),
lead names, spec-driven preprocessing, quality checks, the memory-mapped ECG store and the ECG
foundation-model encoders.

>>> from riskfm.ecg import read_ecg, prepare_ecg, ECGInputSpec      # doctest: +SKIP
>>> ecg = read_ecg("ptb/s0010_re")  # doctest: +SKIP
>>> x, lead_mask = prepare_ecg(ecg, ECGInputSpec(fs=500, n_samples=5000))  # doctest: +SKIP

Encoders (``riskfm.encoders.create_encoder``): ``ecgfounder-12lead``, ``ecgfounder-1lead``,
``ecgfounder-tiny``, ``hf-ecg`` (transformers waveform models such as HuBERT-ECG) and
``generic-ecg`` (any torch module plus an input spec); see docs/ecg.md.
"""

from riskfm.ecg import registry as _registry  # noqa: F401 - registers the foundation-model encoders
from riskfm.ecg.io import ECGReadError, read_ecg, register_ecg_reader
from riskfm.ecg.leads import UnknownLeadError, canonical_lead_name
from riskfm.ecg.plausibility import ECGPlausibility, check_ecg_plausibility
from riskfm.ecg.preprocess import aggregate_windows, ecg_windows, prepare_ecg
from riskfm.ecg.quality import QualityReport, QualityThresholds, ecg_quality
from riskfm.ecg.record import ECG
from riskfm.ecg.spec import STANDARD_LEADS, ECGInputSpec

__all__ = [
    "ECG",
    "ECGInputSpec",
    "ECGPlausibility",
    "ECGReadError",
    "QualityReport",
    "QualityThresholds",
    "STANDARD_LEADS",
    "UnknownLeadError",
    "aggregate_windows",
    "canonical_lead_name",
    "check_ecg_plausibility",
    "ecg_quality",
    "ecg_windows",
    "prepare_ecg",
    "read_ecg",
    "register_ecg_reader",
]
