"""Registry entries of the ECG foundation-model encoders (ECGFounder, transformers, generic).

Imported by :mod:`riskfm.ecg` (so by the encoder registry's built-in import of
``riskfm.ecg.resnet1d``). The factories import torch and the model code only when an encoder is
built, so ``import riskfm.ecg`` stays light.

Every entry's input spec (sampling rate, samples, lead order, filters, normalisation, licence) is
on the built encoder as ``enc.input_spec``; :func:`riskfm.encoders.encoder_info` gives the licence
and source of the weights.
"""

from __future__ import annotations

from typing import Any

from riskfm.encoders import register_encoder

__all__: list[str] = []

_ECGFOUNDER_SOURCE = "ECGFounder (Li et al. 2025), github.com/PKUDigitalHealth/ECGFounder; local .pth only"
#: ECGFounder's published fine-tuning: Adam, lr 1e-4, weight decay 1e-5, ReduceLROnPlateau.
_ECGFOUNDER_RECIPE = {"lr": 1e-4, "weight_decay": 1e-5, "optimizer": "adam", "scheduler": "plateau"}


@register_encoder("ecgfounder-12lead", modality="ecg", licence="MIT", source=_ECGFOUNDER_SOURCE,
                  description="ECGFounder Net1D, 12 leads x 10 s at 500 Hz -> 1024 features (30.8M parameters)",
                  aliases=("ecgfounder",), finetune_recipe=_ECGFOUNDER_RECIPE)
def ecgfounder_12lead(**kwargs: Any):
    from riskfm.ecg.net1d import ECGFounderEncoder

    return ECGFounderEncoder(n_leads=12, **kwargs)


@register_encoder("ecgfounder-1lead", modality="ecg", licence="MIT", source=_ECGFOUNDER_SOURCE,
                  description="ECGFounder Net1D, lead I x 10 s at 500 Hz -> 1024 features",
                  finetune_recipe=_ECGFOUNDER_RECIPE)
def ecgfounder_1lead(**kwargs: Any):
    from riskfm.ecg.net1d import ECGFounderEncoder

    return ECGFounderEncoder(n_leads=1, **kwargs)


@register_encoder("ecgfounder-tiny", modality="ecg", licence="MIT", source="riskfm (random init)",
                  description="ECGFounder's Net1D structure at 1/8 width (128 features) for tests and CPU runs",
                  default_kwargs={"width_multiplier": 0.125}, finetune_recipe=_ECGFOUNDER_RECIPE)
def ecgfounder_tiny(**kwargs: Any):
    from riskfm.ecg.net1d import ECGFounderEncoder

    return ECGFounderEncoder(**kwargs)


@register_encoder("hf-ecg", modality="ecg", licence="per checkpoint (HuBERT-ECG: CC BY-NC 4.0)",
                  source="a local transformers folder (config.json + weights), e.g. HuBERT-ECG",
                  description="transformers waveform model (HuBERT / wav2vec2 style) on leads concatenated in time",
                  aliases=("hubert-ecg",))
def hf_ecg(**kwargs: Any):
    from riskfm.ecg.hf_adapter import HFWaveformEncoder

    return HFWaveformEncoder(**kwargs)


@register_encoder("generic-ecg", modality="ecg", licence="per model", source="user code",
                  description="any torch module (or 'pkg.module:factory') plus an ECGInputSpec")
def generic_ecg(**kwargs: Any):
    from riskfm.ecg.generic_adapter import GenericECGEncoder

    return GenericECGEncoder(**kwargs)


def _founder_spec(n_leads: int):
    def default_input_spec(**_: Any):
        """Return ECGFounder's reference input spec for this lead count (no weights built)."""
        from riskfm.ecg.net1d import ecgfounder_input_spec

        return ecgfounder_input_spec(n_leads)
    return default_input_spec


ecgfounder_12lead.default_input_spec = _founder_spec(12)
ecgfounder_1lead.default_input_spec = _founder_spec(1)
ecgfounder_tiny.default_input_spec = lambda n_leads=12, **_: _founder_spec(n_leads)()

