"""HL7 annotated ECG (aECG, ``urn:hl7-org:v3``) -> :class:`~riskfm.ecg.record.ECG` in mV.

The rhythm waveforms are a ``sequenceSet`` of ``sequence`` elements: one time sequence
(``code="TIME_ABSOLUTE"`` or ``TIME_RELATIVE``, ``value`` of type ``GLIST_TS``/``GLIST_PQ`` with an
``increment`` giving the sampling interval) and one sequence per lead (``code="MDC_ECG_LEAD_*"``,
``value`` of type ``SLIST_PQ``: ``origin``, ``scale`` and whitespace-separated ``digits``; the
physical value is ``origin + scale * digit`` in the unit of ``scale``). The first sequence set of
the first ``series`` is read; derived series (median beats) are ignored.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from riskfm.ecg.assembly import assemble_leads, millivolts_per_unit
from riskfm.ecg.errors import ECGFormatError, ECGHeaderError, ECGUnitsError
from riskfm.ecg.record import ECG

__all__ = ["read_hl7_aecg", "is_hl7_aecg"]

_NS = "{urn:hl7-org:v3}"
_TIME_UNITS_S = {"s": 1.0, "ms": 1e-3, "us": 1e-6}


def is_hl7_aecg(head: bytes) -> bool:
    """Tell whether the first bytes of a file look like an HL7 aECG document.

    Parameters
    ----------
    head : bytes
        The first bytes of the file (the reader registry passes 2 KiB); both ``AnnotatedECG`` and
        the ``urn:hl7-org:v3`` namespace must appear.

    Returns
    -------
    bool
    """
    return b"AnnotatedECG" in head and b"urn:hl7-org:v3" in head


def read_hl7_aecg(path: str | os.PathLike, mode: str = "standard") -> ECG:
    """Read the rhythm waveforms of an HL7 aECG XML file.

    Parameters
    ----------
    path : str or PathLike
        The ``.xml`` file.
    mode : {"standard", "all"}
        As ``read_ecg(leads=...)``.

    Returns
    -------
    ECG
        float32 ``[n_leads, T]`` (leads x samples) in mV (``origin + scale * digits`` in the unit of
        ``scale``, converted), ``fs`` in Hz from the time sequence's ``increment`` (rounded to
        1e-6 Hz). In standard mode the limb leads the file lacks are derived from I and II and
        listed in ``meta["derived_leads"]``; ``meta["format"]`` is ``"hl7_aecg"``.

    Raises
    ------
    ECGHeaderError, ECGFormatError, ECGUnitsError, NonFiniteSampleError
        Each message names the file and the problem.
    """
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise ECGHeaderError(path, f"not well-formed XML: {exc}") from exc
    if root.tag != f"{_NS}AnnotatedECG":
        raise ECGFormatError(path, f"root element is {root.tag}, not an HL7 v3 AnnotatedECG")
    series = root.find(f".//{_NS}series")
    seqset = None if series is None else series.find(f"./{_NS}component/{_NS}sequenceSet")
    if seqset is None:
        raise ECGFormatError(path, "no series/component/sequenceSet holding rhythm waveforms")

    fs = None
    names, rows, units = [], [], []
    for seq in seqset.iter(f"{_NS}sequence"):
        code_el = seq.find(f"{_NS}code")
        value = seq.find(f"{_NS}value")
        code = "" if code_el is None else code_el.get("code", "")
        if value is None:
            continue
        if code.startswith("TIME_"):
            inc = value.find(f"{_NS}increment")
            if inc is None:
                raise ECGHeaderError(path, f"time sequence {code} has no <increment>")
            unit = inc.get("unit", "s")
            if unit not in _TIME_UNITS_S:
                raise ECGUnitsError(path, f"time increment unit {unit!r} not understood (expected s or ms)")
            try:
                step = float(inc.get("value", "nan")) * _TIME_UNITS_S[unit]
            except ValueError as exc:
                raise ECGHeaderError(path, f"time increment {inc.get('value')!r} is not a number") from exc
            if not np.isfinite(step) or step <= 0:
                raise ECGHeaderError(path, f"time increment {inc.get('value')!r} {unit} is not > 0")
            fs = 1.0 / step
            continue
        digits_el = value.find(f"{_NS}digits")
        if digits_el is None:
            continue
        origin_el, scale_el = value.find(f"{_NS}origin"), value.find(f"{_NS}scale")
        try:
            digits = np.array((digits_el.text or "").split(), dtype=np.float64)
            origin = float(origin_el.get("value", "0")) if origin_el is not None else 0.0
            scale = float(scale_el.get("value", "1")) if scale_el is not None else 1.0
        except ValueError as exc:
            raise ECGFormatError(path, f"lead {code}: digits/origin/scale are not numbers: {exc}") from exc
        unit = (scale_el.get("unit") if scale_el is not None else None) or "uV"
        factor = millivolts_per_unit(unit)
        if factor is None:
            raise ECGUnitsError(path, f"lead {code}: unit {unit!r} cannot be converted to mV")
        names.append(code)
        rows.append((origin + scale * digits) * factor)
        units.append(unit)
    if fs is None:
        raise ECGHeaderError(path, "no TIME_ABSOLUTE / TIME_RELATIVE sequence giving the sampling interval")
    if not rows:
        raise ECGFormatError(path, "no lead sequences (MDC_ECG_LEAD_*) with <digits>")
    signal, leads, derived, selection = assemble_leads(rows, names, mode, path)
    meta = {"source": str(path), "format": "hl7_aecg", "units": units, "channel_names": names,
            "original_channel_names": names, "derived_leads": derived,
            "dropped_channels": [names[i] for i in selection.dropped], "comments": []}
    return ECG(signal=signal, fs=round(fs, 6), leads=tuple(leads), meta=meta)
