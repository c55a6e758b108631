"""Behaviour of riskfm.models.heads that the first mutmut run (docs/testing.md) showed untested."""

import math

import pytest
import torch

from riskfm.data.manifest import STENOSIS_TARGETS
from riskfm.models.heads import (
    BinaryHead,
    StenosisHead,
    SurvivalHead,
    build_head,
    cox_partial_likelihood,
    masked_bce,
)

nan = float("nan")


def _bce(logit: float, label: float, w: float = 1.0) -> float:
    p = 1.0 / (1.0 + math.exp(-logit))
    return -(w * label * math.log(p) + (1 - label) * math.log(1 - p))


def test_masked_bce_averages_over_known_labels_only():
    logits = torch.tensor([0.5, -1.0, 2.0, 0.0])
    labels = torch.tensor([1.0, nan, 0.0, nan])
    loss, n = masked_bce(logits, labels)
    assert n == 2
    assert loss.item() == pytest.approx((_bce(0.5, 1) + _bce(2.0, 0)) / 2, rel=1e-6)


def test_masked_bce_with_one_known_label():
    loss, n = masked_bce(torch.tensor([0.3, 1.0]), torch.tensor([nan, 1.0]))
    assert n == 1 and loss.item() == pytest.approx(_bce(1.0, 1), rel=1e-6)


def test_masked_bce_weights_positives():
    logits = torch.tensor([[0.5, -1.0], [2.0, 0.0]])
    labels = torch.tensor([[1.0, 0.0], [nan, 1.0]])
    pw = torch.tensor([3.0, 0.5])
    loss, n = masked_bce(logits, labels, pw)
    want = (_bce(0.5, 1, 3.0) + _bce(-1.0, 0, 0.5) + _bce(0.0, 1, 0.5)) / 3
    assert n == 3 and loss.item() == pytest.approx(want, rel=1e-6)


def test_masked_bce_without_known_labels_is_a_zero_loss_with_a_graph():
    logits = torch.tensor([0.5, -1.0], requires_grad=True)
    loss, n = masked_bce(logits, torch.tensor([nan, nan]))
    assert n == 0 and loss.item() == 0.0
    loss.backward()
    assert torch.equal(logits.grad, torch.zeros(2))


def test_cox_with_a_single_event_is_its_log_partial_likelihood():
    lh = torch.tensor([0.2, -0.3, 0.7])
    time = torch.tensor([5.0, 10.0, 20.0])
    event = torch.tensor([0.0, 1.0, 0.0])
    loss, n = cox_partial_likelihood(lh, time, event)
    want = -(-0.3 - math.log(math.exp(-0.3) + math.exp(0.7)))
    assert n == 1 and loss.item() == pytest.approx(want, rel=1e-6)


def test_cox_without_events_is_a_zero_loss_with_a_graph():
    lh = torch.tensor([0.2, -0.3], requires_grad=True)
    loss, n = cox_partial_likelihood(lh, torch.tensor([5.0, 10.0]), torch.tensor([0.0, nan]))
    assert n == 0 and loss.item() == 0.0
    loss.backward()
    assert torch.equal(lh.grad, torch.zeros(2))


def test_stenosis_head_pos_weight_buffer_and_loss():
    head = StenosisHead(3)
    assert torch.equal(head.state_dict()["pos_weight"], torch.ones(4))
    weighted = StenosisHead(3, pos_weight=[2, 1, 1, 4])
    pw = weighted.state_dict()["pos_weight"]
    assert pw.dtype == torch.float32 and pw.tolist() == [2.0, 1.0, 1.0, 4.0]
    out = torch.tensor([[0.5, -1.0, 0.0, 1.0]])
    labels = torch.tensor([[1.0, nan, 0.0, 1.0]])
    loss, n = weighted.loss(out, {"stenosis": labels})
    assert n == 3
    want = (_bce(0.5, 1, 2.0) + _bce(0.0, 0) + _bce(1.0, 1, 4.0)) / 3
    assert loss.item() == pytest.approx(want, rel=1e-6)


