"""transformers waveform models (HuBERT-ECG and other HuBERT / wav2vec2-style models) as ECG encoders.

HuBERT-ECG feeds a *single* sequence to a speech-style model: the 12 leads of a 5 s, 100 Hz window
are concatenated in time (lead I's 500 samples, then lead II's, ...), giving 6000 samples. The
model's last hidden states ``[B, frames, hidden]`` are averaged over frames into ``[B, hidden]``.

Weights load from a LOCAL folder only (``config.json`` + ``model.safetensors`` / ``pytorch_model.bin``)
with ``local_files_only=True``: riskfm never downloads.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from riskfm.ecg.spec import STANDARD_LEADS, ECGInputSpec

__all__ = ["HFWaveformEncoder", "hubert_ecg_input_spec"]


def hubert_ecg_input_spec(**overrides: Any) -> ECGInputSpec:
    """Return a HuBERT-ECG style spec: 12 leads x 5 s at 100 Hz, 0.05-47 Hz band-pass, leads in [-1, 1].

    Check the model card of your checkpoint and override fields that differ.
    """
    fields: dict[str, Any] = dict(fs=100.0, n_samples=500, leads=STANDARD_LEADS, bandpass_hz=(0.05, 47.0),
                                  normalisation="lead_minmax", licence="CC BY-NC 4.0 (HuBERT-ECG)",
                                  source="HuBERT-ECG (Coppola et al. 2024), local folder")
    fields.update(overrides)
    return ECGInputSpec(**fields)


class HFWaveformEncoder(nn.Module):
    """A transformers audio-style model (``input_values [B, S]``) as a riskfm ECG encoder.

    Parameters
    ----------
    model_path : str or PathLike
        Local folder written by ``save_pretrained`` (``config.json`` and weights).
    input_spec : ECGInputSpec, optional
        Preprocessing; :func:`hubert_ecg_input_spec` by default.
    lead_layout : {"concat", "mean"}
        ``"concat"``: leads one after the other in time (HuBERT-ECG); ``"mean"``: average the leads
        into one sequence.
    trust_remote_code : bool, default False
        Passed to transformers; only for local folders whose code you trust.

    Attributes
    ----------
    feature_dim : int
        The model's ``hidden_size``.
    """

    modality = "ecg"

    def __init__(self, model_path: str | os.PathLike, input_spec: ECGInputSpec | None = None,
                 lead_layout: str = "concat", trust_remote_code: bool = False) -> None:
        super().__init__()
        from transformers import AutoConfig, AutoModel

        folder = Path(os.fspath(model_path)).expanduser()
        if str(model_path).lower().startswith(("http://", "https://", "hf://")):
            raise ValueError(f"hf-ecg: model_path must be a local folder; riskfm never downloads (got {model_path!r})")
        if not (folder / "config.json").is_file():
            raise FileNotFoundError(f"hf-ecg: {folder} is not a transformers model folder (no config.json)")
        if lead_layout not in ("concat", "mean"):
            raise ValueError(f"hf-ecg: lead_layout must be 'concat' or 'mean', got {lead_layout!r}")
        config = AutoConfig.from_pretrained(folder, local_files_only=True, trust_remote_code=trust_remote_code)
        self.model = AutoModel.from_pretrained(folder, config=config, local_files_only=True,
                                               trust_remote_code=trust_remote_code)
        self.input_spec = input_spec if input_spec is not None else hubert_ecg_input_spec()
        self.lead_layout = lead_layout
        hidden = getattr(config, "hidden_size", None)
        if not isinstance(hidden, int):
            raise ValueError(f"hf-ecg: {folder}/config.json has no integer hidden_size")
        self.feature_dim = hidden

    def sequence(self, x: torch.Tensor) -> torch.Tensor:
        """Turn ``[B, leads, T]`` into ``input_values`` ``[B, leads * T]`` (``[B, T]`` for ``"mean"``)."""
        if x.ndim != 3:
            raise ValueError(f"hf-ecg: expected input [B, leads, T], got shape {tuple(x.shape)}")
        return x.reshape(x.shape[0], -1) if self.lead_layout == "concat" else x.mean(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Encode ECGs.

        Parameters
        ----------
        x : Tensor [B, leads, T]
            ECG preprocessed per ``input_spec`` (default: 100 Hz, T = 500, each lead min-max scaled
            to [-1, 1], so unitless).

        Returns
        -------
        Tensor [B, feature_dim]
            Mean of the last hidden states over frames.
        """
        hidden = self.model(input_values=self.sequence(x)).last_hidden_state
        return hidden.mean(1)
