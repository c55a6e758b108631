"""Manifest columns: label look-alikes, pasted-twice headers, mostly numeric columns, declared types."""

import numpy as np
import pandas as pd
import pytest

from riskfm.data import Cohort, ManifestError
from riskfm.data.columns import clinical_summary, parse_clinical_spec, reserved_lookalikes
from riskfm.data.manifest import RESERVED_COLUMNS


def _write(tmp_path, rows, name="m.csv"):
    path = tmp_path / name
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _rows(n=10, **extra):
    rows = []
    for i in range(n):
        row = {"patient_id": f"P{i}", "age": 40 + i, "sex": "F" if i % 2 else "M", "mace_30d": i % 2}
        row.update({k: (v[i] if isinstance(v, list) else v) for k, v in extra.items()})
        rows.append(row)
    return rows


@pytest.mark.parametrize("column,reserved", [
    ("Stenosis_LAD", "stenosis_lad"), ("MACE 30d", "mace_30d"), ("Event", "event"), ("ECG Path", "ecg_path"),
    ("lad_stenosis", "stenosis_lad"), ("stenosis-lad-severe", "stenosis_lad"), ("PatientID", "patient_id"),
    ("time to event (days)", "time_to_event_days"),
])
def test_reserved_lookalike_is_an_error_naming_both_columns(tmp_path, column, reserved):
    path = _write(tmp_path, _rows(**{column: 1}))
    with pytest.raises(ManifestError) as err:
        Cohort.from_manifest(path, modalities=["clinical"])
    assert repr(column) in str(err.value) and repr(reserved) in str(err.value)


def test_lookalike_rule_leaves_ordinary_clinical_names_alone():
    names = ["age", "sex", "prior_mace", "event_free_years", "ecg_quality_score", "lad_dominance", "site_visits"]
    assert reserved_lookalikes(names, RESERVED_COLUMNS) == []


def test_explicit_clinical_columns_ignore_unlisted_lookalikes(tmp_path):
    path = _write(tmp_path, _rows(**{"Stenosis_LAD": 1}))
    cohort = Cohort.from_manifest(path, modalities=["clinical"], clinical=["age", "sex"])
    assert cohort.clinical_columns == ["age", "sex"]


