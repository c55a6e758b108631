"""Tiny RiskModels and batches shared by the explain tests (CPU, a few ms per forward pass)."""

import numpy as np
import pytest
import torch

from riskfm.ct.spec import CTInputSpec
from riskfm.ecg.spec import ECGInputSpec
from riskfm.encoders import create_encoder
from riskfm.models.fusion import ConcatFusion
from riskfm.models.heads import BinaryHead, StenosisHead
from riskfm.models.risk_model import RiskModel

ECG_SPEC = ECGInputSpec(fs=100.0, n_samples=400)  # 4 s at 100 Hz, mV
CT_SPEC = CTInputSpec(spacing=(3.0, 3.0, 3.0), shape=(16, 32, 32))
TAB_NAMES = ["age", "age__missing", "sbp", "sbp__missing", "sex=female", "sex=male", "sex=unknown"]


def build_model(seed: int = 0, modalities=("ecg", "ct", "clinical")) -> RiskModel:
    """ECG (resnet1d-small), CT (cnn3d-small at widths 4-8) and tabular clinical encoders, two heads."""
    torch.manual_seed(seed)
    encoders = {}
    if "ecg" in modalities:
        encoders["ecg"] = create_encoder("resnet1d-small", input_spec=ECG_SPEC, feature_dim=32)
    if "ct" in modalities:
        encoders["ct"] = create_encoder("cnn3d-small", widths=(4, 8, 8, 8), feature_dim=16, input_spec=CT_SPEC)
    if "clinical" in modalities:
        encoders["clinical"] = create_encoder("tabular-mlp", n_features=len(TAB_NAMES), hidden=(16,),
                                              feature_dim=8, feature_names=TAB_NAMES)
    fusion = ConcatFusion({m: e.feature_dim for m, e in encoders.items()}, proj_dim=8)
    model = RiskModel(encoders, fusion, [StenosisHead(fusion.out_dim), BinaryHead(fusion.out_dim)])
    # Non-trivial fusion statistics, so a normalisation layer in eval mode does real work.
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(make_batch(6, seed=seed + 1))
    return model.eval()


def make_batch(n: int = 3, seed: int = 0, ct_missing: tuple[int, ...] = ()) -> dict:
    """A collated-like batch: realistic-looking ECG (beats every 0.8 s), random CT, tabular rows."""
    g = np.random.default_rng(seed)
    t = np.arange(ECG_SPEC.n_samples) / ECG_SPEC.fs
    beat = np.exp(-((t[None, :] % 0.8 - 0.2) ** 2) / 2e-4)  # narrow "QRS" every 0.8 s
    ecg = g.normal(0, 0.05, (n, 12, len(t))) + g.uniform(0.5, 1.5, (n, 12, 1)) * beat
    tab = np.zeros((n, len(TAB_NAMES)), np.float32)
    tab[:, 0], tab[:, 2] = g.normal(size=n), g.normal(size=n)
    tab[np.arange(n), 4 + g.integers(0, 2, n)] = 1.0
    present_ct = torch.ones(n, dtype=torch.bool)
    present_ct[list(ct_missing)] = False
    return {
        "patient_id": [f"P{i}" for i in range(n)],
        "ecg": torch.as_tensor(ecg, dtype=torch.float32),
        "ecg_present": torch.ones(n, dtype=torch.bool),
        "ct": torch.as_tensor(g.uniform(0, 1, (n, 4, *CT_SPEC.shape)), dtype=torch.float32),
        "ct_present": present_ct,
        "clinical_tabular": torch.as_tensor(tab),
        "clinical_text": [None] * n,
        "clinical_present": torch.ones(n, dtype=torch.bool),
    }


@pytest.fixture(scope="module")
def model():
    return build_model()


@pytest.fixture
def batch():
    return make_batch(3)


@pytest.fixture(scope="session")
def text_encoder():
    """The registry's text-lm (all-MiniLM-L6-v2 from the installed package; no network)."""
    return create_encoder("text-lm")
