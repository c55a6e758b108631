"""Calibration: do predicted risks match observed event rates? And recalibration.

Conventions (``p`` predicted risk in (0, 1), ``y`` observed 0/1, ``logit(p) = log(p / (1 - p))``,
``p`` clipped to [1e-12, 1 - 1e-12] before the logit):

- **Brier score** ``mean((p - y)^2)``; **scaled Brier** ``1 - Brier / (ybar (1 - ybar))``: 1 is
  perfect, 0 is no better than predicting the prevalence for everyone (Steyerberg 2010).
- **ECE** (expected calibration error) ``sum_b n_b / n |mean(y_b) - mean(p_b)|`` over bins of ``p``
  (uniform or quantile; Naeini et al. 2015).
- **Calibration intercept** (calibration-in-the-large): ``a`` in ``logit P(y=1) = a + logit(p)``,
  i.e. logistic regression with ``logit(p)`` as an offset. 0 is ideal; > 0 means risks are too low.
- **Calibration slope**: ``b`` in ``logit P(y=1) = a + b logit(p)``. 1 is ideal; < 1 means
  predictions are too extreme (overfitting) (Cox 1958; Van Calster et al. 2019).
- **Spiegelhalter's z** ``sum (y - p)(1 - 2p) / sqrt(sum (1 - 2p)^2 p (1 - p))``, two-sided normal
  p-value; a significant z says the predictions are miscalibrated (Spiegelhalter 1986).

Logistic fits use Newton-Raphson (IRLS); intervals are Wald intervals from the observed Fisher
information, as ``statsmodels`` GLM reports them.

Recalibration maps are fitted on validation patients and applied to test patients:
``platt`` (logistic on logit(p): ``sigmoid(a + b logit(p))``, Platt 1999), ``temperature``
(``sigmoid(logit(p) / T)``, Guo et al. 2017) and ``isotonic`` (monotone step function,
Zadrozny & Elkan 2002, via scikit-learn).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar
from scipy.special import expit
from scipy.stats import norm

from riskfm.evaluate._checks import as_finite_1d, check_risks, z_value
from riskfm.evaluate.results import Estimate, Result, _save
from riskfm.evaluate.risk_groups import reliability_table

_EPS = 1e-12
RECALIBRATION_METHODS: tuple[str, ...] = ("platt", "temperature", "isotonic")


def logit(p: Any) -> np.ndarray:
    """``log(p / (1 - p))`` with ``p`` clipped to [1e-12, 1 - 1e-12] so that 0 and 1 stay finite."""
    p = np.clip(np.asarray(p, dtype=np.float64), _EPS, 1.0 - _EPS)
    return np.log(p) - np.log1p(-p)


def logistic_fit(y: np.ndarray, x: np.ndarray | None, offset: np.ndarray | None = None,
                 max_iter: int = 100, tol: float = 1e-10) -> tuple[np.ndarray, np.ndarray]:
    """Maximum-likelihood logistic regression ``logit P(y=1) = offset + b0 + b1 x`` by Newton-Raphson.

    Parameters
    ----------
    y : np.ndarray, shape [n]
        0/1 outcome.
    x : np.ndarray, shape [n], or None
        The single covariate; None fits the intercept only.
    offset : np.ndarray, shape [n], optional
        Known term with coefficient fixed at 1.
    max_iter, tol : int, float
        Newton iterations and convergence tolerance on the coefficient change.

    Returns
    -------
    coef : np.ndarray, shape [1] or [2]
        ``[b0]`` or ``[b0, b1]``.
    cov : np.ndarray, shape [k, k]
        Inverse observed Fisher information (covariance of the estimates).

    Raises
    ------
    ValueError
        If the fit does not converge (e.g. perfect separation, or all outcomes equal).
    """
    n = len(y)
    design = np.ones((n, 1)) if x is None else np.column_stack([np.ones(n), x])
    off = np.zeros(n) if offset is None else offset
    if y.min() == y.max():
        raise ValueError("logistic fit needs both outcomes (0 and 1); all outcomes are equal")
    not_converged = "logistic fit did not converge (perfect separation?)"
    beta = np.zeros(design.shape[1])
    for _ in range(max_iter):
        mu = expit(off + design @ beta)
        w = mu * (1.0 - mu)
        info = design.T @ (design * w[:, None])
        try:
            step = np.linalg.solve(info, design.T @ (y - mu))
        except np.linalg.LinAlgError:
            # Under separation the fitted risks reach 0 / 1 in float and the information matrix
            # becomes singular before the iteration limit: the same failure, said the same way.
            raise ValueError(not_converged) from None
        beta = beta + step
        if np.max(np.abs(step)) < tol:
            break
    else:
        raise ValueError(not_converged)
    mu = expit(off + design @ beta)
    info = design.T @ (design * (mu * (1.0 - mu))[:, None])
    return beta, np.linalg.inv(info)


@dataclass
class CalibrationResult(Result):
    """Calibration of predicted risks against observed outcomes (a composite result).

    Attributes
    ----------
    intercept, slope : Estimate
        Calibration intercept (ideal 0) and slope (ideal 1) with Wald intervals
        (``method="Wald"``, ``se`` from the observed Fisher information).
    ece : float
        Expected calibration error over ``table``'s bins (risk units, 0 to 1).
    brier, scaled_brier : float
        Brier score (0 best) and scaled Brier (1 best, 0 = prevalence-only model).
    spiegelhalter_z, spiegelhalter_p : float
        Spiegelhalter's z and its two-sided p-value.
    table : pandas.DataFrame
        Reliability bins (``riskfm.evaluate.reliability_table``): ``observed_rate`` with its
        Wilson interval in ``ci_low``, ``ci_high``.
    n, n_pos : int
        Patients and events.
    strategy : str
        ``"uniform"`` or ``"quantile"`` bins.
    confidence : float
        Coverage of every interval.
    method : str
        ``"logistic calibration (Wald intervals)"``.

    ``to_dict()`` gives ``{"intercept": {...}, "slope": {...}, "ece", "brier", ..., "bins"}`` (no
    table); ``plot(path=None, **kwargs)`` draws the reliability diagram.
    """

    intercept: Estimate
    slope: Estimate
    ece: float
    brier: float
    scaled_brier: float
    spiegelhalter_z: float
    spiegelhalter_p: float
    table: pd.DataFrame
    n: int
    n_pos: int
    strategy: str
    confidence: float = 0.95
    method: str = "logistic calibration (Wald intervals)"
    _y: np.ndarray = field(default=None, repr=False)
    _p: np.ndarray = field(default=None, repr=False)
    _not_in_dict: ClassVar[tuple[str, ...]] = ("table",)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (no table; ``bins``: the number of reliability bins)."""
        return {**super().to_dict(), "bins": int(len(self.table))}

    @property
    def y(self) -> np.ndarray:
        """Outcomes 0/1 [n] the result was computed on (the figure's histogram)."""
        return self._y

    @property
    def p(self) -> np.ndarray:
        """Predicted risks [n] the result was computed on."""
        return self._p

    def plot(self, path: Any = None, **kwargs: Any):
        """Reliability diagram (``riskfm.plots.calibration.plot_calibration``); saved to ``path`` when given.

        ``kwargs`` (``label``, ``title``, ``size_in``) go to the figure function. Returns the Figure.
        """
        from riskfm.plots.calibration import plot_calibration

        return _save(plot_calibration(self, **kwargs), path)


