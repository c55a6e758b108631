import numpy as np
import pandas as pd
import pytest

from riskfm.data import Cohort, ManifestError
from riskfm.data.manifest import clinical_columns, validate_manifest


def _manifest(tmp_path, rows, name="manifest.csv"):
    path = tmp_path / name
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_reserved_columns_and_clinical_columns(tmp_path):
    (tmp_path / "ecg").mkdir()
    (tmp_path / "ecg" / "a.hea").write_text("x")
    path = _manifest(tmp_path, [
        {"patient_id": "A", "site": "s1", "ecg_path": "ecg/a.hea", "ct_path": "", "age": 60, "sex": "male",
         "stenosis_rca": 1, "stenosis_lm": 0, "stenosis_lad": "", "stenosis_lcx": 0, "mace_30d": 0},
        {"patient_id": "B", "site": "s1", "ecg_path": "", "ct_path": "", "age": 70, "sex": "female",
         "stenosis_rca": 0, "stenosis_lm": 0, "stenosis_lad": 1, "stenosis_lcx": 0, "mace_30d": 1},
    ])
    cohort = Cohort.from_manifest(path, modalities=["ecg", "clinical"])
    assert cohort.clinical_columns == ["age", "sex"]
    # paths are resolved against the manifest's folder
    assert cohort.df.loc[0, "ecg_path"] == str(tmp_path / "ecg" / "a.hea")
    assert cohort.df.loc[1, "ecg_path"] == ""
    assert np.isnan(cohort.df.loc[0, "stenosis_lad"])
    # optional reserved columns absent from the file are added empty
    assert cohort.df["time_to_event_days"].isna().all()
    assert cohort.has("ecg").tolist() == [True, False]


def test_duplicate_patient_ids_are_named(tmp_path):
    path = _manifest(tmp_path, [{"patient_id": "A"}, {"patient_id": "A"}])
    with pytest.raises(ManifestError, match=r"duplicated: \['A'\]"):
        Cohort.from_manifest(path)


def test_bad_label_names_row_and_column(tmp_path):
    path = _manifest(tmp_path, [{"patient_id": "A", "mace_30d": 0}, {"patient_id": "B", "mace_30d": 2}])
    with pytest.raises(ManifestError, match=r"mace_30d.*row 3.*'B'"):
        Cohort.from_manifest(path)


def test_negative_time_is_rejected(tmp_path):
    path = _manifest(tmp_path, [{"patient_id": "A", "time_to_event_days": -3}])
    with pytest.raises(ManifestError, match="time_to_event_days"):
        Cohort.from_manifest(path)


def test_missing_patient_id_column(tmp_path):
    path = _manifest(tmp_path, [{"id": "A"}])
    with pytest.raises(ManifestError, match="patient_id"):
        Cohort.from_manifest(path)


def test_missing_manifest_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="manifest not found"):
        Cohort.from_manifest(tmp_path / "nope.csv")


def test_missing_files_excluded_with_reason_and_count(tmp_path):
    path = _manifest(tmp_path, [
        {"patient_id": "A", "ecg_path": "ecg/missing.hea"},
        {"patient_id": "B", "ecg_path": ""},
    ])
    cohort = Cohort.from_manifest(path, modalities=["ecg"])
    assert cohort.patient_ids.tolist() == ["B"]
    assert cohort.exclusions["patient_id"].tolist() == ["A"]
    assert "ecg_path file not found" in cohort.exclusions["reason"].iloc[0]
    assert "1 excluded" in cohort.report()
    # treat as a missing modality instead of excluding
    kept = Cohort.from_manifest(path, modalities=["ecg"], on_missing_file="missing")
    assert kept.patient_ids.tolist() == ["A", "B"] and not kept.has("ecg").any()
    assert len(kept.missing_files) == 1
    with pytest.raises(FileNotFoundError, match=r"row 2 \(patient 'A'\).*missing.hea"):
        Cohort.from_manifest(path, modalities=["ecg"], on_missing_file="raise")


def test_ct_files_not_checked_when_ct_unused(tmp_path):
    path = _manifest(tmp_path, [{"patient_id": "A", "ct_path": "ct/none.nii.gz", "age": 60}])
    assert len(Cohort.from_manifest(path, modalities=["clinical"])) == 1


def test_parquet_manifest(tmp_path):
    df = pd.DataFrame({"patient_id": ["1", "2"], "age": [50, 60], "mace_30d": [0.0, 1.0]})
    df.to_parquet(tmp_path / "m.parquet")
    cohort = Cohort.from_manifest(tmp_path / "m.parquet", modalities=["clinical"])
    assert cohort.patient_ids.tolist() == ["1", "2"] and cohort.clinical_columns == ["age"]


def test_validate_keeps_ids_as_text():
    df = validate_manifest(pd.DataFrame({"patient_id": ["007", "010"]}))
    assert df["patient_id"].tolist() == ["007", "010"]
    assert clinical_columns(df) == []
