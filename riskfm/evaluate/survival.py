"""Time-to-event evaluation of a risk score: concordance, time-dependent AUROC, Brier, group contrasts.

Inputs are follow-up ``time_days`` (days to event or censoring, >= 0), ``event`` (1 = event
observed, 0 = censored) and a risk score where larger means earlier events (a predicted risk,
a log hazard).

- **Harrell's C** (Harrell 1982): among comparable pairs (the shorter time is an event), the
  fraction where the shorter time has the higher risk; ties in risk count 1/2.
  ``sksurv.metrics.concordance_index_censored``.
- **Uno's C** (Uno et al. 2011): Harrell's C reweighted by the inverse probability of censoring
  estimated on the training patients; consistent under censoring that does not depend on the
  score. ``sksurv.metrics.concordance_index_ipcw`` with ``tau`` = the last evaluation time.
- **Time-dependent AUROC** (cumulative/dynamic, Uno 2007; Hung & Chiang 2010): at time t, cases
  are patients with an event by t, controls those still event-free after t.
  ``sksurv.metrics.cumulative_dynamic_auc``.
- **Integrated Brier score** (Graf et al. 1999): IPCW Brier score of the predicted survival
  S(t | x) integrated over the evaluation times. The score is turned into S(t | x) by a Cox
  model fitted on the training patients with ``logit(p)`` as its only covariate:
  S(t | x) = exp(-H0(t) exp(b x)) with H0 the Breslow estimate, a step function read at t (not
  interpolated between event times); ``sksurv.metrics.integrated_brier_score``.
- **Risk groups**: pairwise log-rank tests and Cox hazard ratios (Efron ties, Newton iterations
  run to a Newton decrement < 1e-20) of each group against the reference group, each fitted on
  the patients of those two groups (lifelines); Kaplan-Meier cumulative incidence per group
  (``riskfm.evaluate.cumulative_incidence_by_group``) or, with competing events, Aalen-Johansen
  cumulative incidence per group (``aalen_johansen_by_group``, computed here: tied times are
  handled exactly, not jittered).

Each statistic is checked against an independent implementation in
``tests/evaluate/test_survival_reference.py``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from riskfm.evaluate.risk_groups import _as_binary_1d, _as_finite_1d, order_groups


def _survival_arrays(time_days: Any, event: Any, name: str = "") -> tuple[np.ndarray, np.ndarray]:
    t = _as_finite_1d(time_days, f"{name}time_days")
    e = _as_binary_1d(event, f"{name}event")
    if len(t) != len(e):
        raise ValueError(f"{name}time_days and event must have the same length, got {len(t)} and {len(e)}")
    if len(t) == 0:
        raise ValueError(f"{name}time_days is empty")
    if (t < 0).any():
        raise ValueError(f"{name}time_days must be >= 0; {int((t < 0).sum())} negative values")
    return t, e.astype(bool)


def censor_at(time_days: Any, event: Any, horizon_days: float | None) -> tuple[np.ndarray, np.ndarray]:
    """Administrative censoring at a horizon: follow-up cut at ``horizon_days``, later events censored.

    Returns ``(min(t, horizon), event and t <= horizon)`` as float arrays [n]; unchanged (as float
    arrays) when ``horizon_days`` is None. A 30-day outcome is judged on events by day 30.
    """
    t = np.asarray(time_days, dtype=float)
    e = np.asarray(event, dtype=float)
    if horizon_days is None:
        return t, e
    h = float(horizon_days)
    if not h > 0:
        raise ValueError(f"horizon_days must be > 0, got {horizon_days!r}")
    return np.minimum(t, h), np.where(t <= h, e, 0.0)


def target_horizon_days(target: str, overrides: dict[str, float] | None = None) -> float | None:
    """Horizon (days) of a target with a fixed horizon: ``overrides[target]``, else from its name.

    ``mace_30d`` -> 30, ``death_1y`` -> 365, ``event_12m`` -> 365 (months as 365/12 days, rounded),
    ``_6w`` -> 42; None for names without one (a time-to-event target such as ``risk_score``).
    """
    import re

    if overrides and target in overrides:
        return float(overrides[target])
    m = re.search(r"(?:^|_)(\d+)\s*(d|day|days|w|wk|week|weeks|m|mo|month|months|y|yr|year|years)$", str(target))
    if not m:
        return None
    k, unit = int(m.group(1)), m.group(2)[0]
    return float(k * {"d": 1, "w": 7, "y": 365}.get(unit, 0) or round(k * 365 / 12))


# lifelines' default stop (relative change of the log-likelihood < 1e-9, R's rule, or Newton
# decrement < 1e-7) leaves the coefficient up to ~1e-6 from the maximum. Stopping on a Newton
# decrement below 1e-20 instead costs one or two more steps and leaves it within ~1e-12.
_COX_FIT_OPTIONS = {"precision": 1e-20, "r_precision": 0.0}


def _structured(t: np.ndarray, e: np.ndarray) -> np.ndarray:
    from sksurv.util import Surv

    return Surv.from_arrays(event=e, time=t)


@dataclass
class SurvivalMetrics:
    """Survival discrimination and accuracy of a risk score on one set of patients.

    Attributes
    ----------
    harrell_c, uno_c : float
        Concordance indices (0.5 = chance, 1 = perfect).
    times_days : np.ndarray, shape [k]
        Evaluation times of the time-dependent AUROC.
    auc_t : np.ndarray, shape [k]
        Cumulative/dynamic AUROC at each time; ``mean_auc_t`` their weighted mean (sksurv).
    integrated_brier : float or None
        Integrated Brier score over ``times_days`` (0 best); None without training patients.
    n, n_events : int
    """

    harrell_c: float
    uno_c: float
    times_days: np.ndarray
    auc_t: np.ndarray
    mean_auc_t: float
    integrated_brier: float | None
    n: int
    n_events: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary."""
        return {"harrell_c": self.harrell_c, "uno_c": self.uno_c,
                "time_auc": {"times_days": self.times_days.tolist(), "auc": self.auc_t.tolist(),
                             "mean": self.mean_auc_t},
                "integrated_brier": self.integrated_brier, "n": self.n, "n_events": self.n_events}


