"""ECG readers: WFDB and DICOM into mV with canonical lead names, and clear errors on bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import wfdb

from riskfm.ecg import ECG, STANDARD_LEADS, ECGReadError, read_ecg
from riskfm.ecg.io import (
    DuplicateLeadError,
    ECGFileNotFoundError,
    ECGFormatError,
    ECGHeaderError,
    ECGUnitsError,
    EmptySignalError,
    NonFiniteSampleError,
    NoRecognisedLeadsError,
)

FIXTURES = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures"
PTB_RECORD = FIXTURES / "ecg" / "ptb" / "s0010_re"


@pytest.fixture
def ptb_record() -> Path:
    if not PTB_RECORD.with_suffix(".hea").is_file():
        pytest.skip(f"real-data fixtures not found at {FIXTURES.resolve()} (a fresh clone has none)")
    return PTB_RECORD


@pytest.fixture(scope="module")
def dicom_ecg_path() -> Path:
    data = pytest.importorskip("pydicom.data")
    return Path(data.get_testdata_file("waveform_ecg.dcm"))


def _write(tmp_path: Path, name: str, signal_mv: np.ndarray, sig_name: list[str], units: list[str],
           fs: float = 500.0, comments: list[str] | None = None) -> Path:
    """Write ``signal_mv`` ([T, n] in mV) as a 16-bit WFDB record, converting to each channel's units.

    The gain is one ADC count per 1 uV, so the quantisation step is 0.001 mV in every unit.
    """
    scale = np.array([{"mV": 1.0, "uV": 1000.0, "V": 1e-3}.get(u, 1.0) for u in units])
    physical = signal_mv * scale
    gains = [1000.0 / s if u in ("mV", "uV", "V") else 100.0 for s, u in zip(scale, units)]
    wfdb.wrsamp(name, fs=fs, units=units, sig_name=sig_name, p_signal=physical, fmt=["16"] * len(units),
                adc_gain=gains, baseline=[0] * len(units), comments=comments or [], write_dir=str(tmp_path))
    return tmp_path / name


def _twelve_lead(n: int = 2000, fs: float = 500.0, seed: int = 0) -> np.ndarray:
    """[T, 12] synthetic mV signal, lead k = distinct sine + noise, ~ +-2 mV."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / fs
    return np.stack([(0.5 + 0.1 * k) * np.sin(2 * np.pi * (1 + k) * t) + 0.05 * rng.standard_normal(n)
                     for k in range(12)], axis=1)


# ---------------------------------------------------------------------------------------------
# WFDB round trip
# ---------------------------------------------------------------------------------------------


def test_wfdb_round_trip_canonicalises_names_reorders_and_converts_units(tmp_path):
    truth = _twelve_lead()
    # File order differs from canonical order, names are aliases, and units mix mV / uV / V.
    file_leads = ["v6", "DII", "i", "D3", "avr", "AVL", "aVF", "C1", "v2", "V3", "v4", "V5"]
    file_units = ["uV", "mV", "mV", "uV", "mV", "mV", "V", "mV", "uV", "mV", "mV", "mV"]
    canonical_of = {"v6": "V6", "DII": "II", "i": "I", "D3": "III", "avr": "aVR", "AVL": "aVL",
                    "aVF": "aVF", "C1": "V1", "v2": "V2", "V3": "V3", "v4": "V4", "V5": "V5"}
    record = _write(tmp_path, "rt", truth, file_leads, file_units, comments=["age: 63", "sex: M"])

    for path in (record, record.with_suffix(".hea"), record.with_suffix(".dat"), str(record)):
        ecg = read_ecg(path)
        assert ecg.leads == STANDARD_LEADS
        assert ecg.fs == 500.0
        assert ecg.signal.dtype == np.float32 and ecg.signal.shape == (12, 2000)

    for col, name in enumerate(file_leads):
        # one ADC count = 1 uV, so rounding error is at most half a count
        np.testing.assert_allclose(ecg.lead(canonical_of[name]), truth[:, col], atol=0.0005 + 1e-6)
    assert ecg.meta["format"] == "wfdb"
    assert ecg.meta["original_channel_names"] == file_leads
    assert ecg.meta["channel_names"][ecg.leads.index("II")] == "DII"
    assert ecg.meta["units"][ecg.leads.index("aVF")] == "V"
    assert ecg.meta["comments"] == ["age: 63", "sex: M"]
    assert ecg.meta["age"] == 63.0 and ecg.meta["sex"] == "M"
    assert ecg.duration_s == pytest.approx(4.0)


