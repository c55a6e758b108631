"""ECG lead names: the canonical 12-lead vocabulary and the aliases that files use for it.

Every riskfm ECG carries canonical lead names (``I, II, III, aVR, aVL, aVF, V1 .. V6``, see
:data:`riskfm.ecg.spec.STANDARD_LEADS`), whatever the file called its channels. Files spell
them many ways:

* WFDB headers: ``i``, ``ii``, ``avr``, ``v1`` (PTB), ``I``, ``AVR`` (PTB-XL, MIMIC-IV-ECG);
* European and older devices: ``DI``/``D1``, ``DII``/``D2``, ``DIII``/``D3``, chest leads ``C1 .. C6``;
* DICOM waveforms (SCPECG coding scheme): code meanings ``Lead I (Einthoven)``, ``Lead II``,
  ``Lead aVR``, ``Lead V1`` and code values ``5.6.3-9-1`` ...;
* HL7 aECG / IEEE 11073: ``MDC_ECG_LEAD_I``, ``MDC_ECG_LEAD_AVR``, ``MDC_ECG_LEAD_V1`` ...

Inverted or unaugmented leads (``-aVR``, Cabrera's ``-aVR``, ``VR``/``VL``/``VF``) are different
signals and are deliberately *not* aliased: mapping them would give a silently wrong lead.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType

from riskfm.ecg.spec import STANDARD_LEADS

__all__ = [
    "STANDARD_LEADS",
    "LEAD_ALIASES",
    "LIMB_LEADS",
    "PRECORDIAL_LEADS",
    "UnknownLeadError",
    "canonical_lead_name",
    "require_canonical_lead_name",
]

#: The six frontal-plane (limb) leads, in canonical order.
LIMB_LEADS: tuple[str, ...] = STANDARD_LEADS[:6]
#: The six chest (precordial) leads, in canonical order.
PRECORDIAL_LEADS: tuple[str, ...] = STANDARD_LEADS[6:]


class UnknownLeadError(ValueError):
    """A lead name that does not denote one of the 12 standard leads."""


def _build_aliases() -> dict[str, str]:
    """Map a normalised (upper-case, whitespace-free) spelling to its canonical lead name."""
    aliases: dict[str, str] = {}
    for name in STANDARD_LEADS:
        aliases[name.upper()] = name
    # Roman-numeral "D" spellings (Einthoven's "Derivation") and their arabic variants.
    for roman, arabic, name in (("DI", "D1", "I"), ("DII", "D2", "II"), ("DIII", "D3", "III")):
        aliases[roman] = name
        aliases[arabic] = name
    # "C1".."C6" is the IEC / European spelling of the chest leads V1..V6.
    for k in range(1, 7):
        aliases[f"C{k}"] = f"V{k}"
    # SCPECG code values used by DICOM waveforms (coding scheme "SCPECG", DICOM CID 3001 "ECG
    # Leads"; the numbers are the SCP-ECG lead codes): checked against the real 12-lead example
    # shipped with pydicom. tests/ecg/test_leads.py holds the whole table typed independently.
    scpecg = {"1": "I", "2": "II", "61": "III", "62": "aVR", "63": "aVL", "64": "aVF",
              "3": "V1", "4": "V2", "5": "V3", "6": "V4", "7": "V5", "8": "V6"}
    for code, name in scpecg.items():
        aliases[f"5.6.3-9-{code}"] = name
    return aliases


_ALIASES: dict[str, str] = _build_aliases()

#: The whole alias table, read-only: normalised spelling (upper case, no whitespace, prefixes such as
#: ``Lead``/``MDC_ECG_LEAD_`` and a ``(qualifier)`` removed) -> canonical lead name.
LEAD_ALIASES: Mapping[str, str] = MappingProxyType(_ALIASES)

# Prefixes that wrap a lead name without changing its meaning: IEEE 11073 / HL7 aECG codes and the
# DICOM code meanings ("Lead II"). Also plain "ECG" prefixes some exporters add ("ECG I").
_PREFIX = re.compile(r"^(?:MDC_ECG_LEAD_|LEAD[\s_\-]*|ECG[\s_\-]+)", re.IGNORECASE)
# A parenthesised qualifier such as "(Einthoven)" or "(Goldberger)" names the lead's inventor.
_QUALIFIER = re.compile(r"\s*\([^)]*\)\s*$")


def canonical_lead_name(name: str) -> str | None:
    """Return the canonical 12-lead name for a channel name as written in a file, or None if unknown.

    Matching is case-insensitive and ignores surrounding whitespace, the prefixes ``Lead``,
    ``MDC_ECG_LEAD_`` and ``ECG``, and a trailing parenthesised qualifier such as
    ``(Einthoven)``.

    Parameters
    ----------
    name : str
        Channel name from a header, e.g. ``"avr"``, ``"DII"``, ``"Lead I (Einthoven)"``,
        ``"MDC_ECG_LEAD_V1"``, ``"C3"``.

    Returns
    -------
    str or None
        One of :data:`STANDARD_LEADS` (``"I"`` .. ``"V6"``), or None when the name is not a
        standard lead (e.g. Frank leads ``"vx"``, a respiration channel, or the inverted
        ``"-aVR"``, which is a different signal).

    Examples
    --------
    >>> canonical_lead_name("avl"), canonical_lead_name("Lead I (Einthoven)")
    ('aVL', 'I')
    >>> canonical_lead_name("MDC_ECG_LEAD_AVF"), canonical_lead_name("-aVR") is None
    ('aVF', True)
    """
    if not isinstance(name, str):
        return None
    text = _QUALIFIER.sub("", name.strip())
    text = _PREFIX.sub("", text).strip()
    key = re.sub(r"\s+", "", text).upper()
    return _ALIASES.get(key)


def require_canonical_lead_name(name: str) -> str:
    """Return the canonical lead name as :func:`canonical_lead_name` does; raise for a non-standard lead.

    Parameters
    ----------
    name : str
        Channel name as written in a file or given by a user.

    Returns
    -------
    str
        The canonical lead name.

    Raises
    ------
    UnknownLeadError
        When ``name`` is not one of the 12 standard leads or a known alias of one.
    """
    canonical = canonical_lead_name(name)
    if canonical is None:
        raise UnknownLeadError(
            f"unknown ECG lead name {name!r}; expected one of {', '.join(STANDARD_LEADS)} "
            "or an alias such as 'DII', 'C1', 'Lead aVR', 'MDC_ECG_LEAD_V1'"
        )
    return canonical
