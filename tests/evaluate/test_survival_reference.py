"""Every survival statistic of riskfm against an independent reference on the same data.

The reference is never the library call riskfm itself makes:

- Aalen-Johansen cumulative incidence with competing events (``aalen_johansen_by_group``, computed
  by riskfm) vs scikit-survival's ``cumulative_incidence_competing_risks``, a hand-worked example,
  and 1 - Kaplan-Meier of lifelines without competing events.
- Cox hazard ratios, 95% intervals and Wald p (``group_contrasts``, lifelines) vs statsmodels'
  ``PHReg`` with Efron ties.
- Log-rank tests (lifelines) vs statsmodels' ``survdiff``.
- Uno's C, time-dependent AUROC and the integrated Brier score (``survival_metrics``, which calls
  scikit-survival) vs a hand-worked example and IPCW formulas written here from their definitions
  (Uno et al. 2011; Uno et al. 2007 / Hung & Chiang 2010; Graf et al. 1999), with the Cox model
  behind the Brier score refitted here by root-finding of its penalised partial likelihood.
- Kaplan-Meier bands (``cumulative_incidence_by_group``, lifelines) vs scikit-survival's
  ``kaplan_meier_estimator`` and the exponential Greenwood formula.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import brentq
from scipy.stats import chi2, norm

from riskfm.evaluate.risk_groups import cumulative_incidence_by_group
from riskfm.evaluate.survival import aalen_johansen_by_group, group_contrasts, survival_metrics

Z95 = norm.ppf(0.975)


def _competing_data(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Whole days (many ties between event types and censorings), codes 0/1/2, two groups.

    Follow-up ends administratively at day 90, so the last time of each group holds censorings.
    """
    rng = np.random.default_rng(seed)
    g = np.where(rng.random(n) < 0.5, "low", "high")
    scale = np.where(g == "high", 40.0, 80.0)
    t1 = rng.exponential(scale)        # event of interest
    t2 = rng.exponential(120.0, n)     # competing event (e.g. non-cardiac death)
    tc = rng.uniform(20, 140, n)       # loss to follow-up
    t = np.ceil(np.minimum.reduce([t1, t2, tc, np.full(n, 90.0)]))
    code = np.select([t1 <= np.minimum(t2, tc), t2 <= tc], [1, 2], 0)
    code[np.ceil(np.minimum(t1, t2)) > 90] = 0
    return t, code, g


def _step_at(curve: pd.DataFrame, times: np.ndarray, col: str) -> np.ndarray:
    """Value of a step curve (``time_days`` + ``col``) at the given times (right-continuous)."""
    idx = np.searchsorted(curve["time_days"].to_numpy(), times, side="right") - 1
    assert (idx >= 0).all()
    return curve[col].to_numpy()[idx]


# ----------------------------------------------------------------------------------------- Aalen-Johansen


