"""DICOM ECG waveforms (``.dcm``, or any file with the ``DICM`` preamble) -> :class:`~riskfm.ecg.record.ECG`.

The RHYTHM multiplex group is read (the first group when none is labelled RHYTHM), with pydicom
applying each channel's sensitivity and baseline; values are converted to mV from the channel's
sensitivity units (a channel without ``ChannelSensitivity`` holds raw ADC counts and is refused).
Lead names come from the channel source's CodeMeaning, the ChannelLabel, or the SCPECG code value.
Samples equal to ``WaveformPaddingValue`` count as missing. ``WaveformData`` shorter than
``NumberOfWaveformSamples`` is a :class:`~riskfm.ecg.errors.TruncatedSignalError`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from riskfm.ecg.assembly import check_samples, normalise_sex, select_channels, to_millivolts
from riskfm.ecg.errors import (
    ECGFileNotFoundError,
    ECGFormatError,
    ECGHeaderError,
    ECGReadError,
    TruncatedSignalError,
    describe_exception,
)
from riskfm.ecg.leads import canonical_lead_name
from riskfm.ecg.record import ECG

__all__ = ["is_dicom", "read_dicom_ecg"]


def is_dicom(path: str | os.PathLike) -> bool:
    """Tell whether the file has the DICOM Part 10 preamble (128 bytes, then ``DICM``).

    Parameters
    ----------
    path : str or path-like
        Any path; an unreadable or missing file gives False.

    Returns
    -------
    bool
    """
    try:
        with Path(os.fspath(path)).expanduser().open("rb") as handle:
            head = handle.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


def read_dicom_ecg(path: str | os.PathLike, mode: str = "standard") -> ECG:
    """Read the RHYTHM multiplex group of a DICOM waveform file into an ECG in mV.

    Parameters
    ----------
    path : str or path-like
        The DICOM file.
    mode : {"standard", "all"}
        As ``read_ecg(leads=...)``.

    Returns
    -------
    ECG
        float32 ``[n_leads, T]`` (leads x samples) in mV, ``fs`` in Hz (``SamplingFrequency``);
        ``meta`` has ``format="dicom"``, ``waveform_group`` / ``waveform_group_label`` /
        ``waveform_groups``, ``units``, ``channel_names``, ``original_channel_names``,
        ``dropped_channels`` and, when present, ``age`` (years), ``sex``, ``acquisition_datetime``.

    Raises
    ------
    ECGFileNotFoundError
        No such file.
    ECGHeaderError
        Unreadable or corrupt DICOM dataset, or a waveform group without sampling rate/channels.
    ECGFormatError
        The dataset holds no ``WaveformSequence``.
    TruncatedSignalError, ECGReadError
        ``WaveformData`` shorter than declared, or otherwise undecodable.
    ECGUnitsError, NonFiniteSampleError, NoRecognisedLeadsError, DuplicateLeadError
        As the :mod:`riskfm.ecg.assembly` checks.
    """
    return _read_dicom(Path(os.fspath(path)).expanduser(), mode)


_WAVEFORM_DTYPES = {(8, "SB"): np.int8, (8, "UB"): np.uint8, (16, "SS"): np.int16, (16, "US"): np.uint16,
                    (32, "SL"): np.int32, (32, "UL"): np.uint32}


def _dicom_channel_name(channel) -> tuple[str, str]:
    """(name used for lead matching, name as written) of a DICOM channel definition."""
    written = ""
    code_value = ""
    if "ChannelSourceSequence" in channel and len(channel.ChannelSourceSequence):
        source = channel.ChannelSourceSequence[0]
        written = str(source.get("CodeMeaning", "") or "")
        code_value = str(source.get("CodeValue", "") or "")
    label = str(channel.get("ChannelLabel", "") or "")
    written = written or label or code_value
    # Prefer the human-readable meaning, fall back to the coded value (SCPECG "5.6.3-9-1").
    for candidate in (written, label, code_value):
        if candidate and canonical_lead_name(candidate) is not None:
            return candidate, written
    return written, written


def _dicom_age_years(age: str) -> float | None:
    """DICOM Age String (``"042Y"``, ``"006M"``, ``"003W"``, ``"010D"``) in years."""
    match = re.fullmatch(r"\s*(\d{1,3})\s*([DWMY])\s*", str(age or ""), re.IGNORECASE)
    if not match:
        return None
    value = float(match.group(1))
    per_year = {"D": 365.25, "W": 365.25 / 7, "M": 12.0, "Y": 1.0}[match.group(2).upper()]
    return value / per_year


def _check_dicom_waveform_length(group, index: int, label: str, path: Path) -> None:
    """Raise :class:`TruncatedSignalError` when WaveformData is shorter than the group declares."""
    try:
        n_samples = int(group.NumberOfWaveformSamples)
        n_channels = int(group.NumberOfWaveformChannels)
        bytes_per_sample = int(group.WaveformBitsAllocated) // 8
        data = group.get("WaveformData")
        n_bytes = 0 if data is None else len(data)
    except (AttributeError, TypeError, ValueError):
        return  # incomplete group: pydicom's own error will say what is missing
    if n_channels <= 0 or bytes_per_sample <= 0 or n_bytes >= n_samples * n_channels * bytes_per_sample:
        return
    held = n_bytes // (n_channels * bytes_per_sample)
    raise TruncatedSignalError(path, f"waveform group {index} ({label or 'unlabelled'})", held, n_samples,
                               n_bytes, declared_by="NumberOfWaveformSamples", empty="WaveformData is empty")


def _read_dicom(path: Path, mode: str) -> ECG:
    """Read the RHYTHM multiplex group of a DICOM waveform file into an ECG in mV."""
    import pydicom
    from pydicom.waveforms.numpy_handler import multiplex_array

    try:
        ds = pydicom.dcmread(str(path))
    except FileNotFoundError as exc:
        raise ECGFileNotFoundError(path, "DICOM file not found") from exc
    except Exception as exc:  # InvalidDicomError, truncated files, ...
        raise ECGHeaderError(path, f"unreadable or corrupt DICOM file ({describe_exception(exc)})") from exc
    if "WaveformSequence" not in ds or not len(ds.WaveformSequence):
        modality = ds.get("Modality", "unknown")
        raise ECGFormatError(path, f"DICOM file has no WaveformSequence (modality {modality}); not an ECG")

    groups = ds.WaveformSequence
    labels = [str(group.get("MultiplexGroupLabel", "") or "").strip() for group in groups]
    index = next((i for i, label in enumerate(labels) if label.upper() == "RHYTHM"), 0)
    group = groups[index]

    try:
        fs = float(group.SamplingFrequency)
        channels = list(group.ChannelDefinitionSequence)
    except (AttributeError, TypeError, ValueError) as exc:
        raise ECGHeaderError(path, f"waveform group {index} lacks SamplingFrequency or channel "
                                   f"definitions: {exc}") from exc
    match_names, written_names = zip(*(_dicom_channel_name(ch) for ch in channels)) if channels else ((), ())
    selection = select_channels(list(match_names), mode, path)

    units: list[str | None] = []
    for i in selection.indices:
        channel = channels[i]
        if "ChannelSensitivity" not in channel:
            # Without a sensitivity pydicom returns raw ADC counts: refuse rather than guess a scale.
            units.append(None)
            continue
        unit_seq = channel.get("ChannelSensitivityUnitsSequence")
        units.append(str(unit_seq[0].get("CodeValue", "")) if unit_seq else None)

    _check_dicom_waveform_length(group, index, labels[index], path)
    try:
        samples = ds.waveform_array(index)  # (samples, channels), sensitivity and baseline applied
    except Exception as exc:
        raise ECGReadError(path, f"cannot decode waveform group {index} ({labels[index] or 'unlabelled'}): "
                                 f"{describe_exception(exc)} (waveform data truncated or inconsistent with its "
                                 "channel/sample counts?)") from exc
    if samples.ndim != 2 or samples.shape[1] != len(channels):
        raise ECGHeaderError(path, f"waveform group {index} decodes to shape {samples.shape} but declares "
                                   f"{len(channels)} channels")
    samples = samples[:, selection.indices].astype(np.float64)

    # Samples equal to the padding value carry no data; mark them NaN so they are reported below.
    pad_bytes = group.get("WaveformPaddingValue")
    dtype = _WAVEFORM_DTYPES.get((int(group.WaveformBitsAllocated), str(group.WaveformSampleInterpretation)))
    if pad_bytes is not None and dtype is not None and len(pad_bytes) >= np.dtype(dtype).itemsize:
        pad_value = np.frombuffer(bytes(pad_bytes)[: np.dtype(dtype).itemsize], dtype=dtype)[0]
        raw = multiplex_array(ds, index, as_raw=True)[:, selection.indices]
        samples[raw == pad_value] = np.nan

    channel_names = [written_names[i] for i in selection.indices]
    unit_labels = [u if u is not None else "raw counts (no ChannelSensitivity)" for u in units]
    signal = to_millivolts(samples, unit_labels, selection.names, path)
    check_samples(signal, selection.names, channel_names, path)

    meta: dict = {
        "source": str(path),
        "format": "dicom",
        "waveform_group": index,
        "waveform_group_label": labels[index],
        "waveform_groups": labels,
        "units": units,
        "channel_names": channel_names,
        "original_channel_names": list(written_names),
        "dropped_channels": [written_names[i] for i in selection.dropped],
        "comments": [],
    }
    age = _dicom_age_years(ds.get("PatientAge", ""))
    if age is not None:
        meta["age"] = age
    sex = str(ds.get("PatientSex", "") or "").strip()
    if sex:
        meta["sex"] = normalise_sex(sex)
    acquired = str(ds.get("AcquisitionDateTime", "") or "").strip()
    if acquired:
        meta["acquisition_datetime"] = acquired
    return ECG(signal=signal, fs=fs, leads=tuple(selection.names), meta=meta)