def harrell_c(time_days: Any, event: Any, risk: Any) -> float:
    """Harrell's concordance index of ``risk`` (larger = earlier event); see the module docstring."""
    from sksurv.metrics import concordance_index_censored

    t, e = _survival_arrays(time_days, event)
    r = _as_finite_1d(risk, "risk")
    if e.sum() == 0:
        raise ValueError("Harrell's C needs at least one event")
    return float(concordance_index_censored(e, t, r)[0])


def default_eval_times(time_days: np.ndarray, event: np.ndarray, n_times: int = 10) -> np.ndarray:
    """Evaluation times: ``n_times`` quantiles (10th to 80th percentile) of the event times."""
    ev = np.sort(time_days[event])
    if len(ev) == 0:
        raise ValueError("no events: no evaluation times")
    q = np.unique(np.quantile(ev, np.linspace(0.1, 0.8, n_times)))
    # Time-dependent AUROC needs controls still at risk after t: stay below the last follow-up.
    return q[q < time_days.max()]


class CoxOnScore:
    """Cox model with ``logit(p)`` as its single covariate: turns a predicted risk into S(t | p).

    Parameters
    ----------
    penalizer : float
        Small ridge penalty (lifelines) that keeps the fit finite when the score separates
        events perfectly.
    """

    def __init__(self, penalizer: float = 1e-4) -> None:
        self.penalizer = penalizer

    def fit(self, time_days: Any, event: Any, p: Any) -> CoxOnScore:
        """Fit on training patients: follow-up (days), event 0/1 and predicted risk [n]."""
        from lifelines import CoxPHFitter

        from riskfm.evaluate.calibration import logit

        t, e = _survival_arrays(time_days, event, "train ")
        x = logit(_as_finite_1d(p, "p"))
        df = pd.DataFrame({"t": t, "e": e.astype(int), "x": x})
        self.model_ = CoxPHFitter(penalizer=self.penalizer).fit(df, duration_col="t", event_col="e",
                                                                 fit_options=dict(_COX_FIT_OPTIONS))
        self.coef_ = float(self.model_.params_["x"])
        self.x_mean_ = float(df["x"].mean())  # lifelines centres the covariate on this mean
        return self

    def survival(self, p: Any, times_days: Sequence[float]) -> np.ndarray:
        """Predicted survival S(t | p) = exp(-H0(t) exp(b (x - mean x))), shape [n, len(times_days)].

        H0 is the Breslow estimate of the baseline cumulative hazard, a step function: H0(t) sums
        the hazard increments of the training event times <= t (0 before the first one).
        lifelines' ``predict_survival_function`` would interpolate H0 linearly between training
        times instead, which borrows part of the next event's increment before it happens.
        """
        from riskfm.evaluate.calibration import logit

        x = logit(_as_finite_1d(p, "p"))
        t = np.asarray(times_days, dtype=float)
        h0 = self.model_.baseline_cumulative_hazard_.iloc[:, 0]  # centred covariate, one row per training time
        idx = np.searchsorted(h0.index.to_numpy(dtype=float), t, side="right") - 1
        cum = np.where(idx >= 0, h0.to_numpy(dtype=float)[np.maximum(idx, 0)], 0.0)
        hr = np.exp(self.coef_ * (x - self.x_mean_))
        return np.exp(-np.outer(hr, cum))


