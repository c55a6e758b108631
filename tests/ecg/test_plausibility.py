"""ECG plausibility checks: units errors, flat leads and short records are caught, real ECGs pass."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from riskfm.ecg import ECG, STANDARD_LEADS, read_ecg
from riskfm.ecg.plausibility import (
    CATEGORY_ALL_FLAT,
    CATEGORY_TOO_SHORT,
    CATEGORY_UNITS,
    ECGPlausibility,
    check_ecg_plausibility,
    drop_leads,
    reason_category,
    robust_amplitude_mv,
)
from riskfm.synthetic.ecg_render import LEADS, EcgSiteProfile, render_ecg

FIXTURES = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures"
PTB_RECORD = FIXTURES / "ecg" / "ptb" / "s0010_re"


@pytest.fixture(scope="module")
def synthetic() -> ECG:
    """A realistic 10 s, 500 Hz 12-lead ECG (P-QRS-T beats, noise, baseline wander, mains)."""
    signal = render_ecg(np.random.default_rng(3), np.zeros(4), heart_rate_bpm=72.0, age=58.0, female=True,
                        profile=EcgSiteProfile())
    return ECG(signal=signal, fs=500.0, leads=LEADS, meta={"source": "synthetic"})


@pytest.fixture(scope="module")
def ptb() -> ECG:
    if not PTB_RECORD.with_suffix(".hea").is_file():
        pytest.skip(f"real-data fixture {PTB_RECORD.resolve()} not found (a fresh clone has none)")
    return read_ecg(PTB_RECORD)


def _scaled(ecg: ECG, factor: float) -> ECG:
    return ECG(signal=ecg.signal * factor, fs=ecg.fs, leads=ecg.leads, meta=ecg.meta)


def _with_signal(ecg: ECG, signal: np.ndarray) -> ECG:
    return ECG(signal=signal, fs=ecg.fs, leads=ecg.leads, meta=ecg.meta)


# ---------------------------------------------------------------------------------------------
# Real-looking records pass; the same records in µV labelled mV are excluded
# ---------------------------------------------------------------------------------------------


def test_synthetic_twelve_lead_passes(synthetic):
    result = check_ecg_plausibility(synthetic, window_s=10.0)
    assert result.exclude_reason is None and result.keep
    assert result.flat_leads == []


def test_synthetic_in_microvolts_is_a_units_error_naming_the_lead(synthetic):
    result = check_ecg_plausibility(_scaled(synthetic, 1000.0), window_s=10.0)
    assert not result.keep
    reason = result.exclude_reason
    assert reason.startswith("ecg implausible: units: amplitude ")
    assert reason_category(reason) == f"ecg implausible: {CATEGORY_UNITS}"
    # The reported lead is the one with the largest robust amplitude, and its value is in the text.
    amplitude = robust_amplitude_mv(synthetic.signal) * 1000
    worst = synthetic.leads[int(np.argmax(amplitude))]
    assert f"mV in lead {worst} exceeds 30 mV" in reason
    assert f"amplitude {amplitude.max():.0f} mV" in reason
    assert "µV data labelled mV?" in reason


def test_real_ptb_record_passes_and_in_microvolts_is_excluded(ptb):
    assert ptb.leads == STANDARD_LEADS and ptb.duration_s > 30
    result = check_ecg_plausibility(ptb, window_s=10.0)
    assert result.exclude_reason is None and result.flat_leads == []

    bad = check_ecg_plausibility(_scaled(ptb, 1000.0), window_s=10.0)
    assert bad.exclude_reason is not None
    assert reason_category(bad.exclude_reason) == "ecg implausible: units"
    assert any(f"in lead {lead} exceeds" in bad.exclude_reason for lead in ptb.leads)


def test_units_threshold_sits_between_physiology_and_microvolts(synthetic):
    amplitude = robust_amplitude_mv(synthetic.signal)
    # A genuine ECG stays around 0.2-3 mV; x1000 lands far above the 30 mV limit in every lead.
    assert amplitude.max() < 5.0 and amplitude.min() * 1000 > 30.0
    # Raising the limit above the scaled amplitude keeps the record: the limit is what decides.
    relaxed = ECGPlausibility(max_amplitude_mv=float(amplitude.max() * 1000 + 1))
    assert check_ecg_plausibility(_scaled(synthetic, 1000.0), limits=relaxed).keep


# ---------------------------------------------------------------------------------------------
# Offsets, spikes and gaps do not trigger the units check
# ---------------------------------------------------------------------------------------------


def test_dc_offset_and_single_pacing_spike_do_not_trigger(synthetic):
    shifted = synthetic.signal + 5.0  # +5 mV DC offset in every lead
    assert check_ecg_plausibility(_with_signal(synthetic, shifted), window_s=10.0).keep

    spiked = synthetic.signal.copy()
    spiked[1, 2500] += 20.0  # one 20 mV pacing spike in lead II
    spiked[7, 100] -= 20.0
    assert np.abs(spiked).max() > 19.0
    result = check_ecg_plausibility(_with_signal(synthetic, spiked), window_s=10.0)
    assert result.keep and result.flat_leads == []

    # A whole beat's worth of huge values in one lead (well over 0.5 % of samples) does trigger it.
    blown = synthetic.signal.copy()
    blown[4, 1000:1100] = 500.0
    reason = check_ecg_plausibility(_with_signal(synthetic, blown)).exclude_reason
    assert reason is not None and "in lead aVL exceeds" in reason


def test_amplitude_is_robust_to_offsets_and_spikes_beyond_the_limit(synthetic):
    # Larger than the 30 mV limit itself: a naive max(|x|) would call these units errors.
    signal = synthetic.signal.copy()
    signal[0] += 50.0  # DC-coupled amplifier with a 50 mV electrode offset in lead I
    signal[1, 2500] = 120.0  # one 120 mV artefact sample in lead II
    signal[6, 1000:1003] = -80.0  # a 6 ms, -80 mV pacing spike in V1
    ecg = _with_signal(synthetic, signal)
    assert np.abs(signal).max() > 100.0
    assert check_ecg_plausibility(ecg, window_s=10.0).keep
    np.testing.assert_allclose(robust_amplitude_mv(signal)[:2], robust_amplitude_mv(synthetic.signal)[:2],
                               rtol=0.05)


def test_baseline_wander_does_not_trigger(synthetic):
    t = np.arange(synthetic.n_samples) / synthetic.fs
    wander = 3.0 * np.sin(2 * np.pi * 0.15 * t)  # large, slow respiratory wander (+-3 mV)
    assert check_ecg_plausibility(_with_signal(synthetic, synthetic.signal + wander), window_s=10.0).keep


def test_non_finite_samples_are_ignored(synthetic):
    signal = synthetic.signal.copy()
    signal[0, :100] = np.nan
    signal[2, 5] = np.inf
    result = check_ecg_plausibility(_with_signal(synthetic, signal), window_s=10.0)
    assert result.keep and result.flat_leads == []
    scaled = check_ecg_plausibility(_with_signal(synthetic, signal * 1000))
    assert reason_category(scaled.exclude_reason) == "ecg implausible: units"
    assert "inf" not in scaled.exclude_reason and "nan" not in scaled.exclude_reason


# ---------------------------------------------------------------------------------------------
# Flat leads
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [0.0, 0.3, -1.2], ids=["zeros", "constant-0.3mV", "constant-minus-1.2mV"])
def test_all_leads_flat_is_excluded(synthetic, value):
    flat = np.full_like(synthetic.signal, value)
    result = check_ecg_plausibility(_with_signal(synthetic, flat), window_s=10.0)
    assert result.exclude_reason == (
        "ecg implausible: all leads flat: 12 of 12 leads have std < 0.01 mV (constant, zero or empty)"
    )
    assert reason_category(result.exclude_reason) == f"ecg implausible: {CATEGORY_ALL_FLAT}"
    assert result.flat_leads == []


def test_tiny_noise_only_is_still_all_flat(synthetic):
    noise = np.random.default_rng(0).normal(0.0, 0.002, synthetic.signal.shape)  # 2 uV of noise
    result = check_ecg_plausibility(_with_signal(synthetic, noise))
    assert reason_category(result.exclude_reason) == "ecg implausible: all leads flat"


@pytest.mark.parametrize("value", [0.0, 0.3], ids=["zeros", "constant-0.3mV"])
def test_one_flat_lead_is_listed_for_masking(synthetic, value):
    signal = synthetic.signal.copy()
    signal[LEADS.index("V3")] = value
    result = check_ecg_plausibility(_with_signal(synthetic, signal), window_s=10.0)
    assert result.exclude_reason is None
    assert result.flat_leads == ["V3"]


def test_several_flat_leads_in_lead_order_and_mask_off(synthetic):
    signal = synthetic.signal.copy()
    for lead in ("V6", "aVL", "I"):
        signal[LEADS.index(lead)] = 0.0
    ecg = _with_signal(synthetic, signal)
    assert check_ecg_plausibility(ecg).flat_leads == ["I", "aVL", "V6"]
    unmasked = check_ecg_plausibility(ecg, limits=ECGPlausibility(mask_flat_leads=False))
    assert unmasked.keep and unmasked.flat_leads == []


def test_flat_threshold_is_the_limit(synthetic):
    signal = synthetic.signal.copy()
    signal[0] = np.random.default_rng(1).normal(0.0, 0.02, synthetic.n_samples)  # std 0.02 mV
    ecg = _with_signal(synthetic, signal)
    assert check_ecg_plausibility(ecg).flat_leads == []
    assert check_ecg_plausibility(ecg, limits=ECGPlausibility(flat_std_mv=0.05)).flat_leads == ["I"]


# ---------------------------------------------------------------------------------------------
# Duration
# ---------------------------------------------------------------------------------------------


def test_short_record_is_excluded_against_the_window(synthetic):
    short = ECG(signal=synthetic.signal[:, :50], fs=500.0, leads=LEADS)  # 0.1 s
    result = check_ecg_plausibility(short, window_s=10.0)
    assert result.exclude_reason == (
        "ecg implausible: too short: record is 0.1 s, shorter than 50% of the encoder's 10 s window"
    )
    assert reason_category(result.exclude_reason) == f"ecg implausible: {CATEGORY_TOO_SHORT}"
    # Without a window there is nothing to compare with.
    assert check_ecg_plausibility(short).keep


def test_duration_boundary(synthetic):
    half = ECG(signal=synthetic.signal[:, :2500], fs=500.0, leads=LEADS)  # exactly 5 s
    assert check_ecg_plausibility(half, window_s=10.0).keep
    just_under = ECG(signal=synthetic.signal[:, :2499], fs=500.0, leads=LEADS)
    assert not check_ecg_plausibility(just_under, window_s=10.0).keep
    strict = ECGPlausibility(min_duration_fraction=0.9)
    reason = check_ecg_plausibility(half, window_s=10.0, limits=strict).exclude_reason
    assert reason == "ecg implausible: too short: record is 5 s, shorter than 90% of the encoder's 10 s window"
    with pytest.raises(ValueError, match="window_s"):
        check_ecg_plausibility(half, window_s=0.0)


def test_reason_categories_are_stable_across_records(synthetic):
    other = render_ecg(np.random.default_rng(11), np.zeros(4), heart_rate_bpm=60.0, age=70.0, female=False,
                       profile=EcgSiteProfile())
    reasons = [
        check_ecg_plausibility(_scaled(synthetic, 1000.0)).exclude_reason,
        check_ecg_plausibility(ECG(signal=other * 1000.0, fs=500.0, leads=LEADS)).exclude_reason,
        check_ecg_plausibility(_scaled(synthetic, 700.0)).exclude_reason,
    ]
    assert len(set(reasons)) == 3  # the details differ ...
    assert {reason_category(r) for r in reasons} == {"ecg implausible: units"}  # ... the category does not
    assert {tuple(r.split(": ")[0:2]) for r in reasons} == {("ecg implausible", "units")}


# ---------------------------------------------------------------------------------------------
# Switch and limits
# ---------------------------------------------------------------------------------------------


def test_disabled_keeps_everything(synthetic):
    off = ECGPlausibility(enabled=False)
    signal = synthetic.signal.copy()
    signal[3] = 0.0
    for ecg in (_scaled(synthetic, 1000.0), _with_signal(synthetic, np.zeros_like(synthetic.signal)),
                ECG(signal=synthetic.signal[:, :50], fs=500.0, leads=LEADS), _with_signal(synthetic, signal)):
        result = check_ecg_plausibility(ecg, window_s=10.0, limits=off)
        assert result.exclude_reason is None and result.flat_leads == []


@pytest.mark.parametrize("kwargs", [{"flat_std_mv": -0.1}, {"max_amplitude_mv": 0.0},
                                    {"max_amplitude_mv": float("nan")}, {"min_duration_fraction": -1}])
def test_limits_are_validated(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        ECGPlausibility(**kwargs)


# ---------------------------------------------------------------------------------------------
# drop_leads
# ---------------------------------------------------------------------------------------------


def test_drop_leads_removes_rows_and_keeps_the_rest_bit_identical(synthetic):
    signal = synthetic.signal.copy()
    signal[LEADS.index("V2")] = 0.0
    signal[LEADS.index("aVR")] = 0.3
    ecg = _with_signal(synthetic, signal)
    flat = check_ecg_plausibility(ecg).flat_leads
    assert flat == ["aVR", "V2"]

    masked = drop_leads(ecg, flat)
    assert masked.leads == tuple(lead for lead in LEADS if lead not in flat)
    assert masked.fs == ecg.fs and masked.signal.dtype == np.float32
    for lead in masked.leads:
        np.testing.assert_array_equal(masked.lead(lead), ecg.lead(lead))
        assert masked.lead(lead).tobytes() == ecg.lead(lead).tobytes()
    assert masked.meta["masked_flat_leads"] == ["aVR", "V2"]
    assert masked.meta["source"] == "synthetic"
    # The input is untouched and shares no memory with the result.
    assert ecg.leads == LEADS and "masked_flat_leads" not in ecg.meta
    assert not np.shares_memory(masked.signal, ecg.signal)
    # The masked record now passes without flat leads.
    assert check_ecg_plausibility(masked).flat_leads == []


def test_drop_leads_aliases_errors_and_no_op(synthetic):
    masked = drop_leads(synthetic, ["avr", "aVR", "Lead I"])
    assert "aVR" not in masked.leads and "I" not in masked.leads and masked.n_leads == 10
    assert masked.meta["masked_flat_leads"] == ["aVR", "I"]
    again = drop_leads(masked, ["V1"])
    assert again.meta["masked_flat_leads"] == ["aVR", "I", "V1"]

    same = drop_leads(synthetic, [])
    assert same.leads == synthetic.leads and "masked_flat_leads" not in same.meta
    np.testing.assert_array_equal(same.signal, synthetic.signal)

    with pytest.raises(KeyError, match="no lead 'vx'"):
        drop_leads(synthetic, ["vx"])
    with pytest.raises(ValueError, match="without leads"):
        drop_leads(synthetic, list(LEADS))
