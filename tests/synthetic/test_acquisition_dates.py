"""The opt-in ECG acquisition dates leave every other column and file of the synthetic cohort unchanged."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

from riskfm.synthetic import make_cohort
from riskfm.synthetic.cohort import DATE_RANGE, acquisition_date_column

# Written by riskfm at commit abafd3e, before the date column existed: make_cohort(n=12, seed=0,
# n_workers=1). The SHA-256 of manifest.csv, and one SHA-256 over (relative name, SHA-256) of
# manifest.csv, oracle.csv and every ecg/ file in name order. CT files are left out: their gzip
# bytes depend on the zlib build, not on riskfm.
MANIFEST_SHA256 = "9178d9d6f6b276908e6a3ac986f3c074cfeb0e5ac009c7da3f1f7a84bfef005e"
FILES_SHA256 = "6ec452d52798c698df8100732ce1ed8d78ea8a01eb0f9cb7d696596ee9b49790"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _files_digest(root: Path) -> tuple[int, str]:
    files = [root / "manifest.csv", root / "oracle.csv", *sorted((root / "ecg").iterdir())]
    h = hashlib.sha256()
    for p in files:
        h.update(str(p.relative_to(root)).encode())
        h.update(hashlib.sha256(p.read_bytes()).digest())
    return len(files), h.hexdigest()


def test_default_cohort_is_byte_identical_to_the_one_written_before_dates_existed(tmp_path):
    c = make_cohort(n=12, seed=0, out_dir=tmp_path / "c", n_workers=1, progress=False)
    assert _sha(c.manifest_path.read_bytes()) == MANIFEST_SHA256
    assert _files_digest(tmp_path / "c") == (24, FILES_SHA256)
    assert "ecg_date" not in c.manifest().columns


def test_dates_come_from_their_own_stream_and_change_nothing_else(tmp_path):
    c = make_cohort(n=12, seed=0, out_dir=tmp_path / "d", n_workers=1, progress=False, acquisition_dates=True)
    m = pd.read_csv(c.manifest_path)
    assert list(m.columns)[-1] == "ecg_date"
    original = m.drop(columns="ecg_date").to_csv(index=False).encode()
    assert _sha(original) == MANIFEST_SHA256
    # oracle and ECG files unchanged: only the manifest differs from the pre-change digest
    root = tmp_path / "d"
    h = hashlib.sha256()
    for p in [root / "manifest.csv", root / "oracle.csv", *sorted((root / "ecg").iterdir())]:
        h.update(str(p.relative_to(root)).encode())
        h.update(hashlib.sha256(original if p.name == "manifest.csv" else p.read_bytes()).digest())
    assert h.hexdigest() == FILES_SHA256
    dates = pd.to_datetime(m["ecg_date"], format="%Y-%m-%d")
    assert dates.min() >= pd.Timestamp(DATE_RANGE[0]) and dates.max() <= pd.Timestamp(DATE_RANGE[1])
    np.testing.assert_array_equal(m["ecg_date"].to_numpy(str), acquisition_date_column(12, 0))
    assert not np.array_equal(acquisition_date_column(12, 0), acquisition_date_column(12, 1))
