"""Tests written for mutants of riskfm/evaluate/risk_groups.py that survived mutmut (docs/testing.md).

Statistics are compared with statsmodels (Wilson interval), lifelines (Kaplan-Meier, log-rank)
or a hand-worked value; errors are matched whole.
"""

import math
import re

import numpy as np
import pandas as pd
import pytest
from lifelines import KaplanMeierFitter
from lifelines.statistics import multivariate_logrank_test
from statsmodels.stats.proportion import proportion_confint

from riskfm.evaluate.risk_groups import (
    CumulativeIncidence,
    assign_risk_groups,
    cumulative_incidence_by_group,
    incidence_threshold,
    order_groups,
    reliability_table,
    risk_bin_edges,
    wilson_interval,
)


def full(text: str) -> str:
    return "^" + re.escape(text) + "$"


# ---- incidence threshold and groups -------------------------------------------------------------

def test_incidence_threshold_worked_example_and_errors():
    t = incidence_threshold(list(np.arange(1, 11) / 10), 0.2)
    # 0.8 quantile of 0.1 .. 1.0: position 0.8 * 9 = 7.2 between 0.8 and 0.9
    assert type(t) is float and t == pytest.approx(0.82, abs=1e-12)
    assert incidence_threshold([0.3], 0.5) == 0.3
    with pytest.raises(ValueError, match=full("p_train is empty")):
        incidence_threshold([], 0.5)
    for bad in (0.0, 1.0, -0.1, 1.2):
        with pytest.raises(ValueError, match=full(f"prevalence must be strictly between 0 and 1, got {bad}")):
            incidence_threshold([0.1, 0.2], bad)
    with pytest.raises(ValueError, match=r"^p_train must be finite"):
        incidence_threshold([0.1, math.inf], 0.5)


