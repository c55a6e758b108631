"""transformers / generic adapters, fine-tuning modes, and `riskfm train` with ECGFounder through the store."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from torch import nn

from riskfm.ecg.spec import ECGInputSpec
from riskfm.encoders import create_encoder
from riskfm.train.finetune import apply_partial_unfreeze, layerwise_param_groups


def test_hf_adapter_loads_a_local_tiny_hubert(tmp_path):
    from transformers import HubertConfig, HubertModel

    cfg = HubertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=37,
                       conv_dim=(16, 16), conv_stride=(5, 2), conv_kernel=(10, 3), num_conv_pos_embeddings=16,
                       num_conv_pos_embedding_groups=2)
    torch.manual_seed(0)
    ref = HubertModel(cfg).eval()
    ref.save_pretrained(tmp_path / "tiny-hubert")
    enc = create_encoder("hf-ecg", model_path=str(tmp_path / "tiny-hubert")).eval()
    assert enc.feature_dim == 32 and enc.input_spec.fs == 100 and enc.input_spec.n_samples == 500
    x = torch.randn(2, 12, 500)
    with torch.no_grad():
        out = enc(x)
        expected = ref(input_values=x.reshape(2, -1)).last_hidden_state.mean(1)  # leads concatenated in time
    torch.testing.assert_close(out, expected)
    with pytest.raises(FileNotFoundError, match="config.json"):
        create_encoder("hf-ecg", model_path=str(tmp_path))


def test_generic_adapter_infers_feature_dim_and_pools():
    net = nn.Sequential(nn.Conv1d(12, 24, 5))  # returns [B, 24, T']: pooled over time
    enc = create_encoder("generic-ecg", module=net, input_spec={"fs": 250, "n_samples": 1000})
    assert enc.feature_dim == 24 and isinstance(enc.input_spec, ECGInputSpec)
    x = torch.randn(3, 12, 1000)
    torch.testing.assert_close(enc(x), net(x).mean(-1))
    with pytest.raises(ValueError, match="input_spec is required"):
        create_encoder("generic-ecg", module=net)


def test_partial_unfreeze_and_layerwise_lr():
    enc = create_encoder("ecgfounder-tiny")
    names = apply_partial_unfreeze(enc, 2)
    assert names and all(n.startswith(("stage_list.5.", "stage_list.6.")) for n in names)
    groups = layerwise_param_groups(enc, 1e-3, 0.5, weight_decay=1e-5)
    assert [g["lr"] for g in groups] == [5e-4, 1e-3] and all(g["weight_decay"] == 1e-5 for g in groups)
    for p in enc.parameters():
        p.requires_grad_(True)
    lrs = [g["lr"] for g in layerwise_param_groups(enc, 1e-3, 0.5)]
    assert len(lrs) == 8 and lrs[-1] == 1e-3 and lrs[0] == pytest.approx(1e-3 * 0.5 ** 7)
    with pytest.raises(ValueError, match="between 1 and 8"):
        apply_partial_unfreeze(enc, 9)


@pytest.mark.xdist_group("ecgfounder_train")
def test_riskfm_train_finetunes_ecgfounder_through_the_store(tmp_path, tiny_cohort):
    from typer.testing import CliRunner

    from riskfm.cli import app
    from riskfm.ecg.net1d import ecgfounder_input_spec
    from riskfm.ecg.store import build_ecg_store, manifest_ecg_paths, spec_to_dict

    # 2 s crops keep the 30.8M-parameter model affordable on a CPU test machine
    spec = ecgfounder_input_spec(n_samples=1000)
    build_ecg_store(manifest_ecg_paths(tiny_cohort.manifest_path), tmp_path / "store", spec, shard_size=40)
    cfg = {
        "manifest": str(tiny_cohort.manifest_path), "out": str(tmp_path / "run"),
        "modalities": ["ecg"], "targets": ["stenosis"],
        "split": {"external_sites": ["site_ext"], "test_fraction": 0.2, "seed": 0},
        "encoders": {"ecg": {"name": "ecgfounder-12lead", "finetune": "partial", "unfreeze_last_k": 1,
                             "kwargs": {"input_spec": spec_to_dict(spec)}}},
        "train": {"epochs": 1, "batch_size": 16, "progress": False},
        "data": {"ecg_store": str(tmp_path / "store"), "ecg_quality_filter": True},
        "evaluate": {"n_boot": 20, "figures": False},
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    result = CliRunner().invoke(app, ["train", str(tmp_path / "config.yaml")])
    assert result.exit_code == 0, result.output + repr(result.exception)
    resolved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    # ECGFounder's recipe filled in where the config was silent
    assert resolved["encoders"]["ecg"]["lr"] == 1e-4 and resolved["encoders"]["ecg"]["weight_decay"] == 1e-5
    assert resolved["train"]["optimizer"] == "adam" and resolved["train"]["scheduler"] == "plateau"
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert set(metrics["test"]) >= {"stenosis_rca", "stenosis_lm", "stenosis_lad", "stenosis_lcx"}
    report = (tmp_path / "run" / "cohort_report.txt").read_text()
    assert "patients kept" in report
    preds = pd.read_csv(tmp_path / "run" / "predictions.csv")
    splits = pd.read_csv(tmp_path / "run" / "splits.csv")
    # one probability per patient and artery, for every patient of every split, and not a constant
    assert not preds.duplicated(["patient_id", "target"]).any()
    assert set(preds["target"]) == {"stenosis_rca", "stenosis_lm", "stenosis_lad", "stenosis_lcx"}
    assert preds.groupby("target")["patient_id"].nunique().eq(len(splits)).all()
    assert preds["y_prob"].between(0, 1).all() and preds.groupby("target")["y_prob"].std().gt(0).all()


def test_median_beat_st_map_is_relative_to_the_pr_segment():
    from riskfm.ecg.beatnet import MedianBeatCNN
    from riskfm.ecg.spec import ECGInputSpec

    spec = ECGInputSpec(fs=250.0, n_samples=2500, representation="median_beat")
    enc = MedianBeatCNN(feature_dim=32, input_spec=spec).eval()
    length = spec.input_samples
    r = round(0.25 * 250)
    beat = torch.zeros(1, 12, length)
    beat[:, :, r + 25:r + 50] = 0.2           # 0.2 mV ST elevation 100-200 ms after R ...
    shifted = beat + 0.7                       # ... on a baseline offset, which must not matter
    levels = enc.st_levels(shifted)
    assert levels.shape == (1, 12, length // 5)  # 20 ms bins at 250 Hz
    torch.testing.assert_close(levels, enc.st_levels(beat))
    assert torch.allclose(levels[0, :, (r + 30) // 5], torch.full((12,), 0.2))
    assert torch.allclose(levels[0, :, (r - 20) // 5], torch.zeros(12))  # the PR segment itself
    assert enc(shifted).shape == (1, 32)
    assert MedianBeatCNN(feature_dim=32, st_map=False, input_spec=spec)(beat).shape == (1, 32)
    with pytest.raises(ValueError, match="pr_reference_s"):
        MedianBeatCNN(pr_reference_s=(0.3, 0.1), input_spec=spec)


def _median_beat_spec():
    from riskfm.ecg.spec import ECGInputSpec

    return ECGInputSpec(fs=250.0, n_samples=2500, representation="median_beat")


def test_median_beat_st_read_out_starts_at_st_start_s_and_is_standardised():
    from riskfm.ecg.beatnet import MedianBeatCNN

    spec = _median_beat_spec()
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(16, 12, spec.input_samples, generator=gen) * torch.linspace(0.05, 1.0, 12)[None, :, None]
    plain = MedianBeatCNN(feature_dim=32, st_start_s=-0.01, input_spec=spec)
    # R sits 0.25 s (62.5 -> 62 samples) into the beat; 20 ms bins of 5 samples: bin 12 starts at
    # 60 samples = 0.24 s, 10 ms before R, the first bin that starts at or after -0.01 s.
    assert plain.st_first_bin == 12
    levels = plain.st_levels(x)
    torch.testing.assert_close(plain.st_read_out_input(x), levels[:, :, 12:].reshape(16, -1))
    assert plain.st_head[-1].in_features == 12 * (levels.shape[2] - 12)

    normed = MedianBeatCNN(feature_dim=32, st_norm=True, st_start_s=-0.01, input_spec=spec).train()
    z = levels[:, :, 12:].reshape(16, -1).double().numpy()
    expected = (z - z.mean(0)) / np.sqrt(z.var(0) + 1e-5)  # the batch's statistics, biased variance
    np.testing.assert_allclose(normed.st_read_out_input(x).double().numpy(), expected, rtol=1e-4, atol=1e-5)
    assert int(normed.st_bn.num_batches_tracked) == 1
    running = (normed.st_bn.running_mean.clone(), normed.st_bn.running_var.clone())
    normed.st_read_out_input(x[:1])  # one patient in training: running statistics, none updated
    assert int(normed.st_bn.num_batches_tracked) == 1
    torch.testing.assert_close(normed.st_bn.running_mean, running[0])
    normed.eval()
    mean, var = (r.double().numpy() for r in running)
    np.testing.assert_allclose(normed.st_read_out_input(x).double().numpy(), (z - mean) / np.sqrt(var + 1e-5),
                               rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="st_start_s 0.5 leaves no ST-map bin"):
        MedianBeatCNN(st_start_s=0.5, input_spec=spec)


def test_median_beat_st_map_alone_is_a_linear_read_out_without_grad_cam():
    from riskfm.ecg.beatnet import MedianBeatCNN

    spec = _median_beat_spec()
    enc = MedianBeatCNN(feature_dim=24, conv=False, input_spec=spec).eval()
    x = torch.randn(3, 12, spec.input_samples)
    out = enc(x)
    assert out.shape == (3, 24) and not hasattr(enc, "features") and not hasattr(enc, "gradcam_layer")
    lin = enc.st_head[-1]
    torch.testing.assert_close(out, enc.st_levels(x).reshape(3, -1) @ lin.weight.T + lin.bias)
    assert hasattr(MedianBeatCNN(input_spec=spec), "gradcam_layer")
    with pytest.raises(ValueError, match="st_map and conv cannot both be off"):
        MedianBeatCNN(st_map=False, conv=False, input_spec=spec)


def test_median_beat_default_keeps_the_state_dict_of_earlier_models():
    from riskfm.ecg.beatnet import MedianBeatCNN

    keys = set(MedianBeatCNN(input_spec=_median_beat_spec()).state_dict())
    assert keys == {"features.0.weight", "features.0.bias", "features.2.weight", "features.2.bias",
                    "head.2.weight", "head.2.bias", "st_head.2.weight", "st_head.2.bias"}
