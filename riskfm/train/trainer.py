"""One training loop for a laptop CPU and for many GPUs / nodes (torchrun, DDP) on Lightning Fabric.

Fabric owns devices, distributed set-up, mixed precision and gradient sync; this module owns the
loop: gradient accumulation, clipping, validation AUROC each epoch, early stopping, atomic
checkpoints with resume, and gathering predictions across processes with each patient counted once
(``DistributedSampler`` pads the last batch by repeating patients; we drop the repeats by index).
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from lightning_fabric import Fabric
from torch.utils.data import DataLoader

from riskfm.data.sample import collate_samples
from riskfm.errors import CheckpointError
from riskfm.evaluate.discrimination import roc_auc
from riskfm.models.risk_model import RiskModel
from riskfm.train.checkpoint import load_checkpoint, rng_state, save_atomic, set_rng_state
from riskfm.train.config import TrainConfig
from riskfm.train.ema import ModelEMA

log = logging.getLogger(__name__)


#: Strategies that run one model replica per launched process (what torchrun starts).
_PER_PROCESS_STRATEGIES = ("ddp", "ddp_find_unused_parameters_true", "ddp_spawn", "fsdp", "deepspeed")


def launched_world(env: Mapping[str, str] | None = None) -> tuple[int, int] | None:
    """Return (processes per node, nodes) when started by torchrun with more than one process, else None."""
    env = os.environ if env is None else env
    world = int(env.get("WORLD_SIZE", "1") or 1)
    if world <= 1:
        return None
    local = int(env.get("LOCAL_WORLD_SIZE", world) or world)
    return local, max(1, world // local)


def resolve_launch(cfg: TrainConfig, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Return devices, strategy and nodes for Fabric; under torchrun the launched processes are the devices.

    ``torchrun --nproc_per_node N`` with a config that says nothing about devices must be one
    N-process DDP run, not N independent single-process runs writing one folder. So under
    torchrun ``devices`` / ``num_nodes`` left at their defaults take the launcher's numbers and
    ``strategy: auto`` becomes DDP; a value the config sets explicitly that disagrees with the
    launcher is an error (ConfigError) naming both.
    """
    from riskfm.train.config import ConfigError

    launch = {"devices": cfg.devices, "strategy": cfg.strategy, "num_nodes": cfg.num_nodes}
    world = launched_world(env)
    if world is None:
        return launch
    local, nodes = world
    explicit = cfg.model_fields_set
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


def make_fabric(cfg: TrainConfig) -> Fabric:
    """Build and launch a Fabric for this config (under torchrun it joins the process group as DDP)."""
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


def mean_auroc(frame: pd.DataFrame) -> float:
    """Return the mean AUROC over the targets of a predictions frame that have both classes (NaN if none)."""
    values = []
    for _, g in frame.dropna(subset=["y_true"]).groupby("target"):
        y = g["y_true"].to_numpy()
        if 0 < y.sum() < len(y):
            values.append(roc_auc(y, g["y_prob"].to_numpy(), ci=None).value)
    return float(np.mean(values)) if values else float("nan")


