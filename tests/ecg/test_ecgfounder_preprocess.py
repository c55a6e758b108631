"""ECGFounder's preprocessing recipe, windows, quality flags and the new normalisation."""

import numpy as np
import pytest
from scipy import ndimage, signal

from riskfm.ecg import ECG, aggregate_windows, ecg_quality, ecg_windows, prepare_ecg
from riskfm.ecg.net1d import ecgfounder_input_spec
from riskfm.ecg.spec import STANDARD_LEADS


def _ecg(seconds=10.0, fs=500.0, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * fs)) / fs
    rows = [(0.4 + 0.15 * k) * np.sin(2 * np.pi * 1.2 * t + k) + 0.3 * np.sin(2 * np.pi * 50 * t) + 0.05 * rng.normal(size=t.size)
            + 0.5 * t / seconds for k in range(12)]
    return ECG(np.stack(rows), fs, STANDARD_LEADS)


def test_ecgfounder_recipe_matches_scipy_reference():
    ecg = _ecg()
    spec = ecgfounder_input_spec()
    x, mask = prepare_ecg(ecg, spec)
    # the recipe written out with scipy: notch 50 Hz Q30, Butterworth-4 0.67-40 Hz zero-phase,
    # 0.4 s median baseline (201 samples), then ONE z-score over the whole 12 x 5000 array
    ref = ecg.signal.astype(np.float64)
    b, a = signal.iirnotch(50.0, 30.0, fs=500.0)
    ref = signal.filtfilt(b, a, ref, axis=-1)
    ref = signal.sosfiltfilt(signal.butter(4, [0.67, 40.0], btype="bandpass", fs=500.0, output="sos"), ref, axis=-1)
    ref = ref - np.stack([ndimage.median_filter(r.astype(np.float32), size=201, mode="nearest") for r in ref])
    ref = (ref - ref.mean()) / ref.std()
    assert mask.all() and x.shape == (12, 5000)
    np.testing.assert_allclose(x, ref, atol=2e-4)
    assert abs(x.mean()) < 1e-5 and abs(x.std() - 1) < 1e-4
    assert not np.allclose(x.std(axis=1), 1.0, atol=0.05)  # not per lead


def test_windows_cover_a_long_record_and_aggregate():
    ecg = _ecg(seconds=25.0)
    spec = ecgfounder_input_spec()
    windows, mask = ecg_windows(ecg, spec)
    assert windows.shape == (3, 12, 5000) and mask.all()  # 0-10 s, 10-20 s, and 15-25 s for the tail
    for w in windows:
        assert abs(w.mean()) < 1e-4 and abs(w.std() - 1) < 1e-3
    probs = np.array([[0.2, 0.9], [0.4, 0.7], [0.6, 0.8]])
    np.testing.assert_allclose(aggregate_windows(probs), [0.4, 0.8])
    np.testing.assert_allclose(aggregate_windows(probs, "max"), [0.6, 0.9])
    with pytest.raises(ValueError, match="how must be"):
        aggregate_windows(probs, "sum")


def test_quality_flags_each_problem():
    ecg = _ecg()
    sig = ecg.signal.copy()
    sig[7] = 0.0                                  # V2 detached: flat
    sig[8] = np.clip(sig[8] * 5, -1.0, 1.0)       # V3 clipped at the rails
    rng = np.random.default_rng(1)
    sig[9] = 0.1 * sig[9] + rng.normal(0, 2.0, sig.shape[1])  # V4 drowned in broadband noise
    report = ecg_quality(ECG(sig, ecg.fs, ecg.leads))
    assert report.flat == ["V2"] and report.saturated == ["V3"] and report.noisy == ["V4"]
    assert not report.ok and "flat lead: V2" in report.reasons
    assert ecg_quality(ecg).ok


def test_lead_minmax_normalisation_bounds_each_lead():
    spec = ecgfounder_input_spec(normalisation="lead_minmax", notch_hz=None, bandpass_hz=None,
                                 baseline_median_s=None)
    x, _ = prepare_ecg(_ecg(), spec)
    np.testing.assert_allclose(np.abs(x).max(axis=1), 1.0, rtol=1e-6)
