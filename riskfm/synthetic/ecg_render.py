"""Render a synthetic 12-lead resting ECG from a patient's latent coronary disease.

The record is 10 s at 500 Hz, leads in riskfm's canonical order (I, II, III, aVR, aVL, aVF,
V1-V6), values in mV. It is built the way an electrocardiograph builds it: eight independent
leads (I, II, V1-V6) are synthesised and the other four limb leads are derived from I and II
(III = II - I, aVR = -(I + II)/2, aVL = I - II/2, aVF = II - I/2), so Einthoven's and
Goldberger's identities hold exactly, noise included.

Each beat is a sum of Gaussian waves (P, Q, R, S and an asymmetric T) whose amplitudes come from
frontal-plane vectors (limb leads) and an R/S progression table (precordial leads). Beats sit at
cumulative RR intervals with respiratory sinus arrhythmia and jitter. Patients differ in wave
amplitudes, QRS axis, precordial transition, intervals, ST offset, age and sex.

Myocardial ischaemia is rendered per coronary territory (LAD: V1-V4; RCA: II, III, aVF; LCX: I,
aVL, V5-V6; LM: diffuse ST depression with ST elevation in aVR) as ST-segment depression plus
T-wave flattening/inversion, both growing as ``severity ** 1.5``: about 0.03 mV at severity 0.3,
0.12 mV at 0.7 and 0.20 mV at 1.0 in the leads that carry a territory fully. That is several
times the patient-to-patient SD of the normal ST level (0.02 mV), so the signal is learnable.

Every random draw happens in a fixed order that does not depend on ``severity``: the same
generator state renders the same patient, and changing only the severity changes only the
ischaemic component (which is what the tests and the oracle analysis rely on).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from riskfm.arteries import ARTERIES

#: Output lead order (riskfm's canonical 12-lead order).
LEADS: tuple[str, ...] = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
FS_HZ = 500.0
DURATION_S = 10.0
N_SAMPLES = int(FS_HZ * DURATION_S)

#: ST deviation (mV) at severity 1 in a lead that carries a territory with weight 1.
ST_DEPRESSION_MV_AT_SEVERITY_1 = 0.20
#: Fraction of the T amplitude removed per unit of ``weight * severity ** 1.5`` (1.7: T inverts at 1).
T_INVERSION_GAIN = 1.7
#: Exponent of the severity -> ischaemic effect curve (smooth, small for non-obstructive disease).
SEVERITY_EXPONENT = 1.5

# The eight independent "source" leads; the remaining limb leads are derived from I and II.
_SOURCE_LEADS = ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6")
_WAVES = ("P", "Q", "R", "S", "T", "ST")

# Frontal-plane wave vectors: (magnitude mV, mean axis in degrees; 0 = lead I, +90 = inferior).
# Lead I sees magnitude * cos(axis), lead II magnitude * cos(axis - 60).
_FRONTAL = {
    "P": (0.17, 55.0),
    "Q": (0.10, 210.0),   # septal depolarisation runs rightward: small q in I, II, aVL
    "R": (1.35, 50.0),
    "S": (0.25, -100.0),  # terminal forces point up and right
    "T": (0.36, 40.0),
}

# Precordial amplitudes (mV) for V1..V6: R grows and S shrinks across the chest (rS in V1-V2,
# transition around V3-V4, qR in V5-V6); T is small in V1.
_PRECORDIAL = {
    "P": np.array([0.06, 0.09, 0.10, 0.10, 0.10, 0.09]),
    "Q": np.array([0.0, 0.0, 0.0, -0.04, -0.08, -0.09]),
    "R": np.array([0.25, 0.55, 0.95, 1.40, 1.30, 1.00]),
    "S": np.array([-1.00, -1.40, -0.95, -0.50, -0.25, -0.10]),
    "T": np.array([0.08, 0.42, 0.45, 0.40, 0.32, 0.25]),
}

# Ischaemic weight of each territory in the source leads (I, II, V1..V6): ST = -weight * depth.
# Limb weights are chosen so the derived leads show the classic pattern (derived weights in
# brackets): RCA I=0, II=1 -> [III 1, aVF 1, aVR/aVL -0.5 reciprocal]; LCX I=1, II=0.5 ->
# [aVL 0.75, aVF 0, III/aVR reciprocal]; LM I=0.8, II=1 -> [aVR -0.9: ST elevation, aVF 0.6].
_ISCHAEMIA_WEIGHTS = {
    "RCA": np.array([0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
    "LM": np.array([0.8, 1.0, -0.3, 0.3, 0.6, 1.0, 1.0, 0.9]),
    "LAD": np.array([0.0, 0.0, 0.7, 1.0, 1.0, 0.8, 0.0, 0.0]),
    "LCX": np.array([1.0, 0.5, 0.0, 0.0, 0.0, 0.3, 0.9, 1.0]),
}

#: Leads in which each territory's ischaemia shows as ST depression (weight >= 0.5 after derivation).
TERRITORY_LEADS: dict[str, tuple[str, ...]] = {
    "RCA": ("II", "III", "aVF"),
    "LM": ("I", "II", "aVF", "V3", "V4", "V5", "V6"),
    "LAD": ("V1", "V2", "V3", "V4"),
    "LCX": ("I", "II", "aVL", "V5", "V6"),
}


@dataclass(frozen=True)
class EcgSiteProfile:
    """Acquisition characteristics of one site's electrocardiographs (how sites differ).

    Attributes
    ----------
    noise_mv : float
        SD in mV of white (EMG / amplifier) noise added to every lead.
    wander_mv : float
        Peak amplitude in mV of baseline wander (sines at 0.05-0.5 Hz and respiration).
    mains_hz : float
        Powerline frequency in Hz (50 or 60).
    mains_mv : float
        Amplitude in mV of the powerline interference.
    gain : float
        Calibration factor applied to the whole record (device gain shift, e.g. 0.9-1.1).
    """

    noise_mv: float = 0.02
    wander_mv: float = 0.1
    mains_hz: float = 50.0
    mains_mv: float = 0.01
    gain: float = 1.0

    def __post_init__(self) -> None:
        for name in ("noise_mv", "wander_mv", "mains_mv"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"EcgSiteProfile.{name} must be a finite value >= 0 mV, got {value!r}")
        if not (math.isfinite(self.mains_hz) and 0 < self.mains_hz < FS_HZ / 2):
            raise ValueError(f"EcgSiteProfile.mains_hz must be in (0, {FS_HZ / 2}) Hz, got {self.mains_hz!r}")
        if not (math.isfinite(self.gain) and self.gain > 0):
            raise ValueError(f"EcgSiteProfile.gain must be a finite value > 0, got {self.gain!r}")


def ischaemic_depth(severity: np.ndarray | float) -> np.ndarray:
    """Return the ischaemic effect size ``severity ** 1.5`` in [0, 1] of a narrowing ``severity`` (0-1)."""
    return np.clip(np.asarray(severity, dtype=float), 0.0, 1.0) ** SEVERITY_EXPONENT


def _validate_severity(severity: np.ndarray) -> np.ndarray:
    sev = np.asarray(severity, dtype=float)
    if sev.shape != (len(ARTERIES),):
        raise ValueError(f"severity must have shape (4,) in artery order {ARTERIES}, got shape {sev.shape}")
    if not np.all(np.isfinite(sev)) or np.any(sev < 0) or np.any(sev > 1):
        raise ValueError(f"severity must be finite fractions of lumen narrowing in [0, 1], got {sev.tolist()}")
    return sev


def _beat_times(rng: np.random.Generator, rr_mean: float, f_resp: float, resp_phase: float) -> tuple:
    """R-peak times (s) covering the record, with respiratory sinus arrhythmia and jitter.

    Returns (times [n_beats], rr_before [n_beats]) where ``rr_before`` is the RR interval that
    precedes each beat (it sets that beat's QT).
    """
    rsa = rng.uniform(0.02, 0.05)  # RSA depth as a fraction of RR
    jitter_sd = rng.uniform(0.02, 0.04)
    n_beats = int(math.ceil((DURATION_S + 1.5) / (rr_mean * (1 - rsa - 3 * jitter_sd)))) + 2
    first = -rng.uniform(0.0, 1.0) * rr_mean  # random phase: the record starts mid-cycle
    jitter = rng.normal(0.0, jitter_sd, n_beats)
    # RSA phase is evaluated at the nominal beat time (k * RR): exact enough and loop-free.
    nominal = first + rr_mean * np.arange(n_beats)
    rr = rr_mean * (1.0 + rsa * np.sin(2 * np.pi * f_resp * nominal + resp_phase) + jitter)
    rr = np.clip(rr, 0.6 * rr_mean, 1.4 * rr_mean)
    times = first + np.concatenate([[0.0], np.cumsum(rr[:-1])])
    rr_before = np.concatenate([[rr_mean], rr[:-1]])
    keep = times < DURATION_S + 0.4  # later beats would not reach into the record
    return times[keep], rr_before[keep]


def _wave_basis(times: np.ndarray, rr_before: np.ndarray, timing: dict, qrs_mod: np.ndarray) -> np.ndarray:
    """Unit-amplitude waveform of each wave type summed over beats: float64 [6 waves, N_SAMPLES].

    Each beat's waves are evaluated only in a window around its R peak and scattered into the
    record with ``bincount`` (no per-sample Python loop).
    """
    pre, post = int(0.35 * FS_HZ), int(0.85 * FS_HZ)
    offsets = np.arange(-pre, post)
    r_idx = np.round(times * FS_HZ).astype(int)
    idx = r_idx[:, None] + offsets[None, :]  # [n_beats, W]
    dt = idx / FS_HZ - times[:, None]  # seconds from each beat's R peak
    valid = (idx >= 0) & (idx < N_SAMPLES)

    q = timing["qrs_scale"]
    onset = -0.045 * q  # QRS onset relative to the R peak
    j_point = 0.045 * q
    sqrt_rr = np.sqrt(rr_before)[:, None]
    t_end = onset + timing["qtc_s"] * sqrt_rr  # Bazett: QT = QTc * sqrt(RR)
    t_sigma_r = 0.042 * sqrt_rr  # T descends faster than it rises
    t_peak = t_end - 2.3 * t_sigma_r
    t_sigma_l = 1.7 * t_sigma_r
    p_centre = onset - timing["pr_s"] + 0.055

    def gauss(centre, sigma):
        return np.exp(-0.5 * ((dt - centre) / sigma) ** 2)

    t_sigma = np.where(dt < t_peak, t_sigma_l, t_sigma_r)
    m = qrs_mod[:, None]
    shapes = (
        gauss(p_centre, 0.022),
        m * gauss(-0.022 * q, 0.009 * q),
        m * gauss(0.0, 0.0105 * q),
        m * gauss(0.024 * q, 0.010 * q),
        np.exp(-0.5 * ((dt - t_peak) / t_sigma) ** 2),
        # ST segment level: switches on at the J point, fades through the T wave.
        1.0 / (1.0 + np.exp(-(dt - j_point) / 0.004)) / (1.0 + np.exp((dt - t_peak) / 0.03)),
    )
    flat_idx = idx[valid]
    return np.stack([np.bincount(flat_idx, weights=s[valid], minlength=N_SAMPLES) for s in shapes])


def render_ecg(
    rng: np.random.Generator,
    severity: np.ndarray,
    *,
    heart_rate_bpm: float,
    age: float,
    female: bool,
    profile: EcgSiteProfile,
) -> np.ndarray:
    """Render one patient's 10 s, 12-lead resting ECG.

    Parameters
    ----------
    rng : numpy Generator; all randomness (anatomy, rhythm, noise) is drawn from it.
    severity : float array [4], fraction of lumen narrowing in [0, 1] at the worst lesion of
        RCA, LM, LAD, LCX (in that order); 0 healthy, >= 0.7 severe.
    heart_rate_bpm : mean heart rate in beats per minute (20-250).
    age : age in years (0-120); amplitudes fall and QTc rises with age, the QRS axis turns left.
    female : sex; women have slightly lower QRS amplitudes and a ~15 ms longer QTc.
    profile : the acquiring site's device profile (noise, baseline wander, mains, gain).

    Returns
    -------
    float32 array [12, 5000] in mV: 10 s at 500 Hz, leads I, II, III, aVR, aVL, aVF, V1-V6.

    Raises
    ------
    ValueError
        If ``severity`` is not 4 finite values in [0, 1], or the heart rate / age is out of range.
    """
    sev = _validate_severity(severity)
    if not (math.isfinite(heart_rate_bpm) and 20.0 <= heart_rate_bpm <= 250.0):
        raise ValueError(f"heart_rate_bpm must be within 20-250 beats/min, got {heart_rate_bpm!r}")
    if not (math.isfinite(age) and 0.0 <= age <= 120.0):
        raise ValueError(f"age must be within 0-120 years, got {age!r}")
    if not isinstance(profile, EcgSiteProfile):
        raise ValueError(f"profile must be an EcgSiteProfile, got {type(profile).__name__}")

    # ---- patient-level normal variation (fixed draw order; independent of severity) ----------
    age_dev = (age - 50.0) / 10.0
    axis_shift = rng.normal(0.0, 18.0) - 3.0 * age_dev  # QRS axis turns leftward with age
    axis_jitter = {w: rng.normal(0.0, 10.0) for w in ("P", "T")}
    wave_scale = np.exp(rng.normal(0.0, 0.15, len(_WAVES) - 1))  # shared by all leads, ~ +-20%
    lead_scale = np.exp(rng.normal(0.0, 0.08, (len(_SOURCE_LEADS), len(_WAVES) - 1)))
    transition = rng.normal(0.0, 0.5)  # precordial R/S transition shift, in leads
    qrs_scale = float(np.clip(rng.normal(1.0, 0.08), 0.8, 1.25))  # QRS ~90 ms * scale
    # PR shortens a little at faster rates (sympathetic drive); never below 100 ms.
    pr_s = max(float(np.clip(rng.normal(0.160, 0.018), 0.12, 0.21)) - 0.0004 * max(heart_rate_bpm - 70.0, 0.0), 0.10)
    qtc_s = 0.405 + 0.015 * bool(female) + 0.002 * age_dev + rng.normal(0.0, 0.015)
    st_offset = rng.normal(0.0, 0.02, len(_SOURCE_LEADS))  # normal ST level, mV
    st_offset[3:5] += 0.03 if not female else 0.015  # J-point elevation usual in V2-V3
    f_resp = rng.uniform(0.2, 0.3)  # breathing frequency, Hz
    resp_phase = rng.uniform(0.0, 2 * np.pi)
    times, rr_before = _beat_times(rng, 60.0 / heart_rate_bpm, f_resp, resp_phase)
    qrs_mod = 1.0 + 0.05 * np.sin(2 * np.pi * f_resp * times + resp_phase + rng.uniform(0, np.pi))

    # ---- amplitudes of each wave in each source lead [8, 6] ----------------------------------
    amp = np.zeros((len(_SOURCE_LEADS), len(_WAVES)))
    qrs_age = float(np.clip(1.0 - 0.04 * age_dev, 0.75, 1.15)) * (0.9 if female else 1.0)
    for k, wave in enumerate(("P", "Q", "R", "S", "T")):
        mag, axis = _FRONTAL[wave]
        axis = axis + (axis_shift if wave in ("Q", "R", "S") else axis_jitter.get(wave, 0.0))
        amp[0, k] = mag * math.cos(math.radians(axis))
        amp[1, k] = mag * math.cos(math.radians(axis - 60.0))
        # Shifting the R/S progression along the chest moves the transition zone.
        pos = np.clip(np.arange(6) + (transition if wave in ("R", "S") else 0.0), 0, 5)
        amp[2:, k] = np.interp(pos, np.arange(6), _PRECORDIAL[wave])
    amp[:, :5] *= wave_scale[None, :] * lead_scale
    amp[:, 1:4] *= qrs_age
    amp[:, 4] *= 0.9 if female else 1.0

    # ---- ischaemia by coronary territory -----------------------------------------------------
    depth = ischaemic_depth(sev)
    burden = sum(depth[i] * _ISCHAEMIA_WEIGHTS[a] for i, a in enumerate(ARTERIES))  # [8]
    t_factor = np.clip(1.0 - T_INVERSION_GAIN * burden, -1.0, 1.6)
    amp[:, 4] *= t_factor
    amp[:, 5] = st_offset - ST_DEPRESSION_MV_AT_SEVERITY_1 * burden

    timing = {"qrs_scale": qrs_scale, "pr_s": pr_s, "qtc_s": qtc_s}
    source = amp @ _wave_basis(times, rr_before, timing, qrs_mod)  # [8, N] mV

    # ---- acquisition: baseline wander, mains, EMG noise (drawn even when zero: fixed order) ----
    # Wander frequencies (respiration + two slow drifts) and the mains frequency are shared by all
    # leads, with per-lead amplitude and phase: sin(wt + p) = cos(p) sin(wt) + sin(p) cos(wt), so
    # each lead is a weighted sum of a few common sinusoids (one matrix product, few sin calls).
    t = np.arange(N_SAMPLES) / FS_HZ
    n_src = len(_SOURCE_LEADS)
    wander_f = np.concatenate([[f_resp], rng.uniform(0.05, 0.5, 2)])
    wander_w = rng.dirichlet(np.ones(3), n_src) * rng.uniform(0.6, 1.2, (n_src, 1))
    wander_phase = rng.uniform(0.0, 2 * np.pi, (n_src, 3))
    mains_a = rng.uniform(0.5, 1.5, n_src)
    mains_phase = rng.uniform(0.0, 2 * np.pi, n_src)
    white = rng.standard_normal((n_src, N_SAMPLES))
    omega_t = 2 * np.pi * np.concatenate([wander_f, [profile.mains_hz]])[:, None] * t  # [4, N]
    sines = np.concatenate([np.sin(omega_t), np.cos(omega_t)])  # [8, N]
    phases = np.column_stack([wander_phase, mains_phase])  # [n_src, 4]
    amps = np.column_stack([profile.wander_mv * wander_w, profile.mains_mv * mains_a])  # [n_src, 4] mV
    mix = np.concatenate([amps * np.cos(phases), amps * np.sin(phases)], axis=1)  # [n_src, 8]
    source = source + mix @ sines + profile.noise_mv * white
    source *= profile.gain

    lead_i, lead_ii = source[0], source[1]
    out = np.empty((len(LEADS), N_SAMPLES), dtype=np.float32)
    out[0] = lead_i
    out[1] = lead_ii
    out[2] = lead_ii - lead_i
    out[3] = -(lead_i + lead_ii) / 2.0
    out[4] = lead_i - lead_ii / 2.0
    out[5] = lead_ii - lead_i / 2.0
    out[6:] = source[2:]
    return out
