"""ECGFounder's Net1D: a 1-D squeeze-excitation ResNeXt whose parameter names match the released files.

ECGFounder (PKUDigitalHealth, MIT licence) releases ``12_lead_ECGFounder.pth`` and
``1_lead_ECGFounder.pth``: ``torch.save`` dicts holding the network weights under ``"state_dict"``.
This module rebuilds the network with the same module tree, so those files load with
``strict=True``:

* stem: ``first_conv.conv`` (kernel 16, stride 2, "same" padding) -> ``first_bn`` -> Swish;
* ``stage_list.{s}.block_list.{b}``: 7 stages of ``[2, 2, 2, 3, 3, 4, 4]`` bottleneck blocks with
  ``[64, 160, 160, 400, 400, 1024, 1024]`` channels. A block is
  ``bn1 -> Swish -> conv1 (1x1) -> bn2 -> Swish -> conv2 (grouped, k16, 16 channels per group)
  -> bn3 -> Swish -> conv3 (1x1)``, then squeeze-excitation ``se_fc1 -> Swish -> se_fc2 -> sigmoid``
  over the time-mean, plus a shortcut (max-pooled when the block strides, zero-padded channels when
  it widens). The first block of a stage has stride 2.
* time-mean pooling -> 1024 features -> ``dense`` (Linear 1024 -> 150 labels).

The released models were trained with ``use_bn=False`` and ``use_do=False``: the BatchNorm modules
exist (their tensors are in the checkpoint, 509 entries in all) but are skipped in ``forward``. We
keep that default, so logits equal the original network's; pass ``use_bn=True`` only to train a
new model of this shape from scratch.

Shapes: input ``[B, in_channels, T]`` (any ``T``: pooling is global), features ``[B, 1024]``,
pretrained logits ``[B, 150]``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from riskfm.ecg.spec import STANDARD_LEADS, ECGInputSpec

__all__ = [
    "ECGFOUNDER_FILTERS",
    "ECGFOUNDER_BLOCKS",
    "ECGFOUNDER_N_LABELS",
    "ecgfounder_input_spec",
    "Net1D",
    "ECGFounderEncoder",
]

#: Channels of the seven stages of the released ECGFounder models.
ECGFOUNDER_FILTERS: tuple[int, ...] = (64, 160, 160, 400, 400, 1024, 1024)
#: Blocks per stage of the released models.
ECGFOUNDER_BLOCKS: tuple[int, ...] = (2, 2, 2, 3, 3, 4, 4)
#: Number of labels of the released pretrained head (``dense``).
ECGFOUNDER_N_LABELS = 150


def ecgfounder_input_spec(n_leads: int = 12, **overrides: Any) -> ECGInputSpec:
    """Return ECGFounder's reference preprocessing as an :class:`ECGInputSpec`.

    10 s at 500 Hz, leads I, II, III, aVR, aVL, aVF, V1-V6 (lead I alone for the 1-lead model),
    50 Hz notch, 0.67-40 Hz zero-phase band-pass, 0.4 s median baseline removal, then one z-score
    over the whole leads x samples array. ``overrides`` replace fields (e.g. ``notch_hz=60.0`` for
    60 Hz mains, or ``n_samples`` for shorter crops).
    """
    leads = STANDARD_LEADS if n_leads == 12 else ("I",) if n_leads == 1 else None
    if leads is None:
        raise ValueError(f"ecgfounder_input_spec: n_leads must be 12 or 1, got {n_leads!r}")
    fields: dict[str, Any] = dict(
        fs=500.0, n_samples=5000, leads=leads, bandpass_hz=(0.67, 40.0), notch_hz=50.0,
        baseline_median_s=0.4, normalisation="global_zscore", licence="MIT",
        source="ECGFounder (PKUDigitalHealth), github.com/PKUDigitalHealth/ECGFounder",
    )
    fields.update(overrides)
    return ECGInputSpec(**fields)


def _same_padding(length: int, kernel: int, stride: int) -> tuple[int, int]:
    """Return (left, right) zero padding so a conv of ``kernel``/``stride`` outputs ceil(length / stride)."""
    out = (length + stride - 1) // stride
    total = max(0, (out - 1) * stride + kernel - length)
    return total // 2, total - total // 2


class Swish(nn.Module):
    """``x * sigmoid(x)`` (SiLU)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``x * sigmoid(x)``, same shape as ``x``."""
        return x * torch.sigmoid(x)


class MyConv1dPadSame(nn.Module):
    """Conv1d with TensorFlow-style "same" padding (extra pad on the right); weights under ``.conv``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int, groups: int = 1) -> None:
        super().__init__()
        self.kernel_size, self.stride = kernel_size, stride
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, stride=stride, groups=groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``[B, in_channels, T]`` to ``[B, out_channels, ceil(T / stride)]``."""
        return self.conv(F.pad(x, _same_padding(x.shape[-1], self.kernel_size, self.stride)))


class MyMaxPool1dPadSame(nn.Module):
    """Max-pool (window = stride = ``kernel_size``) of the shortcut of a strided block.

    The padding is computed for stride 1 and filled with zeros, as in the released network: with
    ``kernel_size`` 2 it appends one zero, so the output has ceil(T / 2) samples like the conv path.
    """

    def __init__(self, kernel_size: int) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.max_pool = nn.MaxPool1d(kernel_size=kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``[B, C, T]`` to ``[B, C, ceil(T / kernel_size)]`` (ceil(T / 2) for kernel 2)."""
        return self.max_pool(F.pad(x, _same_padding(x.shape[-1], self.kernel_size, 1)))


