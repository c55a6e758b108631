"""Fairness gaps with bootstrap intervals (riskfm.evaluate.fairness), the result shape and the input checks."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score, roc_auc_score

import riskfm.evaluate as ev
from riskfm.evaluate import Estimate, fairness_gaps
from riskfm.evaluate._checks import check_binary_scores, check_paired, check_same_length
from riskfm.evaluate.results import flat_row, jsonable, percentile_ci


def _scores(n: int = 240, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ref = rng.gamma(0.7, 200.0, n)
    pred = np.clip(ref * rng.normal(1.0, 0.25, n) + rng.normal(10, 15, n), 0, None)
    return pd.DataFrame({"sex": rng.choice(["F", "M"], n), "age": rng.choice(["<=50", "51-65", ">65"], n),
                         "reference": ref, "predicted": pred})


def _binary(n: int = 600, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(float)
    p = 1 / (1 + np.exp(-(rng.normal(size=n) + 1.2 * y - 1.0)))
    return pd.DataFrame({"site": rng.choice(["a", "b", "c"], n), "y_true": y, "y_prob": p})


def _resample_by_hand(df: pd.DataFrame, group: str, levels: list, n_resamples: int, seed: int, metric,
                      outcome: str | None = None) -> np.ndarray:
    """The documented scheme, written out: per level (and outcome), rng.integers(0, size, (B, size))."""
    rng = np.random.default_rng(seed)
    g = df[group].to_numpy(dtype=object)
    per_level = []
    for lv in levels:
        idx = np.flatnonzero(g == lv)
        parts = [idx] if outcome is None else [idx[df[outcome].to_numpy()[idx] == 1],
                                               idx[df[outcome].to_numpy()[idx] == 0]]
        per_level.append([part[rng.integers(0, len(part), size=(n_resamples, len(part)))] for part in parts])
    values = np.empty((n_resamples, len(levels)))
    for b in range(n_resamples):
        for j, mats in enumerate(per_level):
            values[b, j] = metric(df.iloc[np.concatenate([m[b] for m in mats])])
    return values


# ----------------------------------------------------------------------------------------- gaps


def test_binary_gaps_range_and_exact_percentile_intervals():
    df = _scores()
    res = fairness_gaps(df, "sex", "mae", min_n=1, n_resamples=300, seed=7)
    t = res.table.set_index("level")
    err = {lv: np.abs(d["predicted"] - d["reference"]).mean() for lv, d in df.groupby("sex")}
    assert t.loc["F", "metric_value"] == pytest.approx(err["F"], rel=1e-12)
    assert t.loc["F", "gap"] == pytest.approx(err["F"] - err["M"], rel=1e-12)  # Gap_g = M_g - M_~g
    assert t.loc["M", "gap"] == -t.loc["F", "gap"] and set(t["kind"]) == {"binary", "range"}
    assert res.value == t.loc["max - min", "gap"] == pytest.approx(abs(err["F"] - err["M"]), rel=1e-12)
    # Every interval is np.quantile of the stored resampled gaps at alpha / 2 and 1 - alpha / 2, to the last bit.
    alpha = 1 - 0.95
    for lv in ("F", "M", "max - min"):
        lo, hi = np.quantile(res.resamples[lv].to_numpy(), [alpha / 2, 1 - alpha / 2])
        assert (t.loc[lv, "ci_low"], t.loc[lv, "ci_high"]) == (lo, hi)
    assert res.ci == tuple(np.quantile(res.resamples["max - min"].to_numpy(), [alpha / 2, 1 - alpha / 2]))
    # ... and the resamples are those of the documented scheme (stratified by level, seeded).
    def mae(d):
        return float(np.abs(d["predicted"].to_numpy() - d["reference"].to_numpy()).mean())

    by_hand = _resample_by_hand(df, "sex", ["F", "M"], 300, 7, mae)
    np.testing.assert_allclose(res.resamples["F"], by_hand[:, 0] - by_hand[:, 1], rtol=0, atol=1e-9)
    np.testing.assert_allclose(res.resamples["max - min"], np.abs(by_hand[:, 0] - by_hand[:, 1]), rtol=0, atol=1e-9)


def test_same_seed_same_numbers_and_the_method_says_how():
    df = _scores()
    a = fairness_gaps(df, "age", "rmse", min_n=1, n_resamples=200, seed=3)
    b = fairness_gaps(df, "age", "rmse", min_n=1, n_resamples=200, seed=3)
    c = fairness_gaps(df, "age", "rmse", min_n=1, n_resamples=200, seed=4)
    pd.testing.assert_frame_equal(a.table, b.table)
    assert a.ci == b.ci and a.ci != c.ci and a.value == c.value  # the point estimates do not depend on the seed
    assert a.method == "stratified bootstrap (200 resamples) over patients" and a.n == len(df)
    d = a.to_dict()
    assert {"value", "ci", "method", "n", "levels"} <= set(d) and json.dumps(d)
    assert d["levels"]["51-65"]["kind"] == "median" and len(d["levels"]) == 3


def test_multilevel_median_gap_and_auroc_stratified_by_outcome():
    df = _binary()
    res = fairness_gaps(df, "site", "auroc", n_resamples=100, seed=0)
    t = res.table.set_index("level")
    auc = {lv: roc_auc_score(d["y_true"], d["y_prob"]) for lv, d in df.groupby("site")}
    med = np.median(list(auc.values()))
    for lv in auc:
        assert t.loc[lv, "metric_value"] == pytest.approx(auc[lv], abs=1e-12)
        assert t.loc[lv, "gap"] == pytest.approx(auc[lv] - med, abs=1e-12) and t.loc[lv, "reference"] == med
    assert t.loc["a", "n_pos"] == int(df.loc[df["site"] == "a", "y_true"].sum())
    by_hand = _resample_by_hand(df, "site", ["a", "b", "c"], 100, 0,
                                lambda d: roc_auc_score(d["y_true"], d["y_prob"]), outcome="y_true")
    np.testing.assert_allclose(res.resamples["max - min"], by_hand.max(axis=1) - by_hand.min(axis=1), atol=1e-12)
    np.testing.assert_allclose(res.resamples["b"], by_hand[:, 1] - np.median(by_hand, axis=1), atol=1e-12)


def test_protocol_metrics_match_the_calcium_fairness_table():
    """MAE, RMSE and bias gaps equal those of riskfm.ct.calcium.protocols.fairness_table (seed 000's definition)."""
    from riskfm.ct.calcium.protocols import add_subgroups, fairness_table

    rng = np.random.default_rng(5)
    n = 120
    ref = rng.gamma(0.6, 300.0, n)
    df = add_subgroups(pd.DataFrame({"sex": rng.choice(["F", "M"], n), "age": rng.integers(30, 90, n),
                                     "eat_ml": rng.normal(100, 20, n), "reference": ref,
                                     "predicted": np.clip(ref * rng.normal(1, 0.2, n), 0, None)}))
    old = fairness_table(df).set_index(["attribute", "group"])
    for attr in ("sex", "age", "cac_drs", "eat"):
        for metric in ("mae", "rmse", "bias"):
            res = fairness_gaps(df, f"group_{attr}", metric, min_n=1, n_resamples=20, attribute=attr)
            for r in res.estimable_rows().itertuples():
                if r.kind == "range":
                    continue
                assert r.metric_value == pytest.approx(old.loc[(attr, r.level), metric], rel=1e-12)
                assert r.gap == pytest.approx(old.loc[(attr, r.level), f"gap_{metric}"], rel=1e-9, abs=1e-9)


def test_kappa_mean_and_function_metrics_and_figure():
    rng = np.random.default_rng(2)
    n = 200
    a = rng.integers(0, 5, n)
    df = pd.DataFrame({"sex": rng.choice(["F", "M"], n), "reference": a,
                       "predicted": np.where(rng.random(n) < 0.7, a, rng.integers(0, 5, n)),
                       "dice": rng.uniform(0.5, 0.95, n)})
    k = fairness_gaps(df, "sex", "kappa", n_resamples=50).table.set_index("level")
    for lv, d in df.groupby("sex"):
        assert k.loc[lv, "metric_value"] == pytest.approx(cohen_kappa_score(d["reference"], d["predicted"]))
    dice = fairness_gaps(df, "sex", "mean", columns="dice", n_resamples=50).table.set_index("level")
    assert dice.loc["F", "metric_value"] == pytest.approx(df.loc[df["sex"] == "F", "dice"].mean())

    def median_dice(x):
        return float(np.median(x))

    custom = fairness_gaps(df, "sex", median_dice, columns=["dice"], n_resamples=50)
    assert custom.metric == "median_dice"
    assert custom.table.set_index("level").loc["M", "metric_value"] == np.median(df.loc[df["sex"] == "M", "dice"])
    fig = custom.plot(units="")
    assert fig.axes and fig.axes[0].get_xlabel() == "MEDIAN_DICE gap"


def test_levels_that_are_not_estimable_take_no_part():
    df = _binary(n=400)
    df.loc[df["site"] == "c", "y_true"] = 0.0
    df.loc[df.index[df["site"] == "c"][:2], "y_true"] = 1.0  # 2 events in site c
    res = fairness_gaps(df, "site", "auroc", n_resamples=30, levels=["a", "b", "c", "d"])
    t = res.table.set_index("level")
    assert t.loc["c", "not_estimable"] == "2 events < 10" and math.isnan(t.loc["c", "gap"])
    assert t.loc["d", "n"] == 0 and t.loc["d", "not_estimable"] == "no patients with a known outcome"
    assert t.loc["a", "kind"] == "median"  # four levels listed: not a binary attribute
    assert t.loc["a", "reference"] == pytest.approx(np.median([t.loc["a", "metric_value"], t.loc["b", "metric_value"]]))
    assert list(res.resamples.columns) == ["a", "b", "max - min"]


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"metric": "f2"}, "unknown metric"),
    ({"metric": "sensitivity"}, "needs a threshold"),
    ({"metric": "mae"}, r"column\(s\) \['reference', 'predicted'\] missing"),
    ({"metric": np.mean}, "needs columns="),
    ({"metric": "auroc", "n_resamples": 1}, "n_resamples must be an integer >= 2"),
    ({"metric": "auroc", "confidence": 1.5}, "confidence"),
])
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        fairness_gaps(_binary(n=60), "site", **kwargs)


