"""The CAC "foundation-model fine-tune": CORA's 3D residual U-Net with a five-channel calcium head.

Seed 000 asks whether a segmentation model started from a CT foundation model beats a U-Net trained
from scratch, most of all when labelled exams are few. riskfm's CT foundation model is CORA
(:mod:`riskfm.ct.cora`, pretrained by ``riskfm pretrain-ct``), so the 3D calcium network is CORA's
encoder-decoder whose output head has the calcium contract of :mod:`.segmentation` (``[B, 5, Z, Y,
X]`` logits: calcium, then LM / LAD / LCX / RCA given calcium). Only the encoder stages come from the
checkpoint: the pretraining decoder answered a different question (synthetic plaque yes / no), and
a new decoder with a focal-loss prior (``reset_decoder``) keeps the first steps from flooding every
bright voxel with "calcium".

Input: CORA's four HU windows on the whole exam (``[B, 4, Z, Y, X]``); any grid works (padded to a
multiple of 8 inside the network). The network sees the whole exam at once, so it has the context a
slice-wise U-Net lacks: which tube a bright spot sits on (coronary in epicardial fat, aortic wall,
valve inside the blood pool) is a question about tens of millimetres around it.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from riskfm.ct.cora import CoraResUNet, cora_input_spec

__all__ = ["CalciumCora3d"]


class CalciumCora3d(nn.Module):
    """CORA residual U-Net with the calcium head: ``[B, 4, Z, Y, X]`` -> ``[B, 5, Z, Y, X]`` logits.

    Parameters
    ----------
    width : int, default 8
        CORA stage-1 channels (stages ``width * (1, 2, 4, 8)``; the paper's 32 for real use). Must
        equal the checkpoint's width when ``encoder_checkpoint`` is given.
    encoder_checkpoint : str or Path, optional
        ``cora_pretrained.pt`` from ``riskfm pretrain-ct`` (or any state dict of a ``cora-resunet``):
        its four encoder stages initialise this network's. Loaded with ``weights_only``.
    weights_only : bool, default True
        Passed to ``torch.load``; ``False`` only for trusted legacy pickles.

    Attributes
    ----------
    net : CoraResUNet
        The network (``out_channels=5``).
    encoder_init : str
        ``"random"`` or the checkpoint path the encoder started from.
    """

    kind = "cora3d"

    def __init__(self, width: int = 8, encoder_checkpoint: str | Path | None = None, *,
                 weights_only: bool = True) -> None:
        super().__init__()
        self.in_channels = 4
        self.net = CoraResUNet(width=int(width), out_channels=5, input_spec=cora_input_spec())
        self.encoder_init = "random"
        if encoder_checkpoint is not None:
            self.load_encoder(encoder_checkpoint, weights_only=weights_only)

    def load_encoder(self, path: str | Path, *, weights_only: bool = True) -> None:
        """Copy the four encoder stages of a pretrained ``cora-resunet`` checkpoint into this network.

        Parameters
        ----------
        path : str or Path
            Checkpoint holding a ``cora-resunet`` state dict under any prefix.
        weights_only : bool, default True
            Passed to ``torch.load``.

        Raises
        ------
        CheckpointError
            When the checkpoint has no CORA encoder, or one of another width.
        """
        from riskfm.encoders import CheckpointError, encoder_entries

        found = encoder_entries(path, "stages.0.0.conv1.conv.weight", what="CORA encoder stages",
                                hint="a cora-resunet checkpoint (riskfm pretrain-ct)", weights_only=weights_only)
        stages = {k[len("stages."):]: v for k, v in found.items() if k.startswith("stages.")}
        own = self.net.stages.state_dict()
        missing = sorted(set(own) - set(stages))
        if missing:
            raise CheckpointError(f"{path}: checkpoint lacks {len(missing)} encoder entries, e.g. {missing[:3]} "
                                  f"(was it pretrained at another width? this network has width {self.net.width})")
        wrong = [k for k in own if tuple(stages[k].shape) != tuple(own[k].shape)]
        if wrong:
            raise CheckpointError(f"{path}: encoder weights do not fit this width ({self.net.width}): "
                                  f"{wrong[0]} is {tuple(stages[wrong[0]].shape)} in the checkpoint, "
                                  f"{tuple(own[wrong[0]].shape)} here; pass the checkpoint's width")
        self.net.stages.load_state_dict({k: stages[k] for k in own})
        self.encoder_init = str(path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the calcium logits of whole exams.

        Parameters
        ----------
        x : Tensor [B, 4, Z, Y, X]
            The exam in CORA's four HU windows (:data:`riskfm.ct.spec.CORA_WINDOWS`), each channel
            scaled to [0, 1]; any ``Z, Y, X`` (zero-padded to a multiple of 8 inside the network).

        Returns
        -------
        Tensor [B, 5, Z, Y, X]
            Unnormalised logits at the input's size (padding cropped off): channel 0 calcium, channels
            1-4 LM / LAD / LCX / RCA given calcium.

        Raises
        ------
        ValueError
            When ``x`` is not 5-D with 4 channels.
        """
        return self.net.dense_logits(x)
