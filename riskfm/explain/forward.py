"""A RiskModel as a function of ONE modality's input, the rest of the patient held fixed.

Captum attributes the output of a function ``f(inputs) -> [k]`` to ``inputs``. For a multimodal
model, "the attribution of the ECG" means: keep this patient's CT and clinical data as they are and
vary the ECG. :class:`ModalityForward` does exactly that for one patient: the other modalities'
features are computed once (:class:`PatientContext`) and broadcast to however many perturbed copies
Captum evaluates (IG's interpolation steps, Occlusion's windows), so only the explained encoder, the
fusion and the head run per evaluation. Working one patient at a time also keeps rows aligned
whatever order a Captum method stacks its perturbed copies in.

:class:`PresenceForward` is the same model as a function of the presence flags of every modality
(1 present, 0 treated as missing, i.e. replaced by the fusion's learned missing embedding); Shapley
value sampling over modalities perturbs those flags.

:func:`text_token_forward` runs a clinical language-model encoder from token ids, with gradients,
pooled exactly as ``TextEncoder`` pools (which runs under ``no_grad`` and caches when frozen).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from riskfm.explain.targets import Target, select_output

__all__ = ["ModalityForward", "PatientContext", "PresenceForward", "select_patient", "text_token_forward",
           "tokenize_text"]


def select_patient(batch: dict[str, Any], i: int) -> dict[str, Any]:
    """Return row ``i`` of a collated batch as a batch of one (tensors ``[1, ...]``, lists of one item)."""
    n = len(batch["patient_id"])
    if not 0 <= i < n:
        raise IndexError(f"patient index {i} out of range for a batch of {n}")
    out: dict[str, Any] = {}
    for key, value in batch.items():
        if isinstance(value, torch.Tensor) and value.ndim >= 1 and value.shape[0] == n:
            out[key] = value[i:i + 1]
        elif isinstance(value, list) and len(value) == n:
            out[key] = value[i:i + 1]
        else:
            out[key] = value
    return out


class PatientContext:
    """Features and presence flags of every modality for one patient, computed once without gradients.

    Parameters
    ----------
    model : RiskModel (in eval mode: dropout off, so repeated evaluations agree).
    batch : collated batch; ``i`` selects the patient.
    """

    def __init__(self, model: nn.Module, batch: dict[str, Any], i: int = 0) -> None:
        self.model = model
        self.batch = select_patient(batch, i)
        self.patient_id = str(self.batch["patient_id"][0])
        with torch.no_grad():
            self.features, self.present = model.encode(self.batch)

    def has(self, modality: str) -> bool:
        """Return whether the patient has ``modality``."""
        return bool(self.present[modality][0])

    def modality_input(self, modality: str) -> Any:
        """Return the batch entry feeding ``modality``'s encoder (``[1, ...]`` tensor or list of one text)."""
        return self.batch.get(self.model.input_keys[modality])


