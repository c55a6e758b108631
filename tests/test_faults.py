"""The fault suite: real-site mistakes in ECG, CT, DICOM, manifest, config, checkpoint and run folder.

Each case builds one faulty input and states its outcome class:

* ``error``: a clear error (a user-error type: ``ValueError``, ``OSError`` or ``RiskfmError``)
  whose message matches the pattern (it names the file / row / field and the problem);
* ``excluded``: the patient is dropped with a counted reason matching the pattern;
* ``kept``: the documented correct handling (the patient is kept, the check says how).

File cases go through the pipeline ``riskfm train`` uses: ``Cohort.from_manifest`` (what is
listed) then ``prepare_cohort`` with the default plausibility checks (what the files hold).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import torch
import wfdb
from pydicom.uid import generate_uid

from riskfm.ct.spec import CTInputSpec
from riskfm.data import Cohort
from riskfm.data.dataset import prepare_cohort
from riskfm.ecg.spec import ECGInputSpec
from riskfm.errors import RiskfmError

from .ct.test_io import _write_slice

LEADS = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
ECG_SPEC = ECGInputSpec(fs=500, n_samples=5000)
CT_SPEC = CTInputSpec(spacing=(3.0, 2.0, 2.0), shape=(12, 16, 16))


# ----------------------------------------------------------------------------------- builders
def ecg_signal(fs: float = 500, seconds: float = 10.0, seed: int = 0) -> np.ndarray:
    """[T, 12] mV: R waves at 75 bpm, lead-specific gains, a little noise."""
    t = np.arange(int(fs * seconds)) / fs
    beat = np.exp(-(((t % 0.8) - 0.3) ** 2) / 0.0004) - 0.15 * np.exp(-(((t % 0.8) - 0.55) ** 2) / 0.004)
    rng = np.random.default_rng(seed)
    return np.stack([beat * (0.6 + 0.1 * k) for k in range(12)], 1) + rng.normal(0, 0.02, (t.size, 12))


def write_ecg(folder: Path, name: str = "P00001", signal=None, fs: float = 500, units=None, leads=None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    sig = ecg_signal(fs) if signal is None else signal
    wfdb.wrsamp(name, fs=fs, units=units or ["mV"] * sig.shape[1], sig_name=leads or LEADS[: sig.shape[1]],
                p_signal=sig, fmt=["16"] * sig.shape[1], write_dir=str(folder))
    return folder / name


def ct_hu(shape=(32, 32, 20), seed: int = 0) -> np.ndarray:
    """[X, Y, Z] HU on disk: air around a soft-tissue body, scanner noise."""
    vol = np.full(shape, -1000.0)
    vol[6:26, 6:26, :] = 40.0
    vol[12:16, 12:16, 5:9] = 900.0
    return vol + np.random.default_rng(seed).normal(0, 10, shape)


def write_nifti(path: Path, data=None, affine=None, dtype=np.int16) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = ct_hu() if data is None else data
    nib.save(nib.Nifti1Image(np.asarray(np.round(data) if dtype != np.float32 else data, dtype),
                             np.diag([2.0, 2.0, 3.0, 1.0]) if affine is None else affine), str(path))
    return path


def write_dicom(folder: Path, n: int = 8, *, step: float = 3.0, skip: int | None = None, series_uid=None) -> list[Path]:
    """A CT series of n 16x16 slices named IM0001.. from the feet up (HU stored, intercept 0)."""
    folder.mkdir(parents=True, exist_ok=True)
    uid = series_uid or generate_uid()
    hu = ct_hu((16, 16, n))
    files = []
    for k in range(n):
        if k == skip:
            continue
        path = folder / f"IM{k + 1:04d}"
        _write_slice(path, np.round(hu[:, :, k]).astype(np.int16), series_uid=uid, position=(-20.0, -20.0, k * step),
                     instance=k + 1, pixel_spacing=(2.0, 2.0))
        files.append(path)
    return files


def truncate(path: Path, fraction: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])


def rotated_affine(degrees: float) -> np.ndarray:
    a = np.deg2rad(degrees)
    rot = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    affine = np.eye(4)
    affine[:3, :3] = rot @ np.diag([2.0, 2.0, 3.0])
    return affine


def manifest(tmp: Path, rows: list[dict], name: str = "manifest.csv") -> Path:
    path = tmp / name
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def patient(pid: str = "P1", **paths) -> dict:
    return {"patient_id": pid, "site": "a", "age": 61, "mace_30d": 1, **paths}


@dataclass
class Pipeline:
    cohort: Cohort
    ecg: dict
    ct_hu: dict


def pipeline(tmp: Path, rows: list[dict], modalities=("ecg",)) -> Pipeline:
    """What `riskfm train` does with a manifest before the first step: list, read, check, prepare."""
    cohort = Cohort.from_manifest(manifest(tmp, rows), modalities=list(modalities), targets=["mace_30d"])
    prepared = prepare_cohort(cohort, ecg_spec=ECG_SPEC if "ecg" in modalities else None,
                              ct_spec=CT_SPEC if "ct" in modalities else None, n_workers=1)
    cohort.exclude(prepared.failures)
    cohort.note(prepared.notes)
    return Pipeline(cohort, prepared.ecg, prepared.ct_hu)


def ecg_case(make: Callable[[Path], str]) -> Callable[[Path], Pipeline]:
    return lambda tmp: pipeline(tmp, [patient(ecg_path=make(tmp))], ("ecg",))


def ct_case(make: Callable[[Path], str]) -> Callable[[Path], Pipeline]:
    return lambda tmp: pipeline(tmp, [patient(ct_path=make(tmp))], ("ct",))


# ------------------------------------------------------------------------------- ECG file cases
def _ecg_edit_header(tmp: Path, old: str, new: str) -> str:
    rec = write_ecg(tmp / "ecg")
    hea = rec.with_suffix(".hea")
    hea.write_text(hea.read_text().replace(old, new, 1))
    return "ecg/P00001"


def _ecg_flat_lead(tmp):
    sig = ecg_signal()
    sig[:, 8] = 0.0  # V3 electrode off
    write_ecg(tmp / "ecg", signal=sig)
    return "ecg/P00001"


def _kept_with_v3_masked(p: Pipeline) -> None:
    x, mask = p.ecg["P1"]
    assert not mask[LEADS.index("V3")] and mask.sum() == 11 and not x[LEADS.index("V3")].any()


def _kept_12_leads(p: Pipeline) -> None:
    x, mask = p.ecg["P1"]
    assert x.shape == (12, ECG_SPEC.n_samples) and mask.all()


def _ct_grid(p: Pipeline) -> None:
    assert p.ct_hu["P1"].shape == CT_SPEC.shape


ECG_CASES = [
    ("ecg-record-name-without-extension", ecg_case(lambda t: (write_ecg(t / "ecg"), "ecg/P00001")[1]),
     "kept", _kept_12_leads),
    ("ecg-header-path", ecg_case(lambda t: (write_ecg(t / "ecg"), "ecg/P00001.hea")[1]), "kept", _kept_12_leads),
    ("ecg-signal-file-path", ecg_case(lambda t: (write_ecg(t / "ecg"), "ecg/P00001.dat")[1]), "kept", _kept_12_leads),
    ("ecg-250-hz-resampled", ecg_case(lambda t: (write_ecg(t / "ecg", signal=ecg_signal(250), fs=250), "ecg/P00001")[1]),
     "kept", _kept_12_leads),
    ("ecg-uv-units-declared", ecg_case(lambda t: (write_ecg(t / "ecg", signal=ecg_signal() * 1000, units=["uV"] * 12),
                                                  "ecg/P00001")[1]), "kept", _kept_12_leads),
    ("ecg-missing-file", ecg_case(lambda t: "ecg/P99999"), "excluded", r"ecg_path file not found"),
    ("ecg-header-without-signal-file",
     ecg_case(lambda t: (write_ecg(t / "ecg"), (t / "ecg" / "P00001.dat").unlink(), "ecg/P00001")[2]),
     "excluded", r"ecg unreadable: .*(not found|no such)"),
    ("ecg-truncated-signal-file",
     ecg_case(lambda t: (write_ecg(t / "ecg"), truncate(t / "ecg" / "P00001.dat"), "ecg/P00001")[2]),
     "excluded", r"ecg unreadable: .*holds 2,500 samples per channel but the header says 5,000"),
    ("ecg-zero-byte-signal-file",
     ecg_case(lambda t: (write_ecg(t / "ecg"), truncate(t / "ecg" / "P00001.dat", 0), "ecg/P00001")[2]),
     "excluded", r"ecg unreadable: .*empty"),
    ("ecg-garbage-header",
     ecg_case(lambda t: (write_ecg(t / "ecg"), (t / "ecg" / "P00001.hea").write_text("not a header\n"), "ecg/P00001")[2]),
     "excluded", r"ecg unreadable: .*header"),
    ("ecg-zero-sampling-rate", ecg_case(lambda t: _ecg_edit_header(t, " 500 ", " 0 ")), "excluded",
     r"ecg unreadable: .*sampling frequency"),
    ("ecg-nan-samples", ecg_case(lambda t: (write_ecg(t / "ecg", signal=np.where(
        np.arange(5000)[:, None] % 700 == 0, np.nan, ecg_signal())), "ecg/P00001")[1]),
     "excluded", r"ecg unreadable: .*(NaN|non-finite)"),
    ("ecg-uv-labelled-mv", ecg_case(lambda t: (write_ecg(t / "ecg", signal=ecg_signal() * 1000), "ecg/P00001")[1]),
     "excluded", r"ecg implausible: units: amplitude \d+ mV"),
    ("ecg-all-leads-flat", ecg_case(lambda t: (write_ecg(t / "ecg", signal=np.zeros((5000, 12))), "ecg/P00001")[1]),
     "excluded", r"ecg implausible: all leads flat"),
    ("ecg-record-of-0.1-s", ecg_case(lambda t: (write_ecg(t / "ecg", signal=ecg_signal(seconds=0.1)), "ecg/P00001")[1]),
     "excluded", r"ecg implausible: too short: record is 0.1 s"),
    ("ecg-one-flat-lead-masked", ecg_case(_ecg_flat_lead), "kept", _kept_with_v3_masked),
    ("ecg-no-standard-lead", ecg_case(lambda t: (write_ecg(t / "ecg", leads=[f"ch{i}" for i in range(12)]),
                                                 "ecg/P00001")[1]), "excluded", r"ecg unreadable: .*lead"),
    ("ecg-duplicate-lead", ecg_case(lambda t: _ecg_edit_header(t, " II\n", " I\n")),
     "excluded", r"ecg unreadable: .*(duplicate|twice|more than once)"),
    ("ecg-non-voltage-units", ecg_case(lambda t: (write_ecg(t / "ecg", units=["degC"] * 12), "ecg/P00001")[1]),
     "excluded", r"ecg unreadable: .*unit"),
    ("ecg-directory-instead-of-file", ecg_case(lambda t: ((t / "ecg" / "P1").mkdir(parents=True), "ecg/P1")[1]),
     "excluded", r"ecg_path file not found|ecg unreadable"),
]


# -------------------------------------------------------------------------------- CT file cases
def _dicom_with(tmp: Path, edit: Callable[[list[Path]], None] = lambda files: None, **kw) -> str:
    files = write_dicom(tmp / "ct" / "P1", **kw)
    edit(files)
    return "ct/P1/"


def _mixed_series(tmp):
    write_dicom(tmp / "ct" / "P1")
    other = write_dicom(tmp / "other", n=8)
    for f in other:
        shutil.move(f, tmp / "ct" / "P1" / f"B{f.name}")
    return "ct/P1"


CT_CASES = [
    ("ct-nifti-gz", ct_case(lambda t: (write_nifti(t / "ct" / "P1.nii.gz"), "ct/P1.nii.gz")[1]), "kept", _ct_grid),
    ("ct-nifti-uncompressed", ct_case(lambda t: (write_nifti(t / "ct" / "P1.nii"), "ct/P1.nii")[1]), "kept", _ct_grid),
    ("ct-dicom-folder-trailing-slash", ct_case(lambda t: _dicom_with(t)), "kept", _ct_grid),
    ("ct-dicom-folder-with-stray-files", ct_case(lambda t: _dicom_with(t, lambda f: (
        (f[0].parent / "notes.txt").write_text("reader notes"), (f[0].parent / ".DS_Store").write_bytes(b"\0" * 64)))),
     "kept", _ct_grid),
    ("ct-missing", ct_case(lambda t: "ct/P9.nii.gz"), "excluded", r"ct_path file not found"),
    ("dicom-truncated-first-slice", ct_case(lambda t: _dicom_with(t, lambda f: truncate(f[0]))), "excluded",
     r"ct unreadable: .*IM0001.*unreadable"),
    ("dicom-truncated-middle-slice", ct_case(lambda t: _dicom_with(t, lambda f: truncate(f[4]))), "excluded",
     r"ct unreadable: .*IM0005.*unreadable"),
    ("dicom-truncated-last-slice", ct_case(lambda t: _dicom_with(t, lambda f: truncate(f[-1]))), "excluded",
     r"ct unreadable: .*IM0008.*unreadable"),
    ("dicom-zero-byte-slice", ct_case(lambda t: _dicom_with(t, lambda f: (f[0].parent / "IM0009").write_bytes(b""))),
     "excluded", r"ct unreadable: .*IM0009.*zero bytes"),
    ("dicom-missing-slice", ct_case(lambda t: _dicom_with(t, skip=3)), "excluded", r"ct unreadable: .*(gap|step|spacing)"),
    ("dicom-mixed-series", ct_case(_mixed_series), "excluded", r"ct unreadable: .*series"),
    ("dicom-single-slice", ct_case(lambda t: _dicom_with(t, n=1)), "excluded", r"ct unreadable: .*at least 2 slices"),
    ("ct-single-slice-nifti", ct_case(lambda t: (write_nifti(t / "ct" / "P1.nii.gz", ct_hu((32, 32, 1))),
                                                 "ct/P1.nii.gz")[1]), "excluded", r"at least 2 slices"),
    ("ct-mask-given-as-ct", ct_case(lambda t: (write_nifti(t / "ct" / "P1.nii.gz", ct_hu() > 0, dtype=np.uint8),
                                               "ct/P1.nii.gz")[1]), "excluded", r"ct implausible: binary mask"),
    ("ct-stored-values-without-rescale", ct_case(lambda t: (write_nifti(t / "ct" / "P1.nii.gz", ct_hu() + 1024),
                                                            "ct/P1.nii.gz")[1]), "excluded", r"ct implausible: no air"),
    ("ct-values-beyond-scanner-range", ct_case(lambda t: (write_nifti(
        t / "ct" / "P1.nii.gz", np.where(ct_hu() > 800, 45000.0, ct_hu()), dtype=np.float32), "ct/P1.nii.gz")[1]),
     "excluded", r"ct implausible: values out of scanner range"),
    ("ct-oblique-affine", ct_case(lambda t: (write_nifti(t / "ct" / "P1.nii.gz", affine=rotated_affine(10)),
                                             "ct/P1.nii.gz")[1]), "excluded", r"ct implausible: oblique"),
    ("ct-nearly-axial-affine", ct_case(lambda t: (write_nifti(t / "ct" / "P1.nii.gz", affine=rotated_affine(0.2)),
                                                  "ct/P1.nii.gz")[1]), "kept", _ct_grid),
    ("ct-not-a-ct-file", ct_case(lambda t: ((t / "ct").mkdir(), (t / "ct" / "P1.mha").write_text("x"), "ct/P1.mha")[2]),
     "excluded", r"ct unreadable: .*unsupported CT format"),
]


# ------------------------------------------------------------------------------ manifest cases
def _manifest_error(rows: list[dict] | None = None, text: str | None = None, targets=("mace_30d",),
                    modalities=("clinical",), name="manifest.csv") -> Callable[[Path], object]:
    def run(tmp):
        if text is not None:
            path = tmp / name
            path.write_text(text)
        else:
            path = manifest(tmp, rows, name)
        return Cohort.from_manifest(path, modalities=list(modalities), targets=list(targets))
    return run


def _rows(n=6, **extra):
    return [{**patient(f"P{i}"), "mace_30d": i % 2, **{k: (v[i] if isinstance(v, list) else v) for k, v in extra.items()}}
            for i in range(n)]


MANIFEST_CASES = [
    ("manifest-label-lookalike-column", _manifest_error(_rows(Stenosis_LAD=1)), "error",
     r"'Stenosis_LAD' looks like the reserved column 'stenosis_lad'"),
    ("manifest-mace-lookalike-column", _manifest_error(_rows(**{"MACE 30d": 1})), "error", r"'MACE 30d'.*'mace_30d'"),
    ("manifest-label-column-pasted-twice", _manifest_error(
        text="patient_id,age,mace_30d,mace_30d\nP1,50,1,1\nP2,60,0,0\n"), "error", r"'mace_30d' appears more than once"),
    ("manifest-mostly-numeric-with-text", _manifest_error(_rows(age=[50, 61, "sixty", 70, 44, 58])), "error",
     r"column 'age' is mostly numeric.*row 4: 'sixty'"),
    ("manifest-target-column-absent", _manifest_error(_rows(), targets=("stenosis",)), "error",
     r"target 'stenosis' needs column"),
    ("manifest-target-column-empty", _manifest_error(_rows(mace_30d=""), targets=("mace_30d",)), "error",
     r"'mace_30d'\] hold no labels"),
    ("manifest-modality-column-absent", _manifest_error(_rows(), modalities=("ecg",)), "error",
     r"no 'ecg_path' column"),
    ("manifest-modality-column-empty", _manifest_error(_rows(ct_path=""), modalities=("ct",)), "error",
     r"'ct_path' is empty in every row"),
    ("manifest-duplicate-patient", _manifest_error([patient("P1"), patient("P1")]), "error", r"duplicated: \['P1'\]"),
    ("manifest-label-not-binary", _manifest_error(_rows(mace_30d=[0, 1, 2, 0, 1, 0])), "error",
     r"'mace_30d' must be 0, 1 or empty; row 4"),
    ("manifest-negative-time", _manifest_error(_rows(time_to_event_days=[-3, 1, 2, 3, 4, 5], event=1)), "error",
     r"'time_to_event_days' must be a non-negative number of days; row 2"),
    ("manifest-unknown-format", _manifest_error(_rows(), name="manifest.xlsx"), "error", r"unknown manifest format"),
    ("manifest-missing-file", lambda tmp: Cohort.from_manifest(tmp / "none.csv"), "error", r"manifest not found"),
]


# ----------------------------------------------------------------- config, encoder, checkpoint
def _config(**changes):
    def run(tmp):
        from riskfm.train.config import parse_config

        cfg = {"manifest": "m.csv"}
        for dotted, value in changes.items():
            node = cfg
            *parents, leaf = dotted.split("__")
            for p in parents:
                node = node.setdefault(p, {})
            node[leaf] = value
        return parse_config(cfg, "run.yaml")
    return run


def _encoder(name, **kwargs):
    def run(tmp):
        from riskfm.encoders import create_encoder

        return create_encoder(name, **kwargs)
    return run


class Payload:
    """A class a malicious checkpoint pickles (weights_only loading must refuse it)."""

    def __reduce__(self):
        return (os.system, ("echo pwned",))


def _checkpoint(kind: str):
    def run(tmp):
        from riskfm.train.checkpoint import load_checkpoint

        path = tmp / "model.pt"
        if kind == "corrupt":
            path.write_bytes(os.urandom(4096))
        elif kind == "truncated":
            torch.save({"model": {"w": torch.ones(100, 100)}}, path)
            truncate(path)
        elif kind == "unsafe":
            torch.save({"model": Payload()}, path)
        return load_checkpoint(path)
    return run


CONFIG_CASES = [
    ("config-unknown-key", _config(train__epoch=3), "error", r"train\.epoch: unknown key \(did you mean 'epochs'\?\)"),
    ("config-bad-devices", _config(train__devices="two"), "error", r"train\.devices: .*devices must be"),
    ("config-zero-devices", _config(train__devices=0), "error", r"train\.devices"),
    ("config-negative-epochs", _config(train__epochs=-1), "error", r"train\.epochs"),
    ("config-unknown-target", _config(targets=["mace"]), "error", r"unknown target\(s\) \['mace'\]"),
    ("config-clinical-type-typo", _config(data__clinical_columns={"age": "numerc"}), "error", r"clinical_columns"),
    ("config-check-limit-typo", _config(data__checks__ecg={"max_amplitude": 5}), "error",
     r"data\.checks\.ecg\.max_amplitude: unknown key \(did you mean 'max_amplitude_mv'\?\)"),
    ("encoder-unknown-name", _encoder("resnet1dd"), "error", r"resnet1dd.*resnet1d"),
    ("encoder-bad-keyword", _encoder("resnet1d-small", widht=3), "error", r"widht"),
    ("checkpoint-corrupt", _checkpoint("corrupt"), "error", r"model\.pt: not a readable .*checkpoint"),
    ("checkpoint-truncated", _checkpoint("truncated"), "error", r"model\.pt: not a readable .*checkpoint"),
    ("checkpoint-unsafe", _checkpoint("unsafe"), "error", r"model\.pt: refused"),
    ("checkpoint-missing", lambda tmp: _checkpoint("none")(tmp), "error", r"not found"),
]


# ---------------------------------------------------------------------------------- run folder
def _fingerprint(tmp: Path, manifest_text: str) -> dict:
    from riskfm.train.run_folder import run_fingerprint

    path = tmp / "m.csv"
    path.write_text(manifest_text)
    return run_fingerprint({"train": {"seed": 0, "epochs": 3}, "split": {"seed": 0}}, path, [])


def _reused_folder(tmp):
    from riskfm.train.run_folder import check_fingerprint, write_fingerprint

    (tmp / "run").mkdir()
    write_fingerprint(tmp / "run", _fingerprint(tmp, "patient_id\nA\n"))
    return check_fingerprint(tmp / "run", _fingerprint(tmp, "patient_id\nB\n"))


def _same_run_resumed(tmp):
    from riskfm.train.run_folder import check_fingerprint, write_fingerprint

    (tmp / "run").mkdir()
    write_fingerprint(tmp / "run", _fingerprint(tmp, "patient_id\nA\n"))
    assert check_fingerprint(tmp / "run", _fingerprint(tmp, "patient_id\nA\n")) is True


def _foreign_folder(tmp):
    from riskfm.train.run_folder import check_fingerprint

    (tmp / "run").mkdir()
    (tmp / "run" / "results.xlsx").write_text("x")
    return check_fingerprint(tmp / "run", _fingerprint(tmp, "patient_id\nA\n"))


def _locked(tmp):
    from riskfm.train.run_folder import LOCK, RunLock

    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (tmp / LOCK).write_text(json.dumps({"pid": holder.pid, "host": socket.gethostname(), "started": "x"}))
        RunLock(tmp).acquire()
    finally:
        holder.kill()
        holder.wait()


def _stale_lock(tmp):
    from riskfm.train.run_folder import LOCK, RunLock

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp / LOCK).write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname(), "started": "x"}))
    lock = RunLock(tmp).acquire()
    assert json.loads(lock.path.read_text())["pid"] == os.getpid()
    lock.release()


RUN_FOLDER_CASES = [
    ("run-folder-reused-with-another-manifest", _reused_folder, "error", r"holds another run .*manifest_sha256"),
    ("run-folder-same-run-resumes", _same_run_resumed, "kept", None),
    ("run-folder-not-a-run", _foreign_folder, "error", r"is not empty \(results\.xlsx\) and holds no fingerprint"),
    ("run-folder-locked-by-live-process", _locked, "error", r"being written by process \d+"),
    ("run-folder-stale-lock-replaced", _stale_lock, "kept", None),
]

CASES = ECG_CASES + CT_CASES + MANIFEST_CASES + CONFIG_CASES + RUN_FOLDER_CASES


def test_the_suite_covers_every_area_with_at_least_40_cases():
    assert len(CASES) >= 40
    assert len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("case_id,run,expect,check", CASES, ids=[c[0] for c in CASES])
def test_fault(tmp_path, case_id, run, expect, check):
    if expect == "error":
        with pytest.raises((ValueError, OSError, RiskfmError)) as err:
            run(tmp_path)
        assert "Traceback" not in str(err.value)
        assert re.search(check, str(err.value)), f"{case_id}: {err.value}"
        return
    result = run(tmp_path)
    if expect == "excluded":
        excl = result.cohort.exclusions
        assert len(result.cohort) == 0 and len(excl) == 1, f"{case_id}: kept {len(result.cohort)}"
        reason = str(excl["reason"].iloc[0])
        assert re.search(check, reason), f"{case_id}: {reason}"
        # the report counts the exclusion under its reason
        assert "excluded 1: " in result.cohort.report()
        return
    assert expect == "kept"
    if isinstance(result, Pipeline):
        assert len(result.cohort) == 1 and result.cohort.exclusions.empty, result.cohort.exclusions.to_dict("records")
    if check is not None:
        check(result)
