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
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from riskfm.evaluate._checks import as_finite_1d, check_confidence, check_same_length, check_survival
from riskfm.evaluate.results import Estimate, Result
from riskfm.evaluate.risk_groups import CumulativeIncidence, order_groups

# lifelines' default stop (relative change of the log-likelihood < 1e-9, R's rule, or Newton
# decrement < 1e-7) leaves the coefficient up to ~1e-6 from the maximum. Stopping on a Newton
# decrement below 1e-20 instead costs one or two more steps and leaves it within ~1e-12.
_COX_FIT_OPTIONS = {"precision": 1e-20, "r_precision": 0.0}


def _structured(t: np.ndarray, e: np.ndarray) -> np.ndarray:
    from sksurv.util import Surv

    return Surv.from_arrays(event=e, time=t)


@dataclass
class SurvivalMetrics(Result):
    """Survival discrimination and accuracy of a risk score on one set of patients (composite).

    Attributes
    ----------
    harrell_c, uno_c : Estimate
        Concordance indices (0.5 = chance, 1 = perfect); no interval (``ci`` None).
    times_days : np.ndarray, shape [k]
        Evaluation times (days) of the time-dependent AUROC.
    auc_t : np.ndarray, shape [k]
        Cumulative/dynamic AUROC at each time.
    mean_auc_t : Estimate
        Their weighted mean (sksurv).
    integrated_brier : Estimate or None
        Integrated Brier score over ``times_days`` (0 best); None without training patients.
    n, n_events : int
        Patients and events.
    method : str
        What the estimates are (no intervals are computed).

    ``to_dict()``: ``{"harrell_c": {...}, "uno_c": {...}, "mean_auc_t": {...}, "integrated_brier":
    {...} or null, "time_auc": {"times_days": [...], "auc": [...]}, "n", "n_events", "method"}``.
    """

    harrell_c: Estimate
    uno_c: Estimate
    times_days: np.ndarray
    auc_t: np.ndarray
    mean_auc_t: Estimate
    integrated_brier: Estimate | None
    n: int
    n_events: int
    method: str = "Harrell's and Uno's C, cumulative/dynamic AUROC, IPCW integrated Brier (no intervals)"
    _not_in_dict: ClassVar[tuple[str, ...]] = ("times_days", "auc_t")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (estimates nested, the time-dependent AUROC as two lists)."""
        return {**super().to_dict(), "time_auc": {"times_days": self.times_days.tolist(), "auc": self.auc_t.tolist()}}

    @classmethod
    def missing(cls, reason: str, n: int, n_events: int) -> SurvivalMetrics:
        """Not estimable (e.g. fewer than 10 events): every estimate NaN with the reason."""
        def e() -> Estimate:
            return Estimate.missing(reason, "none", n, n_events)

        return cls(e(), e(), np.zeros(0), np.zeros(0), e(), e(), n, n_events)


def harrell_c(time_days: Any, event: Any, risk: Any) -> float:
    """Harrell's concordance index of ``risk`` (larger = earlier event); see the module docstring."""
    from sksurv.metrics import concordance_index_censored

    t, e = check_survival(time_days, event)
    r = as_finite_1d(risk, "risk")
    if e.sum() == 0:
        raise ValueError("Harrell's C needs at least one event")
    return float(concordance_index_censored(e, t, r)[0])


def default_eval_times(time_days: np.ndarray, event: np.ndarray, n_times: int = 10) -> np.ndarray:
    """Return evaluation times: ``n_times`` quantiles (10th to 80th percentile) of the event times.

    Parameters
    ----------
    time_days : np.ndarray [n]
        Follow-up time per patient in days.
    event : np.ndarray of bool [n]
        True where the follow-up ended in an event.
    n_times : int, default 10
        Quantiles taken between the 10th and the 80th percentile.

    Returns
    -------
    np.ndarray
        Sorted distinct times in days, each below the longest follow-up (at most ``n_times``).

    Raises
    ------
    ValueError
        When there are no events.
    """
    ev = np.sort(time_days[event])
    if len(ev) == 0:
        raise ValueError("no events: no evaluation times")
    q = np.unique(np.quantile(ev, np.linspace(0.1, 0.8, n_times)))
    # Time-dependent AUROC needs controls still at risk after t: stay below the last follow-up.
    return q[q < time_days.max()]


