"""CT: readers (NIfTI, DICOM series), the CTVolume container, spec-driven preprocessing, and CORA.

Arrays are float32 ``[Z, Y, X]`` in HU with spacing ``(z, y, x)`` in mm; the affine maps array
indices ``(z, y, x, 1)`` to patient LPS mm (see :mod:`riskfm.ct.volume`).

CORA (docs/cora.md): :class:`CoraResUNet` (the 3D residual U-Net encoder), what its
synthesis-driven pretraining needs (:class:`PretrainConfig`, :func:`load_pretrained`,
:func:`abnormality_map`; the run itself, like every training, is on riskfm.train's engine:
:func:`riskfm.train.tasks.cora_pretrain.pretrain_cora`), the plaque classifier of the fine-tunes (:class:`PlaqueClassifier`) and
sliding-window inference (:func:`sliding_window_predict`). They import torch, so they load on
first use: ``import riskfm.ct`` stays light.
"""

from riskfm.ct.io import CTReadError, UnreadableSliceError, read_ct
from riskfm.ct.plausibility import CTPlausibility, check_ct_plausibility
from riskfm.ct.preprocess import prepare_ct
from riskfm.ct.spec import CORA_WINDOWS, CTInputSpec
from riskfm.ct.volume import CTVolume

_LAZY = {
    "CoraResUNet": "riskfm.ct.cora",
    "cora_input_spec": "riskfm.ct.cora",
    "PretrainConfig": "riskfm.ct.pretrain",
    "load_pretrained": "riskfm.ct.pretrain",
    "abnormality_map": "riskfm.ct.pretrain",
    "PlaqueClassifier": "riskfm.ct.finetune",
    "sliding_window_predict": "riskfm.ct.sliding",
}

__all__ = ["CORA_WINDOWS", "CTInputSpec", "CTPlausibility", "CTReadError", "CTVolume", "UnreadableSliceError",
           "check_ct_plausibility", "prepare_ct", "read_ct", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'riskfm.ct' has no attribute {name!r}")
