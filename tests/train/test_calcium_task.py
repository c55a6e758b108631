"""Calcium segmentation on the engine: a killed run resumes exactly, the history is the engine's."""

import numpy as np
import pandas as pd
import pytest
import torch

from riskfm.errors import CheckpointError
from riskfm.synthetic.calcium import make_calcium_exam
from riskfm.train.tasks.calcium_segmentation import CalciumSegmentationTask, train_segmenter

SMALL = {"shape": (8, 48, 48), "spacing": (3.0, 2.5, 2.5)}
RUN = {"widths": (4, 8), "epochs": 3, "steps_per_epoch": 2, "batch_size": 2, "progress": False, "seed": 3}


class Killed(RuntimeError):
    pass


@pytest.fixture(scope="module")
def exams():
    return [make_calcium_exam(i, burden=2 + i % 3, **SMALL) for i in range(3)]


def _spy_loss(monkeypatch, losses, kill_at=None):
    """Record every step's loss; raise at call ``kill_at`` (1-based), as a crash mid-epoch would."""
    real = CalciumSegmentationTask.loss

    def loss(self, model, batch):
        if kill_at is not None and len(losses) + 1 == kill_at:
            raise Killed(f"killed at step {kill_at}")
        out = real(self, model, batch)
        losses.append(float(out[0].detach()))
        return out

    monkeypatch.setattr(CalciumSegmentationTask, "loss", loss)


@pytest.mark.parametrize("model", ["unet2d", "seg3d"])
def test_a_killed_run_started_again_ends_with_the_uninterrupted_weights(exams, tmp_path, monkeypatch, model):
    whole = train_segmenter(exams, model=model, **RUN)
    run = tmp_path / "run"
    with monkeypatch.context() as m:
        _spy_loss(m, [], kill_at=4)  # the second step of the second epoch: last.ckpt holds epoch 1 only
        with pytest.raises(Killed):
            train_segmenter(exams, model=model, checkpoint_dir=run, **RUN)
    assert (run / "checkpoints" / "last.ckpt").is_file()
    resumed_steps = []
    with monkeypatch.context() as m:
        _spy_loss(m, resumed_steps)
        again = train_segmenter(exams, model=model, checkpoint_dir=run, **RUN)
    assert len(resumed_steps) == 4  # epochs 2 and 3 only: the first was not trained twice
    state, expected = again.net.state_dict(), whole.net.state_dict()
    assert all(torch.equal(state[k], v) for k, v in expected.items())
    assert again.config.history == whole.config.history
    # A finished run started again trains nothing more and gives the same model.
    with monkeypatch.context() as m:
        _spy_loss(m, more := [])
        done = train_segmenter(exams, model=model, checkpoint_dir=run, **RUN)
    assert more == [] and done.config.history == whole.config.history
    assert all(torch.equal(done.net.state_dict()[k], v) for k, v in expected.items())
    # Other settings in the same folder: refused, not silently continued.
    with pytest.raises(CheckpointError, match="belongs to another run"):
        train_segmenter(exams, model=model, checkpoint_dir=run, **{**RUN, "steps_per_epoch": 3})


def test_history_is_the_mean_loss_of_each_epochs_steps(exams, tmp_path, monkeypatch):
    losses = []
    _spy_loss(monkeypatch, losses)
    seg = train_segmenter(exams, checkpoint_dir=tmp_path, **RUN)
    assert len(losses) == 6 and len(seg.config.history) == 3
    per_epoch = np.asarray(losses).reshape(3, 2).mean(axis=1)
    assert seg.config.history == pytest.approx(per_epoch.tolist(), rel=1e-6)  # the engine keeps it in float32
    assert seg.config.history == pd.read_csv(tmp_path / "history.csv", float_precision="round_trip")["train_loss"].tolist()
    assert not seg.net.training and next(seg.net.parameters()).device.type == "cpu"


def test_a_device_torch_cannot_train_on_is_refused_before_any_work(exams):
    with pytest.raises(ValueError, match="device must be 'cpu', 'cuda', 'cuda:N' or 'mps', got 'gpu0'"):
        train_segmenter(exams, device="gpu0", **RUN)
    with pytest.raises(ValueError, match="got 'meta'"):
        train_segmenter(exams, device="meta", **RUN)
