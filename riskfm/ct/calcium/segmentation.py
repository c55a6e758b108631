"""CAC segmentation: per pixel calcium plus artery (LM, LAD, LCX, RCA), and the per-artery score.

Three networks with one output contract (``[B, 5, ...]`` logits: channel 0 calcium, channels 1-4
the artery LM, LAD, LCX, RCA given calcium), as in the seed-003 pipeline:

* :class:`CalciumUNet2d` -- the slice-wise encoder-decoder (U-Net baseline). Its input is a slice
  and its two neighbours, each in two HU windows (soft tissue, calcium), so 6 channels: the
  neighbours tell an artery running through the slice from a blob of aortic-valve calcium.
* :class:`~riskfm.ct.calcium.cora_seg.CalciumCora3d` (``"cora3d"``) -- CORA's 3D residual U-Net
  with the calcium head; a ``riskfm pretrain-ct`` checkpoint initialises its encoder: the
  "foundation-model fine-tune" of seed 000.
* :class:`CalciumSeg3d` (``"seg3d"``) -- a lighter 3D network on ``cnn3d-small``'s conv blocks, for
  ``cnn3d-small`` checkpoints; a new decoder with skip connections restores full resolution.

Why the losses only look at candidate voxels -- >= 130 HU and, by default, inside the heart region
estimated from the CT: anything darker is not calcium by definition, and bone outside the region
is never scored, so the network's whole job is to sort the bright voxels that matter (coronary
calcium of which artery, versus aortic-wall / valve calcium and rib fragments next to the heart).
That keeps the loss on the hard cases and lets a small model learn from a few dozen synthetic
exams on a CPU.

:func:`riskfm.train.tasks.calcium_segmentation.train_segmenter` trains any of them on exams (HU,
spacing, artery labels) with riskfm's training engine, and
:func:`~riskfm.train.tasks.calcium_segmentation.train_segmenter_on_synthetic` on the protocols'
synthetic exams (this package holds no optimiser and no training loop); the returned
:class:`CalciumSegmenter` predicts label maps (one decision per 3D candidate region) and scores
exams with :func:`riskfm.ct.calcium.score_calcium`. :meth:`CalciumSegmenter.save` writes a
``calcium-segmenter`` checkpoint bundle (:mod:`riskfm.train.bundle`); :func:`load_segmenter`
reads it, and files saved before bundles existed.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from riskfm.ct.calcium.scoring import CalciumScore, score_calcium
from riskfm.ct.preprocess import window_channels
from riskfm.ct.spec import CORA_WINDOWS
from riskfm.encoders import encoder_entries

__all__ = [
    "CalciumSeg3d",
    "CalciumSegmenter",
    "CalciumUNet2d",
    "SegmenterConfig",
    "load_segmenter",
]

#: HU windows (level, width) of the 2D model's input: soft tissue / fat and calcium.
UNET_WINDOWS: tuple[tuple[float, float], ...] = ((50.0, 500.0), (600.0, 1000.0))
CALCIUM_HU = 130.0
#: Network kinds: slice-wise U-Net, 3D net on cnn3d-small blocks, CORA residual U-Net.
MODELS = ("unet2d", "seg3d", "cora3d")
#: Where a network learns to decide (see :class:`SegmenterConfig`).
ROI_MODES = ("estimate", "none")


def _block2d(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.InstanceNorm2d(cout, affine=True), nn.LeakyReLU(0.01),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.InstanceNorm2d(cout, affine=True), nn.LeakyReLU(0.01),
    )


class CalciumUNet2d(nn.Module):
    """Slice-wise U-Net: ``[B, 6, Y, X]`` (3 slices x 2 windows) -> ``[B, 5, Y, X]`` logits.

    Parameters
    ----------
    widths : sequence of int, default (16, 32, 64, 96)
        Channels per level; each level below the first halves the grid (max-pool).
    context : int, default 1
        Neighbouring slices on each side given as extra channels.
    """

    kind = "unet2d"

    def __init__(self, widths: Sequence[int] = (16, 32, 64, 96), context: int = 1) -> None:
        super().__init__()
        self.context = int(context)
        self.in_channels = (2 * self.context + 1) * len(UNET_WINDOWS)
        widths = [int(w) for w in widths]
        self.down = nn.ModuleList()
        cin = self.in_channels
        for w in widths:
            self.down.append(_block2d(cin, w))
            cin = w
        self.up = nn.ModuleList()
        for w_skip in reversed(widths[:-1]):
            self.up.append(_block2d(cin + w_skip, w_skip))
            cin = w_skip
        self.head = nn.Conv2d(cin, 5, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the calcium logits of a batch of slices.

        Parameters
        ----------
        x : Tensor [B, in_channels, Y, X]
            ``in_channels = (2 * context + 1) * 2`` (6 by default): for each slice offset
            ``-context ... +context`` (edge slices repeated), the two :data:`UNET_WINDOWS` (soft
            tissue, calcium), each HU window scaled to [0, 1]. Any ``Y, X`` (pooling rounds up,
            the decoder resizes to each skip).

        Returns
        -------
        Tensor [B, 5, Y, X]
            Unnormalised logits of the centre slice at the input's size: channel 0 calcium,
            channels 1-4 LM / LAD / LCX / RCA given calcium.
        """
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else F.max_pool2d(x, 2, ceil_mode=True))
            skips.append(x)
        x = skips.pop()
        for block in self.up:
            skip = skips.pop()
            x = F.interpolate(x, size=skip.shape[-2:], mode="nearest")
            x = block(torch.cat([x, skip], dim=1))
        return self.head(x)