def test_aalen_johansen_hand_worked_with_ties():
    # day:   1  2  2  2  3  4  5
    # code:  1  1  2  0  0  2  1      (0 censored, 1 event of interest, 2 competing)
    # t=1: n=7, one event 1:                F1 = 1/7,                 S(any) = 6/7
    # t=2: n=6 (the patient censored at 2 is at risk), one event 1 and one event 2:
    #                                       F1 = 1/7 + 6/7 * 1/6 = 2/7, S = 6/7 * 4/6 = 4/7
    # t=3: censoring only (n=3):            F1 = 2/7
    # t=4: n=2, competing event:            F1 = 2/7,                 S = 4/7 * 1/2 = 2/7
    # t=5: n=1, event 1:                    F1 = 2/7 + 2/7 * 1/1 = 4/7
    # Treating the competing events as censored would give 1 - KM = 1 - 6/7 * 5/6 * 1 * 0 = 1.
    t = np.array([1, 2, 2, 2, 3, 4, 5], float)
    code = np.array([1, 1, 2, 0, 0, 2, 1])
    cur = aalen_johansen_by_group(t, code, np.zeros(7)).curves[0]
    np.testing.assert_array_equal(cur["time_days"], [0, 1, 2, 3, 4, 5])
    np.testing.assert_allclose(cur["incidence"], [0, 1 / 7, 2 / 7, 2 / 7, 2 / 7, 4 / 7], atol=1e-15)
    # The band holds the estimate, stays in [0, 1], is finite even where every patient at risk
    # has the event (t=5: n = d), and collapses to a point before the first event.
    assert (cur["ci_low"] <= cur["incidence"] + 1e-15).all() and (cur["incidence"] <= cur["ci_high"] + 1e-15).all()
    assert np.isfinite(cur[["ci_low", "ci_high"]].to_numpy()).all()
    assert ((cur["ci_low"] >= 0) & (cur["ci_high"] <= 1)).all() and cur["ci_high"].iloc[0] == 0
    # Event 2 as the event of interest: F2 = (6/7 * 1/6) at t=2, + 4/7 * 1/2 at t=4 = 1/7 + 2/7.
    cur2 = aalen_johansen_by_group(t, code, np.zeros(7), event_of_interest=2).curves[0]
    np.testing.assert_allclose(cur2["incidence"], [0, 0, 1 / 7, 1 / 7, 3 / 7, 3 / 7], atol=1e-15)


@pytest.mark.parametrize("event_of_interest", [1, 2])
def test_aalen_johansen_matches_sksurv_with_competing_events_and_ties(event_of_interest):
    from sksurv.nonparametric import cumulative_incidence_competing_risks

    t, code, g = _competing_data()
    assert (code == 2).sum() > 30 and len(np.unique(t)) < len(t) / 3  # competing events and ties
    curves = aalen_johansen_by_group(t, code, g, event_of_interest=event_of_interest).curves
    assert list(curves) == ["low", "high"]
    for level, cur in curves.items():
        m = g == level
        # var_type="Dinse_Approx" is the delta-method variance riskfm documents (Collett p. 411,
        # after Dinse & Larson 1986), with the log(-log) band.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            x, inc, ci = cumulative_incidence_competing_risks(code[m], t[m], conf_type="log-log",
                                                              var_type="Dinse_Approx")
        assert cur["time_days"].iloc[0] == 0 and cur["incidence"].iloc[0] == 0
        np.testing.assert_array_equal(cur["time_days"].to_numpy()[1:], x)
        np.testing.assert_allclose(cur["incidence"].to_numpy()[1:], inc[event_of_interest], rtol=0, atol=1e-12)
        np.testing.assert_allclose(cur["ci_low"].to_numpy()[1:], ci[event_of_interest, 0], rtol=0, atol=1e-10)
        np.testing.assert_allclose(cur["ci_high"].to_numpy()[1:], ci[event_of_interest, 1], rtol=0, atol=1e-10)
        # The competing events matter here: 1 - KM with them censored is clearly higher.
        km_censoring_them = 1 - np.prod(1 - _events_per_time(t[m], code[m] == event_of_interest))
        assert km_censoring_them - cur["incidence"].iloc[-1] > 0.02


def _events_per_time(t: np.ndarray, ev: np.ndarray) -> np.ndarray:
    """d_i / n_i at each distinct time (censored patients at t_i at risk at t_i)."""
    times = np.unique(t)
    d = np.array([(ev & (t == u)).sum() for u in times], float)
    n = np.array([(t >= u).sum() for u in times], float)
    return d / n


def test_aalen_johansen_without_competing_events_is_one_minus_lifelines_km():
    from lifelines import KaplanMeierFitter

    t, code, g = _competing_data(seed=1)
    e = (code == 1).astype(int)  # no competing events: codes 0/1
    curves = aalen_johansen_by_group(t, e, g).curves
    for level, cur in curves.items():
        m = g == level
        km = KaplanMeierFitter().fit(t[m], e[m]).survival_function_.iloc[:, 0]
        np.testing.assert_array_equal(cur["time_days"], km.index.to_numpy())
        np.testing.assert_allclose(cur["incidence"], 1 - km.to_numpy(), rtol=0, atol=1e-12)


