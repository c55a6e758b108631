"""The per-modality forward that Captum differentiates is the RiskModel itself, target by target."""

import pytest
import torch

from riskfm.clinical.text import serialise_clinical
from riskfm.explain.forward import (
    ModalityForward,
    PatientContext,
    PresenceForward,
    text_token_forward,
    tokenize_text,
)
from riskfm.explain.targets import resolve_target
from riskfm.models.fusion import ConcatFusion
from riskfm.models.heads import BinaryHead, SurvivalHead
from riskfm.models.risk_model import RiskModel


@pytest.mark.parametrize("target, head, column", [
    ("mace_30d", "mace_30d", None), ("stenosis_lad", "stenosis", 2), (("stenosis", "LAD"), "stenosis", 2),
    (("stenosis", "rca"), "stenosis", 0), (None, "mace_30d", None),
])
def test_resolve_target(model, target, head, column):
    t = resolve_target(model, target)
    assert (t.head, t.index) == (head, column)


def test_unknown_target_lists_the_available_ones(model):
    with pytest.raises(ValueError, match="available targets: .*stenosis_lad.*mace_30d"):
        resolve_target(model, "stenosis_xyz")


@pytest.mark.parametrize("modality", ["ecg", "ct", "clinical"])
@pytest.mark.parametrize("target", ["mace_30d", "stenosis_lcx"])
def test_modality_forward_equals_the_model(model, batch, modality, target):
    key = model.input_keys[modality]
    tgt = resolve_target(model, target)
    for i in range(len(batch["patient_id"])):
        ctx = PatientContext(model, batch, i)
        f = ModalityForward(ctx, modality, tgt)
        x = batch[key][i:i + 1]
        x2 = x * 0.5 + 0.1  # a perturbed input: f must follow the model on it too
        changed = {k: (v.clone() if torch.is_tensor(v) else list(v)) for k, v in batch.items()}
        changed[key][i] = x2[0]
        with torch.no_grad():
            full = model(batch)[tgt.head]
            full2 = model(changed)[tgt.head]
            col = (lambda o: o[:, tgt.index]) if tgt.index is not None else (lambda o: o)
            assert torch.allclose(f(x), col(full)[i:i + 1], atol=1e-5)
            assert torch.allclose(f(torch.cat([x, x2])), torch.stack([col(full)[i], col(full2)[i]]), atol=1e-5)


def test_probability_output_is_the_sigmoid_of_the_logit(model, batch):
    ctx = PatientContext(model, batch, 0)
    tgt = resolve_target(model, "mace_30d")
    x = batch["ecg"][:1]
    logit = ModalityForward(ctx, "ecg", tgt)(x)
    prob = ModalityForward(ctx, "ecg", tgt, output="probability")(x)
    assert torch.allclose(torch.sigmoid(logit), prob)
    with torch.no_grad():
        assert torch.allclose(prob, model.predict_proba(batch)["mace_30d"][:1], atol=1e-6)


def test_presence_forward_reproduces_missing_modalities(model, batch):
    tgt = resolve_target(model, "mace_30d")
    f = PresenceForward(model, batch, tgt)
    mask = torch.tensor([[1.0, 0.0, 1.0]]).repeat(len(batch["patient_id"]), 1)  # CT treated as missing
    no_ct = dict(batch, ct_present=torch.zeros(len(batch["patient_id"]), dtype=torch.bool))
    with torch.no_grad():
        assert torch.allclose(f(mask), model(no_ct)["mace_30d"], atol=1e-6)
        assert torch.allclose(f(f.available()), model(batch)["mace_30d"], atol=1e-6)


def test_explaining_an_absent_modality_is_an_error(model):
    from .conftest import make_batch

    b = make_batch(2, ct_missing=(1,))
    with pytest.raises(ValueError, match="patient 'P1' has no ct input"):
        ModalityForward(PatientContext(model, b, 1), "ct", resolve_target(model, "mace_30d"))


def test_text_token_forward_matches_the_text_encoder(text_encoder):
    texts = [serialise_clinical({"age": 63, "sex": "female", "ldl": 130}),
             serialise_clinical({"age": 80, "sex": "male", "diabetes": 1, "bmi": 31.0})]
    with torch.no_grad():
        ref = text_encoder(texts)
        for i, t in enumerate(texts):
            tok = tokenize_text(text_encoder, t)
            got = text_token_forward(text_encoder, tok["input_ids"], tok["attention_mask"])
            assert torch.allclose(got[0], ref[i], atol=1e-5)


def test_survival_head_is_explained_on_its_log_hazard():
    from riskfm.encoders import create_encoder

    enc = create_encoder("tabular-mlp", n_features=3)
    fusion = ConcatFusion({"clinical": enc.feature_dim}, proj_dim=4)
    m = RiskModel({"clinical": enc}, fusion, [SurvivalHead(fusion.out_dim), BinaryHead(fusion.out_dim)]).eval()
    t = resolve_target(m, "survival")
    assert (t.name, t.head, t.index) == ("risk_score", "survival", None)