def survival_metrics(
    time_days: Any, event: Any, risk: Any, *, times_days: Sequence[float] | None = None,
    train: tuple[Any, Any, Any] | None = None,
) -> SurvivalMetrics:
    """Harrell's and Uno's C, time-dependent AUROC and (with training data) the integrated Brier score.

    Parameters
    ----------
    time_days, event, risk : array-like, shape [n]
        Follow-up (days), event 0/1 and risk score of the patients evaluated.
    times_days : sequence of float, optional
        Evaluation times (days), increasing and inside the follow-up of both sets; default
        ``default_eval_times``.
    train : (time_days, event, p), optional
        Training patients' follow-up, events and predicted risks (in [0, 1]). They estimate the
        censoring distribution of Uno's C and the Cox model of the Brier score; without them
        the evaluated patients serve for the censoring distribution and no Brier score is given.

    Returns
    -------
    SurvivalMetrics
    """
    from sksurv.metrics import concordance_index_ipcw, cumulative_dynamic_auc, integrated_brier_score

    t, e = _survival_arrays(time_days, event)
    r = _as_finite_1d(risk, "risk")
    if len(r) != len(t):
        raise ValueError(f"risk has {len(r)} values for {len(t)} patients")
    if e.sum() == 0:
        raise ValueError("survival metrics need at least one event")
    y_test = _structured(t, e)
    if train is not None:
        t_tr, e_tr = _survival_arrays(train[0], train[1], "train ")
        p_tr = _as_finite_1d(train[2], "train p")
    else:
        t_tr, e_tr, p_tr = t, e, None
    y_train = _structured(t_tr, e_tr)
    times = np.asarray(times_days if times_days is not None else default_eval_times(t, e), float)
    # sksurv needs evaluation times inside the training follow-up (censoring survival > 0).
    times = times[(times < t_tr.max()) & (times >= t.min())]
    if len(times) == 0:
        raise ValueError("no evaluation time lies inside the follow-up of both sets")
    harrell = float(harrell_c(t, e, r))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        uno = float(concordance_index_ipcw(y_train, y_test, r, tau=float(times[-1]))[0])
        auc_t, mean_auc = cumulative_dynamic_auc(y_train, y_test, r, times)
    ibs = None
    if p_tr is not None and len(times) >= 2 and e_tr.sum() > 0:
        cox = CoxOnScore().fit(t_tr, e_tr, p_tr)
        ibs = float(integrated_brier_score(y_train, y_test, cox.survival(r, times), times))
    return SurvivalMetrics(harrell, uno, times, np.asarray(auc_t, float), float(mean_auc), ibs,
                           len(t), int(e.sum()))


SEPARATED = "did not converge: separated groups"


def _cox_group_fit(df: pd.DataFrame) -> tuple[pd.Series | None, list[str]]:
    """Cox fit of ``t, e ~ group`` [n]; (summary row or None when it has no finite MLE, lifelines' warnings).

    With separated groups (every event in one group, or every event of one group before any of
    the other) the partial likelihood has no maximum: lifelines either raises or stops at a huge
    coefficient with an interval of [0, inf] and warns. Both mean "not estimable".
    """
    from lifelines import CoxPHFitter
    from lifelines.exceptions import ConvergenceError

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            cph = CoxPHFitter().fit(df, duration_col="t", event_col="e", fit_options=dict(_COX_FIT_OPTIONS))
        except (ConvergenceError, np.linalg.LinAlgError, ValueError, ZeroDivisionError) as exc:
            return None, [*(str(w.message) for w in caught), str(exc)]
    messages = [str(w.message) for w in caught]
    s = cph.summary.loc["group"]
    values = [s["coef"], s["se(coef)"], s["exp(coef) lower 95%"], s["exp(coef) upper 95%"]]
    diverged = any(k in m for m in messages for k in ("norm(delta)", "failed to converge", "did not converge"))
    if (diverged or not all(math.isfinite(float(v)) for v in values) or float(s["exp(coef) lower 95%"]) <= 0
            or abs(float(s["coef"])) > 10):
        return None, messages
    return s, messages


