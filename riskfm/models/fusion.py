"""Fusion of per-modality features: projection, learned missing-modality embeddings, modality dropout."""

from __future__ import annotations

import torch
from torch import nn


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
    """

    def __init__(self, input_dims: dict[str, int], proj_dim: int = 128, modality_dropout: float = 0.1,
                 dropout: float = 0.1) -> None:
        super().__init__()
        if not input_dims:
            raise ValueError("ConcatFusion needs at least one modality")
        if not 0.0 <= modality_dropout < 1.0:
            raise ValueError(f"modality_dropout must be in [0, 1), got {modality_dropout}")
        self.modalities = list(input_dims)
        self.proj = nn.ModuleDict({
            m: nn.Sequential(nn.LayerNorm(d), nn.Linear(d, proj_dim), nn.GELU(), nn.Dropout(dropout))
            for m, d in input_dims.items()
        })
        self.missing = nn.ParameterDict({m: nn.Parameter(torch.zeros(proj_dim)) for m in input_dims})
        for p in self.missing.values():
            nn.init.normal_(p, std=0.02)
        self.modality_dropout = modality_dropout
        self.out_dim = proj_dim * len(input_dims)

    def forward(self, features: dict[str, torch.Tensor], present: dict[str, torch.Tensor]) -> torch.Tensor:
        """``features[m]`` [B, D_m] and ``present[m]`` [B] bool -> fused [B, out_dim]."""
        keep = {m: present[m].bool() for m in self.modalities}
        if self.training and self.modality_dropout > 0 and len(self.modalities) > 1:
            keep = self._drop(keep)
        parts = []
        for m in self.modalities:
            z = self.proj[m](features[m])
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