# ----------------------------------------------------------------------------------------- one result shape


def test_every_public_result_has_value_ci_method_n_or_estimate_fields():
    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(40), np.ones(20)]
    p = np.clip(0.25 + 0.3 * y + rng.normal(0, 0.2, 60), 0.01, 0.99)
    singles = [ev.roc_auc(y, p, n_boot=20), ev.average_precision(y, p, n_boot=20), ev.delong_test(y, p, p ** 2),
               ev.paired_bootstrap_test(y, p, p ** 2, n_boot=20), ev.cohen_kappa(y, p > 0.5),
               ev.bland_altman(p, p + 0.1 * np.sin(np.arange(60))), ev.ks_test(p, p ** 2)]
    for r in singles:
        d = r.to_dict()
        assert list(d)[:4] == ["value", "ci", "method", "n"], type(r).__name__
        assert r.ci is None or (isinstance(r.ci, tuple) and len(r.ci) == 2 and all(isinstance(x, float) for x in r.ci))
        assert d["ci"] is None or d["ci"] == list(r.ci)
        json.dumps(d)
    composites = [ev.calibration(y, p), ev.threshold_metrics(y, p, 0.5), ev.decision_curve(y, p)]
    for r in composites:
        assert isinstance(r.method, str) and r.n == 60
        json.dumps(r.to_dict())
    assert flat_row(composites[1].to_dict())["sensitivity_ci_low"] == composites[1].sensitivity.ci[0]


