"""Tests written for mutants of riskfm/evaluate/_checks.py that survived mutmut (docs/testing.md).

Every statistic of riskfm.evaluate validates its input here, so these pin the whole message
(the argument it names, the counts and positions it gives), the bounds at their edges, the
returned types, and the normal quantile against SciPy's ``norm.ppf``.
"""

import math

import numpy as np
import pytest
from scipy.stats import norm

from riskfm.evaluate._checks import (
    as_binary_1d,
    as_finite_1d,
    check_binary_scores,
    check_confidence,
    check_masks,
    check_n_boot,
    check_paired,
    check_risks,
    check_same_length,
    check_survival,
    z_value,
)


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.5, 1.5, math.nan])
def test_confidence_must_lie_strictly_inside_0_1(bad):
    with pytest.raises(ValueError, match=rf"^confidence must be in \(0, 1\), got {bad}$"):
        check_confidence(bad)


def test_confidence_is_returned_as_a_float_and_z_matches_scipy():
    out = check_confidence(np.float32(0.5))
    assert type(out) is float and out == 0.5
    for conf in (0.5, 0.8, 0.9, 0.95, 0.99, 1e-9, 1 - 1e-9):
        assert z_value(conf) == pytest.approx(norm.ppf(0.5 + conf / 2), rel=1e-12)
    assert type(z_value(0.95)) is float and z_value(0.95) == pytest.approx(1.959963984540054, rel=1e-14)
    with pytest.raises(ValueError, match=r"^confidence must be in \(0, 1\), got 1$"):
        z_value(1)


def test_n_boot_bounds_and_messages():
    assert check_n_boot(1) == 1 and type(check_n_boot(5.0)) is int and check_n_boot(np.int64(7)) == 7
    for bad in (0, -3, 2.5):
        with pytest.raises(ValueError, match=rf"^n_boot must be a positive integer, got {bad!r}$"):
            check_n_boot(bad)
    assert check_n_boot(10, minimum=10) == 10
    with pytest.raises(ValueError, match=r"^n_perm must be an integer >= 10, got 9$"):
        check_n_boot(9, minimum=10, name="n_perm")
    with pytest.raises(ValueError, match=r"^size must be a positive integer, got 0$"):
        check_n_boot(0, name="size")


def test_as_finite_1d_messages_name_the_argument_count_and_first_position():
    out = as_finite_1d([1, 2], "x")
    assert out.dtype == np.float64 and out.tolist() == [1.0, 2.0]
    assert as_finite_1d([], "x").shape == (0,)
    with pytest.raises(ValueError, match=r"^x must be 1-D, got shape \(2, 1\)$"):
        as_finite_1d([[1], [2]], "x")
    with pytest.raises(ValueError, match=r"^x must be 1-D, got shape \(\)$"):
        as_finite_1d(3.0, "x")
    with pytest.raises(ValueError, match=r"^x must be numeric, got dtype <U1$"):
        as_finite_1d(["a", "b"], "x")
    with pytest.raises(ValueError, match=r"^x must be numeric, got dtype object$") as info:
        as_finite_1d(np.array([1.0, None, object()], dtype=object), "x")
    assert isinstance(info.value.__cause__, (TypeError, ValueError))
    with pytest.raises(ValueError, match=r"^score must be finite; 2 of 4 values are NaN or infinite "
                                         r"\(first at index 1\)$"):
        as_finite_1d([0.0, math.inf, 1.0, math.nan], "score")
    with pytest.raises(ValueError, match=r"^score must be finite; 1 of 1 values are NaN or infinite "
                                         r"\(first at index 0\)$"):
        as_finite_1d([-math.inf], "score")


def test_as_binary_1d_lists_the_other_values():
    out = as_binary_1d([True, False, 1], "y")
    assert out.dtype == np.float64 and out.tolist() == [1.0, 0.0, 1.0]
    with pytest.raises(ValueError, match=r"^y must be binary 0/1; found other values \[-1.0, 0.5, 2.0, 3.0, 4.0\]$"):
        as_binary_1d([0, 1, 4, 3, 2, 0.5, -1, 7, 2], "y")  # the 5 smallest, once each
    with pytest.raises(ValueError, match=r"^y must be finite; 1 of 2 values are NaN or infinite"):
        as_binary_1d([0, math.nan], "y")


def test_check_same_length_names_every_array_and_length():
    assert check_same_length() == 0
    assert check_same_length(a=[1, 2], b=np.zeros(2)) == 2
    with pytest.raises(ValueError, match=r"^a and b must have the same length, got 2, 3$"):
        check_same_length(a=[1, 2], b=[1, 2, 3])
    with pytest.raises(ValueError, match=r"^a, b and c must have the same length, got 1, 1, 2$"):
        check_same_length(a=[1], b=[1], c=[1, 2])