class CalciumSeg3d(nn.Module):
    """3D segmentation network on a registry CT encoder: ``[B, 4, Z, Y, X]`` -> ``[B, 5, Z, Y, X]``.

    Parameters
    ----------
    encoder_widths : sequence of int, default (16, 32, 64, 96)
        Widths of the ``cnn3d-small`` conv blocks (must match a checkpoint's).
    encoder_checkpoint : str or Path, optional
        Local checkpoint of a ``cnn3d-small`` encoder (bare state dict, or under ``state_dict`` /
        ``model``, optionally nested under a prefix such as ``encoders.ct.``): its conv blocks
        initialise the encoder. Loaded with ``weights_only=True``.
    weights_only : bool, default True
        Passed to ``torch.load``; ``False`` only for trusted legacy pickles.

    Attributes
    ----------
    encoder_init : str
        ``"random"`` or the checkpoint path the encoder started from.
    """

    kind = "seg3d"

    def __init__(self, encoder_widths: Sequence[int] = (16, 32, 64, 96),
                 encoder_checkpoint: str | Path | None = None, *, weights_only: bool = True) -> None:
        super().__init__()
        from riskfm.ct.cnn3d import CNN3d

        self.in_channels = len(CORA_WINDOWS)
        self.encoder = CNN3d(widths=encoder_widths)
        widths = [int(w) for w in encoder_widths]
        self.stem = nn.Sequential(nn.Conv3d(self.in_channels, 8, 3, padding=1), nn.LeakyReLU(0.01))
        self.up = nn.ModuleList()
        cin = widths[-1]
        for w_skip in list(reversed(widths[:-1])) + [8]:
            self.up.append(nn.Sequential(
                nn.Conv3d(cin + w_skip, w_skip, 3, padding=1, bias=False),
                nn.InstanceNorm3d(w_skip, affine=True), nn.LeakyReLU(0.01)))
            cin = w_skip
        self.head = nn.Conv3d(cin, 5, 1)
        self.encoder_init = "random"
        if encoder_checkpoint is not None:
            self.load_encoder(encoder_checkpoint, weights_only=weights_only)

    def load_encoder(self, path: str | Path, *, weights_only: bool = True) -> None:
        """Initialise the encoder's conv blocks from a local ``cnn3d-small`` checkpoint."""
        from riskfm.encoders import CheckpointError

        found = encoder_entries(path, "blocks.0.conv.weight", what="cnn3d-small conv blocks",
                                hint="a cnn3d-small encoder checkpoint", weights_only=weights_only)
        blocks = {k: v for k, v in found.items() if k.startswith("blocks.")}
        own = {k for k in self.encoder.state_dict() if k.startswith("blocks.")}
        missing = sorted(own - set(blocks))
        if missing:
            raise CheckpointError(f"{path}: encoder checkpoint lacks {len(missing)} conv-block entries, "
                                  f"e.g. {missing[:3]} (different widths?)")
        try:
            self.encoder.load_state_dict(blocks, strict=False)
        except RuntimeError as exc:
            raise CheckpointError(f"{path}: encoder weights do not fit (check encoder_widths): {exc}") from exc
        self.encoder_init = str(path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the calcium logits of whole exams or patches.

        Parameters
        ----------
        x : Tensor [B, 4, Z, Y, X]
            The volume in the four :data:`~riskfm.ct.spec.CORA_WINDOWS` HU windows, each scaled to
            [0, 1]. Any ``Z, Y, X``: each encoder block halves the grid (rounded up) and the decoder
            resizes (trilinear) to each skip.

        Returns
        -------
        Tensor [B, 5, Z, Y, X]
            Unnormalised logits at the input's size: channel 0 calcium, channels 1-4 LM / LAD / LCX /
            RCA given calcium.
        """
        skips = [self.stem(x)]
        h = x
        for block in self.encoder.blocks:
            h = block(h)
            skips.append(h)
        h = skips.pop()
        for block in self.up:
            skip = skips.pop()
            h = F.interpolate(h, size=skip.shape[-3:], mode="trilinear", align_corners=False)
            h = block(torch.cat([h, skip], dim=1))
        return self.head(h)


# ------------------------------------------------------------------------------- input building
def _slices_input(hu: np.ndarray, context: int) -> np.ndarray:
    """``[Z, C, Y, X]`` float32: each slice with ``context`` neighbours per side, two windows each."""
    win = window_channels(hu, UNET_WINDOWS)  # [2, Z, Y, X]
    Z = hu.shape[0]
    chans = []
    for off in range(-context, context + 1):
        idx = np.clip(np.arange(Z) + off, 0, Z - 1)  # edge slices repeat: no fake air above the scan
        chans.append(win[:, idx])
    return np.ascontiguousarray(np.concatenate(chans, axis=0).transpose(1, 0, 2, 3))


def _volume_input(hu: np.ndarray) -> np.ndarray:
    return window_channels(hu, CORA_WINDOWS)  # [4, Z, Y, X]


def _estimated_roi(hu: np.ndarray, spacing: Sequence[float]) -> np.ndarray:
    from riskfm.ct.calcium.roi import estimate_heart_roi

    return estimate_heart_roi(hu, spacing)


def _targets(hu: np.ndarray, labels: np.ndarray, roi: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(candidate mask, target label 0-4) with candidates = voxels >= 130 HU (inside ``roi`` if given)."""
    cand = hu >= CALCIUM_HU
    if roi is not None:
        cand &= roi
    return cand, labels.astype(np.int64)


def _loss(logits: torch.Tensor, cand: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    calc_logit = logits[:, 0]
    artery_logits = logits[:, 1:]
    is_calc = (target > 0).float()
    bce = F.binary_cross_entropy_with_logits(calc_logit, is_calc, reduction="none")
    n_cand = cand.sum().clamp(min=1)
    loss = (bce * cand).sum() / n_cand
    pos = (target > 0) & cand
    if pos.any():
        ce = F.cross_entropy(artery_logits.movedim(1, -1)[pos], target[pos] - 1)
        loss = loss + ce
    return loss


def _lesion_decisions(cand: np.ndarray, p_calc: np.ndarray, p_artery: np.ndarray) -> np.ndarray:
    """Label map deciding each 3D candidate region (face-connected voxels >= 130 HU) as a whole.

    ``cand`` bool [Z, Y, X]; ``p_calc`` [Z, Y, X] calcium probability; ``p_artery`` [4, Z, Y, X]
    artery probabilities given calcium. Returns uint8 [Z, Y, X] labels 0-4.
    """
    from scipy import ndimage

    regions, n = ndimage.label(cand)
    if n == 0:
        return np.zeros(cand.shape, dtype=np.uint8)
    idx = regions.ravel()
    size = np.bincount(idx, minlength=n + 1).astype(np.float64)
    mean_calc = np.bincount(idx, weights=p_calc.ravel(), minlength=n + 1) / np.maximum(size, 1)
    # Artery evidence of a region: its voxels' artery probabilities weighted by how sure each is calcium.
    votes = np.stack([np.bincount(idx, weights=(p_artery[a] * p_calc).ravel(), minlength=n + 1)
                      for a in range(p_artery.shape[0])], axis=1)
    region_label = np.where(mean_calc > 0.5, votes.argmax(axis=1) + 1, 0).astype(np.uint8)
    region_label[0] = 0  # background
    return region_label[regions]


def _patch_box(target: tuple[np.ndarray, np.ndarray], patch: Sequence[int],
               rng: np.random.Generator) -> tuple[slice, slice, slice]:
    """Return the (z, y, x) slices of a training crop around a candidate voxel.

    The crop has size ``patch`` (voxels, clipped to the exam). Half the crops centre on coronary
    calcium (when the exam has any), half on any candidate voxel: coronary calcium is a tiny share
    of the bright voxels.
    """
    cand, labels = target
    shape = cand.shape
    size = [min(int(p), n) for p, n in zip(patch, shape)]
    pool = np.flatnonzero(labels.ravel() > 0) if rng.random() < 0.5 else np.array([], dtype=np.int64)
    if pool.size == 0:
        pool = np.flatnonzero(cand.ravel())
    if pool.size:
        centre = np.unravel_index(int(pool[rng.integers(pool.size)]), shape)
    else:
        centre = tuple(int(rng.integers(n)) for n in shape)
    starts = [int(np.clip(c - s // 2, 0, n - s)) for c, s, n in zip(centre, size, shape)]
    return tuple(slice(a, a + s) for a, s in zip(starts, size))


# --------------------------------------------------------------------------------- the segmenter
@dataclass
class SegmenterConfig:
    """How a :class:`CalciumSegmenter` was built and trained (saved with its weights).

    Attributes
    ----------
    model : {"unet2d", "seg3d"}
    widths : tuple of int
    context : int
        Neighbouring slices per side (2D model).
    spacing : (float, float, float) or None
        Mean (z, y, x) spacing of the training exams in mm (a warning is given far from it).
    encoder_init : str
        ``"random"`` or the encoder checkpoint used (3D model).
    roi : {"estimate", "none"}
        Where the network learned to decide: ``"estimate"`` -- candidates inside
        :func:`riskfm.ct.calcium.roi.estimate_heart_roi` (predictions default to that region too);
        ``"none"`` -- every voxel >= 130 HU of the scan (models saved before this option).
    history : list of float
        Mean training loss per epoch.
    """

    model: str = "unet2d"
    widths: tuple[int, ...] = (16, 32, 64, 96)
    context: int = 1
    spacing: tuple[float, float, float] | None = None
    encoder_init: str = "random"
    roi: str = "none"
    history: list[float] = field(default_factory=list)


class CalciumSegmenter:
    """A trained calcium segmentation network with its input conventions.

    Use :func:`riskfm.train.tasks.calcium_segmentation.train_segmenter` or :func:`load_segmenter`
    to get one.
    """

    def __init__(self, net: nn.Module, config: SegmenterConfig) -> None:
        self.net = net.eval()
        self.config = config

    @torch.no_grad()
    def predict(self, hu: Any, spacing: Sequence[float] | None = None, *, roi: Any | None = None,
                batch_size: int = 16, decision: str = "lesion", progress: bool | str = False) -> np.ndarray:
        """Artery calcium label map of one exam.

        Parameters
        ----------
        hu : array-like [Z, Y, X]
            Non-contrast CT in HU.
        spacing : (z, y, x) mm, optional
            Checked against the training spacing (warning beyond 30% difference in-plane).
        roi : array-like of bool [Z, Y, X], optional
            Predictions outside it are dropped (pass the heart mask when you have one). By default
            a model trained with ``roi="estimate"`` uses
            :func:`~riskfm.ct.calcium.roi.estimate_heart_roi` of the exam: the region it learned
            to decide in (it never saw ribs and spine outside it).
        batch_size : int
            Slices per forward pass (2D model).
        decision : {"lesion", "pixel"}
            ``"lesion"`` (default): every 3D connected region of voxels >= 130 HU is kept or dropped
            whole, by its mean calcium probability (> 0.5), and takes the artery with the largest
            summed probability over its voxels. A lesion's Agatston weight comes from its peak HU
            and its area, so a decision per voxel that trims a lesion's bright core or rim changes
            the score; deciding per lesion does not. ``"pixel"``: each voxel on its own.
        progress : bool or str, default False
            A bar over the slice batches (2D model) on stderr (:mod:`riskfm.progress`); a string
            names it.

        Returns
        -------
        np.ndarray
            uint8 ``[Z, Y, X]``: 0 none, 1 LM, 2 LAD, 3 LCX, 4 RCA on voxels >= 130 HU judged
            coronary calcium.
        """
        arr = np.asarray(hu, dtype=np.float32)
        if arr.ndim != 3:
            raise ValueError(f"hu must be [Z, Y, X], got shape {arr.shape}")
        if spacing is not None and self.config.spacing is not None:
            trained = np.asarray(self.config.spacing[1:])
            ratio = np.asarray(spacing, dtype=float)[1:] / trained
            if np.any(np.abs(ratio - 1) > 0.3):
                warnings.warn(f"in-plane spacing {tuple(spacing)[1:]} mm is far from the training spacing "
                              f"{tuple(trained)} mm; resample the exam (riskfm.ct.preprocess.resample_to_spacing) "
                              "for reliable predictions", stacklevel=2)
        device = next(self.net.parameters()).device
        if self.config.model == "unet2d":
            x = _slices_input(arr, self.config.context)
            outs = []
            starts = range(0, x.shape[0], batch_size)
            if progress:
                from riskfm.progress import progress as bar

                starts = bar(starts, desc=progress if isinstance(progress, str) else "segmenting calcium",
                             unit="batch")
            for s in starts:
                outs.append(self.net(torch.from_numpy(x[s:s + batch_size]).to(device)).cpu())
            logits = torch.cat(outs).movedim(0, 1)  # [5, Z, Y, X]
        else:
            logits = self.net(torch.from_numpy(_volume_input(arr))[None].to(device))[0].cpu()
        cand = arr >= CALCIUM_HU
        if roi is None and self.config.roi == "estimate":
            roi = _estimated_roi(arr, spacing if spacing is not None else self.config.spacing)
        if roi is not None:
            roi = np.asarray(roi, dtype=bool)
            if roi.shape != arr.shape:
                raise ValueError(f"roi has shape {roi.shape}, the exam {arr.shape}")
            cand &= roi
        p_calc = torch.sigmoid(logits[0]).numpy()
        p_artery = torch.softmax(logits[1:], dim=0).numpy()
        if decision == "pixel":
            artery = (p_artery.argmax(0) + 1).astype(np.uint8)
            return np.where(cand & (p_calc > 0.5), artery, 0).astype(np.uint8)
        if decision != "lesion":
            raise ValueError(f"decision must be 'lesion' or 'pixel', got {decision!r}")
        return _lesion_decisions(cand, p_calc, p_artery)

    def score(self, hu: Any, spacing: Sequence[float], *, roi: Any | None = None, **kwargs: Any) -> CalciumScore:
        """Per-artery calcium score of the predicted label map (``score_calcium`` keyword args pass on)."""
        labels = self.predict(hu, spacing, roi=roi)
        return score_calcium(hu, spacing, labels=labels, **kwargs)

    def save(self, path: str | Path) -> Path:
        """Write weights and config as a ``calcium-segmenter`` bundle (atomically; ``weights_only``-loadable)."""
        from riskfm.train.bundle import save_bundle

        cfg = asdict(self.config)
        cfg["widths"] = list(cfg["widths"])
        cfg["spacing"] = None if cfg["spacing"] is None else list(cfg["spacing"])
        return save_bundle(path, kind="calcium-segmenter", model=self.net.state_dict(), config=cfg)


def _build(config: SegmenterConfig, encoder_checkpoint: str | Path | None = None) -> nn.Module:
    if config.model == "unet2d":
        return CalciumUNet2d(config.widths, context=config.context)
    if config.model == "seg3d":
        return CalciumSeg3d(config.widths, encoder_checkpoint)
    if config.model == "cora3d":
        from riskfm.ct.calcium.cora_seg import CalciumCora3d

        return CalciumCora3d(config.widths[0], encoder_checkpoint)
    raise ValueError(f"model must be one of {MODELS}, got {config.model!r}")


def load_segmenter(path: str | Path, *, weights_only: bool = True) -> CalciumSegmenter:
    """Load a segmenter written by :meth:`CalciumSegmenter.save` (local file only).

    Reads ``calcium-segmenter`` bundles and the single-file layout riskfm wrote before bundles
    (``{"state_dict", "riskfm_calcium_config"}``, upgraded on reading by
    :func:`riskfm.train.bundle.load_bundle`).

    Raises
    ------
    FileNotFoundError
        No such file.
    riskfm.train.bundle.BundleKindError
        The file is a riskfm checkpoint of another kind (a risk model, CORA weights, ...).
    CheckpointError
        Unreadable, or the weights do not fit the network its config names.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"calcium model not found: {path}")
    from riskfm.errors import CheckpointError
    from riskfm.train.bundle import load_bundle

    bundle = load_bundle(path, "calcium-segmenter", weights_only=weights_only)
    cfg = dict(bundle["config"])
    fields = set(SegmenterConfig.__dataclass_fields__)
    if "model" not in cfg or set(cfg) - fields:
        raise CheckpointError(f"{path}: calcium segmenter config has no 'model' or unknown entries "
                              f"{sorted(set(cfg) - fields)} (expected {sorted(fields)})")
    cfg["widths"] = tuple(cfg["widths"])
    cfg["spacing"] = None if cfg.get("spacing") is None else tuple(cfg["spacing"])
    config = SegmenterConfig(**cfg)
    net = _build(config)
    try:
        net.load_state_dict(bundle["model"])
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not fit the {config.model} model they name: {exc}") from exc
    return CalciumSegmenter(net, config)
