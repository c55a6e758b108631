"""Tests written for mutants of riskfm/evaluate/heterogeneity.py that survived mutmut (docs/testing.md).

Q, I^2 and the pooled value are compared with statsmodels' ``combine_effects``; the subgroup
AUROCs and variances with scikit-learn and a hand-written DeLong variance.
"""

import math
import re

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chi2
from sklearn.metrics import roc_auc_score
from statsmodels.stats.meta_analysis import combine_effects

from riskfm.evaluate.heterogeneity import Heterogeneity, cochran_q, subgroup_heterogeneity


def full(text: str) -> str:
    return "^" + re.escape(text) + "$"


def test_cochran_q_errors_whole():
    with pytest.raises(ValueError, match=full("2 estimates but 3 variances")):
        cochran_q([0.7, 0.8], [0.001, 0.1, 0.2])
    with pytest.raises(ValueError, match=full("estimates and variances must be finite")):
        cochran_q([0.7, math.nan], [0.001, 0.001])
    with pytest.raises(ValueError, match=full("estimates and variances must be finite")):
        cochran_q([0.7, 0.8], [0.001, math.inf])
    with pytest.raises(ValueError, match=full("variances must be > 0, got [0.0, -1.0]")):
        cochran_q([0.7, 0.8, 0.9], [0.0, 0.001, -1.0])


def test_cochran_q_without_a_test_and_the_method_text():
    for k in (0, 1):
        res = cochran_q([0.7] * k, [0.001] * k, method="mine")
        assert res.not_estimable == f"{k} subgroup(s) < 2: no test"
        assert (res.n, res.df, res.method, res.ci) == (k, 0, "mine", None)
        assert math.isnan(res.value) and math.isnan(res.p_value) and math.isnan(res.i2) and math.isnan(res.pooled)
    assert cochran_q([0.7, 0.8], [0.001, 0.002]).method == "Cochran's Q (inverse-variance weights)"
    assert cochran_q([0.7, 0.8], [0.001, 0.002], method="mine").method == "mine"
    assert Heterogeneity(1.0).method == "Cochran's Q (inverse-variance weights)"


@pytest.mark.parametrize(("theta", "var"), [
    ([0.70, 0.71, 0.705], [0.001, 0.002, 0.0015]),  # Q below its df: I^2 = 0
    ([[0.6, 0.9], [0.75, 0.8]], [[0.002, 0.003], [0.001, 0.004]]),  # 2-D input, flattened
    ([0.5, 0.9], [0.01, 0.0001]),
])
def test_cochran_q_matches_statsmodels(theta, var):
    t, v = np.ravel(theta), np.ravel(var)
    ref = combine_effects(t, v, use_t=False)
    res = cochran_q(theta, var)
    assert res.value == pytest.approx(ref.q, rel=1e-12)
    assert res.i2 == pytest.approx(max(0.0, ref.i2), abs=1e-12)
    assert res.pooled == pytest.approx(ref.mean_effect_fe, rel=1e-12)
    assert (res.n, res.df) == (len(t), len(t) - 1)
    assert res.p_value == pytest.approx(chi2.sf(ref.q, len(t) - 1), rel=1e-12)
    assert res.not_estimable is None and res.ci is None


def test_i2_is_zero_when_q_equals_its_df():
    # two estimates with Q exactly 1 = df: I^2 = (1 - 1) / 1 = 0
    res = cochran_q([0.0, 0.2], [0.02, 0.02])
    assert res.value == pytest.approx(1.0, rel=1e-12) and res.i2 == pytest.approx(0.0, abs=1e-12)


def _delong_by_hand(y, p):
    pos, neg = p[y == 1], p[y == 0]
    psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    return psi.mean(), psi.mean(axis=1).var(ddof=1) / len(pos) + psi.mean(axis=0).var(ddof=1) / len(neg)


def _cohort(n=300, seed=1):
    rng = np.random.default_rng(seed)
    g = rng.choice(["b", "a", "c"], n)
    y = rng.integers(0, 2, n)
    p = np.round(1 / (1 + np.exp(-(np.where(g == "a", 1.2, 0.4) * (2 * y - 1) + rng.normal(size=n)))), 2)
    return y, p, g


def test_subgroup_heterogeneity_fields_match_statsmodels_on_the_delong_variances():
    y, p, g = _cohort()
    est, var = zip(*(_delong_by_hand(y[g == lv], p[g == lv]) for lv in "abc"))
    ref = combine_effects(np.array(est), np.array(var), use_t=False)
    res = subgroup_heterogeneity(y, p, g)
    assert res.levels == ["a", "b", "c"] and res.left_out == {}
    assert res.method == "Cochran's Q on subgroup AUROCs (DeLong variances)"
    assert (res.n, res.df) == (3, 2) and res.not_estimable is None
    assert res.value == pytest.approx(ref.q, rel=1e-9)
    assert res.pooled == pytest.approx(ref.mean_effect_fe, rel=1e-9)
    assert res.i2 == pytest.approx(max(0.0, ref.i2), abs=1e-9)
    assert res.p_value == pytest.approx(chi2.sf(ref.q, 2), rel=1e-9)
    assert est[0] == pytest.approx(roc_auc_score(y[g == "a"], p[g == "a"]))


