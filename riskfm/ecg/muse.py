"""GE MUSE XML resting ECGs (``<RestingECG>``) -> :class:`~riskfm.ecg.record.ECG` in mV.

Layout read (the parts riskfm needs)::

    <RestingECG>
      <PatientDemographics><PatientAge>63</PatientAge><Gender>MALE</Gender>...
      <Waveform>
        <WaveformType>Rhythm</WaveformType>          (also "Median": one averaged beat)
        <SampleBase>500</SampleBase>                 (Hz; SampleExponent scales it by 10^e)
        <LeadData>
          <LeadID>I</LeadID>
          <LeadAmplitudeUnitsPerBit>4.88</LeadAmplitudeUnitsPerBit>
          <LeadAmplitudeUnits>MICROVOLTS</LeadAmplitudeUnits>
          <LeadSampleCountTotal>5000</LeadSampleCountTotal>
          <WaveFormData>base64 of little-endian int16 samples</WaveFormData>

MUSE usually stores only I, II and V1-V6; III, aVR, aVL, aVF are derived from I and II
(Einthoven / Goldberger) and listed in ``meta["derived_leads"]``.
"""

from __future__ import annotations

import base64
import binascii
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from riskfm.ecg.assembly import assemble_leads, millivolts_per_unit, normalise_sex
from riskfm.ecg.errors import ECGFormatError, ECGHeaderError, ECGUnitsError
from riskfm.ecg.record import ECG

__all__ = ["read_muse_xml", "is_muse_xml"]


def is_muse_xml(head: bytes) -> bool:
    """Tell whether the first bytes of a file look like a MUSE export (root ``RestingECG``).

    Parameters
    ----------
    head : bytes
        The first bytes of the file (the reader registry passes 2 KiB).

    Returns
    -------
    bool
    """
    return b"<RestingECG" in head


def _text(node: ET.Element | None, tag: str, default: str = "") -> str:
    child = node.find(tag) if node is not None else None
    return (child.text or "").strip() if child is not None and child.text else default


def _number(text: str) -> float:
    # Some MUSE exports use a decimal comma ("4,88").
    return float(text.replace(",", "."))


def read_muse_xml(path: str | os.PathLike, mode: str = "standard", waveform: str = "Rhythm") -> ECG:
    """Read the ``waveform`` ("Rhythm" or "Median") of a GE MUSE XML file.

    Parameters
    ----------
    path : str or PathLike
        The ``.xml`` file.
    mode : {"standard", "all"}
        As ``read_ecg(leads=...)``.
    waveform : {"Rhythm", "Median"}
        Which ``<Waveform>`` to read (case-insensitive).

    Returns
    -------
    ECG
        float32 ``[n_leads, T]`` (leads x samples) in mV, ``fs`` in Hz (``SampleBase`` x
        10^``SampleExponent``). In standard mode the limb leads the file lacks are derived from I
        and II and listed in ``meta["derived_leads"]``; ``meta`` also has ``format="muse_xml"``,
        ``waveform``, ``units``, ``channel_names``, ``dropped_channels`` and ``age`` (years) /
        ``sex`` from ``<PatientDemographics>``.

    Raises
    ------
    ECGHeaderError, ECGFormatError, ECGUnitsError, NonFiniteSampleError, EmptySignalError
        Each message names the file and the problem (bad base64, sample count mismatch ...).
    """
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise ECGHeaderError(path, f"not well-formed XML: {exc}") from exc
    if root.tag != "RestingECG":
        raise ECGFormatError(path, f"root element is <{root.tag}>, not a GE MUSE <RestingECG>")
    waves = root.findall("Waveform")
    chosen = [w for w in waves if _text(w, "WaveformType").lower() == waveform.lower()]
    if not chosen:
        kinds = [_text(w, "WaveformType") for w in waves]
        raise ECGFormatError(path, f"no <Waveform> of type {waveform!r} (found {kinds or 'none'})")
    wave = chosen[0]
    try:
        fs = _number(_text(wave, "SampleBase")) * 10 ** int(_text(wave, "SampleExponent", "0") or 0)
    except ValueError as exc:
        raise ECGHeaderError(path, f"<SampleBase>/<SampleExponent> is not a number: {exc}") from exc

    names, rows, units = [], [], []
    for i, lead in enumerate(wave.findall("LeadData")):
        name = _text(lead, "LeadID") or f"lead{i}"
        try:
            raw = base64.b64decode(_text(lead, "WaveFormData"), validate=False)
        except (binascii.Error, ValueError) as exc:
            raise ECGFormatError(path, f"lead {name}: <WaveFormData> is not valid base64: {exc}") from exc
        if len(raw) % 2:
            raise ECGFormatError(path, f"lead {name}: {len(raw)} waveform bytes is not a whole number of "
                                       "int16 samples")
        samples = np.frombuffer(raw, dtype="<i2").astype(np.float64)
        declared = _text(lead, "LeadSampleCountTotal")
        if declared and int(declared) != samples.size:
            raise ECGFormatError(path, f"lead {name}: <LeadSampleCountTotal> says {declared} samples but "
                                       f"the data hold {samples.size}")
        try:
            per_bit = _number(_text(lead, "LeadAmplitudeUnitsPerBit", "1"))
        except ValueError as exc:
            raise ECGHeaderError(path, f"lead {name}: <LeadAmplitudeUnitsPerBit> is not a number") from exc
        unit = _text(lead, "LeadAmplitudeUnits", "MICROVOLTS")
        factor = millivolts_per_unit({"MICROVOLTS": "uV", "MILLIVOLTS": "mV", "VOLTS": "V"}.get(unit.upper(), unit))
        if factor is None:
            raise ECGUnitsError(path, f"lead {name}: units {unit!r} cannot be converted to mV")
        names.append(name)
        rows.append(samples * per_bit * factor)
        units.append(unit)
    if not rows:
        raise ECGFormatError(path, f"the {waveform} waveform has no <LeadData>")
    signal, leads, derived, selection = assemble_leads(rows, names, mode, path)
    demo = root.find("PatientDemographics")
    meta: dict = {"source": str(path), "format": "muse_xml", "waveform": waveform, "units": units,
                  "channel_names": names, "original_channel_names": names, "derived_leads": derived,
                  "dropped_channels": [names[i] for i in selection.dropped], "comments": []}
    age = _text(demo, "PatientAge")
    if age:
        try:
            meta["age"] = float(age)
        except ValueError:
            pass
    sex = _text(demo, "Gender")
    if sex:
        meta["sex"] = normalise_sex(sex)
    return ECG(signal=signal, fs=fs, leads=tuple(leads), meta=meta)
