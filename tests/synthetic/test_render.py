"""Tests of the synthetic ECG and CT renderers (riskfm.synthetic.ecg_render / ct_render)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import find_peaks

from riskfm.synthetic.ct_render import ARTERY_LABELS, CtSiteProfile, RenderedCT, render_ct
from riskfm.synthetic.ecg_render import LEADS, EcgSiteProfile, render_ecg

FS = 500
ARTERIES = ("RCA", "LM", "LAD", "LCX")
QUIET_ECG = EcgSiteProfile(noise_mv=0.0, wander_mv=0.0, mains_mv=0.0)
CLEAN_CT = CtSiteProfile(noise_hu=0.0, blur_sigma_vox=0.0)
L = {name: i for i, name in enumerate(LEADS)}


def _sev(**kw: float) -> np.ndarray:
    return np.array([kw.get(a, 0.0) for a in ARTERIES], dtype=float)


def _ecg(seed: int, severity: np.ndarray, profile: EcgSiteProfile = QUIET_ECG, hr: float = 65.0) -> np.ndarray:
    return render_ecg(np.random.default_rng(seed), severity, heart_rate_bpm=hr, age=58.0, female=False,
                      profile=profile)


def _r_peaks(lead_ii: np.ndarray) -> np.ndarray:
    # R waves stand out well above T waves: require 60% of the largest deflection.
    peaks, _ = find_peaks(lead_ii, distance=int(0.3 * FS), prominence=0.6 * (lead_ii.max() - np.median(lead_ii)))
    return peaks


def _st_and_t(sig: np.ndarray, peaks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per lead: mean ST level at ~J+60 ms and mean T-wave level, both relative to the PR segment (mV)."""
    peaks = peaks[(peaks > 0.1 * FS) & (peaks < sig.shape[1] - 0.35 * FS)]

    def window(a: float, b: float) -> np.ndarray:
        idx = peaks[:, None] + np.arange(int(a * FS), int(b * FS))[None, :]
        return sig[:, idx].mean(axis=(1, 2))

    base = window(-0.08, -0.06)
    return window(0.09, 0.12) - base, window(0.22, 0.30) - base


# ---------------------------------------------------------------------------------------------
# ECG
# ---------------------------------------------------------------------------------------------


def test_ecg_shape_dtype_finite_and_realistic_amplitudes():
    sig = _ecg(0, _sev(), EcgSiteProfile())
    assert sig.shape == (12, 5000) and sig.dtype == np.float32
    assert np.all(np.isfinite(sig))
    quiet = _ecg(0, _sev())
    peaks = _r_peaks(quiet[L["II"]])
    r_amp = quiet[L["II"], peaks].mean()
    assert 0.5 <= r_amp <= 2.0, f"lead II R amplitude {r_amp:.2f} mV outside 0.5-2 mV"
    assert quiet[L["aVR"], peaks].mean() < 0, "aVR QRS should be negative"
    v1 = quiet[L["V1"]]
    assert -v1.min() > v1.max(), "V1 should be rS (deep S, small r)"
    assert quiet[L["V5"]].max() > quiet[L["V1"]].max(), "R wave should grow from V1 to V5"


@pytest.mark.parametrize("profile", [QUIET_ECG, EcgSiteProfile(noise_mv=0.03, wander_mv=0.15, mains_mv=0.02)])
def test_ecg_einthoven_goldberger_identities(profile):
    sig = _ecg(3, _sev(LAD=0.8, RCA=0.5), profile).astype(np.float64)
    i, ii = sig[L["I"]], sig[L["II"]]
    np.testing.assert_allclose(sig[L["III"]], ii - i, atol=1e-5)
    np.testing.assert_allclose(sig[L["aVR"]], -(i + ii) / 2, atol=1e-5)
    np.testing.assert_allclose(sig[L["aVL"]], i - ii / 2, atol=1e-5)
    np.testing.assert_allclose(sig[L["aVF"]], ii - i / 2, atol=1e-5)


@pytest.mark.parametrize("hr", [48.0, 72.0, 110.0])
def test_ecg_heart_rate_measured_from_r_peaks(hr):
    sig = _ecg(11, _sev(), EcgSiteProfile(), hr=hr)
    peaks = _r_peaks(sig[L["II"]])
    rr = np.diff(peaks) / FS
    measured = 60.0 / rr.mean()
    assert abs(measured - hr) / hr < 0.10, f"measured {measured:.1f} bpm for {hr} bpm requested"
    # Sinus arrhythmia + jitter: RR varies, but only by a few percent.
    assert 0.01 < rr.std() / rr.mean() < 0.10


