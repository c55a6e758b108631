"""Patient-level generative model of the synthetic cohort: clinical variables, coronary disease, outcomes.

Everything a label depends on is written into the data a model sees, so the Bayes-optimal
(oracle) probability of every label is known exactly:

* Clinical variables follow CORA's Table 1 (training cohort): age 63.1 +- 13.8 years, 42% female,
  race mix, BMI 29.0 +- 7.7 kg/m2, systolic/diastolic BP 127.8/72.4 mmHg, tobacco never/former/
  current/unknown 47/19/5/29%, hypertension 45%, diabetes 14%, total/LDL/HDL cholesterol
  170/96.5/49.7 mg/dL. Sites shift these distributions (the external site resembles CORA's
  external cohort: older, more women, more hypertension).
* Each coronary artery (RCA, LM, LAD, LCX) has a latent worst-lesion narrowing ``severity`` in
  [0, 1], driven by a patient-level atherosclerotic burden (age, sex, diabetes, hypertension,
  smoking, lipids, blood pressure) plus artery-specific variation. The severity is rendered into
  the ECG (territorial ST/T changes) and the CT (plaque and lumen narrowing).
* The reference standard calls an artery "severe" with probability
  ``sigmoid((severity - 0.7) / read_noise)``: a reader's call near the 70% cut-off is uncertain.
* 30-day MACE and the event time come from a Weibull proportional-hazards model whose linear
  predictor depends on the worst stenosis, left-main disease and clinical risk factors; censoring
  happens after day 90, so the 30-day status of every patient is known.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from riskfm.arteries import ARTERIES, STENOSIS_COLUMNS
from riskfm.synthetic.ct_render import CtSiteProfile
from riskfm.synthetic.ecg_render import EcgSiteProfile

#: Severity cut-off of "severe" stenosis (>= 70% narrowing) and the reader's uncertainty around it.
SEVERE_CUTOFF = 0.70
READ_NOISE = 0.12

# Artery-specific offsets of the latent narrowing (logit scale): LAD is most often diseased, LM least.
_ARTERY_OFFSET = {"RCA": -2.0, "LM": -2.9, "LAD": -1.5, "LCX": -2.3}

# Weibull baseline for MACE: shape < 1 because hazard is highest just after acute chest pain.
_WEIBULL_SHAPE = 0.6
_MACE_HORIZON_DAYS = 30.0
_BASELINE_CUMHAZ_30D = 0.0046  # cumulative baseline hazard at day 30 (lp = 0)


@dataclass(frozen=True)
class SiteProfile:
    """One hospital of the synthetic cohort: its case mix and its devices.

    Attributes
    ----------
    name : str
        Site identifier written to the manifest's ``site`` column.
    weight : float
        Relative share of patients.
    age_shift : float
        Years added to the age distribution.
    female_rate : float
        Share of women.
    race_probs : (float, float, float, float)
        Probabilities of White, Black or African American, Asian, Other or Unknown.
    hypertension_rate, diabetes_rate : float
        Target prevalences.
    ecg : EcgSiteProfile
        ECG device profile used by the renderer (noise, wander, mains, gain).
    ct : CtSiteProfile
        CT scanner profile used by the renderer (noise, contrast, blur).
    """

    name: str
    weight: float = 1.0
    age_shift: float = 0.0
    female_rate: float = 0.421
    race_probs: tuple[float, float, float, float] = (0.648, 0.157, 0.044, 0.151)
    hypertension_rate: float = 0.446
    diabetes_rate: float = 0.143
    ecg: EcgSiteProfile = field(default_factory=EcgSiteProfile)
    ct: CtSiteProfile = field(default_factory=CtSiteProfile)


#: Three development sites and one external site with a case-mix and device shift.
DEFAULT_SITES: tuple[SiteProfile, ...] = (
    SiteProfile("site_a", weight=0.40),
    SiteProfile(
        "site_b", weight=0.25, age_shift=-1.5, female_rate=0.39,
        ecg=EcgSiteProfile(noise_mv=0.025, wander_mv=0.12, mains_hz=60.0, gain=1.05),
        ct=CtSiteProfile(noise_hu=30.0, contrast_hu=420.0),
    ),
    SiteProfile(
        "site_c", weight=0.15, age_shift=1.0, female_rate=0.44,
        ecg=EcgSiteProfile(noise_mv=0.02, wander_mv=0.08, gain=0.95),
        ct=CtSiteProfile(noise_hu=22.0, contrast_hu=380.0),
    ),
    SiteProfile(
        "site_ext", weight=0.20, age_shift=0.6, female_rate=0.486,
        race_probs=(0.817, 0.06, 0.039, 0.084), hypertension_rate=0.504, diabetes_rate=0.161,
        ecg=EcgSiteProfile(noise_mv=0.03, wander_mv=0.15, mains_hz=60.0, mains_mv=0.02, gain=1.08),
        ct=CtSiteProfile(noise_hu=35.0, contrast_hu=450.0),
    ),
)

RACES = ("White", "Black or African American", "Asian", "Other or Unknown")
TOBACCO = ("never", "former", "current")


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _calibrated_bernoulli(rng: np.random.Generator, score: np.ndarray, rate: float) -> np.ndarray:
    """Draw 0/1 with P = sigmoid(score + b), ``b`` chosen so the mean probability equals ``rate``."""
    lo, hi = -20.0, 20.0
    for _ in range(60):  # bisection on the intercept; the mean is monotone in b
        mid = 0.5 * (lo + hi)
        if _sigmoid(score + mid).mean() < rate:
            lo = mid
        else:
            hi = mid
    return (rng.random(score.shape) < _sigmoid(score + 0.5 * (lo + hi))).astype(np.int8)


def _clinical(rng: np.random.Generator, site: SiteProfile, n: int) -> pd.DataFrame:
    age = np.clip(rng.normal(63.1 + site.age_shift, 13.8, n), 22, 95)
    female = (rng.random(n) < site.female_rate).astype(np.int8)
    race = rng.choice(len(RACES), size=n, p=np.asarray(site.race_probs) / np.sum(site.race_probs))
    bmi = np.clip(rng.lognormal(np.log(28.2), 0.25, n), 15, 65)
    age_z = (age - 63.0) / 13.8
    sbp = np.clip(127.8 + 7.0 * age_z + rng.normal(0, 18.0, n), 85, 220)
    dbp = np.clip(72.4 + 0.45 * (sbp - 127.8) + rng.normal(0, 10.5, n), 40, 130)
    tob_u = rng.random(n)
    # never 46.9%, former 19.4%, current 5.1%, not recorded 28.6% (CORA Table 1)
    tobacco = np.where(tob_u < 0.469, "never", np.where(tob_u < 0.663, "former",
                       np.where(tob_u < 0.714, "current", "")))
    hypertension = _calibrated_bernoulli(rng, 0.8 * age_z + 0.04 * (sbp - 128) + 0.04 * (bmi - 29),
                                         site.hypertension_rate)
    diabetes = _calibrated_bernoulli(rng, 0.5 * age_z + 0.08 * (bmi - 29), site.diabetes_rate)
    ldl = np.clip(rng.normal(96.5, 40.0, n), 20, 300)
    hdl = np.clip(rng.normal(49.7 + 6.0 * female, 16.0, n), 15, 130)
    tg_fifth = np.clip(rng.normal(24.0, 9.0, n), 5, 120)
    total = ldl + hdl + tg_fifth  # Friedewald: TC = LDL + HDL + TG/5
    labs_missing = rng.random(n) < 0.06  # a lipid panel not drawn
    for arr in (ldl, hdl, total):
        arr[labs_missing] = np.nan
    return pd.DataFrame({
        "age": np.round(age, 0),
        "sex": np.where(female == 1, "female", "male"),
        "race": np.asarray(RACES, dtype=object)[race],
        "bmi": np.round(bmi, 1),
        "sbp": np.round(sbp, 0),
        "dbp": np.round(dbp, 0),
        "tobacco": tobacco,
        "hypertension": hypertension,
        "diabetes": diabetes,
        "total_cholesterol": np.round(total, 0),
        "ldl": np.round(ldl, 0),
        "hdl": np.round(hdl, 0),
    })


def _burden(clin: pd.DataFrame) -> np.ndarray:
    """Patient-level atherosclerotic burden (logit scale) from the risk factors."""
    ldl = clin["ldl"].fillna(96.5).to_numpy()
    hdl = clin["hdl"].fillna(49.7).to_numpy()
    return (
        0.055 * (clin["age"].to_numpy() - 63.0)
        + 0.45 * (clin["sex"].to_numpy() == "male")
        + 0.55 * clin["diabetes"].to_numpy()
        + 0.35 * clin["hypertension"].to_numpy()
        + 0.65 * (clin["tobacco"].to_numpy() == "current")
        + 0.25 * (clin["tobacco"].to_numpy() == "former")
        + 0.006 * (ldl - 96.5)
        - 0.012 * (hdl - 49.7)
        + 0.008 * (clin["sbp"].to_numpy() - 128.0)
    )


def sample_patients(n: int, seed: int = 0, sites: tuple[SiteProfile, ...] = DEFAULT_SITES) -> pd.DataFrame:
    """Draw ``n`` patients: clinical variables, latent disease, labels, outcomes and their true probabilities.

    Returns one row per patient with columns ``patient_id, site``, the clinical variables,
    ``severity_<artery>`` (latent narrowing in [0, 1]), ``calcified_<artery>`` (plaque type),
    ``heart_rate_bpm``, the targets (``stenosis_rca .. stenosis_lcx``, ``mace_30d``,
    ``time_to_event_days``, ``event``) and ``p_<target>``, each label's true probability.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1 patients, got {n}")
    rng = np.random.default_rng(seed)
    weights = np.asarray([s.weight for s in sites], dtype=float)
    site_idx = np.sort(rng.choice(len(sites), size=n, p=weights / weights.sum()))
    parts = []
    for k, site in enumerate(sites):
        m = int(np.sum(site_idx == k))
        if m:
            part = _clinical(rng, site, m)
            part.insert(0, "site", site.name)
            parts.append(part)
    df = pd.concat(parts, ignore_index=True)
    df.insert(0, "patient_id", [f"P{i:05d}" for i in range(n)])

    burden = _burden(df) + rng.normal(0.0, 0.9, n)
    for a in ARTERIES:
        z = _ARTERY_OFFSET[a] + burden + rng.normal(0.0, 1.0, n)
        df[f"severity_{a.lower()}"] = np.round(_sigmoid(1.3 * z), 4)
        # Calcified plaque becomes more likely with age (calcium accrues over decades).
        df[f"calcified_{a.lower()}"] = (rng.random(n) < _sigmoid(0.06 * (df["age"] - 60) + 0.2)).astype(np.int8)
    sev = df[[f"severity_{a.lower()}" for a in ARTERIES]].to_numpy()
    for a, col in zip(ARTERIES, STENOSIS_COLUMNS):
        p = _sigmoid((df[f"severity_{a.lower()}"].to_numpy() - SEVERE_CUTOFF) / READ_NOISE)
        df[f"p_{col}"] = p
        df[col] = (rng.random(n) < p).astype(np.int8)

    lp = (
        4.0 * sev.max(axis=1) + 1.5 * sev[:, ARTERIES.index("LM")]
        + 0.6 * df["diabetes"].to_numpy() + 0.025 * (df["age"].to_numpy() - 63.0)
        + 0.5 * (df["tobacco"].to_numpy() == "current")
    )
    # Weibull PH: S(t) = exp(-(t / scale)^k * exp(lp)); the scale sets ~9% 30-day MACE at development sites.
    scale = _MACE_HORIZON_DAYS / (_BASELINE_CUMHAZ_30D ** (1.0 / _WEIBULL_SHAPE))
    cum_hazard_30 = (_MACE_HORIZON_DAYS / scale) ** _WEIBULL_SHAPE * np.exp(lp)
    df["p_mace_30d"] = 1.0 - np.exp(-cum_hazard_30)
    u = rng.random(n)
    t_event = scale * (-np.log(u) / np.exp(lp)) ** (1.0 / _WEIBULL_SHAPE)
    t_censor = rng.uniform(90.0, 730.0, n)
    df["time_to_event_days"] = np.round(np.minimum(t_event, t_censor), 1)
    df["event"] = (t_event <= t_censor).astype(np.int8)
    df["mace_30d"] = (t_event <= _MACE_HORIZON_DAYS).astype(np.int8)
    df["heart_rate_bpm"] = np.round(np.clip(rng.normal(72.0, 11.0, n) + 4.0 * df["diabetes"], 45, 120), 1)
    return df
