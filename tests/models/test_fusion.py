import pytest
import torch

from riskfm.models import ConcatFusion
from riskfm.models.fusion import PresentBatchNorm


def test_present_batch_norm_uses_only_patients_with_the_modality():
    torch.manual_seed(0)
    x = torch.randn(6, 3) * 4 + 10
    present = torch.tensor([True, True, True, False, False, True])
    x[~present] = 0.0  # placeholder features of absent patients must not shift the statistics
    bn = PresentBatchNorm(3).train()
    out = bn(x, present)
    rows = x[present]
    expected = (rows - rows.mean(0)) / torch.sqrt(rows.var(0, unbiased=False) + bn.eps)
    torch.testing.assert_close(out[present], expected)
    torch.testing.assert_close(bn.running_mean, 0.1 * rows.mean(0))
    # One present patient (or a batch of one) falls back to the running statistics instead of failing.
    single = bn(x[:1], present[:1])
    torch.testing.assert_close(single, (x[:1] - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps))


def test_batch_norm_keeps_the_patient_scale_that_layer_norm_removes():
    # Two patients whose features differ only by scale (say, ST deviation x1 and x3): LayerNorm maps
    # them to the same vector, so no head could tell their severity apart; batch norm keeps them apart.
    base = torch.tensor([[1.0, -1.0, 2.0, 0.5]])
    feats = torch.cat([base, 3 * base, -base, torch.zeros_like(base)])
    present = torch.ones(4, dtype=torch.bool)
    layer = ConcatFusion({"ecg": 4}, proj_dim=8, norm="layer", modality_dropout=0.0, dropout=0.0).eval()
    batch = ConcatFusion({"ecg": 4}, proj_dim=8, norm="batch", modality_dropout=0.0, dropout=0.0).train()
    z_layer = layer({"ecg": feats}, {"ecg": present})
    z_batch = batch({"ecg": feats}, {"ecg": present})
    torch.testing.assert_close(z_layer[0], z_layer[1], atol=1e-4, rtol=1e-4)
    assert not torch.allclose(z_batch[0], z_batch[1], atol=1e-3)


def test_fusion_rejects_an_unknown_norm():
    with pytest.raises(ValueError, match="norm"):
        ConcatFusion({"ecg": 4}, norm="group")


def test_run_config_names_the_fusion_norm():
    from riskfm.train.config import ConfigError, parse_config

    base = {"manifest": "m.csv", "out": "o", "modalities": ["ecg"], "targets": ["mace_30d"]}
    assert parse_config({**base, "fusion": {"norm": "layer"}}).fusion.norm == "layer"
    with pytest.raises(ConfigError, match="norm"):
        parse_config({**base, "fusion": {"norm": "instance"}})


def test_passthrough_modality_is_concatenated_unprojected():
    # CORA's MACE model: pooled image features as they are, the text embedding projected.
    torch.manual_seed(0)
    fusion = ConcatFusion({"ct": 6, "clinical": 5}, proj_dim=3, norm="none", modality_dropout=0.0,
                          passthrough=["ct"]).eval()
    assert fusion.out_dim == 6 + 3 and fusion.passthrough == ["ct"]
    ct, text = torch.randn(4, 6), torch.randn(4, 5)
    present = {"ct": torch.tensor([True, True, False, True]), "clinical": torch.ones(4, dtype=torch.bool)}
    z = fusion({"ct": ct, "clinical": text}, present)
    torch.testing.assert_close(z[present["ct"], :6], ct[present["ct"]])
    torch.testing.assert_close(z[2, :6], fusion.missing["ct"].detach())  # absent CT: its learned embedding
    torch.testing.assert_close(z[:, 6:], fusion.proj["clinical"](text))
    with pytest.raises(ValueError, match="passthrough"):
        ConcatFusion({"ct": 6}, passthrough=["ecg"])


def test_run_config_passthrough_is_checked_and_left_out_of_old_configs():
    from riskfm.train.config import ConfigError, parse_config

    base = {"manifest": "m.csv", "out": "o", "modalities": ["ct", "clinical"], "targets": ["mace_30d"]}
    # Absent from the dump when empty: fingerprints of runs written before the key existed still match.
    assert "passthrough" not in parse_config(base).model_dump(mode="json")["fusion"]
    cfg = parse_config({**base, "fusion": {"passthrough": ["ct"]}})
    assert cfg.model_dump(mode="json")["fusion"]["passthrough"] == ["ct"]
    with pytest.raises(ConfigError, match=r"fusion.passthrough lists modalities not in `modalities`: \['ecg'\]"):
        parse_config({**base, "fusion": {"passthrough": ["ecg"]}})