def test_subgroup_order_missing_groups_and_numeric_labels():
    y, p, g = _cohort()
    cat = pd.Series(pd.Categorical(g, categories=["c", "x", "a", "b"]))  # "x" is never used
    assert subgroup_heterogeneity(y, p, cat).levels == ["c", "a", "b"]
    g_missing = g.astype(object)
    g_missing[:40] = None
    g_missing[40:60] = np.nan
    res = subgroup_heterogeneity(y, p, g_missing)
    keep = np.arange(len(y)) >= 60
    ref = subgroup_heterogeneity(y[keep], p[keep], g[keep])
    assert res.levels == ["a", "b", "c"] and res.value == pytest.approx(ref.value, rel=1e-12)
    codes = np.select([g == "a", g == "b"], [10, 2], 3)
    assert subgroup_heterogeneity(y, p, codes).levels == ["10", "2", "3"]  # sorted as text, named as text


def test_subgroup_rules_leave_out_and_name_each_subgroup():
    y, p, g = _cohort()
    perfect = g == "c"
    p = p.copy()
    p[perfect] = np.where(y[perfect] == 1, 0.9, 0.1)  # AUROC 1: zero DeLong variance
    few = (g == "b") & (y == 1)
    y = y.copy()
    y[np.flatnonzero(few)[12:]] = 0  # 12 events left in "b"
    res = subgroup_heterogeneity(y, p, g)
    assert res.levels == ["a", "b"] and res.left_out == {"c": "zero DeLong variance (perfect separation)"}
    strict = subgroup_heterogeneity(y, p, g, min_events=13)
    assert strict.levels == ["a"] and strict.left_out["b"] == "12 events < 13"
    assert strict.not_estimable == "1 estimable subgroup(s) < 2: no test"
    assert (strict.n, strict.df, strict.method) == (1, 0, "Cochran's Q on subgroup AUROCs (DeLong variances)")
    assert math.isnan(strict.value) and math.isnan(strict.p_value)
    n_non_b = int(((g == "b") & (y == 0)).sum())
    nonev = subgroup_heterogeneity(y, p, g, min_nonevents=n_non_b + 1)
    assert nonev.left_out["b"] == f"{n_non_b} non-events < {n_non_b + 1}"
    assert "b" in subgroup_heterogeneity(y, p, g, min_nonevents=n_non_b).levels  # exactly at the floor: kept


def test_subgroup_default_floors_are_10_events_and_10_nonevents():
    y, p, g = _cohort()
    y = y.copy()
    b_pos = np.flatnonzero((g == "b") & (y == 1))
    y[b_pos[10:]] = 0  # exactly 10 events in "b": kept
    assert subgroup_heterogeneity(y, p, g).levels == ["a", "b", "c"]
    y[b_pos[9]] = 0  # 9: left out
    assert subgroup_heterogeneity(y, p, g).left_out == {"b": "9 events < 10"}
    c_neg = np.flatnonzero((g == "c") & (y == 0))
    y[c_neg[9:]] = 1  # 9 non-events in "c"
    assert subgroup_heterogeneity(y, p, g).left_out["c"] == "9 non-events < 10"


def test_subgroup_lengths_must_agree():
    with pytest.raises(ValueError, match=full("y (3), p (2) and groups (3) differ in length")):
        subgroup_heterogeneity([0, 1, 0], [0.1, 0.2], ["a", "a", "b"])
    with pytest.raises(ValueError, match=full("y (2), p (2) and groups (3) differ in length")):
        subgroup_heterogeneity([0, 1], [0.1, 0.2], ["a", "a", "b"])


def test_two_subgroups_are_enough_and_groups_may_be_a_list_or_a_series():
    y, p, g = _cohort()
    two = g != "c"
    res = subgroup_heterogeneity(y[two], p[two], g[two].tolist())  # a plain list
    est, var = zip(*(_delong_by_hand(y[g == lv], p[g == lv]) for lv in "ab"))
    ref = cochran_q(est, var)
    assert res.not_estimable is None and res.levels == ["a", "b"] and (res.n, res.df) == (2, 1)
    assert res.value == pytest.approx(ref.value, rel=1e-9) and res.p_value == pytest.approx(ref.p_value, rel=1e-9)
    series = subgroup_heterogeneity(y, p, pd.Series(g, dtype=object))  # a Series that is not categorical
    assert series.levels == ["a", "b", "c"]


def test_a_zero_variance_subgroup_first_does_not_stop_the_others():
    y, p, g = _cohort()
    p = p.copy()
    first = g == "a"
    p[first] = np.where(y[first] == 1, 0.9, 0.1)
    res = subgroup_heterogeneity(y, p, g)
    assert res.left_out == {"a": "zero DeLong variance (perfect separation)"} and res.levels == ["b", "c"]
    assert math.isfinite(res.value)