# Leads where each territory's ischaemia must not show (weight 0 after derivation).
_SILENT = {
    "RCA": ("I", "V1", "V2", "V3", "V4", "V5", "V6"),
    "LAD": ("I", "II", "III", "aVR", "aVL", "aVF", "V5", "V6"),
    "LCX": ("aVF", "V1", "V2", "V3"),
    "LM": (),
}
_TERRITORY = {
    "RCA": ("II", "III", "aVF"),
    "LAD": ("V2", "V3", "V4"),
    "LCX": ("I", "aVL", "V5", "V6"),
    "LM": ("I", "II", "V4", "V5", "V6"),
}


@pytest.mark.parametrize("artery", ARTERIES)
def test_ecg_st_depression_grows_with_severity_in_territory(artery):
    seed = 5
    normal = _ecg(seed, _sev())
    peaks = _r_peaks(normal[L["II"]])
    st0, _ = _st_and_t(normal, peaks)
    terr = [L[n] for n in _TERRITORY[artery]]
    silent = [L[n] for n in _SILENT[artery]]
    changes = []
    for s in (0.3, 0.5, 0.7, 0.85, 1.0):
        st, _ = _st_and_t(_ecg(seed, _sev(**{artery: s})), peaks)
        delta = st - st0
        changes.append(delta[terr].mean())
        if silent:
            assert np.abs(delta[silent]).max() < 0.01, f"{artery} ischaemia leaked into {_SILENT[artery]}"
        if artery == "LM" and s >= 0.7:
            assert delta[L["aVR"]] > 0.08, "left-main disease should elevate ST in aVR"
    assert np.all(np.diff(changes) < 0), f"{artery} ST change not monotone in severity: {changes}"
    assert -0.06 < changes[0] < -0.01, f"severity 0.3 should give a small change, got {changes[0]:.3f} mV"
    assert -0.30 < changes[-1] < -0.14, f"severity 1 should give ~0.2 mV depression, got {changes[-1]:.3f} mV"


@pytest.mark.parametrize("artery,leads", [("LAD", ("V2", "V3", "V4")), ("RCA", ("II", "aVF")),
                                          ("LCX", ("V5", "V6"))])
def test_ecg_t_wave_inverts_at_severity_one(artery, leads):
    normal = _ecg(2, _sev())
    peaks = _r_peaks(normal[L["II"]])
    _, t_normal = _st_and_t(normal, peaks)
    _, t_sick = _st_and_t(_ecg(2, _sev(**{artery: 1.0})), peaks)
    for name in leads:
        assert t_normal[L[name]] > 0.05, f"normal T in {name} should be upright"
        assert t_sick[L[name]] < 0.0, f"T in {name} should invert with severe {artery} disease"


def test_ecg_is_deterministic_per_seed_and_varies_between_patients():
    a = _ecg(7, _sev(LAD=0.6), EcgSiteProfile())
    b = _ecg(7, _sev(LAD=0.6), EcgSiteProfile())
    c = _ecg(8, _sev(LAD=0.6), EcgSiteProfile())
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).mean() > 0.01


def test_ecg_site_profile_changes_the_record():
    base = _ecg(4, _sev(), QUIET_ECG)
    gained = _ecg(4, _sev(), EcgSiteProfile(noise_mv=0.0, wander_mv=0.0, mains_mv=0.0, gain=1.1))
    np.testing.assert_allclose(gained, 1.1 * base, rtol=1e-5, atol=1e-6)
    mains = _ecg(4, _sev(), EcgSiteProfile(noise_mv=0.0, wander_mv=0.0, mains_mv=0.05, mains_hz=60.0)) - base
    spectrum = np.abs(np.fft.rfft(mains[L["I"]]))
    assert np.fft.rfftfreq(5000, 1 / FS)[spectrum.argmax()] == pytest.approx(60.0)


