"""CORA's residual U-Net: Table S1 structure, encoder contract, dense output, checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.networks.blocks.dynunet_block import UnetResBlock, UnetUpBlock
from torch import nn

from riskfm.ct.cora import CORA_BLOCKS, CORA_STRIDES, CoraResUNet, cora_input_spec
from riskfm.encoders import create_encoder, encoder_info, list_encoders


def _small(width=4, shape=(16, 16, 16)):
    torch.manual_seed(0)
    return CoraResUNet(width=width, input_spec=cora_input_spec((2.0, 1.5, 1.5), shape))


def _conv_stride(block: UnetResBlock) -> int:
    return int(block.conv1.conv.stride[0])


def test_table_s1_stage_widths_blocks_and_strides():
    net = CoraResUNet()  # width 32: building it is cheap, no forward pass
    assert net.channels == (32, 64, 128, 256) and net.feature_dim == 256
    assert tuple(len(s) for s in net.stages) == CORA_BLOCKS == (1, 3, 4, 4)
    assert tuple(s.stride for s in net.stages) == CORA_STRIDES == (1, 2, 2, 2)
    for stage, width, stride in zip(net.stages, (32, 64, 128, 256), (1, 2, 2, 2)):
        assert all(isinstance(b, UnetResBlock) for b in stage)
        assert _conv_stride(stage[0]) == stride and all(_conv_stride(b) == 1 for b in stage[1:])
        assert all(b.conv2.conv.out_channels == width for b in stage)
    assert net.stages[0][0].conv1.conv.in_channels == 4  # four CORA windows
    # Decoder: one up block per stage 128, 64, 32, then a 1x1x1 conv to one channel.
    assert len(net.decoder) == 3 and all(isinstance(b, UnetUpBlock) for b in net.decoder)
    assert [b.conv_block.conv2.conv.out_channels for b in net.decoder] == [128, 64, 32]
    assert net.head.conv.conv.kernel_size == (1, 1, 1) and net.head.conv.conv.out_channels == 1
    n_params = sum(p.numel() for p in net.parameters())
    assert 18e6 < n_params < 22e6  # ~19.4M (methods.md quotes ~21M for the closest SegResNet)


def test_every_conv_is_3x3x3_with_instance_norm_and_leaky_relu():
    net = CoraResUNet(width=8)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv3d)]
    # 3x3x3 everywhere except the 1x1x1 residual projections and the output head.
    big = [c for c in convs if c.kernel_size == (3, 3, 3)]
    small = [c for c in convs if c.kernel_size == (1, 1, 1)]
    assert len(big) + len(small) == len(convs) and len(big) == 2 * sum(CORA_BLOCKS) + 2 * 3
    norms = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._NormBase | nn.InstanceNorm3d)]
    assert norms and all(isinstance(m, nn.InstanceNorm3d) and m.affine for m in norms)
    acts = [m for m in net.modules() if isinstance(m, nn.LeakyReLU)]
    assert acts and all(a.negative_slope == 0.01 and not a.inplace for a in acts)
    assert not any(isinstance(m, nn.ReLU | nn.BatchNorm3d) for m in net.modules())


def test_encoder_contract_features_and_sigmoid_dense_output():
    net = _small()
    x = torch.rand(2, 4, 16, 16, 16)
    feats = net(x)
    assert feats.shape == (2, 32) and net.feature_dim == 32
    dense = net.forward_dense(x)
    assert dense.shape == (2, 1, 16, 16, 16)
    assert dense.min() >= 0 and dense.max() <= 1
    torch.testing.assert_close(dense, torch.sigmoid(net.dense_logits(x)))
    torch.testing.assert_close(feats, net.forward_features(x).mean(dim=(2, 3, 4)))


def test_odd_sizes_are_padded_and_cropped_back():
    net = _small()
    x = torch.rand(1, 4, 13, 18, 21)
    assert net.forward_dense(x).shape == (1, 1, 13, 18, 21)
    assert net.forward_features(x).shape == (1, 32, 2, 3, 3)
    with pytest.raises(ValueError, match="expects"):
        net(torch.rand(1, 3, 16, 16, 16))


def test_gradcam_layer_is_the_bottleneck():
    net = _small()
    seen = []
    handle = net.gradcam_layer.register_forward_hook(lambda _m, _i, out: seen.append(out.shape))
    net(torch.rand(1, 4, 16, 16, 16))
    handle.remove()
    assert seen == [torch.Size([1, 32, 2, 2, 2])]
    assert net.gradcam_layer is net.stages[-1][-1]


def test_registry_entries_and_small_variant():
    assert {"cora-resunet", "cora-resunet-small"} <= set(list_encoders("ct"))
    info = encoder_info("cora-resunet")
    assert info.modality == "ct" and "CORA" in info.description
    small = create_encoder("cora-resunet-small")
    assert small.width == 8 and small.feature_dim == 64 and small.input_spec.shape == (32, 32, 32)


def test_checkpoint_round_trip_through_create_encoder(tmp_path):
    source = _small()
    with torch.no_grad():
        for p in source.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    path = tmp_path / "cora.pt"
    torch.save({"model": source.state_dict(), "config": {"width": 4}}, path)
    loaded = create_encoder("cora-resunet", checkpoint=path, width=4,
                            input_spec={"spacing": [2.0, 1.5, 1.5], "shape": [16, 16, 16]})
    x = torch.rand(1, 4, 16, 16, 16)
    source.eval()
    loaded.eval()
    torch.testing.assert_close(loaded.forward_dense(x), source.forward_dense(x))
    with pytest.raises(Exception, match="shape"):
        create_encoder("cora-resunet", checkpoint=path, width=8)


def test_reset_decoder_keeps_the_encoder():
    net = _small()
    enc = {k: v.clone() for k, v in net.state_dict().items() if k.startswith("stages")}
    dec = {k: v.clone() for k, v in net.state_dict().items() if k.startswith(("decoder", "head"))}
    torch.manual_seed(5)
    net.reset_decoder()
    state = net.state_dict()
    assert all(torch.equal(state[k], v) for k, v in enc.items())
    assert any(not torch.equal(state[k], v) for k, v in dec.items() if v.ndim > 1)


# ------------------------------------------------------------------ plaque head pooling
def test_plaque_classifier_pool_options_give_feature_sizes():
    from riskfm.ct.finetune import PlaqueClassifier

    net = _small(width=4)  # feature_dim 32
    x = torch.rand(2, 4, 16, 16, 16)
    for pool, dim in (("avg", 32), ("max", 32), ("avgmax", 64)):
        model = PlaqueClassifier(net, n_labels=2, pool=pool).eval()
        assert model.feature_dim == dim and model.head.in_features == dim
        with torch.no_grad():
            feats = model.features(x)
            assert feats.shape == (2, dim) and model(x).shape == (2, 2)
        fmap = net.forward_features(x)
        ref = {"avg": fmap.mean(dim=(2, 3, 4)), "max": fmap.amax(dim=(2, 3, 4))}
        expected = torch.cat([ref["avg"], ref["max"]], 1) if pool == "avgmax" else ref[pool]
        assert torch.allclose(feats, expected, atol=1e-6)
    # "avg" is exactly the registered encoder's pooled output (CORA's global average pooling).
    with torch.no_grad():
        assert torch.allclose(PlaqueClassifier(net, pool="avg").features(x), net(x), atol=1e-6)
    with pytest.raises(ValueError, match="pool must be one of"):
        PlaqueClassifier(net, pool="sum")


def test_plaque_classifier_all_scales_pools_every_encoder_stage():
    from riskfm.ct.finetune import PlaqueClassifier

    net = _small(width=4).eval()  # stages 4/8/16/32 channels
    x = torch.rand(2, 4, 16, 24, 16)
    with torch.no_grad():
        maps = net.stage_outputs(x)
        # Stage maps at strides 1, 2, 4, 8; the last is the bottleneck forward_features gives.
        assert [tuple(m.shape[1:]) for m in maps] == [(4, 16, 24, 16), (8, 8, 12, 8), (16, 4, 6, 4), (32, 2, 3, 2)]
        assert torch.equal(maps[-1], net.forward_features(x))
        for pool, dim in (("max", 60), ("avgmax", 120)):
            model = PlaqueClassifier(net, pool=pool, scales="all").eval()
            assert model.feature_dim == dim == model.head.in_features and model(x).shape == (2, 2)
            feats = model.features(x)
            # Full resolution first, each stage pooled on its own (max of stage 1 is its first 4 values).
            assert torch.allclose(feats[:, :4], maps[0].amax(dim=(2, 3, 4)) if pool == "max"
                                  else maps[0].mean(dim=(2, 3, 4)), atol=1e-6)
            assert torch.allclose(feats[:, -32:], maps[3].amax(dim=(2, 3, 4)), atol=1e-6)
    with pytest.raises(ValueError, match="scales must be one of"):
        PlaqueClassifier(net, scales="stage2")


def test_probe_initialised_head_is_the_logistic_regression_and_keeps_its_standardisation():
    # LP-FT's "LP": the head equals scikit-learn's L2 logistic regression on the standardised
    # frozen features, and the standardisation stays fixed through training-mode forwards.
    from sklearn.linear_model import LogisticRegression

    from riskfm.ct.finetune import PlaqueClassifier

    torch.manual_seed(0)
    net = _small(width=2)
    model = PlaqueClassifier(net, pool="max", scales="all")
    x = torch.rand(12, 4, 16, 16, 16)
    y = np.array([[i % 2, i % 3 == 0] for i in range(12)], dtype=float)
    enc_before = {k: v.clone() for k, v in net.state_dict().items()}
    model.init_head_from_probe(x, y)
    assert all(torch.equal(v, enc_before[k]) for k, v in net.state_dict().items())
    with torch.no_grad():
        feats = model.eval().features(x).double().numpy()
    z = (feats - feats.mean(0)) / np.sqrt(feats.var(0) + model.norm.eps)
    for j in range(2):
        ref = LogisticRegression(C=1.0, class_weight="balanced", max_iter=5000).fit(z, y[:, j])
        assert np.allclose(model.head.weight[j].detach().numpy(), ref.coef_[0], atol=1e-4)
        with torch.no_grad():
            prob = torch.sigmoid(model(x)[:, j]).numpy()
        assert np.allclose(prob, ref.predict_proba(z)[:, 1], atol=1e-4)
    mean_before = model.norm.running_mean.clone()
    model.train()
    assert model.training and not model.norm.training
    model(x[:4])  # a training-mode batch neither re-standardises nor moves the stored statistics
    assert torch.equal(model.norm.running_mean, mean_before)
    # A label with one class in the training set: zero weights, the bias of its prevalence.
    model.init_head_from_probe(x, np.c_[y[:, 0], np.ones(12)])
    assert torch.all(model.head.weight[1] == 0) and model.head.bias[1] > 4
    with pytest.raises(ValueError, match="targets of shape"):
        model.init_head_from_probe(x, y[:5])


def test_max_pooling_keeps_a_single_hot_position_that_averaging_dilutes():
    from riskfm.ct.finetune import pool_features

    # A 4 x 6 x 6 bottleneck (a 32 x 48 x 48 volume at stride 8): 144 positions, one "plaque".
    background = torch.zeros(8, 1, 4, 6, 6)
    lesion = background.clone()
    lesion[:, 0, 2, 3, 1] = 1.0
    gap = pool_features(lesion, "avg") - pool_features(background, "avg")
    assert torch.allclose(gap, torch.full_like(gap, 1 / 144))  # diluted 144-fold
    gmp = pool_features(lesion, "max") - pool_features(background, "max")
    assert torch.allclose(gmp, torch.ones_like(gmp))  # seen at full strength
    both = pool_features(lesion, "avgmax")
    assert both.shape == (8, 2) and torch.allclose(both[:, 1], torch.ones(8))
    # The same lesion added to noisy backgrounds that also differ by a volume-wide offset (as
    # volumes do): max separates lesion / no lesion perfectly, average does not (its 3/144 shift
    # is smaller than the volume-to-volume spread).
    g = torch.Generator().manual_seed(0)
    noise = 0.1 * torch.randn(64, 1, 4, 6, 6, generator=g) + 0.05 * torch.randn(64, 1, 1, 1, 1, generator=g)
    with_lesion = noise[:32].clone()
    with_lesion[:, 0, 2, 3, 1] += 3.0
    from sklearn.metrics import roc_auc_score

    y = [1] * 32 + [0] * 32
    score = {p: pool_features(torch.cat([with_lesion, noise[32:]]), p)[:, 0].numpy() for p in ("avg", "max")}
    assert roc_auc_score(y, score["max"]) == 1.0
    assert roc_auc_score(y, score["avg"]) < 0.9
    with pytest.raises(ValueError, match="pool must be one of"):
        pool_features(lesion, "median")


# ------------------------------------------------------------------ fine-tuning learning rates
def test_fine_tuning_gives_the_encoder_its_own_learning_rate():
    # Standard fine-tuning of a pretrained encoder: a smaller encoder learning rate than the head's.
    # With encoder_lr 0 the encoder must not move at all while the head trains.
    from riskfm.ct.finetune import PlaqueClassifier
    from riskfm.train.tasks.sampled import SampledBatchTask, fit_sampled

    def fit_steps(model, loss, draw, steps, lr, encoder=None, encoder_lr=None):
        task = SampledBatchTask("cora-plaque", model, loss, draw, encoder=encoder, encoder_lr=encoder_lr)
        return fit_sampled(task, steps, lr=lr, progress=False)

    net = _small(width=2)
    model = PlaqueClassifier(net, n_labels=2, pool="max")
    enc_before = [p.detach().clone() for p in net.parameters()]
    head_before = model.head.weight.detach().clone()
    x, y = torch.rand(4, 4, 16, 16, 16), torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0]])
    fit = fit_steps(model, nn.BCEWithLogitsLoss(), lambda rng: (x, y), 3, lr=1e-2, encoder=net, encoder_lr=0.0)
    assert len(fit.steps) == 3
    assert all(torch.equal(a, b) for a, b in zip(enc_before, net.parameters()))
    assert not torch.equal(head_before, model.head.weight)
    # Without a separate encoder rate every parameter trains at ``lr``.
    fit_steps(model, nn.BCEWithLogitsLoss(), lambda rng: (x, y), 2, lr=1e-2)
    assert any(not torch.equal(a, b) for a, b in zip(enc_before, net.parameters()))
