"""Exponential moving average of a model's trainable weights (and its buffers).

``torch.optim.swa_utils.AveragedModel`` averages every parameter, including frozen encoders such
as a 22M-parameter language model whose weights never change; here only parameters that train are
averaged (frozen ones are copied once and never touched), so an EMA step costs what the trainable
part costs.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class ModelEMA:
    """Keeps ``module``, a copy of ``model`` whose trainable weights track ``decay``-weighted averages.

    ``update(model)`` after each optimizer step: ``w_ema = decay * w_ema + (1 - decay) * w``;
    floating-point buffers (batch-norm statistics) are copied from the live model.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.module = copy.deepcopy(model)
        self.module.eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self._pairs = [(e, p) for e, p in zip(self.module.parameters(), model.parameters()) if p.requires_grad]

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the averaged weights towards ``model``'s and copy its floating-point buffers."""
        if self._pairs:
            ema_params = [e for e, _ in self._pairs]
            torch._foreach_lerp_(ema_params, [p.detach() for _, p in self._pairs], 1.0 - self.decay)
        for e, b in zip(self.module.buffers(), model.buffers()):
            if b.dtype.is_floating_point:
                e.copy_(b)