@pytest.mark.parametrize("kwargs,match", [
    ({"severity": np.zeros(3)}, "shape"),
    ({"severity": np.array([0.1, 0.2, 1.3, 0.0])}, r"\[0, 1\]"),
    ({"severity": np.array([0.1, np.nan, 0.3, 0.0])}, r"\[0, 1\]"),
    ({"heart_rate_bpm": 0.0}, "heart_rate_bpm"),
    ({"age": -3.0}, "age"),
])
def test_ecg_rejects_bad_input(kwargs, match):
    args = {"severity": np.zeros(4), "heart_rate_bpm": 70.0, "age": 50.0, "female": False, "profile": QUIET_ECG}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        render_ecg(np.random.default_rng(0), args.pop("severity"), **args)


def test_ecg_profile_rejects_bad_values():
    with pytest.raises(ValueError, match="noise_mv"):
        EcgSiteProfile(noise_mv=-0.1)
    with pytest.raises(ValueError, match="mains_hz"):
        EcgSiteProfile(mains_hz=400.0)
    with pytest.raises(ValueError, match="gain"):
        EcgSiteProfile(gain=0.0)


# ---------------------------------------------------------------------------------------------
# CT
# ---------------------------------------------------------------------------------------------


def _ct(seed: int, severity: np.ndarray, calcified=(False,) * 4, profile: CtSiteProfile = CLEAN_CT) -> RenderedCT:
    return render_ct(np.random.default_rng(seed), severity, np.asarray(calcified, dtype=bool), profile=profile)