def test_assign_risk_groups_puts_a_risk_on_the_cut_off_above_it():
    p = [0.1, 0.2, 0.3, 0.5, 0.7]
    assert assign_risk_groups(p, 0.3).tolist() == ["low", "low", "high", "high", "high"]
    assert assign_risk_groups(p, [0.3]).tolist() == ["low", "low", "high", "high", "high"]
    assert assign_risk_groups(p, (0.2, 0.5)).tolist() == ["low", "intermediate", "intermediate", "high", "high"]
    with pytest.raises(ValueError, match=full("thresholds must be one number or two increasing numbers, "
                                              "got [0.1, 0.2, 0.3]")):
        assign_risk_groups(p, [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match=full("thresholds must be one number or two increasing numbers, got []")):
        assign_risk_groups(p, [])
    with pytest.raises(ValueError, match=r"^thresholds must be one number or two increasing numbers, got \[\[0.1"):
        assign_risk_groups(p, [[0.1, 0.2]])
    with pytest.raises(ValueError, match=full("thresholds must be finite, got [0.1, nan]")):
        assign_risk_groups(p, [0.1, math.nan])
    with pytest.raises(ValueError, match=full("thresholds must be finite, got [nan]")):
        assign_risk_groups(p, None)  # a missing cut-off (e.g. an empty config value): named, not a TypeError
    with pytest.raises(ValueError, match=full("thresholds must be strictly increasing, got [0.3, 0.3]")):
        assign_risk_groups(p, [0.3, 0.3])
    with pytest.raises(ValueError, match=full("thresholds must be strictly increasing, got [0.5, 0.3]")):
        assign_risk_groups(p, [0.5, 0.3])
    with pytest.raises(ValueError, match=r"^p must be finite"):
        assign_risk_groups([math.nan], 0.3)


def test_order_groups_known_labels_first_then_the_rest_sorted_as_text():
    assert order_groups(["high", 10, "b", "low", 2, "high", "a"]) == ["low", "high", 10, 2, "a", "b"]
    assert order_groups(["intermediate", "high", "low"]) == ["low", "intermediate", "high"]
    assert order_groups([]) == []


# ---- Wilson interval and bins ------------------------------------------------------------------

def test_wilson_interval_matches_statsmodels_with_default_95_percent():
    k, n = np.array([0, 1, 3, 7, 7]), np.array([7, 7, 7, 7, 20])
    low, high = wilson_interval(k, n)
    ref_low, ref_high = proportion_confint(k, n, alpha=0.05, method="wilson")
    np.testing.assert_allclose(low, ref_low, rtol=0, atol=1e-12)
    np.testing.assert_allclose(high, ref_high, rtol=0, atol=1e-12)
    assert low[0] == 0.0 and high[3] == 1.0  # k = 0 and k = n: exactly the bound, no rounding
    lo80, hi80 = wilson_interval(3, 10, 0.8)
    r80 = proportion_confint(3, 10, alpha=0.2, method="wilson")
    assert (float(lo80), float(hi80)) == pytest.approx(r80, abs=1e-12)
    for k_bad, n_bad in ((0, 0), (-1, 5), (6, 5)):
        with pytest.raises(ValueError, match=full("wilson_interval needs 0 <= k <= n and n >= 1")):
            wilson_interval(k_bad, n_bad)
    assert wilson_interval(5, 5)[1] == 1.0 and wilson_interval(0, 1)[0] == 0.0
    # centre -/+ half rounds to -7e-18 for k = 0 of 21 and to 1 + 2e-16 for k = n = 16 (95%):
    # the bounds are still exactly 0 and 1
    assert wilson_interval(0, 21)[0] == 0.0 and wilson_interval(16, 16)[1] == 1.0


def test_risk_bin_edges_uniform_are_exact_tenths_and_errors():
    edges = risk_bin_edges([0.0, 0.3, 1.0], 10, "uniform")
    assert edges.tolist() == [i / 10 for i in range(11)] and edges[3] == 0.3
    assert risk_bin_edges([0.5], 1, "uniform").tolist() == [0.0, 1.0]
    for bad in (0, 2.5, -1):
        with pytest.raises(ValueError, match=full(f"n_bins must be a positive integer, got {bad!r}")):
            risk_bin_edges([0.5], bad)
    with pytest.raises(ValueError, match=r"^p must be finite; 1 of 2 values"):
        risk_bin_edges([0.5, math.nan])
    with pytest.raises(ValueError, match=full("strategy must be one of ('quantile', 'uniform'), got 'width'")):
        risk_bin_edges([0.5], 2, "width")
    with pytest.raises(ValueError, match=full("uniform bins need predicted risks in [0, 1]")):
        risk_bin_edges([-0.1, 0.5], 2, "uniform")
    with pytest.raises(ValueError, match=full("uniform bins need predicted risks in [0, 1]")):
        risk_bin_edges([0.5, 1.1], 2, "uniform")


def test_risk_bin_edges_quantile_default_ten_and_ties():
    p = np.arange(21) / 20
    np.testing.assert_allclose(risk_bin_edges(p), np.quantile(p, np.arange(11) / 10), rtol=0, atol=1e-15)
    assert risk_bin_edges([0.4, 0.4, 0.4], 4).tolist() == [0.4, 0.4]  # identical: one bin
    # n = 11, 10 bins: every edge an order statistic, exactly (0.5 stays 0.5)
    eleven = np.array([0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.5, 0.7, 0.8, 0.9, 1.0])
    assert risk_bin_edges(eleven, 10).tolist() == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 0.8, 0.9, 1.0]
    three = risk_bin_edges([0.0, 0.2, 1.0], 4)  # interpolated edges: 0.5 and 1.5 of the way
    np.testing.assert_allclose(three, [0.0, 0.1, 0.2, 0.6, 1.0], rtol=0, atol=1e-15)


