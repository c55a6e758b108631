"""A 1D ResNet over raw ECG: the from-scratch baseline against which ECG foundation models are judged.

Registered as ``resnet1d`` (widths 32-256) and ``resnet1d-small`` (widths 16-128, one block per
stage: fast enough to train on a laptop CPU for tests and the demo).

Architecture (input ``[B, n_leads, T]`` in whatever unit the input spec produces, mV by default):

* stem: conv k15 stride 2 -> BatchNorm -> ReLU -> max-pool k3 stride 2 (T / 4);
* four stages of basic residual blocks (two k7 convs), stride 2 on the first block of stages 2-4
  (T / 32 at the end), widths ``widths``; a 1x1 strided projection on the shortcut when the shape
  changes;
* global average and global max pooling over time, concatenated (average sees sustained changes such
  as ST deviation, max sees brief ones such as a single wide QRS) -> linear -> ``feature_dim``.

Any record length of at least 32 samples works thanks to the global pooling.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from riskfm.ecg.spec import ECGInputSpec
from riskfm.encoders import register_encoder

__all__ = ["BasicBlock1d", "ResNet1d"]

# Total downsampling of the network (stem 2 x pool 2 x three strided stages 2^3): inputs shorter than
# this would leave nothing to pool.
_MIN_SAMPLES = 32


class BasicBlock1d(nn.Module):
    """Two ``kernel_size`` convolutions with BatchNorm and an identity (or 1x1 projected) shortcut.

    Parameters
    ----------
    in_ch, out_ch : int
        Channels in and out.
    stride : int
        Temporal stride of the first convolution (and of the shortcut projection).
    kernel_size : int
        Odd kernel length in samples.
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1, kernel_size: int = 7) -> None:
        super().__init__()
        pad = kernel_size // 2
        self.conv1 = nn.Conv1d(in_ch, out_ch, kernel_size, stride=stride, padding=pad, bias=False)
        self.bn1 = nn.BatchNorm1d(out_ch)
        self.conv2 = nn.Conv1d(out_ch, out_ch, kernel_size, padding=pad, bias=False)
        self.bn2 = nn.BatchNorm1d(out_ch)
        # Separate, not in-place activations: Captum's DeepLift and backward hooks need each
        # nonlinearity to be its own module and its input to survive the forward pass.
        self.relu1 = nn.ReLU()
        self.relu2 = nn.ReLU()
        self.shortcut: nn.Module
        if stride != 1 or in_ch != out_ch:
            self.shortcut = nn.Sequential(
                nn.Conv1d(in_ch, out_ch, 1, stride=stride, bias=False), nn.BatchNorm1d(out_ch)
            )
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block.

        Parameters
        ----------
        x : Tensor [B, in_ch, T]

        Returns
        -------
        Tensor [B, out_ch, ceil(T / stride)]
        """
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + self.shortcut(x))


@register_encoder(
    "resnet1d-small",
    modality="ecg",
    licence="MIT",
    source="riskfm (trained from scratch; no pretrained weights)",
    description="Width-reduced 1D ResNet (16-128 channels, 1 block/stage) for tests and CPU demos",
    default_kwargs={"widths": (16, 32, 64, 128), "blocks": (1, 1, 1, 1)},
)
@register_encoder(
    "resnet1d",
    modality="ecg",
    licence="MIT",
    source="riskfm (trained from scratch; no pretrained weights)",
    description="1D ResNet baseline over raw 12-lead ECG (4 stages, avg+max pooling)",
)
class ResNet1d(nn.Module):
    """1D ResNet ECG encoder.

    Parameters
    ----------
    in_leads : int, optional
        Input channels (leads). Defaults to ``len(input_spec.leads)`` (12).
    widths : sequence of 4 int, default (32, 64, 128, 256)
        Channels of the four stages (the stem uses ``widths[0]``).
    feature_dim : int, default 256
        Output width ``D``.
    blocks : sequence of 4 int, default (2, 2, 2, 2)
        Residual blocks per stage.
    kernel_size : int, default 7
        Kernel length of the residual convolutions, in samples (14 ms at 500 Hz).
    input_spec : ECGInputSpec, optional
        Preprocessing the encoder expects; default 12 leads, 500 Hz, 5000 samples (10 s), no
        filtering, ``normalisation="none"`` (amplitudes in mV).

    Attributes
    ----------
    modality : str
        ``"ecg"``.
    feature_dim : int
    input_spec : ECGInputSpec
    gradcam_layer : nn.Module
        The last stage; its output ``[B, widths[-1], T/32]`` is the temporal map for Grad-CAM.

    Examples
    --------
    >>> enc = ResNet1d(widths=(16, 32, 64, 128), feature_dim=64)
    >>> enc(torch.randn(2, 12, 5000)).shape
    torch.Size([2, 64])
    """

    modality = "ecg"

    @staticmethod
    def default_input_spec(**_: Any) -> ECGInputSpec:
        """Return the spec used without an ``input_spec`` keyword: 12 leads, 10 s at 500 Hz, mV."""
        return ECGInputSpec(fs=500.0, n_samples=5000, normalisation="none")

    def __init__(
        self,
        in_leads: int | None = None,
        widths: Sequence[int] = (32, 64, 128, 256),
        feature_dim: int = 256,
        blocks: Sequence[int] = (2, 2, 2, 2),
        kernel_size: int = 7,
        input_spec: ECGInputSpec | None = None,
    ) -> None:
        super().__init__()
        spec = input_spec if input_spec is not None else self.default_input_spec()
        n_spec = len(spec.leads)
        if in_leads is None:
            in_leads = n_spec
        elif in_leads != n_spec:
            raise ValueError(
                f"ResNet1d: in_leads={in_leads} but input_spec names {n_spec} leads {spec.leads}; "
                "pass input_spec=ECGInputSpec(leads=...) naming the leads the encoder reads"
            )
        widths = tuple(int(w) for w in widths)
        blocks = tuple(int(b) for b in blocks)
        if len(widths) != 4 or len(blocks) != 4 or min(widths) < 1 or min(blocks) < 1:
            raise ValueError(f"ResNet1d: widths and blocks need 4 positive entries, got {widths}, {blocks}")
        if feature_dim < 1:
            raise ValueError(f"ResNet1d: feature_dim must be positive, got {feature_dim}")
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"ResNet1d: kernel_size must be odd, got {kernel_size}")

        self.in_leads = in_leads
        self.widths = widths
        self.feature_dim = int(feature_dim)
        self.input_spec = spec

        self.stem = nn.Sequential(
            nn.Conv1d(in_leads, widths[0], 15, stride=2, padding=7, bias=False),
            nn.BatchNorm1d(widths[0]),
            nn.ReLU(),
            nn.MaxPool1d(3, stride=2, padding=1),
        )
        stages = []
        in_ch = widths[0]
        for i, (width, n_blocks) in enumerate(zip(widths, blocks)):
            stride = 1 if i == 0 else 2
            layers = [BasicBlock1d(in_ch, width, stride, kernel_size)]
            layers += [BasicBlock1d(width, width, 1, kernel_size) for _ in range(n_blocks - 1)]
            stages.append(nn.Sequential(*layers))
            in_ch = width
        self.stages = nn.Sequential(*stages)
        self.fc = nn.Linear(2 * widths[-1], self.feature_dim)

        for m in self.modules():
            if isinstance(m, nn.Conv1d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        # Zero the last BN of each residual branch so every block starts as identity: deep nets then
        # train stably from the first step (Goyal et al., 2017).
        for m in self.modules():
            if isinstance(m, BasicBlock1d):
                nn.init.zeros_(m.bn2.weight)

    @property
    def gradcam_layer(self) -> nn.Module:
        """The last residual stage (temporal feature map for Grad-CAM)."""
        return self.stages[-1]

    def layer_groups(self) -> list[list[nn.Module]]:
        """Return module groups from input to output, ``[stem, stage 0, ..., projection]`` (partial FT, LLRD)."""
        return [[self.stem], *[[stage] for stage in self.stages], [self.fc]]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Return the temporal feature map ``[B, widths[-1], ceil(T / 32)]`` of ``x`` ``[B, n_leads, T]``.

        Raises
        ------
        ValueError
            If ``x`` is not ``[B, n_leads, T]`` or ``T`` is below 32 samples.
        """
        if x.ndim != 3 or x.shape[1] != self.in_leads:
            raise ValueError(
                f"ResNet1d expects [B, {self.in_leads}, T] (leads {self.input_spec.leads}), "
                f"got shape {tuple(x.shape)}"
            )
        if x.shape[-1] < _MIN_SAMPLES:
            raise ValueError(f"ResNet1d needs at least {_MIN_SAMPLES} samples, got T={x.shape[-1]}")
        return self.stages(self.stem(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Encode ECGs.

        Parameters
        ----------
        x : Tensor [B, n_leads, T]
            Preprocessed ECG per ``input_spec`` (mV when ``normalisation="none"``).

        Returns
        -------
        Tensor [B, feature_dim]
            Linear read-out of the time-average and time-max of the last stage.
        """
        fmap = self.forward_features(x)
        pooled = torch.cat([fmap.mean(dim=-1), fmap.amax(dim=-1)], dim=1)
        return self.fc(pooled)