def test_ct_shapes_and_dtypes():
    ct = _ct(0, _sev(LAD=0.8), profile=CtSiteProfile())
    assert ct.hu.shape == (40, 64, 64) and ct.hu.dtype == np.int16
    for mask in (ct.heart_mask, ct.artery_labels, ct.plaque_mask):
        assert mask.shape == (40, 64, 64) and mask.dtype == np.uint8
    assert ct.spacing == (2.0, 1.5, 1.5)
    assert set(np.unique(ct.artery_labels)) <= {0, 1, 2, 3, 4}
    assert set(np.unique(ct.plaque_mask)) <= {0, 1, 2}
    other = render_ct(np.random.default_rng(0), _sev(), np.zeros(4, bool), profile=CtSiteProfile(),
                      shape=(32, 48, 48), spacing=(2.5, 2.0, 2.0))
    assert other.hu.shape == (32, 48, 48) and other.spacing == (2.5, 2.0, 2.0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ct_hu_of_regions(seed):
    profile = CtSiteProfile(noise_hu=0.0, blur_sigma_vox=0.0, contrast_hu=420.0)
    ct = _ct(seed, _sev(), profile=profile)
    hu = ct.hu.astype(float)
    heart = hu[ct.heart_mask == 1]
    assert 0.05 < ct.heart_mask.mean() < 0.4
    # The left-heart blood pool is the brightest large structure inside the heart.
    assert np.percentile(heart, 95) == pytest.approx(420.0, rel=0.10)
    assert 60 < np.median(heart) < 140, "most of the heart should be myocardium (~100 HU)"
    lung = hu[:, 16:48, :3]  # lateral edge of the field of view
    assert lung.mean() < -700 and lung.max() < -700
    # Coronary lumen is contrast filled.
    assert np.median(hu[ct.artery_labels > 0]) > 250


def test_ct_all_four_arteries_labelled_in_their_regions():
    centroids = {a: [] for a in ARTERY_LABELS}
    for seed in range(4):
        ct = _ct(seed, _sev())
        for name, value in ARTERY_LABELS.items():
            vox = np.argwhere(ct.artery_labels == value)
            assert len(vox) >= 10, f"{name} has only {len(vox)} labelled voxels (seed {seed})"
            centroids[name].append(vox.mean(axis=0))
    c = {k: np.mean(v, axis=0) for k, v in centroids.items()}  # (z, y, x) voxel indices
    assert c["LM"][0] > c["LAD"][0], "the LM runs high, at the aortic root"
    assert c["LAD"][1] > c["LCX"][1], "the LAD runs anterior (high y) to the LCX"
    assert c["RCA"][2] > c["LAD"][2] and c["RCA"][2] > c["LCX"][2], "the RCA runs on the patient's right (high x)"


def test_ct_calcified_plaque_peak_hu():
    ct = _ct(3, _sev(LAD=0.8), calcified=(False, False, True, False))
    lesion = next(les for les in ct.lesions if les["artery"] == "LAD")
    assert lesion["calcified"] and 800 <= lesion["peak_hu"] <= 1500
    calc_hu = ct.hu[ct.plaque_mask == 1]
    assert 800 <= calc_hu.max() <= 1500
    assert calc_hu.max() == pytest.approx(lesion["peak_hu"], abs=2)
    soft = _ct(3, _sev(LAD=0.8))
    soft_hu = soft.hu[soft.plaque_mask == 2]
    assert soft_hu.size and soft_hu.max() < 400, "non-calcified plaque is darker than the contrast lumen"


@pytest.mark.parametrize("calcified", [True, False])
@pytest.mark.parametrize("artery", ARTERIES)
def test_ct_plaque_volume_grows_with_severity(artery, calcified):
    flags = [a == artery and calcified for a in ARTERIES]
    levels = (0.3, 0.5, 0.7, 0.9)
    counts = np.array([[int((_ct(seed, _sev(**{artery: s}), flags).plaque_mask > 0).sum()) for s in levels]
                       for seed in (9, 10, 11)])
    # Never shrinks; small plaques (one blob of a few voxels) may tie on the voxel lattice, but
    # from moderate disease on every step adds voxels, and the average grows at every step.
    assert np.all(np.diff(counts, axis=1) >= 0), f"{artery} plaque shrank with severity: {counts}"
    assert np.all(np.diff(counts[:, 1:], axis=1) > 0), f"{artery} plaque not growing: {counts}"
    assert np.all(np.diff(counts.mean(axis=0)) > 0), f"{artery} mean plaque not growing: {counts}"
    assert counts[:, -1].min() > 3 * counts[:, 0].max(), "severe plaque should be several times a mild one"


@pytest.mark.parametrize("seed", range(4))
def test_ct_lesion_centre_lies_on_its_artery(seed):
    ct = _ct(seed, _sev(RCA=0.8, LM=0.6, LAD=0.9, LCX=0.75), calcified=(True, False, True, False))
    assert sorted(les["artery"] for les in ct.lesions) == sorted(ARTERIES)
    for les in ct.lesions:
        assert ct.artery_labels[les["centre_voxel"]] == ARTERY_LABELS[les["artery"]], les


def test_ct_mild_disease_has_no_obstructive_lesion():
    for seed in range(10):
        ct = _ct(seed, _sev(RCA=0.1, LM=0.05, LAD=0.2, LCX=0.15))
        assert all(not les["obstructive"] and les["n_blobs"] == 1 for les in ct.lesions)


def test_ct_is_deterministic_and_severity_changes_only_lesions():
    a = _ct(4, _sev(LAD=0.7), profile=CtSiteProfile())
    b = _ct(4, _sev(LAD=0.7), profile=CtSiteProfile())
    np.testing.assert_array_equal(a.hu, b.hu)
    np.testing.assert_array_equal(a.plaque_mask, b.plaque_mask)
    healthy = _ct(4, _sev(), profile=CtSiteProfile())
    np.testing.assert_array_equal(a.artery_labels, healthy.artery_labels)
    changed = a.hu != healthy.hu
    assert changed.any() and changed.mean() < 0.01, "a lesion should change only a small region"
    other = _ct(5, _sev(LAD=0.7), profile=CtSiteProfile())
    assert not np.array_equal(a.hu, other.hu)


@pytest.mark.parametrize("kwargs,match", [
    ({"severity": np.zeros(5)}, "severity"),
    ({"severity": np.array([0.0, 2.0, 0.0, 0.0])}, r"\[0, 1\]"),
    ({"calcified": np.array([0, 1, 2, 0])}, "calcified"),
    ({"shape": (40, 64)}, "shape"),
    ({"spacing": (2.0, 0.0, 1.5)}, "spacing"),
])
def test_ct_rejects_bad_input(kwargs, match):
    args = {"severity": np.zeros(4), "calcified": np.zeros(4, bool), "profile": CLEAN_CT}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        render_ct(np.random.default_rng(0), args.pop("severity"), args.pop("calcified"), **args)


def test_ct_profile_rejects_bad_values():
    with pytest.raises(ValueError, match="noise_hu"):
        CtSiteProfile(noise_hu=-1.0)
    with pytest.raises(ValueError, match="contrast_hu"):
        CtSiteProfile(contrast_hu=float("nan"))


# The render time per patient (budget 40 ms CPU for ECG + CT) is measured, not asserted, by
# benchmarks/bench_render.py: a wall-clock assert flakes when tests share the CPUs (-n 2).