def group_contrasts(time_days: Any, event: Any, groups: Any, reference: Any = None) -> pd.DataFrame:
    """Hazard ratio (Cox) and log-rank test of every risk group against a reference group.

    Parameters
    ----------
    time_days, event : array-like, shape [n]
        Follow-up (days) and event 0/1.
    groups : array-like, shape [n]
        Group label per patient.
    reference : optional
        Reference group; default the first in display order (``low`` when present).

    Returns
    -------
    pandas.DataFrame
        One row per non-reference group: ``group``, ``reference``, ``n``, ``n_events``,
        ``hazard_ratio``, ``hr_low``, ``hr_high`` (95% Wald interval), ``cox_p``, ``logrank_p``
        (two groups at a time) and ``not_estimable``: why the Cox columns are NaN (``"no events
        in the 'low' group"``, or ``"did not converge: separated groups"`` when the hazard ratio
        has no finite estimate), empty otherwise. A non-converged fit also emits one
        ``RuntimeWarning``; lifelines' own overflow and convergence warnings are absorbed.
    """
    from lifelines.statistics import logrank_test

    t, e = _survival_arrays(time_days, event)
    g = np.asarray(groups, dtype=object)
    if len(g) != len(t):
        raise ValueError(f"groups has {len(g)} labels for {len(t)} patients")
    levels = order_groups(g.tolist())
    ref = levels[0] if reference is None else reference
    if ref not in levels:
        raise ValueError(f"reference group {ref!r} not among the groups {levels}")
    rows = []
    for level in levels:
        if level == ref:
            continue
        m = (g == level) | (g == ref)
        x = (g[m] == level).astype(float)
        row = {"group": level, "reference": ref, "n": int((g == level).sum()),
               "n_events": int(e[g == level].sum()), "hazard_ratio": math.nan, "hr_low": math.nan,
               "hr_high": math.nan, "cox_p": math.nan, "logrank_p": math.nan, "not_estimable": ""}
        if e[m].sum() > 0:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                lr = logrank_test(t[(g == level)], t[(g == ref)], e[(g == level)], e[(g == ref)])
            row["logrank_p"] = float(lr.p_value)
        no_events = [str(lv) for lv in (level, ref) if e[g == lv].sum() == 0]
        if no_events:
            row["not_estimable"] = "no events in the " + " and ".join(f"{lv!r}" for lv in no_events) + " group"
        else:
            df = pd.DataFrame({"t": t[m], "e": e[m].astype(int), "group": x})
            s, messages = _cox_group_fit(df)
            if s is None:
                # Small or separated groups have no finite MLE: report the log-rank test alone
                # rather than a meaningless number or a stopped evaluation.
                row["not_estimable"] = SEPARATED
                detail = messages[-1].split(".")[0] if messages else "no finite estimate"
                warnings.warn(f"Cox hazard ratio for group {level!r} vs {ref!r} did not converge ({detail}); "
                              "reported as not estimable", RuntimeWarning, stacklevel=2)
            else:
                row.update(hazard_ratio=float(s["exp(coef)"]), hr_low=float(s["exp(coef) lower 95%"]),
                           hr_high=float(s["exp(coef) upper 95%"]), cox_p=float(s["p"]))
        rows.append(row)
    return pd.DataFrame(rows, columns=["group", "reference", "n", "n_events", "hazard_ratio", "hr_low",
                                       "hr_high", "cox_p", "logrank_p", "not_estimable"])


