"""The training engine: one loop on Lightning Fabric for every model riskfm trains.

A *task* (:class:`Task`, implementations in :mod:`riskfm.train.tasks`) says what is trained: its
model, its batches, its loss ``(model, batch) -> (loss, n)`` and, optionally, a validation metric
(higher is better). :func:`fit` owns everything else, once for all tasks:

* devices and strategy (CPU, one GPU, DDP on one or many machines under ``torchrun``) and
  precision (``bf16-mixed``, ...), through the :class:`~lightning_fabric.Fabric` it is given;
* the optimiser (Adam / AdamW over the task's parameter groups), gradient accumulation, gradient
  clipping, the learning-rate schedule (``cosine`` with linear warm-up, stepped per optimiser
  step; ``plateau`` on the validation metric, stepped per epoch);
* an exponential moving average of the weights (:class:`~riskfm.train.ema.ModelEMA`), which is
  then what is validated and kept;
* early stopping on the validation metric, a time limit, a step limit;
* seeding, a progress bar over the optimiser steps, ``history.csv`` (one row per epoch);
* checkpoints as bundles (:mod:`riskfm.train.bundle`): ``checkpoints/last.ckpt`` after every
  epoch, written atomically, holding everything an exact resume needs (weights, optimiser,
  schedule, EMA, counters, history, the Python / numpy / torch RNG states and the task's own
  state such as its sampling generator), and ``checkpoints/best.ckpt`` whenever the validation
  metric improves. A run killed at any point and started again continues from the last epoch
  boundary and ends with the same weights as a run never interrupted.

An *epoch* is one pass over the task's loader, or ``steps_per_epoch`` optimiser steps for tasks
that draw batches without end (patch sampling, lesion synthesis): the unit of validation and of
checkpointing. Tasks that only count steps (CORA pretraining) set ``steps_per_epoch`` to their
checkpoint interval.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from riskfm.errors import CheckpointError

log = logging.getLogger(__name__)

__all__ = ["EngineConfig", "EngineResult", "Task", "fit", "launched_world", "make_fabric", "resolve_launch"]

#: Strategies that run one model replica per launched process (what torchrun starts).
_PER_PROCESS_STRATEGIES = ("ddp", "ddp_find_unused_parameters_true", "ddp_spawn", "fsdp", "deepspeed")
_OPTIMIZERS = ("adam", "adamw")
_SCHEDULERS = ("none", "cosine", "plateau")


@dataclass(frozen=True)
class EngineConfig:
    """How :func:`fit` trains (the task says what).

    Attributes
    ----------
    epochs : int
        Epochs to run (see the module docstring for what an epoch is).
    steps_per_epoch : int or None
        Optimiser steps per epoch; None: one pass over the task's loader.
    max_steps : int or None
        Stop after this many optimiser steps in all (mid-epoch if need be), e.g. a pretraining
        budget that is not a multiple of the checkpoint interval.
    optimizer : {"adamw", "adam"}
    lr : float
        Learning rate of parameter groups that do not set their own.
    weight_decay : float
        Weight decay of groups that do not set their own.
    scheduler : {"none", "cosine", "plateau"}
        ``cosine``: linear warm-up over the warm-up steps, then cosine decay to 0 at the last step.
        ``plateau``: multiply by ``plateau_factor`` after ``plateau_patience`` epochs without a
        better validation metric.
    warmup_steps, warmup_epochs : int, float
        Warm-up length of ``cosine`` in steps, or in epochs when ``warmup_steps`` is 0.
    plateau_factor, plateau_patience : float, int
    accumulate_grad_batches : int
        Batches whose gradients are summed per optimiser step.
    grad_clip : float or None
        Clip the gradient norm to this (None: no clipping).
    ema_decay : float or None
        Keep an exponential moving average of the weights with this decay (validated and kept).
    patience : int or None
        Stop after this many epochs without a better validation metric (None: never).
    min_epochs : int
        Never stop early before this many epochs.
    seed : int
        Seeds Python, numpy and torch (every process) before the task sets up.
    resume : bool
        Continue from ``checkpoints/last.ckpt`` when it exists.
    progress : bool
        A progress bar over the optimiser steps on stderr (rank 0).
    desc : str
        The bar's label.
    max_seconds : float or None
        Stop at the first epoch end after this much wall time.
    log_steps : bool
        Keep every optimiser step's loss and learning rate (``EngineResult.steps``).
    history_file : str or None
        Name of the per-epoch history written in ``out_dir`` (None: not written, e.g. when the
        caller writes its own per-step history there).
    resume_hint : str
        How the user turns resuming off, in the message about an unusable ``last.ckpt`` (e.g.
        ``"set train.resume: false"``).
    """

    epochs: int = 1
    steps_per_epoch: int | None = None
    max_steps: int | None = None
    optimizer: str = "adamw"
    lr: float = 1e-3
    weight_decay: float = 0.0
    scheduler: str = "none"
    warmup_steps: int = 0
    warmup_epochs: float = 0.0
    plateau_factor: float = 0.5
    plateau_patience: int = 2
    accumulate_grad_batches: int = 1
    grad_clip: float | None = None
    ema_decay: float | None = None
    patience: int | None = None
    min_epochs: int = 1
    seed: int = 0
    resume: bool = True
    progress: bool = True
    desc: str = "training"
    max_seconds: float | None = None
    log_steps: bool = False
    history_file: str | None = "history.csv"
    resume_hint: str = "start without resuming"

    def __post_init__(self) -> None:
        if self.optimizer not in _OPTIMIZERS:
            raise ValueError(f"EngineConfig.optimizer must be one of {_OPTIMIZERS}, got {self.optimizer!r}")
        if self.scheduler not in _SCHEDULERS:
            raise ValueError(f"EngineConfig.scheduler must be one of {_SCHEDULERS}, got {self.scheduler!r}")
        if self.epochs < 0 or self.accumulate_grad_batches < 1:
            raise ValueError(f"EngineConfig: epochs must be >= 0 and accumulate_grad_batches >= 1, got "
                             f"{self.epochs} and {self.accumulate_grad_batches}")
        if self.steps_per_epoch is not None and self.steps_per_epoch < 1:
            raise ValueError(f"EngineConfig.steps_per_epoch must be >= 1 or None, got {self.steps_per_epoch}")


class Task:
    """What :func:`fit` trains: subclass and fill in :meth:`train_batches` and :meth:`loss`.

    Attributes
    ----------
    kind : str
        The checkpoint bundle kind (:data:`riskfm.train.bundle.BUNDLE_KINDS`).
    metric_name : str
        Name of the validation metric in ``history.csv`` (e.g. ``"val_auroc"``).
    model : nn.Module
        The module trained (unwrapped; :func:`fit` wraps it for the device and strategy).
    """

    kind: str = "risk-model"
    metric_name: str = "val_metric"
    model: nn.Module

    def setup(self, fabric) -> None:
        """Build loaders and anything device-bound, after seeding (``fabric.setup_dataloaders`` here)."""

    def param_groups(self, cfg: EngineConfig) -> list[dict]:
        """Return the optimiser's parameter groups (default: every trainable parameter at ``cfg.lr``)."""
        return [{"params": [p for p in self.model.parameters() if p.requires_grad], "lr": cfg.lr}]

    def train_batches(self, epoch: int, start: int = 0) -> Iterable:
        """Return the batches of epoch ``epoch`` (a loader, or an endless iterator for step-counted tasks).

        ``start`` > 0 only when a run cut short inside this epoch (by ``max_steps``) is continued
        with a larger budget: the optimiser steps of the epoch already done. A task whose batches
        are a function of the global position (CORA pretraining) starts after them; one that
        draws from a generator restored from the checkpoint ignores it; for a loader the engine
        skips the batches already seen.
        """
        raise NotImplementedError

    def finish_batch(self, batch: Any) -> Any:
        """Return a batch ready for the model (e.g. moved to the device, windows computed)."""
        return batch

    def loss(self, model: nn.Module, batch: Any) -> tuple[torch.Tensor, int]:
        """Return the batch's mean loss (a scalar tensor with a graph) and the number of items in it."""
        raise NotImplementedError

    def validate(self, fabric, model: nn.Module) -> float | None:
        """Return the validation metric of ``model`` (higher is better), or None for a task without one."""
        return None

    def step_log(self, batch: Any) -> dict:
        """Return extra per-step values for ``EngineResult.steps`` (e.g. the lesion fraction of a batch)."""
        return {}

    def model_state(self, model: nn.Module) -> dict:
        """Return the weights a checkpoint keeps of ``model`` (the task's model or its EMA copy)."""
        return model.state_dict()

    def load_model_state(self, model: nn.Module, state: Mapping[str, Any]) -> None:
        """Load weights written by :meth:`model_state`."""
        model.load_state_dict(state)

    def state_dict(self) -> dict:
        """Return the task's own state an exact resume needs (e.g. its sampling generator), weights_only-safe."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""


@dataclass
class EngineResult:
    """What :func:`fit` did.

    Attributes
    ----------
    best_epoch : int
        0-based epoch whose weights were kept (the last one for a task without validation; -1 if
        no epoch ran).
    best_metric : float
        Its validation metric (NaN without validation).
    epochs_run : int
        Epochs completed, counting those of a resumed run.
    steps_run : int
        Optimiser steps completed, counting those of a resumed run.
    history : list of dict
        One dict per epoch: ``epoch``, ``step``, ``train_loss``, the task's metric, ``lr``.
    steps : list of dict
        One dict per optimiser step (``step``, ``loss``, ``lr`` and the task's ``step_log``) with
        ``EngineConfig.log_steps``; else empty.
    seconds : float
        Wall time of this call.
    stopped_early : bool
        Early stopping, the time limit or the step limit ended training before ``epochs``.
    """

    best_epoch: int
    best_metric: float
    epochs_run: int
    steps_run: int
    history: list[dict] = field(default_factory=list)
    steps: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    stopped_early: bool = False


# ---------------------------------------------------------------------------------------- launch
def launched_world(env: Mapping[str, str] | None = None) -> tuple[int, int] | None:
    """Return (processes per node, nodes) when started by torchrun with more than one process, else None."""
    env = os.environ if env is None else env
    world = int(env.get("WORLD_SIZE", "1") or 1)
    if world <= 1:
        return None
    local = int(env.get("LOCAL_WORLD_SIZE", world) or world)
    return local, max(1, world // local)


def resolve_launch(cfg: Any, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Return devices, strategy and nodes for Fabric; under torchrun the launched processes are the devices.

    ``cfg`` has ``devices``, ``strategy`` and ``num_nodes`` (a ``TrainConfig``, whose explicitly set
    fields are known, or any object with those attributes). ``torchrun --nproc_per_node N`` with a
    config that says nothing about devices must be one N-process DDP run, not N independent
    single-process runs writing one folder. So under torchrun ``devices`` / ``num_nodes`` left at
    their defaults take the launcher's numbers and ``strategy: auto`` becomes DDP; a value the
    config sets explicitly that disagrees with the launcher is an error (ConfigError) naming both.
    """
    from riskfm.train.config import ConfigError

    launch = {"devices": cfg.devices, "strategy": cfg.strategy, "num_nodes": cfg.num_nodes}
    world = launched_world(env)
    if world is None:
        return launch
    local, nodes = world
    explicit = getattr(cfg, "model_fields_set", set())
    fix = ("remove train.devices / train.num_nodes / train.strategy from the config to let torchrun decide, "
           "or launch with matching --nproc_per_node / --nnodes")
    if "devices" in explicit and cfg.devices not in ("auto", -1) and cfg.devices != local and not (
            isinstance(cfg.devices, str) and len([d for d in cfg.devices.split(",") if d.strip()]) == local):
        raise ConfigError(f"train.devices is {cfg.devices!r} but torchrun started {local} processes per node; {fix}")
    if "num_nodes" in explicit and cfg.num_nodes != nodes:
        raise ConfigError(f"train.num_nodes is {cfg.num_nodes} but torchrun started {nodes} node(s); {fix}")
    if cfg.strategy != "auto" and not str(cfg.strategy).startswith(_PER_PROCESS_STRATEGIES):
        raise ConfigError(f"train.strategy {cfg.strategy!r} runs one process, but torchrun started "
                          f"{local * nodes}; use strategy ddp (or auto); {fix}")
    launch["devices"] = cfg.devices if "devices" in explicit and cfg.devices not in ("auto", -1) else local
    launch["num_nodes"] = nodes
    launch["strategy"] = "ddp" if cfg.strategy == "auto" else cfg.strategy
    return launch


def make_fabric(cfg: Any):
    """Build and launch a Fabric from ``cfg``'s ``accelerator``, ``devices``, ``strategy``, ``num_nodes``, ``precision``.

    Under torchrun it joins the process group as DDP (:func:`resolve_launch`).
    """
    from lightning_fabric import Fabric

    launch = resolve_launch(cfg)
    strategy: Any = launch["strategy"]
    if strategy in ("ddp", "ddp_find_unused_parameters_true"):
        from lightning_fabric.strategies import DDPStrategy

        # A batch in which no patient has a CT leaves the CT encoder without gradients.
        strategy = DDPStrategy(find_unused_parameters=True)
    fabric = Fabric(accelerator=cfg.accelerator, devices=launch["devices"], strategy=strategy,
                    num_nodes=launch["num_nodes"], precision=cfg.precision)
    fabric.launch()
    if fabric.world_size > 1:
        fabric.print(f"riskfm: distributed run on {fabric.world_size} processes "
                     f"({launch['num_nodes']} node(s) x {fabric.world_size // launch['num_nodes']}), DDP")
    return fabric


# -------------------------------------------------------------------------------------- the loop
def _optimizer(groups: list[dict], cfg: EngineConfig) -> torch.optim.Optimizer:
    cls = torch.optim.Adam if cfg.optimizer == "adam" else torch.optim.AdamW
    return cls(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)


def _scheduler(optimizer: torch.optim.Optimizer, cfg: EngineConfig, steps_per_epoch: int):
    """Return (scheduler, when): ``cosine`` steps per optimiser step, ``plateau`` per epoch on the metric."""
    if cfg.scheduler == "cosine":
        total = max(1, cfg.epochs * steps_per_epoch)
        if cfg.max_steps is not None:
            total = max(1, min(total, cfg.max_steps))
        warmup = cfg.warmup_steps or int(cfg.warmup_epochs * steps_per_epoch)

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            progress = (step - warmup) / max(1, total - warmup)
            return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

        return torch.optim.lr_scheduler.LambdaLR(optimizer, factor), "step"
    if cfg.scheduler == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="max", factor=cfg.plateau_factor, patience=cfg.plateau_patience), "epoch"
    return None, "none"


