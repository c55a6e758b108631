import numpy as np
import pytest
import torch

from riskfm.ct.spec import CTInputSpec
from riskfm.data import Cohort, collate_samples
from riskfm.data.dataset import RiskDataset, prepare_cohort
from riskfm.ecg.spec import ECGInputSpec
from tests.train.foreign_cohort import write_foreign_cohort


@pytest.fixture(scope="module")
def foreign(tmp_path_factory):
    root = tmp_path_factory.mktemp("foreign_ds")
    return write_foreign_cohort(root, n=12)


def test_prepared_samples_follow_the_encoder_specs(foreign):
    cohort = Cohort.from_manifest(foreign)
    ecg_spec, ct_spec = ECGInputSpec(fs=500, n_samples=4000), CTInputSpec(spacing=(3.0, 2.0, 2.0), shape=(16, 24, 24))
    prepared = prepare_cohort(cohort, ecg_spec=ecg_spec, ct_spec=ct_spec, n_workers=2)
    assert not prepared.failures and len(prepared.ecg) == len(prepared.ct_hu) == 12
    ds = RiskDataset(cohort, prepared, clinical="text")
    s = ds[0]
    assert s.ecg.shape == (12, 4000) and s.ecg_lead_mask.all()  # 250 Hz x 10 s resampled to 500 Hz, cropped
    assert s.ct.shape == (4, 16, 24, 24) and 0.0 <= s.ct.min() and s.ct.max() <= 1.0
    assert s.clinical_text.startswith("The following is a summary") and "Age:" in s.clinical_text
    assert s.stenosis.shape == (4,)
    batch = collate_samples([ds[i] for i in range(4)])
    assert batch["ecg"].dtype == torch.float32 and batch["ct_present"].all()


def test_unreadable_file_excludes_patient_with_reason(foreign, tmp_path):
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(foreign.parent, root)
    hea = root / "waveforms" / "subj-003.hea"
    hea.write_text("this is not a WFDB header\n")
    cohort = Cohort.from_manifest(root / "cohort.csv", modalities=["ecg"])
    prepared = prepare_cohort(cohort, ecg_spec=ECGInputSpec(), n_workers=1)
    assert [f["patient_id"] for f in prepared.failures] == ["subj-003"]
    assert "ecg unreadable" in prepared.failures[0]["reason"] and "subj-003.hea" in prepared.failures[0]["reason"]
    cohort.exclude(prepared.failures)
    assert "subj-003" not in set(cohort.patient_ids) and len(cohort) == 11
    assert "excluded 1: ecg unreadable" in cohort.report()


def test_missing_modality_is_absent_not_zero_filled_silently(foreign):
    cohort = Cohort.from_manifest(foreign)
    cohort.df.loc[0, "ct_path"] = ""
    prepared = prepare_cohort(cohort, ct_spec=CTInputSpec(shape=(8, 16, 16)), n_workers=1)
    ds = RiskDataset(cohort, prepared, clinical=None)
    assert ds[0].ct is None and ds[1].ct is not None
    batch = collate_samples([ds[0], ds[1]])
    assert batch["ct_present"].tolist() == [False, True]
    assert np.all(batch["ct"][0].numpy() == 0)


def test_median_beat_representation(foreign):
    cohort = Cohort.from_manifest(foreign, modalities=["ecg"])
    spec = ECGInputSpec(fs=250, n_samples=2500, bandpass_hz=(0.67, 40.0), representation="median_beat")
    prepared = prepare_cohort(cohort, ecg_spec=spec, n_workers=1)
    assert not prepared.failures
    x, _ = next(iter(prepared.ecg.values()))
    assert x.shape == (12, spec.input_samples) == (12, int(0.25 * 250) + int(round(0.45 * 250)))
