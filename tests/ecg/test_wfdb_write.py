import numpy as np
import pytest
import wfdb

from riskfm.ecg import read_ecg
from riskfm.ecg.spec import STANDARD_LEADS
from riskfm.ecg.wfdb_write import write_wfdb


def test_writer_matches_wfdb_reader_and_wrsamp(tmp_path):
    rng = np.random.default_rng(0)
    sig = rng.normal(0, 0.5, (12, 1000))
    write_wfdb(tmp_path / "ours", sig, 500, STANDARD_LEADS, comments=["age: 60"])
    wfdb.wrsamp("ref", fs=500, units=["mV"] * 12, sig_name=list(STANDARD_LEADS), p_signal=sig.T, fmt=["16"] * 12,
                adc_gain=[1000.0] * 12, baseline=[0] * 12, write_dir=str(tmp_path))
    ours = wfdb.rdrecord(str(tmp_path / "ours"), physical=False)
    ref = wfdb.rdrecord(str(tmp_path / "ref"), physical=False)
    assert np.array_equal(ours.d_signal, ref.d_signal)
    assert ours.checksum == ref.checksum and ours.init_value == ref.init_value
    assert ours.comments == ["age: 60"]
    ecg = read_ecg(tmp_path / "ours.hea")
    assert ecg.leads == STANDARD_LEADS and ecg.fs == 500
    np.testing.assert_allclose(ecg.signal, sig, atol=0.5e-3 + 1e-9)


def test_writer_refuses_overflow_and_bad_names(tmp_path):
    with pytest.raises(ValueError, match="exceeds"):
        write_wfdb(tmp_path / "x", np.full((1, 10), 40.0), 500, ["I"])
    with pytest.raises(ValueError, match="spaces"):
        write_wfdb(tmp_path / "x", np.zeros((1, 10)), 500, ["Lead I"])
