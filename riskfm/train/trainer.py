"""What the risk model's training and prediction share: loaders, prediction across processes, mean AUROC.

The loop itself is :func:`riskfm.train.engine.fit` (the risk model is the task
:class:`riskfm.train.tasks.risk_model.RiskModelTask`). :func:`predict` gathers predictions
across processes with each patient counted once (``DistributedSampler`` pads the last batch by
repeating patients; the repeats are dropped by index).
"""

from __future__ import annotations

import logging
import os

import numpy as np
import pandas as pd
import torch
from lightning_fabric import Fabric
from torch.utils.data import DataLoader

from riskfm.data.sample import collate_samples
from riskfm.evaluate.discrimination import roc_auc

log = logging.getLogger(__name__)


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