def test_reliability_table_by_hand():
    y = [0, 1, 0, 1, 1, 0]
    p = [0.05, 0.1, 0.3, 0.35, 0.95, 0.9]
    tab = reliability_table(y, p, n_bins=2, strategy="uniform", confidence=0.9)
    assert list(tab.columns) == ["bin_low", "bin_high", "n", "n_events", "mean_predicted", "observed_rate",
                                 "ci_low", "ci_high"]
    assert tab["n"].tolist() == [4, 2] and tab["n_events"].tolist() == [2, 1]
    assert tab["n"].dtype.kind == "i" and tab["n_events"].dtype.kind == "i"  # counts, not floats
    assert tab["mean_predicted"].tolist() == pytest.approx([0.2, 0.925])
    ref = proportion_confint([2, 1], [4, 2], alpha=0.1, method="wilson")
    np.testing.assert_allclose(tab["ci_low"], ref[0], atol=1e-12)
    np.testing.assert_allclose(tab["ci_high"], ref[1], atol=1e-12)
    # an empty bin is left out; the maximum (1.0) lands in the last bin
    sparse = reliability_table([0, 1, 1], [0.05, 0.95, 1.0], n_bins=4, strategy="uniform")
    assert sparse["bin_low"].tolist() == [0.0, 0.75] and sparse["n"].tolist() == [1, 2]
    default = reliability_table(np.r_[np.zeros(50), np.ones(50)], np.linspace(0, 1, 100))
    assert len(default) == 10 and default["n"].tolist() == [10] * 10  # 10 quantile bins


# ---- cumulative incidence ----------------------------------------------------------------------

T = np.array([1.0, 2.0, 2.0, 4.0, 5.0, 7.0, 3.0, 3.0, 6.0, 8.0, 9.0, 10.0])
E = np.array([1, 0, 1, 1, 0, 1, 0, 1, 0, 1, 0, 0])
G = np.array(["high"] * 6 + ["low"] * 6, dtype=object)


def test_cumulative_incidence_matches_lifelines_per_group_and_the_logrank_test():
    res = cumulative_incidence_by_group(T, E, G, confidence=0.9)
    assert res.groups == ["low", "high"] and res.confidence == 0.9
    assert (res.n, res.n_events, res.horizon_days) == (12, 6, None)
    assert res.method == "Kaplan-Meier (exponential Greenwood band)"
    for label in ("low", "high"):
        m = G == label
        kmf = KaplanMeierFitter(alpha=0.1).fit(T[m], E[m])
        curve = res.curves[label]
        assert list(curve.columns) == ["time_days", "incidence", "ci_low", "ci_high"]
        np.testing.assert_allclose(curve["time_days"], kmf.cumulative_density_.index.to_numpy(float))
        np.testing.assert_allclose(curve["incidence"], kmf.cumulative_density_.iloc[:, 0].to_numpy(), atol=1e-12)
        band = kmf.confidence_interval_cumulative_density_.to_numpy(float)
        np.testing.assert_allclose(curve["ci_low"], band.min(axis=1), atol=1e-12)
        np.testing.assert_allclose(curve["ci_high"], band.max(axis=1), atol=1e-12)
        assert (curve["ci_low"] <= curve["incidence"] + 1e-12).all()
    ref = multivariate_logrank_test(T, G.astype(str), E).p_value
    assert res.logrank_p == pytest.approx(ref, rel=1e-12)


def test_cumulative_incidence_horizon_censors_later_events():
    res = cumulative_incidence_by_group(T, E, G, horizon_days=5)
    assert res.horizon_days == 5.0 and type(res.horizon_days) is float
    assert res.n_events == 4 and res.max_time_days == 5.0  # events on days 1, 2, 3, 4 (5 is censored)
    kmf = KaplanMeierFitter().fit(np.minimum(T[G == "high"], 5), np.where(T[G == "high"] <= 5, E[G == "high"], 0))
    np.testing.assert_allclose(res.curves["high"]["incidence"], kmf.cumulative_density_.iloc[:, 0], atol=1e-12)


