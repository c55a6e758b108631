"""CT attributions for one patient: 3D Grad-CAM, 3D Occlusion, Integrated Gradients (and Saliency).

The input is the encoder's multi-window volume ``[1, C, Z, Y, X]`` (each channel an HU window in
[0, 1]). Maps keep that shape; :meth:`riskfm.explain.CTAttribution.voxel_map` sums the channels.

* ``gradcam`` (default, as CORA shows): Captum ``LayerGradCam`` on ``encoder.gradcam_layer`` (the last
  stage), trilinearly upsampled to the input grid; one map shared by all channels.
* ``occlusion``: a cube of ``window`` voxels (all channels together) set to the baseline, moved by
  ``stride`` voxels; default 8-voxel cubes with stride 4 (12-16 mm on the default grid, the size of a
  coronary segment with its plaque).
* ``integrated_gradients``: from a baseline to the input, with ``internal_batch_size`` interpolated
  volumes at a time (memory grows with it). The default baseline is the scan blurred by a Gaussian of
  ``blur_mm`` (6 mm): it keeps the intensities and removes the fine structure (vessel walls,
  plaques) the map should find. An all-zero volume is the textbook choice but fails for the
  instance-normalised 3D CNNs riskfm uses (cnn3d-small, CORA's U-Net): they are invariant to the
  input's scale, so the model's output is constant along the straight path from 0 to x except at 0
  itself, and IG's attributions would not add up to f(x) - f(0). ``baselines="zeros"`` still gives it.
* ``saliency``: |gradient|.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from riskfm.explain import methods
from riskfm.explain.forward import ModalityForward

__all__ = ["CT_METHODS", "attribute_ct"]

CT_METHODS: tuple[str, ...] = ("gradcam", "occlusion", "integrated_gradients", "saliency")


def _voxels(value: int | tuple[int, int, int], name: str) -> tuple[int, int, int]:
    v = (value,) * 3 if isinstance(value, (int, np.integer)) else tuple(int(s) for s in value)
    if len(v) != 3 or min(v) < 1:
        raise ValueError(f"CT {name} must be a positive int or three positive ints (z, y, x) in voxels, "
                         f"got {value!r}")
    return v  # type: ignore[return-value]


def blurred(x: torch.Tensor, sigma_mm: float, spacing: tuple[float, float, float]) -> torch.Tensor:
    """Return ``x`` ``[1, C, Z, Y, X]`` smoothed per channel by a Gaussian of ``sigma_mm``.

    ``spacing`` is the voxel size (z, y, x) in mm.
    """
    from scipy.ndimage import gaussian_filter

    sigma = [0.0] + [sigma_mm / float(s) for s in spacing]
    arr = x[0].detach().cpu().numpy()
    return torch.as_tensor(gaussian_filter(arr, sigma=sigma, mode="nearest"), dtype=x.dtype, device=x.device)[None]


def attribute_ct(f: ModalityForward, x: torch.Tensor, method: str, *, baselines: Any = None, n_steps: int = 32,
                 internal_batch_size: int | None = 4, window: int | tuple[int, int, int] = 8,
                 stride: int | tuple[int, int, int] = 4, perturbations_per_eval: int = 8,
                 spacing: tuple[float, float, float] = (1.0, 1.0, 1.0), blur_mm: float = 6.0
                 ) -> tuple[np.ndarray, dict[str, Any]]:
    """Attribute one patient's CT ``x`` ``[1, C, Z, Y, X]`` with ``method``.

    Parameters
    ----------
    baselines : None (IG: the blurred scan; occlusion: 0), ``"zeros"``, ``"blur"`` or a tensor of
        the input's shape.
    n_steps, internal_batch_size : IG steps and how many interpolated volumes run at once.
    window, stride : occlusion cube and step in voxels.
    spacing, blur_mm : voxel spacing (z, y, x) mm and the Gaussian sigma of the blurred baseline.

    Returns
    -------
    values : float32 ``[C, Z, Y, X]``
    meta : ``delta`` (IG), ``shared_over_channels`` and ``coarse`` (Grad-CAM), window / stride (occlusion).
    """
    meta: dict[str, Any] = {}
    if baselines is None:
        baselines = "blur" if method == "integrated_gradients" else "zeros"
    if isinstance(baselines, str):
        if baselines not in ("zeros", "blur"):
            raise ValueError(f"CT baselines must be 'zeros', 'blur' or a tensor, got {baselines!r}")
        base = torch.zeros_like(x) if baselines == "zeros" else blurred(x, blur_mm, spacing)
        meta["baseline"] = baselines
    else:
        base = torch.as_tensor(baselines, dtype=x.dtype, device=x.device)
        base = base.unsqueeze(0) if base.ndim == x.ndim - 1 else base
        if tuple(base.shape[1:]) != tuple(x.shape[1:]):
            raise ValueError(f"CT baselines must have the input's shape {tuple(x.shape[1:])}, "
                             f"got {tuple(base.shape)}")
        base = base[:1]
    if method == "gradcam":
        layer = getattr(f.model.encoders[f.modality], "gradcam_layer", None)
        if layer is None:
            raise ValueError(f"{type(f.model.encoders[f.modality]).__name__} exposes no gradcam_layer; use "
                             "occlusion or integrated_gradients")
        up, coarse = methods.gradcam(f, layer, x)
        attr = up.expand(-1, x.shape[1], -1, -1, -1)
        meta.update(shared_over_channels=True, coarse=coarse[0, 0].cpu().numpy())
    elif method == "occlusion":
        win, st = _voxels(window, "window"), _voxels(stride, "stride")
        attr = methods.occlusion(f, x, (x.shape[1], *win), (x.shape[1], *st), baseline=base,
                                 perturbations_per_eval=perturbations_per_eval)
        meta.update(window_voxels=win, stride_voxels=st)
    elif method == "integrated_gradients":
        attr, meta["delta"] = methods.integrated_gradients(f, x, base, n_steps=n_steps,
                                                           internal_batch_size=internal_batch_size)
    elif method == "saliency":
        attr = methods.saliency(f, x)
    else:
        raise ValueError(f"unknown CT method {method!r}; choose from {CT_METHODS}")
    return attr[0].float().cpu().numpy(), meta