def test_check_binary_scores_messages_and_types():
    y, p = check_binary_scores([0, 1.0, 1], [0.1, 2, 3])
    assert y.dtype == bool and y.tolist() == [False, True, True] and p.dtype == np.float64
    yb, _ = check_binary_scores(np.array([True, False]), [1, 2])
    assert yb.dtype == bool and yb.tolist() == [True, False]
    with pytest.raises(ValueError, match=r"^lab must be 1-D, got shape \(1, 2\)$"):
        check_binary_scores([[0, 1]], [0.1, 0.2], name_y="lab")
    with pytest.raises(ValueError, match=r"^risk must be 1-D, got shape \(2, 1\)$"):
        check_binary_scores([0, 1], [[0.1], [0.2]], name_p="risk")
    with pytest.raises(ValueError, match=r"^lab and risk must have the same length, got 2 and 3$"):
        check_binary_scores([0, 1], [0.1, 0.2, 0.3], name_y="lab", name_p="risk")
    with pytest.raises(ValueError, match=r"^lab and risk are empty$"):
        check_binary_scores([], [], name_y="lab", name_p="risk")
    with pytest.raises(ValueError, match=r"^risk must be finite; 1 of 2 values"):
        check_binary_scores([0, 1], [0.1, math.nan], name_p="risk")
    with pytest.raises(ValueError, match=r"^lab must be binary 0/1, got dtype <U1$"):
        check_binary_scores(["a", "b"], [0.1, 0.2], name_y="lab")
    with pytest.raises(ValueError, match=r"^lab contains 2 NaN \(unknown\) labels; exclude those rows first$"):
        check_binary_scores([0, math.nan, 1, math.nan], [0.1, 0.2, 0.3, 0.4], name_y="lab")
    with pytest.raises(ValueError, match=r"^lab must be binary 0/1; found other values \[2.0\]$"):
        check_binary_scores([0, 2], [0.1, 0.2], name_y="lab")


def test_check_risks_bounds_are_inclusive_and_messages_say_the_range():
    y, p = check_risks([0, 1], [0.0, 1.0])
    assert y.tolist() == [0.0, 1.0] and p.tolist() == [0.0, 1.0]
    with pytest.raises(ValueError, match=r"^p must be predicted risks in \[0, 1\]; found range \[-0.5, 0.5\]$"):
        check_risks([0, 1], [-0.5, 0.5])
    with pytest.raises(ValueError, match=r"^p must be predicted risks in \[0, 1\]; found range \[0.5, 1.25\]$"):
        check_risks([0, 1], [0.5, 1.25])
    with pytest.raises(ValueError, match=r"^y and p are empty$"):
        check_risks([], [])
    with pytest.raises(ValueError, match=r"^y and p must have the same length, got 1, 2$"):
        check_risks([0], [0.1, 0.2])
    with pytest.raises(ValueError, match=r"^y must be binary"):
        check_risks([0, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match=r"^p must be finite"):
        check_risks([0, 1], [0.1, math.nan])


def test_check_paired_flattens_and_names_the_bad_side():
    x, y = check_paired([[1, 2], [3, 4]], np.arange(4), "ref", "pred")
    assert x.dtype == np.float64 and x.shape == (4,) and y.dtype == np.float64 and y.tolist() == [0, 1, 2, 3]
    with pytest.raises(ValueError, match=r"^ref and pred must have the same length, got 2 and 3$"):
        check_paired([1, 2], [1, 2, 3], "ref", "pred")
    with pytest.raises(ValueError, match=r"^ref and pred are empty$"):
        check_paired([], [], "ref", "pred")
    with pytest.raises(ValueError, match=r"^ref holds NaN or infinite values \(position 2\)$"):
        check_paired([1, 2, math.inf], [1, 2, 3], "ref", "pred")
    with pytest.raises(ValueError, match=r"^pred holds NaN or infinite values \(position 1\)$"):
        check_paired([1, 2, 3], [1, math.nan, math.nan], "ref", "pred")


def test_check_survival_prefix_bounds_and_types():
    t, e = check_survival([0, 5.5], [1, 0])
    assert t.dtype == np.float64 and t.tolist() == [0.0, 5.5] and e.dtype == bool and e.tolist() == [True, False]
    with pytest.raises(ValueError, match=r"^train time_days and event must have the same length, got 2 and 1$"):
        check_survival([1, 2], [1], "train ")
    with pytest.raises(ValueError, match=r"^train time_days is empty$"):
        check_survival([], [], "train ")
    with pytest.raises(ValueError, match=r"^train time_days must be >= 0; 2 negative values$"):
        check_survival([-1, 0, -0.5], [1, 0, 0], "train ")
    with pytest.raises(ValueError, match=r"^train time_days must be finite"):
        check_survival([1, math.nan], [1, 0], "train ")
    with pytest.raises(ValueError, match=r"^train event must be binary"):
        check_survival([1, 2], [1, 2], "train ")
    with pytest.raises(ValueError, match=r"^time_days must be >= 0; 1 negative values$"):
        check_survival([-1], [1])


def test_check_masks_thresholds_at_zero_and_names_the_shapes():
    p, g = check_masks([[0, 2], [-1, 0.5]], [[1, 0], [0, 0]], "seg")
    assert p.dtype == bool and p.tolist() == [[False, True], [False, True]] and g.tolist() == [[True, False], [False, False]]
    with pytest.raises(ValueError, match=r"^seg: prediction shape \(2,\) differs from reference shape \(3,\)$"):
        check_masks([1, 0], [1, 0, 0], "seg")
    with pytest.raises(ValueError, match=r"^: prediction shape \(1,\) differs from reference shape \(2,\)$"):
        check_masks([1], [1, 0])  # no name given: nothing before the colon
