"""Fusion of per-modality features: projection, learned missing-modality embeddings, modality dropout."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class PresentBatchNorm(nn.Module):
    """Batch normalisation of ``[B, D]`` features over the patients who *have* the modality.

    ``nn.BatchNorm1d`` would pool the placeholder features of patients without the modality into
    the batch statistics (and fails on a batch of one); here only present rows count, and a batch
    with fewer than two present rows is normalised with the running statistics instead.
    """

    def __init__(self, dim: int, momentum: float = 0.1, eps: float = 1e-5) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))
        self.register_buffer("running_mean", torch.zeros(dim))
        self.register_buffer("running_var", torch.ones(dim))
        self.momentum, self.eps = momentum, eps

    def forward(self, x: torch.Tensor, present: torch.Tensor | None = None) -> torch.Tensor:
        """Normalise features with the statistics of the present rows.

        Parameters
        ----------
        x : Tensor [B, D]
            Features of one modality (placeholder rows where it is absent).
        present : Tensor [B] bool, optional
            Which rows have the modality; all rows when None.

        Returns
        -------
        Tensor [B, D]
            Normalised features (absent rows are transformed too, but never enter the statistics).
        """
        rows = x if present is None else x[present.bool()]
        if self.training and rows.shape[0] >= 2:
            mean, var = rows.mean(0), rows.var(0, unbiased=False)
            with torch.no_grad():
                n = rows.shape[0]
                self.running_mean.lerp_(mean.detach().to(self.running_mean.dtype), self.momentum)
                self.running_var.lerp_((var.detach() * n / (n - 1)).to(self.running_var.dtype), self.momentum)
        else:
            mean, var = self.running_mean.to(x.dtype), self.running_var.to(x.dtype)
        return (x - mean) * torch.rsqrt(var + self.eps) * self.weight + self.bias


class _PatientLayerNorm(nn.LayerNorm):
    """LayerNorm with the fusion norms' ``(x, present)`` signature: each row on its own."""

    def forward(self, x: torch.Tensor, present: torch.Tensor | None = None) -> torch.Tensor:
        """Layer-normalise each row of ``x`` ``[B, D]``; ``present`` is ignored."""
        return super().forward(x)


class _NoNorm(nn.Identity):
    """No normalisation, with the fusion norms' ``(x, present)`` signature."""

    def forward(self, x: torch.Tensor, present: torch.Tensor | None = None) -> torch.Tensor:
        """Return ``x`` ``[B, D]`` unchanged."""
        return x


def _norm_layer(norm: str, dim: int) -> nn.Module:
    """Return a norm taking ``(features [B, D], present [B])``; same state-dict keys as the torch layers."""
    if norm == "batch":
        return PresentBatchNorm(dim)
    if norm == "layer":
        return _PatientLayerNorm(dim)
    return _NoNorm()


