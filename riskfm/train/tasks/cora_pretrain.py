"""CORA's synthesis-driven pretraining as an engine task, and :func:`pretrain_cora`, the run around it.

Sample ``k`` of a run is a pure function of ``(seed, k)`` (:class:`~riskfm.ct.pretrain.SynthesisPatchDataset`:
the lesion-synthesis engine runs in the loader workers). An epoch of the engine is
``checkpoint_every`` optimiser steps; epoch ``e`` reads samples ``[e * every * B, (e + 1) * every * B)``
of the sequence, ``B`` the samples per step over all processes, each process a disjoint share.
So a run killed at any point resumes at its last checkpoint with the next unseen samples, and a
finished run continued with a larger ``steps`` budget picks up where it ended.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from riskfm.ct.cases import CTCase, find_cases
from riskfm.ct.cora import CoraResUNet, cora_input_spec
from riskfm.ct.finetune import DenseOutput
from riskfm.ct.pretrain import CoraLoss, PretrainConfig, PretrainVolume, SynthesisPatchDataset, prepare_volume
from riskfm.ct.synthesis import LesionSynthesisEngine, SynthesisConfig
from riskfm.progress import progress as progress_bar
from riskfm.train.bundle import config_fingerprint
from riskfm.train.engine import EngineConfig, Task, fit, make_fabric

__all__ = ["CoraPretrainTask", "PretrainResult", "pretrain_cora"]

#: Settings that may change when a run is resumed: the step budget and where it runs.
_RESUMABLE = ("steps", "num_workers", "accelerator", "devices", "strategy", "num_nodes", "precision")


@dataclass
class PretrainResult:
    """What a pretraining run produced.

    Attributes
    ----------
    out_dir : Path
    checkpoint : Path
        ``cora_pretrained.pt``, the final weights (a ``cora-pretrain`` bundle).
    history : list of dict
        One dict per optimiser step: ``step``, ``loss``, ``lr``, ``lesion_fraction``.
    seconds : float
    volumes : list of dict
        Per CT: ``patient_id``, ``mask_source`` (the rule that placed the patches), ``shape``,
        ``n_candidates``.
    """

    out_dir: Path
    checkpoint: Path
    history: list[dict]
    seconds: float
    volumes: list[dict]

    def loss_drop(self, fraction: float = 0.2) -> tuple[float, float]:
        """Return the mean loss over the first and the last ``fraction`` of the steps."""
        losses = np.array([h["loss"] for h in self.history])
        n = max(1, int(len(losses) * fraction))
        return float(losses[:n].mean()), float(losses[-n:].mean())


class CoraPretrainTask(Task):
    """Segment synthetic lesions: a :class:`CoraResUNet` on engine patches, Tversky + focal loss.

    Parameters
    ----------
    items : sequence of PretrainVolume or CTCase
        Prepared volumes, or cases prepared in the loader workers (LRU-cached per worker).
    cfg : PretrainConfig
    """

    kind = "cora-pretrain"

    def __init__(self, items: Sequence[PretrainVolume | CTCase], cfg: PretrainConfig) -> None:
        self.items, self.cfg = list(items), cfg
        self.net = CoraResUNet(width=cfg.width, input_spec=cora_input_spec(cfg.spacing, cfg.patch_size))
        self.model = DenseOutput(self.net)
        self.loss_fn = CoraLoss()
        self.synthesis = LesionSynthesisEngine(SynthesisConfig(**{**asdict(cfg.synthesis),
                                                                  "patch_size": cfg.patch_size}))
        self.fabric = None

    def setup(self, fabric) -> None:
        """Keep the Fabric: each epoch's loader is sharded across its processes."""
        self.fabric = fabric

    def train_batches(self, epoch: int, start: int = 0):
        """Return the loader of epoch ``epoch``'s samples, from optimiser step ``start`` of the epoch on."""
        cfg, fabric = self.cfg, self.fabric
        per_step = cfg.batch_size * fabric.world_size
        first = epoch * cfg.checkpoint_every + start
        steps = max(0, min(cfg.checkpoint_every - start, cfg.steps - first))
        dataset = SynthesisPatchDataset(self.items, self.synthesis, steps * per_step, cfg.seed,
                                        offset=first * per_step, spacing=cfg.spacing,
                                        patches_per_volume=cfg.patches_per_volume)
        return fabric.setup_dataloaders(DataLoader(dataset, batch_size=cfg.batch_size, shuffle=False,
                                                   num_workers=cfg.num_workers))

    def loss(self, model, batch) -> tuple[torch.Tensor, int]:
        """Return the Tversky + focal loss of the dense logits and the patches in the batch."""
        image, mask = batch
        return self.loss_fn(model(image), mask), int(image.shape[0])

    def step_log(self, batch) -> dict:
        """Return the share of lesion voxels in the batch's masks."""
        return {"lesion_fraction": float(batch[1].mean())}