def _probabilities(p: Any, name: str) -> np.ndarray:
    """Return ``p`` as finite floats in [0, 1], or raise naming ``name`` (a log hazard is not a probability).

    ``logit`` clips to [1e-12, 1 - 1e-12]: a score outside [0, 1] would be clipped silently into a
    wrong Brier score instead of an error.
    """
    x = as_finite_1d(p, name)
    if len(x) and (x.min() < 0 or x.max() > 1):
        raise ValueError(f"{name} must be predicted probabilities in [0, 1] for the Brier score's Cox model "
                         f"(got {x.min():.4g} to {x.max():.4g}); pass probabilities (e.g. sigmoid of a log "
                         "hazard), or leave train=None for the C-indices and time-dependent AUROC only")
    return x


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

        t, e = check_survival(time_days, event, "train ")
        x = logit(_probabilities(p, "p"))
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

        x = logit(_probabilities(p, "p"))
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
        Follow-up (days), event 0/1 and risk score of the patients evaluated (any monotone scale
        for the C-indices and AUROC; with ``train``, a probability in [0, 1], which the Brier
        score's Cox model needs: other values are refused, not clipped).
    times_days : sequence of float, optional
        Evaluation times (days), increasing and inside the follow-up of both sets; default
        ``default_eval_times``.
    train : (time_days, event, p), optional
        Training patients' follow-up, events and predicted risks (in [0, 1], else an error). They estimate the
        censoring distribution of Uno's C and the Cox model of the Brier score; without them
        the evaluated patients serve for the censoring distribution and no Brier score is given.

    Returns
    -------
    SurvivalMetrics
    """
    from sksurv.metrics import concordance_index_ipcw, cumulative_dynamic_auc, integrated_brier_score

    t, e = check_survival(time_days, event)
    r = as_finite_1d(risk, "risk")
    if len(r) != len(t):
        raise ValueError(f"risk has {len(r)} values for {len(t)} patients")
    if e.sum() == 0:
        raise ValueError("survival metrics need at least one event")
    y_test = _structured(t, e)
    if train is not None:
        t_tr, e_tr = check_survival(train[0], train[1], "train ")
        p_tr = as_finite_1d(train[2], "train p")
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
        # named for the caller: a log hazard passed as risk is refused here, not clipped by logit
        _probabilities(p_tr, "train p")
        _probabilities(r, "risk")
        cox = CoxOnScore().fit(t_tr, e_tr, p_tr)
        ibs = float(integrated_brier_score(y_train, y_test, cox.survival(r, times), times))
    n, n_events = len(t), int(e.sum())

    def est(value: float) -> Estimate:
        return Estimate(value, None, "none", n, n_events)

    return SurvivalMetrics(est(harrell), est(uno), times, np.asarray(auc_t, float), est(float(mean_auc)),
                           None if ibs is None else est(ibs), n, n_events)


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
        ``hazard_ratio``, ``ci_low``, ``ci_high`` (its 95% Wald interval), ``cox_p``, ``logrank_p``
        (two groups at a time) and ``not_estimable``: why the Cox columns are NaN (``"no events
        in the 'low' group"``, or ``"did not converge: separated groups"`` when the hazard ratio
        has no finite estimate), empty otherwise. A non-converged fit also emits one
        ``RuntimeWarning``; lifelines' own overflow and convergence warnings are absorbed.
    """
    from lifelines.statistics import logrank_test

    t, e = check_survival(time_days, event)
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
               "n_events": int(e[g == level].sum()), "hazard_ratio": math.nan, "ci_low": math.nan,
               "ci_high": math.nan, "cox_p": math.nan, "logrank_p": math.nan, "not_estimable": ""}
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
                row.update(hazard_ratio=float(s["exp(coef)"]), ci_low=float(s["exp(coef) lower 95%"]),
                           ci_high=float(s["exp(coef) upper 95%"]), cox_p=float(s["p"]))
        rows.append(row)
    return pd.DataFrame(rows, columns=["group", "reference", "n", "n_events", "hazard_ratio", "ci_low",
                                       "ci_high", "cox_p", "logrank_p", "not_estimable"])


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
    out = pd.DataFrame({"time_days": times, "incidence": inc, "ci_low": low, "ci_high": high})
    if k == 0 or times[0] > 0:
        out = pd.concat([pd.DataFrame({"time_days": [0.0], "incidence": [0.0], "ci_low": [0.0], "ci_high": [0.0]}),
                         out], ignore_index=True)
    return out


def aalen_johansen_by_group(time_days: Any, event_code: Any, groups: Any, event_of_interest: int = 1,
                            seed: int = 0, confidence: float = 0.95) -> CumulativeIncidence:
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
    CumulativeIncidence
        ``curves``: group -> DataFrame ``time_days`` (0, then every distinct follow-up time of the
        group), ``incidence`` (step function: the value holds from that time on), ``ci_low``,
        ``ci_high`` (pointwise band, log(-log) transform of the Dinse-Larson / Collett
        delta-method variance; a zero-width band where the incidence is 0), groups in display
        order; no log-rank test (``logrank_p`` None). Without competing events the incidence
        equals 1 - Kaplan-Meier. See ``_aalen_johansen`` for the formulas.
    """
    del seed
    t = as_finite_1d(time_days, "time_days")
    c = as_finite_1d(event_code, "event_code")
    if (c < 0).any() or (c != np.round(c)).any():
        raise ValueError("event_code must hold non-negative integers (0 = censored)")
    if (t < 0).any():
        raise ValueError(f"time_days must be >= 0; {int((t < 0).sum())} negative values")
    if int(event_of_interest) != event_of_interest or event_of_interest <= 0:
        raise ValueError(f"event_of_interest must be a positive integer code, got {event_of_interest!r}")
    check_confidence(confidence)
    g = np.asarray(groups, dtype=object)
    check_same_length(time_days=t, event_code=c, groups=g)
    levels = order_groups(g.tolist())
    curves = {level: _aalen_johansen(t[g == level], c[g == level].astype(int), int(event_of_interest), confidence)
              for level in levels}
    return CumulativeIncidence(curves, None, confidence, method="Aalen-Johansen (Dinse-Larson / Collett band)",
                               n=len(t), n_events=int((c == event_of_interest).sum()),
                               _durations={level: t[g == level] for level in levels})
