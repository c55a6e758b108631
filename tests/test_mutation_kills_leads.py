"""Behaviour of riskfm.ecg.leads that the first mutmut run (docs/testing.md) showed untested."""

import pytest

from riskfm.ecg import leads
from riskfm.ecg.leads import (
    LEAD_ALIASES,
    STANDARD_LEADS,
    UnknownLeadError,
    canonical_lead_name,
    require_canonical_lead_name,
)


def test_rebuilding_the_alias_table_gives_the_published_table():
    # The table is built once at import; rebuilding it must give the same (pinned) table, so a
    # change to the builder is seen by tests and not only at the next import.
    assert leads._build_aliases() == dict(LEAD_ALIASES)


@pytest.mark.parametrize("name, lead", [("V 1", "V1"), ("a VR", "aVR"), ("D I I", "II"), ("Lead  a V F", "aVF")])
def test_whitespace_inside_a_name_is_ignored(name, lead):
    assert canonical_lead_name(name) == lead


def test_unknown_lead_message_lists_the_leads_and_aliases():
    with pytest.raises(UnknownLeadError) as err:
        require_canonical_lead_name("-aVR")
    msg = str(err.value)
    assert "'-aVR'" in msg
    assert "expected one of " + ", ".join(STANDARD_LEADS) + " or an alias" in msg
    assert "such as 'DII', 'C1', 'Lead aVR', 'MDC_ECG_LEAD_V1'" in msg
