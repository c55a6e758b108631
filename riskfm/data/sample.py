"""``Sample`` (what a dataset yields) and ``collate_samples`` (a batch with explicit presence flags)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from riskfm.arteries import ARTERIES
from riskfm.data.manifest import STENOSIS_TARGETS

__all__ = ["ARTERIES", "Sample", "collate_samples", "window_batch"]


@dataclass
class Sample:
    """One patient, each modality prepared for its encoder, ``None`` where the modality is absent.

    Attributes
    ----------
    patient_id, site : str
        Identifiers.
    index : int
        Row of the patient in its dataset (used to de-duplicate gathered DDP predictions); -1 unset.
    ecg : np.ndarray or None
        float32 ``[leads, T]`` (the encoder's leads, rate and normalisation; mV when "none").
    ecg_lead_mask : np.ndarray or None
        bool ``[leads]``, False for a lead the record lacks (its row is zeros).
    ct : np.ndarray or None
        float32 ``[C, Z, Y, X]`` window channels in [0, 1] on the encoder's grid.
    ct_hu : np.ndarray or None
        The CT as HU ``[Z, Y, X]`` (int16 from the cache, float32 after augmentation) instead of
        ``ct``, when the dataset leaves the window channels to the training process
        (``RiskDataset(ct_windows="batch")``): 2 bytes a voxel cross from the loader workers instead
        of 16, and the windows are computed on the model's device (:func:`window_batch`).
    clinical : dict
        The raw clinical values (column -> value).
    clinical_text : str or None
        The clinical record written as text (for language-model encoders).
    clinical_tabular : np.ndarray or None
        float32 ``[F]`` (for tabular encoders).
    stenosis : np.ndarray
        float32 ``[4]`` severe stenosis of RCA, LM, LAD, LCX (0/1, NaN unknown).
    mace_30d, time_to_event_days, event : float
        Outcomes (NaN unknown); ``time_to_event_days`` in days.
    """

    patient_id: str
    site: str = ""
    index: int = -1
    ecg: np.ndarray | None = None
    ecg_lead_mask: np.ndarray | None = None
    ct: np.ndarray | None = None
    ct_hu: np.ndarray | None = None
    clinical: dict[str, Any] = field(default_factory=dict)
    clinical_text: str | None = None
    clinical_tabular: np.ndarray | None = None
    stenosis: np.ndarray = field(default_factory=lambda: np.full(len(STENOSIS_TARGETS), np.nan, np.float32))
    mace_30d: float = float("nan")
    time_to_event_days: float = float("nan")
    event: float = float("nan")


def _stack_optional(arrays: list[np.ndarray | None], name: str, dtype: torch.dtype = torch.float32
                    ) -> tuple[torch.Tensor | None, torch.Tensor]:
    """Stack the present arrays into one ``dtype`` ``[B, ...]`` tensor, zeros where absent, plus the flags."""
    present = torch.tensor([a is not None for a in arrays], dtype=torch.bool)
    if not present.any():
        return None, present
    ref = next(a for a in arrays if a is not None)
    shapes = {tuple(a.shape) for a in arrays if a is not None}
    if len(shapes) > 1:
        raise ValueError(f"{name}: samples in one batch have different shapes {sorted(shapes)}; "
                         "prepare every record for the same encoder input spec")
    # np.stack writes the samples straight into the tensor's memory (a torch-owned buffer, so
    # DataLoader workers can share it): one call for a full batch, else one per run of consecutive
    # present samples into a zeroed buffer, so absent rows are never copied into (copying zeros
    # there measured slower than leaving the zeroed rows alone).
    full = bool(present.all())
    shape = (len(arrays), *ref.shape)
    if torch.utils.data.get_worker_info() is not None:
        # In a DataLoader worker the batch is sent to the training process through shared memory:
        # writing it there directly saves a copy of the whole batch (~0.15 s for 16 CTs at
        # 4 x 64 x 128 x 128). New shared memory reads as zeros; absent rows are zeroed anyway.
        itemsize = torch.empty(0, dtype=dtype).element_size()
        out = torch.empty(0, dtype=dtype).set_(
            torch.UntypedStorage._new_shared(int(np.prod(shape)) * itemsize), 0, shape)
        if not full:
            out[~present] = 0.0
    else:
        out = (torch.empty if full else torch.zeros)(shape, dtype=dtype)
    rows = out.numpy()
    np_dtype = rows.dtype
    start = None
    for i, a in enumerate([*arrays, None]):
        if a is not None and start is None:
            start = i
        elif a is None and start is not None:
            np.stack([np.asarray(b, dtype=np_dtype) for b in arrays[start:i]], out=rows[start:i])
            start = None
    return out, present


def collate_samples(samples: list[Sample]) -> dict[str, Any]:
    """Batch samples. Absent modalities become zeros with ``<modality>_present = False``.

    Keys: ``patient_id`` (list), ``site`` (list), ``index`` [B] long, ``ecg`` [B, L, T],
    ``ecg_lead_mask`` [B, L], ``ct`` [B, C, Z, Y, X] (or ``ct_hu`` [B, Z, Y, X] HU, int16 or
    float32, for samples carrying ``ct_hu``: :func:`window_batch` turns it into ``ct``),
    ``clinical_text`` (list, None where absent),
    ``clinical_tabular`` [B, F], ``<m>_present`` [B] bool for m in ecg, ct, clinical,
    ``stenosis`` [B, 4], ``mace_30d`` [B], ``time_to_event_days`` [B], ``event`` [B] (NaN unknown).
    A modality no sample has is left out of the batch (its ``_present`` flags are all False).
    """
    if not samples:
        raise ValueError("cannot collate an empty list of samples")
    batch: dict[str, Any] = {
        "patient_id": [s.patient_id for s in samples],
        "site": [s.site for s in samples],
        "index": torch.tensor([s.index for s in samples], dtype=torch.long),
    }
    ecg, batch["ecg_present"] = _stack_optional([s.ecg for s in samples], "ecg")
    if ecg is not None:
        batch["ecg"] = ecg
        masks = [s.ecg_lead_mask if s.ecg_lead_mask is not None else np.zeros(ecg.shape[1], bool) for s in samples]
        batch["ecg_lead_mask"] = torch.as_tensor(np.stack(masks), dtype=torch.bool)
    ct, batch["ct_present"] = _stack_optional([s.ct for s in samples], "ct")
    if ct is not None:
        batch["ct"] = ct
    hus = [s.ct_hu for s in samples]
    if any(h is not None for h in hus):
        # int16 straight from the cache stays int16 (half the bytes); augmented HU are float32
        as_int = all(h is None or h.dtype == np.int16 for h in hus)
        batch["ct_hu"], batch["ct_present"] = _stack_optional(hus, "ct_hu", torch.int16 if as_int else torch.float32)
    tab, tab_present = _stack_optional([s.clinical_tabular for s in samples], "clinical_tabular")
    if tab is not None:
        batch["clinical_tabular"] = tab
    texts = [s.clinical_text for s in samples]
    batch["clinical_text"] = texts
    batch["clinical_present"] = torch.tensor(
        [t is not None for t in texts], dtype=torch.bool) | tab_present
    batch["stenosis"] = torch.as_tensor(np.stack([np.asarray(s.stenosis, np.float32) for s in samples]))
    for key in ("mace_30d", "time_to_event_days", "event"):
        batch[key] = torch.tensor([getattr(s, key) for s in samples], dtype=torch.float32)
    return batch


def window_batch(batch: dict[str, Any], windows, workspace: dict | None = None) -> dict[str, Any]:
    """Replace a batch's ``ct_hu`` ``[B, Z, Y, X]`` (HU) by ``ct`` ``[B, C, Z, Y, X]`` window channels, in place.

    The same float32 arithmetic as :func:`riskfm.ct.preprocess.window_channels` (so the same
    values), done by torch on whatever device the batch is on; rows of absent CTs
    (``ct_present`` False) stay zeros. A batch without ``ct_hu`` is returned unchanged.

    Parameters
    ----------
    batch : dict
        A batch of :func:`collate_samples`.
    windows : sequence of (float, float)
        (level, width) in HU, one channel each.
    workspace : dict, optional
        A dict the caller keeps between batches: the ``ct`` tensor is then a view of one buffer
        reused batch after batch, so the previous batch's ``ct`` is overwritten. On a CPU this
        saves the page faults of a fresh allocation (16 MB a patient at 64 x 128 x 128 x 4
        channels), most of the windowing time. Only for loops that drop each batch before
        windowing the next, as prediction does.
    """
    hu = batch.pop("ct_hu", None)
    if hu is None:
        return batch
    shape = (hu.shape[0], len(windows), *hu.shape[1:])
    if workspace is None:
        out = torch.empty(shape, dtype=torch.float32, device=hu.device)
    else:
        buf = workspace.get("ct")
        if buf is None or buf.device != hu.device or buf.shape[1:] != shape[1:] or buf.shape[0] < shape[0]:
            buf = workspace["ct"] = torch.empty(shape, dtype=torch.float32, device=hu.device)
        out = buf[: shape[0]]
    # the same float32 constants as window_channels (level - width / 2 rounded once, then width)
    consts = [(float(np.float32(float(level) - float(width) / 2.0)), float(np.float32(width)))
              for level, width in windows]
    for i in range(hu.shape[0]):  # one sample at a time: its few MB stay in cache over the three passes
        x = hu[i].to(torch.float32)
        for c, (low, width) in enumerate(consts):
            torch.sub(x, low, out=out[i, c])
            out[i, c].div_(width).clamp_(0.0, 1.0)
    present = batch.get("ct_present")
    if present is not None and not bool(present.all()):
        out[~present.to(out.device)] = 0.0  # an absent CT is zeros (flagged absent), not windowed 0 HU
    batch["ct"] = out
    return batch