@torch.no_grad()
def predict(fabric: Fabric, model: torch.nn.Module, loader: DataLoader, dataset) -> pd.DataFrame:
    """Return long-format predictions (patient_id, site, target, y_true, y_prob, ...) over the whole dataset.

    Every process predicts its shard; the shards are gathered and de-duplicated by dataset index,
    so the result holds each patient exactly once on every process.
    """
    was_training = model.training
    model.eval()
    core = model.module if hasattr(model, "module") else model
    idx_parts, prob_parts = [], []
    targets = core.targets
    finish = getattr(dataset, "finish_batch", None)
    # Each batch is dropped (its probabilities copied out) before the next is windowed, so
    # one window buffer serves every batch: no fresh 16 MB a patient to page in on a CPU.
    workspace: dict = {}
    for batch in loader:
        if finish is not None:
            batch = finish(batch, workspace=workspace)
        outputs = model(batch)
        probs = {}
        for h in core.heads:
            probs.update(h.probabilities(outputs[h.name]))
        idx_parts.append(batch["index"].to(fabric.device))
        prob_parts.append(torch.stack([probs[t].float() for t in targets], dim=1))
    if idx_parts:
        idx = torch.cat(idx_parts)
        prob = torch.cat(prob_parts)
    else:
        idx = torch.zeros(0, dtype=torch.long, device=fabric.device)
        prob = torch.zeros(0, len(targets), device=fabric.device)
    if fabric.world_size > 1:
        # Shards have equal length under DistributedSampler (padding), so all_gather works directly.
        idx = fabric.all_gather(idx).reshape(-1)
        prob = fabric.all_gather(prob).reshape(-1, len(targets))
    idx_np = idx.cpu().numpy()
    prob_np = prob.cpu().numpy()
    _, first = np.unique(idx_np, return_index=True)
    idx_np, prob_np = idx_np[first], prob_np[first]
    model.train(was_training)
    labels = dataset.frame().iloc[idx_np].reset_index(drop=True)
    rows = []
    for j, t in enumerate(targets):
        y = labels["event"] if t == "risk_score" else labels[t]
        rows.append(pd.DataFrame({
            "patient_id": labels["patient_id"], "site": labels["site"], "target": t,
            "y_true": y.to_numpy(dtype=float), "y_prob": prob_np[:, j],
            "time_to_event_days": labels["time_to_event_days"], "event": labels["event"],
        }))
    return pd.concat(rows, ignore_index=True)


@dataclass
class FitResult:
    """What :func:`fit` did.

    Attributes
    ----------
    best_epoch : int
        0-based epoch whose weights were kept (-1 if none was).
    best_val_auroc : float
        Mean validation AUROC (:func:`mean_auroc`) of that epoch.
    epochs_run : int
        Epochs completed, counting those of a resumed run.
    history : list of dict
        One dict per epoch: ``epoch``, ``train_loss``, ``val_auroc``, ``lr``.
    seconds : float
        Wall time of this call.
    stopped_early : bool
        Whether early stopping ended training before ``cfg.epochs``.
    """

    best_epoch: int
    best_val_auroc: float
    epochs_run: int
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    stopped_early: bool = False


def resolve_num_workers(value: int | str, processes: int = 1, device: str = "cpu") -> int:
    """Return DataLoader workers per training process for ``train.num_workers`` (an int, or ``"auto"``).

    ``auto`` on an accelerator (``device`` "cuda", "mps", ...): the CPUs this process may use,
    divided among the ``processes`` training processes of this machine, less one for the training
    process itself; at most 4 (reading a cached row and collating is cheap, more workers only cost
    memory). ``auto`` with the model on the CPU: 0, because the model's own threads already use
    every core and loader processes only compete with them (on 2 cores a predicting worker
    was no faster than none; docs/training.md "Large cohorts").
    """
    if value != "auto":
        return int(value)
    if device == "cpu":
        return 0
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cpus = os.cpu_count() or 1
    return max(0, min(4, cpus // max(1, processes) - 1))


def data_loader(dataset, batch_size: int, num_workers: int, shuffle: bool = False) -> DataLoader:
    """Return the DataLoader of a :class:`~riskfm.data.dataset.RiskDataset` (collation runs in the workers).

    Persistent workers keep their own copy of the dataset, so the epoch that selects the
    augmentation draws would not reach them: an augmented dataset gets fresh workers each epoch.
    """
    persistent = num_workers > 0 and not getattr(dataset, "augment", False)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, collate_fn=collate_samples,
                      num_workers=num_workers, persistent_workers=persistent, drop_last=False)


def _loader(dataset, cfg: TrainConfig, shuffle: bool, processes: int = 1, device: str = "cpu") -> DataLoader:
    return data_loader(dataset, cfg.batch_size, resolve_num_workers(cfg.num_workers, processes, device), shuffle)


def _param_groups(model: RiskModel, lr: float, encoder_lr: dict[str, float],
                  encoder_opts: dict[str, dict] | None = None) -> list[dict]:
    """Return optimizer parameter groups: one per encoder, one for fusion + heads.

    Each encoder group gets its lr and optional ``weight_decay`` and ``layerwise_lr_decay`` from
    ``encoder_opts[modality]``, the latter splitting it per layer group.
    """
    groups, seen = [], set()
    for m, enc in model.encoders.items():
        params = [p for p in enc.parameters() if p.requires_grad]
        seen.update(id(p) for p in enc.parameters())
        opts = (encoder_opts or {}).get(m, {})
        if params and opts.get("layerwise_lr_decay"):
            from riskfm.ecg.finetune import layerwise_param_groups

            groups += layerwise_param_groups(enc, encoder_lr.get(m, lr), opts["layerwise_lr_decay"],
                                             weight_decay=opts.get("weight_decay"), name=f"encoder.{m}")
        elif params:
            group = {"params": params, "lr": encoder_lr.get(m, lr), "name": f"encoder.{m}"}
            if opts.get("weight_decay") is not None:
                group["weight_decay"] = opts["weight_decay"]
            groups.append(group)
    rest = [p for p in model.parameters() if p.requires_grad and id(p) not in seen]
    groups.append({"params": rest, "lr": lr, "name": "fusion+heads"})
    return groups


def make_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int):
    """Return (scheduler, kind): ``cosine`` steps per optimizer step, ``plateau`` per epoch (val AUROC)."""
    if cfg.scheduler == "cosine":
        total = max(1, cfg.epochs * steps_per_epoch)
        warmup = int(cfg.warmup_epochs * steps_per_epoch)

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            progress = (step - warmup) / max(1, total - warmup)
            return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

        return torch.optim.lr_scheduler.LambdaLR(optimizer, factor), "step"
    if cfg.scheduler == "plateau":  # ECGFounder's recipe: mode max on validation AUROC
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="max", factor=cfg.plateau_factor, patience=cfg.plateau_patience), "epoch"
    return None, "none"


