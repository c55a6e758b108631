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
    TruncatedSignalError,
    ecg_source_problem,
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
# Truncated signal files: the message names the file and both sample counts
# ---------------------------------------------------------------------------------------------


def _truncate(path: Path, n_bytes: int) -> None:
    path.write_bytes(path.read_bytes()[:n_bytes])


def test_truncated_dat_names_file_and_sample_counts(tmp_path):
    record = _write(tmp_path, "trunc", _twelve_lead(2000), list(STANDARD_LEADS), ["mV"] * 12)
    dat = record.with_suffix(".dat")
    assert dat.stat().st_size == 2000 * 12 * 2
    _truncate(dat, dat.stat().st_size // 2)
    for path in (record, record.with_suffix(".hea"), dat):
        with pytest.raises(TruncatedSignalError) as info:
            read_ecg(path)
        err = info.value
        assert isinstance(err, ECGReadError)
        assert str(err) == (f"{path}: signal file trunc.dat holds 1,000 samples per channel but the header "
                            "says 2,000 (file truncated?)")
        assert (err.signal_file, err.samples_in_file, err.samples_in_header) == ("trunc.dat", 1000, 2000)


def test_dat_one_byte_short_and_partial_last_frame(tmp_path):
    record = _write(tmp_path, "short", _twelve_lead(300)[:, :2], ["I", "II"], ["mV"] * 2)
    dat = record.with_suffix(".dat")
    _truncate(dat, 300 * 2 * 2 - 1)  # the last frame lacks a byte: 299 complete samples per channel
    with pytest.raises(TruncatedSignalError, match=r"short\.dat holds 299 samples per channel but the header says 300"):
        read_ecg(record)


def test_zero_byte_dat(tmp_path):
    record = _write(tmp_path, "zero", _twelve_lead(500), list(STANDARD_LEADS), ["mV"] * 12)
    record.with_suffix(".dat").write_bytes(b"")
    with pytest.raises(TruncatedSignalError,
                       match=r"zero: signal file zero\.dat holds 0 samples per channel but the header says 500 "
                             r"\(the file is empty\)"):
        read_ecg(record)


def test_longer_dat_than_header_is_read_to_the_declared_length(tmp_path):
    truth = _twelve_lead(400)
    record = _write(tmp_path, "long", truth, list(STANDARD_LEADS), ["mV"] * 12)
    dat = record.with_suffix(".dat")
    reference = read_ecg(record)
    dat.write_bytes(dat.read_bytes() + b"\x01\x02" * 12 * 50 + b"\x07")  # 50 extra frames and a stray byte
    ecg = read_ecg(record)
    assert ecg.signal.shape == (12, 400)
    np.testing.assert_array_equal(ecg.signal, reference.signal)


def test_fmt212_truncated(tmp_path):
    sig = _twelve_lead(1001)[:, :3]
    wfdb.wrsamp("pk", fs=500, units=["mV"] * 3, sig_name=["I", "II", "V1"], p_signal=sig, fmt=["212"] * 3,
                adc_gain=[500.0] * 3, baseline=[0] * 3, write_dir=str(tmp_path))
    record = tmp_path / "pk"
    dat = record.with_suffix(".dat")
    assert dat.stat().st_size == 4505  # 3003 samples x 12 bits, rounded up to whole bytes
    assert read_ecg(record).signal.shape == (3, 1001)
    original = dat.read_bytes()
    _truncate(dat, 4505 // 2)  # 2252 bytes hold 1501 12-bit samples = 500 whole frames of 3
    with pytest.raises(TruncatedSignalError, match=r"pk: signal file pk\.dat holds 500 samples per channel but "
                                                   r"the header says 1,001 \(file truncated\?\)"):
        read_ecg(record)
    dat.write_bytes(original[:4504])  # half a byte short: the last sample is incomplete
    with pytest.raises(TruncatedSignalError, match=r"holds 1,000 samples per channel but the header says 1,001"):
        read_ecg(record)


@pytest.mark.parametrize("fmt,bits", [("8", 8), ("16", 16), ("24", 24), ("32", 32), ("61", 16), ("80", 8),
                                      ("160", 16), ("212", 12), ("310", None), ("311", None)])
@pytest.mark.parametrize("n_sig,sig_len", [(1, 300), (1, 301), (1, 302), (2, 301), (3, 100)])
def test_fixed_width_formats_exact_size_reads_and_one_byte_less_is_truncated(tmp_path, fmt, bits, n_sig, sig_len):
    # Hand-written header and a byte pattern that decodes to valid (non-NaN) samples in every format.
    names = ["I", "II", "V1"][:n_sig]
    lines = [f"rec {n_sig} 500 {sig_len}"] + [f"rec.dat {fmt} 200/mV 16 0 0 0 0 {n}" for n in names]
    (tmp_path / "rec.hea").write_text("\n".join(lines) + "\n")
    def needed(n: int) -> int:
        if bits is not None:
            return -(-n * bits // 8)
        # three 10-bit samples per 4-byte word; a partial word needs 2 bytes for 1 sample,
        # 3 (fmt 311) or 4 (fmt 310: the 2nd sample is in the upper half-word) for 2 samples
        return 4 * (n // 3) + {0: 0, 1: 2, 2: 4 if fmt == "310" else 3}[n % 3]

    n_bytes = needed(sig_len * n_sig)
    dat = tmp_path / "rec.dat"
    dat.write_bytes(b"\x55" * n_bytes)
    assert read_ecg(tmp_path / "rec", leads="all").signal.shape == (n_sig, sig_len)
    dat.write_bytes(b"\x55" * (n_bytes - 1))
    whole_samples = max(k for k in range(sig_len * n_sig) if needed(k) <= n_bytes - 1)
    held = whole_samples // n_sig
    assert held in (sig_len - 1, sig_len - 2)
    with pytest.raises(TruncatedSignalError, match=rf"rec\.dat holds {held} samples per channel but the "
                                                   rf"header says {sig_len} "):
        read_ecg(tmp_path / "rec", leads="all")


def test_byte_offset_is_taken_into_account(tmp_path):
    record = _write(tmp_path, "off", _twelve_lead(200)[:, :2], ["I", "II"], ["mV"] * 2)
    reference = read_ecg(record)
    header = record.with_suffix(".hea")
    header.write_text(header.read_text().replace("off.dat 16 ", "off.dat 16+24 "))
    dat = record.with_suffix(".dat")
    dat.write_bytes(b"\x00" * 24 + dat.read_bytes())
    np.testing.assert_array_equal(read_ecg(record).signal, reference.signal)
    _truncate(dat, dat.stat().st_size - 4)  # one frame of 2 x 16 bits short
    with pytest.raises(TruncatedSignalError, match=r"off\.dat holds 199 samples per channel but the header says 200"):
        read_ecg(record)


def test_truncated_file_of_a_dropped_channel_only_fails_when_kept(tmp_path):
    # Two signal files, as in PTB (.dat for the 12 leads, .xyz for the Frank leads).
    _write(tmp_path, "leads", _twelve_lead(500)[:, :2], ["I", "II"], ["mV"] * 2)
    _write(tmp_path, "frank", _twelve_lead(500, seed=1)[:, :1], ["vx"], ["mV"])
    lines = [line for line in (tmp_path / "leads.hea").read_text().splitlines()[1:] if line.strip()]
    lines += [line for line in (tmp_path / "frank.hea").read_text().splitlines()[1:] if line.strip()]
    (tmp_path / "both.hea").write_text("\n".join(["both 3 500 500", *lines]) + "\n")
    _truncate(tmp_path / "frank.dat", 100)
    assert read_ecg(tmp_path / "both").leads == ("I", "II")
    with pytest.raises(TruncatedSignalError, match=r"both: signal file frank\.dat holds 50 samples per channel"):
        read_ecg(tmp_path / "both", leads="all")


def test_truncated_ptb_xyz_file(tmp_path, ptb_record):
    for suffix in (".hea", ".dat", ".xyz"):
        shutil.copyfile(ptb_record.with_suffix(suffix), tmp_path / f"s0010_re{suffix}")
    _truncate(tmp_path / "s0010_re.xyz", 3 * 2 * 10_000)
    assert read_ecg(tmp_path / "s0010_re").signal.shape == (12, 38400)
    with pytest.raises(TruncatedSignalError, match=r"s0010_re\.xyz holds 10,000 samples per channel but the "
                                                   r"header says 38,400"):
        read_ecg(tmp_path / "s0010_re", leads="all")


def test_unknown_signal_format_and_empty_header(tmp_path):
    record = _write(tmp_path, "fmt", _twelve_lead(100)[:, :2], ["I", "II"], ["mV"] * 2)
    header = record.with_suffix(".hea")
    header.write_text(header.read_text().replace("fmt.dat 16 ", "fmt.dat 999 "))
    with pytest.raises(ECGHeaderError, match=r"fmt: corrupt WFDB header: channel 'I' has signal format '999', "
                                             r"which WFDB does not define"):
        read_ecg(record)
    header.write_text("")
    with pytest.raises(ECGHeaderError, match=r"corrupt WFDB header: fmt\.hea is empty \(0 bytes\)"):
        read_ecg(record)


def test_header_syntax_error_quotes_the_record_line(tmp_path):
    (tmp_path / "JS00001.v2.hea").write_text("JS00001.v2 2 500 100\n")
    with pytest.raises(ECGHeaderError, match=r"corrupt WFDB header \(HeaderSyntaxError: invalid syntax in record "
                                             r"line; record line 'JS00001\.v2 2 500 100' \(WFDB record names"):
        read_ecg(tmp_path / "JS00001.v2")


def test_dicom_waveform_shorter_than_declared(tmp_path, dicom_ecg_path):
    import pydicom

    ds = pydicom.dcmread(dicom_ecg_path)
    group = ds.WaveformSequence[0]
    group.NumberOfWaveformSamples = 2 * int(group.NumberOfWaveformSamples)
    edited = tmp_path / "long_header.dcm"
    ds.save_as(edited)
    with pytest.raises(TruncatedSignalError,
                       match=r"long_header\.dcm: waveform group 0 \(RHYTHM\) holds 10,000 samples per channel but "
                             r"NumberOfWaveformSamples says 20,000"):
        read_ecg(edited)


# ---------------------------------------------------------------------------------------------
# ecg_source_problem: the path rules of read_ecg, without reading any file
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def sources(tmp_path) -> Path:
    """A folder with one source of every kind read_ecg accepts (contents irrelevant but for WFDB)."""
    ecg = tmp_path / "ecg"
    ecg.mkdir()
    _write(ecg, "P00001", _twelve_lead(100), list(STANDARD_LEADS), ["mV"] * 12)
    # A record file name containing a dot (the header's record line has a valid WFDB name).
    _write(ecg, "JS00001", _twelve_lead(100), list(STANDARD_LEADS), ["mV"] * 12)
    (ecg / "JS00001.hea").rename(ecg / "JS00001.v2.hea")
    (ecg / "orphan.dat").write_bytes(b"\x00" * 10)
    (ecg / "scan.dcm").write_bytes(b"not parsed")
    (ecg / "muse.xml").write_text("<RestingECG/>")
    (ecg / "tracing.bin").write_bytes(b"\x00")
    (ecg / "exams.hdf5").write_bytes(b"not parsed either")
    (ecg / "folder").mkdir()
    return ecg


def test_ecg_source_problem_none_when_the_files_exist(sources, monkeypatch):
    found = [
        sources / "P00001",            # record name without extension, P00001.hea beside it
        str(sources / "P00001"),
        sources / "P00001.hea",
        sources / "P00001.dat",        # signal file with its sibling header
        sources / "JS00001.v2",        # record name with a dot
        sources / "JS00001.v2.hea",
        sources / "scan.dcm",
        sources / "muse.xml",
        sources / "tracing.bin",       # any existing file (format decided when read)
        f"{sources / 'exams.hdf5'}::12345",
    ]
    # The check must not open any file: it runs for every row of a large manifest.
    import builtins
    import io as std_io

    def no_open(*args, **kwargs):
        raise AssertionError(f"ecg_source_problem opened a file: {args[:1]}")

    monkeypatch.setattr(builtins, "open", no_open)
    monkeypatch.setattr(std_io, "open", no_open)
    monkeypatch.setattr(Path, "open", no_open)
    monkeypatch.setattr(Path, "read_bytes", no_open)
    for path in found:
        assert ecg_source_problem(path) is None, path
    monkeypatch.undo()
    # ... and read_ecg finds the same files (the WFDB ones read fine).
    for path in found[:6]:
        assert read_ecg(path).leads == STANDARD_LEADS


def test_ecg_source_problem_reasons_match_read_ecg(sources):
    cases = {
        sources / "P00002": "no such file (nor a WFDB header P00002.hea)",
        sources / "JS00002.v2": "no such file (nor a WFDB header JS00002.v2.hea)",
        sources / "P00002.hea": "WFDB header file not found",
        sources / "P00002.dat": "WFDB signal file not found",
        sources / "orphan.dat": "WFDB header orphan.hea not found next to the signal file",
        sources / "missing.dcm": "DICOM file not found",
        sources / "missing.xml": "no such file (nor a WFDB header missing.xml.hea)",
        sources / "folder": "is a directory, not an ECG file or WFDB record",
        sources / "exams.hdf5": "an HDF5 file holds many ECGs: address one as '<file>.hdf5::<exam_id>'",
        f"{sources / 'other.hdf5'}::12345": "HDF5 file not found",
        f"{sources / 'exams.hdf5'}::": "no exam id after '::' (expected '<file>.hdf5::<exam_id>')",
    }
    for path, problem in cases.items():
        assert ecg_source_problem(path) == problem, path
        # read_ecg fails for the same reason, with the same text after the path.
        with pytest.raises(ECGReadError) as info:
            read_ecg(path)
        assert info.value.problem == problem


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
