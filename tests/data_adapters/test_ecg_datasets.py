"""PTB-XL, MIMIC-IV-ECG and CODE-15% adapters on folders written here in each dataset's layout."""

import numpy as np
import pandas as pd
import pytest

from data_adapters import AdapterError
from data_adapters.code15 import code15_manifest
from data_adapters.mimic_iv_ecg import mimic_iv_ecg_manifest
from data_adapters.ptbxl import ptbxl_manifest
from riskfm.data.cohort import Cohort
from riskfm.ecg import read_ecg
from riskfm.ecg.wfdb_write import write_wfdb

STD = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]


def _sig(n, seed):
    return np.random.default_rng(seed).normal(0, 0.3, size=(12, n)).astype(np.float32)


def _write(path, sig, fs, names):
    path.parent.mkdir(parents=True, exist_ok=True)
    write_wfdb(path, sig, fs, names)


def test_ptbxl(tmp_path):
    rows = []
    for ecg_id, pid in [(1, 15709.0), (2, 13243.0), (3, 15709.0)]:
        for rate, suffix in ((500, "hr"), (100, "lr")):
            _write(tmp_path / f"records{rate}" / "00000" / f"{ecg_id:05d}_{suffix}", _sig(rate * 2, ecg_id), rate,
                   STD)
        rows.append({"ecg_id": ecg_id, "patient_id": pid, "age": 56.0, "sex": ecg_id % 2,
                     "filename_lr": f"records100/00000/{ecg_id:05d}_lr",
                     "filename_hr": f"records500/00000/{ecg_id:05d}_hr",
                     "scp_codes": "{'NORM': 100.0, 'SR': 0.0}", "strat_fold": ecg_id})
    pd.DataFrame(rows).to_csv(tmp_path / "ptbxl_database.csv", index=False)
    m = ptbxl_manifest(tmp_path, out=tmp_path / "manifest.csv")
    assert list(m["patient_id"]) == ["13243", "15709"] and list(m["ecg_id"]) == [2, 1]
    assert m["scp_codes"].iloc[0] == "NORM;SR" and m["sex"].tolist() == ["M", "F"]
    cohort = Cohort.from_manifest(tmp_path / "manifest.csv", modalities=["ecg"])
    assert len(cohort) == 2 and read_ecg(cohort.df["ecg_path"].iloc[0]).fs == 500
    assert len(ptbxl_manifest(tmp_path, rate=100, one_per_patient="record")) == 3
    (tmp_path / "records500" / "00000" / "00003_hr.hea").unlink()
    with pytest.raises(AdapterError, match="00003_hr.hea"):
        ptbxl_manifest(tmp_path)


def test_mimic_iv_ecg_lead_order(tmp_path):
    mimic_order = ["I", "II", "III", "aVR", "aVF", "aVL", "V1", "V2", "V3", "V4", "V5", "V6"]
    sig = _sig(5000, 0)
    rel = "files/p1000/p10000032/s40689238/40689238"
    _write(tmp_path / rel, sig, 500, mimic_order)
    pd.DataFrame([{"subject_id": 10000032, "study_id": 40689238, "file_name": "40689238",
                   "ecg_time": "2180-07-23 08:44:00", "path": rel}]).to_csv(tmp_path / "record_list.csv", index=False)
    pd.DataFrame([{"subject_id": 10000032, "study_id": 40689238, "report_0": "Sinus rhythm",
                   "report_1": "Normal ECG", "rr_interval": 659, "qrs_axis": 81}]).to_csv(
        tmp_path / "machine_measurements.csv", index=False)
    m = mimic_iv_ecg_manifest(tmp_path, out=tmp_path / "manifest.csv")
    assert m["machine_report"].iloc[0] == "Sinus rhythm | Normal ECG" and m["rr_interval"].iloc[0] == 659
    ecg = read_ecg(tmp_path / m["ecg_path"].iloc[0])
    assert ecg.leads == tuple(STD)
    np.testing.assert_allclose(ecg.lead("aVL"), sig[5], atol=2e-3)  # stored 6th, comes out 5th
    np.testing.assert_allclose(ecg.lead("aVF"), sig[4], atol=2e-3)


def test_code15(tmp_path):
    import h5py

    tracings = np.zeros((2, 4096, 12), np.float32)
    tracings[:, 48:4048] = np.random.default_rng(0).normal(0, 0.3, (2, 4000, 12))
    with h5py.File(tmp_path / "exams_part0.hdf5", "w") as h:
        h["tracings"], h["exam_id"] = tracings, np.array([101, 202])
    pd.DataFrame([
        {"exam_id": 101, "age": 60, "is_male": True, "1dAVb": False, "RBBB": True, "LBBB": False, "SB": False,
         "ST": False, "AF": False, "patient_id": 7, "death": False, "timey": 2.5, "normal_ecg": False,
         "trace_file": "exams_part0.hdf5"},
        {"exam_id": 202, "age": 40, "is_male": False, "1dAVb": False, "RBBB": False, "LBBB": False, "SB": False,
         "ST": False, "AF": True, "patient_id": 8, "death": True, "timey": 1.0, "normal_ecg": False,
         "trace_file": "exams_part0.hdf5"},
    ]).to_csv(tmp_path / "exams.csv", index=False)
    m = code15_manifest(tmp_path, out=tmp_path / "manifest.csv")
    assert m["ecg_path"].tolist() == ["exams_part0.hdf5::101", "exams_part0.hdf5::202"]
    assert m["event"].tolist() == [0.0, 1.0] and m["time_to_event_days"].iloc[1] == pytest.approx(365.25)
    ecg = read_ecg(tmp_path / m["ecg_path"].iloc[1])
    assert ecg.fs == 400 and ecg.n_samples == 4000
    np.testing.assert_array_equal(ecg.lead("V6"), tracings[1, 48:4048, 11])
    bad = pd.read_csv(tmp_path / "exams.csv")
    bad.loc[1, "exam_id"] = 999
    bad.to_csv(tmp_path / "exams.csv", index=False)
    with pytest.raises(AdapterError, match=r"exams_part0.hdf5.*\[999\]"):
        code15_manifest(tmp_path)
