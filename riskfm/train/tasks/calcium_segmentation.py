"""Calcium segmentation training on the engine: :func:`train_segmenter` and :func:`train_segmenter_on_synthetic`.

The networks, their inputs, targets and loss live in :mod:`riskfm.ct.calcium.segmentation`; this
module only trains them. Every optimiser step draws its batch from one ``numpy`` generator seeded
with the run's ``seed``: for the 2D U-Net, slices with a candidate voxel (those with coronary
calcium twice as often); for the 3D networks, exams (and crops around a candidate voxel, half of
them on coronary calcium). The generator's state is part of each checkpoint, so a run killed and
started again with the same ``checkpoint_dir`` draws exactly the batches an uninterrupted run
would have and ends with the same weights.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from riskfm.ct.calcium.segmentation import (
    MODELS,
    ROI_MODES,
    CalciumSegmenter,
    SegmenterConfig,
    _build,
    _estimated_roi,
    _loss,
    _patch_box,
    _slices_input,
    _targets,
    _volume_input,
)
from riskfm.train.bundle import config_fingerprint
from riskfm.train.engine import EngineConfig, Task, fit

__all__ = ["CalciumSegmentationTask", "train_segmenter", "train_segmenter_on_synthetic"]


class CalciumSegmentationTask(Task):
    """Train a calcium segmentation network on batches drawn from prepared exams.

    Parameters
    ----------
    net : nn.Module
        A :mod:`riskfm.ct.calcium.segmentation` network (``[B, C, ...]`` -> ``[B, 5, ...]`` logits).
    config : SegmenterConfig
        Its config (``model`` picks 2D slices or 3D volumes, ``context`` the 2D neighbours).
    data : sequence of (hu, spacing, labels)
        The exams (``hu`` float32 ``[Z, Y, X]``, ``labels`` 0-4 of the same shape).
    rois : sequence of bool arrays or None
        Each exam's region where candidates count (None: every voxel >= 130 HU).
    batch_size : int
        Slices (2D) or exams (3D, capped at 2) per step.
    patch_size : (int, int, int) or None
        3D crop size (None: whole exams).
    seed : int
        Seed of the drawing generator.
    """

    kind = "calcium-segmenter"

    def __init__(self, net: torch.nn.Module, config: SegmenterConfig, data: Sequence[tuple], rois: Sequence[Any], *,
                 batch_size: int = 8, patch_size: Sequence[int] | None = (32, 64, 64), seed: int = 0) -> None:
        self.model = net
        self.config = config
        self.patch_size = patch_size
        self.seed = int(seed)
        self.rng = np.random.default_rng(seed)
        self.fabric = None
        self.n_exams = len(data)
        self.targets = [_targets(hu, lab, r) for (hu, _, lab), r in zip(data, rois)]
        if config.model == "unet2d":
            self.inputs = [_slices_input(hu, config.context) for hu, _, _ in data]
            tg = self.targets
            # Only slices with a candidate voxel teach anything; slices with coronary calcium twice as often.
            self.items = [(e, z) for e, (c, _) in enumerate(tg) for z in range(c.shape[0]) if c[z].any()]
            weights = np.array([2.0 if (tg[e][1][z] > 0).any() else 1.0 for e, z in self.items])
            self.weights = weights / weights.sum()
            self.batch_size = int(batch_size)
        else:
            self.inputs = [_volume_input(hu) for hu, _, _ in data]
            self.items, self.weights = [], None
            self.batch_size = min(int(batch_size), 2)

    def steps_per_pass(self) -> int:
        """Return the optimiser steps of one pass over the slices (2D) or the exams (3D)."""
        n = len(self.items) if self.config.model == "unet2d" else self.n_exams
        return max(1, math.ceil(n / self.batch_size))

    def setup(self, fabric) -> None:
        """Keep the Fabric (batches are moved to its device); under DDP each process draws its own batches."""
        self.fabric = fabric
        if fabric.global_rank:  # rank 0 keeps ``seed``: a one-process run is the same on any machine
            self.rng = np.random.default_rng([self.seed, fabric.global_rank])

    def _draw(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return one batch (input, candidate mask, target labels), drawn from the task's generator."""
        rng, xs, tg = self.rng, self.inputs, self.targets
        if self.config.model == "unet2d":
            pick = rng.choice(len(self.items), size=min(self.batch_size, len(self.items)), p=self.weights)
            sel = [self.items[k] for k in pick]
            x = np.stack([xs[e][z] for e, z in sel])
            cand = np.stack([tg[e][0][z] for e, z in sel])
            tgt = np.stack([tg[e][1][z] for e, z in sel])
        elif self.patch_size is not None and any(int(p) < n for p, n in zip(self.patch_size, tg[0][0].shape)):
            pick = rng.choice(self.n_exams, size=self.batch_size, replace=self.n_exams < self.batch_size)
            boxes = [_patch_box(tg[k], self.patch_size, rng) for k in pick]
            x = np.stack([xs[k][(slice(None), *b)] for k, b in zip(pick, boxes)])
            cand = np.stack([tg[k][0][b] for k, b in zip(pick, boxes)])
            tgt = np.stack([tg[k][1][b] for k, b in zip(pick, boxes)])
        else:
            pick = rng.choice(self.n_exams, size=self.batch_size, replace=self.n_exams < self.batch_size)
            if len({xs[k].shape for k in pick}) > 1:  # different grids cannot share a batch
                pick = pick[:1]
            x = np.stack([xs[k] for k in pick])
            cand = np.stack([tg[k][0] for k in pick])
            tgt = np.stack([tg[k][1] for k in pick])
        return torch.from_numpy(x), torch.from_numpy(cand), torch.from_numpy(tgt)

    def train_batches(self, epoch: int, start: int = 0) -> Iterator:
        """Return an endless stream of drawn batches (the generator, restored on resume, knows where it is)."""
        while True:
            yield self._draw()

    def finish_batch(self, batch):
        """Move ``(x, cand, target)`` to the device."""
        return self.fabric.to_device(batch)

    def loss(self, model, batch) -> tuple[torch.Tensor, int]:
        """Return the candidate-voxel loss of the batch, counted as one item.

        One item per step, not per slice: an epoch's ``train_loss`` is then the mean of its steps'
        losses, as ``config.history`` always was (a 3D batch of exams on different grids shrinks).
        """
        x, cand, target = batch
        return _loss(model(x), cand, target), 1

    def state_dict(self) -> dict:
        """Return the drawing generator's state."""
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore the drawing generator's state."""
        if "rng" in state:
            self.rng.bit_generator.state = dict(state["rng"])


