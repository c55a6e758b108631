"""CORA's 3D residual U-Net (Table S1 of seed 001) on MONAI building blocks.

Registered as the CT encoder ``cora-resunet`` (and ``cora-resunet-small``, width 8, for tests and
the demo). Table S1 at ``width = 32``:

====================  =========  ========  ======  =================================
part                  channels   stride    blocks  MONAI block
====================  =========  ========  ======  =================================
encoder stage 1       32         1         1       ``UnetResBlock``
encoder stage 2       64         2         3       ``UnetResBlock`` (stride in the first)
encoder stage 3       128        2         4       ``UnetResBlock``
encoder stage 4       256        2         4       ``UnetResBlock`` (bottleneck)
decoder stage 3, 2, 1 128/64/32  up x2     1 each  ``UnetUpBlock`` (transposed conv + skip
                                                   concat + two 3x3x3 conv)
output                1          -         -       ``UnetOutBlock`` (1x1x1 conv) + sigmoid
====================  =========  ========  ======  =================================

Every 3x3x3 convolution is followed by InstanceNorm (affine) and LeakyReLU (slope 0.01); a
residual block is conv-norm-act-conv-norm, plus the input (through a 1x1x1 conv + norm when the
width or stride changes), then act. About 19.4M parameters at width 32 (methods.md quotes ~21M
for the closest MONAI ``SegResNet``; see docs/ct.md).

As an encoder (the riskfm contract) ``forward(x)`` returns the global average of the 256-channel
bottleneck, ``[B, 8 * width]``; :meth:`CoraResUNet.forward_dense` runs the whole encoder-decoder
and returns the sigmoid lesion / structure map (dense tasks: pretraining, stenosis, artery
segmentation). Each spatial axis must be a multiple of 8 (three stride-2 stages); other sizes
are zero-padded (0 is every window's floor) and the dense output is cropped back.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from riskfm.ct.spec import CORA_WINDOWS, CTInputSpec
from riskfm.encoders import register_encoder

__all__ = ["CORA_BLOCKS", "CORA_SPACING", "CORA_STRIDES", "CoraResUNet", "cora_input_spec"]

#: Residual blocks per encoder stage and their strides (Table S1).
CORA_BLOCKS: tuple[int, ...] = (1, 3, 4, 4)
CORA_STRIDES: tuple[int, ...] = (1, 2, 2, 2)
#: The paper's resampling target as printed, "0.5 x 0.5 x 5 mm^3", written (z, y, x). Kept as a
#: parameter everywhere (methods.md); riskfm's synthetic cohort uses (2.0, 1.5, 1.5).
CORA_SPACING: tuple[float, float, float] = (5.0, 0.5, 0.5)
#: Norm and activation of every convolution (not in place: Captum / Grad-CAM hooks need inputs intact).
_NORM = ("instance", {"affine": True})
_ACT = ("leakyrelu", {"inplace": False, "negative_slope": 0.01})


def cora_input_spec(
    spacing: Sequence[float] = CORA_SPACING, shape: Sequence[int] = (64, 64, 64)
) -> CTInputSpec:
    """Return a CORA network's input spec: ``spacing`` (z, y, x) mm, patch ``shape``, the four windows."""
    return CTInputSpec(spacing=tuple(float(s) for s in spacing), shape=tuple(int(s) for s in shape),
                       windows=CORA_WINDOWS, licence="MIT",
                       source="riskfm (CORA architecture; weights from riskfm pretrain-ct)")


class _Stage(nn.Sequential):
    """``n_blocks`` residual blocks, the first carrying the stage's stride."""

    def __init__(self, in_ch: int, out_ch: int, n_blocks: int, stride: int) -> None:
        from monai.networks.blocks.dynunet_block import UnetResBlock

        blocks = [UnetResBlock(3, in_ch, out_ch, kernel_size=3, stride=stride, norm_name=_NORM, act_name=_ACT)]
        blocks += [UnetResBlock(3, out_ch, out_ch, kernel_size=3, stride=1, norm_name=_NORM, act_name=_ACT)
                   for _ in range(n_blocks - 1)]
        super().__init__(*blocks)
        self.stride = stride
        self.out_channels = out_ch

    def __getitem__(self, idx):
        if isinstance(idx, slice):  # a plain Sequential: a slice is not a whole stage
            return nn.Sequential(*list(self._modules.values())[idx])
        return super().__getitem__(idx)