def _identity(cfg: PretrainConfig, volumes: list[dict]) -> tuple[dict, str]:
    settings = {k: v for k, v in cfg.to_dict().items() if k not in _RESUMABLE}
    config = {"task": "cora-pretrain", "pretrain": settings, "volumes": [v["patient_id"] for v in volumes]}
    return config, config_fingerprint(config)


def pretrain_cora(
    source: str | Path | Sequence[CTCase | PretrainVolume],
    out_dir: str | Path,
    config: PretrainConfig | None = None,
    *,
    resume: bool = True,
    preload: bool = True,
    progress: Callable[[int, float], None] | None = None,
    show_progress: bool = True,
) -> PretrainResult:
    """Pretrain CORA by synthetic-lesion segmentation on the training engine.

    Parameters
    ----------
    source : path or sequence
        A manifest (CSV / Parquet with ``ct_path``), a folder of CTs, or prepared cases / volumes.
    out_dir : path
        Output folder: ``cora_pretrained.pt``, ``checkpoints/last.ckpt``, ``history.csv`` (one
        row per checkpoint interval), ``steps.csv`` (one row per optimiser step), ``volumes.csv``
        and ``config.json``.
    config : PretrainConfig, optional
    resume : bool
        Continue from ``checkpoints/last.ckpt`` when it exists (a checkpoint of other settings or
        CTs is refused; ``steps`` and the hardware may change).
    preload : bool
        Prepare every volume once up front (small archives); False prepares them in the loader
        workers, through a per-worker cache.
    progress : callable, optional
        Called as ``progress(step, loss)`` after every optimiser step (rank 0).
    show_progress : bool
        Progress bars on stderr (rank 0): reading the CTs, then the steps with the current loss
        (silent anyway under ``riskfm --quiet`` / ``RISKFM_QUIET=1``).

    Returns
    -------
    PretrainResult
    """
    from riskfm.train.bundle import save_bundle

    cfg = config if config is not None else PretrainConfig()
    t0 = time.perf_counter()
    out = Path(out_dir)
    items = find_cases(source) if isinstance(source, str | Path) else list(source)
    if preload:
        to_read = sum(not isinstance(v, PretrainVolume) for v in items)
        with progress_bar(total=to_read, enabled=show_progress, desc=f"reading {to_read} CTs", unit="CT") as bar:
            prepared = []
            for v in items:
                if not isinstance(v, PretrainVolume):
                    v = prepare_volume(v, cfg.spacing, cfg.patch_size)
                    bar.update(1)
                prepared.append(v)
        items = prepared
    volumes_info = [{"patient_id": v.patient_id, "mask_source": v.mask_source, "shape": list(v.hu.shape),
                     "n_candidates": int(len(v.candidates))} for v in items if isinstance(v, PretrainVolume)]
    identity, fingerprint = _identity(cfg, [{"patient_id": getattr(v, "patient_id", str(v))} for v in items])

    fabric = make_fabric(cfg)
    fabric.seed_everything(cfg.seed, verbose=False)  # the network's initial weights
    task = CoraPretrainTask(items, cfg)
    engine = EngineConfig(epochs=math.ceil(cfg.steps / cfg.checkpoint_every), steps_per_epoch=cfg.checkpoint_every,
                          max_steps=cfg.steps, optimizer="adamw", lr=cfg.lr, weight_decay=cfg.weight_decay,
                          scheduler="cosine", warmup_steps=cfg.warmup_steps, grad_clip=cfg.grad_clip, seed=cfg.seed,
                          resume=resume, progress=show_progress, desc="pretraining CORA", log_steps=True,
                          resume_hint="pass resume=False (riskfm pretrain-ct --no-resume)")
    result = fit(task, engine, out, fabric=fabric, config={**identity, "pretrain": cfg.to_dict()},
                 fingerprint=fingerprint, on_step=progress)
    final = out / "cora_pretrained.pt"
    if fabric.is_global_zero:
        net = task.net
        save_bundle(final, kind="cora-pretrain", model=net.state_dict(), fingerprint=fingerprint,
                    config={"encoder": "cora-resunet", "width": cfg.width, "spacing": list(cfg.spacing),
                            "patch_size": list(cfg.patch_size), "windows": [list(w) for w in net.input_spec.windows],
                            "pretrain": cfg.to_dict()}, step=result.steps_run)
        import pandas as pd

        pd.DataFrame(result.steps).to_csv(out / "steps.csv", index=False)
        pd.DataFrame(volumes_info).to_csv(out / "volumes.csv", index=False)
        (out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2))
    fabric.barrier()
    return PretrainResult(out, final, result.steps, time.perf_counter() - t0, volumes_info)
