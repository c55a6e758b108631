"""Lead-name canonicalisation: the aliases files really use map to the 12 canonical names."""

from __future__ import annotations

import pytest

from riskfm.ecg import STANDARD_LEADS, UnknownLeadError, canonical_lead_name
from riskfm.ecg.leads import LIMB_LEADS, PRECORDIAL_LEADS, require_canonical_lead_name


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
