"""Decision-curve analysis: the net benefit of acting on the model's predicted risk.

At a threshold probability ``pt`` (the risk at which a clinician would treat, i.e. the harm of
an unnecessary treatment weighed against the benefit of a necessary one as ``pt / (1 - pt)``)
(Vickers & Elkin 2006)::

    net benefit (model)     = TP / n - FP / n * pt / (1 - pt)      treating p >= pt
    net benefit (treat all) = prevalence - (1 - prevalence) * pt / (1 - pt)
    net benefit (treat none) = 0

A model is useful at ``pt`` when its net benefit exceeds both references.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from riskfm.evaluate._checks import as_binary_1d, as_finite_1d, check_same_length
from riskfm.evaluate.results import Result, _save


@dataclass
class DecisionCurve(Result):
    """Net benefit over a range of threshold probabilities (a composite result: a curve).

    Attributes
    ----------
    table : pandas.DataFrame
        Columns ``threshold``, ``net_benefit`` (model), ``treat_all``, ``treat_none`` (net
        benefit in true positives per patient).
    prevalence : float
        Event rate of the patients.
    n : int
        Patients.
    method : str
        ``"net benefit (Vickers & Elkin 2006)"``; no intervals.

    ``to_dict()`` gives ``{"method", "n", "prevalence", "table": {column: [values]}}``;
    ``plot(path=None, **kwargs)`` draws ``riskfm.plots.decision_curve.plot_decision_curve``.
    """

    table: pd.DataFrame
    prevalence: float
    n: int
    method: str = "net benefit (Vickers & Elkin 2006)"

    def plot(self, path: Any = None, **kwargs: Any):
        """Decision curve figure (``riskfm.plots.plot_decision_curve``); saved to ``path`` when given."""
        from riskfm.plots.decision_curve import plot_decision_curve

        return _save(plot_decision_curve(self, **kwargs), path)


def decision_curve(y: Any, p: Any, thresholds: Any = None) -> DecisionCurve:
    """Net benefit of the model, treat-all and treat-none at each threshold probability.

    Parameters
    ----------
    y : array-like, shape [n]
        Observed outcome 0/1.
    p : array-like, shape [n]
        Predicted risk in [0, 1].
    thresholds : array-like, optional
        Threshold probabilities in (0, 1); default 0.01 to 0.50 in steps of 0.01.

    Returns
    -------
    DecisionCurve
    """
    y_arr = as_binary_1d(y, "y")
    p_arr = as_finite_1d(p, "p")
    if check_same_length(y=y_arr, p=p_arr) == 0:
        raise ValueError("y and p are empty")
    # k / 100 is the double nearest to the decimal k%: np.arange(0.01, 0.51, 0.01) drifts (its "0.06" is
    # 0.060000000000000005), so a predicted risk of exactly 6% would not be treated at the 6% threshold.
    pt = np.arange(1, 51) / 100.0 if thresholds is None else as_finite_1d(thresholds, "thresholds")
    if (pt <= 0).any() or (pt >= 1).any():
        raise ValueError("threshold probabilities must lie strictly between 0 and 1")
    n = len(y_arr)
    treat = p_arr[None, :] >= pt[:, None]  # [k, n]
    tp = (treat & (y_arr[None, :] == 1)).sum(axis=1)
    fp = (treat & (y_arr[None, :] == 0)).sum(axis=1)
    odds = pt / (1.0 - pt)
    prev = float(y_arr.mean())
    table = pd.DataFrame({"threshold": pt, "net_benefit": tp / n - fp / n * odds,
                          "treat_all": prev - (1.0 - prev) * odds, "treat_none": np.zeros_like(pt)})
    return DecisionCurve(table, prev, n)
