"""From a ``Cohort`` to ``Sample``s: read each file once, prepare it for its encoder, keep it in memory.

Reading and preparing every ECG and CT once (``PreparedCohort``) and sharing the arrays between
the train / validation / test datasets makes an epoch cost only tensor copies: file parsing
(~5 ms per WFDB record, more per NIfTI) would otherwise dominate CPU training.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from riskfm.clinical.text import serialise_clinical
from riskfm.ct.augment import CTAugment
from riskfm.ct.io import read_ct
from riskfm.ct.plausibility import CTPlausibility, check_ct_plausibility
from riskfm.ct.preprocess import crop_or_pad, resample_to_spacing, window_channels
from riskfm.ct.spec import CTInputSpec
from riskfm.data.cohort import Cohort
from riskfm.data.manifest import STENOSIS_TARGETS
from riskfm.data.sample import Sample
from riskfm.ecg.augment import ECGAugment
from riskfm.ecg.beats import BeatDetectionError, median_beat
from riskfm.ecg.io import read_ecg
from riskfm.ecg.plausibility import ECGPlausibility, check_ecg_plausibility, drop_leads
from riskfm.ecg.preprocess import prepare_ecg
from riskfm.ecg.spec import ECGInputSpec

log = logging.getLogger(__name__)


@dataclass
class PreparedCohort:
    """Encoder-ready arrays of a cohort, keyed by patient id.

    Attributes
    ----------
    ecg_spec, ct_spec : ECGInputSpec or CTInputSpec or None
        The specs the arrays were prepared for.
    ecg : dict of str to (ndarray, ndarray)
        Patient -> (float16 ``[leads, ecg_spec.input_samples]`` prepared for ``ecg_spec`` (mV unless
        the spec normalises), bool ``[leads]`` lead mask).
    ct_hu : dict of str to ndarray
        Patient -> int16 ``[Z, Y, X]`` HU on the encoder grid (windows are applied per item,
        which keeps the cache at one channel instead of four).
    failures : list of dict
        One dict per unreadable or implausible file (``patient_id``, ``reason``); the caller
        excludes those patients with ``Cohort.exclude`` so nothing is dropped silently.
    notes : list of dict
        One dict per file kept with a repair (``patient_id``, ``note``), e.g. flat leads masked
        absent; the caller records them with ``Cohort.note``.
    """

    ecg_spec: ECGInputSpec | None = None
    ct_spec: CTInputSpec | None = None
    ecg: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    ct_hu: dict[str, np.ndarray] = field(default_factory=dict)
    failures: list[dict] = field(default_factory=list)
    notes: list[dict] = field(default_factory=list)


class Implausible(ValueError):
    """A file that reads but fails a plausibility check; its message is the exclusion reason."""


def _prepare_ecg_file(path: str, spec: ECGInputSpec, quality: bool = False,
                      checks: ECGPlausibility | None = None) -> tuple[tuple[np.ndarray, np.ndarray], str | None]:
    """((x, lead mask), note) for one ECG file; note says which flat leads were masked absent."""
    ecg = read_ecg(path)
    note = None
    checks = checks or ECGPlausibility()
    if checks.enabled:
        verdict = check_ecg_plausibility(ecg, spec.seconds, checks)
        if verdict.exclude_reason:
            raise Implausible(verdict.exclude_reason)
        if verdict.flat_leads and checks.mask_flat_leads:
            ecg = drop_leads(ecg, verdict.flat_leads)
            note = f"ecg flat leads masked absent: {', '.join(verdict.flat_leads)}"
    if quality:
        from riskfm.ecg.quality import ecg_quality

        report = ecg_quality(ecg)
        if not report.ok:
            raise ValueError(f"{path}: poor signal quality ({'; '.join(report.reasons)})")
    x, mask = prepare_ecg(ecg, spec)
    if spec.representation == "median_beat":
        try:
            x = median_beat(x, spec.fs, window_s=spec.beat_window_s)
        except BeatDetectionError as exc:
            raise ValueError(f"{path}: {exc}") from None
    elif spec.representation != "raw":
        raise ValueError(f"unknown ECG representation {spec.representation!r}; use 'raw' or 'median_beat'")
    if not np.isfinite(x).all():
        raise ValueError(f"{path}: non-finite values after preprocessing")
    return (x.astype(np.float16), mask), note


def _prepare_ct_file(path: str, spec: CTInputSpec, checks: CTPlausibility | None = None) -> np.ndarray:
    vol = read_ct(path)
    reasons = check_ct_plausibility(vol, checks or CTPlausibility())
    if reasons:
        raise Implausible("; ".join(reasons))
    if tuple(np.round(vol.spacing, 4)) != tuple(np.round(spec.spacing, 4)):
        vol = resample_to_spacing(vol, spec.spacing)
    hu = crop_or_pad(vol.array, spec.shape, fill=-1024.0)
    return np.clip(np.rint(hu), -32768, 32767).astype(np.int16)


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
) -> PreparedCohort:
    """Read and prepare every ECG (for ``ecg_spec``) and CT (for ``ct_spec``) of the cohort once.

    Unreadable files do not stop the run: each becomes a ``failures`` entry with the reader's
    message (which names the file and the problem).

    ``ecg_store`` (a folder or :class:`riskfm.ecg.store.ECGStore` built for ``ecg_spec``) serves
    the ECGs from memory-mapped shards instead of parsing files: the arrays are views read when a
    sample is drawn. ECGs absent from the store, or that failed when it was built, are failures.
    ``ecg_quality=True`` also excludes records failing :func:`riskfm.ecg.quality.ecg_quality`
    (reason ``"ecg quality: ..."``, so the cohort report counts them).

    ``ecg_checks`` / ``ct_checks`` are the plausibility checks (on by default, see
    docs/data-quality.md): an implausible file excludes its patient with the check's reason
    (``"ecg implausible: units: ..."``); flat ECG leads are masked absent and noted. The ECG store
    applies no plausibility checks (it serves prepared windows): build it from checked files.
    """
    prepared = PreparedCohort(ecg_spec=ecg_spec, ct_spec=ct_spec)
    jobs: list[tuple[str, str, str]] = []
    if ecg_spec is not None and ecg_store is not None:
        from riskfm.ecg.store import ECGStore

        if ecg_spec.representation != "raw":
            raise ValueError("the ECG store holds raw windows; representation "
                             f"{ecg_spec.representation!r} is computed from files only")
        store = ecg_store if isinstance(ecg_store, ECGStore) else ECGStore(ecg_store)
        store.check_spec(ecg_spec)
        for pid, p in zip(cohort.df["patient_id"], cohort.df["ecg_path"]):
            if not p:
                continue
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
    elif ecg_spec is not None:
        jobs += [("ecg", pid, p) for pid, p in zip(cohort.df["patient_id"], cohort.df["ecg_path"]) if p]
    if ct_spec is not None:
        jobs += [("ct", pid, p) for pid, p in zip(cohort.df["patient_id"], cohort.df["ct_path"]) if p]

    def run(job):
        kind, pid, path = job
        try:
            if kind == "ecg":
                value, note = _prepare_ecg_file(path, ecg_spec, ecg_quality, ecg_checks)
                return kind, pid, value, None, note
            return kind, pid, _prepare_ct_file(path, ct_spec, ct_checks), None, None
        except Implausible as exc:
            return kind, pid, None, f"{exc} ({path})", None
        except Exception as exc:  # noqa: BLE001 - every reader error becomes a counted exclusion
            if kind == "ecg" and "poor signal quality" in str(exc):
                return kind, pid, None, f"ecg quality: {exc}", None
            return kind, pid, None, f"{kind} unreadable: {exc}", None

    workers = n_workers or min(8, os.cpu_count() or 1)
    iterator = ThreadPoolExecutor(workers).map(run, jobs) if workers > 1 else map(run, jobs)
    if progress:
        from riskfm.progress import progress as progress_bar

        iterator = progress_bar(iterator, total=len(jobs), desc=f"reading {len(jobs)} ECG/CT files", unit="file")
    for kind, pid, value, err, note in iterator:
        if note is not None:
            prepared.notes.append({"patient_id": pid, "note": note})
        if err is not None:
            prepared.failures.append({"patient_id": pid, "reason": err})
        elif kind == "ecg":
            prepared.ecg[pid] = value
        else:
            prepared.ct_hu[pid] = value
    return prepared


class RiskDataset(torch.utils.data.Dataset):
    """Samples of a (sub)cohort, prepared for the model's encoders.

    Parameters
    ----------
    cohort : the patients of this dataset (e.g. ``cohort.subset(split["train"])``).
    prepared : arrays from ``prepare_cohort`` (may cover more patients than ``cohort``).
    clinical : ``"text"`` (the record written behind ``prompt`` for a language model),
        ``"tabular"`` (a fitted ``TabularPreprocessor`` in ``tabular``) or ``None``.
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
    ) -> None:
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
        self.clinical_mode = clinical
        df = cohort.df
        self.patient_ids = df["patient_id"].tolist()
        self.sites = df["site"].tolist()
        self.clinical_records = df[cohort.clinical_columns].to_dict("records")
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
        if hu is not None:
            hu = hu.astype(np.float32)
            if rng is not None:
                hu = self.ct_augment(hu, rng)
            ct = window_channels(hu, self.prepared.ct_spec.windows)
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
            clinical=self.clinical_records[i],
            clinical_text=self.texts[i],
            clinical_tabular=None if self.tabular is None else self.tabular[i],
            stenosis=self.stenosis[i],
            mace_30d=float(self.outcomes[i, 0]),
            time_to_event_days=float(self.outcomes[i, 1]),
            event=float(self.outcomes[i, 2]),
        )

    def frame(self) -> pd.DataFrame:
        """Return patient ids, sites and labels of this dataset, in item order (NaN unknown)."""
        cols = ["patient_id", "site", *STENOSIS_TARGETS, "mace_30d", "time_to_event_days", "event"]
        return self.cohort.df[cols].reset_index(drop=True)
