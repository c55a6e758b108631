"""``RiskModel``: encoders -> fusion -> heads, with missing modalities and per-encoder freezing."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from riskfm.clinical.spec import TabularInputSpec, TextInputSpec
from riskfm.models.fusion import ConcatFusion


def encoder_input_key(modality: str, encoder: nn.Module) -> str:
    """Which batch entry feeds an encoder: ``ecg``, ``ct``, ``clinical_text`` or ``clinical_tabular``."""
    if modality != "clinical":
        return modality
    spec = getattr(encoder, "input_spec", None)
    if isinstance(spec, TextInputSpec):
        return "clinical_text"
    if isinstance(spec, TabularInputSpec):
        return "clinical_tabular"
    raise TypeError(f"clinical encoder {type(encoder).__name__} has input_spec {type(spec).__name__}; "
                    "expected TextInputSpec or TabularInputSpec")


class RiskModel(nn.Module):
    """Multimodal risk model.

    Parameters
    ----------
    encoders : modality (``ecg``, ``ct``, ``clinical``) -> encoder (``feature_dim``, ``input_spec``,
        ``forward(x) -> [B, feature_dim]``).
    fusion : a module ``fusion(features: dict, present: dict) -> [B, fusion.out_dim]``; built as a
        ``ConcatFusion`` over the encoders' feature sizes when None.
    heads : modules with ``name``, ``targets``, ``forward``, ``loss``, ``probabilities``.

    ``forward(batch)`` returns ``{head.name: raw output}``. An encoder runs only on the patients who
    have its modality; the others get the fusion's missing embedding.
    """

    def __init__(self, encoders: dict[str, nn.Module], fusion: nn.Module | None = None,
                 heads: list[nn.Module] | None = None) -> None:
        super().__init__()
        if not encoders:
            raise ValueError("RiskModel needs at least one encoder")
        self.encoders = nn.ModuleDict(encoders)
        self.input_keys = {m: encoder_input_key(m, e) for m, e in encoders.items()}
        self.fusion = fusion if fusion is not None else ConcatFusion({m: e.feature_dim for m, e in encoders.items()})
        if not heads:
            raise ValueError("RiskModel needs at least one head")
        self.heads = nn.ModuleList(heads)
        self._frozen: set[str] = set()

    # -- freezing ------------------------------------------------------------------------------------
    def freeze_encoder(self, modality: str) -> None:
        """Linear probe for this encoder: no gradients, and batch-norm statistics stay fixed (eval mode)."""
        enc = self.encoders[modality]
        for p in enc.parameters():
            p.requires_grad_(False)
        enc.eval()
        self._frozen.add(modality)

    def unfreeze_encoder(self, modality: str) -> None:
        """Fine-tune this encoder with the rest of the model."""
        enc = self.encoders[modality]
        for p in enc.parameters():
            p.requires_grad_(True)
        enc.train(self.training)
        self._frozen.discard(modality)

    @property
    def frozen(self) -> set[str]:
        return set(self._frozen)

    # -- checkpoints ---------------------------------------------------------------------------------
    def _external_weight_prefixes(self) -> list[str]:
        # A frozen language model is rebuilt from its local model folder (input_spec.model_path), so
        # checkpoints need not carry its weights (90 MB for MiniLM, GBs for a 7B model).
        return [f"encoders.{m}." for m in self._frozen
                if isinstance(getattr(self.encoders[m], "input_spec", None), TextInputSpec)]

    def checkpoint_state_dict(self) -> dict[str, torch.Tensor]:
        """``state_dict`` without the weights of frozen encoders that reload from their own model folder."""
        skip = tuple(self._external_weight_prefixes())
        return {k: v for k, v in self.state_dict().items() if not (skip and k.startswith(skip))}

    def load_checkpoint_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Load a ``checkpoint_state_dict``; any other missing or unexpected key is an error."""
        result = self.load_state_dict(state, strict=False)
        skip = tuple(self._external_weight_prefixes())
        missing = [k for k in result.missing_keys if not (skip and k.startswith(skip))]
        if missing or result.unexpected_keys:
            from riskfm.errors import CheckpointError

            raise CheckpointError(f"checkpoint does not match the model: missing {missing[:5]}, "
                               f"unexpected {list(result.unexpected_keys)[:5]}")

    def train(self, mode: bool = True) -> RiskModel:
        super().train(mode)
        for m in self._frozen:  # frozen encoders never update running statistics
            self.encoders[m].eval()
        return self

    # -- forward -------------------------------------------------------------------------------------
    def encode(self, batch: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Per-modality features [B, D_m] (zeros where absent) and presence flags [B]."""
        features, present = {}, {}
        n = len(batch["patient_id"]) if "patient_id" in batch else None
        device = next(self.fusion.parameters()).device
        for m, enc in self.encoders.items():
            key = self.input_keys[m]
            flags = batch.get(f"{m}_present")
            x = batch.get(key)
            if n is None:
                n = len(x)
            flags = torch.zeros(n, dtype=torch.bool) if flags is None or x is None else flags.bool()
            if key == "clinical_text" and x is not None:
                flags = flags & torch.tensor([t is not None for t in x], dtype=torch.bool, device=flags.device)
            flags = flags.to(device)
            feat = torch.zeros(n, enc.feature_dim, device=device)
            idx = torch.nonzero(flags, as_tuple=False).squeeze(1)
            if idx.numel():
                if isinstance(x, list):
                    xs = [x[i] for i in idx.tolist()]
                else:
                    xs = x[idx.to(x.device)] if idx.numel() < n else x
                out = enc(xs)
                feat = feat.to(out.dtype).index_copy(0, idx.to(out.device), out)
            features[m], present[m] = feat, flags
        return features, present

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        features, present = self.encode(batch)
        z = self.fusion(features, present)
        return {h.name: h(z) for h in self.heads}

    def loss(self, outputs: dict[str, torch.Tensor], batch: dict[str, Any],
             weights: dict[str, float] | None = None) -> tuple[torch.Tensor, dict[str, float]]:
        """Multi-task loss: weighted sum of head losses, each over that head's known labels only."""
        total = None
        parts: dict[str, float] = {}
        for h in self.heads:
            loss, n = h.loss(outputs[h.name], batch)
            w = 1.0 if weights is None else weights.get(h.name, 1.0)
            total = w * loss if total is None else total + w * loss
            parts[h.name] = float(loss.detach()) if n else float("nan")
        return total, parts

    @torch.no_grad()
    def predict_proba(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Target name -> probability [B] for every head's targets."""
        outputs = self.forward(batch)
        probs: dict[str, torch.Tensor] = {}
        for h in self.heads:
            probs.update(h.probabilities(outputs[h.name]))
        return probs

    @property
    def targets(self) -> list[str]:
        return [t for h in self.heads for t in h.targets]
