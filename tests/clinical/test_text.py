"""Clinical variables written as text behind CORA's prompt."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from riskfm.clinical import CORA_PROMPT, serialise_clinical
from riskfm.clinical.text import canonical_variable

RECORD = {
    "age": 63.2,
    "sex": "female",
    "race": "White",
    "bmi": 29.04,
    "sbp": 127.6,
    "dbp": 72.0,
    "tobacco": "former",
    "hypertension": 1,
    "diabetes": False,
    "total_cholesterol": 170.4,
    "ldl": 96.5,
    "hdl": 49.7,
}

EXPECTED_BODY = (
    "Age: 63 years. Sex: female. Race: White. BMI: 29.0 kg/m2. Systolic blood pressure: 128 mmHg. "
    "Diastolic blood pressure: 72 mmHg. Tobacco use: former. Hypertension: yes. Diabetes mellitus: no. "
    "Total cholesterol: 170 mg/dL. LDL cholesterol: 96 mg/dL. HDL cholesterol: 50 mg/dL."
)


def test_full_record_reads_as_clinical_text_behind_the_prompt():
    text = serialise_clinical(RECORD)
    assert text == f"{CORA_PROMPT} {EXPECTED_BODY}"


def test_deterministic_and_independent_of_known_column_order():
    shuffled = dict(reversed(list(RECORD.items())))
    assert serialise_clinical(RECORD) == serialise_clinical(dict(RECORD)) == serialise_clinical(shuffled)


def test_column_name_variants_are_recognised_case_insensitively():
    variant = {
        "Age": 63, "Gender": "F", "Race/Ethnicity": "White", "Body Mass Index": 29, "SYSTOLIC_BP": 128,
        "diastolic-bp": 72, "Smoking_Status": "former", "HTN": True, "DM": 0, "Cholesterol": 170,
        "LDL_C": 96, "hdl cholesterol": 50,
    }
    assert serialise_clinical(variant, prompt=None) == EXPECTED_BODY
    assert canonical_variable("Systolic Blood Pressure").name == "sbp"
    assert canonical_variable("creatinine") is None


def test_pandas_row_with_numpy_types_and_missing_values():
    df = pd.DataFrame([{**RECORD, "ldl": np.nan, "tobacco": "", "hypertension": np.int8(1)}])
    text = serialise_clinical(df.iloc[0], prompt="")
    assert "LDL cholesterol: unknown." in text
    assert "Tobacco use: unknown." in text
    assert "Hypertension: yes." in text
    assert text.startswith("Age: 63 years.")


@pytest.mark.parametrize("value", [None, math.nan, "", "  ", pd.NA])
def test_missing_values_unknown_or_omitted(value):
    record = {"age": 70, "hdl": value}
    assert serialise_clinical(record, prompt=None) == "Age: 70 years. HDL cholesterol: unknown."
    assert serialise_clinical(record, prompt=None, missing="omit") == "Age: 70 years."
    with pytest.raises(ValueError, match="missing"):
        serialise_clinical(record, missing="drop")


def test_unknown_columns_follow_in_record_order():
    record = {"family_history_cad": True, "age": 55, "troponin_t": 0.014, "chest_pain_type": "atypical"}
    text = serialise_clinical(record, prompt=None, units={"troponin_t": "ng/mL"})
    assert text == (
        "Age: 55 years. Family history cad: yes. Troponin t: 0.014 ng/mL. Chest pain type: atypical."
    )


def test_prompt_first_custom_prompt_and_labels():
    text = serialise_clinical({"age": 40}, prompt="Summarise risk.", labels={"age": "Patient age"})
    assert text == "Summarise risk. Patient age: 40 years."
    assert serialise_clinical({"age": 40}).startswith(CORA_PROMPT + " Age: 40 years.")


def test_custom_unit_is_not_rounded_to_an_integer():
    text = serialise_clinical({"total_cholesterol": 4.42}, prompt=None, units={"total_cholesterol": "mmol/L"})
    assert text == "Total cholesterol: 4.42 mmol/L."


def test_sex_codes_and_male_indicator():
    assert serialise_clinical({"sex": "M"}, prompt=None) == "Sex: male."
    assert serialise_clinical({"is_male": 0}, prompt=None) == "Sex: female."
    # Numeric sex codes differ between datasets: written as given, never guessed.
    assert serialise_clinical({"sex": 1}, prompt=None) == "Sex: 1."


def test_bad_values_raise_clear_errors():
    with pytest.raises(ValueError, match="'age'.*number"):
        serialise_clinical({"age": "sixty"})
    with pytest.raises(ValueError, match="'hypertension'.*yes/no"):
        serialise_clinical({"hypertension": 2})
    with pytest.raises(ValueError, match="'sbp' and 'systolic_bp'"):
        serialise_clinical({"sbp": 120, "systolic_bp": 121})
    with pytest.raises(TypeError):
        serialise_clinical(["age", 63])