def _check_exams(exams: Sequence[Any]) -> list[tuple[np.ndarray, tuple[float, ...], np.ndarray]]:
    data = []
    for i, ex in enumerate(exams):
        hu, spacing, labels = (ex if isinstance(ex, tuple) else (ex.hu, ex.spacing, ex.labels))
        hu = np.asarray(hu, dtype=np.float32)
        labels = np.asarray(labels)
        if hu.ndim != 3 or labels.shape != hu.shape:
            raise ValueError(f"exam {i}: hu must be [Z, Y, X] and labels the same shape; got {hu.shape} and {labels.shape}")
        if labels.min() < 0 or labels.max() > 4:
            raise ValueError(f"exam {i}: labels must be 0-4 (0 none, 1 LM, 2 LAD, 3 LCX, 4 RCA)")
        data.append((hu, tuple(float(s) for s in spacing), labels))
    return data


def _fabric(device: str):
    """Return a one-device Fabric for a torch device string ("cpu", "cuda", "cuda:1", "mps")."""
    from lightning_fabric import Fabric

    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise ValueError(f"device must be 'cpu', 'cuda', 'cuda:N' or 'mps', got {device!r}") from exc
    if dev.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device must be 'cpu', 'cuda', 'cuda:N' or 'mps', got {device!r}")
    return Fabric(accelerator=dev.type, devices=[dev.index] if dev.index is not None else 1)