def test_wfdb_partial_leads_and_non_voltage_channels(tmp_path):
    t = np.arange(1000) / 250.0
    sig = np.stack([np.sin(t), np.cos(t), 50 * np.sin(0.3 * t)], axis=1)
    record = _write(tmp_path, "part", sig, ["V2", "II", "resp"], ["mV", "mV", "NU"], fs=250.0)

    ecg = read_ecg(record)
    # Present standard leads only, in canonical order; the respiration channel is dropped
    # (its non-voltage units do not matter because it is not kept).
    assert ecg.leads == ("II", "V2")
    assert ecg.meta["dropped_channels"] == ["resp"]
    with pytest.raises(ECGUnitsError, match=r"part.*lead resp.*'NU'"):
        read_ecg(record, leads="all")


def test_wfdb_multi_segment_record_is_merged(tmp_path):
    t = np.arange(1000) / 500.0
    for k in (1, 2):
        _write(tmp_path, f"seg{k}", np.stack([np.sin(k * t), np.cos(t)], axis=1), ["ii", "vx"], ["mV", "mV"])
    (tmp_path / "multi.hea").write_text("multi/2 2 500 2000\nseg1 1000\nseg2 1000\n")
    ecg = read_ecg(tmp_path / "multi")
    assert ecg.leads == ("II",) and ecg.signal.shape == (1, 2000)
    np.testing.assert_allclose(ecg.signal[0], np.concatenate([np.sin(t), np.sin(2 * t)]), atol=0.0006)
    assert ecg.meta["dropped_channels"] == ["vx"]


# ---------------------------------------------------------------------------------------------
# Real files
# ---------------------------------------------------------------------------------------------


def test_ptb_fixture_standard_leads(ptb_record):
    ecg = read_ecg(ptb_record)
    assert ecg.leads == STANDARD_LEADS
    assert ecg.fs == 1000.0
    assert ecg.signal.shape == (12, 38400)
    assert ecg.duration_s == pytest.approx(38.4)
    assert ecg.meta["dropped_channels"] == ["vx", "vy", "vz"]
    # Header gain is 2000 counts/mV and its first samples are known: i starts at -489 counts.
    assert ecg.lead("I")[0] == pytest.approx(-489 / 2000)
    peak = np.abs(ecg.signal).max(axis=1)
    assert np.all(peak > 0.1) and np.all(peak < 5.0), "12-lead ECG amplitudes should be ~0.1-5 mV"
    # Einthoven's law holds in the recorded leads (up to quantisation): I + III = II.
    np.testing.assert_allclose(ecg.lead("I") + ecg.lead("III"), ecg.lead("II"), atol=0.002)
    assert ecg.meta["age"] == 81.0 and ecg.meta["sex"] == "F"
    assert any("RIVA 70%" in line for line in ecg.meta["comments"])


def test_ptb_fixture_all_channels_keeps_frank_leads(ptb_record):
    ecg = read_ecg(ptb_record.with_suffix(".hea"), leads="all")
    assert ecg.leads == (*STANDARD_LEADS, "vx", "vy", "vz")
    assert ecg.signal.shape == (15, 38400)
    assert ecg.lead("vy")[0] == pytest.approx(120 / 2000)  # from the separate .xyz signal file
    assert ecg.meta["dropped_channels"] == []


