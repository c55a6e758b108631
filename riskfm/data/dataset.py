"""From a ``Cohort`` to ``Sample``s: each file prepared once through its encoder spec's pipeline.

``prepare_cohort`` runs each encoder spec's pipeline (``ecg_pipeline``, ``ct_pipeline``) over the cohort's files, either into the prepared
cache on disk (``cache_dir``; :mod:`riskfm.data.cache`), from which ``RiskDataset`` reads each
patient when it is drawn (memory independent of the cohort; the next run reads no source file),
or into memory. ``RiskDataset`` then applies what must stay per item: augmentation of the HU and
mV values and the CT window channels.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from riskfm.clinical.text import serialise_clinical
from riskfm.ct.augment import CTAugment
from riskfm.ct.plausibility import CTPlausibility
from riskfm.ct.spec import CTInputSpec
from riskfm.ct.transforms import WindowChannels, ct_pipeline
from riskfm.data.cache import CachedArrays, FillReport, PreparedCache, cohort_entries
from riskfm.data.cohort import Cohort
from riskfm.data.manifest import STENOSIS_TARGETS
from riskfm.data.pipeline import Implausible, Pipeline
from riskfm.data.sample import Sample, window_batch
from riskfm.ecg.augment import ECGAugment
from riskfm.ecg.plausibility import ECGPlausibility
from riskfm.ecg.spec import ECGInputSpec
from riskfm.ecg.transforms import ecg_pipeline

__all__ = ["Implausible", "PreparedCohort", "RiskDataset", "prepare_cohort"]

log = logging.getLogger(__name__)


@dataclass
class PreparedCohort:
    """Encoder-ready arrays of a cohort, keyed by patient id.

    Attributes
    ----------
    ecg_spec, ct_spec : ECGInputSpec or CTInputSpec or None
        The specs the arrays were prepared for.
    ecg : mapping of str to (ndarray, ndarray)
        Patient -> (float16 ``[leads, ecg_spec.input_samples]`` prepared for ``ecg_spec`` (mV unless
        the spec normalises), bool ``[leads]`` lead mask). A dict in memory, or a
        :class:`~riskfm.data.cache.CachedArrays` reading the prepared cache on access.
    ct_hu : mapping of str to ndarray
        Patient -> int16 ``[Z, Y, X]`` HU on the encoder grid (windows are applied per item,
        which keeps the cache at one channel instead of four).
    failures : list of dict
        One dict per unreadable or implausible file (``patient_id``, ``reason``); the caller
        excludes those patients with ``Cohort.exclude`` so nothing is dropped silently.
    caches : dict of str to PreparedCache
        Modality -> the prepared cache the arrays are read from (empty in memory).
    fills : dict of str to FillReport
        Modality -> what filling its cache did (prepared, failed, reused, left to other parts).
    notes : list of dict
        One dict per file kept with a repair (``patient_id``, ``note``), e.g. flat leads masked
        absent; the caller records them with ``Cohort.note``.
    """

    ecg_spec: ECGInputSpec | None = None
    ct_spec: CTInputSpec | None = None
    ecg: Mapping[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    ct_hu: Mapping[str, np.ndarray] = field(default_factory=dict)
    failures: list[dict] = field(default_factory=list)
    notes: list[dict] = field(default_factory=list)
    caches: dict[str, PreparedCache] = field(default_factory=dict)
    fills: dict[str, FillReport] = field(default_factory=dict)


def _pairs(cohort: Cohort, column: str) -> list[tuple[str, str]]:
    return [(pid, p) for pid, p in zip(cohort.df["patient_id"], cohort.df[column]) if p]


def _from_store(prepared: PreparedCohort, cohort: Cohort, spec: ECGInputSpec, ecg_store: Any,
                ecg_quality: bool) -> None:
    """Serve ECGs from a prebuilt ECG store (raw windows only); absent or failed records are failures."""
    from riskfm.ecg.store import ECGStore

    if spec.representation != "raw":
        raise ValueError("the ECG store holds raw windows; representation "
                         f"{spec.representation!r} is computed from files only")
    store = ecg_store if isinstance(ecg_store, ECGStore) else ECGStore(ecg_store)
    store.check_spec(spec)
    for pid, p in _pairs(cohort, "ecg_path"):
        if p not in store:
            prepared.failures.append({"patient_id": pid, "reason": f"ecg not in store {store.path}: {p}"})
            continue
        rec = store.record(p)
        if not bool(rec["ok"]):
            prepared.failures.append({"patient_id": pid, "reason": f"ecg unreadable: {rec['reason']}"})
        elif ecg_quality and not bool(rec["quality_ok"]):
            prepared.failures.append({"patient_id": pid, "reason": f"ecg quality: {rec['quality_flags']}"})
        else:
            prepared.ecg[pid] = store[p]


def _in_memory(prepared: PreparedCohort, pipeline: Pipeline, pairs: list[tuple[str, str]], workers: int,
               progress: bool) -> dict:
    """Prepare every file now and keep the arrays in memory (no cache)."""
    values = {}
    outcomes = pipeline.map([p for _, p in pairs], workers=workers, progress=progress)
    for (pid, _), (_, result, reason) in zip(pairs, outcomes):
        if result is None:
            prepared.failures.append({"patient_id": pid, "reason": reason})
            continue
        if result.note:
            prepared.notes.append({"patient_id": pid, "note": result.note})
        values[pid] = result.array if result.mask is None else (result.array, result.mask)
    return values


def _from_cache(prepared: PreparedCohort, pipeline: Pipeline, pairs: list[tuple[str, str]], cache_dir: Any,
                workers: int, progress: bool, part: tuple[int, int] | None, barrier) -> CachedArrays:
    """Fill what the cache lacks (this process's part of it), then serve every patient from the cache."""
    cache = PreparedCache(cache_dir, pipeline)
    report = cache.fill([p for _, p in pairs], workers=workers, progress=progress, part=part)
    if report.prepared or report.failed:
        log.info("prepared cache %s: %d prepared, %d failed, %d reused (%.1f s)", cache.folder, report.prepared,
                 report.failed, report.reused, report.seconds)
    if barrier is not None:
        barrier()  # every process has written its part
    if report.skipped or barrier is not None:
        cache.reload()
    entries, failures, notes = cohort_entries(cache, pairs)
    prepared.failures += failures
    prepared.notes += notes
    prepared.caches[pipeline.modality] = cache
    prepared.fills[pipeline.modality] = report
    return CachedArrays(cache.reader, entries, with_mask=pipeline.mask_shape is not None)


def prepare_cohort(
    cohort: Cohort,
    *,
    ecg_spec: ECGInputSpec | None = None,
    ct_spec: CTInputSpec | None = None,
    n_workers: int | None = None,
    progress: bool = False,
    ecg_store: Any = None,
    ecg_quality: bool = False,
    ecg_checks: ECGPlausibility | None = None,
    ct_checks: CTPlausibility | None = None,
    cache_dir: str | os.PathLike | None = None,
    part: tuple[int, int] | None = None,
    barrier: Any = None,
) -> PreparedCohort:
    """Prepare every ECG (for ``ecg_spec``) and CT (for ``ct_spec``) of the cohort through its spec's pipeline.

    The preparation is the spec's pipeline (``ecg_pipeline(spec)``, ``ct_pipeline(spec)``; (:mod:`riskfm.ecg.transforms`,
    :mod:`riskfm.ct.transforms`). Unreadable files do not stop the run: each becomes a ``failures``
    entry with the reader's message (which names the file and the problem).

    With ``cache_dir`` the prepared arrays live in the prepared cache (:mod:`riskfm.data.cache`):
    files it lacks (or whose content changed) are prepared and written there, then every array is
    read from disk when a sample is drawn, so memory does not grow with the cohort and the next run
    reads no source file. Without it, every file is prepared now and kept in memory.

    ``part=(i, n)`` with ``barrier`` (a callable every process calls) splits the filling between
    the ``n`` processes of a distributed run: each prepares its part, waits at the barrier, then
    serves the whole cohort from the cache.

    ``ecg_store`` (a folder or :class:`riskfm.ecg.store.ECGStore` built for ``ecg_spec``) serves
    the ECGs from a prebuilt store instead (raw windows only). ``ecg_quality=True`` also excludes
    records failing :func:`riskfm.ecg.quality.ecg_quality` (reason ``"ecg quality: ..."``).

    ``ecg_checks`` / ``ct_checks`` are the plausibility checks (on by default, see
    docs/data-quality.md): an implausible file excludes its patient with the check's reason
    (``"ecg implausible: units: ..."``); flat ECG leads are masked absent and noted. The ECG store
    applies no plausibility checks (it serves prepared windows): build it from checked files.
    """
    prepared = PreparedCohort(ecg_spec=ecg_spec, ct_spec=ct_spec)
    workers = n_workers or min(8, os.cpu_count() or 1)
    jobs: list[tuple[str, Pipeline, list]] = []
    if ecg_spec is not None and ecg_store is not None:
        _from_store(prepared, cohort, ecg_spec, ecg_store, ecg_quality)
    elif ecg_spec is not None:
        jobs.append(("ecg", ecg_pipeline(ecg_spec, checks=ecg_checks, quality=ecg_quality), _pairs(cohort, "ecg_path")))
    if ct_spec is not None:
        jobs.append(("ct_hu", ct_pipeline(ct_spec, checks=ct_checks), _pairs(cohort, "ct_path")))
    for attr, pipeline, pairs in jobs:
        if cache_dir is None:
            values = _in_memory(prepared, pipeline, pairs, workers, progress)
        else:
            values = _from_cache(prepared, pipeline, pairs, cache_dir, workers, progress, part, barrier)
        setattr(prepared, attr, values)
    return prepared


class RiskDataset(torch.utils.data.Dataset):
    """Samples of a (sub)cohort, prepared for the model's encoders.

    Parameters
    ----------
    cohort : the patients of this dataset (e.g. ``cohort.subset(split["train"])``).
    prepared : arrays from ``prepare_cohort`` (may cover more patients than ``cohort``).
    clinical : ``"text"`` (the record written behind ``prompt`` for a language model),
        ``"tabular"`` (a fitted ``TabularPreprocessor`` in ``tabular``) or ``None``.
    ct_windows : ``"sample"`` (each sample's ``ct`` holds its window channels) or ``"batch"``
        (samples carry ``ct_hu``, 8x fewer bytes from loader workers, and :meth:`finish_batch`
        computes the same window channels on the model's device; what training and prediction use).
    """

    def __init__(
        self,
        cohort: Cohort,
        prepared: PreparedCohort,
        *,
        clinical: str | None = "text",
        prompt: str | None = None,
        tabular: Any = None,
        augment: bool = False,
        seed: int = 0,
        ct_windows: str = "sample",
    ) -> None:
        if ct_windows not in ("sample", "batch"):
            raise ValueError(f"ct_windows must be 'sample' or 'batch', got {ct_windows!r}")
        self.ct_windows = ct_windows
        if clinical not in ("text", "tabular", None):
            raise ValueError(f"clinical must be 'text', 'tabular' or None, got {clinical!r}")
        if clinical == "tabular" and tabular is None:
            raise ValueError("clinical='tabular' needs a fitted TabularPreprocessor in `tabular`")
        self.cohort = cohort
        self.prepared = prepared
        # Training-set augmentation (device gain/noise). Each item's generator is seeded by
        # (seed, epoch, index): the same draw with any number of DataLoader workers, and a resumed
        # run (which sets the epoch) draws exactly what an uninterrupted one would.
        self.augment = augment
        self.ecg_augment = ECGAugment()
        self.ct_augment = CTAugment()
        self.seed = int(seed)
        self.epoch = 0
        self.windows = WindowChannels(prepared.ct_spec.windows) if prepared.ct_spec is not None else None
        self.clinical_mode = clinical
        df = cohort.df
        self.patient_ids = df["patient_id"].tolist()
        self.sites = df["site"].tolist()
        # df[[]].to_dict("records") is [], not one empty dict per row: a manifest without clinical
        # columns still has one (empty) record per patient.
        self.clinical_records = (df[cohort.clinical_columns].to_dict("records") if cohort.clinical_columns
                                 else [{} for _ in range(len(df))])
        self.texts: list[str | None] = [None] * len(df)
        if clinical == "text" and cohort.clinical_columns:
            kw = {} if prompt is None else {"prompt": prompt}
            self.texts = [serialise_clinical(r, **kw) for r in self.clinical_records]
        self.tabular = tabular.transform(df[cohort.clinical_columns]) if clinical == "tabular" else None
        self.stenosis = df[list(STENOSIS_TARGETS)].to_numpy(dtype=np.float32)
        self.outcomes = df[["mace_30d", "time_to_event_days", "event"]].to_numpy(dtype=np.float32)

    def __len__(self) -> int:
        return len(self.patient_ids)

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation draws of ``epoch`` (the training loop calls this each epoch)."""
        self.epoch = int(epoch)

    def __getitem__(self, i: int) -> Sample:
        pid = self.patient_ids[i]
        ecg = self.prepared.ecg.get(pid)
        hu = self.prepared.ct_hu.get(pid)
        rng = np.random.default_rng([self.seed, self.epoch, int(i)]) if self.augment else None
        ct = None
        ct_hu = None
        if hu is not None:
            if rng is not None:
                hu = self.ct_augment(hu.astype(np.float32), rng)
            if self.ct_windows == "batch":
                ct_hu = hu  # int16 from the cache (float32 when augmented): windowed by finish_batch
            else:
                ct = self.windows(hu.astype(np.float32))
        ecg_x = None if ecg is None else ecg[0].astype(np.float32)
        if ecg_x is not None and rng is not None:
            ecg_x = self.ecg_augment(ecg_x, rng)
        return Sample(
            patient_id=pid,
            site=self.sites[i],
            index=i,
            ecg=ecg_x,
            ecg_lead_mask=None if ecg is None else ecg[1],
            ct=ct,
            ct_hu=ct_hu,
            clinical=self.clinical_records[i],
            clinical_text=self.texts[i],
            clinical_tabular=None if self.tabular is None else self.tabular[i],
            stenosis=self.stenosis[i],
            mace_30d=float(self.outcomes[i, 0]),
            time_to_event_days=float(self.outcomes[i, 1]),
            event=float(self.outcomes[i, 2]),
        )

    def finish_batch(self, batch: dict, workspace: dict | None = None) -> dict:
        """Return a collated batch ready for the model: CT window channels computed on its device.

        A no-op unless the dataset leaves the windows to the batch (``ct_windows="batch"``).
        ``workspace``: see :func:`~riskfm.data.sample.window_batch` (one reused buffer, for loops
        that drop each batch before finishing the next).
        """
        if self.ct_windows != "batch" or self.windows is None:
            return batch
        return window_batch(batch, self.windows.windows, workspace)

    def frame(self) -> pd.DataFrame:
        """Return patient ids, sites and labels of this dataset, in item order (NaN unknown)."""
        cols = ["patient_id", "site", *STENOSIS_TARGETS, "mace_30d", "time_to_event_days", "event"]
        return self.cohort.df[cols].reset_index(drop=True)
