"""read_ecg parses a WFDB header once and copies the samples once, with unchanged results (issue 14).

The reference is computed here from bare wfdb (``rdheader`` + ``rdrecord`` of the kept channels)
and the formula read_ecg used before the change (float64 samples, transposed, times the per-channel
mV factor, then cast to float32), so a changed value, dtype, lead or meta field fails.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import wfdb

from riskfm.ecg import wfdb_read
from riskfm.ecg.assembly import millivolts_per_unit, select_channels, to_millivolts
from riskfm.ecg.io import read_ecg
from riskfm.synthetic import make_cohort

PTB = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures" / "ecg" / "ptb" / "s0010_re"


def _reference(record: Path, mode: str):
    """(signal, fs, leads, meta) from bare wfdb plus the documented unit and lead handling."""
    header = wfdb.rdheader(str(record))
    names = [str(n) for n in header.sig_name]
    selection = select_channels(names, mode, record)
    rec = wfdb.rdrecord(str(record), channels=selection.indices)
    factors = np.array([millivolts_per_unit(u) for u in rec.units], dtype=np.float64)
    signal = (np.asarray(rec.p_signal, dtype=np.float64).T * factors[:, None]).astype(np.float32)
    comments = [str(c) for c in header.comments]
    meta = {
        "source": str(record), "format": "wfdb", "record_name": header.record_name, "units": list(rec.units),
        "channel_names": [names[i] for i in selection.indices], "original_channel_names": names,
        "dropped_channels": [names[i] for i in selection.dropped], "comments": comments,
    }
    if header.base_date is not None or header.base_time is not None:
        meta["acquisition_date"] = None if header.base_date is None else header.base_date.isoformat()
        meta["acquisition_time"] = None if header.base_time is None else header.base_time.isoformat()
    return signal, float(header.fs), tuple(selection.names), meta


def _assert_same(record: Path, mode: str, extra_meta: dict | None = None) -> None:
    ecg = read_ecg(record, leads=mode)
    signal, fs, leads, meta = _reference(record, mode)
    assert ecg.signal.dtype == np.float32 and ecg.signal.flags.c_contiguous
    assert ecg.signal.shape == signal.shape
    # bit-identical, NaN-free (read_ecg rejects NaN), so compare the raw bits
    assert np.array_equal(ecg.signal.view(np.uint32), signal.view(np.uint32))
    assert ecg.fs == fs and ecg.leads == leads
    expected = {**meta, **(extra_meta or {})}
    assert ecg.meta == expected


def _wrsamp(tmp_path: Path, name: str, units: list[str], sig_name: list[str], fmt: str = "16",
            base_time=None, base_date=None) -> Path:
    rng = np.random.default_rng(len(name))
    scale = np.array([{"mV": 1.0, "uV": 1000.0, "V": 1e-3}[u] for u in units])
    physical = rng.normal(0, 0.5, (1500, len(units))) * scale
    wfdb.wrsamp(name, fs=250, units=units, sig_name=sig_name, p_signal=physical, fmt=[fmt] * len(units),
                adc_gain=list(1000.0 / scale), baseline=[0] * len(units), comments=["age: 61", "sex: M"],
                write_dir=str(tmp_path), base_time=base_time, base_date=base_date)
    return tmp_path / name


@pytest.mark.skipif(not Path(f"{PTB}.hea").is_file(), reason="PTB fixture not present")
@pytest.mark.parametrize("mode", ["standard", "all"])
def test_ptb_record_unchanged(mode):
    # 15 channels in two signal files (.dat + .xyz); "standard" drops vx, vy, vz
    extra = wfdb_read._demographics_from_comments(wfdb.rdheader(str(PTB)).comments)
    _assert_same(PTB, mode, extra)


def test_synthetic_cohort_records_unchanged(tmp_path):
    cohort = make_cohort(n=3, seed=0, out_dir=tmp_path / "c", missing_ecg=0.0, missing_ct=1.0, n_workers=1)
    records = sorted((tmp_path / "c" / "ecg").glob("*.hea"))
    assert len(records) == 3, cohort
    for header in records:
        record = header.with_suffix("")
        extra = wfdb_read._demographics_from_comments(wfdb.rdheader(str(record)).comments)
        _assert_same(record, "standard", extra)
        _assert_same(record, "all", extra)


@pytest.mark.parametrize("fmt", ["16", "212", "24"])
def test_mixed_units_and_formats_unchanged(tmp_path, fmt):
    import datetime

    units = ["mV", "uV", "V", "mV", "uV"]
    names = ["II", "I", "V1", "resp", "aVF"]
    record = _wrsamp(tmp_path, f"mix{fmt}", units[:3] + ["mV", "uV"], names, fmt,
                     base_time=datetime.time(10, 5, 3), base_date=datetime.date(2020, 1, 2))
    _assert_same(record, "standard", {"age": 61.0, "sex": "M"})
    _assert_same(record, "all", {"age": 61.0, "sex": "M"})


def test_header_is_parsed_once(tmp_path, monkeypatch):
    record = _wrsamp(tmp_path, "once", ["mV"] * 3, ["I", "II", "V1"])
    calls = []
    real = wfdb.rdheader

    def counting(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(wfdb, "rdheader", counting)
    monkeypatch.setattr(wfdb.io.record, "rdheader", counting)  # the name rdrecord calls
    read_ecg(record)
    assert len(calls) == 1


def test_fallback_to_rdrecord_gives_the_same_ecg(tmp_path, monkeypatch):
    # a wfdb without the private single-segment reader: read_ecg uses wfdb.rdrecord
    record = _wrsamp(tmp_path, "fallback", ["uV", "mV", "V"], ["V2", "I", "II"])
    fast = read_ecg(record, leads="all")
    monkeypatch.setattr(wfdb_read, "_wfdb_segment_reader", lambda: None)
    slow = read_ecg(record, leads="all")
    assert np.array_equal(fast.signal.view(np.uint32), slow.signal.view(np.uint32))
    assert fast.leads == slow.leads and fast.fs == slow.fs and fast.meta == slow.meta
    _assert_same(record, "all", {"age": 61.0, "sex": "M"})


def test_header_without_length_unchanged(tmp_path):
    # no sig_len on the record line: wfdb infers it from the file size (rdrecord path)
    record = _wrsamp(tmp_path, "nolen", ["mV", "uV"], ["I", "II"])
    header = Path(f"{record}.hea")
    lines = header.read_text().splitlines()
    lines[0] = " ".join(lines[0].split()[:3])
    header.write_text("\n".join(lines) + "\n")
    assert wfdb.rdheader(str(record)).sig_len is None
    _assert_same(record, "standard", {"age": 61.0, "sex": "M"})


def test_to_millivolts_matches_the_scale_then_cast_formula():
    rng = np.random.default_rng(3)
    samples = rng.normal(0, 1000, (777, 4))
    samples[0, 0] = -0.0
    for units in (["mV"] * 4, ["uV", "mV", "V", "millivolt"]):
        factors = np.array([millivolts_per_unit(u) for u in units])
        expected = (samples.T * factors[:, None]).astype(np.float32)
        got = to_millivolts(samples, units, ["a", "b", "c", "d"], "x")
        assert got.dtype == np.float32 and got.flags.c_contiguous
        assert np.array_equal(got.view(np.uint32), expected.view(np.uint32))
    ints = rng.integers(-2000, 2000, (50, 2)).astype(np.int16)  # other readers pass integer arrays
    got = to_millivolts(ints, ["uV", "mV"], ["a", "b"], "x")
    expected = (ints.astype(np.float64).T * np.array([1e-3, 1.0])[:, None]).astype(np.float32)
    assert np.array_equal(got, expected)


def test_multiple_samples_per_frame_unchanged(tmp_path):
    # lead II stored at twice the frame rate: wfdb averages its frames (smooth_frames), as before
    rng = np.random.default_rng(5)
    expanded = [rng.normal(0, 0.5, 1000 * k) for k in (1, 2, 1)]
    wfdb.wrsamp("spf", fs=250, units=["mV", "uV", "mV"], sig_name=["I", "II", "V1"], e_p_signal=expanded,
                samps_per_frame=[1, 2, 1], fmt=["16"] * 3, adc_gain=[1000, 1, 1000], baseline=[0] * 3,
                write_dir=str(tmp_path))
    assert wfdb.rdheader(str(tmp_path / "spf")).samps_per_frame == [1, 2, 1]
    _assert_same(tmp_path / "spf", "standard")