def fit(
    fabric: Fabric,
    model: RiskModel,
    train_set,
    val_set,
    cfg: TrainConfig,
    out_dir: str | Path,
    *,
    encoder_lr: dict[str, float] | None = None,
    run_config: dict | None = None,
    encoder_opts: dict[str, dict] | None = None,
) -> FitResult:
    """Train ``model`` with early stopping on validation AUROC; the best weights end up in ``model``.

    Checkpoints: ``out_dir/checkpoints/last.ckpt`` after every epoch (resume point) and
    ``best.ckpt`` whenever validation AUROC improves. With ``cfg.resume`` a run restarted after a
    crash continues from ``last.ckpt`` (model, optimizer, epoch, early-stopping state, RNG).
    """
    t0 = time.perf_counter()
    ckpt_dir = Path(out_dir) / "checkpoints"
    fabric.seed_everything(cfg.seed, verbose=False)
    optimizer_cls = torch.optim.Adam if cfg.optimizer == "adam" else torch.optim.AdamW
    optimizer = optimizer_cls(_param_groups(model, cfg.lr, encoder_lr or {}, encoder_opts), lr=cfg.lr,
                              weight_decay=cfg.weight_decay)
    steps_per_epoch = math.ceil(math.ceil(len(train_set) / (cfg.batch_size * fabric.world_size))
                                / cfg.accumulate_grad_batches)
    scheduler, sched_kind = make_scheduler(optimizer, cfg, steps_per_epoch)
    start_epoch, best, best_epoch, bad_epochs, history = 0, -math.inf, -1, 0, []
    last = ckpt_dir / "last.ckpt"
    if cfg.resume and last.is_file():
        try:
            state = load_checkpoint(last)
        except CheckpointError as exc:
            raise CheckpointError(f"{exc}; delete it, or set train.resume: false, to start over") from exc
        model.load_checkpoint_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None and state.get("scheduler"):
            scheduler.load_state_dict(state["scheduler"])
        start_epoch, best, best_epoch = state["epoch"] + 1, state["best"], state["best_epoch"]
        bad_epochs, history = state["bad_epochs"], state["history"]
        set_rng_state(state["rng"])
        fabric.print(f"resuming from {last} at epoch {start_epoch}")
    wrapped, optimizer = fabric.setup(model, optimizer)
    ema = None
    if cfg.ema_decay:
        # An exponential moving average of the weights is evaluated and kept instead of the raw
        # weights: it smooths over the last ~1/(1 - decay) steps, which on small noisy-label cohorts
        # is worth a few AUROC points and makes the early-stopping epoch far less arbitrary.
        ema = ModelEMA(model, cfg.ema_decay)
        if cfg.resume and last.is_file() and state.get("ema"):
            ema.module.load_checkpoint_state_dict(state["ema"])
    keep = model if ema is None else ema.module
    local = max(1, fabric.world_size // cfg.num_nodes)  # training processes on this machine
    device = fabric.device.type
    train_loader, val_loader = fabric.setup_dataloaders(_loader(train_set, cfg, True, local, device),
                                                        _loader(val_set, cfg, False, local, device))

    bar = None
    if cfg.progress and fabric.is_global_zero:
        from riskfm.progress import progress

        bar = progress(total=cfg.epochs, initial=start_epoch, desc="training", unit="epoch", leave=True)
    stopped = False
    epoch = start_epoch - 1
    for epoch in range(start_epoch, cfg.epochs):
        if hasattr(train_loader.sampler, "set_epoch"):
            train_loader.sampler.set_epoch(epoch)
        if hasattr(train_set, "set_epoch"):
            train_set.set_epoch(epoch)
        wrapped.train()
        losses = []
        n_batches = len(train_loader)
        for i, batch in enumerate(train_loader):
            if hasattr(train_set, "finish_batch"):
                batch = train_set.finish_batch(batch)
            accumulating = (i + 1) % cfg.accumulate_grad_batches != 0 and (i + 1) != n_batches
            with fabric.no_backward_sync(wrapped, enabled=accumulating):
                outputs = wrapped(batch)
                loss, _ = model.loss(outputs, batch, cfg.loss_weights or None)
                fabric.backward(loss / cfg.accumulate_grad_batches)
            if not accumulating:
                if cfg.grad_clip:
                    fabric.clip_gradients(wrapped, optimizer, max_norm=cfg.grad_clip)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                if sched_kind == "step":
                    scheduler.step()
                if ema is not None:
                    ema.update(model)
            losses.append(float(loss.detach()))
        val = predict(fabric, wrapped if ema is None else ema.module, val_loader, val_set)
        val_auroc = mean_auroc(val)
        train_loss = float(fabric.all_reduce(torch.tensor(np.mean(losses), device=fabric.device), reduce_op="mean"))
        history.append({"epoch": epoch, "train_loss": train_loss, "val_auroc": val_auroc,
                        "lr": optimizer.param_groups[-1]["lr"]})
        if sched_kind == "epoch" and np.isfinite(val_auroc):
            scheduler.step(val_auroc)
        improved = np.isfinite(val_auroc) and val_auroc > best + 1e-4
        if improved or (best_epoch < 0 and not np.isfinite(val_auroc)):
            best, best_epoch, bad_epochs = (val_auroc if np.isfinite(val_auroc) else best), epoch, 0
            if fabric.is_global_zero:
                save_atomic({"model": keep.checkpoint_state_dict(), "epoch": epoch, "val_auroc": val_auroc,
                             "config": run_config or {}}, ckpt_dir / "best.ckpt")
        else:
            bad_epochs += 1
        if fabric.is_global_zero:
            save_atomic({"model": model.checkpoint_state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch,
                         "best": best, "best_epoch": best_epoch, "bad_epochs": bad_epochs, "history": history,
                         "scheduler": scheduler.state_dict() if scheduler is not None else {},
                         "ema": ema.module.checkpoint_state_dict() if ema is not None else {},
                         "rng": rng_state(), "config": run_config or {}}, last)
        fabric.barrier()
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{train_loss:.3f}", val_auroc=f"{val_auroc:.3f}", best=f"{best:.3f}")
        log.info("epoch %d: train loss %.4f, validation AUROC %.4f", epoch, train_loss, val_auroc)
        if bad_epochs >= cfg.patience and epoch + 1 >= cfg.min_epochs:
            stopped = True
            break
    if bar is not None:
        bar.close()
    best_path = ckpt_dir / "best.ckpt"
    if best_path.is_file():
        model.load_checkpoint_state_dict(load_checkpoint(best_path)["model"])
    return FitResult(best_epoch, float(best), epoch + 1, history, time.perf_counter() - t0, stopped)