def test_cumulative_incidence_logrank_needs_two_groups_and_an_event():
    assert cumulative_incidence_by_group(T, E, np.full(12, "all")).logrank_p is None
    assert cumulative_incidence_by_group(T, np.zeros(12), G).logrank_p is None
    one_event = np.zeros(12)
    one_event[0] = 1
    assert cumulative_incidence_by_group(T, one_event, G).logrank_p is not None


def test_numbers_at_risk_and_longest_follow_up():
    res = cumulative_incidence_by_group(T, E, G)
    tab = res.at_risk([0, 3, 3.5, 10, 11])
    assert list(tab.index) == ["low", "high"] and list(tab.columns) == [0.0, 3.0, 3.5, 10.0, 11.0]
    # follow-up >= t: low 3, 3, 6, 8, 9, 10 ; high 1, 2, 2, 4, 5, 7
    assert tab.loc["low"].tolist() == [6, 6, 4, 1, 0] and tab.loc["high"].tolist() == [6, 3, 3, 0, 0]
    assert tab.dtypes.map(lambda d: d.kind).tolist() == ["i"] * 5
    days = res.at_risk([0, 3, 10]).columns  # whole days given as ints: the columns are float days
    assert days.dtype == np.float64 and days.tolist() == [0.0, 3.0, 10.0]
    assert res.max_time_days == 10.0 and type(res.max_time_days) is float
    assert CumulativeIncidence({}, None, 0.95).max_time_days == 0.0


def test_cumulative_incidence_plot_saves_and_passes_keywords(tmp_path):
    res = cumulative_incidence_by_group(T, E, G)
    fig = res.plot(tmp_path / "ci.png", title="MACE")
    assert (tmp_path / "ci.png").is_file()
    assert "MACE" in "".join(ax.get_title(loc=loc) for ax in fig.axes for loc in ("left", "center", "right"))


def test_cumulative_incidence_to_dict():
    d = cumulative_incidence_by_group(T, E, G, horizon_days=5).to_dict()
    assert d["horizon_days"] == 5.0 and d["n"] == 12 and set(d["curves"]) == {"low", "high"}
    assert "_durations" not in d


def test_cumulative_incidence_errors_name_the_problem():
    with pytest.raises(ValueError, match=full("groups must be 1-D, got shape (12, 1)")):
        cumulative_incidence_by_group(T, E, G.reshape(-1, 1))
    with pytest.raises(ValueError, match=full("time_days, event and groups must have the same length, got 12, 12, 11")):
        cumulative_incidence_by_group(T, E, G[:11])
    with pytest.raises(ValueError, match=full("time_days, event and groups are empty")):
        cumulative_incidence_by_group([], [], [])
    with pytest.raises(ValueError, match=full("time_days must be >= 0; 2 negative values")):
        cumulative_incidence_by_group(np.r_[-1.0, -0.5, 0.0, 0.5, T[4:]], E, G)  # 0 and 0.5 are fine
    with pytest.raises(ValueError, match=full("groups has 2 missing labels")):
        cumulative_incidence_by_group(T, E, np.r_[[None, np.nan], G[2:]])
    with pytest.raises(ValueError, match=r"^confidence must be in \(0, 1\), got 1.0$"):
        cumulative_incidence_by_group(T, E, G, confidence=1.0)
    with pytest.raises(ValueError, match=r"^time_days must be finite"):
        cumulative_incidence_by_group(np.r_[math.nan, T[1:]], E, G)
    with pytest.raises(ValueError, match=r"^event must be binary"):
        cumulative_incidence_by_group(T, np.r_[2, E[1:]], G)
    assert isinstance(cumulative_incidence_by_group(T, E, pd.Series(G)).curves["low"], pd.DataFrame)


def test_group_labels_keep_their_type():
    # mixed labels stay as given (an object array), not turned into text
    res = cumulative_incidence_by_group(T, E, [1] * 6 + ["x"] * 6)
    assert res.groups == [1, "x"] and res.at_risk([0]).loc[1].tolist() == [6]
