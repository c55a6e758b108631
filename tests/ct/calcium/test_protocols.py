"""The seed-000 fairness table: metrics and gaps per subgroup, with the evaluation's bootstrap intervals."""

import numpy as np
import pandas as pd
import pytest

from riskfm.ct.calcium.protocols import FAIRNESS_METRICS, add_subgroups, fairness_table
from riskfm.evaluate import fairness_gaps


@pytest.fixture
def exams():
    rng = np.random.default_rng(3)
    n = 40
    ref = rng.choice([0.0, 5.0, 50.0, 150.0, 500.0], n)
    return add_subgroups(pd.DataFrame({"reference": ref, "predicted": ref + rng.normal(0, 20, n),
                                       "sex": rng.choice(["F", "M"], n), "age": rng.integers(35, 80, n),
                                       "eat_ml": rng.random(n) * 100}))


def test_gaps_and_intervals_come_from_the_evaluation(exams):
    t = fairness_table(exams, n_resamples=200, seed=4)
    assert list(t.columns) == ["attribute", "group", "n", "mae", "rmse", "bias",
                               "gap_mae", "gap_mae_low", "gap_mae_high", "gap_rmse", "gap_rmse_low",
                               "gap_rmse_high", "gap_bias", "gap_bias_low", "gap_bias_high"]
    assert list(dict.fromkeys(t["attribute"])) == ["sex", "age", "cac_drs", "eat"]
    for m in FAIRNESS_METRICS:
        ref = fairness_gaps(exams, "group_age", m, columns=("reference", "predicted"), n_resamples=200, seed=4,
                            min_n=1, levels=["<=50", "51-65", ">65"]).table.iloc[:-1]
        age = t[t["attribute"] == "age"]
        assert age[m].to_numpy() == pytest.approx(ref["metric_value"].to_numpy())
        assert age[f"gap_{m}"].to_numpy() == pytest.approx(ref["gap"].to_numpy())
        assert age[f"gap_{m}_low"].to_numpy() == pytest.approx(ref["ci_low"].to_numpy())
        assert age[f"gap_{m}_high"].to_numpy() == pytest.approx(ref["ci_high"].to_numpy())
    ok = t["n"] > 0
    assert (t.loc[ok, "gap_mae_low"] < t.loc[ok, "gap_mae_high"]).all()
    # seeded: the same seed, the same intervals; another seed, other intervals (same gaps)
    again = fairness_table(exams, n_resamples=200, seed=4)
    pd.testing.assert_frame_equal(t, again)
    other = fairness_table(exams, n_resamples=200, seed=5)
    assert np.allclose(other["gap_mae"], t["gap_mae"], equal_nan=True)
    assert not np.allclose(other["gap_mae_low"], t["gap_mae_low"], equal_nan=True)


def test_point_values_match_the_seed_000_definitions():
    df = pd.DataFrame({"reference": [0, 50, 150, 500, 0, 50], "predicted": [10, 50, 100, 600, 0, 40],
                       "sex": ["M", "M", "F", "F", "M", "F"], "age": [45, 60, 70, 55, 50, 66],
                       "eat_ml": [10, 20, 30, 40, 50, 60]})
    t = fairness_table(add_subgroups(df), n_resamples=50)
    sex = t[t.attribute == "sex"].set_index("group")
    err_f, err_m = np.array([-50, 100, -10]), np.array([10, 0, 0])
    assert sex.loc["F", "rmse"] == pytest.approx(np.sqrt(np.mean(err_f ** 2)))
    assert sex.loc["M", "gap_bias"] == pytest.approx(err_m.mean() - err_f.mean())
    drs = t[t.attribute == "cac_drs"].set_index("group")
    assert list(drs["n"]) == [2, 2, 1, 1]
    assert drs["gap_mae"].to_numpy() == pytest.approx(drs["mae"].to_numpy() - np.median(drs["mae"]))


def test_empty_levels_and_missing_columns():
    df = add_subgroups(pd.DataFrame({"reference": [0.0, 10.0, 20.0, 30.0], "predicted": [1.0, 12.0, 18.0, 33.0],
                                     "sex": ["F", "F", "M", "M"], "age": [30, 40, 45, 48]}))
    t = fairness_table(df, n_resamples=20)
    age = t[t.attribute == "age"].set_index("group")
    assert list(age["n"]) == [4, 0, 0] and np.isnan(age.loc["51-65", "mae"])
    assert age["gap_mae"].isna().all()  # one non-empty level: nothing to compare with
    with pytest.raises(ValueError, match="none of the group columns"):
        fairness_table(df, groups=("group_site",))
    with pytest.raises(ValueError, match="'predicted' is missing"):
        fairness_table(df.drop(columns="predicted"))
