import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from riskfm.data import Cohort
from riskfm.synthetic import DEFAULT_SITES, sample_patients
from riskfm.synthetic.patients import STENOSIS_COLUMNS


def test_patient_model_matches_cora_table1_and_prevalences():
    df = sample_patients(6000, seed=1)
    dev = df[df["site"] != "site_ext"]
    assert dev["age"].mean() == pytest.approx(63.1, abs=1.0)
    assert dev["age"].std() == pytest.approx(13.8, abs=1.0)
    assert (dev["sex"] == "female").mean() == pytest.approx(0.42, abs=0.03)
    assert dev["bmi"].mean() == pytest.approx(29.0, abs=1.0)
    assert dev["sbp"].mean() == pytest.approx(127.8, abs=2.0)
    assert dev["hypertension"].mean() == pytest.approx(0.446, abs=0.03)
    assert dev["diabetes"].mean() == pytest.approx(0.143, abs=0.03)
    assert (dev["tobacco"] == "current").mean() == pytest.approx(0.051, abs=0.015)
    # severe stenosis is commonest in the LAD and rarest in the left main; MACE ~9-11%
    prev = df[list(STENOSIS_COLUMNS)].mean()
    assert prev["stenosis_lad"] > prev["stenosis_rca"] > prev["stenosis_lm"] and 0.01 < prev["stenosis_lm"] < 0.1
    assert 0.06 < df["mace_30d"].mean() < 0.15
    # the external site is shifted like CORA's external cohort (more women, more hypertension)
    ext = df[df["site"] == "site_ext"]
    assert (ext["sex"] == "female").mean() > (dev["sex"] == "female").mean()
    # stored probabilities are the labels' true probabilities: calibrated and informative
    for t in (*STENOSIS_COLUMNS, "mace_30d"):
        assert df[t].mean() == pytest.approx(df[f"p_{t}"].mean(), abs=0.02)
        assert 0.8 < roc_auc_score(df[t], df[f"p_{t}"]) < 0.995
    # 30-day status is always observed: censoring starts after day 90
    assert ((df["mace_30d"] == 1) <= (df["event"] == 1)).all()
    assert (df.loc[df["event"] == 0, "time_to_event_days"] >= 90).all()


def test_patient_model_is_seeded():
    pd.testing.assert_frame_equal(sample_patients(50, seed=4), sample_patients(50, seed=4))
    assert not sample_patients(50, seed=4).equals(sample_patients(50, seed=5))


def test_written_cohort_loads_and_reads(tiny_cohort):
    from riskfm.ct import read_ct
    from riskfm.ecg import read_ecg

    cohort = Cohort.from_manifest(tiny_cohort.manifest_path)
    assert len(cohort) == 80 and len(cohort.exclusions) == 0
    assert set(cohort.clinical_columns) == {"age", "sex", "race", "bmi", "sbp", "dbp", "tobacco", "hypertension",
                                            "diabetes", "total_cholesterol", "ldl", "hdl"}
    assert {s.name for s in DEFAULT_SITES} >= set(cohort.df["site"])
    oracle = tiny_cohort.oracle()
    assert not set(oracle.columns) & set(cohort.clinical_columns)  # truth never leaks into the manifest
    assert all(c not in cohort.df.columns for c in oracle.columns if c.startswith(("p_", "severity_")))
    row = cohort.df[cohort.df["ecg_path"] != ""].iloc[0]
    ecg = read_ecg(row["ecg_path"])
    assert ecg.signal.shape == (12, 5000) and ecg.fs == 500
    assert np.abs(ecg.signal).max() < 10  # mV
    row = cohort.df[cohort.df["ct_path"] != ""].iloc[0]
    ct = read_ct(row["ct_path"])
    assert ct.array.shape == (40, 64, 64) and np.allclose(ct.spacing, (2.0, 1.5, 1.5))
    assert ct.array.min() < -500 and ct.array.max() > 300  # air and contrast


def test_make_cohort_is_deterministic_across_worker_counts(tmp_path):
    from riskfm.synthetic import make_cohort

    a = make_cohort(n=6, seed=9, out_dir=tmp_path / "a", n_workers=1)
    b = make_cohort(n=6, seed=9, out_dir=tmp_path / "b", n_workers=2)
    pd.testing.assert_frame_equal(a.manifest(), b.manifest())
    pid = a.manifest().query("ecg_path != ''")["patient_id"].iloc[0]
    assert (tmp_path / "a" / "ecg" / f"{pid}.dat").read_bytes() == (tmp_path / "b" / "ecg" / f"{pid}.dat").read_bytes()


def test_every_synthetic_patient_passes_the_default_plausibility_checks(tiny_cohort):
    """The embedded cohort is realistic enough that no check excludes anyone (lungs near -850 HU
    in a heart-cropped CT once failed an air check set at -900 HU: 22 of 300 demo patients)."""
    from riskfm.ct.spec import CTInputSpec
    from riskfm.data.dataset import prepare_cohort
    from riskfm.ecg.spec import ECGInputSpec

    cohort = Cohort.from_manifest(tiny_cohort.manifest_path)
    prepared = prepare_cohort(cohort, ecg_spec=ECGInputSpec(), ct_spec=CTInputSpec(shape=(8, 16, 16)), n_workers=2)
    assert prepared.failures == [] and prepared.notes == []
    assert len(prepared.ecg) == int(cohort.has("ecg").sum()) and len(prepared.ct_hu) == int(cohort.has("ct").sum())
