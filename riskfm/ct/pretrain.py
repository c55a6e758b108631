"""Synthesis-driven pretraining of CORA (seed 001): its data, loss and settings; zero-shot abnormality maps.

The training run is :func:`riskfm.train.tasks.cora_pretrain.pretrain_cora` (the engine's
:class:`~riskfm.train.tasks.cora_pretrain.CoraPretrainTask`); this module holds what it trains on.

Pretraining is self-supervised segmentation: the lesion-synthesis engine inserts plaques into
artery-centred patches of unlabelled CTs and the network learns to segment them, with loss
Tversky (alpha 0.1 on false positives, beta 0.9 on false negatives: recall first) + focal
(gamma 4: easy background voxels count little).

Volumes
-------
Each CT is resampled to ``spacing`` (default: CORA's as printed, (5.0, 0.5, 0.5) mm; pass your
own) and its coronary mask (nearest neighbour) with it. Patches centre on coronary voxels. A CT
without a coronary mask falls back to :func:`~riskfm.ct.synthesis.sampling.vessel_candidates`
(thin contrast-bright structures near the heart mask if there is one, else the heart, else the
body); the run's ``volumes.csv`` records which rule each CT used.

Distributed runs
----------------
The engine runs on Fabric: one process on a laptop CPU, or ``torchrun --nproc_per_node N`` /
several nodes (DDP). Sample ``k`` of the run is a pure function of ``(seed, k)``, and the sampler
gives each process a disjoint share of the ``k``; resuming after a crash continues with the next
unseen ``k``. Checkpoints are atomic (``checkpoints/last.ckpt``, every ``checkpoint_every`` steps),
and the final weights go to ``cora_pretrained.pt``, which
``create_encoder("cora-resunet", checkpoint=..., width=...)`` or :func:`load_pretrained` load.

Progress
--------
Rank 0 shows on stderr a bar over the CTs being read (``preload``) and one over the optimizer
steps, with the time left and the current loss; ``riskfm --quiet`` / ``RISKFM_QUIET=1``
(:mod:`riskfm.progress`) or ``show_progress=False`` silence them.
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from riskfm.ct.cases import CTCase, load_case
from riskfm.ct.cora import CoraResUNet, cora_input_spec
from riskfm.ct.preprocess import CORA_SPACING
from riskfm.ct.sliding import predict_volume
from riskfm.ct.synthesis import LesionSynthesisEngine, SynthesisConfig, candidate_voxels, vessel_candidates
from riskfm.ct.volume import CTVolume

log = logging.getLogger(__name__)

__all__ = [
    "CoraLoss",
    "PretrainConfig",
    "PretrainVolume",
    "SynthesisPatchDataset",
    "abnormality_map",
    "load_pretrained",
    "prepare_volume",
]


# ------------------------------------------------------------------------------------- loss
class CoraLoss(nn.Module):
    """Tversky (alpha 0.1, beta 0.9) + focal (gamma 4) on logits, both from MONAI.

    Parameters
    ----------
    alpha, beta : float
        Tversky weights of false positives and false negatives: ``TI = TP / (TP + a FP + b FN)``,
        loss ``1 - TI`` computed over the whole batch (``batch=True``), so lesion-free patches do
        not each contribute a 0/0-like term.
    gamma : float
        Focal exponent (sigmoid focal loss, mean over voxels).

    ``forward(logits, target)`` takes ``[B, 1, Z, Y, X]`` logits and a 0/1 target of that shape.
    """

    def __init__(self, alpha: float = 0.1, beta: float = 0.9, gamma: float = 4.0) -> None:
        super().__init__()
        from monai.losses import FocalLoss, TverskyLoss

        self.tversky = TverskyLoss(sigmoid=True, alpha=alpha, beta=beta, batch=True)
        self.focal = FocalLoss(gamma=gamma, use_softmax=False)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Return the Tversky + focal loss.

        Parameters
        ----------
        logits : Tensor [B, 1, Z, Y, X]
            Raw dense output (the sigmoid is applied inside).
        target : Tensor [B, 1, Z, Y, X]
            0/1 lesion mask.

        Returns
        -------
        Tensor []
            Scalar loss.

        Raises
        ------
        ValueError
            If the two shapes differ.
        """
        if logits.shape != target.shape:
            raise ValueError(f"CoraLoss: logits {tuple(logits.shape)} and target {tuple(target.shape)} differ")
        return self.tversky(logits, target) + self.focal(logits, target)


