"""ECG measurements for the normal-ECG rule: known heart rate, QRS width and ST offset are measured back."""

from __future__ import annotations

import numpy as np
import pytest

from riskfm.ecg import ECG
from riskfm.ecg.beats import BeatDetectionError
from riskfm.ecg.measurements import MEASUREMENT_SPEC, NormalECGRule, measure_ecg, measure_ecg_file
from riskfm.ecg.preprocess import prepare_ecg
from riskfm.ecg.spec import STANDARD_LEADS
from riskfm.synthetic.ecg_render import EcgSiteProfile, render_ecg

FS = 250.0


def _hand_record(rr_s: float = 1.0, qrs_ms: float = 80.0, st_mv: float = 0.0, st_lead: str = "V5") -> np.ndarray:
    """12 leads, 10 s: a triangular QRS (1 mV) every rr_s, and an ST plateau of st_mv after it in one lead."""
    t = np.arange(int(10 * FS)) / FS
    x = np.zeros((12, len(t)))
    half = qrs_ms / 2000.0
    for r in np.arange(0.5, 9.6, rr_s):
        d = np.abs(t - r)
        x += np.where(d < half, 1.0 - d / half, 0.0)[None, :]
        plateau = (t >= r + half) & (t < r + half + 0.16)
        x[STANDARD_LEADS.index(st_lead), plateau] += st_mv
    return x


def test_hand_built_record_is_measured_back():
    m = measure_ecg(_hand_record(rr_s=0.8, qrs_ms=80.0, st_mv=-0.15), FS)
    assert m.heart_rate_bpm == pytest.approx(75.0, abs=0.5)
    assert m.rr_cv == pytest.approx(0.0, abs=0.01)
    assert m.qrs_ms == pytest.approx(80.0, abs=2 * 1000 / FS)
    assert m.st_deviation_mv["V5"] == pytest.approx(-0.15, abs=0.01)
    assert abs(m.st_deviation_mv["I"]) < 0.01
    rule = NormalECGRule()
    assert rule.reasons(m) == ["ST deviation -0.15 mV in V5 beyond 0.1"]
    wide = measure_ecg(_hand_record(qrs_ms=140.0), FS)
    assert wide.qrs_ms == pytest.approx(140.0, abs=2 * 1000 / FS)
    assert rule.reasons(wide) == [f"QRS {wide.qrs_ms:.0f} ms >= 120"]
    # V2-V3 may be elevated up to 0.2 mV, not depressed beyond 0.1
    assert rule.is_normal(measure_ecg(_hand_record(st_mv=0.15, st_lead="V2"), FS))
    assert not rule.is_normal(measure_ecg(_hand_record(st_mv=-0.15, st_lead="V2"), FS))
    slow = measure_ecg(_hand_record(rr_s=1.5), FS)
    assert slow.heart_rate_bpm == pytest.approx(40.0, abs=0.5)
    assert rule.reasons(slow) == ["heart rate 40 bpm outside 50-100"]


def test_synthetic_ecgs_heart_rate_and_ischaemia():
    rule = NormalECGRule()
    for hr, sev, normal in ((62.0, 0.0, True), (88.0, 0.0, True), (70.0, 1.0, False)):
        sig = render_ecg(np.random.default_rng(1), np.array([0.0, 0.0, sev, 0.0]), heart_rate_bpm=hr, age=60,
                         female=False, profile=EcgSiteProfile())
        x, present = prepare_ecg(ECG(sig, 500.0, STANDARD_LEADS), MEASUREMENT_SPEC, crop=False)
        m = measure_ecg(x, MEASUREMENT_SPEC.fs, lead_present=present)
        assert m.heart_rate_bpm == pytest.approx(hr, abs=2.0)
        assert 60.0 <= m.qrs_ms <= 110.0
        assert rule.is_normal(m) is normal, rule.reasons(m)


def test_flat_record_is_unmeasurable(tmp_path):
    with pytest.raises(BeatDetectionError):
        measure_ecg(np.zeros((12, 2500)), FS)
    from riskfm.ecg.wfdb_write import write_wfdb

    write_wfdb(tmp_path / "flat", np.zeros((12, 5000)), 500.0, STANDARD_LEADS, gain_per_mv=1000.0)
    with pytest.raises(BeatDetectionError):
        measure_ecg_file(tmp_path / "flat.hea")
