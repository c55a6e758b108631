"""Fine-tuning modes for every built-in encoder: declared layer groups, partial unfreezing, layer-wise rates."""

from __future__ import annotations

import pytest
import torch

from riskfm.encoders import create_encoder
from riskfm.train.finetune import apply_partial_unfreeze, layerwise_param_groups

# each encoder's layer groups, from input to output, and which parameters lie outside them
GROUPED = {"resnet1d-small": 6, "ecgfounder-tiny": 8, "cnn3d-small": 5, "cora-resunet-small": 4}


@pytest.mark.parametrize(("name", "n_groups"), GROUPED.items())
def test_every_feature_parameter_is_in_one_layer_group_in_input_to_output_order(name, n_groups):
    enc = create_encoder(name)
    groups = enc.layer_groups()
    assert len(groups) == n_groups
    ids = [id(p) for g in groups for m in g for p in m.parameters()]
    assert len(ids) == len(set(ids))  # no parameter in two groups
    # the features the risk model reads depend on every grouped parameter and on nothing else trainable:
    # a CORA decoder (not part of the encoder's features) is the only thing left out
    outside = [n for n, p in enc.named_parameters() if id(p) not in set(ids)]
    assert all(n.startswith(("decoder.", "head.")) for n in outside), outside
    if name.startswith("cora"):
        assert outside


@pytest.mark.parametrize("name", GROUPED)
def test_partial_unfreeze_trains_only_the_last_groups_and_llrd_scales_each_group(name):
    enc = create_encoder(name)
    groups = enc.layer_groups()
    trainable = apply_partial_unfreeze(enc, 2)
    last = {id(p) for g in groups[-2:] for m in g for p in m.parameters()}
    assert {id(p) for p in enc.parameters() if p.requires_grad} == last and trainable
    for p in enc.parameters():
        p.requires_grad_(True)
    out = layerwise_param_groups(enc, 1e-3, 0.5, weight_decay=0.01)
    n = len(groups)
    layer = [g for g in out if ".layer" in g["name"]]
    assert [g["lr"] for g in layer] == pytest.approx([1e-3 * 0.5 ** (n - 1 - i) for i in range(n)])
    assert all(g["weight_decay"] == 0.01 for g in out)
    assert sum(len(g["params"]) for g in out) == sum(1 for _ in enc.parameters())
    with pytest.raises(ValueError, match="unfreeze_last_k must be between 1 and"):
        apply_partial_unfreeze(enc, n + 1)


def test_an_encoder_without_layer_groups_says_so():
    with pytest.raises(TypeError, match="has no layer_groups"):
        apply_partial_unfreeze(torch.nn.Linear(2, 2), 1)