# ----------------------------------------------------------------------------------------- Cox hazard ratios


def _ph_data(n: int, levels: dict[str, float], seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exponential times (rate per group), whole days (ties), uniform censoring."""
    rng = np.random.default_rng(seed)
    names = list(levels)
    g = rng.choice(names, n)
    rate = np.array([levels[x] for x in g])
    te, tc = rng.exponential(1 / rate), rng.uniform(20, 200, n)
    return np.ceil(np.minimum(te, tc)), (te <= tc).astype(float), g


def _phreg(t: np.ndarray, e: np.ndarray, x: np.ndarray):
    from statsmodels.duration.hazard_regression import PHReg

    return PHReg(t, x[:, None].astype(float), status=e, ties="efron").fit()


@pytest.mark.parametrize("levels", [{"low": 0.01, "high": 0.02},
                                    {"low": 0.008, "intermediate": 0.012, "high": 0.025}],
                         ids=["binary", "three-level"])
def test_hazard_ratios_ci_and_p_match_statsmodels_phreg(levels):
    t, e, g = _ph_data(600, levels, seed=3)
    table = group_contrasts(t, e, g)
    assert list(table["group"]) == [x for x in ("intermediate", "high") if x in levels]
    assert (table["reference"] == "low").all() and (table["not_estimable"] == "").all()
    for _, row in table.iterrows():
        # Each group is contrasted with the reference on the patients of those two groups.
        m = (g == row["group"]) | (g == "low")
        ref = _phreg(t[m], e[m], g[m] == row["group"])
        hr = np.exp(ref.params[0])
        low, high = np.exp(ref.conf_int(alpha=0.05)[0])
        assert row["ci_low"] < row["hazard_ratio"] < row["ci_high"]
        assert row["hazard_ratio"] == pytest.approx(hr, rel=1e-9)
        assert row["ci_low"] == pytest.approx(low, rel=1e-9)
        assert row["ci_high"] == pytest.approx(high, rel=1e-9)
        assert row["cox_p"] == pytest.approx(ref.pvalues[0], rel=1e-9)
        # The interval is the Wald interval of log(HR): exp(b +- z se).
        assert row["ci_high"] == pytest.approx(hr * np.exp(Z95 * ref.bse[0]), rel=1e-9)


# ----------------------------------------------------------------------------------------- log-rank


def _survdiff(t, e, g):
    from statsmodels.duration.survfunc import survdiff

    stat, p = survdiff(t, e, g)
    return float(stat), float(p)


def test_pairwise_logrank_matches_statsmodels_survdiff():
    t, e, g = _ph_data(300, {"low": 0.01, "intermediate": 0.013, "high": 0.018}, seed=7)
    table = group_contrasts(t, e, g)
    for _, row in table.iterrows():
        m = (g == row["group"]) | (g == "low")
        stat, p = _survdiff(t[m], e[m], (g[m] == row["group"]).astype(int))
        assert 1e-6 < p < 0.9  # survdiff's 1 - cdf is exact to ~1e-16 absolute: keep p away from 0
        assert row["logrank_p"] == pytest.approx(p, rel=1e-9)
        assert row["logrank_p"] == pytest.approx(chi2.sf(stat, 1), rel=1e-9)


@pytest.mark.parametrize("n_groups", [2, 3, 4])
def test_logrank_across_groups_matches_statsmodels_survdiff(n_groups):
    names = ["low", "intermediate", "high", "very high"][:n_groups]
    rates = dict(zip(names, [0.01, 0.013, 0.016, 0.02][:n_groups]))
    t, e, g = _ph_data(400, rates, seed=11)
    res = cumulative_incidence_by_group(t, e, g)
    stat, p = _survdiff(t, e, g)
    assert 1e-6 < p < 0.9
    assert res.logrank_p == pytest.approx(p, rel=1e-9)
    # Chi-square with (number of groups - 1) degrees of freedom.
    assert res.logrank_p == pytest.approx(chi2.sf(stat, n_groups - 1), rel=1e-9)


# ----------------------------------------------------------------------------------------- Kaplan-Meier bands


def test_kaplan_meier_band_matches_sksurv_lifelines_and_exponential_greenwood():
    from lifelines import KaplanMeierFitter
    from sksurv.nonparametric import kaplan_meier_estimator

    t, e, g = _ph_data(300, {"low": 0.01, "high": 0.03}, seed=7)
    res = cumulative_incidence_by_group(t, e, g)
    for level, cur in res.curves.items():
        m = g == level
        x, s, ci = kaplan_meier_estimator(e[m].astype(bool), t[m], conf_type="log-log")
        at = _step_at(cur, x, "incidence")
        np.testing.assert_array_equal(cur["time_days"].to_numpy()[1:], x)  # 0, then every distinct time
        np.testing.assert_allclose(at, 1 - s, rtol=0, atol=1e-12)
        np.testing.assert_allclose(_step_at(cur, x, "ci_low"), 1 - ci[1], rtol=0, atol=1e-10)
        np.testing.assert_allclose(_step_at(cur, x, "ci_high"), 1 - ci[0], rtol=0, atol=1e-10)
        # lifelines too: riskfm calls it, so scikit-survival above is the independent reference.
        kmf = KaplanMeierFitter().fit(t[m], e[m])
        band = kmf.confidence_interval_survival_function_.to_numpy()[1:]
        np.testing.assert_allclose(cur["ci_low"].to_numpy()[1:], 1 - band.max(axis=1), rtol=0, atol=1e-10)
        np.testing.assert_allclose(cur["ci_high"].to_numpy()[1:], 1 - band.min(axis=1), rtol=0, atol=1e-10)
        # Exponential Greenwood from its definition: v = sum d / (n (n - d)),
        # S^exp(+-z sqrt(v) / log S) (the log(-log S) interval, Kalbfleisch & Prentice 2002).
        dn = _events_per_time(t[m], e[m].astype(bool))
        n = np.array([(t[m] >= u).sum() for u in x], float)
        d = dn * n
        v = np.cumsum(d / (n * (n - d)))
        inside = (s > 0) & (s < 1)
        w = np.exp(Z95 * np.sqrt(v[inside]) / np.log(s[inside]))
        np.testing.assert_allclose(_step_at(cur, x, "ci_low")[inside], 1 - s[inside] ** w, rtol=0, atol=1e-10)
        np.testing.assert_allclose(_step_at(cur, x, "ci_high")[inside], 1 - s[inside] ** (1 / w), rtol=0, atol=1e-10)


# ----------------------------------------------------------------------------------------- Uno's C, td-AUROC, IBS


def test_uno_c_and_time_auc_hand_worked():
    # patient   1    2    3    4    5    6
    # day       2    3    4    5    7    8
    # event     1    0    1    1    0    1
    # risk     .9   .5   .6   .8   .2   .7
    # No training set: the censoring distribution G is Kaplan-Meier of these patients' censoring:
    # G = 1 before day 3, 4/5 from day 3 (5 at risk), 4/5 * 1/2 = 2/5 from day 7 (2 at risk).
    t = np.array([2, 3, 4, 5, 7, 8], float)
    e = np.array([1, 0, 1, 1, 0, 1], float)
    r = np.array([0.9, 0.5, 0.6, 0.8, 0.2, 0.7])
    res = survival_metrics(t, e, r, times_days=[3.5, 6.0])
    # Harrell: comparable pairs (i event, T_j > T_i): 1 vs 2..6 (5 concordant), 3 vs 4,5,6
    # (only 5 is lower: 1 of 3), 4 vs 5,6 (2 of 2); patient 6 has no later patient: 8 / 10.
    assert res.harrell_c.value == pytest.approx(8 / 10, abs=1e-12)
    # Uno, tau = 6 (last evaluation time): events before tau weighted 1 / G(T_i)^2 = 1, 25/16, 25/16:
    # (1*5 + 25/16*1 + 25/16*2) / (1*5 + 25/16*3 + 25/16*2) = (155/16) / (205/16) = 31/41.
    assert res.uno_c.value == pytest.approx(31 / 41, abs=1e-12)
    # AUC(3.5): case 1 (risk .9) against controls 3,4,5,6: 1.
    # AUC(6): cases 1, 3, 4 weighted 1/G(T_i) = 1, 5/4, 5/4 against controls 5 (.2), 6 (.7):
    # (1*2 + 5/4*1 + 5/4*2) / ((1 + 5/4 + 5/4) * 2) = 5.75 / 7 = 23/28.
    np.testing.assert_allclose(res.auc_t, [1.0, 23 / 28], rtol=0, atol=1e-12)
    # Mean AUC weighted by the drop of Kaplan-Meier S of these patients: S(3.5) = 5/6,
    # S(6) = 5/6 * 3/4 * 2/3 = 5/12: (1 * 1/6 + 23/28 * 5/12) / (1 - 5/12) = 171/196.
    assert res.mean_auc_t.value == pytest.approx(171 / 196, abs=1e-12)
    assert res.integrated_brier is None


def _km_censoring(t_train: np.ndarray, e_train: np.ndarray):
    """G(u) = P(censored after u): Kaplan-Meier with censorings as the events.

    At a time with both, events leave first (a patient censored at u was still event-free at u).
    Returns G as a right-continuous step function of u.
    """
    times = np.unique(t_train[e_train == 0])
    n = np.array([((t_train > u) | ((t_train == u) & (e_train == 0))).sum() for u in times], float)
    c = np.array([((t_train == u) & (e_train == 0)).sum() for u in times], float)
    g = np.cumprod(1 - c / n)

    def G(u):
        idx = np.searchsorted(times, np.asarray(u, float), side="right") - 1
        return np.where(idx >= 0, g[np.maximum(idx, 0)], 1.0)

    return G


def _uno_c(t, e, r, G, tau):
    """Uno et al. (2011) eq. (6): sum_{i,j} D_i G(T_i)^-2 I(T_i < T_j, T_i < tau) [I(r_i > r_j) + I(r_i = r_j) / 2]
    over the same sum without the risk comparison."""
    num = den = 0.0
    for i in np.flatnonzero((e == 1) & (t < tau)):
        j = t > t[i]
        w = G(t[i]) ** -2
        num += w * ((r[i] > r[j]).sum() + 0.5 * (r[i] == r[j]).sum())
        den += w * j.sum()
    return num / den


def _cd_auc(t, e, r, G, u):
    """Cumulative/dynamic AUC at u: cases T_i <= u with an event, weighted 1 / G(T_i); controls T_j > u."""
    cases, controls = np.flatnonzero((t <= u) & (e == 1)), np.flatnonzero(t > u)
    w = 1 / G(t[cases])
    win = (r[cases][:, None] > r[controls][None, :]) + 0.5 * (r[cases][:, None] == r[controls][None, :])
    return float((w * win.sum(axis=1)).sum() / (w.sum() * len(controls)))


def _km(t, e, u):
    """Kaplan-Meier S(u) of (t, e)."""
    times = np.unique(t[e == 1])
    times = times[times <= u]
    return float(np.prod([1 - ((t == x) & (e == 1)).sum() / (t >= x).sum() for x in times]))


def _penalised_cox_on_logit(t, e, p, penalizer=1e-4):
    """Cox model with x = logit(p), as riskfm's CoxOnScore defines it, fitted without lifelines.

    Partial log-likelihood (no tied event times here) with lifelines' ridge penalty on the
    standardised coefficient: l(b) - n * penalizer / 2 * (b sd(x))^2; its score is monotone in b,
    so b is its root. Breslow baseline: H0(u) = sum_{event i, T_i <= u} 1 / sum_{T_j >= T_i} exp(b x_j).
    Returns S(u | p') as a function of (p', times).
    """
    x = np.log(p / (1 - p))
    n, sd = len(x), np.std(x, ddof=1)
    ev = np.flatnonzero(e == 1)
    assert len(np.unique(t[ev])) == len(ev)
    at_risk = t[None, :] >= t[ev][:, None]  # [events, patients]

    def score(b):
        w = np.exp(b * x)[None, :] * at_risk
        return float((x[ev] - (w * x).sum(axis=1) / w.sum(axis=1)).sum() - n * penalizer * sd**2 * b)

    b = brentq(score, -20, 20, xtol=1e-14, rtol=1e-15)
    increments = 1 / (np.exp(b * x)[None, :] * at_risk).sum(axis=1)
    order = np.argsort(t[ev])
    ev_times, cum = t[ev][order], np.cumsum(increments[order])

    def surv(p_new, times):
        idx = np.searchsorted(ev_times, times, side="right") - 1
        h0 = np.where(idx >= 0, cum[np.maximum(idx, 0)], 0.0)
        return np.exp(-np.outer(np.exp(b * np.log(p_new / (1 - p_new))), h0))

    return surv


def _ibs(t, e, S, G, times):
    """Graf et al. (1999): BS(u) = mean_i [ S_i(u)^2 D_i I(T_i <= u) / G(T_i) + (1 - S_i(u))^2 I(T_i > u) / G(u) ],
    integrated by the trapezoidal rule over the evaluation times and divided by their span."""
    bs = np.array([np.mean(S[:, k] ** 2 * ((t <= u) & (e == 1)) / G(t) + (1 - S[:, k]) ** 2 * (t > u) / G(u))
                   for k, u in enumerate(times)])
    return float(np.sum((bs[1:] + bs[:-1]) / 2 * np.diff(times)) / (times[-1] - times[0]))


def _continuous_surv(n, seed):
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.02, 0.6, n)
    te = rng.exponential(30.0 / (p * 4))
    tc = rng.uniform(5, 60, n)
    return np.minimum(te, tc), (te <= tc).astype(float), p


@pytest.mark.parametrize("with_train", [True, False], ids=["train-censoring", "own-censoring"])
def test_uno_c_time_auc_and_ibs_match_ipcw_definitions(with_train):
    t_tr, e_tr, p_tr = _continuous_surv(400, seed=20)
    t, e, p = _continuous_surv(250, seed=21)
    p[::10] = p[1::10]  # some tied risks: they count 1/2
    train = (t_tr, e_tr, p_tr) if with_train else None
    res = survival_metrics(t, e, p, train=train)
    times = res.times_days
    assert len(times) >= 5
    G = _km_censoring(t_tr, e_tr) if with_train else _km_censoring(t, e)
    assert res.uno_c.value == pytest.approx(_uno_c(t, e, p, G, tau=times[-1]), abs=1e-10)
    ref_auc = [_cd_auc(t, e, p, G, u) for u in times]
    np.testing.assert_allclose(res.auc_t, ref_auc, rtol=0, atol=1e-10)
    # Mean over the evaluation times weighted by the drops of Kaplan-Meier S of the evaluated
    # patients (from S = 1), divided by the total drop 1 - S(last time).
    s = np.array([_km(t, e, u) for u in times])
    assert res.mean_auc_t.value == pytest.approx(np.sum(np.asarray(ref_auc) * -np.diff(np.r_[1.0, s])) / (1 - s[-1]),
                                           abs=1e-10)
    if not with_train:
        assert res.integrated_brier is None
        return
    surv = _penalised_cox_on_logit(t_tr, e_tr, p_tr)
    assert res.integrated_brier.value == pytest.approx(_ibs(t, e, surv(p, times), G, times), abs=1e-9)
