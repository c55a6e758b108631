"""The training engine: exact resume after a kill, best-epoch weights, early stopping, step limits, bundles.

A toy task (a small MLP with dropout on a shuffled DataLoader) exercises what every task gets from
the engine: accumulation, clipping, the cosine schedule, EMA, seeding and the checkpoint bundle.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from riskfm.errors import CheckpointError
from riskfm.train.bundle import BUNDLE_VERSION, BundleKindError, load_bundle, save_bundle
from riskfm.train.engine import EngineConfig, Task, fit


class Killed(RuntimeError):
    """Stands for the process being killed mid-epoch."""


class ToyTask(Task):
    kind = "risk-model"
    metric_name = "val_score"

    def __init__(self, *, kill_at_step: int | None = None, scores=None) -> None:
        torch.manual_seed(0)
        self.model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 1))
        g = torch.Generator().manual_seed(1)
        self.x = torch.randn(40, 4, generator=g)
        self.y = (self.x[:, :1] > 0).float()
        self.kill_at_step, self.calls = kill_at_step, 0
        self.scores = scores  # a fixed validation metric per epoch, or None: minus the validation loss

    def setup(self, fabric) -> None:
        self.loader = fabric.setup_dataloaders(DataLoader(TensorDataset(self.x, self.y), batch_size=8, shuffle=True))

    def train_batches(self, epoch, start=0):
        return self.loader

    def loss(self, model, batch):
        self.calls += 1
        if self.kill_at_step is not None and self.calls == self.kill_at_step:
            raise Killed("killed")
        x, y = batch
        return nn.functional.binary_cross_entropy_with_logits(model(x), y), len(x)

    def validate(self, fabric, model):
        epoch = len(getattr(self, "_seen", []))
        self._seen = [*getattr(self, "_seen", []), epoch]
        if self.scores is not None:
            return self.scores[epoch % len(self.scores)]
        with torch.no_grad():
            model.eval()
            return -float(nn.functional.binary_cross_entropy_with_logits(model(self.x), self.y))


CFG = EngineConfig(epochs=5, lr=0.05, scheduler="cosine", warmup_steps=2, accumulate_grad_batches=2, grad_clip=0.5,
                   ema_decay=0.9, seed=3, progress=False)


def _weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_a_killed_run_resumes_to_the_weights_of_an_uninterrupted_one(tmp_path):
    whole = ToyTask()
    full = fit(whole, CFG, tmp_path / "whole")
    crashed = ToyTask(kill_at_step=13)  # 5 batches an epoch: killed in epoch 2, after last.ckpt of epoch 1
    with pytest.raises(Killed):
        fit(crashed, CFG, tmp_path / "again")
    assert load_bundle(tmp_path / "again" / "checkpoints" / "last.ckpt", "risk-model")["train"]["epoch"] == 1
    resumed_task = ToyTask()
    resumed = fit(resumed_task, CFG, tmp_path / "again")
    for key, value in _weights(whole.model).items():
        assert torch.equal(value, resumed_task.model.state_dict()[key]), key
    assert resumed.history == full.history and resumed.steps_run == full.steps_run == 15
    assert resumed.best_epoch == full.best_epoch and resumed.best_metric == full.best_metric
    # and the run is reproducible at all: the same config and seed give the same numbers
    again = ToyTask()
    fit(again, CFG, tmp_path / "third")
    assert all(torch.equal(v, again.model.state_dict()[k]) for k, v in _weights(whole.model).items())


def test_the_best_epochs_weights_are_kept_and_patience_stops_the_run(tmp_path):
    cfg = EngineConfig(epochs=10, lr=0.05, patience=2, seed=0, progress=False)
    task = ToyTask(scores=[0.5, 0.9, 0.6, 0.7, 0.8])
    result = fit(task, cfg, tmp_path / "run")
    assert result.best_epoch == 1 and result.best_metric == 0.9
    assert result.stopped_early and result.epochs_run == 4  # epochs 2 and 3 did not improve
    best = load_bundle(tmp_path / "run" / "checkpoints" / "best.ckpt", "risk-model")
    assert best["epoch"] == 1 and best["metric"] == 0.9
    assert all(torch.equal(v, task.model.state_dict()[k]) for k, v in best["model"].items())
    history = (tmp_path / "run" / "history.csv").read_text().splitlines()
    assert history[0] == "epoch,step,train_loss,lr,val_score" and len(history) == 5
    # without a folder the best weights are kept in memory
    memory = ToyTask(scores=[0.5, 0.9, 0.6, 0.7, 0.8])
    fit(memory, cfg)
    assert all(torch.equal(v, memory.model.state_dict()[k]) for k, v in best["model"].items())


def test_a_step_limit_ends_mid_epoch_and_a_time_limit_at_an_epoch_end(tmp_path):
    cfg = EngineConfig(epochs=10, max_steps=7, lr=0.05, seed=0, progress=False, log_steps=True)
    result = fit(ToyTask(), cfg, tmp_path / "steps")
    assert result.steps_run == 7 and [s["step"] for s in result.steps] == list(range(1, 8))
    assert result.epochs_run == 2 and result.stopped_early
    again = fit(ToyTask(), cfg, tmp_path / "steps")  # a finished run resumed trains no further
    assert again.steps_run == 7 and again.steps == result.steps
    timed = fit(ToyTask(), EngineConfig(epochs=10, max_seconds=0.0, progress=False))
    assert timed.epochs_run == 1 and timed.stopped_early


def test_a_checkpoint_of_another_run_or_kind_is_refused(tmp_path):
    fit(ToyTask(), EngineConfig(epochs=1, progress=False), tmp_path / "run", fingerprint="aaaa")
    with pytest.raises(CheckpointError, match="belongs to another run"):
        fit(ToyTask(), EngineConfig(epochs=2, progress=False), tmp_path / "run", fingerprint="bbbb")
    other = ToyTask()
    other.kind = "cora-dense"
    with pytest.raises(BundleKindError, match="holds a 'risk-model' checkpoint, not 'cora-dense'"):
        fit(other, EngineConfig(epochs=2, progress=False), tmp_path / "run")
    # resume: false starts over in the same folder
    fit(ToyTask(), EngineConfig(epochs=1, resume=False, progress=False), tmp_path / "run", fingerprint="bbbb")


def test_bundles_name_their_kind_and_refuse_a_newer_layout(tmp_path):
    path = save_bundle(tmp_path / "b.pt", kind="cora-dense", model={"w": torch.ones(2)}, config={"width": 4},
                       fingerprint="f00", step=3)
    bundle = load_bundle(path, ("cora-dense", "cora-plaque"))
    assert bundle["kind"] == "cora-dense" and bundle["version"] == BUNDLE_VERSION and bundle["step"] == 3
    assert torch.equal(bundle["model"]["w"], torch.ones(2)) and bundle["config"] == {"width": 4}
    with pytest.raises(BundleKindError, match=r"b\.pt: holds a 'cora-dense' checkpoint, not 'calcium-segmenter'"):
        load_bundle(path, "calcium-segmenter")
    newer = dict(torch.load(path, weights_only=True), version=BUNDLE_VERSION + 1)
    torch.save(newer, tmp_path / "newer.pt")
    with pytest.raises(CheckpointError, match="written by a newer riskfm"):
        load_bundle(tmp_path / "newer.pt")
    with pytest.raises(ValueError, match="kind must be one of"):
        save_bundle(tmp_path / "x.pt", kind="ecg-thing", model={})
    with pytest.raises(ValueError, match="overwrite"):
        save_bundle(tmp_path / "x.pt", kind="cora-dense", model={}, kind_extra=1, version=2)


@pytest.mark.parametrize(("legacy", "kind"), [
    ({"model": {"w": torch.zeros(1)}, "optimizer": {}, "epoch": 2, "best": 0.7, "best_epoch": 1, "bad_epochs": 1,
      "history": [], "rng": {}, "config": {}}, "risk-model"),
    ({"model": {"w": torch.zeros(1)}, "config": {"manifest": "m.csv"}, "tabular": None, "clinical_columns": [],
      "targets": ["mace_30d"], "clinical_types": {}, "best_epoch": 0, "best_val_auroc": 0.6}, "risk-model"),
    ({"model": {"w": torch.zeros(1)}, "step": 500, "config": {"encoder": "cora-resunet", "width": 8}}, "cora-pretrain"),
    ({"state_dict": {"w": torch.zeros(1)}, "riskfm_calcium_config": {"model": "unet2d", "widths": [4]}},
     "calcium-segmenter"),
])
def test_checkpoints_written_before_bundles_are_read_as_bundles(tmp_path, legacy, kind):
    torch.save(legacy, tmp_path / "old.pt")
    bundle = load_bundle(tmp_path / "old.pt", kind)
    assert bundle["kind"] == kind and bundle["version"] == 0 and torch.equal(bundle["model"]["w"], torch.zeros(1))
    assert isinstance(bundle["config"], dict)
    torch.save({"weights": np.zeros(1).tolist()}, tmp_path / "alien.pt")
    with pytest.raises(BundleKindError, match="not a riskfm checkpoint"):
        load_bundle(tmp_path / "alien.pt")


def test_a_sampled_batch_task_resumes_exactly(tmp_path):
    # CORA's fine-tunes draw every batch from a seeded generator: its state travels in the checkpoint
    from riskfm.train.tasks.sampled import SampledBatchTask, fit_sampled

    def task(kill_at=None):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1))
        calls = {"n": 0}

        def draw(rng):
            calls["n"] += 1
            if calls["n"] == kill_at:
                raise Killed("killed")
            x = torch.from_numpy(rng.normal(size=(4, 3)).astype(np.float32))
            return x, x.sum(dim=1, keepdim=True)

        return SampledBatchTask("cora-dense", model, nn.functional.mse_loss, draw, seed=5)

    whole = task()
    full = fit_sampled(whole, 10, lr=0.05, checkpoint_every=4, out_dir=tmp_path / "whole", progress=False)
    with pytest.raises(Killed):
        fit_sampled(task(kill_at=7), 10, lr=0.05, checkpoint_every=4, out_dir=tmp_path / "run", progress=False)
    resumed_task = task()
    resumed = fit_sampled(resumed_task, 10, lr=0.05, checkpoint_every=4, out_dir=tmp_path / "run", progress=False)
    assert [s["step"] for s in resumed.steps] == list(range(1, 11)) and resumed.steps == full.steps
    assert all(torch.equal(v, resumed_task.model.state_dict()[k]) for k, v in whole.model.state_dict().items())
    assert full.steps[-1]["lr"] == 0.0  # cosine decay to 0 at the last step


def test_cora_pretraining_killed_mid_run_resumes_to_the_same_weights(tmp_path):
    from riskfm.ct.pretrain import PretrainConfig, PretrainVolume
    from riskfm.ct.synthesis import SynthesisConfig
    from riskfm.train.tasks.cora_pretrain import pretrain_cora

    rng = np.random.default_rng(0)
    hu = rng.normal(40, 30, (20, 24, 24)).astype(np.float32)
    hu[:, 10:13, 4:20] = 350.0  # a contrast-filled vessel to centre patches on
    candidates = np.flatnonzero((hu > 300).ravel())
    volumes = [PretrainVolume(f"v{i}", hu, (1.0, 1.0, 1.0), candidates, "coronary") for i in range(2)]
    cfg = PretrainConfig(width=2, patch_size=(16, 16, 16), spacing=(1.0, 1.0, 1.0), steps=5, batch_size=1,
                         checkpoint_every=2, synthesis=SynthesisConfig(patch_size=(16, 16, 16)))
    whole = pretrain_cora(volumes, tmp_path / "whole", cfg, show_progress=False)

    def kill(step, loss):
        if step == 3:  # after the checkpoint of step 2
            raise Killed("killed")

    with pytest.raises(Killed):
        pretrain_cora(volumes, tmp_path / "run", cfg, show_progress=False, progress=kill)
    resumed = pretrain_cora(volumes, tmp_path / "run", cfg, show_progress=False)
    assert [h["step"] for h in resumed.history] == [1, 2, 3, 4, 5] and resumed.history == whole.history
    a = load_bundle(whole.checkpoint, "cora-pretrain")["model"]
    b = load_bundle(resumed.checkpoint, "cora-pretrain")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