class ModalityForward:
    """``f(x) -> [k]``: the explained output when ``modality``'s input is ``x`` (``[k, ...]``).

    Parameters
    ----------
    context : PatientContext of the explained patient.
    modality : ``"ecg"``, ``"ct"`` or ``"clinical"``.
    target : resolved target.
    output : ``"logit"`` or ``"probability"``.
    encode : maps the modality's input to features ``[k, D]``; the model's encoder by default
        (the clinical text path passes :func:`text_token_forward`).

    Notes
    -----
    For a present modality, ``f(x)`` equals ``model(batch)`` with ``batch[modality] = x`` (tested);
    the fusion sees the modality as present for every row.
    """

    def __init__(self, context: PatientContext, modality: str, target: Target, output: str = "logit",
                 encode: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        model = context.model
        if modality not in model.encoders:
            raise ValueError(f"the model has no {modality!r} encoder; it has {list(model.encoders)}")
        if not context.has(modality):
            raise ValueError(f"patient {context.patient_id!r} has no {modality} input to explain")
        self.model, self.context, self.modality = model, context, modality
        self.target, self.output = target, output
        self.encode = encode if encode is not None else model.encoders[modality]
        self.head = next(h for h in model.heads if h.name == target.head)

    def features_to_output(self, feat: torch.Tensor) -> torch.Tensor:
        """Return the explained output ``[k]`` from this modality's features ``[k, D]`` and the fixed rest."""
        k = feat.shape[0]
        features = {m: f.expand(k, -1) for m, f in self.context.features.items()}
        present = {m: p.expand(k) for m, p in self.context.present.items()}
        features[self.modality] = feat.to(features[self.modality].dtype)
        present[self.modality] = torch.ones(k, dtype=torch.bool, device=feat.device)
        z = self.model.fusion(features, present)
        return select_output(self.head(z), self.target, self.output)

    def __call__(self, x: torch.Tensor, *extra: Any) -> torch.Tensor:
        """Return the explained output ``[k]`` for ``k`` versions ``x`` ``[k, ...]`` of the modality's input.

        ``x`` is what the encoder reads (e.g. ECG ``[k, leads, T]``, CT ``[k, C, Z, Y, X]``, tabular
        ``[k, F]``, token ids ``[k, T]``); ``extra`` are passed on to ``encode``.
        """
        feat = self.encode(x, *extra) if extra else self.encode(x)
        return self.features_to_output(feat)


class PresenceForward:
    """``f(mask) -> [n]``: the explained output when modality ``j`` is present where ``mask[:, j] > 0.5``.

    Features are computed once for the ``B`` patients of ``batch``; a mask of ``k * B`` rows (Captum
    stacking ``k`` perturbations) is read as ``k`` consecutive blocks of the ``B`` patients. A modality
    a patient does not have stays absent whatever the mask says.
    """

    def __init__(self, model: nn.Module, batch: dict[str, Any], target: Target, output: str = "logit") -> None:
        self.model, self.target, self.output = model, target, output
        self.modalities = list(model.encoders)
        with torch.no_grad():
            self.features, self.present = model.encode(batch)
        self.n = len(batch["patient_id"])
        self.head = next(h for h in model.heads if h.name == target.head)

    def available(self) -> torch.Tensor:
        """Return ``[B, M]`` float, 1 where the patient has the modality (columns as :attr:`modalities`)."""
        return torch.stack([self.present[m].float() for m in self.modalities], dim=1)

    def __call__(self, mask: torch.Tensor) -> torch.Tensor:
        """Return the explained output ``[k * B]`` for a presence mask ``[k * B, M]`` (no gradients).

        Raises
        ------
        ValueError
            If the mask's rows are not a multiple of the ``B`` patients.
        """
        k, rem = divmod(mask.shape[0], self.n)
        if rem:
            raise ValueError(f"presence mask has {mask.shape[0]} rows, not a multiple of the {self.n} patients")
        features = {m: f.repeat(k, 1) for m, f in self.features.items()}
        present = {m: self.present[m].repeat(k) & (mask[:, j] > 0.5) for j, m in enumerate(self.modalities)}
        with torch.no_grad():
            z = self.model.fusion(features, present)
            return select_output(self.head(z), self.target, self.output)


# ---------------------------------------------------------------------------------------- clinical text
def tokenize_text(encoder: nn.Module, text: str) -> dict[str, torch.Tensor]:
    """Return token ids ``[1, T]``, attention mask ``[1, T]`` and character offsets ``[T, 2]`` of one text.

    Tokenised with the encoder's own tokenizer and truncation length, so the tokens are the ones the
    model reads. Needs a "fast" tokenizer (offsets map tokens back to characters, hence variables).
    """
    tok = encoder.tokenizer
    if not getattr(tok, "is_fast", False):
        raise ValueError(f"{type(tok).__name__} is not a fast tokenizer; token-to-variable roll-up needs "
                         "character offsets (return_offsets_mapping)")
    enc = tok([text], truncation=True, max_length=encoder.max_length, return_offsets_mapping=True,
              return_tensors="pt")
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"],
            "offsets": enc["offset_mapping"][0]}


def text_token_forward(encoder: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Return pooled float32 LM features ``[k, H]`` of token ids ``[k, T]``, with gradients.

    Pooled as ``TextEncoder`` pools.

    ``attention_mask`` may have one row; it is broadcast to ``k`` rows.
    """
    device = next(encoder.lm.parameters()).device
    ids = input_ids.to(device)
    mask = attention_mask.to(device).expand(ids.shape[0], -1)
    inputs: dict[str, torch.Tensor] = {"input_ids": ids, "attention_mask": mask}
    forward_args = getattr(encoder, "_forward_args", set())
    if encoder.decoder_only and "position_ids" in forward_args:
        inputs["position_ids"] = (mask.long().cumsum(dim=1) - 1).clamp(min=0)
    return encoder.pool_hidden(encoder.lm(**inputs).last_hidden_state, mask)