def test_estimate_normalises_its_interval_and_flat_rows_spell_ci_low_high():
    assert Estimate(0.5, [0.4, 0.6]).ci == (0.4, 0.6)
    assert Estimate(0.5, (float("nan"), 0.6)).ci is None
    row = flat_row({"auroc": Estimate(0.8, (0.7, 0.9), "DeLong", 10).to_dict(), "ci": [1, 2], "loa": [-1, 1],
                    "n": 10, "survival": {"n": 3}})
    assert row == {"auroc": 0.8, "auroc_ci_low": 0.7, "auroc_ci_high": 0.9, "ci_low": 1, "ci_high": 2,
                   "loa_low": -1, "loa_high": 1, "n": 10, "survival_n": 3}
    assert jsonable({"x": (np.float32(1.5), np.nan), "y": np.int64(2)}) == {"x": [1.5, None], "y": 2}
    assert percentile_ci([np.nan, np.nan], 0.95) is None
    assert percentile_ci(np.arange(101.0), 0.9) == pytest.approx((5.0, 95.0), abs=1e-12)


def test_public_api_is_only_the_public_api():
    internals = {"delong_covariance", "delong_variance", "ordered_splits", "ordered_targets", "quantile_edges",
                 "order_groups", "bootstrap_aurocs", "check_binary_scores", "METRICS", "TARGETS", "REQUIRED_COLUMNS",
                 "OPTIONAL_COLUMNS", "metric_estimate", "risk_bin_edges", "not_estimable_text", "roc_curve_points"}
    assert not internals & set(ev.__all__)
    assert all(hasattr(ev, name) for name in ev.__all__)
    from riskfm.evaluate.discrimination import bootstrap_aurocs, delong_covariance  # noqa: F401  (still importable)
    from riskfm.evaluate.run_metrics import ordered_splits  # noqa: F401
    from riskfm.evaluate.subgroups import METRICS, quantile_edges  # noqa: F401


# ----------------------------------------------------------------------------------------- input checks


def test_one_input_check_module_names_the_argument():
    with pytest.raises(ValueError, match="y and p must have the same length, got 2 and 3"):
        check_binary_scores([0, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="score must be finite; 1 of 2 values are NaN or infinite"):
        check_binary_scores([0, 1], [0.1, np.inf], name_p="score")
    with pytest.raises(ValueError, match="label must be binary 0/1"):
        check_binary_scores([0, 3], [0.1, 0.2], name_y="label")
    with pytest.raises(ValueError, match="predicted holds NaN"):
        check_paired([1, 2], [1, np.nan], "reference", "predicted")
    with pytest.raises(ValueError, match="time_days, event and groups must have the same length, got 1, 2, 2"):
        check_same_length(time_days=[1], event=[0, 1], groups=["a", "b"])
    # The same check, and message, from every module that takes labels and risks.
    for fn in (ev.calibration, ev.decision_curve, ev.reliability_table):
        with pytest.raises(ValueError, match="y must be binary 0/1"):
            fn([0, 2, 1], [0.1, 0.2, 0.3])
