"""ECG attributions for one patient: Integrated Gradients, GradientShap, Occlusion, Saliency, 1D Grad-CAM.

Every method returns a map ``[leads, T]`` aligned with the encoder's input (raw window or median
beat). Baselines (what "no ECG evidence" means) default to the isoelectric line: zero in mV, and
zero is also the mean of a z-scored record, which after baseline removal is the isoelectric level.

* ``integrated_gradients``: path integral from the flat line; completeness holds on the logit.
* ``gradient_shap``: expected gradients over a reference distribution. Pass ``baselines``
  ``[n, leads, T]`` (ECGs of other patients, the best reference) or get the flat line with small
  Gaussian jitter (5% of the record's standard deviation).
* ``occlusion``: one lead x ``window_s`` seconds at a time set to zero (lead x time windows), moved
  by ``stride_s``; windows default to 0.2 s (a QRS complex plus ST onset) on raw records and 0.04 s
  on median beats.
* ``saliency``: |gradient|, the cheapest map and the noisiest.
* ``gradcam``: Grad-CAM on ``encoder.gradcam_layer`` (the last stage), a time map shared by all
  leads, linearly upsampled to the input length.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from riskfm.explain import methods
from riskfm.explain.forward import ModalityForward

__all__ = ["ECG_METHODS", "attribute_ecg"]

ECG_METHODS: tuple[str, ...] = ("integrated_gradients", "gradient_shap", "occlusion", "saliency", "gradcam")


def _baseline(x: torch.Tensor, baselines: Any) -> torch.Tensor:
    if baselines is None or (isinstance(baselines, str) and baselines == "zeros"):
        return torch.zeros_like(x)
    b = torch.as_tensor(baselines, dtype=x.dtype, device=x.device)
    if b.ndim == x.ndim - 1:
        b = b.unsqueeze(0)
    if tuple(b.shape[1:]) != tuple(x.shape[1:]):
        raise ValueError(f"ECG baselines must have shape [n, {x.shape[1]}, {x.shape[2]}] (leads x samples of the "
                         f"encoder input), got {tuple(b.shape)}")
    return b


def attribute_ecg(f: ModalityForward, x: torch.Tensor, method: str, *, fs: float, median_beat: bool = False,
                  baselines: Any = None, n_steps: int = 50, internal_batch_size: int | None = None,
                  n_samples: int = 20, stdevs: float | None = None, window_s: float | None = None,
                  stride_s: float | None = None, seed: int = 0) -> tuple[np.ndarray, dict[str, Any]]:
    """Attribute one patient's ECG ``x`` ``[1, leads, T]`` with ``method``.

    Parameters
    ----------
    f : the model as a function of the ECG (see :class:`ModalityForward`).
    fs : sampling rate of ``x`` in Hz (windows are given in seconds).
    median_beat : ``x`` is a median beat (shorter default occlusion windows).
    baselines : None / "zeros" (flat line), or a tensor ``[leads, T]`` / ``[n, leads, T]``
        (GradientShap uses all ``n``; the other methods the first).
    n_steps, internal_batch_size : Integrated Gradients' steps and how many run at once.
    n_samples, stdevs : GradientShap draws and input jitter (default 5% of the record's std).
    window_s, stride_s : occlusion window and stride in seconds.

    Returns
    -------
    values : float32 ``[leads, T]``
    meta : ``delta`` (IG / GradientShap convergence), ``shared_over_leads`` (Grad-CAM), window sizes,
        ``coarse`` (Grad-CAM at the layer's resolution).
    """
    meta: dict[str, Any] = {}
    if method == "integrated_gradients":
        attr, meta["delta"] = methods.integrated_gradients(f, x, _baseline(x, baselines)[:1], n_steps=n_steps,
                                                           internal_batch_size=internal_batch_size)
    elif method == "gradient_shap":
        if baselines is None or isinstance(baselines, str):
            gen = torch.Generator().manual_seed(seed)
            scale = 0.05 * float(x.std())
            base = scale * torch.randn((8, *x.shape[1:]), generator=gen).to(x)
        else:
            base = _baseline(x, baselines)
        jitter = 0.05 * float(x.std()) if stdevs is None else float(stdevs)
        attr, meta["delta"] = methods.gradient_shap(f, x, base, n_samples=n_samples, stdevs=jitter, seed=seed)
    elif method == "occlusion":
        window_s = window_s if window_s is not None else (0.04 if median_beat else 0.2)
        stride_s = stride_s if stride_s is not None else window_s / 2
        win = max(1, min(x.shape[-1], int(round(window_s * fs))))
        stride = max(1, int(round(stride_s * fs)))
        base = _baseline(x, baselines)[:1]
        attr = methods.occlusion(f, x, (1, win), (1, stride), baseline=base)
        meta.update(window_samples=win, stride_samples=stride)
    elif method == "saliency":
        attr = methods.saliency(f, x)
    elif method == "gradcam":
        layer = getattr(f.model.encoders[f.modality], "gradcam_layer", None)
        if layer is None:
            enc = f.model.encoders[f.modality]
            raise ValueError(f"{type(enc).__name__} exposes no gradcam_layer (no temporal feature map); "
                             "use integrated_gradients, gradient_shap, occlusion or saliency")
        up, coarse = methods.gradcam(f, layer, x)
        attr = up.expand(-1, x.shape[1], -1)
        meta.update(shared_over_leads=True, coarse=coarse[0, 0].cpu().numpy())
    else:
        raise ValueError(f"unknown ECG method {method!r}; choose from {ECG_METHODS}")
    return attr[0].float().cpu().numpy(), meta