def test_stenosis_head_outputs_and_labels_per_artery():
    head = StenosisHead(3)
    assert head.forward(torch.zeros(2, 3)).shape == (2, 4)
    out = torch.tensor([[0.0, 1.0, -1.0, 2.0]])
    probs = head.probabilities(out)
    assert list(probs) == list(STENOSIS_TARGETS)
    assert probs["stenosis_lad"].item() == pytest.approx(1 / (1 + math.e), rel=1e-6)
    labels = head.labels({"stenosis": torch.tensor([[1.0, 0.0, nan, 1.0]])})
    assert list(labels) == list(STENOSIS_TARGETS)
    assert labels["stenosis_rca"].tolist() == [1.0] and labels["stenosis_lcx"].tolist() == [1.0]
    assert labels["stenosis_lm"].tolist() == [0.0]


def test_binary_head_defaults_and_pos_weight():
    head = BinaryHead(3)
    assert head.name == "mace_30d" and head.targets == ("mace_30d",)
    assert head.state_dict()["pos_weight"].tolist() == [1.0]
    weighted = BinaryHead(3, target="stroke", pos_weight=2.5)
    assert weighted.name == "stroke" and weighted.targets == ("stroke",)
    assert weighted.state_dict()["pos_weight"].tolist() == [2.5]
    out = torch.tensor([0.5, -1.0])
    loss, n = weighted.loss(out, {"stroke": torch.tensor([1.0, 0.0])})
    assert n == 2
    assert loss.item() == pytest.approx((_bce(0.5, 1, 2.5) + _bce(-1.0, 0)) / 2, rel=1e-6)
    assert weighted.forward(torch.zeros(4, 3)).shape == (4,)
    probs = weighted.probabilities(torch.tensor([0.0]))
    assert list(probs) == ["stroke"] and probs["stroke"].tolist() == [0.5]
    lab = torch.tensor([1.0, nan])
    assert weighted.labels({"stroke": lab})["stroke"] is lab


def test_survival_head_has_no_intercept_and_uses_cox():
    head = SurvivalHead(3)
    assert set(head.state_dict()) == {"linear.weight"}
    assert head.state_dict()["linear.weight"].shape == (1, 3)
    out = head.forward(torch.zeros(4, 3))
    assert out.shape == (4,) and torch.equal(out, torch.zeros(4))
    lh = torch.tensor([0.2, -0.3, 0.7])
    batch = {"time_to_event_days": torch.tensor([5.0, 10.0, 20.0]), "event": torch.tensor([0.0, 1.0, 0.0])}
    loss, n = head.loss(lh, batch)
    ref, n_ref = cox_partial_likelihood(lh, batch["time_to_event_days"], batch["event"])
    assert n == n_ref == 1 and loss.item() == pytest.approx(ref.item())
    probs = head.probabilities(torch.tensor([0.0, 2.0]))
    assert list(probs) == ["risk_score"]
    assert probs["risk_score"].tolist() == pytest.approx([0.5, 1 / (1 + math.exp(-2.0))])
    assert head.labels(batch)["risk_score"] is batch["event"]
    assert list(head.labels(batch)) == ["risk_score"]


def test_build_head_picks_the_head_and_passes_its_arguments():
    sten = build_head("stenosis", 7, pos_weight=[1, 2, 3, 4])
    assert isinstance(sten, StenosisHead) and sten.linear.in_features == 7
    assert sten.state_dict()["pos_weight"].tolist() == [1.0, 2.0, 3.0, 4.0]
    surv = build_head("survival", 6)
    assert isinstance(surv, SurvivalHead) and surv.linear.in_features == 6
    binary = build_head("stroke", 5, pos_weight=3.0)
    assert isinstance(binary, BinaryHead) and binary.linear.in_features == 5
    assert binary.name == "stroke" and binary.state_dict()["pos_weight"].tolist() == [3.0]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device: labels on the CPU, outputs on the GPU")
def test_head_losses_move_cpu_labels_to_the_output_device():
    dev = torch.device("cuda")
    batch = {"stenosis": torch.tensor([[1.0, nan, 0.0, 1.0]]), "mace_30d": torch.tensor([1.0, 0.0]),
             "time_to_event_days": torch.tensor([5.0, 10.0]), "event": torch.tensor([1.0, 0.0])}
    loss, n = StenosisHead(3).to(dev).loss(torch.zeros(1, 4, device=dev), batch)
    assert n == 3 and loss.device.type == "cuda"
    loss, n = BinaryHead(3).to(dev).loss(torch.zeros(2, device=dev), batch)
    assert n == 2 and loss.device.type == "cuda"
    loss, n = SurvivalHead(3).to(dev).loss(torch.tensor([0.2, -0.3], device=dev), batch)
    assert n == 1 and loss.device.type == "cuda"
