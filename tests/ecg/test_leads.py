"""Lead-name canonicalisation: the aliases files really use map to the 12 canonical names."""

from __future__ import annotations

import pytest

from riskfm.ecg import STANDARD_LEADS, UnknownLeadError, canonical_lead_name
from riskfm.ecg.leads import LEAD_ALIASES, LIMB_LEADS, PRECORDIAL_LEADS, require_canonical_lead_name


@pytest.mark.parametrize(
    ("written", "canonical"),
    [
        # WFDB spellings (PTB lowercase, PTB-XL/MIMIC uppercase)
        ("i", "I"), ("ii", "II"), ("iii", "III"), ("avr", "aVR"), ("AVL", "aVL"), ("aVF", "aVF"),
        ("v1", "V1"), ("V6", "V6"), ("  v4 ", "V4"),
        # Einthoven "D" and IEC chest-lead spellings
        ("DI", "I"), ("D1", "I"), ("DII", "II"), ("d2", "II"), ("DIII", "III"), ("D3", "III"),
        ("C1", "V1"), ("c5", "V5"),
        # DICOM code meanings and SCPECG code values
        ("Lead I (Einthoven)", "I"), ("Lead II", "II"), ("Lead III (Einthoven)", "III"),
        ("Lead aVR", "aVR"), ("Lead aVL (Goldberger)", "aVL"), ("Lead V1", "V1"),
        ("5.6.3-9-1", "I"), ("5.6.3-9-62", "aVR"), ("5.6.3-9-8", "V6"),
        # HL7 aECG / IEEE 11073 codes
        ("MDC_ECG_LEAD_I", "I"), ("MDC_ECG_LEAD_III", "III"), ("MDC_ECG_LEAD_AVR", "aVR"),
        ("MDC_ECG_LEAD_aVF", "aVF"), ("MDC_ECG_LEAD_V1", "V1"), ("mdc_ecg_lead_v3", "V3"),
    ],
)
def test_aliases_map_to_canonical_names(written, canonical):
    assert canonical_lead_name(written) == canonical


def test_every_canonical_name_maps_to_itself():
    assert [canonical_lead_name(name) for name in STANDARD_LEADS] == list(STANDARD_LEADS)
    assert LIMB_LEADS + PRECORDIAL_LEADS == STANDARD_LEADS


@pytest.mark.parametrize(
    "written",
    # Frank leads, other physiological channels, inverted/unaugmented leads (different signals),
    # near misses and non-strings.
    ["vx", "vy", "vz", "resp", "", "V7", "V4R", "-aVR", "aVR-", "VR", "VL", "VF", "IV", "Lead", None, 1],
)
def test_unknown_or_different_signals_return_none(written):
    assert canonical_lead_name(written) is None


def test_require_canonical_lead_name_raises_a_value_error_naming_the_lead():
    assert require_canonical_lead_name("Lead V2") == "V2"
    with pytest.raises(UnknownLeadError, match="'-aVR'") as info:
        require_canonical_lead_name("-aVR")
    assert isinstance(info.value, ValueError)


# ------------------------------------------------------------------------------------------------
# The tables, whole. Typed here from the standards, never imported from riskfm: a wrong entry in
# riskfm's table (e.g. aVL and aVF swapped) must disagree with this copy.
# ------------------------------------------------------------------------------------------------

#: DICOM PS3.16 CID 3001 "ECG Leads", coding scheme SCPECG (code value "5.6.3-9-<SCP-ECG lead
#: number>"), the 12 standard leads: code value -> (code meaning in the standard, canonical lead).
SCPECG_12_LEADS = {
    "5.6.3-9-1": ("Lead I (Einthoven)", "I"),
    "5.6.3-9-2": ("Lead II", "II"),
    "5.6.3-9-3": ("Lead V1", "V1"),
    "5.6.3-9-4": ("Lead V2", "V2"),
    "5.6.3-9-5": ("Lead V3", "V3"),
    "5.6.3-9-6": ("Lead V4", "V4"),
    "5.6.3-9-7": ("Lead V5", "V5"),
    "5.6.3-9-8": ("Lead V6", "V6"),
    "5.6.3-9-61": ("Lead III", "III"),
    "5.6.3-9-62": ("Lead aVR", "aVR"),
    "5.6.3-9-63": ("Lead aVL", "aVL"),
    "5.6.3-9-64": ("Lead aVF", "aVF"),
}

#: Every entry riskfm's alias table must hold (normalised key -> canonical lead), and no other.
EXPECTED_ALIAS_TABLE = {
    # the canonical names themselves, upper-cased
    "I": "I", "II": "II", "III": "III", "AVR": "aVR", "AVL": "aVL", "AVF": "aVF",
    "V1": "V1", "V2": "V2", "V3": "V3", "V4": "V4", "V5": "V5", "V6": "V6",
    # Einthoven's "D" (derivation) spellings, roman and arabic
    "DI": "I", "D1": "I", "DII": "II", "D2": "II", "DIII": "III", "D3": "III",
    # IEC / European chest-lead spellings
    "C1": "V1", "C2": "V2", "C3": "V3", "C4": "V4", "C5": "V5", "C6": "V6",
    # SCPECG code values (the table above)
    **{code: lead for code, (_, lead) in SCPECG_12_LEADS.items()},
}


def test_expected_alias_table_is_consistent():
    """The test's own tables: 12 SCPECG codes, one per standard lead; 36 aliases."""
    assert sorted(lead for _, lead in SCPECG_12_LEADS.values()) == sorted(STANDARD_LEADS)
    assert len(EXPECTED_ALIAS_TABLE) == 36
    assert {lead: list(EXPECTED_ALIAS_TABLE.values()).count(lead) for lead in STANDARD_LEADS} == {
        "I": 4, "II": 4, "III": 4, "aVR": 2, "aVL": 2, "aVF": 2,
        "V1": 3, "V2": 3, "V3": 3, "V4": 3, "V5": 3, "V6": 3}


def test_alias_table_is_exactly_the_expected_one():
    assert dict(LEAD_ALIASES) == EXPECTED_ALIAS_TABLE


@pytest.mark.parametrize(("key", "canonical"), sorted(EXPECTED_ALIAS_TABLE.items()))
def test_every_alias_table_entry_maps_to_its_lead(key, canonical):
    assert canonical_lead_name(key) == canonical
    assert canonical_lead_name(key.lower()) == canonical
    assert canonical_lead_name(f"Lead {key}") == canonical
    assert require_canonical_lead_name(f" {key} ") == canonical


@pytest.mark.parametrize(("code", "meaning", "lead"), [(c, m, lead) for c, (m, lead) in SCPECG_12_LEADS.items()])
def test_every_scpecg_code_value_and_meaning_maps_to_its_lead(code, meaning, lead):
    assert canonical_lead_name(code) == lead
    assert canonical_lead_name(meaning) == lead


def test_no_other_scpecg_code_is_a_standard_lead():
    # e.g. 5.6.3-9-9 is V7, 5.6.3-9-65 is -aVR (inverted aVR): other signals, never aliased.
    others = [f"5.6.3-9-{k}" for k in range(0, 200) if f"5.6.3-9-{k}" not in SCPECG_12_LEADS]
    assert [code for code in others if canonical_lead_name(code) is not None] == []
    assert canonical_lead_name("5.6.3-9-9") is None and canonical_lead_name("5.6.3-9-65") is None
