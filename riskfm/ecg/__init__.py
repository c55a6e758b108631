"""ECG: readers (WFDB, DICOM), lead names and spec-driven preprocessing.

>>> from riskfm.ecg import read_ecg, prepare_ecg, ECGInputSpec      # doctest: +SKIP
>>> ecg = read_ecg("ptb/s0010_re")  # doctest: +SKIP
>>> x, lead_mask = prepare_ecg(ecg, ECGInputSpec(fs=500, n_samples=5000))  # doctest: +SKIP
"""

from riskfm.ecg.io import ECGReadError, read_ecg
from riskfm.ecg.leads import UnknownLeadError, canonical_lead_name
from riskfm.ecg.preprocess import prepare_ecg
from riskfm.ecg.record import ECG
from riskfm.ecg.spec import STANDARD_LEADS, ECGInputSpec

__all__ = [
    "ECG",
    "ECGInputSpec",
    "ECGReadError",
    "STANDARD_LEADS",
    "UnknownLeadError",
    "canonical_lead_name",
    "prepare_ecg",
    "read_ecg",
]
