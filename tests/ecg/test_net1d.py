"""ECGFounder compatibility: released parameter names/shapes load strictly and reproduce an
independent functional re-implementation of Net1D (written here from the architecture description)."""

import math

import pytest
import torch
import torch.nn.functional as F

from riskfm.ecg.net1d import ECGFounderEncoder, load_ecgfounder
from riskfm.encoders import CheckpointError, create_encoder

FILTERS = [64, 160, 160, 400, 400, 1024, 1024]
BLOCKS = [2, 2, 2, 3, 3, 4, 4]


def released_shapes(in_ch, filters=FILTERS, blocks=BLOCKS, n_classes=150, k=16):
    """Names and shapes of the released checkpoints, derived from the published structure."""
    shapes = {"first_conv.conv.weight": (filters[0], in_ch, k), "first_conv.conv.bias": (filters[0],)}

    def bn(prefix, c):
        shapes.update({f"{prefix}.weight": (c,), f"{prefix}.bias": (c,), f"{prefix}.running_mean": (c,),
                       f"{prefix}.running_var": (c,), f"{prefix}.num_batches_tracked": ()})

    bn("first_bn", filters[0])
    width = filters[0]
    for s, (out, m) in enumerate(zip(filters, blocks)):
        for b in range(m):
            cin = width if b == 0 else out
            p = f"stage_list.{s}.block_list.{b}"
            bn(f"{p}.bn1", cin)
            shapes[f"{p}.conv1.conv.weight"], shapes[f"{p}.conv1.conv.bias"] = (out, cin, 1), (out,)
            bn(f"{p}.bn2", out)
            shapes[f"{p}.conv2.conv.weight"], shapes[f"{p}.conv2.conv.bias"] = (out, 16, k), (out,)
            bn(f"{p}.bn3", out)
            shapes[f"{p}.conv3.conv.weight"], shapes[f"{p}.conv3.conv.bias"] = (out, out, 1), (out,)
            shapes[f"{p}.se_fc1.weight"], shapes[f"{p}.se_fc1.bias"] = (out // 2, out), (out // 2,)
            shapes[f"{p}.se_fc2.weight"], shapes[f"{p}.se_fc2.bias"] = (out, out // 2), (out,)
        width = out
    shapes["dense.weight"], shapes["dense.bias"] = (n_classes, width), (n_classes,)
    return shapes


def random_state_dict(shapes, seed):
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for name, shape in shapes.items():
        if name.endswith("num_batches_tracked"):
            sd[name] = torch.tensor(7)
        elif name.endswith("running_var"):
            sd[name] = torch.rand(shape, generator=g, dtype=torch.float64) + 0.5
        else:
            fan_in = math.prod(shape[1:]) if len(shape) > 1 else 1
            sd[name] = torch.randn(shape, generator=g, dtype=torch.float64) / math.sqrt(fan_in)
    return sd


def reference_logits(sd, x, filters=FILTERS, blocks=BLOCKS, k=16):
    """Net1D forward written directly with torch.nn.functional (use_bn=False, use_do=False)."""
    def same_conv(h, w, b, stride, groups=1):
        length = h.shape[-1]
        out_len = -(-length // stride)
        pad = max(0, (out_len - 1) * stride + w.shape[-1] - length)
        return F.conv1d(F.pad(h, (pad // 2, pad - pad // 2)), w, b, stride=stride, groups=groups)

    def swish(h):
        return h * torch.sigmoid(h)

    h = swish(same_conv(x, sd["first_conv.conv.weight"], sd["first_conv.conv.bias"], 2))
    width = filters[0]
    for s, (out, m) in enumerate(zip(filters, blocks)):
        for b in range(m):
            p = f"stage_list.{s}.block_list.{b}."
            stride = 2 if b == 0 else 1
            cin = width if b == 0 else out
            y = h if (s == 0 and b == 0) else swish(h)
            y = same_conv(y, sd[p + "conv1.conv.weight"], sd[p + "conv1.conv.bias"], 1)
            y = same_conv(swish(y), sd[p + "conv2.conv.weight"], sd[p + "conv2.conv.bias"], stride, out // 16)
            y = same_conv(swish(y), sd[p + "conv3.conv.weight"], sd[p + "conv3.conv.bias"], 1)
            se = swish(F.linear(y.mean(-1), sd[p + "se_fc1.weight"], sd[p + "se_fc1.bias"]))
            se = torch.sigmoid(F.linear(se, sd[p + "se_fc2.weight"], sd[p + "se_fc2.bias"]))
            y = y * se[:, :, None]
            short = h
            if b == 0:  # max-pool 2 with one zero appended (padding computed for stride 1)
                short = F.max_pool1d(F.pad(short, (0, 1)), 2)
            if out != cin:
                extra = out - cin
                short = torch.cat([short.new_zeros(short.shape[0], extra // 2, short.shape[-1]), short,
                                   short.new_zeros(short.shape[0], extra - extra // 2, short.shape[-1])], 1)
            h = y + short
        width = out
    feats = h.mean(-1)
    return F.linear(feats, sd["dense.weight"], sd["dense.bias"]), feats


@pytest.fixture(scope="module", params=[12, 1], ids=["12lead", "1lead"])
def released(request, tmp_path_factory):
    """(n_leads, float64 state dict, path of a file in the released layout)."""
    n_leads = request.param
    shapes = released_shapes(n_leads)
    sd = random_state_dict(shapes, seed=n_leads)
    path = tmp_path_factory.mktemp("ckpt") / f"{n_leads}_lead_ECGFounder.pth"
    # The released layout: a dict with the weights under "state_dict" (plus training metadata);
    # the 1-lead file also carries DDP "module." prefixes, which must be stripped.
    prefix = "module." if n_leads == 1 else ""
    torch.save({"state_dict": {prefix + k: v.float() for k, v in sd.items()}, "epoch": 3}, path)
    return n_leads, sd, path


def test_released_layout_loads_strictly_and_matches_reference(released):
    n_leads, sd, path = released
    assert len(sd) == 509
    enc = create_encoder(f"ecgfounder-{n_leads}lead", checkpoint=path, keep_pretrained_head=True).eval()
    n_params = sum(p.numel() for p in enc.parameters())
    assert n_params == (30_819_014 if n_leads == 12 else 30_819_014 - 11 * 64 * 16)
    assert len(enc.state_dict()) == 509
    assert enc.feature_dim == 1024 and len(enc.input_spec.leads) == n_leads and enc.input_spec.leads[0] == "I"

    x = torch.randn(2, n_leads, 600, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    with torch.no_grad():
        ref_logits, ref_feats = reference_logits(sd, x)
        # float32, as shipped: max relative error 1e-5 against the float64 reference
        got32 = enc.pretrained_logits(x.float()).double()
        assert ((got32 - ref_logits).abs().max() / ref_logits.abs().max()).item() < 1e-5
        # float64: the same arithmetic, so agreement to rounding
        enc = enc.double()
        enc.load_state_dict(sd)
        logits, feats = enc.pretrained_logits(x), enc(x)
    assert logits.shape == (2, 150) and feats.shape == (2, 1024)
    assert ((logits - ref_logits).abs().max() / ref_logits.abs().max()).item() < 1e-10
    assert torch.allclose(feats, ref_feats, rtol=1e-9, atol=1e-12)


def test_head_dropped_without_keep(released):
    n_leads, sd, path = released
    enc = load_ecgfounder(path, n_leads=n_leads)
    assert enc.dense is None and "dense.weight" not in enc.state_dict()
    with pytest.raises(RuntimeError, match="keep_pretrained_head"):
        enc.pretrained_logits(torch.zeros(1, n_leads, 100))
    x = torch.ones(1, n_leads, 300, dtype=torch.float64)
    with torch.no_grad():
        _, ref = reference_logits(sd, x)
        assert torch.allclose(enc(x.float()).double(), ref, rtol=1e-4, atol=1e-5)


def test_wrong_checkpoint_is_refused_with_names(tmp_path):
    shapes = released_shapes(12)
    sd = {k: torch.zeros(s) for k, s in shapes.items()}
    del sd["stage_list.6.block_list.3.se_fc2.bias"]
    torch.save({"state_dict": sd}, tmp_path / "broken.pth")
    with pytest.raises(CheckpointError, match="se_fc2.bias"):
        create_encoder("ecgfounder-12lead", checkpoint=tmp_path / "broken.pth", keep_pretrained_head=True)
    # 1-lead weights into the 12-lead model: a shape error naming the tensor
    torch.save({"state_dict": {k: torch.zeros(s) for k, s in released_shapes(1).items()}}, tmp_path / "one.pth")
    with pytest.raises(CheckpointError, match="first_conv.conv.weight"):
        load_ecgfounder(tmp_path / "one.pth", n_leads=12)


def test_legacy_pickle_needs_explicit_opt_in(tmp_path):
    import argparse

    sd = {k: torch.zeros(s) for k, s in released_shapes(1).items()}
    # training scripts often pickle their argparse namespace next to the weights
    torch.save({"state_dict": sd, "args": argparse.Namespace(lr=1e-4)}, tmp_path / "legacy.pth")
    with pytest.raises(CheckpointError, match="weights_only"):
        load_ecgfounder(tmp_path / "legacy.pth", n_leads=1)
    enc = load_ecgfounder(tmp_path / "legacy.pth", n_leads=1, weights_only=False)  # explicit opt-in
    assert enc.feature_dim == 1024


def test_tiny_variant_has_the_same_structure():
    tiny = ECGFounderEncoder(width_multiplier=0.125, keep_pretrained_head=True)
    full_names = set(released_shapes(12))
    assert set(tiny.state_dict()) == full_names
    assert tiny(torch.zeros(2, 12, 500)).shape == (2, tiny.feature_dim)
