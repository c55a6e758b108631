"""A cohort written the way another group would write it: not by riskfm's synthetic generator.

WFDB at 250 Hz with lowercase lead names, NIfTI CTs on another grid, different clinical columns,
labels that depend on what the files show.
"""

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import wfdb

LEADS = ["i", "ii", "iii", "avr", "avl", "avf", "v1", "v2", "v3", "v4", "v5", "v6"]


def write_foreign_cohort(root: Path, n: int = 60, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    (root / "waveforms").mkdir(parents=True, exist_ok=True)
    (root / "scans").mkdir(parents=True, exist_ok=True)
    rows = []
    fs, secs = 250, 10
    t = np.arange(fs * secs) / fs
    for i in range(n):
        pid = f"subj-{i:03d}"
        sick = rng.random() < 0.4
        beat = np.exp(-(((t % 0.8) - 0.3) ** 2) / 0.0004)  # R waves at 75 bpm
        sig = np.stack([beat * (0.8 + 0.1 * k) for k in range(12)], 1)
        if sick:
            sig[:, 6:10] -= 0.2  # ST depression in V1-V4
        sig += rng.normal(0, 0.02, sig.shape)
        wfdb.wrsamp(pid, fs=fs, units=["mV"] * 12, sig_name=LEADS, p_signal=sig, fmt=["16"] * 12,
                    write_dir=str(root / "waveforms"))
        vol = np.full((32, 32, 20), -1000, np.int16)  # x, y, z on disk (air)
        vol[8:24, 8:24, 4:16] = 60
        if sick:
            vol[14:18, 14:18, 8:11] = 1000  # a calcified plaque
        # scanner noise (its own generator, so the labels drawn above stay the same)
        vol = vol + np.random.default_rng([seed, i]).normal(0, 12, vol.shape).round().astype(np.int16)
        img = nib.Nifti1Image(vol, np.diag([2.0, 2.0, 3.0, 1.0]))
        nib.save(img, str(root / "scans" / f"{pid}.nii.gz"))
        rows.append({
            "patient_id": pid, "site": "north" if i % 3 else "south",
            "ecg_path": f"waveforms/{pid}.hea", "ct_path": f"scans/{pid}.nii.gz",
            "age": int(rng.integers(40, 85)), "smoker": "yes" if rng.random() < 0.3 else "no",
            "creatinine": round(float(rng.normal(1.0, 0.2)), 2),
            "stenosis_rca": int(rng.random() < 0.2), "stenosis_lm": int(sick and rng.random() < 0.3),
            "stenosis_lad": int(sick), "stenosis_lcx": int(rng.random() < 0.2),
            "mace_30d": int(sick and rng.random() < 0.5),
            "time_to_event_days": round(float(rng.uniform(5, 400)), 1), "event": int(rng.random() < 0.3),
        })
    path = root / "cohort.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path