def train_segmenter(
    exams: Sequence[Any],
    *,
    model: str = "unet2d",
    widths: Sequence[int] = (16, 32, 64, 96),
    epochs: int = 10,
    steps_per_epoch: int | None = None,
    batch_size: int = 8,
    lr: float = 2e-3,
    encoder_checkpoint: str | Path | None = None,
    seed: int = 0,
    device: str = "cpu",
    max_seconds: float | None = None,
    roi: str = "estimate",
    patch_size: Sequence[int] | None = (32, 64, 64),
    progress: bool | str = True,
    checkpoint_dir: str | Path | None = None,
    fabric=None,
) -> CalciumSegmenter:
    """Train a calcium segmentation network on labelled exams (with :func:`riskfm.train.engine.fit`).

    Parameters
    ----------
    exams : sequence
        Objects with ``hu`` ``[Z, Y, X]`` (HU), ``spacing`` (z, y, x) mm and ``labels`` (artery
        calcium map 0-4), e.g. :class:`riskfm.synthetic.calcium.CalciumExam`, or (hu, spacing,
        labels) tuples.
    model : {"unet2d", "seg3d", "cora3d"}
        The slice-wise U-Net baseline; the 3D network on ``cnn3d-small`` conv blocks; or CORA's
        residual U-Net with a calcium head (:class:`~riskfm.ct.calcium.cora_seg.CalciumCora3d`, the
        foundation-model fine-tune when ``encoder_checkpoint`` is a ``riskfm pretrain-ct`` output).
    widths : sequence of int
        Network widths (for "seg3d" the encoder's; must match ``encoder_checkpoint``; for
        "cora3d" only ``widths[0]``, CORA's stage-1 width, counts).
    epochs : int
        Passes; an epoch is ``steps_per_epoch`` optimiser steps (default: one pass over the slices
        (2D) or the exams (3D)).
    steps_per_epoch : int, optional
    batch_size : int
        Slices (2D) or exams (3D, capped at 2) per step.
    lr : float
        AdamW learning rate (weight decay 1e-4; cosine decay to 0 over the run).
    encoder_checkpoint : path, optional
        Pretrained encoder: ``cnn3d-small`` for "seg3d", ``cora-resunet`` for "cora3d".
    seed : int
        Seeds the initial weights and the batch drawing.
    device : str
        Torch device: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"`` (one device, through Lightning
        Fabric).
    max_seconds : float, optional
        Stop at the first epoch end after this wall time (the history says how far it got).
    roi : {"estimate", "none"}, default "estimate"
        ``"estimate"``: the loss counts only candidate voxels inside each exam's
        :func:`~riskfm.ct.calcium.roi.estimate_heart_roi`, and the saved model predicts inside the
        same region. The network's whole job is then the hard question -- coronary calcium, or
        aortic-wall / valve calcium next to it -- instead of spending most of its loss on ribs and
        spine that the region keeps out anyway. On the calcium benchmark this took bucket kappa
        from 0.48 to 0.87 with the same U-Net and steps. ``"none"``: every voxel >= 130 HU.
    patch_size : (int, int, int) or None, default (32, 64, 64)
        3D models train on crops of this size (clipped to the exam), half of them centred on
        coronary calcium; ``None`` trains on whole exams (several times slower per step).
    progress : bool or str, default True
        A bar of the optimiser steps with the epoch and the loss on stderr
        (:mod:`riskfm.progress`; silent under ``riskfm --quiet``); a string names it.
    checkpoint_dir : str or Path, optional
        Where ``checkpoints/last.ckpt`` (a ``calcium-segmenter`` bundle with the training state) is
        written after every epoch; the same call started again there after a crash resumes from
        it and ends with the same weights as an uninterrupted run. A ``last.ckpt`` of other
        settings or another number of exams is refused. None: nothing is written.
    fabric : lightning_fabric.Fabric, optional
        A launched Fabric to train on instead of ``device`` (e.g.
        :func:`riskfm.train.engine.make_fabric` under torchrun: DDP, each process drawing its own
        batches).

    Returns
    -------
    CalciumSegmenter
        On the CPU, in eval mode; ``config.history`` holds the mean loss of each epoch's steps.
    """
    if not exams:
        raise ValueError("train_segmenter needs at least one exam")
    data = _check_exams(exams)
    if model not in MODELS:
        raise ValueError(f"model must be one of {MODELS}, got {model!r}")
    if roi not in ROI_MODES:
        raise ValueError(f"roi must be one of {ROI_MODES}, got {roi!r}")
    if fabric is None:
        fabric = _fabric(device)  # a wrong device fails before the heart regions are estimated
    name = progress if isinstance(progress, str) else f"training {model}"
    if progress:
        from riskfm.progress import status

        status(f"{name}: preparing {len(data)} exams" + (" (heart regions)" if roi == "estimate" else ""))
    rois = [_estimated_roi(hu, sp) if roi == "estimate" else None for hu, sp, _ in data]
    if model == "cora3d":  # CORA's stages are width x (1, 2, 4, 8): only the first width is free
        widths = tuple(int(widths[0]) * m for m in (1, 2, 4, 8))
    torch.manual_seed(seed)  # the network's initial weights
    config = SegmenterConfig(model=model, widths=tuple(int(w) for w in widths), roi=roi,
                             spacing=tuple(np.mean([d[1] for d in data], axis=0).tolist()))
    net = _build(config, encoder_checkpoint)
    config.encoder_init = getattr(net, "encoder_init", "random")
    task = CalciumSegmentationTask(net, config, data, rois, batch_size=batch_size, patch_size=patch_size, seed=seed)
    per_epoch = steps_per_epoch or task.steps_per_pass()
    engine = EngineConfig(epochs=epochs, steps_per_epoch=per_epoch, optimizer="adamw", lr=lr, weight_decay=1e-4,
                          scheduler="cosine", seed=seed, max_seconds=max_seconds, progress=bool(progress), desc=name,
                          resume_hint="pass another checkpoint_dir")
    # What must match for a last.ckpt to be resumed: everything that changes the batches or the steps.
    identity = {"task": "calcium-segmenter", "model": model, "widths": list(config.widths), "roi": roi,
                "epochs": epochs, "steps_per_epoch": per_epoch, "batch_size": batch_size, "lr": lr, "seed": seed,
                "patch_size": None if patch_size is None else [int(p) for p in patch_size],
                "encoder_init": config.encoder_init, "n_exams": len(data)}
    fingerprint = config_fingerprint(identity)
    result = fit(task, engine, checkpoint_dir, fabric=fabric, config=identity, fingerprint=fingerprint)
    config.history = [float(row["train_loss"]) for row in result.history]
    return CalciumSegmenter(net.cpu().eval(), config)


