"""Spec-driven ECG preparation: lead order and derivation, resampling, windows, filters, scaling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from riskfm.ecg import ECG, STANDARD_LEADS, ECGInputSpec, prepare_ecg, read_ecg
from riskfm.ecg.preprocess import (
    bandpass,
    crop_or_pad,
    derive_limb_leads,
    normalise,
    notch,
    remove_baseline,
    reorder_leads,
    resample,
)

FIXTURES = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures"


def _sine(freq_hz: float, fs: float, seconds: float, amplitude: float = 1.0) -> np.ndarray:
    t = np.arange(int(round(fs * seconds))) / fs
    return amplitude * np.sin(2 * np.pi * freq_hz * t)


def _amplitude_at(x: np.ndarray, fs: float, freq_hz: float) -> float:
    """Amplitude of the ``freq_hz`` component of a 1-D signal (integer number of cycles assumed)."""
    t = np.arange(x.size) / fs
    return float(2 * np.abs(np.mean(x * np.exp(-2j * np.pi * freq_hz * t))))


def _limb_inputs(n: int = 3000, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    lead_i = np.cumsum(rng.standard_normal(n)) * 0.01
    lead_ii = np.cumsum(rng.standard_normal(n)) * 0.01
    return lead_i, lead_ii


# ---------------------------------------------------------------------------------------------
# Resampling and windows
# ---------------------------------------------------------------------------------------------


def test_resample_1000_to_500_halves_samples_and_keeps_a_10hz_amplitude():
    x = np.stack([_sine(10, 1000, 10, 1.5), _sine(10, 1000, 10, 0.3)])
    y = resample(x, 1000, 500)
    assert y.shape == (2, 5000) and y.dtype == np.float32
    core = slice(500, 4500)  # away from the edges, where the FIR filter sees zero padding
    np.testing.assert_allclose(y[:, core], np.stack([_sine(10, 500, 10, 1.5), _sine(10, 500, 10, 0.3)])[:, core],
                               atol=0.01)


@pytest.mark.parametrize(("fs_in", "fs_out", "n_in", "n_out"),
                         [(360, 500, 3600, 5000), (400, 500, 4096, 5120), (257, 500, 2570, 5000),
                          (500, 100, 5000, 1000), (500, 500, 4000, 4000)])
def test_resample_lengths_for_common_ecg_rates(fs_in, fs_out, n_in, n_out):
    assert resample(np.zeros((1, n_in)), fs_in, fs_out).shape == (1, n_out)


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf")])
def test_resample_rejects_invalid_rates(bad):
    with pytest.raises(ValueError, match="fs_in must be finite and > 0 Hz"):
        resample(np.zeros((1, 10)), bad, 500)


def test_crop_or_pad_lengths_and_alignment():
    x = np.arange(10, dtype=np.float32)[None].repeat(2, axis=0)
    np.testing.assert_array_equal(crop_or_pad(x, 4), x[:, 3:7])  # centred crop
    np.testing.assert_array_equal(crop_or_pad(x, 5), x[:, 2:7])
    padded = crop_or_pad(x, 14)
    assert padded.shape == (2, 14)
    np.testing.assert_array_equal(padded[:, :10], x)
    assert not padded[:, 10:].any()
    both = crop_or_pad(x, 14, pad="both")
    np.testing.assert_array_equal(both[:, 2:12], x)
    assert crop_or_pad(x, 10) is not x and crop_or_pad(x, 10).shape == (2, 10)
    with pytest.raises(ValueError, match="positive integer"):
        crop_or_pad(x, 0)


# ---------------------------------------------------------------------------------------------
# Leads
# ---------------------------------------------------------------------------------------------


def test_derived_limb_leads_follow_einthoven_and_goldberger():
    lead_i, lead_ii = _limb_inputs()
    x, names = derive_limb_leads(np.stack([lead_i, lead_ii]), ["I", "II"])
    assert names == ("I", "II", "III", "aVR", "aVL", "aVF")
    lead_iii, avr, avl, avf = x[2:]
    np.testing.assert_allclose(lead_i + lead_iii, lead_ii, atol=1e-12)  # Einthoven's law
    np.testing.assert_allclose(avr + avl + avf, 0.0, atol=1e-12)  # augmented leads sum to zero
    np.testing.assert_allclose(avr, -(lead_i + lead_ii) / 2)
    np.testing.assert_allclose(avl, (lead_i - lead_iii) / 2)
    np.testing.assert_allclose(avf, (lead_ii + lead_iii) / 2)


def test_derivation_keeps_recorded_leads_and_needs_both_i_and_ii():
    lead_i, lead_ii = _limb_inputs(100)
    recorded_iii = np.full(100, 7.0)
    x, names = derive_limb_leads(np.stack([lead_i, lead_ii, recorded_iii]), ["i", "DII", "III"])
    assert names == ("i", "DII", "III", "aVR", "aVL", "aVF")
    np.testing.assert_array_equal(x[2], recorded_iii)  # a recorded lead is never overwritten
    x, names = derive_limb_leads(np.stack([lead_ii]), ["II"])
    assert names == ("II",) and x.shape == (1, 100)


def test_reorder_leads_masks_absent_leads_and_matches_aliases():
    x = np.stack([np.full(5, 1.0), np.full(5, 2.0), np.full(5, 3.0)])
    out, mask = reorder_leads(x, ["v1", "avr", "vx"], ("aVR", "V2", "V1"))
    np.testing.assert_array_equal(out[:, 0], [2.0, 0.0, 1.0])
    np.testing.assert_array_equal(mask, [True, False, True])
    with pytest.raises(ValueError, match="repeat"):
        reorder_leads(x, ["I", "DI", "II"], STANDARD_LEADS)


def test_prepare_ecg_derives_limb_leads_for_devices_storing_eight_leads():
    lead_i, lead_ii = _limb_inputs(5000)
    chest = np.random.default_rng(2).standard_normal((6, 5000))
    ecg = ECG(np.vstack([lead_i, lead_ii, chest]), fs=500, leads=("I", "II", "V1", "V2", "V3", "V4", "V5", "V6"))
    x, mask = prepare_ecg(ecg, ECGInputSpec(fs=500, n_samples=5000))
    assert x.shape == (12, 5000) and x.dtype == np.float32
    assert mask.all() and mask.dtype == bool
    np.testing.assert_allclose(x[2], lead_ii - lead_i, atol=1e-5)  # III
    np.testing.assert_allclose(x[3], -(lead_i + lead_ii) / 2, atol=1e-5)  # aVR
    np.testing.assert_allclose(x[6:], chest, atol=1e-5)


def test_prepare_ecg_masks_leads_that_cannot_be_derived():
    ecg = ECG(np.ones((2, 1000)), fs=500, leads=("II", "V1"))
    x, mask = prepare_ecg(ecg, ECGInputSpec(fs=500, n_samples=1000))
    assert mask.tolist() == [name in ("II", "V1") for name in STANDARD_LEADS]
    assert not x[~mask].any()
    # A spec with its own lead order (e.g. a single-lead encoder) gets exactly that order.
    x1, mask1 = prepare_ecg(ecg, ECGInputSpec(fs=500, n_samples=1000, leads=("V1", "I")))
    assert x1.shape == (2, 1000) and mask1.tolist() == [True, False]


# ---------------------------------------------------------------------------------------------
# Filters
# ---------------------------------------------------------------------------------------------


def test_bandpass_removes_slow_drift_and_keeps_10hz():
    fs = 500.0
    drift = _sine(0.1, fs, 20, 2.0)
    beat = _sine(10, fs, 20, 0.5)
    y = bandpass((drift + beat)[None], fs, 0.67, 40)[0]
    core = slice(2500, 7500)  # the centre 10 s; zero-phase filtering leaves short edge transients
    assert _amplitude_at(y[core], fs, 0.1) < 0.02  # 2 mV of drift -> < 0.02 mV
    assert _amplitude_at(y[core], fs, 10) == pytest.approx(0.5, rel=0.02)
    np.testing.assert_allclose(y[core], beat[core], atol=0.03)  # no phase shift
    with pytest.raises(ValueError, match="Nyquist"):
        bandpass(beat[None], fs, 0.5, 300)


def test_notch_removes_mains_and_keeps_10hz():
    fs = 500.0
    y = notch((_sine(50, fs, 10, 0.3) + _sine(10, fs, 10, 1.0))[None], fs, 50)[0]
    core = slice(1000, 4000)
    assert _amplitude_at(y[core], fs, 50) < 0.01
    assert _amplitude_at(y[core], fs, 10) == pytest.approx(1.0, rel=0.01)


def test_remove_baseline_subtracts_wander_and_keeps_spikes():
    fs = 500.0
    n = 5000
    spikes = np.zeros(n)
    spikes[250::500] = 1.0  # one 2 ms "QRS" per second
    wander = 0.5 + _sine(0.2, fs, n / fs, 0.8)
    y = remove_baseline((spikes + wander)[None], fs, 0.4)[0]
    assert np.abs(np.delete(y, np.flatnonzero(spikes))).max() < 0.01
    np.testing.assert_allclose(y[spikes > 0], 1.0, atol=0.01)


def test_prepare_ecg_applies_the_specs_filters():
    fs = 500.0
    wander = _sine(0.1, fs, 20, 1.0) + _sine(50, fs, 20, 0.2)
    ecg = ECG(np.stack([wander + _sine(10, fs, 20, 0.5)]), fs=fs, leads=("V1",))
    spec = ECGInputSpec(fs=fs, n_samples=5000, leads=("V1",), bandpass_hz=(0.67, 40), notch_hz=50)
    x, _ = prepare_ecg(ecg, spec)
    np.testing.assert_allclose(x[0], _sine(10, fs, 20, 0.5)[2500:7500], atol=0.03)


# ---------------------------------------------------------------------------------------------
# Normalisation and the whole pipeline
# ---------------------------------------------------------------------------------------------


def test_global_zscore_is_one_statistic_over_present_leads():
    rng = np.random.default_rng(3)
    x = np.vstack([rng.normal(1.0, 2.0, (1, 4000)), rng.normal(0.0, 0.5, (1, 4000)), np.zeros((1, 4000))])
    mask = np.array([True, True, False])
    y = normalise(x, "global_zscore", mask)
    assert y[:2].mean() == pytest.approx(0.0, abs=1e-5) and y[:2].std() == pytest.approx(1.0, abs=1e-5)
    assert not y[2].any()  # the absent lead stays zero and does not dilute the statistics
    # relative amplitudes between leads are preserved
    assert y[0].std() / y[1].std() == pytest.approx(x[0].std() / x[1].std(), rel=1e-4)


def test_lead_zscore_standardises_each_present_lead_and_guards_flat_leads():
    rng = np.random.default_rng(4)
    x = np.vstack([rng.normal(1.0, 2.0, (1, 4000)), rng.normal(0.0, 0.5, (1, 4000)), np.full((1, 4000), 3.0)])
    y = normalise(x, "lead_zscore")
    np.testing.assert_allclose(y[:2].mean(axis=1), 0.0, atol=1e-5)
    np.testing.assert_allclose(y[:2].std(axis=1), 1.0, atol=1e-5)
    assert np.isfinite(y).all() and not y[2].any()  # flat lead: centred, not divided by 0
    np.testing.assert_array_equal(normalise(x, "none"), x.astype(np.float32))
    with pytest.raises(ValueError, match="method must be one of"):
        normalise(x, "minmax")


def test_prepare_ecg_nan_to_zero_and_invalid_input():
    sig = np.ones((2, 1000))
    sig[0, 10] = np.nan
    sig[1] = np.nan  # a lead with no data at all counts as absent
    ecg = ECG(sig, fs=500, leads=("I", "V1"))
    x, mask = prepare_ecg(ecg, ECGInputSpec(fs=250, n_samples=500, normalisation="lead_zscore"))
    assert np.isfinite(x).all() and x.shape == (12, 500)
    assert mask.tolist() == [name == "I" for name in STANDARD_LEADS]

    ecg.fs = float("nan")  # the dataclass validates on construction only
    with pytest.raises(ValueError, match="sampling rate.*finite and > 0"):
        prepare_ecg(ecg, ECGInputSpec())
    with pytest.raises(ValueError, match="spec.normalisation"):
        prepare_ecg(ECG(np.ones((1, 100)), fs=500, leads=("I",)), ECGInputSpec(normalisation="zscore"))


def test_prepare_real_ptb_record_the_ecgfounder_way():
    record = FIXTURES / "ecg" / "ptb" / "s0010_re"
    if not record.with_suffix(".hea").is_file():
        pytest.skip(f"real-data fixtures not found at {FIXTURES.resolve()} (a fresh clone has none)")
    ecg = read_ecg(record)
    spec = ECGInputSpec(fs=500, n_samples=5000, bandpass_hz=(0.67, 40), notch_hz=50,
                        baseline_median_s=0.4, normalisation="global_zscore")
    x, mask = prepare_ecg(ecg, spec)
    assert x.shape == (12, 5000) and x.dtype == np.float32 and mask.all()
    assert x.mean() == pytest.approx(0.0, abs=1e-4) and x.std() == pytest.approx(1.0, abs=1e-4)
    # Rows keep their lead identity: the linear steps (resampling, filters) preserve Einthoven's
    # law I + III = II, so a swapped or mis-scaled row would show here.
    linear = ECGInputSpec(fs=500, n_samples=5000, bandpass_hz=(0.67, 40), notch_hz=50)
    mv, _ = prepare_ecg(ecg, linear)
    np.testing.assert_allclose(mv[0] + mv[2], mv[1], atol=0.005)
    # Composition: filters run on the whole resampled recording, then the centre 10 s is kept.
    expected = resample(ecg.signal, 1000, 500)
    expected = crop_or_pad(bandpass(notch(expected, 500, 50), 500, 0.67, 40), 5000)
    np.testing.assert_allclose(mv, expected, atol=1e-6)
    assert 0.3 < np.abs(mv).max() < 5.0
