"""CORA pretraining: the loss, a few Fabric steps on the real cardiac CTA, checkpoints, sliding windows."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from riskfm.ct import CTVolume, read_ct
from riskfm.ct.cases import CTCase, load_case
from riskfm.ct.cora import CoraResUNet, cora_input_spec
from riskfm.ct.pretrain import (
    CoraLoss,
    PretrainConfig,
    SynthesisPatchDataset,
    abnormality_map,
    load_pretrained,
    prepare_volume,
)
from riskfm.ct.sliding import predict_volume, sliding_window_predict
from riskfm.ct.synthesis import LesionSynthesisEngine, SynthesisConfig
from riskfm.encoders import create_encoder
from riskfm.train.tasks.cora_pretrain import pretrain_cora


def test_loss_is_tversky_alpha_01_beta_09_plus_focal_gamma_4():
    torch.manual_seed(0)
    logits = torch.randn(2, 1, 6, 6, 6)
    target = (torch.rand(2, 1, 6, 6, 6) > 0.8).float()
    p = torch.sigmoid(logits)
    tp = (p * target).sum()
    fp = (p * (1 - target)).sum()
    fn = ((1 - p) * target).sum()
    tversky = 1 - (tp + 1e-5) / (tp + 0.1 * fp + 0.9 * fn + 1e-5)
    pt = torch.where(target > 0, p, 1 - p)
    focal = (-(1 - pt) ** 4 * torch.log(pt)).mean()
    torch.testing.assert_close(CoraLoss()(logits, target), tversky + focal, rtol=1e-4, atol=1e-6)
    # beta > alpha: a missed lesion voxel costs more than a false alarm of the same confidence.
    base = torch.full((1, 1, 4, 4, 4), -4.0)
    t = torch.zeros_like(base)
    t[..., 0, 0, :2] = 1
    miss = base.clone()
    alarm = base.clone()
    alarm[..., 0, 0, :2] = 4.0
    alarm[..., 3, 3, :2] = 4.0
    loss = CoraLoss()
    assert loss(miss, t) > loss(alarm, t)
    with pytest.raises(ValueError, match="differ"):
        loss(base, t[..., :2])


@pytest.fixture(scope="module")
def cta_case(fixtures_dir):
    folder = fixtures_dir / "ct" / "cardiac_cta"
    return CTCase("cardiac_cta", folder / "ct.nii.gz", {"heart": folder / "heart.nii.gz"})


def test_dataset_items_are_deterministic_and_use_the_fallback(cta_case):
    vol = prepare_volume(cta_case, (1.5, 1.5, 1.5), (24, 24, 24))
    assert vol.mask_source == "thin-bright" and len(vol.candidates) > 50
    engine = LesionSynthesisEngine(SynthesisConfig(patch_size=(24, 24, 24)))
    ds = SynthesisPatchDataset([vol], engine, length=4, seed=3)
    x, y = ds[1]
    assert x.shape == (4, 24, 24, 24) and y.shape == (1, 24, 24, 24)
    x2, y2 = SynthesisPatchDataset([vol], engine, length=4, seed=3)[1]
    assert torch.equal(x, x2) and torch.equal(y, y2)
    # Resuming with an offset reproduces the same sample sequence.
    shifted = SynthesisPatchDataset([vol], engine, length=3, seed=3, offset=1)
    assert torch.equal(shifted[0][0], x)
    with pytest.raises(IndexError):
        ds[4]


def test_pretraining_steps_on_the_real_cta_write_loadable_checkpoints(cta_case, tmp_path):
    cfg = PretrainConfig(width=4, patch_size=(16, 16, 16), spacing=(1.5, 1.5, 1.5), steps=3, batch_size=2,
                         checkpoint_every=2, seed=0)
    res = pretrain_cora([cta_case], tmp_path / "run", cfg)
    assert [h["step"] for h in res.history] == [1, 2, 3]
    assert all(np.isfinite(h["loss"]) for h in res.history)
    assert res.volumes[0]["mask_source"] == "thin-bright"
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").is_file()
    assert (tmp_path / "run" / "history.csv").is_file()

    # The final weights load through the registry (same width) and through load_pretrained.
    enc = create_encoder("cora-resunet", checkpoint=res.checkpoint, width=4)
    net = load_pretrained(res.checkpoint)
    assert net.width == 4 and net.input_spec.spacing == (1.5, 1.5, 1.5) and net.input_spec.shape == (16, 16, 16)
    for a, b in zip(enc.state_dict().values(), net.state_dict().values()):
        assert torch.equal(a, b)

    # Resume: a longer run continues from step 3 instead of starting over.
    more = pretrain_cora([cta_case], tmp_path / "run", PretrainConfig(**{**cfg.__dict__, "steps": 4}))
    assert [h["step"] for h in more.history] == [1, 2, 3, 4]
    assert more.history[:3] == res.history


def test_sliding_window_matches_a_whole_volume_pass_for_a_local_model():
    # A voxel-wise model gives each voxel the same value in every window: the Gaussian-weighted
    # average of the windows must then reproduce one whole-volume pass exactly (weights normalised).
    torch.manual_seed(0)
    conv = torch.nn.Conv3d(4, 1, 1)
    x = torch.rand(1, 4, 20, 26, 24)
    with torch.no_grad():
        whole = conv(x)
        tiled = sliding_window_predict(x, conv, (12, 12, 12), overlap=0.5)
    torch.testing.assert_close(tiled, whole, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="roi_size"):
        sliding_window_predict(x, conv, (12, 12))


def test_sliding_window_inference_and_zero_shot_map_over_the_real_cta(cta_case):
    loaded = load_case(cta_case)
    torch.manual_seed(0)
    net = CoraResUNet(width=4, input_spec=cora_input_spec((3.0, 3.0, 3.0), (24, 24, 24)))
    prob = predict_volume(net, loaded.vol)
    assert prob.shape == (56, 51, 61) and prob.spacing == (3.0, 3.0, 3.0)
    assert 0 <= prob.array.min() and prob.array.max() <= 1 and np.isfinite(prob.array).all()
    assert prob.meta["kind"] == "probability"
    back = abnormality_map(net, loaded.vol)
    assert back.shape == loaded.vol.shape and np.allclose(back.affine, loaded.vol.affine)
    assert isinstance(back, CTVolume)
    assert net.training  # the train / eval mode is restored


def test_bad_config_is_a_clear_error():
    with pytest.raises(ValueError, match="patch_size"):
        PretrainConfig(patch_size=(4, 4, 4))
    with pytest.raises(ValueError, match="steps"):
        PretrainConfig(steps=0)


def test_fixture_reads_in_hu(cta_case):
    vol = read_ct(cta_case.ct_path)
    assert vol.array.min() < -900 and vol.array.max() > 1000


def test_mask_resampling_keeps_the_heart_on_the_ct(cta_case):
    from riskfm.ct.preprocess import resample_mask, resample_to_spacing

    vol = read_ct(cta_case.ct_path)
    heart = read_ct(cta_case.masks["heart"]).array > 0.5
    coarse = resample_to_spacing(vol, (3.0, 2.5, 2.0))
    mask = resample_mask(heart, vol, (3.0, 2.5, 2.0))
    assert mask.dtype == bool and mask.shape == coarse.shape
    # Same grid: the heart keeps its share of the field of view and its (contrast-filled) HU.
    assert mask.mean() == pytest.approx(heart.mean(), rel=0.05)
    assert np.median(coarse.array[mask]) == pytest.approx(np.median(vol.array[heart]), abs=40)
    with pytest.raises(ValueError, match="shape"):
        resample_mask(heart[:-1], vol, (3.0, 3.0, 3.0))