class BasicBlock(nn.Module):
    """Pre-activation bottleneck block with squeeze-excitation (see the module docstring)."""

    def __init__(self, in_channels: int, out_channels: int, ratio: float, kernel_size: int, stride: int,
                 groups: int, downsample: bool, is_first_block: bool = False, use_bn: bool = False,
                 use_do: bool = False) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.downsample, self.is_first_block = downsample, is_first_block
        self.use_bn, self.use_do = use_bn, use_do
        middle = int(out_channels * ratio)
        self.bn1 = nn.BatchNorm1d(in_channels)
        self.activation1 = Swish()
        self.do1 = nn.Dropout(p=0.5)
        self.conv1 = MyConv1dPadSame(in_channels, middle, kernel_size=1, stride=1)
        self.bn2 = nn.BatchNorm1d(middle)
        self.activation2 = Swish()
        self.do2 = nn.Dropout(p=0.5)
        self.conv2 = MyConv1dPadSame(middle, middle, kernel_size, stride, groups=groups)
        self.bn3 = nn.BatchNorm1d(middle)
        self.activation3 = Swish()
        self.do3 = nn.Dropout(p=0.5)
        self.conv3 = MyConv1dPadSame(middle, out_channels, kernel_size=1, stride=1)
        # Squeeze-excitation with reduction 2.
        self.se_fc1 = nn.Linear(out_channels, out_channels // 2)
        self.se_fc2 = nn.Linear(out_channels // 2, out_channels)
        self.se_activation = Swish()
        if downsample:
            self.max_pool = MyMaxPool1dPadSame(kernel_size=stride)

    def _pre(self, x: torch.Tensor, bn: nn.Module, act: nn.Module, do: nn.Module) -> torch.Tensor:
        if self.use_bn:
            x = bn(x)
        x = act(x)
        return do(x) if self.use_do else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``[B, in_channels, T]`` to ``[B, out_channels, ceil(T / stride)]``."""
        out = x
        if not self.is_first_block:  # the stem already activated the input of the very first block
            out = self._pre(out, self.bn1, self.activation1, self.do1)
        out = self.conv1(out)
        out = self.conv2(self._pre(out, self.bn2, self.activation2, self.do2))
        out = self.conv3(self._pre(out, self.bn3, self.activation3, self.do3))
        gate = torch.sigmoid(self.se_fc2(self.se_activation(self.se_fc1(out.mean(-1)))))
        out = out * gate.unsqueeze(-1)
        identity = self.max_pool(x) if self.downsample else x
        if self.out_channels != self.in_channels:
            # Widening block: the shortcut gets zero channels split evenly before and after.
            extra = self.out_channels - self.in_channels
            identity = F.pad(identity, (0, 0, extra // 2, extra - extra // 2))
        return out + identity


class BasicStage(nn.Module):
    """``m_blocks`` blocks; the first one strides and changes the width (``block_list``)."""

    def __init__(self, in_channels: int, out_channels: int, ratio: float, kernel_size: int, stride: int,
                 groups: int, i_stage: int, m_blocks: int, use_bn: bool = False, use_do: bool = False) -> None:
        super().__init__()
        self.block_list = nn.ModuleList(
            BasicBlock(
                in_channels=in_channels if b == 0 else out_channels, out_channels=out_channels, ratio=ratio,
                kernel_size=kernel_size, stride=stride if b == 0 else 1, groups=groups, downsample=b == 0,
                is_first_block=i_stage == 0 and b == 0, use_bn=use_bn, use_do=use_do,
            )
            for b in range(m_blocks)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``[B, in_channels, T]`` to ``[B, out_channels, ceil(T / stride)]``."""
        for block in self.block_list:
            x = block(x)
        return x


class Net1D(nn.Module):
    """The Net1D network with ECGFounder's names (``first_conv``, ``stage_list``, ``dense`` ...).

    Parameters
    ----------
    in_channels : int
        Input leads (12 or 1 for the released models).
    base_filters : int
        Stem width (64).
    ratio : float
        Bottleneck width / output width (1.0).
    filter_list, m_blocks_list : sequence of int
        Channels and blocks per stage.
    kernel_size, stride : int
        Kernel of the stem and of every grouped conv (16); stride of each stage's first block (2).
    groups_width : int
        Channels per group of the grouped convs (16).
    n_classes : int or None
        Width of the ``dense`` head; None builds no head (``forward`` then returns features).
    use_bn, use_do : bool
        Apply BatchNorm / dropout (both False in the released models).
    """

    def __init__(self, in_channels: int = 12, base_filters: int = 64, ratio: float = 1.0,
                 filter_list: Sequence[int] = ECGFOUNDER_FILTERS, m_blocks_list: Sequence[int] = ECGFOUNDER_BLOCKS,
                 kernel_size: int = 16, stride: int = 2, groups_width: int = 16,
                 n_classes: int | None = ECGFOUNDER_N_LABELS, use_bn: bool = False, use_do: bool = False) -> None:
        super().__init__()
        if len(filter_list) != len(m_blocks_list):
            raise ValueError(f"Net1D: filter_list {list(filter_list)} and m_blocks_list {list(m_blocks_list)} "
                             "must have one entry per stage")
        bad = [f for f in filter_list if f % groups_width]
        if bad:
            raise ValueError(f"Net1D: stage widths {bad} are not multiples of groups_width={groups_width}")
        self.use_bn = use_bn
        self.first_conv = MyConv1dPadSame(in_channels, base_filters, kernel_size, stride=2)
        self.first_bn = nn.BatchNorm1d(base_filters)
        self.first_activation = Swish()
        self.stage_list = nn.ModuleList()
        width = base_filters
        for i, (out, blocks) in enumerate(zip(filter_list, m_blocks_list)):
            self.stage_list.append(BasicStage(width, out, ratio, kernel_size, stride, out // groups_width, i, blocks,
                                              use_bn=use_bn, use_do=use_do))
            width = out
        self.n_features = width
        self.dense = nn.Linear(width, n_classes) if n_classes else None

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Return the time-mean pooled features ``[B, filter_list[-1]]`` of an input ``[B, in_channels, T]``.

        Raises
        ------
        ValueError
            If ``x`` is not ``[B, in_channels, T]``.
        """
        n_in = self.first_conv.conv.in_channels
        if x.ndim != 3 or x.shape[1] != n_in:
            raise ValueError(f"Net1D expects input [B, {n_in}, T] (leads in input_spec order); got {tuple(x.shape)}")
        out = self.first_conv(x)
        if self.use_bn:
            out = self.first_bn(out)
        out = self.first_activation(out)
        for stage in self.stage_list:
            out = stage(out)
        return out.mean(-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Run the network.

        Parameters
        ----------
        x : Tensor [B, in_channels, T]
            Preprocessed ECG (any ``T``; ECGFounder's recipe: 500 Hz, z-scored, T = 5000).

        Returns
        -------
        Tensor
            Logits ``[B, n_classes]`` when the ``dense`` head exists, else pooled features
            ``[B, filter_list[-1]]``.
        """
        feats = self.features(x)
        return feats if self.dense is None else self.dense(feats)


class ECGFounderEncoder(Net1D):
    """Net1D as a riskfm ECG encoder: ``forward(x) -> [B, 1024]`` pooled features.

    The module tree is exactly Net1D's, so a released checkpoint loads into it with ``strict=True``
    when ``keep_pretrained_head=True``; without it the 150-way ``dense`` head is not built (use
    :meth:`adapt_checkpoint` or :func:`load_ecgfounder` to load a released file then).

    Parameters
    ----------
    n_leads : {12, 1}
        Input leads; 1 means lead I (the 1-lead model).
    keep_pretrained_head : bool
        Keep ``dense`` (150 labels, in the checkpoint's label order) for :meth:`pretrained_logits`.
    input_spec : ECGInputSpec, optional
        Preprocessing; ECGFounder's reference recipe (:func:`ecgfounder_input_spec`) by default.
    width_multiplier : float
        Scales every stage width (rounded to a multiple of 16): 1.0 is the released model; small
        values give a structurally identical model for tests and CPU experiments.
    **net_kwargs
        Other :class:`Net1D` arguments (``use_bn``, ``filter_list`` ...).

    Attributes
    ----------
    modality : str
        ``"ecg"``.
    feature_dim : int
        1024 for the released widths.
    gradcam_layer : nn.Module
        The last stage (temporal map before pooling).
    finetune_recipe : dict
        ECGFounder's fine-tuning defaults (``lr`` 1e-4, ``weight_decay`` 1e-5, ``scheduler``
        ``"plateau"``), applied by ``riskfm train`` unless the config says otherwise.
    """

    modality = "ecg"
    finetune_recipe: Mapping[str, Any] = {"lr": 1e-4, "weight_decay": 1e-5, "scheduler": "plateau"}

    def __init__(self, n_leads: int = 12, keep_pretrained_head: bool = False, input_spec: ECGInputSpec | None = None,
                 width_multiplier: float = 1.0, **net_kwargs: Any) -> None:
        if n_leads not in (12, 1):
            raise ValueError(f"ECGFounder: n_leads must be 12 or 1, got {n_leads!r}")
        if width_multiplier != 1.0 and "filter_list" not in net_kwargs:
            net_kwargs["filter_list"] = tuple(max(16, int(round(f * width_multiplier / 16)) * 16)
                                              for f in ECGFOUNDER_FILTERS)
            net_kwargs.setdefault("base_filters", net_kwargs["filter_list"][0])
        n_classes = net_kwargs.pop("n_classes", ECGFOUNDER_N_LABELS)
        super().__init__(in_channels=n_leads, n_classes=n_classes if keep_pretrained_head else None, **net_kwargs)
        self.n_pretrained_labels = n_classes
        self.input_spec = input_spec if input_spec is not None else ecgfounder_input_spec(n_leads)
        if len(self.input_spec.leads) != n_leads:
            raise ValueError(f"ECGFounder: input_spec has {len(self.input_spec.leads)} leads but the model "
                             f"takes {n_leads}")
        self.feature_dim = int(self.n_features)

    @property
    def gradcam_layer(self) -> nn.Module:
        """The last stage (a property, so it adds no second name to the state dict)."""
        return self.stage_list[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Encode ECGs.

        Parameters
        ----------
        x : Tensor [B, n_leads, T]
            ECG preprocessed by ``input_spec`` (default: 500 Hz, T = 5000, band-passed and z-scored
            over the whole leads x samples array, so unitless rather than mV).

        Returns
        -------
        Tensor [B, feature_dim]
            Time-mean pooled features (1024 for the released widths); the pretrained head is not applied.
        """
        return self.features(x)

    def pretrained_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Return the released head's logits ``[B, 150]`` (checkpoint label order) for ``[B, n_leads, T]``.

        Raises
        ------
        RuntimeError
            If the encoder was built without ``keep_pretrained_head=True``.
        """
        if self.dense is None:
            raise RuntimeError("pretrained_logits needs the 150-way head: create the encoder with "
                               "keep_pretrained_head=True")
        return self.dense(self.features(x))

    def layer_groups(self) -> list[list[nn.Module]]:
        """Return module groups from input to output, ``[stem, stage 0, ..., stage 6]`` (LLRD, partial FT).

        The pretrained head is not part of any group: riskfm trains its own heads.
        """
        return [[self.first_conv, self.first_bn], *[[stage] for stage in self.stage_list]]

    def adapt_checkpoint(self, state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Drop the released ``dense.*`` head when this encoder was built without it.

        The head tensors are checked against the released shape first, so a checkpoint of another
        architecture is not silently accepted.
        """
        out = dict(state_dict)
        if self.dense is None:
            for key in ("dense.weight", "dense.bias"):
                value = out.pop(key, None)
                if value is not None and value.shape[-1 if key.endswith("weight") else 0] not in (
                        self.feature_dim, self.n_pretrained_labels):
                    raise ValueError(f"checkpoint tensor {key} has shape {tuple(value.shape)}; expected a "
                                     f"head on {self.feature_dim} features")
        return out


def load_ecgfounder(path: str | os.PathLike, *, n_leads: int = 12, keep_pretrained_head: bool = False,
                    weights_only: bool = True, **kwargs: Any) -> ECGFounderEncoder:
    """Build an ECGFounder encoder and load a released (or riskfm-saved) checkpoint strictly.

    Accepts the released layout (``{"state_dict": ...}``), a bare state dict and ``module.`` /
    ``_orig_mod.`` prefixes. With ``keep_pretrained_head=False`` the 150-way head in the file is
    dropped after its shape is checked; every other tensor must match by name and shape.

    Parameters
    ----------
    path : str or PathLike
        Local ``.pth`` / ``.safetensors`` file.
    n_leads : {12, 1}
    keep_pretrained_head : bool
    weights_only : bool, default True
        Safe unpickling; ``False`` is an explicit opt-in for trusted legacy pickles.
    **kwargs
        Passed to :class:`ECGFounderEncoder` (e.g. ``input_spec``).

    Raises
    ------
    FileNotFoundError, riskfm.encoders.CheckpointError
        Missing file; content that is not a state dict, or keys / shapes that do not match.
    """
    from riskfm.encoders import _load_into, load_checkpoint_state_dict

    model = ECGFounderEncoder(n_leads=n_leads, keep_pretrained_head=keep_pretrained_head, **kwargs)
    state_dict = model.adapt_checkpoint(load_checkpoint_state_dict(path, weights_only=weights_only))
    _load_into(model, state_dict, strict=True, source=f"{os.fspath(path)} -> ECGFounder {n_leads}-lead")
    return model
