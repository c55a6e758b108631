"""Write a patient's clinical variables as natural language behind a prompt (CORA's text input).

A language model reads clinical variables best as the sentences a clinician would write, so each
variable becomes ``"<Label>: <value> <unit>."``, e.g.::

    The following is a summary of ... cardiovascular events. Age: 63 years. Sex: female.
    Race: White. BMI: 29.0 kg/m2. Systolic blood pressure: 128 mmHg. Diastolic blood pressure:
    72 mmHg. Tobacco use: former. Hypertension: yes. Diabetes mellitus: no. Total cholesterol:
    170 mg/dL. LDL cholesterol: 96 mg/dL. HDL cholesterol: 50 mg/dL.

Rules (deterministic: the same record always gives the same text, byte for byte, which is what lets a
frozen encoder cache one embedding per unique text):

* Known variables (CORA's Table 1: age, sex, race, BMI, systolic / diastolic blood pressure, tobacco
  use, hypertension, diabetes, total / LDL / HDL cholesterol) are recognised under common column
  names, case-insensitively (``Age``, ``systolic_bp``, ``SBP``, ``smoking_status``, ``HTN``, ``DM``,
  ``LDL_C``, ...), and are written first, in that fixed order, with clinical labels and units.
  Numbers are rounded: integers for age, blood pressure and cholesterol, one decimal for BMI.
* Yes/no variables (hypertension, diabetes) accept booleans, 0/1 and yes/no-like strings.
* Other columns follow in the record's order as ``"Column name: value."`` (underscores become spaces,
  first letter capitalised); booleans become yes/no, other numbers are written with up to 2 decimals
  (3 significant digits below 1, so 0.014 stays 0.014).
* Missing values (None, NaN, pandas NA, empty strings) are written as ``unknown`` by default, so the
  model knows a value was not recorded; ``missing="omit"`` drops them instead.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from riskfm.clinical.spec import CORA_PROMPT

__all__ = ["KNOWN_VARIABLES", "ClinicalVariable", "canonical_variable", "describe_variable", "serialise_clinical"]


@dataclass(frozen=True)
class ClinicalVariable:
    """How one known clinical variable is written.

    Attributes
    ----------
    name : str
        Canonical name (the synthetic cohort's / manifest's column name).
    label : str
        Human label written before the colon.
    kind : {"number", "yesno", "sex", "text"}
        How values are formatted.
    unit : str
        Unit written after numbers ("" for none).
    decimals : int
        Decimals of numbers (with the default unit).
    aliases : tuple of str
        Other column names, compared after lower-casing and mapping spaces / hyphens / dots to "_".
    """

    name: str
    label: str
    kind: str
    unit: str = ""
    decimals: int = 0
    aliases: tuple[str, ...] = ()


#: Known variables, in the order they are written (CORA Table 1 order).
KNOWN_VARIABLES: tuple[ClinicalVariable, ...] = (
    ClinicalVariable("age", "Age", "number", "years", 0, ("age_years", "age_at_scan", "patient_age", "age_yrs")),
    ClinicalVariable("sex", "Sex", "sex", aliases=("gender", "patient_sex", "is_male", "male")),
    ClinicalVariable("race", "Race", "text", aliases=("ethnicity", "race_ethnicity", "patient_race")),
    ClinicalVariable("bmi", "BMI", "number", "kg/m2", 1, ("body_mass_index", "bmi_kg_m2")),
    ClinicalVariable("sbp", "Systolic blood pressure", "number", "mmHg", 0,
                     ("systolic_bp", "systolic", "systolic_blood_pressure", "sys_bp", "sbp_mmhg")),
    ClinicalVariable("dbp", "Diastolic blood pressure", "number", "mmHg", 0,
                     ("diastolic_bp", "diastolic", "diastolic_blood_pressure", "dia_bp", "dbp_mmhg")),
    ClinicalVariable("tobacco", "Tobacco use", "text",
                     aliases=("tobacco_use", "smoking", "smoking_status", "smoker", "tobacco_status")),
    ClinicalVariable("hypertension", "Hypertension", "yesno", aliases=("htn", "hypertensive", "has_hypertension")),
    ClinicalVariable("diabetes", "Diabetes mellitus", "yesno",
                     aliases=("diabetes_mellitus", "dm", "diabetic", "has_diabetes")),
    ClinicalVariable("total_cholesterol", "Total cholesterol", "number", "mg/dL", 0,
                     ("cholesterol", "tc", "chol", "total_chol", "cholesterol_total")),
    ClinicalVariable("ldl", "LDL cholesterol", "number", "mg/dL", 0, ("ldl_c", "ldl_cholesterol", "ldlc")),
    ClinicalVariable("hdl", "HDL cholesterol", "number", "mg/dL", 0, ("hdl_c", "hdl_cholesterol", "hdlc")),
)

_BY_KEY: dict[str, ClinicalVariable] = {}
for _var in KNOWN_VARIABLES:
    for _key in (_var.name, *_var.aliases):
        _BY_KEY[_key] = _var

# Columns whose 0/1 value means "is male" rather than a sex code of unknown convention.
_MALE_INDICATORS = {"is_male", "male"}
_YES = {"yes", "y", "true", "t", "1", "present", "positive"}
_NO = {"no", "n", "false", "f", "0", "absent", "negative", "none"}
_FEMALE = {"f", "female", "woman", "w"}
_MALE = {"m", "male", "man"}


def _normalise_key(column: str) -> str:
    return re.sub(r"[\s\-./]+", "_", str(column).strip().lower())


def canonical_variable(column: str) -> ClinicalVariable | None:
    """Return the known variable a column name refers to (case-insensitive, alias-aware), or None."""
    return _BY_KEY.get(_normalise_key(column))


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, float | np.floating):
        return math.isnan(float(value))
    # pandas NA / NaT and numpy datetime NaT; containers are values, not missing markers.
    return np.ndim(value) == 0 and bool(pd.isna(value))


def _format_number(value: float, decimals: int | None) -> str:
    if decimals is None:
        # Unknown columns and custom units: up to 2 decimals without trailing zeros (3.0 -> "3",
        # 4.427 -> "4.43"), but 3 significant digits below 1 so that small lab values keep their
        # meaning (troponin 0.014 ng/mL must not become 0.01).
        if value != 0 and abs(value) < 1:
            return f"{value:.3g}"
        text = f"{value:.2f}".rstrip("0").rstrip(".")
        return "0" if text in ("-0", "") else text
    text = f"{value:.{decimals}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def _as_number(value: Any, column: str) -> float:
    if isinstance(value, bool | np.bool_):
        raise ValueError(f"clinical variable {column!r}: expected a number, got boolean {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"clinical variable {column!r}: expected a number, got {value!r}") from exc
    if not math.isfinite(number):
        raise ValueError(f"clinical variable {column!r}: expected a finite number, got {value!r}")
    return number


def _yes_no(value: Any, column: str) -> str | None:
    """'yes' / 'no' for boolean-like values; None when the value is not boolean-like."""
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | float | np.integer | np.floating):
        if float(value) in (0.0, 1.0):
            return "yes" if float(value) == 1.0 else "no"
        raise ValueError(f"clinical variable {column!r}: expected a yes/no (0/1) indicator, got {value!r}")
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _YES:
            return "yes"
        if word in _NO:
            return "no"
    return None


def _format_known(var: ClinicalVariable, column: str, value: Any, unit: str, decimals: int | None) -> str:
    if var.kind == "number":
        text = _format_number(_as_number(value, column), decimals)
        return f"{text} {unit}" if unit else text
    if var.kind == "yesno":
        answer = _yes_no(value, column)
        # Strings such as "type 2" or "diet-controlled" carry information: keep them as written.
        return answer if answer is not None else str(value).strip()
    if var.kind == "sex":
        if _normalise_key(column) in _MALE_INDICATORS:
            answer = _yes_no(value, column)
            if answer is None:
                raise ValueError(f"clinical variable {column!r}: expected a 0/1 male indicator, got {value!r}")
            return "male" if answer == "yes" else "female"
        word = str(value).strip().lower()
        if word in _FEMALE:
            return "female"
        if word in _MALE:
            return "male"
        # Numeric sex codes differ between datasets (PTB-XL: 0 = male); do not guess a mapping.
        return str(value).strip()
    if var.kind == "text":
        if var.name == "tobacco" and (
            isinstance(value, bool | np.bool_)
            or (isinstance(value, int | float | np.integer | np.floating) and float(value) in (0.0, 1.0))
        ):
            # A 0/1 smoker flag: "Tobacco use: yes" reads better than "Tobacco use: 1".
            return "yes" if bool(value) else "no"
        if isinstance(value, float | np.floating) and float(value).is_integer():
            return str(int(value))
        return str(value).strip()
    raise AssertionError(f"unhandled kind {var.kind}")  # pragma: no cover


def _format_other(value: Any, unit: str) -> str:
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        text = str(int(value))
    elif isinstance(value, float | np.floating):
        text = _format_number(float(value), None)
    else:
        text = str(value).strip()
    return f"{text} {unit}" if unit else text


def _humanise(column: str) -> str:
    words = re.sub(r"[_\s]+", " ", str(column)).strip()
    return words[:1].upper() + words[1:] if words else str(column)


def _lookup(mapping: Mapping[str, str] | None, *keys: str) -> str | None:
    if not mapping:
        return None
    for key in keys:
        if key in mapping:
            return mapping[key]
    return None


def describe_variable(
    column: str,
    *,
    units: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
) -> tuple[str, str]:
    """Return the label and unit a column is written with, as :func:`serialise_clinical` writes it.

    Parameters
    ----------
    column : str
        A manifest column name, known (``SBP``, ``ldl_c``) or not (``troponin_t``).
    units, labels : Mapping[str, str], optional
        Overrides keyed by column name or canonical variable name, as for :func:`serialise_clinical`.

    Returns
    -------
    (label, unit) : tuple of str
        E.g. ``("Systolic blood pressure", "mmHg")``; an unknown column gets its humanised name
        (``"Troponin t"``) and ``""`` unless overridden.
    """
    var = canonical_variable(column)
    keys = (column,) if var is None else (column, var.name)
    label = _lookup(labels, *keys) or (_humanise(column) if var is None else var.label)
    unit = _lookup(units, *keys)
    if unit is None:
        unit = "" if var is None else var.unit
    return label, unit


def serialise_clinical(
    record: Mapping[str, Any],
    *,
    prompt: str | None = CORA_PROMPT,
    units: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
    missing: str = "unknown",
) -> str:
    """Write one patient's clinical variables as text behind a prompt.

    Parameters
    ----------
    record : Mapping[str, Any]
        Column -> value for one patient (a dict, or a pandas Series such as a manifest row). Pass only
        clinical variables: every key is written.
    prompt : str or None, default CORA_PROMPT
        Text written first ("" or None for none).
    units : Mapping[str, str], optional
        Unit overrides, keyed by column name or canonical variable name, e.g.
        ``{"total_cholesterol": "mmol/L"}`` or ``{"troponin": "ng/L"}``. A known variable with an
        overridden unit is written with up to 2 decimals instead of its default rounding (a value in
        mmol/L must not be rounded to an integer).
    labels : Mapping[str, str], optional
        Label overrides, keyed by column name or canonical variable name.
    missing : {"unknown", "omit"}, default "unknown"
        Write missing values (None, NaN, NA, "") as ``unknown`` or leave the variable out.

    Returns
    -------
    str
        ``prompt + " " + "Label: value unit. Label: value. ..."``.

    Raises
    ------
    ValueError
        ``missing`` is invalid; two columns name the same known variable (e.g. ``sbp`` and
        ``systolic_bp``); a known numeric variable is not a number; a yes/no variable holds a number
        other than 0/1.

    Examples
    --------
    >>> serialise_clinical({"age": 63.4, "sex": "F", "bmi": 29, "hypertension": 1, "ldl": None},
    ...                    prompt="Patient.")
    'Patient. Age: 63 years. Sex: female. BMI: 29.0 kg/m2. Hypertension: yes. LDL cholesterol: unknown.'
    """
    if missing not in ("unknown", "omit"):
        raise ValueError(f"serialise_clinical: missing must be 'unknown' or 'omit', got {missing!r}")
    if not isinstance(record, Mapping) and not hasattr(record, "items"):
        raise TypeError(f"serialise_clinical expects a mapping of column -> value, got {type(record).__name__}")

    known: dict[str, tuple[str, Any]] = {}  # canonical name -> (column, value)
    others: list[tuple[str, Any]] = []
    for column, value in record.items():
        var = canonical_variable(column)
        if var is None:
            others.append((str(column), value))
            continue
        if var.name in known:
            raise ValueError(
                f"serialise_clinical: columns {known[var.name][0]!r} and {column!r} both give "
                f"{var.label.lower()}; keep one"
            )
        known[var.name] = (str(column), value)

    parts: list[str] = []

    def emit(label: str, text: str | None) -> None:
        if text is None:
            if missing == "omit":
                return
            text = "unknown"
        parts.append(f"{label}: {text}.")

    for var in KNOWN_VARIABLES:
        if var.name not in known:
            continue
        column, value = known[var.name]
        label = _lookup(labels, column, var.name) or var.label
        if _is_missing(value):
            emit(label, None)
            continue
        custom_unit = _lookup(units, column, var.name)
        unit = var.unit if custom_unit is None else custom_unit
        decimals = var.decimals if custom_unit is None else None
        emit(label, _format_known(var, column, value, unit, decimals))

    for column, value in others:
        label = _lookup(labels, column) or _humanise(column)
        emit(label, None if _is_missing(value) else _format_other(value, _lookup(units, column) or ""))

    body = " ".join(parts)
    head = (prompt or "").strip()
    return f"{head} {body}".strip() if head else body
