"""Cochran's Q of subgroup AUROCs against statsmodels' meta-analysis and hand-computed DeLong variances."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import chi2
from sklearn.metrics import roc_auc_score
from statsmodels.stats.meta_analysis import combine_effects

from riskfm.evaluate.heterogeneity import cochran_q, subgroup_heterogeneity


def test_cochran_q_matches_statsmodels():
    theta = np.array([0.71, 0.83, 0.76, 0.64])
    var = np.array([0.0012, 0.0030, 0.0009, 0.0021])
    ref = combine_effects(theta, var, use_t=False)
    res = cochran_q(theta, var)
    assert res.value == pytest.approx(ref.q, rel=1e-12)
    assert res.i2 == pytest.approx(ref.i2, rel=1e-12)
    assert res.pooled == pytest.approx(ref.mean_effect_fe, rel=1e-12)
    assert res.df == 3 and res.n == 4
    assert res.p_value == pytest.approx(chi2.sf(ref.q, 3), rel=1e-12)


def test_cochran_q_by_hand_and_edges():
    # two estimates 0.7, 0.8 with variance 0.001: pooled 0.75, Q = 2 * 0.05^2 / 0.001 = 5
    res = cochran_q([0.7, 0.8], [0.001, 0.001])
    assert res.value == pytest.approx(5.0) and res.pooled == pytest.approx(0.75)
    assert res.p_value == pytest.approx(math.erfc(math.sqrt(2.5)))  # chi-square(1) upper tail at 5
    assert res.i2 == pytest.approx(0.8)
    # identical estimates: Q = 0, I2 = 0, p = 1
    same = cochran_q([0.7, 0.7, 0.7], [0.001, 0.002, 0.003])
    assert same.value == 0.0 and same.i2 == 0.0 and same.p_value == 1.0
    one = cochran_q([0.7], [0.001])
    assert math.isnan(one.value) and "no test" in one.not_estimable
    with pytest.raises(ValueError, match="variances must be > 0"):
        cochran_q([0.7, 0.8], [0.001, 0.0])
    with pytest.raises(ValueError, match="2 estimates but 3 variances"):
        cochran_q([0.7, 0.8], [0.001, 0.1, 0.2])


def _delong_variance_by_hand(y, p):
    pos, neg = p[y == 1], p[y == 0]
    psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    return psi.mean(), v10.var(ddof=1) / len(pos) + v01.var(ddof=1) / len(neg)


def test_subgroup_q_uses_the_subgroup_aurocs_and_delong_variances():
    rng = np.random.default_rng(0)
    n = 600
    g = rng.choice(["a", "b", "c", "d"], n)
    y = rng.integers(0, 2, n)
    shift = np.select([g == "a", g == "b", g == "c"], [1.5, 0.8, 0.3], 0.0)
    p = 1 / (1 + np.exp(-(shift * (2 * y - 1) + rng.normal(size=n))))
    p = np.round(p, 2)  # ties
    y[(g == "d")] = 0
    y[np.flatnonzero(g == "d")[:5]] = 1  # 5 events: left out by the small-sample rule
    est, var = zip(*(_delong_variance_by_hand(y[g == lv], p[g == lv]) for lv in "abc"))
    for lv, e in zip("abc", est):
        assert e == pytest.approx(roc_auc_score(y[g == lv], p[g == lv]))
    ref = combine_effects(np.array(est), np.array(var), use_t=False)
    res = subgroup_heterogeneity(y, p, g)
    assert res.levels == ["a", "b", "c"] and res.left_out == {"d": "5 events < 10"}
    assert res.value == pytest.approx(ref.q, rel=1e-9)
    assert res.p_value == pytest.approx(chi2.sf(ref.q, 2), rel=1e-9)
    assert res.p_value < 0.01  # the subgroups were built to differ
    # a single estimable subgroup: no test, with the reason
    only = subgroup_heterogeneity(y[g == "a"], p[g == "a"], g[g == "a"])
    assert math.isnan(only.value) and only.not_estimable.startswith("1 estimable")