def test_dicom_waveform_rhythm_group(dicom_ecg_path):
    ecg = read_ecg(dicom_ecg_path)
    assert ecg.leads == STANDARD_LEADS
    assert ecg.fs == 1000.0
    assert ecg.signal.shape == (12, 10000) and ecg.duration_s == pytest.approx(10.0)
    assert ecg.meta["format"] == "dicom"
    assert ecg.meta["waveform_group_label"] == "RHYTHM"
    assert ecg.meta["units"] == ["uV"] * 12
    assert ecg.meta["channel_names"][0] == "Lead I (Einthoven)"
    # Values were converted from uV (sensitivity 1.25 uV/count) to mV.
    assert 1.0 < np.abs(ecg.signal).max() < 5.0
    import pydicom

    raw_uv = pydicom.dcmread(dicom_ecg_path).waveform_array(0)
    np.testing.assert_allclose(ecg.signal, raw_uv.T / 1000.0, rtol=1e-6)
    assert ecg.meta["age"] == 42.0 and ecg.meta["sex"] == "F"


def test_dicom_detected_by_preamble_without_suffix(tmp_path, dicom_ecg_path):
    copy = tmp_path / "ecg_without_suffix"
    shutil.copyfile(dicom_ecg_path, copy)
    assert read_ecg(copy).meta["format"] == "dicom"


def test_dicom_channel_units_and_names_are_honoured(tmp_path, dicom_ecg_path):
    import pydicom

    ds = pydicom.dcmread(dicom_ecg_path)
    channels = ds.WaveformSequence[0].ChannelDefinitionSequence
    for channel in channels:
        channel.ChannelSensitivityUnitsSequence[0].CodeValue = "mV"
    channels[6].ChannelSourceSequence[0].CodeMeaning = "Respiration"
    channels[6].ChannelSourceSequence[0].CodeValue = "RESP"  # else the SCPECG code still says V1
    edited = tmp_path / "edited.dcm"
    ds.save_as(edited)

    reference = read_ecg(dicom_ecg_path)
    ecg = read_ecg(edited)
    assert ecg.meta["dropped_channels"] == ["Respiration"]
    assert "V1" not in ecg.leads and len(ecg.leads) == 11
    # The same counts declared in mV instead of uV are 1000 times larger in mV.
    np.testing.assert_allclose(ecg.lead("II"), reference.lead("II") * 1000, rtol=1e-6)
    assert read_ecg(edited, leads="all").leads[-1] == "Respiration"

    channels[6].ChannelSourceSequence[0].CodeMeaning = "Lead I"
    ds.save_as(edited)
    with pytest.raises(DuplicateLeadError, match=r"edited\.dcm.*duplicate lead I"):
        read_ecg(edited)


def test_truncated_dicom_is_a_header_error(tmp_path, dicom_ecg_path):
    truncated = tmp_path / "truncated.dcm"
    truncated.write_bytes(dicom_ecg_path.read_bytes()[:5000])
    with pytest.raises(ECGHeaderError, match=r"truncated\.dcm: unreadable or corrupt DICOM file"):
        read_ecg(truncated)


def test_dicom_without_waveform_is_rejected():
    data = pytest.importorskip("pydicom.data")
    ct = data.get_testdata_file("CT_small.dcm")
    with pytest.raises(ECGFormatError, match=r"CT_small\.dcm.*no WaveformSequence"):
        read_ecg(ct)


# ---------------------------------------------------------------------------------------------
# Bad input: each error names the file and the problem
# ---------------------------------------------------------------------------------------------


