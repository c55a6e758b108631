"""``RiskModel``: encoders -> fusion -> heads, with missing modalities and per-encoder freezing."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from riskfm.models.fusion import ConcatFusion


def encoder_input_key(modality: str, encoder: nn.Module) -> str:
    """Return the batch key feeding an encoder: ``ecg``, ``ct``, ``clinical_text`` or ``clinical_tabular``.

    Raises
    ------
    TypeError
        If a clinical encoder's ``input_spec`` is neither a text nor a tabular spec.
    """
    spec = getattr(encoder, "input_spec", None)
    key = getattr(spec, "batch_key", None)
    if modality != "clinical":
        return modality
    if key not in ("clinical_text", "clinical_tabular"):
        raise TypeError(f"clinical encoder {type(encoder).__name__} has input_spec {type(spec).__name__}; "
                        "expected TextInputSpec or TabularInputSpec")
    return key


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
        """Freeze this encoder (linear probe): no gradients, batch-norm statistics fixed (eval mode)."""
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
        """Modalities whose encoder is frozen (a copy)."""
        return set(self._frozen)

    # -- checkpoints ---------------------------------------------------------------------------------
    def _external_weight_prefixes(self) -> list[str]:
        # A frozen language model is rebuilt from its local model folder (input_spec.model_path), so
        # checkpoints need not carry its weights (90 MB for MiniLM, GBs for a 7B model).
        return [f"encoders.{m}." for m in self._frozen
                if getattr(getattr(self.encoders[m], "input_spec", None), "batch_key", None) == "clinical_text"]

    def checkpoint_state_dict(self) -> dict[str, torch.Tensor]:
        """Return ``state_dict`` less the weights of frozen encoders that reload from their model folder."""
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
        """Set training mode as ``nn.Module.train`` does, keeping frozen encoders in eval mode."""
        super().train(mode)
        for m in self._frozen:  # frozen encoders never update running statistics
            self.encoders[m].eval()
        return self

    # -- forward -------------------------------------------------------------------------------------
    def encode(self, batch: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Run each encoder on the patients who have its modality.

        Parameters
        ----------
        batch : dict
            A collated batch (:func:`riskfm.data.sample.collate_samples`): ``ecg`` [B, L, T],
            ``ct`` [B, C, Z, Y, X], ``clinical_text`` (list) or ``clinical_tabular`` [B, F], and
            ``<modality>_present`` [B] bool flags.

        Returns
        -------
        features : dict of str to Tensor [B, D_m]
            Encoder features per modality, zeros where the modality is absent.
        present : dict of str to Tensor [B] bool
            Presence flags per modality (a clinical text of None counts as absent).
        """
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
        """Encode, fuse and apply every head.

        Parameters
        ----------
        batch : dict
            A collated batch, as for :meth:`encode`.

        Returns
        -------
        dict of str to Tensor
            Head name -> raw output: ``stenosis`` logits [B, 4], a binary head's logit [B],
            ``survival`` log hazard [B].
        """
        features, present = self.encode(batch)
        z = self.fusion(features, present)
        return {h.name: h(z) for h in self.heads}

    def loss(self, outputs: dict[str, torch.Tensor], batch: dict[str, Any],
             weights: dict[str, float] | None = None) -> tuple[torch.Tensor, dict[str, float]]:
        """Return the multi-task loss: weighted sum of head losses, each over its known labels only.

        Parameters
        ----------
        outputs : dict of str to Tensor
            The output of :meth:`forward`.
        batch : dict
            The batch holding the labels (NaN unknown).
        weights : dict of str to float, optional
            Head name -> loss weight (1 when absent).

        Returns
        -------
        total : Tensor []
            Weighted sum of the head losses.
        parts : dict of str to float
            Head name -> unweighted loss (NaN when the batch has no known label for it).
        """
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
        """Return target name -> probability [B] for every head's targets (no gradients)."""
        outputs = self.forward(batch)
        probs: dict[str, torch.Tensor] = {}
        for h in self.heads:
            probs.update(h.probabilities(outputs[h.name]))
        return probs

    @property
    def targets(self) -> list[str]:
        """Target names of all heads, in head order."""
        return [t for h in self.heads for t in h.targets]
