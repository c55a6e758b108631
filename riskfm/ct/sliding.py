"""Whole-volume inference with a patch network: MONAI sliding windows with Gaussian blending.

A network trained on patches (CORA: 64^3 or 96^3) sees a whole CT in overlapping windows; where
windows overlap their outputs are averaged with a Gaussian weight centred on each window (sigma =
``sigma_scale`` x window size), so voxels near a window's edge - where the network saw the least
context - count least, and no seams appear. :func:`sliding_window_predict` wraps
``monai.inferers.sliding_window_inference``; :func:`predict_volume` adds resampling to the
model's spacing, the HU windows, and (optionally) resampling back to the input grid.

Both take ``progress``: a bar over the windows on stderr (:mod:`riskfm.progress`; silent under
``riskfm --quiet``), worth it for a whole CT at a fine spacing (hundreds of windows).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from riskfm.ct.volume import CTVolume

__all__ = ["count_windows", "predict_volume", "sliding_window_predict"]


def count_windows(shape: Sequence[int], roi_size: Sequence[int], overlap: float = 0.5) -> int:
    """Return the number of windows :func:`sliding_window_predict` runs over a volume of spatial ``shape``.

    Same rule as MONAI: the volume is padded up to the window, windows step by
    ``int(roi * (1 - overlap))`` (at least 1; a whole window where the volume is exactly one window)
    and the last window of each axis is moved back to end at the border.
    """
    from monai.data.utils import dense_patch_slices

    size = tuple(max(int(s), int(r)) for s, r in zip(shape, roi_size))
    roi = tuple(int(r) for r in roi_size)
    interval = tuple(r if r == s else max(1, int(r * (1 - overlap))) for s, r in zip(size, roi))
    return len(dense_patch_slices(size, roi, interval))


def sliding_window_predict(
    image: np.ndarray | torch.Tensor,
    predictor: Callable[[torch.Tensor], torch.Tensor],
    roi_size: Sequence[int],
    *,
    overlap: float = 0.5,
    sigma_scale: float = 0.125,
    sw_batch_size: int = 2,
    mode: str = "gaussian",
    device: str | torch.device | None = None,
    progress: bool | str = False,
) -> torch.Tensor:
    """Run ``predictor`` over a volume in overlapping windows and blend the outputs.

    Parameters
    ----------
    image : array or Tensor
        ``[C, Z, Y, X]`` or ``[B, C, Z, Y, X]`` network input (e.g. windowed CT in [0, 1]).
    predictor : callable
        ``[n, C, *roi_size] -> [n, K, *roi_size]`` (e.g. ``model.forward_dense``).
    roi_size : sequence of 3 int
        Window size ``(Z, Y, X)``; a volume smaller than it is padded (with 0) and cropped back.
    overlap : float
        Fraction of a window shared with its neighbour along each axis (0.5 by default).
    sigma_scale : float
        Gaussian blending sigma as a fraction of the window size (MONAI's default 0.125).
    sw_batch_size : int
        Windows per predictor call.
    mode : {"gaussian", "constant"}
        Blending weights.
    device : optional
        Where the output is accumulated (default: the input's device).
    progress : bool or str
        Show a bar over the windows on stderr; a string is its label (default ``"sliding windows"``).

    Returns
    -------
    Tensor
        ``[B, K, Z, Y, X]`` float32 (B = 1 for a ``[C, Z, Y, X]`` input).
    """
    from monai.inferers import sliding_window_inference

    x = torch.as_tensor(image, dtype=torch.float32)
    if x.ndim == 4:
        x = x[None]
    if x.ndim != 5:
        raise ValueError(f"image must be [C, Z, Y, X] or [B, C, Z, Y, X], got shape {tuple(x.shape)}")
    roi = tuple(int(r) for r in roi_size)
    if len(roi) != 3 or min(roi) < 1:
        raise ValueError(f"roi_size must be three positive window sizes (Z, Y, X), got {roi_size!r}")
    if not 0 <= overlap < 1:
        raise ValueError(f"overlap must be in [0, 1), got {overlap!r}")
    if not progress:
        out = sliding_window_inference(x, roi, sw_batch_size, predictor, overlap=overlap, mode=mode,
                                       sigma_scale=sigma_scale, padding_mode="constant", cval=0.0, device=device)
        return torch.as_tensor(out).float()
    from riskfm.progress import progress as bar_of

    total = count_windows(x.shape[2:], roi, overlap) * x.shape[0]
    with bar_of(total=total, desc=progress if isinstance(progress, str) else "sliding windows", unit="window") as bar:

        def counted(windows: torch.Tensor) -> torch.Tensor:
            result = predictor(windows)
            bar.update(int(windows.shape[0]))
            return result

        out = sliding_window_inference(x, roi, sw_batch_size, counted, overlap=overlap, mode=mode,
                                       sigma_scale=sigma_scale, padding_mode="constant", cval=0.0, device=device)
    return torch.as_tensor(out).float()


@torch.no_grad()
def predict_volume(
    model: torch.nn.Module,
    vol: CTVolume,
    *,
    spacing: Sequence[float] | None = None,
    windows: Sequence[tuple[float, float]] | None = None,
    roi_size: Sequence[int] | None = None,
    overlap: float = 0.5,
    sw_batch_size: int = 2,
    back_to_input_grid: bool = False,
    progress: bool | str = False,
    checks=None,
) -> CTVolume:
    """Return the dense probability map of a whole CT from a network with ``forward_dense`` (e.g. CORA).

    Parameters
    ----------
    model : nn.Module
        Has ``forward_dense(x) -> [n, K, ...]`` in [0, 1] and an ``input_spec``.
    vol : CTVolume
        The CT in HU.
    spacing, windows, roi_size : optional
        Default to ``model.input_spec`` (spacing, windows, shape).
    overlap, sw_batch_size, progress
        See :func:`sliding_window_predict`.
    back_to_input_grid : bool
        Resample the map (trilinear) back onto ``vol``'s grid.
    checks : CTPlausibility, optional
        Plausibility limits (defaults when None): a mask or a volume without its rescale is
        refused (:class:`~riskfm.data.pipeline.Implausible`) instead of mapped.

    Returns
    -------
    CTVolume
        Probability of the first output channel as float32 ``[Z, Y, X]`` on the model's grid
        (or the input grid), with the matching spacing and affine; ``meta["kind"] = "probability"``.
    """
    import dataclasses

    from riskfm.ct.transforms import ct_volume_pipeline
    from riskfm.data.pipeline import Item

    spec = model.input_spec
    roi = tuple(roi_size if roi_size is not None else spec.shape)
    spec = dataclasses.replace(spec, spacing=tuple(spacing if spacing is not None else spec.spacing),
                               windows=tuple(windows if windows is not None else spec.windows))
    # the spec's whole-volume preparation (checks, resampling, windows), on a volume in memory
    item = ct_volume_pipeline(spec, checks=checks).apply(Item(str(vol.meta.get("path", "<volume>")), data=vol))
    image, resampled = item.data, item.meta["volume"]
    was_training = model.training
    model.eval()
    try:
        prob = sliding_window_predict(image, model.forward_dense, roi, overlap=overlap, sw_batch_size=sw_batch_size,
                                      progress=progress)
    finally:
        model.train(was_training)
    out = CTVolume(prob[0, 0].cpu().numpy(), resampled.spacing, resampled.affine,
                   dict(vol.meta, kind="probability"))
    if back_to_input_grid and out.shape != vol.shape:
        import torch.nn.functional as F

        back = F.interpolate(prob[:, :1], size=vol.shape, mode="trilinear", align_corners=False)
        out = CTVolume(back[0, 0].numpy(), vol.spacing, vol.affine, dict(vol.meta, kind="probability"))
    return out