def brier_score(y: Any, p: Any) -> float:
    """Mean squared difference between predicted risk and outcome (0 best)."""
    y_arr, p_arr = check_risks(y, p)
    return float(np.mean((p_arr - y_arr) ** 2))


def expected_calibration_error(y: Any, p: Any, n_bins: int = 10, strategy: str = "uniform") -> float:
    """ECE: bin-size-weighted mean of |observed rate - mean predicted risk| over bins of ``p``."""
    t = reliability_table(y, p, n_bins=n_bins, strategy=strategy)
    return float((t["n"] * (t["observed_rate"] - t["mean_predicted"]).abs()).sum() / t["n"].sum())


def spiegelhalter_z(y: Any, p: Any) -> tuple[float, float]:
    """Spiegelhalter's z-statistic and its two-sided p-value (NaN when every p is 0, 1/2 or 1)."""
    y_arr, p_arr = check_risks(y, p)
    num = float(np.sum((y_arr - p_arr) * (1.0 - 2.0 * p_arr)))
    var = float(np.sum((1.0 - 2.0 * p_arr) ** 2 * p_arr * (1.0 - p_arr)))
    if var <= 0.0:
        return math.nan, math.nan
    z = num / math.sqrt(var)
    return z, float(2.0 * norm.sf(abs(z)))