class ConcatFusion(nn.Module):
    """Project each modality's features to ``proj_dim``, substitute absent ones, concatenate.

    A patient without a CT (or whose CT is dropped by modality dropout during training) gets a
    learned "CT missing" embedding instead of zeros, so the model can tell "absent" from "normal".
    Modality dropout (Neverova et al.'s ModDrop) teaches the heads not to rely on any one
    modality, which is what makes predictions usable when a modality is missing at test time.

    Parameters
    ----------
    input_dims : modality -> encoder feature dimension.
    proj_dim : width of each modality's projection.
    modality_dropout : probability, per sample and modality during training, of replacing a present
        modality by its missing embedding (at least one present modality is always kept).
    dropout : dropout after projection.
    norm : how each modality's features are normalised before projection. ``"batch"`` (default)
        standardises every feature over patients (running statistics at inference), which puts
        encoders of very different scales on one footing and keeps each patient's distance from the
        cohort. ``"layer"`` normalises each patient's vector on its own: it also removes that
        vector's overall magnitude, which for an encoder whose features grow with disease (ST
        deviation, plaque volume) throws away the severity itself -- in an ECG-only study on the demo
        cohort it cost 0.008 AUROC per artery. ``"none"`` leaves features as they are.
    passthrough : modalities whose (normalised) features enter the concatenation as they are, without
        the projection: CORA's MACE model concatenates the globally pooled image features directly
        and projects only the language model's embedding. Such a modality contributes its encoder's
        ``feature_dim`` to ``out_dim`` and its missing embedding has that size.
    """

    NORMS = ("batch", "layer", "none")

    def __init__(self, input_dims: dict[str, int], proj_dim: int = 128, modality_dropout: float = 0.1,
                 dropout: float = 0.1, norm: str = "batch", passthrough: Sequence[str] = ()) -> None:
        super().__init__()
        if not input_dims:
            raise ValueError("ConcatFusion needs at least one modality")
        if not 0.0 <= modality_dropout < 1.0:
            raise ValueError(f"modality_dropout must be in [0, 1), got {modality_dropout}")
        if norm not in self.NORMS:
            raise ValueError(f"ConcatFusion: norm must be one of {self.NORMS}, got {norm!r}")
        unknown = sorted(set(passthrough) - set(input_dims))
        if unknown:
            raise ValueError(f"ConcatFusion: passthrough modalities {unknown} have no encoder "
                             f"(modalities: {list(input_dims)})")
        self.modalities = list(input_dims)
        self.passthrough = [m for m in self.modalities if m in set(passthrough)]
        self.norm = norm
        self.norms = nn.ModuleDict({m: _norm_layer(norm, d) for m, d in input_dims.items()})
        self.proj = nn.ModuleDict({
            m: nn.Identity() if m in self.passthrough else
            nn.Sequential(nn.Linear(d, proj_dim), nn.GELU(), nn.Dropout(dropout)) for m, d in input_dims.items()
        })
        widths = {m: d if m in self.passthrough else proj_dim for m, d in input_dims.items()}
        self.missing = nn.ParameterDict({m: nn.Parameter(torch.zeros(w)) for m, w in widths.items()})
        for p in self.missing.values():
            nn.init.normal_(p, std=0.02)
        self.modality_dropout = modality_dropout
        self.out_dim = sum(widths.values())

    def forward(self, features: dict[str, torch.Tensor], present: dict[str, torch.Tensor]) -> torch.Tensor:
        """Fuse per-modality features into one vector per patient.

        Parameters
        ----------
        features : dict of str to Tensor [B, D_m]
            Encoder features per modality (any values where the modality is absent).
        present : dict of str to Tensor [B] bool
            Whether each patient has the modality.

        Returns
        -------
        Tensor [B, out_dim]
            Concatenated projections, ``proj_dim`` per modality (its ``D_m`` for a passthrough
            modality) in :attr:`modalities` order; absent
            (or dropped) modalities hold their learned missing embedding.
        """
        keep = {m: present[m].bool() for m in self.modalities}
        if self.training and self.modality_dropout > 0 and len(self.modalities) > 1:
            keep = self._drop(keep)
        parts = []
        for m in self.modalities:
            x = self.norms[m](features[m], present[m])
            z = self.proj[m](x)
            parts.append(torch.where(keep[m].unsqueeze(1), z, self.missing[m].to(z.dtype).expand_as(z)))
        return torch.cat(parts, dim=1)

    def _drop(self, keep: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        stacked = torch.stack([keep[m] for m in self.modalities], dim=1)  # [B, M]
        drop = torch.rand(stacked.shape, device=stacked.device) < self.modality_dropout
        kept = stacked & ~drop
        # Never drop every present modality of a patient: restore the original flags there.
        lost_all = (kept.sum(1) == 0) & (stacked.sum(1) > 0)
        kept[lost_all] = stacked[lost_all]
        return {m: kept[:, i] for i, m in enumerate(self.modalities)}