def test_column_pasted_twice_is_an_error(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("patient_id,mace_30d,age,mace_30d\nA,1,50,1\nB,0,60,0\n")
    with pytest.raises(ManifestError, match=r"'mace_30d' appears more than once"):
        Cohort.from_manifest(path, modalities=["clinical"])


def test_mostly_numeric_column_with_text_names_rows_and_values(tmp_path):
    ages = [40 + i for i in range(10)]
    ages[3] = "sixty"
    path = _write(tmp_path, _rows(age=ages))
    with pytest.raises(ManifestError) as err:
        Cohort.from_manifest(path, modalities=["clinical"])
    msg = str(err.value)
    assert "'age'" in msg and "row 5: 'sixty'" in msg and "1 of 10" in msg


def test_declared_categorical_accepts_codes_and_declared_numeric_rejects_text(tmp_path):
    codes = ["1", "2", "3", "2", "1", "unknown", "3", "2", "1", "2"]
    path = _write(tmp_path, _rows(nyha=codes))
    cohort = Cohort.from_manifest(path, modalities=["clinical"], clinical={"age": "numeric", "nyha": "categorical"})
    assert cohort.clinical_types == {"age": "numeric", "nyha": "categorical"}
    assert cohort.df["nyha"].tolist() == codes
    with pytest.raises(ManifestError, match=r"'nyha' is declared numeric.*row 7: 'unknown'"):
        Cohort.from_manifest(path, modalities=["clinical"], clinical={"nyha": "numeric"})


def test_na_values_make_placeholders_missing(tmp_path):
    ages = [40 + i for i in range(10)]
    ages[2] = "?"
    path = _write(tmp_path, _rows(age=ages))
    cohort = Cohort.from_manifest(path, modalities=["clinical"], na_values=["?"])
    assert cohort.clinical_types["age"] == "numeric" and np.isnan(cohort.df["age"].iloc[2])


def test_inferred_types_and_summary(tmp_path):
    path = _write(tmp_path, _rows(smoker=["yes", "no", "", "no", "yes", "no", "no", "yes", "no", "no"]))
    cohort = Cohort.from_manifest(path, modalities=["clinical"])
    assert cohort.clinical_types == {"age": "numeric", "sex": "categorical", "smoker": "categorical"}
    table = clinical_summary(cohort.df, cohort.clinical_types).set_index("column")
    assert table.loc["smoker", "missing"] == pytest.approx(0.1)
    assert table.loc["age", "values"] == "40 .. 49"


@pytest.mark.parametrize("targets,match", [
    (["stenosis"], r"target 'stenosis' needs column\(s\) \['stenosis_rca'"),
    (["survival"], r"needs column\(s\) \['time_to_event_days', 'event'\]"),
])
def test_requested_target_without_its_columns_is_an_error(tmp_path, targets, match):
    path = _write(tmp_path, _rows())
    with pytest.raises(ManifestError, match=match):
        Cohort.from_manifest(path, modalities=["clinical"], targets=targets)


def test_target_column_with_no_label_is_an_error(tmp_path):
    path = _write(tmp_path, _rows(stenosis_lad=""))
    with pytest.raises(ManifestError, match=r"'stenosis_lad'\] hold no labels"):
        Cohort.from_manifest(path, modalities=["clinical"], targets=["stenosis_lad"])


@pytest.mark.parametrize("extra,match", [
    ({}, r"modality 'ecg' is requested but the manifest has no 'ecg_path' column"),
    ({"ecg_path": ""}, r"column 'ecg_path' is empty in every row"),
])
def test_requested_modality_without_paths_is_an_error(tmp_path, extra, match):
    path = _write(tmp_path, _rows(**extra))
    with pytest.raises(ManifestError, match=match):
        Cohort.from_manifest(path, modalities=["ecg"], targets=["mace_30d"])


def test_clinical_spec_forms():
    assert parse_clinical_spec(["age", {"smoker": "categorical"}]) == {"age": None, "smoker": "categorical"}
    assert parse_clinical_spec({"age": "numeric"}) == {"age": "numeric"}
    with pytest.raises(ValueError, match="listed twice"):
        parse_clinical_spec(["age", "age"])
    with pytest.raises(ValueError, match="must be one of"):
        parse_clinical_spec({"age": "ordinal"})


def test_wfdb_record_names_without_extension_are_found(tmp_path):
    import wfdb

    (tmp_path / "ecg").mkdir()
    sig = np.sin(np.linspace(0, 60, 5000))[:, None] * np.ones((1, 12)) * 0.5
    leads = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
    for i in range(3):
        wfdb.wrsamp(f"P{i:05d}", fs=500, units=["mV"] * 12, sig_name=leads, p_signal=sig, fmt=["16"] * 12,
                    write_dir=str(tmp_path / "ecg"))
    rows = [{"patient_id": f"P{i}", "ecg_path": f"ecg/P{i:05d}", "mace_30d": i % 2} for i in range(3)]
    cohort = Cohort.from_manifest(_write(tmp_path, rows), modalities=["ecg"], targets=["mace_30d"])
    assert len(cohort) == 3 and cohort.exclusions.empty


def test_scoring_patients_without_a_modality_needs_the_column_but_not_values(tmp_path):
    path = _write(tmp_path, _rows(ct_path=""))
    cohort = Cohort.from_manifest(path, modalities=["ct", "clinical"], allow_empty_modalities=True)
    assert len(cohort) == 10 and not cohort.has("ct").any()
    with pytest.raises(ManifestError, match="no 'ct_path' column"):
        Cohort.from_manifest(_write(tmp_path, _rows(), "m2.csv"), modalities=["ct"], allow_empty_modalities=True)
