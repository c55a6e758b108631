"""A small 3D CNN over multi-window coronary CT: the from-scratch baseline for CT encoders.

Registered as ``cnn3d-small``. Input ``[B, C, Z, Y, X]``: one channel per HU window of the input spec
(CORA's four windows, each scaled to [0, 1]) on the spec's grid (default 40 x 64 x 64 voxels at
2.0 x 1.5 x 1.5 mm).

Every conv block is 3x3x3 conv (stride 2) -> InstanceNorm (or BatchNorm) -> LeakyReLU; four blocks
halve the grid four times (40 x 64 x 64 -> 3 x 4 x 4, sizes rounded up). Each block downsamples
because a CT volume is large: full-resolution convolutions would cost ~10x more and this baseline
must train on a CPU.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from riskfm.ct.spec import CTInputSpec
from riskfm.encoders import register_encoder

__all__ = ["CNN3d", "ConvBlock3d"]


class ConvBlock3d(nn.Module):
    """3x3x3 convolution -> InstanceNorm3d / BatchNorm3d -> LeakyReLU(0.01).

    Parameters
    ----------
    in_ch, out_ch : int
        Channels in and out.
    stride : int
        Stride of the convolution along z, y and x.
    norm : {"instance", "batch"}
        InstanceNorm (affine) suits the small batches of CT training; BatchNorm is offered for
        large-batch runs.
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int = 2, norm: str = "instance") -> None:
        super().__init__()
        self.conv = nn.Conv3d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)
        if norm == "instance":
            self.norm: nn.Module = nn.InstanceNorm3d(out_ch, affine=True)
        elif norm == "batch":
            self.norm = nn.BatchNorm3d(out_ch)
        else:
            raise ValueError(f"ConvBlock3d: norm must be 'instance' or 'batch', got {norm!r}")
        # Not in place: attribution hooks (Captum) need the activation's input intact.
        self.act = nn.LeakyReLU(0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply conv -> norm -> LeakyReLU.

        Parameters
        ----------
        x : Tensor [B, in_ch, Z, Y, X]

        Returns
        -------
        Tensor [B, out_ch, ceil(Z / stride), ceil(Y / stride), ceil(X / stride)]
        """
        return self.act(self.norm(self.conv(x)))


@register_encoder(
    "cnn3d-small",
    modality="ct",
    licence="MIT",
    source="riskfm (trained from scratch; no pretrained weights)",
    description="Small 3D CNN over multi-window CT (16-96 channels) with coarse-grid + max pooling",
)
class CNN3d(nn.Module):
    """Small 3D CNN CT encoder.

    Parameters
    ----------
    widths : sequence of int, default (16, 32, 64, 96)
        Channels of the conv blocks; each block halves the grid.
    feature_dim : int, default 128
        Output width ``D``.
    grid : (int, int, int), default (2, 2, 2)
        Coarse (z, y, x) grid of the average-pooling branch.
    norm : {"instance", "batch"}, default "instance"
    input_spec : CTInputSpec, optional
        Default ``CTInputSpec()``: spacing (2.0, 1.5, 1.5) mm, shape (40, 64, 64), CORA's 4 windows.
        The number of input channels is ``input_spec.in_channels``.

    Attributes
    ----------
    modality : str
        ``"ct"``.
    feature_dim : int
    input_spec : CTInputSpec
    gradcam_layer : nn.Module
        The last conv block; its output ``[B, widths[-1], ceil(Z/16), ceil(Y/16), ceil(X/16)]`` (four
        blocks) is the map for Grad-CAM.

    Examples
    --------
    >>> enc = CNN3d()
    >>> enc(torch.rand(2, 4, 32, 64, 64)).shape
    torch.Size([2, 128])
    """

    modality = "ct"

    @staticmethod
    def default_input_spec(**_: Any) -> CTInputSpec:
        """Return the spec used without an ``input_spec`` keyword (40 x 64 x 64 at 2.0 x 1.5 x 1.5 mm)."""
        return CTInputSpec()

    def __init__(
        self,
        widths: Sequence[int] = (16, 32, 64, 96),
        feature_dim: int = 128,
        grid: Sequence[int] = (2, 2, 2),
        norm: str = "instance",
        input_spec: CTInputSpec | None = None,
    ) -> None:
        super().__init__()
        spec = input_spec if input_spec is not None else self.default_input_spec()
        widths = tuple(int(w) for w in widths)
        grid = tuple(int(g) for g in grid)
        if not widths or min(widths) < 1:
            raise ValueError(f"CNN3d: widths must be positive, got {widths}")
        if len(grid) != 3 or min(grid) < 1:
            raise ValueError(f"CNN3d: grid must be 3 positive ints (z, y, x), got {grid}")
        if feature_dim < 1:
            raise ValueError(f"CNN3d: feature_dim must be positive, got {feature_dim}")
        if spec.in_channels < 1:
            raise ValueError("CNN3d: input_spec.windows is empty; at least one HU window is needed")
        # Each block halves the grid; an axis shorter than 2**n_blocks voxels would be reduced to
        # padding before the last block (the coarse grid then only repeats one voxel).
        factor = 2 ** len(widths)
        if min(spec.shape) < factor:
            raise ValueError(
                f"CNN3d: input_spec.shape {spec.shape} is too small for {len(widths)} stride-2 blocks: "
                f"each axis needs at least {factor} voxels"
            )

        self.in_channels = spec.in_channels
        self.feature_dim = int(feature_dim)
        self.input_spec = spec
        self.grid = grid

        blocks = []
        in_ch = spec.in_channels
        for width in widths:
            blocks.append(ConvBlock3d(in_ch, width, stride=2, norm=norm))
            in_ch = width
        self.blocks = nn.Sequential(*blocks)
        # Why a coarse grid and not only global pooling: a 2x2x2 average grid keeps WHERE in the heart
        # a finding sits (right vs left, base vs apex: roughly the RCA, LAD and LCX territories), which
        # per-artery stenosis heads need; global average pooling would throw that away. The global max
        # branch keeps small strong findings (a calcified plaque a few voxels wide) that averaging
        # over a whole grid cell would dilute.
        self.grid_pool = nn.AdaptiveAvgPool3d(grid)
        self.fc = nn.Linear(in_ch * (grid[0] * grid[1] * grid[2] + 1), self.feature_dim)

        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, a=0.01, mode="fan_out", nonlinearity="leaky_relu")

    @property
    def gradcam_layer(self) -> nn.Module:
        """The last conv block (its output ``[B, widths[-1], Z', Y', X']`` is the map for Grad-CAM)."""
        return self.blocks[-1]

    def layer_groups(self) -> list[list[nn.Module]]:
        """Return module groups from input to output, ``[block 0, ..., projection]`` (partial FT, LLRD)."""
        return [*[[block] for block in self.blocks], [self.fc]]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Return the feature map before pooling.

        Parameters
        ----------
        x : Tensor [B, C, Z, Y, X]
            Windowed volumes per ``input_spec``.

        Returns
        -------
        Tensor [B, widths[-1], Z', Y', X']
            Each axis ``ceil(n / 2 ** len(widths))``: ``Z/16, Y/16, X/16`` with the default four blocks.

        Raises
        ------
        ValueError
            If ``x`` is not 5-D with ``input_spec.in_channels`` channels.
        """
        if x.ndim != 5 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"CNN3d expects [B, {self.in_channels}, Z, Y, X] (one channel per HU window of the input "
                f"spec), got shape {tuple(x.shape)}"
            )
        return self.blocks(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Encode CT volumes.

        Parameters
        ----------
        x : Tensor [B, C, Z, Y, X]
            Windowed volumes per ``input_spec`` (each channel in [0, 1]).

        Returns
        -------
        Tensor [B, feature_dim]
        """
        fmap = self.forward_features(x)
        coarse = self.grid_pool(fmap).flatten(1)
        peak = fmap.amax(dim=(2, 3, 4))
        return self.fc(torch.cat([coarse, peak], dim=1))
