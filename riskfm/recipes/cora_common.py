"""What CORA's three downstream recipes share: loading cases, splitting, building the network, writing JSON.

The recipes report on stderr what they are doing (a bar over the CTs being read, the fine-tuning
steps with the loss, the test CTs being evaluated); ``riskfm --quiet`` / ``RISKFM_QUIET=1``
(:mod:`riskfm.progress`) silences them, and :func:`evaluate_cases` is the per-test-CT loop.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from riskfm.ct.cases import CTCase, LoadedCase, find_cases, load_case
from riskfm.ct.cora import CoraResUNet, cora_input_spec
from riskfm.progress import progress as progress_bar

__all__ = ["DEFAULT_SPACING", "DenseTaskOptions", "build_network", "evaluate_cases", "load_cases", "split_indices",
           "write_json"]


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
    """Loaded cases from a manifest / folder / case list (already-loaded cases pass through).

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


def split_indices(n: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random (train, test) index split; the test part holds ``round(n * test_fraction)`` cases (>= 1)."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    if n < 2:
        raise ValueError(f"need at least 2 cases to split, got {n}")
    order = np.random.default_rng([seed, 99]).permutation(n)
    n_test = min(n - 1, max(1, int(round(n * test_fraction))))
    return np.sort(order[n_test:]), np.sort(order[:n_test])


def build_network(
    checkpoint: str | Path | None,
    *,
    width: int | None,
    spacing: Sequence[float] | None,
    shape: Sequence[int],
    new_decoder: bool = False,
) -> CoraResUNet:
    """A pretrained CORA network (from ``checkpoint``) or a fresh one of ``width`` (default 8).

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


def evaluate_cases(indices: Iterable[int], score: Callable[[int], dict], *, desc: str = "evaluating",
                   progress: bool = True) -> list[dict]:
    """``[score(i) for i in indices]`` with a bar over the test CTs on stderr (``progress``)."""
    indices = list(indices)
    bar = progress_bar(indices, enabled=progress, desc=f"{desc} on {len(indices)} test CTs", unit="CT")
    return [score(int(i)) for i in bar]


def write_json(obj: Any, path: Path) -> Path:
    def clean(v: Any) -> Any:
        if isinstance(v, dict):
            return {str(k): clean(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [clean(x) for x in v]
        if isinstance(v, np.integer):
            return int(v)
        if isinstance(v, float | np.floating):
            return None if not np.isfinite(v) else float(v)
        return v

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(clean(obj), indent=2))
    return path
