import torch
from torch import nn

from riskfm.clinical.spec import TabularInputSpec
from riskfm.ct.spec import CTInputSpec
from riskfm.ecg.spec import ECGInputSpec
from riskfm.models import BinaryHead, ConcatFusion, RiskModel, StenosisHead


class _Enc(nn.Module):
    def __init__(self, in_dim, spec, modality):
        super().__init__()
        self.lin = nn.Linear(in_dim, 6)
        self.bn = nn.BatchNorm1d(6)
        self.feature_dim, self.input_spec, self.modality = 6, spec, modality
        self.calls = 0

    def forward(self, x):
        self.calls += len(x)
        return self.bn(self.lin(x.flatten(1)))


def _model(**fusion_kw):
    enc = {"ecg": _Enc(12 * 10, ECGInputSpec(n_samples=10), "ecg"),
           "ct": _Enc(4 * 8, CTInputSpec(shape=(2, 2, 2)), "ct"),
           "clinical": _Enc(3, TabularInputSpec(n_features=3), "clinical")}
    fusion = ConcatFusion({m: 6 for m in enc}, proj_dim=5, **fusion_kw)
    return RiskModel(enc, fusion, [StenosisHead(fusion.out_dim), BinaryHead(fusion.out_dim)])


def _batch(b=4):
    return {
        "patient_id": [str(i) for i in range(b)],
        "ecg": torch.randn(b, 12, 10), "ecg_present": torch.tensor([True, False, True, True][:b]),
        "ct": torch.randn(b, 4, 2, 2, 2), "ct_present": torch.tensor([False, False, True, True][:b]),
        "clinical_tabular": torch.randn(b, 3), "clinical_present": torch.ones(b, dtype=torch.bool),
        "stenosis": torch.tensor([[1, 0, float("nan"), 0]] * b), "mace_30d": torch.tensor([1.0, 0, float("nan"), 0][:b]),
    }


def test_encoders_run_only_on_present_patients_and_missing_embedding_used():
    model = _model(modality_dropout=0.0).eval()
    batch = _batch()
    out = model(batch)
    assert out["stenosis"].shape == (4, 4) and out["mace_30d"].shape == (4,)
    assert model.encoders["ct"].calls == 2 and model.encoders["ecg"].calls == 3
    feats, present = model.encode(batch)
    z = model.fusion(feats, present)
    # patients 0 and 1 both lack CT: their CT block is the learned missing embedding
    assert torch.allclose(z[0, 5:10], model.fusion.missing["ct"]) and torch.allclose(z[1, 5:10], z[0, 5:10])


def test_loss_and_backward_and_freeze():
    model = _model()
    model.freeze_encoder("ecg")
    model.train()
    assert not model.encoders["ecg"].training  # frozen encoder keeps BN statistics fixed
    before = model.encoders["ecg"].bn.running_mean.clone()
    loss, parts = model.loss(model(_batch()), _batch())
    loss.backward()
    assert set(parts) == {"stenosis", "mace_30d"}
    assert model.encoders["ecg"].lin.weight.grad is None
    assert model.encoders["ct"].lin.weight.grad is not None
    assert torch.equal(before, model.encoders["ecg"].bn.running_mean)
    model.unfreeze_encoder("ecg")
    assert all(p.requires_grad for p in model.encoders["ecg"].parameters())


def test_modality_dropout_never_drops_everything():
    fusion = ConcatFusion({"a": 3, "b": 3}, proj_dim=2, modality_dropout=0.9).train()
    present = {"a": torch.tensor([True, True, False] * 200), "b": torch.tensor([True, False, False] * 200)}
    keep = fusion._drop(present)
    both = torch.stack([keep["a"], keep["b"]], 1)
    had = torch.stack([present["a"], present["b"]], 1)
    assert torch.all(both.sum(1)[had.sum(1) > 0] >= 1)
    assert not torch.any(both & ~had)  # dropout never invents a modality
    assert both.sum() < had.sum()


def test_predict_proba_targets():
    model = _model().eval()
    probs = model.predict_proba(_batch())
    assert list(probs) == model.targets == ["stenosis_rca", "stenosis_lm", "stenosis_lad", "stenosis_lcx", "mace_30d"]


def test_checkpoint_state_dict_leaves_out_frozen_language_model():
    from riskfm.clinical.spec import TextInputSpec

    model = _model()
    model.encoders["clinical"].input_spec = TextInputSpec(model_path="/models/lm")
    full = model.state_dict()
    model.freeze_encoder("clinical")
    slim = model.checkpoint_state_dict()
    assert not any(k.startswith("encoders.clinical.") for k in slim)
    assert set(full) - set(slim) == {k for k in full if k.startswith("encoders.clinical.")}
    other = _model()
    other.encoders["clinical"].input_spec = TextInputSpec(model_path="/models/lm")
    other.freeze_encoder("clinical")
    other.load_checkpoint_state_dict(slim)
    assert torch.equal(other.encoders["ecg"].lin.weight, model.encoders["ecg"].lin.weight)
    slim.pop("encoders.ecg.lin.weight")
    import pytest

    from riskfm.errors import CheckpointError

    with pytest.raises(CheckpointError, match="encoders.ecg.lin.weight"):
        other.load_checkpoint_state_dict(slim)
