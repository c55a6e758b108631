"""Does a metric differ between subgroups? Cochran's Q on the subgroup estimates and their variances.

"Performance remained stable across subgroups" is a claim about heterogeneity: whether the
subgroups' AUROCs differ by more than their sampling error. The subgroups of one attribute (men /
women, age bands, acquisition years) hold disjoint patients, so their AUROCs are independent
estimates, and the classical test of a common value is Cochran's Q (Cochran, Biometrics
1954;10:101-129) with inverse-variance weights:

    w_i = 1 / v_i,   pooled = sum(w_i * theta_i) / sum(w_i),   Q = sum(w_i * (theta_i - pooled)^2),

referred to a chi-square distribution with k - 1 degrees of freedom (k subgroups), with Higgins'
I^2 = max(0, (Q - (k - 1)) / Q), the share of the spread beyond sampling error (Higgins &
Thompson, Stat Med 2002;21:1539-1558). The AUROC variance of each subgroup is DeLong's (DeLong et
al., Biometrics 1988;44:837-845). Subgroups that are not estimable under the small-sample rule
(``riskfm.evaluate.guards``) are left out of the test and named; with fewer than two estimable
subgroups there is no test (the reason says why).

Q has little power with few, small subgroups: a large p-value is absence of evidence of a
difference, not evidence of stability; the forest plot's intervals show how wide the uncertainty is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import chi2

from riskfm.evaluate.discrimination import delong_variance
from riskfm.evaluate.guards import DEFAULT_MIN_EVENTS, DEFAULT_MIN_NONEVENTS, estimable
from riskfm.evaluate.results import Result

__all__ = ["Heterogeneity", "cochran_q", "subgroup_heterogeneity"]


@dataclass(frozen=True)
class Heterogeneity(Result):
    """Cochran's Q test of equal values across subgroups.

    Attributes
    ----------
    value : float
        Cochran's Q (NaN when there is no test).
    ci : None
        No interval (a test statistic).
    method : str
        ``"Cochran's Q (inverse-variance weights)"``, with ``"DeLong variances"`` for AUROCs.
    n : int
        Subgroups in the test (k).
    df : int
        Degrees of freedom, k - 1.
    p_value : float
        Upper tail of chi-square(k - 1) at Q (NaN when there is no test).
    i2 : float
        Higgins' I^2 in [0, 1] (NaN when there is no test; 0 when Q <= k - 1).
    pooled : float
        Inverse-variance weighted mean of the estimates (fixed effect).
    levels : list of str
        The subgroups in the test.
    left_out : dict
        Subgroup -> why it is not in the test (not estimable, zero variance).
    not_estimable : str or None
        Why there is no test (fewer than 2 usable subgroups), else None.
    """

    value: float
    ci: None = None
    method: str = "Cochran's Q (inverse-variance weights)"
    n: int = 0
    df: int = 0
    p_value: float = math.nan
    i2: float = math.nan
    pooled: float = math.nan
    levels: list[str] = field(default_factory=list)
    left_out: dict[str, str] = field(default_factory=dict)
    not_estimable: str | None = None


def cochran_q(estimates: Any, variances: Any, *, method: str = "Cochran's Q (inverse-variance weights)"
              ) -> Heterogeneity:
    """Cochran's Q, its chi-square p-value and I^2 for independent estimates with known variances.

    Parameters
    ----------
    estimates : array-like, shape [k]
        One estimate per subgroup (finite).
    variances : array-like, shape [k]
        Their sampling variances (finite, > 0).
    method : str
        Text for the result's ``method``.

    Returns
    -------
    Heterogeneity
        ``value`` Q, ``df`` k - 1, ``p_value``, ``i2``, ``pooled``; with k < 2 not estimable.

    Raises
    ------
    ValueError
        Lengths differ, or a value is not finite, or a variance is not positive.

    Examples
    --------
    >>> round(cochran_q([0.7, 0.8], [0.001, 0.001]).value, 3)
    5.0
    """
    theta = np.asarray(estimates, dtype=np.float64).ravel()
    var = np.asarray(variances, dtype=np.float64).ravel()
    if theta.shape != var.shape:
        raise ValueError(f"{len(theta)} estimates but {len(var)} variances")
    if not (np.isfinite(theta).all() and np.isfinite(var).all()):
        raise ValueError("estimates and variances must be finite")
    if (var <= 0).any():
        raise ValueError(f"variances must be > 0, got {var[var <= 0].tolist()}")
    k = len(theta)
    if k < 2:
        return Heterogeneity(math.nan, method=method, n=k, df=0, not_estimable=f"{k} subgroup(s) < 2: no test")
    w = 1.0 / var
    pooled = float(np.sum(w * theta) / np.sum(w))
    q = float(np.sum(w * (theta - pooled) ** 2))
    df = k - 1
    i2 = max(0.0, (q - df) / q) if q > 0 else 0.0
    return Heterogeneity(q, method=method, n=k, df=df, p_value=float(chi2.sf(q, df)), i2=i2, pooled=pooled)


def subgroup_heterogeneity(y: Any, p: Any, groups: Any, *, min_events: int = DEFAULT_MIN_EVENTS,
                           min_nonevents: int = DEFAULT_MIN_NONEVENTS) -> Heterogeneity:
    """Cochran's Q on the AUROCs of the subgroups of one attribute, with DeLong variances.

    Parameters
    ----------
    y : array-like, shape [n]
        Outcome 0/1.
    p : array-like, shape [n]
        Predicted risk.
    groups : array-like, shape [n]
        Subgroup per patient; missing (NaN / None) patients are in no subgroup.
    min_events, min_nonevents : int
        The small-sample rule: subgroups with fewer events or non-events are left out (named in
        ``left_out`` with the reason).

    Returns
    -------
    Heterogeneity
        Over the estimable subgroups; ``levels`` and ``left_out`` say which were used.
    """
    y_arr = np.asarray(y, dtype=np.float64)
    p_arr = np.asarray(p, dtype=np.float64)
    g = pd.Series(np.asarray(groups, dtype=object))
    if not len(y_arr) == len(p_arr) == len(g):
        raise ValueError(f"y ({len(y_arr)}), p ({len(p_arr)}) and groups ({len(g)}) differ in length")
    if isinstance(groups, pd.Series) and isinstance(groups.dtype, pd.CategoricalDtype):
        order = [lv for lv in groups.cat.categories if lv in set(g.dropna())]
    else:
        order = sorted(g.dropna().unique().tolist(), key=str)
    est, var, used, left_out = [], [], [], {}
    for level in order:
        m = (g == level).to_numpy()
        reason = estimable(y_arr[m], min_events=min_events, min_nonevents=min_nonevents)
        if reason is not None:
            left_out[str(level)] = reason
            continue
        a, v = delong_variance(y_arr[m], p_arr[m])
        if not v > 0:
            left_out[str(level)] = "zero DeLong variance (perfect separation)"
            continue
        est.append(a)
        var.append(v)
        used.append(str(level))
    method = "Cochran's Q on subgroup AUROCs (DeLong variances)"
    if len(used) < 2:
        return Heterogeneity(math.nan, method=method, n=len(used), levels=used, left_out=left_out,
                             not_estimable=f"{len(used)} estimable subgroup(s) < 2: no test")
    res = cochran_q(est, var, method=method)
    return Heterogeneity(res.value, method=method, n=res.n, df=res.df, p_value=res.p_value, i2=res.i2,
                         pooled=res.pooled, levels=used, left_out=left_out)
