"""A model trained on batches drawn from a seeded generator: CORA's dense fine-tunes and plaque classifier.

These tasks have no loader to pass over: every step draws a batch (patches centred on a lesion
two times in three, cases with replacement) from one ``numpy`` generator seeded by the run's seed.
The generator's state is part of each checkpoint, so a resumed run draws exactly the batches an
uninterrupted one would have. Under DDP each process draws from its own stream (``[seed, rank]``;
rank 0 keeps ``seed``, so a one-process run is the same on any machine).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from riskfm.train.engine import EngineConfig, EngineResult, Task, fit

__all__ = ["SampledBatchTask", "fit_sampled"]


class SampledBatchTask(Task):
    """Train ``model`` on ``draw(rng) -> (x, y)`` batches with ``loss_fn(model(x), y)``.

    Parameters
    ----------
    kind : str
        Checkpoint bundle kind (``"cora-dense"``, ``"cora-plaque"``).
    model : nn.Module
        ``model(x)`` gives what ``loss_fn`` takes.
    loss_fn : callable
        ``(output, y) -> scalar tensor``.
    draw : callable
        ``rng -> (x [B, ...], y [B, ...])`` tensors.
    seed : int
        Seed of the drawing generator.
    encoder : nn.Module, optional
        Part of ``model`` trained at ``encoder_lr`` (a pretrained encoder moves less than a new head).
    encoder_lr : float, optional
    """

    def __init__(self, kind: str, model: nn.Module, loss_fn: Callable, draw: Callable, *, seed: int = 0,
                 encoder: nn.Module | None = None, encoder_lr: float | None = None) -> None:
        self.kind = kind
        self.model = model
        self.loss_fn, self.draw = loss_fn, draw
        self.seed = int(seed)
        self.encoder, self.encoder_lr = encoder, encoder_lr
        self.rng = np.random.default_rng(self.seed)
        self.fabric = None

    def setup(self, fabric) -> None:
        """Give each process its own drawing stream (rank 0 keeps ``seed``)."""
        self.fabric = fabric
        if fabric.global_rank:
            self.rng = np.random.default_rng([self.seed, fabric.global_rank])

    def param_groups(self, cfg: EngineConfig) -> list[dict]:
        """Return the encoder's parameters at ``encoder_lr`` and the rest at ``cfg.lr`` (one group without an encoder)."""
        if self.encoder is None or self.encoder_lr is None:
            return [{"params": list(self.model.parameters()), "lr": cfg.lr}]
        ids = {id(p) for p in self.encoder.parameters()}
        return [{"params": [p for p in self.model.parameters() if id(p) in ids], "lr": self.encoder_lr},
                {"params": [p for p in self.model.parameters() if id(p) not in ids], "lr": cfg.lr}]

    def train_batches(self, epoch: int, start: int = 0) -> Iterator:
        """Return an endless stream of drawn batches (the generator, restored on resume, knows where it is)."""
        while True:
            yield self.draw(self.rng)

    def finish_batch(self, batch):
        """Move ``(x, y)`` to the device."""
        return self.fabric.to_device(batch)

    def loss(self, model, batch) -> tuple[torch.Tensor, int]:
        """Return ``loss_fn(model(x), y)`` and the batch size."""
        x, y = batch
        return self.loss_fn(model(x), y), int(x.shape[0])

    def state_dict(self) -> dict:
        """Return the drawing generator's state."""
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore the drawing generator's state."""
        if "rng" in state:
            self.rng.bit_generator.state = dict(state["rng"])


def fit_sampled(task: SampledBatchTask, steps: int, *, lr: float = 1e-3, weight_decay: float = 1e-5,
                grad_clip: float | None = 12.0, seed: int = 0, accelerator: str = "cpu",
                precision: str = "32-true", out_dir: str | os.PathLike | None = None, checkpoint_every: int = 100,
                config: Mapping[str, Any] | None = None, fingerprint: str = "", desc: str = "fine-tuning",
                progress: bool = True, fabric=None) -> EngineResult:
    """Train a sampled-batch task for ``steps`` AdamW steps (cosine decay to 0) with the engine.

    Parameters
    ----------
    task : SampledBatchTask
    steps : int
        Optimiser steps in all.
    lr, weight_decay, grad_clip : float
        Learning rate of everything outside the task's encoder, AdamW weight decay, gradient-norm clip.
    seed : int
        Seeds torch (initialisation, dropout) before training.
    accelerator, precision : str
        Lightning Fabric's (``"cpu"`` / ``"cuda"`` / ``"auto"``; ``"32-true"`` / ``"bf16-mixed"`` ...).
    out_dir : path, optional
        Where ``checkpoints/last.ckpt`` is written every ``checkpoint_every`` steps (a killed run
        resumes from it exactly); None: nothing written. No ``history.csv`` is written: the loss of
        every step is in the result's ``steps``.
    config, fingerprint
        Stored in the checkpoints; a ``last.ckpt`` of another fingerprint is refused.
    desc, progress
        The progress bar's label, and whether to show it.
    fabric : lightning_fabric.Fabric, optional
        A launched Fabric to train on (e.g. :func:`riskfm.train.engine.make_fabric` under
        torchrun: DDP, each process drawing its own batches); default: one process on
        ``accelerator`` at ``precision``.

    Returns
    -------
    EngineResult
        ``steps``: the loss and learning rate of every step; ``task.model`` is trained in place
        and left in eval mode.
    """
    from lightning_fabric import Fabric

    every = max(1, min(int(checkpoint_every), int(steps)))
    cfg = EngineConfig(epochs=max(1, math.ceil(steps / every)), steps_per_epoch=every, max_steps=int(steps),
                       optimizer="adamw", lr=lr, weight_decay=weight_decay, scheduler="cosine",
                       grad_clip=grad_clip, seed=seed, progress=progress, desc=desc, log_steps=True,
                       history_file=None)  # the recipes write the per-step history themselves
    if fabric is None:
        fabric = Fabric(accelerator=accelerator, devices=1, precision=precision)
    result = fit(task, cfg, out_dir, fabric=fabric, config=config, fingerprint=fingerprint)
    task.model.eval()
    return result