@register_encoder(
    "cora-resunet",
    modality="ct",
    licence="MIT",
    source="riskfm (CORA architecture, Hao et al.; no released weights: pretrain with `riskfm pretrain-ct`)",
    description="CORA 3D residual U-Net (Table S1): 4-window CCTA, pooled 256-channel bottleneck features",
)
@register_encoder(
    "cora-resunet-small",
    modality="ct",
    licence="MIT",
    source="riskfm (CORA architecture at width 8, for tests and the demo)",
    description="CORA 3D residual U-Net at width 8 (stages 8/16/32/64) on 32^3 patches",
    default_kwargs={"width": 8, "input_spec": cora_input_spec((2.0, 1.5, 1.5), (32, 32, 32))},
)
class CoraResUNet(nn.Module):
    """CORA's residual U-Net; a CT encoder (pooled bottleneck) that also segments.

    Parameters
    ----------
    width : int, default 32
        Channels of stage 1; stages are ``width * (1, 2, 4, 8)`` (Table S1: 32/64/128/256).
    out_channels : int, default 1
        Channels of the dense output (1: lesion / artery probability).
    input_spec : CTInputSpec, optional
        Default :func:`cora_input_spec`: the paper's spacing (5.0, 0.5, 0.5) mm, 64^3 patches, the
        four CORA windows (``in_channels = 4``).

    Attributes
    ----------
    modality : str
        ``"ct"``.
    feature_dim : int
        ``8 * width`` (256 at width 32).
    stages : nn.ModuleList
        The four encoder stages (``_Stage``; ``stage.stride``, ``len(stage)`` blocks).
    decoder : nn.ModuleList
        Three ``UnetUpBlock`` from the bottleneck up.
    head : UnetOutBlock
        The 1x1x1 output convolution (logits; :meth:`forward_dense` applies the sigmoid).

    Examples
    --------
    >>> net = CoraResUNet(width=4, input_spec=cora_input_spec(shape=(16, 16, 16)))
    >>> x = torch.rand(2, 4, 16, 16, 16)
    >>> net(x).shape, net.forward_dense(x).shape
    (torch.Size([2, 32]), torch.Size([2, 1, 16, 16, 16]))
    """

    modality = "ct"

    @staticmethod
    def default_input_spec(**_: Any) -> CTInputSpec:
        """Return the spec used without an ``input_spec`` keyword (:func:`cora_input_spec`)."""
        return cora_input_spec()

    def __init__(self, width: int = 32, out_channels: int = 1, input_spec: CTInputSpec | None = None) -> None:
        super().__init__()
        # MONAI is imported on construction, not with this module: the encoder registry imports
        # every built-in encoder module, and importing MONAI costs seconds.
        from monai.networks.blocks.dynunet_block import UnetOutBlock, UnetUpBlock

        spec = input_spec if input_spec is not None else self.default_input_spec()
        width = int(width)
        if width < 1:
            raise ValueError(f"CoraResUNet: width must be a positive number of channels, got {width}")
        if spec.in_channels < 1:
            raise ValueError("CoraResUNet: input_spec.windows is empty; at least one HU window is needed")
        if int(out_channels) < 1:
            raise ValueError(f"CoraResUNet: out_channels must be >= 1, got {out_channels}")
        self.width = width
        self.in_channels = spec.in_channels
        self.input_spec = spec
        channels = [width * m for m in (1, 2, 4, 8)]
        self.channels = tuple(channels)
        self.feature_dim = channels[-1]
        stages, in_ch = [], spec.in_channels
        for ch, n, stride in zip(channels, CORA_BLOCKS, CORA_STRIDES):
            stages.append(_Stage(in_ch, ch, n, stride))
            in_ch = ch
        self.stages = nn.ModuleList(stages)
        self.decoder = nn.ModuleList(
            UnetUpBlock(3, channels[i + 1], channels[i], kernel_size=3, stride=1, upsample_kernel_size=2,
                        norm_name=_NORM, act_name=_ACT)
            for i in (2, 1, 0)
        )
        self.head = UnetOutBlock(3, channels[0], int(out_channels))
        self.reset_decoder()
        for stage in self.stages:
            self._init(stage)

    # ------------------------------------------------------------------ initialisation
    @staticmethod
    def _init(module: nn.Module) -> None:
        for m in module.modules():
            if isinstance(m, nn.Conv3d | nn.ConvTranspose3d):
                nn.init.kaiming_normal_(m.weight, a=0.01, nonlinearity="leaky_relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def reset_decoder(self, prior: float = 0.01) -> None:
        """Re-initialise decoder and output head (a "new decoder" on a pretrained encoder).

        The head's bias starts at ``logit(prior)``, so every voxel starts at probability ``prior``
        (1%): lesions and vessels are rare, and starting at 0.5 would flood the first steps with
        false positives (the initialisation of the focal-loss paper, Lin et al. 2017).
        """
        self._init(self.decoder)
        self._init(self.head)
        if 0 < prior < 1:
            nn.init.constant_(self.head.conv.conv.bias, float(torch.logit(torch.tensor(prior))))

    def encoder_parameters(self) -> list[nn.Parameter]:
        """Return the parameters of the four encoder stages."""
        return [p for s in self.stages for p in s.parameters()]

    def layer_groups(self) -> list[list[nn.Module]]:
        """Return the four encoder stages from input to bottleneck (partial FT, LLRD of the risk-model encoder).

        The decoder and head are not groups: the risk model reads the bottleneck's features.
        """
        return [[stage] for stage in self.stages]

    @property
    def gradcam_layer(self) -> nn.Module:
        """The last residual block of the bottleneck (map ``[B, 8 * width, Z/8, Y/8, X/8]``)."""
        return self.stages[-1][-1]

    # ------------------------------------------------------------------ forward passes
    def _check(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int]]:
        if x.ndim != 5 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"CoraResUNet expects [B, {self.in_channels}, Z, Y, X] (one channel per HU window of the input "
                f"spec), got shape {tuple(x.shape)}"
            )
        size = tuple(int(s) for s in x.shape[2:])
        pad = [(-n) % 8 for n in size]
        if any(pad):
            # F.pad takes (x_lo, x_hi, y_lo, y_hi, z_lo, z_hi); pad only at the high end.
            x = F.pad(x, (0, pad[2], 0, pad[1], 0, pad[0]))
        return x, size

    def _encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        skips = []
        for stage in self.stages:
            x = stage(x)
            skips.append(x)
        return skips

    def stage_outputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Return the four encoder stages' feature maps.

        Parameters
        ----------
        x : Tensor [B, C, Z, Y, X]
            Windowed volumes per ``input_spec`` (each channel in [0, 1]).

        Returns
        -------
        list of 4 Tensor
            ``[B, width * m, Z' / s, Y' / s, X' / s]`` for ``(m, s)`` in ``(1, 1), (2, 2), (4, 4),
            (8, 8)``, where ``Z'``, ``Y'``, ``X'`` are the input sizes zero-padded up to a multiple
            of 8; the last map is the bottleneck.

        Raises
        ------
        ValueError
            If ``x`` is not 5-D with ``input_spec.in_channels`` channels.
        """
        x, _ = self._check(x)
        return self._encode(x)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Return the bottleneck map ``[B, 8 * width, ceil(Z/8), ceil(Y/8), ceil(X/8)]``.

        ``x`` is ``[B, C, Z, Y, X]``, windowed volumes per ``input_spec``.
        """
        return self.stage_outputs(x)[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Encode CT volumes.

        Parameters
        ----------
        x : Tensor [B, C, Z, Y, X]
            Windowed volumes per ``input_spec`` (each channel in [0, 1]).

        Returns
        -------
        Tensor [B, 8 * width]
            Global average of the bottleneck map (``feature_dim``).
        """
        return self.forward_features(x).mean(dim=(2, 3, 4))

    def dense_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Run the whole encoder-decoder and return logits ``[B, out_channels, Z, Y, X]`` (the input's size).

        ``x`` is ``[B, C, Z, Y, X]``; padding to a multiple of 8 is cropped off again.
        """
        x, size = self._check(x)
        skips = self._encode(x)
        y = skips[-1]
        for block, skip in zip(self.decoder, reversed(skips[:-1])):
            y = block(y, skip)
        y = self.head(y)
        return y[:, :, : size[0], : size[1], : size[2]]

    def forward_dense(self, x: torch.Tensor) -> torch.Tensor:
        """Return the sigmoid output of the encoder-decoder ``[B, out_channels, Z, Y, X]`` in [0, 1]."""
        return torch.sigmoid(self.dense_logits(x))
