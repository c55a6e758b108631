"""Tests written for mutants of riskfm/evaluate that survived `make mutate` (docs/testing.md).

Each asserts what a user relies on: the error that names the argument, the edge a threshold
stops at, the columns and types of a result table, that a figure is drawn and saved.
"""

import math

import numpy as np
import pytest

from riskfm.evaluate import decision_curve

Y = np.array([0, 0, 1, 1, 0, 1])
P = np.array([0.1, 0.4, 0.35, 0.8, 0.05, 0.6])


# ---- decision_curve -----------------------------------------------------------------------------

def test_decision_curve_errors_name_the_argument():
    with pytest.raises(ValueError, match=r"^p must be finite"):
        decision_curve([0, 1], [0.1, math.nan])
    with pytest.raises(ValueError, match=r"^thresholds must be finite"):
        decision_curve(Y, P, thresholds=[0.1, math.nan])
    with pytest.raises(ValueError, match=r"^y and p must have the same length, got 3, 2$"):
        decision_curve([0, 1, 1], [0.2, 0.3])
    with pytest.raises(ValueError, match=r"^y and p must have the same length, got 2, 3$"):
        decision_curve([0, 1], [0.2, 0.3, 0.4])
    with pytest.raises(ValueError, match=r"^y and p are empty$"):
        decision_curve([], [])


def test_decision_curve_of_one_patient_is_computed():
    dc = decision_curve([1], [0.3], thresholds=[0.2, 0.5])
    assert dc.n == 1 and dc.prevalence == 1.0
    # treated at 20% (a true positive: net benefit 1), not at 50% (0)
    assert dc.table["net_benefit"].tolist() == [1.0, 0.0]


@pytest.mark.parametrize("bad", [[0.5, 1.0], [0.0, 0.5], [1.5], [-0.1]])
def test_decision_curve_thresholds_must_lie_strictly_inside_0_1(bad):
    with pytest.raises(ValueError, match=r"^threshold probabilities must lie strictly between 0 and 1$"):
        decision_curve(Y, P, thresholds=bad)


def test_decision_curve_table_columns_and_treat_none():
    dc = decision_curve(Y, P, thresholds=[0.25, 0.5])
    assert list(dc.table.columns) == ["threshold", "net_benefit", "treat_all", "treat_none"]
    assert dc.table["treat_none"].dtype == np.float64 and dc.table["treat_none"].tolist() == [0.0, 0.0]
    assert dc.table["threshold"].tolist() == [0.25, 0.5]


def test_decision_curve_plot_draws_and_saves(tmp_path):
    dc = decision_curve(Y, P)
    fig = dc.plot()
    assert fig.axes and len(fig.axes[0].lines) >= 3  # model, treat all, treat none
    out = tmp_path / "dc.png"
    fig2 = dc.plot(out, title="MACE at 30 days")  # keywords reach the figure function
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and fig2.axes
    assert fig2.axes[0].get_title(loc="left") == "MACE at 30 days"  # the house style titles on the left
