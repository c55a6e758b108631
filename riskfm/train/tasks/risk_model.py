"""The risk model as an engine task: patients from a :class:`~riskfm.data.dataset.RiskDataset`, validated by mean AUROC."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from riskfm.train.engine import EngineConfig, Task

__all__ = ["RiskModelTask", "engine_config"]


def engine_config(cfg) -> EngineConfig:
    """Return the engine settings of a run's ``train`` section (:class:`~riskfm.train.config.TrainConfig`)."""
    return EngineConfig(
        epochs=cfg.epochs, optimizer=cfg.optimizer, lr=cfg.lr, weight_decay=cfg.weight_decay,
        scheduler=cfg.scheduler, warmup_epochs=cfg.warmup_epochs, plateau_factor=cfg.plateau_factor,
        plateau_patience=cfg.plateau_patience, accumulate_grad_batches=cfg.accumulate_grad_batches,
        grad_clip=cfg.grad_clip, ema_decay=cfg.ema_decay, patience=cfg.patience, min_epochs=cfg.min_epochs,
        seed=cfg.seed, resume=cfg.resume, progress=cfg.progress, desc="training",
        resume_hint="set train.resume: false")


class RiskModelTask(Task):
    """Train a :class:`~riskfm.models.risk_model.RiskModel` on a training set, validated on another.

    Parameters
    ----------
    model : RiskModel
    train_set, val_set : RiskDataset
        Patients of the two splits (``ct_windows="batch"``: windows computed on the device).
    cfg : TrainConfig
        The run's ``train`` section (batch size, loader workers, loss weights, learning rates).
    encoder_lr : dict, optional
        Learning rate per modality's encoder (default: ``cfg.lr``).
    encoder_opts : dict, optional
        Per modality: ``weight_decay`` and ``layerwise_lr_decay`` of its encoder.
    """

    kind = "risk-model"
    metric_name = "val_auroc"

    def __init__(self, model, train_set, val_set, cfg, *, encoder_lr: Mapping[str, float] | None = None,
                 encoder_opts: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self.model = model
        self.train_set, self.val_set = train_set, val_set
        self.cfg = cfg
        self.encoder_lr = dict(encoder_lr or {})
        self.encoder_opts = {k: dict(v) for k, v in (encoder_opts or {}).items()}
        self.train_loader = self.val_loader = None

    def setup(self, fabric) -> None:
        """Build the two loaders (workers per :func:`~riskfm.train.trainer.resolve_num_workers`), sharded under DDP."""
        from riskfm.train.trainer import data_loader, resolve_num_workers

        local = max(1, fabric.world_size // self.cfg.num_nodes)  # training processes on this machine
        workers = resolve_num_workers(self.cfg.num_workers, local, fabric.device.type)
        self.train_loader, self.val_loader = fabric.setup_dataloaders(
            data_loader(self.train_set, self.cfg.batch_size, workers, shuffle=True),
            data_loader(self.val_set, self.cfg.batch_size, workers, shuffle=False))

    def param_groups(self, cfg: EngineConfig) -> list[dict]:
        """Return one group per encoder (its lr, weight decay, layer-wise decay) and one for fusion + heads."""
        groups, seen = [], set()
        for m, enc in self.model.encoders.items():
            params = [p for p in enc.parameters() if p.requires_grad]
            seen.update(id(p) for p in enc.parameters())
            opts = self.encoder_opts.get(m, {})
            lr = self.encoder_lr.get(m, cfg.lr)
            if params and opts.get("layerwise_lr_decay"):
                from riskfm.train.finetune import layerwise_param_groups

                groups += layerwise_param_groups(enc, lr, opts["layerwise_lr_decay"],
                                                 weight_decay=opts.get("weight_decay"), name=f"encoder.{m}")
            elif params:
                group = {"params": params, "lr": lr, "name": f"encoder.{m}"}
                if opts.get("weight_decay") is not None:
                    group["weight_decay"] = opts["weight_decay"]
                groups.append(group)
        rest = [p for p in self.model.parameters() if p.requires_grad and id(p) not in seen]
        groups.append({"params": rest, "lr": cfg.lr, "name": "fusion+heads"})
        return groups

    def train_batches(self, epoch: int, start: int = 0):
        """Return the training loader, its shuffle and the dataset's augmentation draws set for ``epoch``."""
        if hasattr(self.train_loader.sampler, "set_epoch"):
            self.train_loader.sampler.set_epoch(epoch)
        if hasattr(self.train_set, "set_epoch"):
            self.train_set.set_epoch(epoch)
        return self.train_loader

    def finish_batch(self, batch: dict) -> dict:
        """Compute the CT window channels on the device (:meth:`RiskDataset.finish_batch`)."""
        finish = getattr(self.train_set, "finish_batch", None)
        return batch if finish is None else finish(batch)

    def loss(self, model, batch: dict) -> tuple[torch.Tensor, int]:
        """Return the heads' weighted loss (:meth:`RiskModel.loss`) and the patients in the batch."""
        outputs = model(batch)
        loss, _ = self.model.loss(outputs, batch, self.cfg.loss_weights or None)
        return loss, int(batch["index"].shape[0])

    def validate(self, fabric, model) -> float:
        """Return the mean validation AUROC over targets with both classes (NaN if none)."""
        from riskfm.train import trainer

        # looked up on the module at call time, so a test can make validation fail mid-run
        return trainer.mean_auroc(trainer.predict(fabric, model, self.val_loader, self.val_set))

    def model_state(self, model) -> dict:
        """Return :meth:`RiskModel.checkpoint_state_dict` (a frozen language model's weights left out)."""
        return model.checkpoint_state_dict()

    def load_model_state(self, model, state) -> None:
        """Load weights written by :meth:`model_state`."""
        model.load_checkpoint_state_dict(state)