# ---------------------------------------------------------------------------------- volumes
@dataclass
class PretrainVolume:
    """One CT ready for the engine.

    Attributes
    ----------
    patient_id : str
    hu : np.ndarray
        float32 ``[Z, Y, X]`` HU at ``spacing``.
    spacing : tuple of float
        ``(z, y, x)`` mm.
    candidates : np.ndarray
        int64 flat indices of the voxels patches centre on.
    mask_source : str
        ``"coronary"`` (a coronary mask), or the fallback rule: ``"thin-bright"``, ``"heart"``, ``"body"``.
    """

    patient_id: str
    hu: np.ndarray
    spacing: tuple[float, float, float]
    candidates: np.ndarray
    mask_source: str


def prepare_volume(case: CTCase, spacing: Sequence[float], patch_size: Sequence[int]) -> PretrainVolume:
    """Read and resample one case and find its patch-centre candidates (see the module docstring).

    ``spacing`` is the (z, y, x) target in mm, ``patch_size`` the engine patch (Z, Y, X) in voxels
    (candidates keep a quarter patch from the borders where the mask allows).
    """
    loaded = load_case(case, spacing, kinds=("heart", "coronary"))
    hu = loaded.vol.array
    coronary = loaded.masks.get("coronary")
    margin = [int(p) // 4 for p in patch_size]
    if coronary is not None and coronary.any():
        return PretrainVolume(case.patient_id, hu, loaded.vol.spacing, candidate_voxels(coronary > 0, margin=margin),
                              "coronary")
    mask, source = vessel_candidates(hu, loaded.vol.spacing, loaded.masks.get("heart"))
    return PretrainVolume(case.patient_id, hu, loaded.vol.spacing, candidate_voxels(mask, margin=margin), source)


class SynthesisPatchDataset(Dataset):
    """Map-style dataset of engine patches: item ``k`` is a pure function of ``(seed, offset + k)``.

    Parameters
    ----------
    volumes : sequence of PretrainVolume or CTCase
        Prepared volumes, or cases prepared lazily on first use (kept in an LRU cache of
        ``cache_volumes`` per worker process: archives larger than memory stream through it).
    engine : LesionSynthesisEngine
    length : int
        Number of items.
    seed : int
    offset : int
        Index of item 0 in the run's sample sequence (resume continues where a run stopped).
    spacing : sequence of 3 float
        Resampling target for lazily prepared cases.
    patches_per_volume : int
        Consecutive items share a volume (``k // patches_per_volume`` picks it), so a lazily
        loaded CT serves several patches before the cache evicts it.
    cache_volumes : int

    Items are ``(image [C, Z, Y, X] float32, mask [1, Z, Y, X] float32)`` tensors.
    """

    def __init__(
        self,
        volumes: Sequence[PretrainVolume | CTCase],
        engine: LesionSynthesisEngine,
        length: int,
        seed: int = 0,
        *,
        offset: int = 0,
        spacing: Sequence[float] = CORA_SPACING,
        patches_per_volume: int = 4,
        cache_volumes: int = 8,
    ) -> None:
        if not volumes:
            raise ValueError("SynthesisPatchDataset: no volumes")
        self.volumes = list(volumes)
        self.engine = engine
        self.length = int(length)
        self.seed = int(seed)
        self.offset = int(offset)
        self.spacing = tuple(float(s) for s in spacing)
        self.patches_per_volume = max(1, int(patches_per_volume))
        self.cache_volumes = max(1, int(cache_volumes))
        self._cache: OrderedDict[int, PretrainVolume] = OrderedDict()

    def __len__(self) -> int:
        return self.length

    def volume(self, index: int) -> PretrainVolume:
        """Return volume ``index``, preparing a lazy case on first use (LRU-cached)."""
        item = self.volumes[index]
        if isinstance(item, PretrainVolume):
            return item
        if index in self._cache:
            self._cache.move_to_end(index)
            return self._cache[index]
        vol = prepare_volume(item, self.spacing, self.engine.config.patch_size)
        self._cache[index] = vol
        while len(self._cache) > self.cache_volumes:
            self._cache.popitem(last=False)
        return vol

    def __getitem__(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Return item ``k``: ``(image [C, Z, Y, X] in [0, 1], mask [1, Z, Y, X] 0/1)``, float32."""
        if not 0 <= k < self.length:
            raise IndexError(k)
        k = self.offset + int(k)
        group = k // self.patches_per_volume
        pick = np.random.default_rng([self.seed, 1, group]).integers(len(self.volumes))
        vol = self.volume(int(pick))
        patch = self.engine(vol.hu, vol.spacing, vol.candidates, np.random.default_rng([self.seed, 2, k]))
        return torch.from_numpy(patch.image), torch.from_numpy(patch.mask[None].astype(np.float32))


# ----------------------------------------------------------------------------- settings
@dataclass
class PretrainConfig:
    """Pretraining settings.

    Attributes
    ----------
    width : int
        Network width (32 = Table S1; 8 for CPU runs).
    patch_size : (int, int, int)
        Engine patch size (64^3 = CORA).
    spacing : (float, float, float)
        Resampling target (z, y, x) mm.
    steps, batch_size, lr, weight_decay, warmup_steps
        AdamW with linear warm-up then cosine decay to 0 over ``steps`` optimizer steps;
        ``batch_size`` per process.
    num_workers : int
        DataLoader worker processes per training process (the engine runs in them).
    accelerator, devices, strategy, num_nodes, precision
        Passed to ``lightning_fabric.Fabric``.
    checkpoint_every : int
        Steps between ``checkpoints/last.ckpt`` writes.
    seed : int
    synthesis : SynthesisConfig
        Engine settings; its ``patch_size`` is replaced by ``patch_size``.
    """

    width: int = 32
    patch_size: tuple[int, int, int] = (64, 64, 64)
    spacing: tuple[float, float, float] = CORA_SPACING
    steps: int = 1000
    batch_size: int = 2
    lr: float = 1e-3
    weight_decay: float = 1e-5
    warmup_steps: int = 0
    num_workers: int = 0
    accelerator: str = "cpu"
    devices: int | str = 1
    strategy: str = "auto"
    num_nodes: int = 1
    precision: str = "32-true"
    checkpoint_every: int = 100
    seed: int = 0
    grad_clip: float | None = 12.0
    patches_per_volume: int = 4
    synthesis: SynthesisConfig = field(default_factory=SynthesisConfig)

    def __post_init__(self) -> None:
        self.patch_size = tuple(int(p) for p in self.patch_size)
        self.spacing = tuple(float(s) for s in self.spacing)
        if self.steps < 1 or self.batch_size < 1 or self.width < 1:
            raise ValueError(f"PretrainConfig: steps, batch_size and width must be >= 1 "
                             f"(got {self.steps}, {self.batch_size}, {self.width})")
        if not (self.lr > 0):
            raise ValueError(f"PretrainConfig.lr must be > 0, got {self.lr}")
        if len(self.patch_size) != 3 or min(self.patch_size) < 8:
            raise ValueError(f"PretrainConfig.patch_size must be three sizes >= 8 voxels, got {self.patch_size}")

    def to_dict(self) -> dict[str, Any]:
        """Return the settings as JSON-ready types (tuples as lists), for ``config.json`` and checkpoints."""
        out = asdict(self)
        out["synthesis"] = {k: (list(v) if isinstance(v, tuple) else v) for k, v in out["synthesis"].items()}
        return json.loads(json.dumps(out, default=list))


# -------------------------------------------------------------------------- using the weights
def load_pretrained(checkpoint: str | Path, **kwargs: Any) -> CoraResUNet:
    """Build a :class:`CoraResUNet` with the width and input spec recorded in a ``cora_pretrained.pt``.

    ``kwargs`` override what the checkpoint records (e.g. ``input_spec`` for another grid). Plain
    state dicts (no recorded config) need ``width`` (default 32).
    """
    from riskfm.encoders import create_encoder
    from riskfm.train.checkpoint import load_checkpoint

    payload = load_checkpoint(checkpoint)
    conf = payload.get("config", {}) if isinstance(payload, dict) else {}
    if conf.get("width") is not None and "width" not in kwargs:
        kwargs["width"] = int(conf["width"])
    if "input_spec" not in kwargs and conf.get("spacing") is not None:
        kwargs["input_spec"] = cora_input_spec(conf["spacing"], conf.get("patch_size", (64, 64, 64)))
    return create_encoder("cora-resunet", checkpoint=checkpoint, **kwargs)


def abnormality_map(
    model: CoraResUNet,
    vol: CTVolume,
    *,
    overlap: float = 0.5,
    back_to_input_grid: bool = True,
    sw_batch_size: int = 2,
    progress: bool | str = False,
) -> CTVolume:
    """Return the zero-shot abnormality map of a whole CT from a pretrained (not fine-tuned) CORA.

    The pretrained network is a deliberately over-sensitive plaque detector (CORA Fig. S3):
    its map highlights many candidate regions, real lesions among them. The CT is resampled to
    the model's spacing, windowed, segmented with Gaussian-blended sliding windows of the
    pretraining patch size and, by default, resampled back onto the input grid. ``progress``
    shows a bar over the windows on stderr (a string labels it; see
    :func:`~riskfm.ct.sliding.sliding_window_predict`).

    Returns
    -------
    CTVolume
        float32 probability in [0, 1], ``[Z, Y, X]`` on ``vol``'s grid (on the model's spacing when
        ``back_to_input_grid=False``).
    """
    return predict_volume(model, vol, overlap=overlap, sw_batch_size=sw_batch_size,
                          back_to_input_grid=back_to_input_grid, progress=progress)


def abnormality_map_of_file(
    ct: str | Path,
    checkpoint: str | Path,
    out: str | Path | None = None,
    *,
    overlap: float = 0.5,
    progress: bool | str = "abnormality map",
) -> CTVolume:
    """Compute the zero-shot abnormality map of a CT file with a pretrained CORA checkpoint.

    What ``riskfm ct abnormality`` runs: the checkpoint is loaded first (a bad file fails before
    the CT is read), the CT is read (NIfTI or a DICOM series folder), mapped with
    :func:`abnormality_map` and, when ``out`` is given, written as a float32 NIfTI on the CT's grid.

    Parameters
    ----------
    ct : str or path
        The CT (HU).
    checkpoint : str or path
        A CORA pretraining checkpoint (``cora_pretrained.pt`` of :func:`riskfm.train.tasks.cora_pretrain.pretrain_cora`).
    out : str or path, optional
        Output NIfTI of the probability map.
    overlap : float
        Sliding-window overlap in [0, 1).
    progress : bool or str
        A bar over the windows on stderr (a string labels it).

    Returns
    -------
    CTVolume
        float32 probability in [0, 1], ``[Z, Y, X]`` on the CT's grid.
    """
    from riskfm.ct.io import read_ct, write_nifti
    from riskfm.progress import status

    net = load_pretrained(checkpoint)
    status(f"reading {ct}")
    prob = abnormality_map(net, read_ct(ct), overlap=overlap, progress=progress)
    if out is not None:
        write_nifti(out, prob.array, prob.affine, np.float32)
    return prob