def train_segmenter_on_synthetic(
    n_exams: int = 24,
    *,
    seed: int = 0,
    model: str = "unet2d",
    roi: str = "estimate",
    out: str | Path | None = None,
    desc: str = "rendering exams",
    **kwargs: Any,
) -> CalciumSegmenter:
    """Render gated synthetic exams, train a segmenter on them and optionally save it.

    What ``riskfm cac train`` runs: a status line (``rendering N synthetic training exams``, on
    stderr), the ``n_exams`` gated training exams every ``cac`` protocol draws for ``seed``
    (:func:`riskfm.ct.calcium.protocols.protocol_exams`), then :func:`train_segmenter`.

    Parameters
    ----------
    n_exams : int, default 24
        Synthetic training exams (:func:`riskfm.synthetic.calcium.make_calcium_exam`, gated).
    seed : int
        Seed of the exams and of the training.
    model : {"unet2d", "seg3d", "cora3d"}
        The network (:func:`train_segmenter`); checked before any exam is rendered.
    roi : {"estimate", "none"}
        Where the network learns to decide (:func:`train_segmenter`); checked before any exam
        is rendered.
    out : str or path, optional
        Save the trained model there (``.pt``, :meth:`CalciumSegmenter.save`).
    desc : str
        The rendering bar's label.
    **kwargs
        Passed to :func:`train_segmenter`: ``epochs``, ``steps_per_epoch``, ``widths``,
        ``encoder_checkpoint``, ``checkpoint_dir``, ``progress`` (default: a bar named
        ``training <model>``), ...

    Returns
    -------
    CalciumSegmenter
        The trained model; its ``config.history`` holds the loss per epoch.

    Raises
    ------
    ValueError
        ``model`` or ``roi`` is not one of the accepted values.
    """
    from riskfm.ct.calcium.protocols import protocol_exams
    from riskfm.progress import status

    if model not in MODELS:
        raise ValueError(f"model must be one of {MODELS}, got {model!r}")
    if roi not in ROI_MODES:
        raise ValueError(f"roi must be one of {ROI_MODES}, got {roi!r}")
    status(f"rendering {n_exams} synthetic training exams")
    exams = protocol_exams(n_exams, seed, desc=desc)
    seg = train_segmenter(exams, model=model, roi=roi, seed=seed, **kwargs)
    if out is not None:
        seg.save(out)
    return seg
