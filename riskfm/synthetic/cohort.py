"""Write the synthetic cohort to disk in riskfm's manifest format.

Layout of ``out_dir``::

    manifest.csv            one row per patient (the manifest contract; paths relative to it)
    oracle.csv              true label probabilities and latent disease (never a model input)
    ecg/P00000.hea/.dat     10 s, 12-lead, 500 Hz WFDB records in mV
    ct/P00000.nii.gz        contrast CT, int16 HU, [x, y, z] on disk as NIfTI stores it
    ct/P00000_heart.nii.gz  heart mask (uint8)
    ct/P00000_labels.nii.gz coronary labels (1 LM, 2 LAD, 3 LCX, 4 RCA) and nothing else
    ct/P00000_plaque.nii.gz plaque mask (1 calcified, 2 non-calcified)

With ``acquisition_dates=True`` the manifest gains one last column, ``ecg_date`` (ISO date of the
ECG), for studies that stratify by acquisition time. It is drawn from its own random stream
(:data:`DATE_STREAM`), so every other column and every file is byte-identical to the cohort written
without it; it is off by default because a run infers its clinical variables from the manifest's
columns, and a new column would change what the demo's model reads.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from riskfm.ecg.spec import STANDARD_LEADS
from riskfm.ecg.wfdb_write import write_wfdb
from riskfm.progress import progress as progress_bar
from riskfm.synthetic.ct_render import render_ct
from riskfm.synthetic.ecg_render import render_ecg
from riskfm.synthetic.patients import ARTERIES, DEFAULT_SITES, STENOSIS_COLUMNS, SiteProfile, sample_patients

ECG_FS = 500.0
CLINICAL_COLUMNS = (
    "age", "sex", "race", "bmi", "sbp", "dbp", "tobacco", "hypertension", "diabetes",
    "total_cholesterol", "ldl", "hdl",
)
TARGET_COLUMNS = (*STENOSIS_COLUMNS, "mace_30d", "time_to_event_days", "event")
#: Key of the random stream of the ECG acquisition dates: ``default_rng([seed, DATE_STREAM])``.
#: Patients use ``[seed, index]`` (index < n) and missingness ``[seed, 10**9]``; this stream is
#: neither, so adding dates draws nothing from the streams the other columns come from.
DATE_STREAM = 10**9 + 1
#: First and last day of the synthetic acquisition dates (uniform in between).
DATE_RANGE = ("2015-01-01", "2022-12-31")


@dataclass(frozen=True)
class SyntheticCohort:
    """Where a written synthetic cohort lives and what it contains."""

    root: Path
    manifest_path: Path
    oracle_path: Path
    n: int
    seconds: float

    def manifest(self) -> pd.DataFrame:
        """Return the written manifest (``manifest_path``) as a DataFrame."""
        return pd.read_csv(self.manifest_path)

    def oracle(self) -> pd.DataFrame:
        """Return the oracle table (``oracle_path``: the generating variables per patient) as a DataFrame."""
        return pd.read_csv(self.oracle_path)


def acquisition_date_column(n: int, seed: int) -> np.ndarray:
    """ECG acquisition dates of ``n`` patients (ISO text), from the stream ``[seed, DATE_STREAM]`` only."""
    first, last = (np.datetime64(d, "D") for d in DATE_RANGE)
    days = np.random.default_rng([seed, DATE_STREAM]).integers(0, int((last - first).astype(int)) + 1, n)
    return np.datetime_as_string(first + days.astype("timedelta64[D]"), unit="D")


def _write_patient(row: dict, root: str, seed: int, sites: dict[str, SiteProfile], ct_shape, ct_spacing,
                   write_ecg: bool, write_ct: bool) -> None:
    # One generator per patient, keyed by (seed, index): the output does not depend on how
    # patients are spread over worker processes.
    idx = int(row["patient_id"][1:])
    rng = np.random.default_rng([seed, idx])
    site = sites[row["site"]]
    severity = np.array([row[f"severity_{a.lower()}"] for a in ARTERIES], dtype=float)
    calcified = np.array([bool(row[f"calcified_{a.lower()}"]) for a in ARTERIES])
    pid = row["patient_id"]
    if write_ecg:
        sig = render_ecg(rng, severity, heart_rate_bpm=float(row["heart_rate_bpm"]), age=float(row["age"]),
                         female=row["sex"] == "female", profile=site.ecg)
        write_wfdb(Path(root) / "ecg" / pid, sig, ECG_FS, STANDARD_LEADS, gain_per_mv=1000.0,  # 1 uV per count
                   comments=[f"age: {int(row['age'])}", f"sex: {row['sex']}", "synthetic: riskfm"])
    if write_ct:
        ct = render_ct(rng, severity, calcified, profile=site.ct, shape=ct_shape, spacing=ct_spacing)
        sz, sy, sx = ct.spacing
        affine = np.diag([sx, sy, sz, 1.0])
        # gzip level 1: ~3x faster than nibabel's default and within ~10% of its size for CT noise
        for suffix, arr, dtype in (("", ct.hu, np.int16), ("_heart", ct.heart_mask, np.uint8),
                                   ("_labels", ct.artery_labels, np.uint8), ("_plaque", ct.plaque_mask, np.uint8)):
            img = nib.Nifti1Image(np.ascontiguousarray(np.asarray(arr, dtype=dtype).transpose(2, 1, 0)), affine)
            img.header.set_xyzt_units("mm")
            with nib.openers.Opener(str(Path(root) / "ct" / f"{pid}{suffix}.nii.gz"), "wb", compresslevel=1) as fh:
                img.to_file_map({"image": nib.FileHolder(fileobj=fh), "header": nib.FileHolder(fileobj=fh)})


def _write_chunk(rows: list[dict], root: str, seed: int, sites, ct_shape, ct_spacing) -> int:
    for row in rows:
        _write_patient(row, root, seed, sites, ct_shape, ct_spacing, row["_has_ecg"], row["_has_ct"])
    return len(rows)


_CHUNK = 8  # patients per task of the worker pool


def make_cohort(
    n: int = 1000,
    seed: int = 0,
    out_dir: str | os.PathLike = "synthetic_cohort",
    *,
    sites: tuple[SiteProfile, ...] = DEFAULT_SITES,
    missing_ecg: float = 0.03,
    missing_ct: float = 0.04,
    ct_shape: tuple[int, int, int] = (40, 64, 64),
    ct_spacing: tuple[float, float, float] = (2.0, 1.5, 1.5),
    n_workers: int | None = None,
    progress: bool = True,
    acquisition_dates: bool = False,
) -> SyntheticCohort:
    """Generate and write a synthetic multimodal cohort.

    Parameters
    ----------
    n : number of patients.
    seed : everything (patients, records, missingness) is a deterministic function of it.
    out_dir : folder to write; created if needed. Existing files of the same names are replaced.
    sites : site profiles (case mix and device shift); by default three development sites and
        ``site_ext``, an external site with a distribution shift.
    missing_ecg, missing_ct : share of patients whose ECG / CT is absent (empty path in the manifest),
        so models meet missing modalities.
    ct_shape, ct_spacing : CT grid [Z, Y, X] and spacing (z, y, x) in mm.
    n_workers : processes writing records (default: all cores).
    progress : show a bar over the patients written on stderr (with the time left); silent anyway
        under ``riskfm --quiet`` / ``RISKFM_QUIET=1`` (:mod:`riskfm.progress`).
    acquisition_dates : add an ``ecg_date`` column (ISO dates uniform over :data:`DATE_RANGE`, from
        their own random stream: the other columns and files do not change).

    Returns
    -------
    SyntheticCohort with the manifest and oracle paths. ``oracle.csv`` holds ``p_<target>`` (the
    true probability of each label) and the latent severities: the Bayes-optimal AUROC of a target
    is the AUROC of its ``p_<target>`` column.
    """
    t0 = time.perf_counter()
    root = Path(out_dir)
    (root / "ecg").mkdir(parents=True, exist_ok=True)
    (root / "ct").mkdir(parents=True, exist_ok=True)
    df = sample_patients(n, seed=seed, sites=sites)
    rng = np.random.default_rng([seed, 10**9])
    has_ecg = rng.random(n) >= missing_ecg
    has_ct = rng.random(n) >= missing_ct
    df["ecg_path"] = np.where(has_ecg, "ecg/" + df["patient_id"] + ".hea", "")
    df["ct_path"] = np.where(has_ct, "ct/" + df["patient_id"] + ".nii.gz", "")

    rows = df.assign(_has_ecg=has_ecg, _has_ct=has_ct).to_dict("records")
    site_map = {s.name: s for s in sites}
    workers = max(1, min(n_workers or os.cpu_count() or 1, len(rows)))
    bar = progress_bar(total=len(rows), enabled=progress, desc=f"writing {len(rows)} synthetic patients", unit="patient")
    with bar:
        if workers == 1:
            for row in rows:
                _write_chunk([row], str(root), seed, site_map, ct_shape, ct_spacing)
                bar.update(1)
        else:
            # Small chunks (a few patients each) keep the bar moving; each patient's records depend
            # only on (seed, patient index), not on the chunking.
            n_chunks = max(workers * 4, -(-len(rows) // _CHUNK))
            chunks = [rows[i::n_chunks] for i in range(n_chunks)]
            ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
            with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
                futures = [pool.submit(_write_chunk, c, str(root), seed, site_map, ct_shape, ct_spacing)
                           for c in chunks if c]
                for f in as_completed(futures):
                    bar.update(f.result())

    manifest = df[["patient_id", "site", "ecg_path", "ct_path", *CLINICAL_COLUMNS, *TARGET_COLUMNS]]
    if acquisition_dates:
        manifest = manifest.assign(ecg_date=acquisition_date_column(n, seed))
    manifest.to_csv(root / "manifest.csv", index=False)
    oracle_cols = ["patient_id", "site"] + [c for c in df.columns if c.startswith(("p_", "severity_", "calcified_"))]
    df[oracle_cols].to_csv(root / "oracle.csv", index=False)
    seconds = time.perf_counter() - t0
    info = {"generator": "riskfm.synthetic.make_cohort", "n": n, "seed": seed, "sites": [s.name for s in sites],
            "ct_shape": list(ct_shape), "ct_spacing_mm": list(ct_spacing), "ecg_fs_hz": ECG_FS,
            "seconds": round(seconds, 2)}
    if acquisition_dates:
        info["acquisition_dates"] = list(DATE_RANGE)
    (root / "cohort.json").write_text(json.dumps(info, indent=2))
    return SyntheticCohort(root, root / "manifest.csv", root / "oracle.csv", n, seconds)