def test_missing_file(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(ECGFileNotFoundError, match=r"nope.*no such file") as info:
        read_ecg(missing)
    assert isinstance(info.value, FileNotFoundError) and isinstance(info.value, ECGReadError)
    with pytest.raises(FileNotFoundError, match=r"nope\.hea"):
        read_ecg(missing.with_suffix(".hea"))


def test_missing_signal_file(tmp_path):
    record = _write(tmp_path, "nodat", _twelve_lead(200), list(STANDARD_LEADS), ["mV"] * 12)
    record.with_suffix(".dat").unlink()
    with pytest.raises(ECGFileNotFoundError, match=r"nodat.*signal file not found.*nodat\.dat"):
        read_ecg(record)


@pytest.mark.parametrize(
    "text",
    ["this is not a WFDB header\n", "rec 2 500 100\nrec.dat 16 200 16 0 0 0 0 I\n", "\x00\x01binary\n"],
    ids=["garbage", "fewer-signal-lines-than-declared", "binary"],
)
def test_corrupt_header(tmp_path, text):
    (tmp_path / "rec.hea").write_text(text)
    with pytest.raises(ECGHeaderError, match=r"rec\.hea: (unreadable or )?corrupt WFDB header"):
        read_ecg(tmp_path / "rec.hea")


def test_nan_samples_name_the_lead_and_count(tmp_path):
    sig = _twelve_lead(500)
    sig[[10, 20, 30], 2] = np.nan  # written as WFDB's invalid-sample value -32768, read back as NaN
    record = _write(tmp_path, "gaps", sig, list(STANDARD_LEADS), ["mV"] * 12)
    with pytest.raises(NonFiniteSampleError, match=r"gaps.*lead III: 3 NaN of 500 samples"):
        read_ecg(record)


def test_nan_in_a_dropped_channel_is_not_an_error(tmp_path):
    sig = np.concatenate([_twelve_lead(500), np.zeros((500, 1))], axis=1)
    sig[5, 12] = np.nan
    record = _write(tmp_path, "dropnan", sig, [*STANDARD_LEADS, "vx"], ["mV"] * 13)
    assert read_ecg(record).leads == STANDARD_LEADS
    with pytest.raises(NonFiniteSampleError, match="lead vx: 1 NaN"):
        read_ecg(record, leads="all")


def test_unknown_lead_names_only(tmp_path):
    record = _write(tmp_path, "odd", _twelve_lead(200)[:, :3], ["foo", "bar", "-aVR"], ["mV"] * 3)
    with pytest.raises(NoRecognisedLeadsError, match=r"odd.*no recognisable ECG leads.*'foo', 'bar', '-aVR'"):
        read_ecg(record)
    assert read_ecg(record, leads="all").leads == ("foo", "bar", "-aVR")


def test_duplicate_leads(tmp_path):
    record = _write(tmp_path, "dup", _twelve_lead(200)[:, :3], ["I", "II", "DI"], ["mV"] * 3)
    with pytest.raises(DuplicateLeadError, match=r"dup.*duplicate lead I: channels 0 \('I'\) and 2 \('DI'\)"):
        read_ecg(record)


def test_zero_length_signal(tmp_path):
    (tmp_path / "empty.hea").write_text("empty 2 500 0\nempty.dat 16 200 16 0 0 0 0 I\nempty.dat 16 200 16 0 0 0 0 II\n")
    (tmp_path / "empty.dat").write_bytes(b"")
    with pytest.raises(EmptySignalError, match=r"empty.*zero-length signal"):
        read_ecg(tmp_path / "empty")


def test_unrecognised_format_and_bad_mode(tmp_path):
    junk = tmp_path / "tracing.bin"
    junk.write_bytes(b"\x00" * 300)
    with pytest.raises(ECGFormatError, match=r"tracing\.bin: unrecognised ECG file format"):
        read_ecg(junk)
    with pytest.raises(ValueError, match="leads must be 'standard' or 'all'"):
        read_ecg(junk, leads="twelve")


# ---------------------------------------------------------------------------------------------
# The ECG container
# ---------------------------------------------------------------------------------------------


def test_ecg_container_validates_and_converts():
    ecg = ECG(signal=np.ones((2, 100), dtype=np.float64), fs=250, leads=["I", "vx"])
    assert ecg.signal.dtype == np.float32 and ecg.leads == ("I", "vx") and ecg.fs == 250.0
    assert ecg.duration_s == pytest.approx(0.4)
    assert ecg.lead("i") is not None and ecg.lead("Lead I").shape == (100,)
    with pytest.raises(KeyError, match="no lead 'V1'"):
        ecg.lead("V1")
    with pytest.raises(ValueError, match="2-D"):
        ECG(signal=np.ones(100), fs=250, leads=("I",))
    with pytest.raises(ValueError, match="2 signal rows but 1 lead names"):
        ECG(signal=np.ones((2, 100)), fs=250, leads=("I",))
    with pytest.raises(ValueError, match="unique"):
        ECG(signal=np.ones((2, 100)), fs=250, leads=("I", "I"))
    for bad_fs in (0, -500, float("nan"), float("inf"), "fast"):
        with pytest.raises(ValueError, match="fs"):
            ECG(signal=np.ones((1, 100)), fs=bad_fs, leads=("I",))
