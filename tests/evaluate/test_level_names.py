"""Subgroup levels that print the same (1 and "1") are refused, not shown as two rows with one name."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from riskfm.evaluate._checks import check_level_names
from riskfm.evaluate.fairness import fairness_gaps
from riskfm.evaluate.subgroups import subgroup_metrics


def _data(groups):
    rng = np.random.default_rng(0)
    n = len(groups)
    return (rng.random(n) < 0.4).astype(float), rng.random(n)


def test_check_level_names_names_the_attribute_and_both_levels():
    check_level_names(["F", "M", 1, 2.5, None], "sex")  # distinct texts: fine
    check_level_names([], "sex")
    with pytest.raises(ValueError, match=r"^site: levels 1 and '1' both print as '1'; give the column one type$"):
        check_level_names([1, "A", "1"], "site")
    with pytest.raises(ValueError, match=r"^age: levels 'x' and 'x' both print as 'x'"):
        check_level_names(["x", "y", "x"], "age")


def test_subgroup_metrics_refuses_mixed_types_that_print_the_same():
    g = np.array(["1" if i % 2 else 1 for i in range(120)], dtype=object)
    y, p = _data(g)
    with pytest.raises(ValueError, match=r"^sex: levels 1 and '1' both print as '1'"):
        subgroup_metrics(y, p, g, attribute="sex", n_boot=10)
    with pytest.raises(ValueError, match=r"^subgroup: levels"):  # the default attribute name
        subgroup_metrics(y, p, g, n_boot=10)
    # One type: two levels, each its own row.
    t = subgroup_metrics(y, p, np.where(np.arange(120) % 2, "1", "2"), attribute="sex", n_boot=10)
    assert t["level"].tolist() == ["All", "1", "2"]


def test_fairness_gaps_refuses_mixed_types_that_print_the_same():
    g = np.array(["1" if i % 2 else 1 for i in range(120)], dtype=object)
    y, p = _data(g)
    frame = pd.DataFrame({"site": g, "y_true": y, "y_prob": p})
    with pytest.raises(ValueError, match=r"^site: levels 1 and '1' both print as '1'"):
        fairness_gaps(frame, "site", "auroc", n_resamples=10)
    with pytest.raises(ValueError, match=r"^site: levels 1 and '1' both print as '1'"):
        fairness_gaps(frame.assign(site=np.where(np.arange(120) % 2, "1", "2")), "site", "auroc",
                      levels=[1, "1"], n_resamples=10)
    cat = frame.assign(site=pd.Categorical(np.where(np.arange(120) % 2, "A", "B"), categories=["B", "A", "C"]))
    assert fairness_gaps(cat, "site", "auroc", n_resamples=10, min_events=5,
                         min_nonevents=5).table["level"].tolist()[:2] == ["B", "A"]
