"""Captum attribution methods on one patient's tensor input (ECG ``[1, L, T]``, CT ``[1, C, Z, Y, X]``).

Thin, uniform wrappers: each takes the scalar function ``f(x) -> [k]`` of
:class:`riskfm.explain.forward.ModalityForward` and returns an attribution of the input's shape.
Modality modules choose the parameters (windows in samples or voxels, baselines, upsampling).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from captum.attr import (
    GradientShap,
    IntegratedGradients,
    LayerAttribution,
    LayerGradCam,
    Occlusion,
    Saliency,
)
from torch import nn

__all__ = ["gradcam", "gradient_shap", "integrated_gradients", "occlusion", "saliency"]

Forward = Callable[[torch.Tensor], torch.Tensor]


def integrated_gradients(f: Forward, x: torch.Tensor, baseline: torch.Tensor, *, n_steps: int = 50,
                         internal_batch_size: int | None = None) -> tuple[torch.Tensor, float]:
    """Compute Integrated Gradients (Sundararajan et al., 2017) from ``baseline`` to ``x``.

    Returns the attribution (shape of ``x``) and Captum's convergence delta: ``sum(attr) -
    (f(x) - f(baseline))``, whose size says whether ``n_steps`` was enough.
    ``internal_batch_size`` bounds how many interpolated inputs run at once (memory for 3D CT).
    """
    ig = IntegratedGradients(f)
    attr, delta = ig.attribute(x, baselines=baseline, n_steps=int(n_steps), internal_batch_size=internal_batch_size,
                               return_convergence_delta=True)
    return attr.detach(), float(delta.detach().abs().max())


def gradient_shap(f: Forward, x: torch.Tensor, baselines: torch.Tensor, *, n_samples: int = 20, stdevs: float = 0.0,
                  seed: int = 0) -> tuple[torch.Tensor, float]:
    """Compute GradientShap (Lundberg and Lee, 2017): expected gradients over a baseline distribution.

    ``baselines`` ``[n, *x.shape[1:]]`` is the reference distribution; ``n_samples`` random
    (baseline, interpolation point) draws, inputs jittered by Gaussian noise of ``stdevs``. The RNG is
    seeded so that the same call gives the same map. Returns the attribution (shape of ``x``) and
    the mean absolute convergence delta.
    """
    # Captum draws the noise from torch and the baselines / path points from numpy's global RNG: seed
    # both, and leave the caller's random state as it was.
    np_state = np.random.get_state()
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            np.random.seed(seed)
            gs = GradientShap(f)
            attr, delta = gs.attribute(x, baselines=baselines, n_samples=int(n_samples), stdevs=float(stdevs),
                                       return_convergence_delta=True)
    finally:
        np.random.set_state(np_state)
    return attr.detach(), float(delta.detach().abs().mean())


def saliency(f: Forward, x: torch.Tensor, *, absolute: bool = True) -> torch.Tensor:
    """Return the input gradient (Simonyan et al., 2014), shape of ``x``; its magnitude when ``absolute``."""
    return Saliency(f).attribute(x.detach().clone().requires_grad_(True), abs=absolute).detach()


def occlusion(f: Forward, x: torch.Tensor, window: tuple[int, ...], stride: tuple[int, ...],
              baseline: float | torch.Tensor = 0.0, perturbations_per_eval: int = 16) -> torch.Tensor:
    """Compute Occlusion (Zeiler and Fergus, 2014), averaged per element.

    Each window's attribution is ``f(x) - f(x with the window set to baseline)``. ``window`` and
    ``stride`` cover ``x.shape[1:]`` (e.g. ``(1, 50)`` = one lead x 50 samples).
    Returns the attribution, shape of ``x``.
    """
    occ = Occlusion(f)
    attr = occ.attribute(x, sliding_window_shapes=tuple(int(w) for w in window),
                         strides=tuple(int(s) for s in stride), baselines=baseline,
                         perturbations_per_eval=int(perturbations_per_eval))
    return attr.detach()


def gradcam(f: Forward, layer: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Compute Grad-CAM (Selvaraju et al., 2017) on ``layer``, upsampled to the input grid.

    The map is ``ReLU(sum_c w_c A_c)`` with ``w_c`` the gradient of the output averaged over the layer's
    positions; it is linearly (1D) or trilinearly (3D) interpolated to ``x.shape[2:]``.

    Returns
    -------
    upsampled : Tensor ``[1, 1, *x.shape[2:]]``
    coarse : Tensor ``[1, 1, *layer positions]`` (the map at the layer's own resolution)
    """
    coarse = LayerGradCam(f, layer).attribute(x, relu_attributions=True).detach()
    if coarse.ndim != x.ndim:
        raise ValueError(f"Grad-CAM layer output has {coarse.ndim - 2} spatial dims but the input has "
                         f"{x.ndim - 2}; choose a layer with a {x.ndim - 2}-D map")
    mode = {1: "linear", 2: "bilinear", 3: "trilinear"}[x.ndim - 2]
    up = LayerAttribution.interpolate(coarse, tuple(x.shape[2:]), interpolate_mode=mode)
    return up.detach(), coarse
