"""Fine-tuning CORA for its downstream tasks: models and batch samplers (trained by riskfm.train's engine).

* :class:`PlaqueClassifier` - pretrained encoder + pooling of the bottleneck (average, max or both,
  :func:`pool_features`) + linear head (multi-label: calcified, non-calcified plaque present), on
  whole volumes;
* :class:`DensePatchSampler` - random training patches of (windowed CT, target mask) with a
  share of patches centred on target voxels (lesions are sparse);
* training: :class:`riskfm.train.tasks.sampled.SampledBatchTask` on the engine
  (:func:`riskfm.train.tasks.sampled.fit_sampled`);
* :func:`predict_dense` - whole-volume probability by Gaussian-blended sliding windows;
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from riskfm.ct.cases import LoadedCase
from riskfm.ct.cora import CoraResUNet
from riskfm.ct.preprocess import crop_or_pad, window_channels
from riskfm.ct.sliding import sliding_window_predict
from riskfm.progress import progress as progress_bar

__all__ = ["HEAD_INITS", "POOLS", "SCALES", "DensePatchSampler", "PlaqueClassifier",
           "plaque_targets", "pool_features", "predict_dense", "volume_input"]

PLAQUE_TARGETS: tuple[str, ...] = ("plaque_calcified", "plaque_noncalcified")


POOLS: tuple[str, ...] = ("avg", "max", "avgmax")
#: Which encoder maps feed the plaque head: the bottleneck only (CORA) or all four stages.
SCALES: tuple[str, ...] = ("bottleneck", "all")
#: How the plaque head starts: fitted as a linear probe on the frozen encoder (LP-FT), or random.
HEAD_INITS: tuple[str, ...] = ("probe", "random")


def pool_features(fmap: torch.Tensor, pool: str) -> torch.Tensor:
    """Pool a feature map ``[B, C, *spatial]`` over its spatial axes.

    Parameters
    ----------
    fmap : torch.Tensor, shape [B, C, ...]
        Feature map (e.g. the CORA bottleneck ``[B, 8 * width, Z/8, Y/8, X/8]``).
    pool : {"avg", "max", "avgmax"}
        ``"avg"``: global average (CORA's head); ``"max"``: global max; ``"avgmax"``: both,
        concatenated along channels (average first).

    Returns
    -------
    torch.Tensor
        ``[B, C]`` for ``"avg"`` / ``"max"``, ``[B, 2 C]`` for ``"avgmax"``.
    """
    if pool not in POOLS:
        raise ValueError(f"pool must be one of {POOLS}, got {pool!r}")
    if fmap.ndim < 3:
        raise ValueError(f"pool_features expects a map [B, C, *spatial], got shape {tuple(fmap.shape)}")
    flat = fmap.flatten(2)
    if pool == "avg":
        return flat.mean(dim=2)
    if pool == "max":
        return flat.amax(dim=2)
    return torch.cat([flat.mean(dim=2), flat.amax(dim=2)], dim=1)


class PlaqueClassifier(nn.Module):
    """CORA encoder (pooled bottleneck) + linear head: logits ``[B, n_labels]`` (calcified, non-calcified).

    Parameters
    ----------
    encoder : CoraResUNet
        Pretrained or fresh network; only its encoder stages run (:meth:`CoraResUNet.forward_features`).
    n_labels : int, default 2
    pool : {"avg", "max", "avgmax"}, default "avg"
        How each pooled map (the bottleneck ``[B, 8 * width, Z/8, Y/8, X/8]``, or every stage
        with ``scales="all"``) becomes one vector per volume (see :func:`pool_features`).
        ``"avg"`` is CORA's global average pooling, designed for 96^3 artery-centric patches in
        which a plaque fills a sizeable share of the patch. On a whole heart volume a plaque
        covers a few of the bottleneck's positions and averaging dilutes it;
        ``"max"`` keeps the strongest local response (the pretraining task is local lesion
        detection) and ``"avgmax"`` keeps both. The class defaults to the paper's head (``"avg"``,
        ``"bottleneck"``); :func:`~riskfm.recipes.cora_plaque.run_plaque_characterisation`
        defaults to ``"max"`` and ``"all"``, measured better on whole volumes (docs/ct.md, section 6).
    scales : {"bottleneck", "all"}, default "bottleneck"
        ``"bottleneck"``: pool the last stage only (CORA's head). ``"all"``: pool each of the four
        encoder stages (:meth:`CoraResUNet.stage_outputs`) and concatenate, full resolution first
        (a multi-scale "hypercolumn" read-out). A plaque of a few voxels is sharpest in the
        full-resolution stages, and a pretrained encoder's early stages are the ones its decoder
        used to outline synthetic lesions through the skip connections; three stride-2 stages
        blur both into the bottleneck (docs/ct.md, section 6, measures the difference).

    Attributes
    ----------
    pool, scales : str
    feature_dim : int
        Length of the pooled vector: ``encoder.feature_dim`` (``"bottleneck"``) or
        ``sum(encoder.channels)`` = ``15 * width`` (``"all"``), doubled for ``"avgmax"``.

    Notes
    -----
    The pooled features pass a parameter-free ``BatchNorm1d`` before the linear layer (as in MAE's
    linear probing). At inference it is a fixed affine map, so the head is still linear; it is there
    because InstanceNorm inside the network leaves the global average of every channel nearly the
    same for all volumes: the differences that carry plaque information are ~1% of the feature
    scale, and unscaled they would take a linear layer thousands of steps to pick up.
    :meth:`init_head_from_probe` fixes that standardisation to the training set's statistics
    (``norm_fixed``): from then on training batches are standardised like test volumes, not by
    the mean and variance of four volumes. ``norm_fixed`` is a plain attribute, not part of the
    state dict: set it again after loading a state dict to resume fine-tuning that way.
    """

    def __init__(self, encoder: CoraResUNet, n_labels: int = 2, pool: str = "avg", scales: str = "bottleneck") -> None:
        super().__init__()
        if pool not in POOLS:
            raise ValueError(f"PlaqueClassifier: pool must be one of {POOLS}, got {pool!r}")
        if scales not in SCALES:
            raise ValueError(f"PlaqueClassifier: scales must be one of {SCALES}, got {scales!r}")
        self.encoder = encoder
        self.pool = pool
        self.scales = scales
        channels = encoder.feature_dim if scales == "bottleneck" else sum(encoder.channels)
        self.feature_dim = channels * (2 if pool == "avgmax" else 1)
        self.norm = nn.BatchNorm1d(self.feature_dim, affine=False)
        self.head = nn.Linear(self.feature_dim, n_labels)
        self.norm_fixed = False

    def train(self, mode: bool = True) -> PlaqueClassifier:
        """Set training mode; once :attr:`norm_fixed`, the feature standardisation stays in eval mode."""
        super().train(mode)
        if self.norm_fixed:  # standardise with the stored statistics in training too
            self.norm.eval()
        return self

    @torch.no_grad()
    def init_head_from_probe(self, x: torch.Tensor, y: np.ndarray, *, c: float = 1.0, batch_size: int = 8,
                             progress: bool = True) -> None:
        """Start the head as a linear probe of the frozen encoder (the "LP" of LP-FT).

        Computes the pooled features of the training volumes ``x [N, C, Z, Y, X]`` (encoder in eval
        mode, unchanged), fixes the standardisation to their mean and variance, and fits one
        L2-regularised logistic regression per label (scikit-learn, ``C = c``, classes weighted
        to balance, as the recipe's ``pos_weight`` does) whose coefficients become the head.
        Fine-tuning then starts from a head that already reads the encoder's features: a random
        head's large early gradients would otherwise rewrite pretrained features before the head
        has learned to use them (Kumar et al., ICLR 2022).

        Parameters
        ----------
        x : torch.Tensor, shape [N, C, Z, Y, X]
            Windowed training volumes.
        y : np.ndarray, shape [N, n_labels]
            0/1 targets. A label with one class in ``y`` gets zero weights and the bias of its
            prevalence.
        progress : bool
            A bar over the volumes being encoded, on stderr.
        """
        from sklearn.linear_model import LogisticRegression

        y = np.asarray(y, dtype=float)
        if y.shape != (len(x), self.head.out_features):
            raise ValueError(f"init_head_from_probe: targets of shape {y.shape} for {len(x)} volumes and "
                             f"{self.head.out_features} labels")
        was = self.training
        self.eval()
        parts = []
        with progress_bar(total=len(x), enabled=progress, desc=f"linear probe on {len(x)} training CTs", unit="CT") as bar:
            for i in range(0, len(x), batch_size):
                parts.append(self.features(x[i:i + batch_size]))
                bar.update(len(parts[-1]))
        feats = torch.cat(parts).double()
        mean, var = feats.mean(dim=0), feats.var(dim=0, unbiased=False)
        self.norm.running_mean.copy_(mean)
        self.norm.running_var.copy_(var)
        self.norm_fixed = True
        z = ((feats - mean) / torch.sqrt(var + self.norm.eps)).numpy()
        for j in range(y.shape[1]):
            if len(np.unique(y[:, j])) < 2:
                prevalence = float(np.clip(y[:, j].mean(), 0.01, 0.99))
                self.head.weight[j] = 0.0
                self.head.bias[j] = float(np.log(prevalence / (1 - prevalence)))
                continue
            clf = LogisticRegression(C=c, class_weight="balanced", max_iter=5000).fit(z, y[:, j])
            self.head.weight[j] = torch.from_numpy(clf.coef_[0]).to(self.head.weight.dtype)
            self.head.bias[j] = float(clf.intercept_[0])
        self.train(was)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Return the pooled encoder features ``[B, feature_dim]`` of windowed volumes ``[B, C, Z, Y, X]``."""
        if self.scales == "bottleneck":
            return pool_features(self.encoder.forward_features(x), self.pool)
        return torch.cat([pool_features(f, self.pool) for f in self.encoder.stage_outputs(x)], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Classify plaque in whole volumes.

        Parameters
        ----------
        x : Tensor [B, C, Z, Y, X]
            Windowed volumes (one channel per HU window, each in [0, 1]).

        Returns
        -------
        Tensor [B, n_labels]
            Logits (calcified, non-calcified plaque present).
        """
        return self.head(self.norm(self.features(x)))


def plaque_targets(case: LoadedCase) -> np.ndarray:
    """Return ``[2]`` float32 0/1: calcified / non-calcified plaque present.

    Manifest columns ``plaque_calcified`` / ``plaque_noncalcified`` win; otherwise the plaque
    mask (1 calcified, 2 non-calcified) decides.

    Raises
    ------
    ValueError
        If the case has neither the manifest columns nor a plaque mask.
    """
    meta = case.case.meta
    if all(k in meta and meta[k] == meta[k] for k in PLAQUE_TARGETS):
        return np.array([float(meta[k]) for k in PLAQUE_TARGETS], dtype=np.float32)
    if "plaque" not in case.masks:
        raise ValueError(f"{case.case.ct_path}: no plaque labels (manifest columns {PLAQUE_TARGETS} or a "
                         "_plaque mask) for plaque characterisation")
    mask = case.masks["plaque"]
    return np.array([(mask == 1).any(), (mask == 2).any()], dtype=np.float32)


def volume_input(case: LoadedCase, shape: Sequence[int], windows: Sequence[tuple[float, float]]) -> np.ndarray:
    """Return the whole volume (centre crop / pad with air to ``shape``) as windowed float32 ``[C, *shape]``.

    ``shape`` is (Z, Y, X) in voxels of the case's grid; ``windows`` are (level, width) in HU, one
    channel each, scaled to [0, 1].
    """
    return window_channels(crop_or_pad(case.vol.array, shape), windows)


class DensePatchSampler:
    """Random ``(image [B, C, *patch], target [B, 1, *patch])`` batches for dense fine-tuning.

    Parameters
    ----------
    cases : sequence of LoadedCase
        Cases on the working grid holding ``masks[target]``.
    target : str
        Mask kind to learn (``"coronary"``, ``"stenosis"``, ``"plaque"``); nonzero = 1.
    patch : sequence of 3 int
        Patch size (each a multiple of 8 for CORA).
    windows : sequence of (level, width)
    foreground_prob : float
        Share of patches centred on a random target voxel (the rest: uniform centres).
    """

    def __init__(self, cases: Sequence[LoadedCase], target: str, patch: Sequence[int],
                 windows: Sequence[tuple[float, float]], foreground_prob: float = 0.67) -> None:
        if not cases:
            raise ValueError("DensePatchSampler: no training cases")
        missing = [c.case.patient_id for c in cases if target not in c.masks]
        if missing:
            raise ValueError(f"DensePatchSampler: cases without a {target!r} mask: {missing[:5]}")
        self.patch = tuple(int(p) for p in patch)
        self.foreground_prob = float(foreground_prob)
        self.images = [window_channels(c.vol.array, windows) for c in cases]
        self.targets = [(c.masks[target] > 0).astype(np.float32) for c in cases]
        self.foreground = [np.argwhere(t > 0) for t in self.targets]

    def __call__(self, rng: np.random.Generator, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw one batch of patches.

        Parameters
        ----------
        rng : numpy.random.Generator
            Source of the case, centre and foreground draws.
        batch_size : int
            Number of patches ``B``.

        Returns
        -------
        image : Tensor [B, C, *patch], float32
            Windowed CT, each channel in [0, 1] (0 where padded).
        target : Tensor [B, 1, *patch], float32
            0/1 target mask.
        """
        xs, ys = [], []
        for _ in range(batch_size):
            i = int(rng.integers(len(self.images)))
            fg = self.foreground[i]
            if len(fg) and rng.random() < self.foreground_prob:
                centre = fg[int(rng.integers(len(fg)))]
            else:
                centre = np.array([rng.integers(n) for n in self.targets[i].shape])
            # Windowed channels pad with 0 (every window's floor, i.e. air), targets with 0.
            xs.append(crop_or_pad(self.images[i], self.patch, fill=0.0, center=centre))
            ys.append(crop_or_pad(self.targets[i], self.patch, fill=0.0, center=centre)[None])
        return torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys))


class DenseOutput(nn.Module):
    """A module whose ``forward`` is ``net.dense_logits`` (so Fabric wraps the call used in training)."""

    def __init__(self, net: CoraResUNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return dense logits ``[B, out_channels, Z, Y, X]`` of windowed volumes ``[B, C, Z, Y, X]``."""
        return self.net.dense_logits(x)


@torch.no_grad()
def predict_dense(net: CoraResUNet, case: LoadedCase, roi: Sequence[int],
                  windows: Sequence[tuple[float, float]], overlap: float = 0.5,
                  progress: bool | str = False) -> np.ndarray:
    """Return the float32 probability ``[Z, Y, X]`` over a whole case (sliding windows, Gaussian blending).

    Parameters
    ----------
    net : CoraResUNet
        Network whose first output channel is returned.
    case : LoadedCase
        The case; its HU volume ``[Z, Y, X]`` is windowed with ``windows``.
    roi : sequence of 3 int
        Window size (Z, Y, X) in voxels.
    windows : sequence of (level, width)
        HU windows, one input channel each.
    overlap : float
        Fraction of overlap between neighbouring windows.
    progress : bool or str
        A bar over the windows (a string names it), as in :func:`sliding_window_predict`.
    """
    was = net.training
    net.eval()
    try:
        prob = sliding_window_predict(window_channels(case.vol.array, windows), net.forward_dense, roi,
                                      overlap=overlap, progress=progress)
    finally:
        net.train(was)
    return prob[0, 0].numpy()