def calibration(y: Any, p: Any, n_bins: int = 10, strategy: str = "uniform", confidence: float = 0.95, *,
                min_bin_size: int | None = None) -> CalibrationResult:
    """Every calibration statistic of predicted risks ``p`` against outcomes ``y``.

    Parameters
    ----------
    y : array-like, shape [n]
        Observed outcome 0/1 (no NaN), both classes present.
    p : array-like, shape [n]
        Predicted risk in [0, 1].
    n_bins : int
        Bins of the reliability table and the ECE.
    strategy : {"uniform", "quantile"}
        Equal-width bins on [0, 1] or equal-count bins.
    confidence : float
        Coverage of the intercept / slope and per-bin intervals.
    min_bin_size : int, optional
        Quantile bins only: use at most ``n // min_bin_size`` bins (at least 2), so that every bin
        has about ``min_bin_size`` patients or more (small splits get fewer, larger bins).

    Returns
    -------
    CalibrationResult
        With ``.intercept``, ``.slope``, ``.ece``, ``.brier``, ``.table``, ``.plot()``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(0.05, 0.6, 2000); y = (rng.random(2000) < p).astype(int)
    >>> res = calibration(y, p)
    >>> abs(res.slope.value - 1) < 0.2 and abs(res.intercept.value) < 0.2
    True
    """
    y_arr, p_arr = check_risks(y, p)
    n, n_pos = len(y_arr), int(y_arr.sum())
    if n_pos in (0, n):
        raise ValueError(f"calibration needs both outcomes; got {n_pos} events in {n} patients")
    z = z_value(confidence)
    if strategy == "quantile" and min_bin_size:
        n_bins = int(max(2, min(n_bins, n // int(min_bin_size))))
    lp = logit(p_arr)
    (a,), cov_a = logistic_fit(y_arr, None, offset=lp)
    se_a = math.sqrt(cov_a[0, 0])
    (_, b), cov_b = logistic_fit(y_arr, lp)
    se_b = math.sqrt(cov_b[1, 1])
    table = reliability_table(y_arr, p_arr, n_bins=n_bins, strategy=strategy, confidence=confidence)
    ece = float((table["n"] * (table["observed_rate"] - table["mean_predicted"]).abs()).sum() / n)
    brier = float(np.mean((p_arr - y_arr) ** 2))
    prev = n_pos / n
    sz, sp = spiegelhalter_z(y_arr, p_arr)
    return CalibrationResult(
        intercept=Estimate(float(a), (a - z * se_a, a + z * se_a), "Wald", n, n_pos, confidence, se=se_a),
        slope=Estimate(float(b), (b - z * se_b, b + z * se_b), "Wald", n, n_pos, confidence, se=se_b),
        ece=ece, brier=brier, scaled_brier=1.0 - brier / (prev * (1.0 - prev)),
        spiegelhalter_z=sz, spiegelhalter_p=sp, table=table, n=n, n_pos=n_pos, strategy=strategy,
        confidence=confidence, _y=y_arr, _p=p_arr,
    )


# ----------------------------------------------------------------------------------------- recalibration


@dataclass
class Recalibrator:
    """A fitted map from predicted risk to recalibrated risk; ``transform(p)`` applies it.

    Attributes
    ----------
    method : str
        ``"platt"``, ``"temperature"`` or ``"isotonic"``.
    params : dict
        ``{"a", "b"}`` (Platt), ``{"temperature"}`` or the isotonic knots ``{"x", "y"}``.
    n_fit : int
        Patients the map was fitted on.
    """

    method: str
    params: dict[str, Any]
    n_fit: int

    def transform(self, p: Any) -> np.ndarray:
        """Recalibrated risks, shape [n], for predicted risks ``p`` [n] in [0, 1]."""
        p_arr = as_finite_1d(p, "p")
        if self.method == "platt":
            return expit(self.params["a"] + self.params["b"] * logit(p_arr))
        if self.method == "temperature":
            return expit(logit(p_arr) / self.params["temperature"])
        # Isotonic: a monotone step function through its knots, constant beyond the fitted range.
        return np.interp(p_arr, self.params["x"], self.params["y"])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description (isotonic knots as lists)."""
        params = {k: (np.asarray(v).tolist() if isinstance(v, np.ndarray) else float(v)) for k, v in self.params.items()}
        return {"method": self.method, "n_fit": self.n_fit, "params": params}


def fit_recalibration(y: Any, p: Any, method: str = "platt") -> Recalibrator:
    """Fit a recalibration map on validation patients (apply it to test patients only).

    Parameters
    ----------
    y : array-like, shape [n]
        Validation outcomes 0/1, both present.
    p : array-like, shape [n]
        Validation predicted risks in [0, 1].
    method : {"platt", "temperature", "isotonic"}
        Platt scaling (2 parameters), temperature scaling (1 parameter: keeps the ranking and the
        0.5 point) or isotonic regression (monotone, non-parametric; needs many patients).

    Returns
    -------
    Recalibrator
    """
    if method not in RECALIBRATION_METHODS:
        raise ValueError(f"method must be one of {RECALIBRATION_METHODS}, got {method!r}")
    y_arr, p_arr = check_risks(y, p)
    if y_arr.min() == y_arr.max():
        raise ValueError("recalibration needs both outcomes in the fitting set")
    lp = logit(p_arr)
    if method == "platt":
        (a, b), _ = logistic_fit(y_arr, lp)
        return Recalibrator("platt", {"a": float(a), "b": float(b)}, len(y_arr))
    if method == "temperature":
        def nll(log_t: float) -> float:
            q = np.clip(expit(lp / math.exp(log_t)), _EPS, 1 - _EPS)
            return float(-np.sum(y_arr * np.log(q) + (1 - y_arr) * np.log1p(-q)))

        res = minimize_scalar(nll, bounds=(-5.0, 5.0), method="bounded", options={"xatol": 1e-8})
        return Recalibrator("temperature", {"temperature": float(math.exp(res.x))}, len(y_arr))
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(p_arr, y_arr)
    return Recalibrator("isotonic", {"x": np.asarray(iso.X_thresholds_, float),
                                     "y": np.asarray(iso.y_thresholds_, float)}, len(y_arr))
