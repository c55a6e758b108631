"""CT: readers (NIfTI, DICOM series), the CTVolume container and spec-driven preprocessing.

Arrays are float32 ``[Z, Y, X]`` in HU with spacing ``(z, y, x)`` in mm; the affine maps array
indices ``(z, y, x, 1)`` to patient LPS mm (see :mod:`riskfm.ct.volume`).
"""

from riskfm.ct.io import CTReadError, UnreadableSliceError, read_ct
from riskfm.ct.plausibility import CTPlausibility, check_ct_plausibility
from riskfm.ct.preprocess import prepare_ct
from riskfm.ct.spec import CORA_WINDOWS, CTInputSpec
from riskfm.ct.volume import CTVolume

__all__ = ["CORA_WINDOWS", "CTInputSpec", "CTPlausibility", "CTReadError", "CTVolume", "UnreadableSliceError",
           "check_ct_plausibility", "prepare_ct", "read_ct"]
