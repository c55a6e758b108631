"""A small encoder of R-aligned median beats that keeps *when* in the beat a feature occurs.

Median beats (``ECGInputSpec(representation="median_beat")``) put the R peak at a fixed sample, so
the ST segment and T wave sit at known offsets. Global pooling over time (as in ``resnet1d``)
throws that timing away and leaves the network to rediscover "ST level relative to the PR
baseline" as a local pattern; this encoder instead flattens a lightly downsampled feature map, so a
linear read-out can weigh each lead at each offset, which is how ST deviation is defined. On a few
hundred patients it learns territorial ST changes far faster than a rhythm-strip CNN.
"""

from __future__ import annotations

import torch
from torch import nn

from riskfm.ecg.spec import ECGInputSpec
from riskfm.encoders import register_encoder


def _default_spec() -> ECGInputSpec:
    return ECGInputSpec(fs=250.0, n_samples=2500, bandpass_hz=(0.67, 40.0), representation="median_beat")


@register_encoder(
    "median-beat-cnn",
    modality="ecg",
    licence="MIT",
    source="riskfm (trained from scratch; no pretrained weights)",
    description="Two strided convolutions over 12-lead median beats, flattened (keeps ST/T timing)",
)
class MedianBeatCNN(nn.Module):
    """Median beat ``[B, leads, L]`` -> ``[B, feature_dim]``.

    Parameters
    ----------
    widths : channels of the two convolutions (kernel 7 then 5, stride 2 each: L / 4 positions).
    feature_dim : output size.
    dropout : dropout before the linear read-out.
    input_spec : an ``ECGInputSpec`` with ``representation="median_beat"`` (default: 250 Hz,
        ECGFounder's 0.67-40 Hz band-pass, beats from 0.25 s before to 0.45 s after R).
    """

    modality = "ecg"

    def __init__(self, widths: tuple[int, int] = (16, 32), feature_dim: int = 64, dropout: float = 0.2,
                 input_spec: ECGInputSpec | None = None) -> None:
        super().__init__()
        spec = input_spec if input_spec is not None else _default_spec()
        if spec.representation != "median_beat":
            raise ValueError("median-beat-cnn needs input_spec.representation='median_beat' "
                             f"(got {spec.representation!r})")
        self.input_spec = spec
        self.feature_dim = int(feature_dim)
        n_leads, length = len(spec.leads), spec.input_samples
        self.features = nn.Sequential(
            nn.Conv1d(n_leads, widths[0], 7, stride=2, padding=3), nn.GELU(),
            nn.Conv1d(widths[0], widths[1], 5, stride=2, padding=2), nn.GELU(),
        )
        with torch.no_grad():
            n_flat = self.features(torch.zeros(1, n_leads, length)).numel()
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(n_flat, self.feature_dim))
        self.in_leads, self.length = n_leads, length

    @property
    def gradcam_layer(self) -> nn.Module:
        return self.features[-2]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 3 or x.shape[1] != self.in_leads or x.shape[2] != self.length:
            raise ValueError(f"median-beat-cnn expects [B, {self.in_leads}, {self.length}] median beats, "
                             f"got {tuple(x.shape)}")
        return self.head(self.features(x))