def _rng_state() -> dict[str, Any]:
    from riskfm.train.checkpoint import rng_state

    state = rng_state()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: Mapping[str, Any]) -> None:
    from riskfm.train.checkpoint import set_rng_state

    set_rng_state(dict(state))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(list(state["cuda"]))


def _resume_state(task: Task, last: Path, fingerprint: str, hint: str) -> dict[str, Any]:
    from riskfm.train.bundle import load_bundle

    try:
        bundle = load_bundle(last, task.kind)
    except CheckpointError as exc:
        raise type(exc)(f"{exc}; delete it, or {hint}, to start over") from exc
    if "train" not in bundle:
        raise CheckpointError(f"{last}: holds weights but not the training state a resume needs (written "
                              f"before riskfm's engine); delete it, or {hint}, to start over")
    if fingerprint and bundle.get("fingerprint") and bundle["fingerprint"] != fingerprint:
        raise CheckpointError(f"{last}: belongs to another run (fingerprint {bundle['fingerprint']}, this run "
                              f"{fingerprint}); use another output folder, or delete it to start over")
    return bundle


def fit(task: Task, cfg: EngineConfig, out_dir: str | os.PathLike | None = None, *, fabric=None,
        config: Mapping[str, Any] | None = None, fingerprint: str = "",
        on_step: Callable[[int, float], None] | None = None) -> EngineResult:
    """Train ``task.model`` as ``cfg`` says; the kept weights (best or last) end up in ``task.model``.

    Parameters
    ----------
    task : Task
        What is trained.
    cfg : EngineConfig
        How.
    out_dir : str or Path, optional
        Where ``checkpoints/last.ckpt``, ``checkpoints/best.ckpt`` and ``history.csv`` go (None:
        nothing is written and nothing resumes).
    fabric : lightning_fabric.Fabric, optional
        Launched Fabric (devices, strategy, precision); default: one CPU process, 32-bit.
    config : Mapping, optional
        What built the run (JSON-able), stored in every checkpoint bundle.
    fingerprint : str
        The run's identity: a ``last.ckpt`` of another fingerprint is refused instead of resumed.
    on_step : callable, optional
        Called on rank 0 as ``on_step(step, loss)`` after every optimiser step.

    Returns
    -------
    EngineResult
    """
    from riskfm.train.bundle import load_bundle, save_bundle
    from riskfm.train.ema import ModelEMA

    t0 = time.perf_counter()
    if fabric is None:
        from lightning_fabric import Fabric

        fabric = Fabric(accelerator="cpu", devices=1)
    out = None if out_dir is None else Path(out_dir)
    ckpt_dir = None if out is None else out / "checkpoints"
    last = None if ckpt_dir is None else ckpt_dir / "last.ckpt"
    fabric.seed_everything(cfg.seed, verbose=False)
    model = task.model
    task.setup(fabric)
    optimizer = _optimizer(task.param_groups(cfg), cfg)
    accumulate = cfg.accumulate_grad_batches
    if cfg.steps_per_epoch is not None:
        steps_per_epoch, batches_per_epoch = cfg.steps_per_epoch, cfg.steps_per_epoch * accumulate
    else:
        batches_per_epoch = len(task.train_batches(0))
        steps_per_epoch = max(1, math.ceil(batches_per_epoch / accumulate))
    scheduler, when = _scheduler(optimizer, cfg, steps_per_epoch)

    start_epoch, start_in_epoch, step, best, best_epoch, bad_epochs = 0, 0, 0, -math.inf, -1, 0
    history: list[dict] = []
    steps_log: list[dict] = []
    resumed = None
    if cfg.resume and last is not None and last.is_file():
        resumed = _resume_state(task, last, fingerprint, cfg.resume_hint)
        train = resumed["train"]
        task.load_model_state(model, resumed["model"])
        optimizer.load_state_dict(train["optimizer"])
        if scheduler is not None and train.get("scheduler"):
            scheduler.load_state_dict(train["scheduler"])
        start_epoch, step = int(train["epoch"]) + 1, int(train["step"])
        best, best_epoch, bad_epochs = float(train["best"]), int(train["best_epoch"]), int(train["bad_epochs"])
        history, steps_log = list(train["history"]), list(train.get("steps", []))
        if not train.get("epoch_complete", True) and (cfg.max_steps is None or step < cfg.max_steps):
            # cut short by the step budget and continued with a larger one: finish that epoch
            start_epoch -= 1
            start_in_epoch, history = step - start_epoch * steps_per_epoch, history[:-1]
        task.load_state_dict(train.get("task", {}))
        _set_rng_state(train["rng"])
        fabric.print(f"resuming from {last} at epoch {start_epoch} (step {step})")
    wrapped, optimizer = fabric.setup(model, optimizer)
    ema = None
    if cfg.ema_decay:
        # The average of the last ~1/(1 - decay) steps' weights is validated and kept: on small,
        # noisy cohorts it is worth a few AUROC points and makes the best epoch less arbitrary.
        ema = ModelEMA(model, cfg.ema_decay)
        if resumed is not None and resumed["train"].get("ema"):
            task.load_model_state(ema.module, resumed["train"]["ema"])
    keep = model if ema is None else ema.module
    total_steps = cfg.epochs * steps_per_epoch if cfg.max_steps is None else min(cfg.epochs * steps_per_epoch,
                                                                                  cfg.max_steps)
    bar = None
    if cfg.progress and fabric.is_global_zero and total_steps > step:
        from riskfm.progress import progress

        bar = progress(total=total_steps, initial=step, desc=cfg.desc, unit="step", leave=True)
        if bar.disable:
            bar = None

    def save_last(epoch: int, complete: bool) -> None:
        if last is None or not fabric.is_global_zero:
            return
        train = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict() if scheduler else {},
                 "ema": task.model_state(ema.module) if ema is not None else {}, "epoch": epoch,
                 "epoch_complete": complete, "step": step,
                 "best": best, "best_epoch": best_epoch, "bad_epochs": bad_epochs, "history": history,
                 "steps": steps_log, "rng": _rng_state(), "task": task.state_dict(),
                 "engine": asdict(cfg)}
        save_bundle(last, kind=task.kind, model=task.model_state(model), config=config, fingerprint=fingerprint,
                    train=train)

    stopped = False
    best_in_memory: dict | None = None  # the best weights when there is no folder to keep best.ckpt in
    epoch = start_epoch - 1
    for epoch in range(start_epoch, cfg.epochs):
        if cfg.max_steps is not None and step >= cfg.max_steps:
            stopped, epoch = True, epoch - 1
            break
        wrapped.train()
        loss_sum, items = 0.0, 0
        skip, start_in_epoch = start_in_epoch, 0
        batches = task.train_batches(epoch, skip)
        if cfg.steps_per_epoch is not None:
            n_batches, stream = (steps_per_epoch - skip) * accumulate, batches
        else:
            n_batches = len(batches) - skip * accumulate
            stream = islice(batches, skip * accumulate, None)
        epoch_start_step = step
        for i, batch in enumerate(islice(stream, n_batches)):
            batch = task.finish_batch(batch)
            accumulating = (i + 1) % accumulate != 0 and (i + 1) != n_batches
            with fabric.no_backward_sync(wrapped, enabled=accumulating):
                loss, n = task.loss(wrapped, batch)
                fabric.backward(loss / accumulate)
            value = float(loss.detach())
            loss_sum, items = loss_sum + value * n, items + n
            if accumulating:
                continue
            if cfg.grad_clip:
                fabric.clip_gradients(wrapped, optimizer, max_norm=cfg.grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if when == "step":
                scheduler.step()
            if ema is not None:
                ema.update(model)
            step += 1
            if cfg.log_steps:
                shown = value if fabric.world_size == 1 else float(
                    fabric.all_reduce(loss.detach(), reduce_op="mean"))
                steps_log.append({"step": step, "loss": shown, "lr": optimizer.param_groups[0]["lr"],
                                  **task.step_log(batch)})
            if on_step is not None and fabric.is_global_zero:
                on_step(step, value)
            if bar is not None:
                bar.update(1)
                if step % 5 == 0 or step == total_steps:
                    bar.set_postfix(epoch=f"{epoch + 1}/{cfg.epochs}", loss=f"{value:.4f}", refresh=False)
            if cfg.max_steps is not None and step >= cfg.max_steps:
                break
        mean_loss = loss_sum / max(1, items)
        train_loss = float(fabric.all_reduce(torch.tensor(mean_loss, device=fabric.device), reduce_op="mean"))
        metric = task.validate(fabric, wrapped if ema is None else ema.module)
        row = {"epoch": epoch, "step": step, "train_loss": train_loss, "lr": optimizer.param_groups[-1]["lr"]}
        if metric is not None:
            row[task.metric_name] = float(metric)
        history.append(row)
        if metric is None:
            best_epoch = epoch  # no validation: the last weights are kept
        else:
            if when == "epoch" and np.isfinite(metric):
                scheduler.step(metric)
            improved = np.isfinite(metric) and metric > best + 1e-4
            if improved or (best_epoch < 0 and not np.isfinite(metric)):
                best, best_epoch, bad_epochs = (float(metric) if np.isfinite(metric) else best), epoch, 0
                if ckpt_dir is None:
                    best_in_memory = {k: v.detach().clone() for k, v in task.model_state(keep).items()}
                elif fabric.is_global_zero:
                    save_bundle(ckpt_dir / "best.ckpt", kind=task.kind, model=task.model_state(keep), config=config,
                                fingerprint=fingerprint, epoch=epoch, metric=float(metric))
            else:
                bad_epochs += 1
        save_last(epoch, complete=skip + step - epoch_start_step >= steps_per_epoch)
        if out is not None and cfg.history_file and fabric.is_global_zero:
            import pandas as pd

            pd.DataFrame(history).to_csv(out / cfg.history_file, index=False)
        fabric.barrier()
        if bar is not None and metric is not None:
            bar.set_postfix(epoch=f"{epoch + 1}/{cfg.epochs}", loss=f"{train_loss:.4f}",
                            **{task.metric_name: f"{metric:.3f}"})
        log.info("epoch %d (step %d): train loss %.4f, %s %s", epoch, step, train_loss, task.metric_name, metric)
        if cfg.patience is not None and metric is not None and bad_epochs >= cfg.patience \
                and epoch + 1 >= cfg.min_epochs:
            stopped = True
            break
        if cfg.max_seconds is not None:
            out_of_time = time.perf_counter() - t0 > cfg.max_seconds
            if fabric.world_size > 1:  # every process must stop at the same epoch: rank 0 decides
                out_of_time = bool(fabric.broadcast(out_of_time, src=0))
            if out_of_time:
                stopped = epoch + 1 < cfg.epochs
                break
        if cfg.max_steps is not None and step >= cfg.max_steps:
            stopped = epoch + 1 < cfg.epochs
            break
    if bar is not None:
        bar.close()
    best_path = None if ckpt_dir is None else ckpt_dir / "best.ckpt"
    has_metric = bool(history) and task.metric_name in history[-1]
    if has_metric and best_path is not None and best_path.is_file():
        task.load_model_state(model, load_bundle(best_path, task.kind)["model"])
    elif has_metric and best_in_memory is not None:
        task.load_model_state(model, best_in_memory)
    elif ema is not None:
        task.load_model_state(model, task.model_state(ema.module))
    return EngineResult(best_epoch, float(best) if has_metric else float("nan"), epoch + 1, step, history,
                        steps_log, time.perf_counter() - t0, stopped)
