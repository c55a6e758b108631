"""What CORA's three downstream recipes share: loading cases, building the network, writing JSON.

Their train / test split is :func:`riskfm.data.splits.split_indices`.

The recipes report on stderr what they are doing (a bar over the CTs being read, the fine-tuning
steps with the loss, the test CTs being evaluated); ``riskfm --quiet`` / ``RISKFM_QUIET=1``
(:mod:`riskfm.progress`) silences them, and :func:`evaluate_cases` is the per-test-CT loop.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import pandas as pd

from riskfm.ct.cases import CTCase, LoadedCase, find_cases, load_case
from riskfm.ct.cora import CoraResUNet, cora_input_spec
from riskfm.ct.finetune import DenseOutput, DensePatchSampler
from riskfm.progress import progress as progress_bar
from riskfm.recipes.result import jsonable
from riskfm.train.bundle import config_fingerprint
from riskfm.train.engine import EngineResult
from riskfm.train.tasks.sampled import SampledBatchTask, fit_sampled

__all__ = ["DEFAULT_SPACING", "DenseTaskOptions", "build_network", "evaluate_cases", "fine_tune_dense",
           "load_cases", "write_json", "write_outputs"]


@dataclass(frozen=True)
class DenseTaskOptions:
    """How a dense CORA task (stenosis detection, artery segmentation) trains and tests.

    Attributes
    ----------
    width : int, optional
        Network width (default: the checkpoint's, or 8 from scratch).
    spacing : sequence of 3 float, optional
        Working spacing in mm (default: the checkpoint's, or (2.0, 1.5, 1.5)).
    patch : sequence of 3 int, default (32, 32, 32)
        Training patch and sliding-window size (multiples of 8).
    steps, batch_size, lr
        Optimiser steps, patches per step, AdamW learning rate (cosine decay).
    threshold : float, default 0.5
        Probability above which a voxel is predicted foreground.
    test_fraction : float, default 0.3
        Share of cases held out for testing (random split by ``seed``).
    seed : int
    """

    width: int | None = None
    spacing: Sequence[float] | None = None
    patch: Sequence[int] = (32, 32, 32)
    steps: int = 300
    batch_size: int = 2
    lr: float = 1e-3
    threshold: float = 0.5
    test_fraction: float = 0.3
    seed: int = 0

    @classmethod
    def resolve(cls, options: DenseTaskOptions | None = None, **overrides: Any) -> DenseTaskOptions:
        """``options`` (or the defaults) with ``overrides`` applied; unknown names raise ``TypeError``."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise TypeError(f"unknown option(s) {unknown}; DenseTaskOptions has {sorted(known)}")
        opts = replace(options or cls(), **overrides)
        return replace(opts, patch=tuple(int(p) for p in opts.patch))


#: Working spacing (z, y, x) mm of the recipes when neither the caller nor a checkpoint gives one.
DEFAULT_SPACING: tuple[float, float, float] = (2.0, 1.5, 1.5)


def load_cases(
    source: str | Path | Sequence[CTCase] | Sequence[LoadedCase],
    spacing: Sequence[float] | None,
    *,
    kinds: Sequence[str],
    checkpoint: str | Path | None = None,
    require: str | None = None,
    crop_heart: bool = False,
    margin_mm: float = 10.0,
    progress: bool = True,
) -> list[LoadedCase]:
    """Load cases from a manifest / folder / case list (already-loaded cases pass through).

    ``spacing``: the working grid; None takes the pretraining spacing recorded in ``checkpoint``
    (read only when something is left to load), else :data:`DEFAULT_SPACING`. ``require``: keep
    only cases that have this mask kind (raises if none do). ``crop_heart``: crop each CT to its
    heart mask's bounding box plus ``margin_mm``. ``progress``: a bar over the CTs read, on stderr.
    """
    if isinstance(source, str | Path):
        items: list = find_cases(source)
    else:
        items = list(source)
    loaded = [c if isinstance(c, LoadedCase) else None for c in items]
    if any(c is None for c in loaded) and spacing is None:
        if checkpoint is not None:
            from riskfm.train.checkpoint import load_checkpoint

            spacing = load_checkpoint(checkpoint).get("config", {}).get("spacing")
        spacing = spacing if spacing is not None else DEFAULT_SPACING
    todo = [i for i, c in enumerate(items) if loaded[i] is None and (require is None or require in c.masks)
            and (not crop_heart or "heart" in c.masks)]
    for i in progress_bar(todo, enabled=progress and bool(todo), desc=f"reading {len(todo)} CTs", unit="CT"):
        loaded[i] = load_case(items[i], spacing, kinds=kinds, crop_heart=crop_heart, margin_mm=margin_mm)
    out = [c for c in loaded if c is not None and (require is None or require in c.masks)]
    if not out:
        raise ValueError(f"no case has a {require!r} mask" if require else "no cases found")
    return out


def build_network(
    checkpoint: str | Path | None,
    *,
    width: int | None,
    spacing: Sequence[float] | None,
    shape: Sequence[int],
    new_decoder: bool = False,
) -> CoraResUNet:
    """Build a pretrained CORA network (from ``checkpoint``) or a fresh one of ``width`` (default 8).

    The input spec gets ``shape`` (the task's patch or volume size) and the checkpoint's spacing
    unless ``spacing`` is given. ``new_decoder`` re-initialises decoder and head (coronary
    segmentation fine-tunes the pretrained encoder with a new decoder).
    """
    if checkpoint is not None:
        from riskfm.ct.pretrain import load_pretrained
        from riskfm.train.checkpoint import load_checkpoint

        conf = load_checkpoint(checkpoint).get("config", {})
        sp = spacing if spacing is not None else conf.get("spacing", DEFAULT_SPACING)
        kwargs: dict[str, Any] = {"input_spec": cora_input_spec(sp, shape)}
        if width is not None:
            kwargs["width"] = width
        net = load_pretrained(checkpoint, **kwargs)
    else:
        net = CoraResUNet(width=width or 8, input_spec=cora_input_spec(spacing or DEFAULT_SPACING, shape))
    if new_decoder:
        net.reset_decoder()
    return net


def fine_tune_dense(
    cases: Sequence[LoadedCase],
    train_idx: Sequence[int],
    target: str,
    loss: Callable[[Any, Any], Any],
    checkpoint: str | Path | None,
    opts: DenseTaskOptions,
    *,
    width: int | None = None,
    new_decoder: bool = False,
    foreground_prob: float | None = None,
    desc: str = "fine-tuning CORA",
    progress: bool = True,
    checkpoint_dir: str | Path | None = None,
) -> tuple[CoraResUNet, EngineResult]:
    """Build the network (:func:`build_network`) and fine-tune it on patches of the training cases.

    Parameters
    ----------
    cases : sequence of LoadedCase
        All cases; ``train_idx`` picks the training ones.
    train_idx : sequence of int
        Positions of the training cases (their order is the sampler's).
    target : str
        Mask kind the network learns (``"coronary"``, ``"stenosis"``, ``"plaque"``).
    loss : callable (logits, targets) -> tensor
        Training loss on ``[B, 1, Z, Y, X]`` logits and targets.
    checkpoint : path, optional
        Pretrained ``cora_pretrained.pt``; None starts from scratch.
    opts : DenseTaskOptions
        Width, spacing (default: the first case's), patch (``[Z, Y, X]`` voxels), steps, batch
        size, learning rate, seed.
    width : int, optional
        Overrides ``opts.width``.
    new_decoder : bool
        Re-initialise decoder and head (segmentation keeps only the pretrained encoder).
    foreground_prob : float, optional
        Share of patches centred on the target (default: the sampler's).
    desc, progress
        Label of the training bar on stderr, and whether to show it.
    checkpoint_dir : path, optional
        Where ``checkpoints/last.ckpt`` is written every 100 steps: a killed run started again
        with the same inputs resumes from it exactly (another run's checkpoint there is refused).

    Returns
    -------
    net : CoraResUNet
        The fine-tuned network (its input spec has the patch shape).
    fit : EngineResult
        Loss and learning rate per step (``fit.steps``) and timing.
    """
    import torch

    # a new decoder (and a network from scratch) start from the seed, whatever ran before in the process
    torch.manual_seed(opts.seed)
    net = build_network(checkpoint, width=width or opts.width, spacing=opts.spacing or tuple(cases[0].vol.spacing),
                        shape=opts.patch, new_decoder=new_decoder)
    kwargs = {} if foreground_prob is None else {"foreground_prob": foreground_prob}
    sampler = DensePatchSampler([cases[i] for i in train_idx], target, opts.patch, net.input_spec.windows, **kwargs)
    config = {"task": "cora-dense", "target": target, "loss": type(loss).__name__,
              "checkpoint": None if checkpoint is None else str(checkpoint), "width": net.width,
              "new_decoder": new_decoder, "foreground_prob": foreground_prob,
              "options": jsonable({f.name: getattr(opts, f.name) for f in fields(opts)}),
              "train_cases": [cases[i].case.patient_id for i in train_idx]}
    task = SampledBatchTask("cora-dense", DenseOutput(net), loss, lambda rng: sampler(rng, opts.batch_size),
                            seed=opts.seed)
    fit = fit_sampled(task, opts.steps, lr=opts.lr, seed=opts.seed, out_dir=checkpoint_dir, config=config,
                      fingerprint=config_fingerprint(jsonable(config)), desc=desc, progress=progress)
    return net, fit


def evaluate_cases(indices: Iterable[int], score: Callable[[int], dict], *, desc: str = "evaluating",
                   progress: bool = True) -> list[dict]:
    """``[score(i) for i in indices]`` with a bar over the test CTs on stderr (``progress``)."""
    indices = list(indices)
    bar = progress_bar(indices, enabled=progress, desc=f"{desc} on {len(indices)} test CTs", unit="CT")
    return [score(int(i)) for i in bar]


def write_json(obj: Any, path: Path) -> Path:
    """Write ``obj`` as indented JSON (:func:`riskfm.recipes.result.jsonable`: NaN as null); returns ``path``.

    Parameters
    ----------
    obj : nested dicts / lists of numbers, strings, bools, None, numpy scalars, paths
    path : Path
        Destination; parent folders are created.

    Returns
    -------
    Path
        ``path``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(jsonable(obj), indent=2))
    return path


def write_outputs(out: Path, metrics: Mapping[str, Any], tables: Mapping[str, pd.DataFrame]) -> dict[str, Path]:
    """Write a recipe's ``metrics.json`` and one ``<name>.csv`` per table into ``out``.

    Parameters
    ----------
    out : Path
        Output folder (created).
    metrics : mapping
        Written by :func:`write_json`.
    tables : mapping name -> DataFrame
        Each written without its index.

    Returns
    -------
    dict of str -> Path
        ``{"metrics": out/metrics.json, name: out/<name>.csv, ...}``.
    """
    out.mkdir(parents=True, exist_ok=True)
    files = {"metrics": write_json(metrics, out / "metrics.json")}
    for name, table in tables.items():
        files[name] = out / f"{name}.csv"
        table.to_csv(files[name], index=False)
    return files