def _aalen_johansen(t: np.ndarray, code: np.ndarray, event_of_interest: int,
                    confidence: float) -> pd.DataFrame:
    """Aalen-Johansen cumulative incidence of one event type with its pointwise band (one group).

    At each distinct time t_i (events or censorings) with n_i patients at risk (time >= t_i),
    d_i events of any type and d1_i of the event of interest (censored patients at t_i are at
    risk for the events at t_i):

        S(t_i)  = prod_{k<=i} (1 - d_k / n_k)              (Kaplan-Meier of any event)
        F(t_j)  = sum_{i<=j} S(t_{i-1}) d1_i / n_i         (Kalbfleisch & Prentice 2002, ch. 8)
        Var F(t_j) = sum_{i<=j} [ (F_j - F_i)^2 d_i / (n_i (n_i - d_i))
                                  + S(t_{i-1})^2 d1_i (n_i - d1_i) / n_i^3
                                  - 2 (F_j - F_i) S(t_{i-1}) d1_i / n_i^2 ]

    (the delta-method variance in Collett, Modelling Survival Data, 3rd ed., p. 411, an approximation
    of Dinse & Larson 1986; scikit-survival's ``var_type="Dinse_Approx"`` and the variance of
    lifelines' ``AalenJohansenFitter``), with the band F^{exp(+-z se / (F log F))} of log(-log F),
    inside [0, 1].
    """
    from scipy.stats import norm

    times, inv = np.unique(t, return_inverse=True)
    k = len(times)
    removed = np.bincount(inv, minlength=k).astype(float)
    d_any = np.bincount(inv, weights=(code > 0).astype(float), minlength=k)
    d1 = np.bincount(inv, weights=(code == event_of_interest).astype(float), minlength=k)
    at_risk = len(t) - np.r_[0.0, np.cumsum(removed)[:-1]]
    surv = np.cumprod(1.0 - d_any / at_risk)
    surv_before = np.r_[1.0, surv[:-1]]
    inc = np.cumsum(surv_before * d1 / at_risk)
    # Sum over i <= j of a_i (F_j - F_i)^2 and b_i (F_j - F_i), expanded into running sums. When
    # every patient at risk has an event (n_i = d_i) nobody is left: F_j - F_i = 0 for all j >= i.
    left = at_risk - d_any
    a = np.divide(d_any, at_risk * left, out=np.zeros(k), where=left > 0)
    b = surv_before * d1 / at_risk**2
    var = (inc**2 * np.cumsum(a) - 2 * inc * np.cumsum(a * inc) + np.cumsum(a * inc**2)
           + np.cumsum(surv_before**2 * d1 * (at_risk - d1) / at_risk**3)
           - 2 * (inc * np.cumsum(b) - np.cumsum(b * inc)))
    var = np.maximum(var, 0.0)
    z = float(norm.ppf(0.5 + confidence / 2))
    low, high = inc.copy(), inc.copy()
    inner = (inc > 0) & (inc < 1) & (var > 0)
    f = inc[inner]
    theta = z * np.sqrt(var[inner]) / (f * np.abs(np.log(f)))
    low[inner], high[inner] = f ** np.exp(theta), f ** np.exp(-theta)
    out = pd.DataFrame({"time_days": times, "incidence": inc, "low": low, "high": high})
    if k == 0 or times[0] > 0:
        out = pd.concat([pd.DataFrame({"time_days": [0.0], "incidence": [0.0], "low": [0.0], "high": [0.0]}), out],
                        ignore_index=True)
    return out


def aalen_johansen_by_group(time_days: Any, event_code: Any, groups: Any, event_of_interest: int = 1,
                            seed: int = 0, confidence: float = 0.95) -> dict[Any, pd.DataFrame]:
    """Aalen-Johansen cumulative incidence of one event type per group, with competing events.

    Parameters
    ----------
    time_days : array-like, shape [n]
        Follow-up in days, >= 0.
    event_code : array-like of int, shape [n]
        0 = censored, ``event_of_interest`` = the event, any other positive code = a competing
        event (e.g. non-cardiac death), which ends follow-up without the event.
    groups : array-like, shape [n]
        Group label per patient.
    event_of_interest : int
        Code of the event whose incidence is estimated.
    seed : int
        Unused; kept for callers of the former lifelines-based version, which broke tied times
        by a random jitter (tied times are now handled exactly).
    confidence : float
        Coverage of the pointwise band.

    Returns
    -------
    dict
        Group -> DataFrame ``time_days`` (0, then every distinct follow-up time of the group),
        ``incidence`` (step function: the value holds from that time on), ``low``, ``high``
        (pointwise band, log(-log) transform of the Dinse-Larson / Collett delta-method variance;
        a zero-width band where the incidence is 0), groups in display order. Without competing
        events the incidence equals 1 - Kaplan-Meier. See ``_aalen_johansen`` for the formulas.
    """
    del seed
    t = _as_finite_1d(time_days, "time_days")
    c = _as_finite_1d(event_code, "event_code")
    if (c < 0).any() or (c != np.round(c)).any():
        raise ValueError("event_code must hold non-negative integers (0 = censored)")
    if (t < 0).any():
        raise ValueError(f"time_days must be >= 0; {int((t < 0).sum())} negative values")
    if int(event_of_interest) != event_of_interest or event_of_interest <= 0:
        raise ValueError(f"event_of_interest must be a positive integer code, got {event_of_interest!r}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    g = np.asarray(groups, dtype=object)
    if not len(t) == len(c) == len(g):
        raise ValueError("time_days, event_code and groups must have the same length")
    return {level: _aalen_johansen(t[g == level], c[g == level].astype(int), int(event_of_interest), confidence)
            for level in order_groups(g.tolist())}
