"""Tests written for mutants of riskfm/evaluate/roc.py that survived mutmut (docs/testing.md).

The band is checked against a reference built on scikit-learn's ROC points of the same
resamples (the draw order is documented: positives, then negatives, per resample); the AUROC
against ``sklearn.metrics.roc_auc_score``.
"""

import json
import math
import os

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from sklearn.metrics import roc_curve as sk_roc_curve

from riskfm.evaluate.roc import RocCurves, roc_curve, roc_curve_band, roc_curves

# 6 negatives and 5 positives with ties inside and across the classes (diagonal segments) and a
# positive between the 5th and the 6th negative (a vertical segment at false-positive rate 5/6).
Y6 = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1])
P6 = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.2, 0.95, 0.7, 0.3, 0.3, 0.1])


def reference_band(y, p, *, n_boot, seed, confidence, n_grid):
    """The band from sklearn's ROC points: at each rate x, the highest sensitivity on the curve."""
    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    grid = [i / (n_grid - 1) for i in range(n_grid)]
    sens = np.empty((n_boot, n_grid))
    for b in range(n_boot):
        idx = np.concatenate([rng.choice(pos, len(pos)), rng.choice(neg, len(neg))])
        fpr, tpr, _ = sk_roc_curve(y[idx], p[idx], drop_intermediate=False)
        for j, x in enumerate(grid):
            on_x = np.abs(fpr - x) <= 1e-12  # a vertical segment at x: its top
            sens[b, j] = tpr[on_x].max() if on_x.any() else np.interp(x, fpr, tpr)
    alpha = 1 - confidence
    return np.array(grid), np.quantile(sens, alpha / 2, axis=0), np.quantile(sens, 1 - alpha / 2, axis=0)


@pytest.mark.parametrize(("confidence", "n_grid", "seed"), [(0.9, 7, 1), (0.8, 101, 4)])
def test_band_equals_the_sklearn_reference_on_the_same_resamples(confidence, n_grid, seed):
    band = roc_curve_band(Y6, P6, n_boot=40, seed=seed, confidence=confidence, n_grid=n_grid)
    grid, low, high = reference_band(Y6, P6, n_boot=40, seed=seed, confidence=confidence, n_grid=n_grid)
    assert list(band.columns) == ["fpr", "ci_low", "ci_high"]
    np.testing.assert_array_equal(band["fpr"].to_numpy(), grid)  # i / (n_grid - 1), exactly
    np.testing.assert_allclose(band["ci_low"], low, rtol=0, atol=1e-12)
    np.testing.assert_allclose(band["ci_high"], high, rtol=0, atol=1e-12)
    assert not np.allclose(low, high)  # the data give a band, not a line


def test_band_defaults_are_200_resamples_seed_0_95_percent_and_101_rates():
    y = np.r_[np.zeros(30), np.ones(12)]
    p = np.r_[np.linspace(0.05, 0.7, 30), np.linspace(0.3, 0.95, 12)]
    default = roc_curve_band(y, p)
    pd.testing.assert_frame_equal(default, roc_curve_band(y, p, n_boot=200, seed=0, confidence=0.95, n_grid=101))
    assert len(default) == 101 and default["fpr"].iloc[1] == 0.01
    _, low, high = reference_band(y, p, n_boot=200, seed=0, confidence=0.95, n_grid=101)
    np.testing.assert_allclose(default["ci_low"], low, rtol=0, atol=1e-12)
    np.testing.assert_allclose(default["ci_high"], high, rtol=0, atol=1e-12)


def test_band_needs_both_classes_and_accepts_one_positive():
    with pytest.raises(ValueError, match=r"^ROC band needs both classes$"):
        roc_curve_band([1, 1, 1], [0.2, 0.5, 0.9])
    with pytest.raises(ValueError, match=r"^ROC band needs both classes$"):
        roc_curve_band([0, 0], [0.2, 0.5])
    one = roc_curve_band([0, 0, 1], [0.2, 0.5, 0.9], n_boot=5)
    # the positive is above every negative in every resample: sensitivity 1 from rate 0 on
    assert one["ci_low"].tolist() == [1.0] * 101


def test_band_arguments_are_checked_by_name():
    with pytest.raises(ValueError, match=r"^confidence must be in \(0, 1\), got 1.5$"):
        roc_curve_band(Y6, P6, confidence=1.5)
    with pytest.raises(ValueError, match=r"^n_boot must be a positive integer, got 0$"):
        roc_curve_band(Y6, P6, n_boot=0)
    with pytest.raises(ValueError, match=r"^n_grid must be an integer >= 2, got 1$"):
        roc_curve_band(Y6, P6, n_grid=1)


# ---- RocCurve -----------------------------------------------------------------------------------

# 12 positives and 12 negatives: above the default floor of 10 each.
Y24 = np.r_[np.zeros(12), np.ones(12)]
P24 = np.r_[np.linspace(0.05, 0.6, 12), np.linspace(0.3, 0.9, 12)].round(2)


def test_roc_curve_defaults_match_sklearn_and_the_documented_interval():
    from riskfm.evaluate import roc_auc

    c = roc_curve(Y24, P24)
    assert c.value == pytest.approx(roc_auc_score(Y24, P24), abs=1e-12)
    ref = roc_auc(Y24, P24, ci="bootstrap", n_boot=500, seed=0, confidence=0.95)
    assert c.ci == ref.ci and c.method == "stratified bootstrap (500 resamples)"
    assert (c.n, c.n_pos, c.confidence, c.not_estimable) == (24, 12, 0.95, None)
    assert c.band is None and c.band_method is None
    fpr, tpr, thr = sk_roc_curve(Y24, P24, drop_intermediate=False)
    np.testing.assert_allclose(c.fpr, fpr, rtol=0, atol=1e-15)
    np.testing.assert_allclose(c.tpr, tpr, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(c.thresholds[1:], thr[1:])
    assert c.thresholds[0] == np.inf


def test_roc_curve_passes_its_interval_settings_on():
    from riskfm.evaluate import roc_auc

    c = roc_curve(Y24, P24, n_boot=60, seed=3, confidence=0.8)
    ref = roc_auc(Y24, P24, ci="bootstrap", n_boot=60, seed=3, confidence=0.8)
    assert c.ci == ref.ci and c.method == ref.method and c.confidence == 0.8
    d = roc_curve(Y24, P24, ci="delong", confidence=0.8)
    assert d.method == "DeLong" and d.ci == roc_auc(Y24, P24, ci="delong", confidence=0.8).ci
    assert roc_curve(Y24, P24, ci=None).ci is None


def test_roc_curve_band_uses_its_own_resample_count_the_seed_and_confidence():
    c = roc_curve(Y24, P24, ci=None, band=True, band_n_boot=30, n_grid=11, seed=5, confidence=0.8)
    pd.testing.assert_frame_equal(c.band, roc_curve_band(Y24, P24, n_boot=30, seed=5, confidence=0.8, n_grid=11))
    assert c.band_method == "pointwise stratified bootstrap (30 resamples)"
    default = roc_curve(Y24, P24, ci=None, band=True)
    pd.testing.assert_frame_equal(default.band, roc_curve_band(Y24, P24))
    assert default.band_method == "pointwise stratified bootstrap (200 resamples)"


def test_roc_curve_small_sample_rule_applies_when_either_floor_is_given():
    y, p = Y6, P6  # 5 events, 6 non-events
    computed = roc_curve(y, p, ci=None)  # no floor given: computed
    assert computed.value == pytest.approx(roc_auc_score(y, p)) and computed.not_estimable is None
    for kwargs, reason in [({"min_events": 6}, "5 events < 6, 6 non-events < 10"),  # the other floor: 10
                           ({"min_nonevents": 7}, "5 events < 10, 6 non-events < 7"),
                           ({"min_events": 5, "min_nonevents": 7}, "6 non-events < 7")]:
        c = roc_curve(y, p, confidence=0.9, **kwargs)
        assert c.not_estimable == reason
        assert math.isnan(c.value) and c.ci is None and c.method == "none"
        assert (c.n, c.n_pos, c.confidence) == (11, 5, 0.9) and len(c.fpr) == 0 and c.band is None
    ok = roc_curve(y, p, ci=None, min_events=5, min_nonevents=6)
    assert ok.not_estimable is None and ok.value == pytest.approx(roc_auc_score(y, p))


def test_roc_curve_quotes_a_computed_auroc_instead_of_recomputing():
    q = roc_curve(Y24, P24, quoted={"value": 0.5, "ci": [0.25, 0.75], "method": "DeLong", "confidence": 0.9})
    assert (q.value, q.ci, q.method, q.confidence) == (0.5, (0.25, 0.75), "DeLong", 0.9)
    assert isinstance(q.value, float)
    assert len(q.fpr) == len(sk_roc_curve(Y24, P24, drop_intermediate=False)[0])  # the curve is still drawn
    bare = roc_curve(Y24, P24, confidence=0.8, quoted={"value": 0.7})
    assert (bare.value, bare.ci, bare.method, bare.confidence) == (0.7, None, "quoted", 0.8)
    unset = roc_curve(Y24, P24, ci=None, quoted={"value": None, "method": "DeLong"})
    assert unset.value == pytest.approx(roc_auc_score(Y24, P24)) and unset.method == "none"


def test_roc_curve_to_dict_holds_the_curve_and_the_band():
    c = roc_curve(Y6, P6, ci=None)
    d = c.to_dict()
    json.dumps(d)
    assert d["curve"] == {"fpr": c.fpr.tolist(), "tpr": c.tpr.tolist(),
                          "thresholds": [None] + c.thresholds[1:].tolist()}  # +inf as null
    assert d["band"] is None and d["value"] == c.value and "fpr" not in d
    b = roc_curve(Y6, P6, ci=None, band=True, band_n_boot=5, n_grid=3).to_dict()
    assert set(b["band"]) == {"fpr", "ci_low", "ci_high"} and b["band"]["fpr"] == [0.0, 0.5, 1.0]


def _title(ax):
    return "".join(ax.get_title(loc=loc) for loc in ("left", "center", "right"))


def test_roc_curve_plot_names_the_curve_saves_and_passes_keywords(tmp_path):
    c = roc_curve(Y24, P24, ci=None)
    fig = c.plot(tmp_path / "one.png", name="LAD", title="Mine")
    assert (tmp_path / "one.png").is_file()
    ax = fig.axes[0]
    assert _title(ax) == "Mine"
    assert ax.get_legend().get_texts()[1].get_text().startswith("LAD: ")
    assert c.plot().axes[0].get_legend().get_texts()[1].get_text().startswith("model: ")
    both = RocCurves({"a": c, "b": c}).plot(tmp_path / "two.png", title="Two")
    assert (tmp_path / "two.png").is_file() and _title(both.axes[0]) == "Two"


# ---- roc_curves and its inputs ------------------------------------------------------------------

def _table(splits=("test",)):
    rows = []
    for split in splits:
        for target in ("zzz_custom", "mace_30d", "stenosis_lad"):
            for i, (y, p) in enumerate(zip(Y24, P24)):
                rows.append({"patient_id": f"P{i}", "split": split, "target": target, "y_true": y,
                             "y_prob": p if target != "zzz_custom" else 1 - p})
    return pd.DataFrame(rows)


def test_roc_curves_from_a_table_one_curve_per_target_in_report_order():
    df = _table()
    df.loc[0, "y_true"] = np.nan  # an unknown outcome of zzz_custom: dropped
    res = roc_curves(df, ci=None)
    assert list(res.curves) == ["stenosis_lad", "mace_30d", "zzz_custom"]
    assert res.curves["mace_30d"].value == pytest.approx(roc_auc_score(Y24, P24))
    assert res.curves["zzz_custom"].n == 23
    assert res.curves["zzz_custom"].value == pytest.approx(roc_auc_score(Y24[1:], 1 - P24[1:]))
    assert res.skipped == {} and res.confidence == 0.95


def test_roc_curves_chooses_one_split():
    df = _table(("train", "test"))
    df.loc[df["split"] == "train", "y_prob"] = 0.5  # train scores carry no information
    assert roc_curves(df, split="test", ci=None).curves["mace_30d"].value == pytest.approx(roc_auc_score(Y24, P24))
    assert roc_curves(df, split="train", ci=None).curves["mace_30d"].value == 0.5
    with pytest.raises(ValueError, match=r"^split 'val' not in the predictions \(splits: \['test', 'train'\]\)$"):
        roc_curves(df, split="val")
    with pytest.raises(ValueError, match=r"^predictions hold several splits \['test', 'train'\]: choose one with split=$"):
        roc_curves(df)
    one = _table(("test",))
    assert list(roc_curves(one, ci=None).curves) == ["stenosis_lad", "mace_30d", "zzz_custom"]  # one split: no split=
    assert list(roc_curves(one.drop(columns="split"), ci=None).curves)[0] == "stenosis_lad"


def test_roc_curves_input_errors_name_the_problem():
    df = _table()
    with pytest.raises(ValueError, match=r"^pass y_prob only with an array of labels, not with a predictions DataFrame$"):
        roc_curves(df, P24)
    with pytest.raises(ValueError, match=r"^predictions DataFrame lacks column\(s\) \['y_true', 'y_prob'\]$"):
        roc_curves(df.drop(columns=["y_true", "y_prob"]))
    with pytest.raises(ValueError, match=r"^predictions DataFrame lacks column\(s\) \['target'\]$"):
        roc_curves(df.drop(columns=["target"]))
    with pytest.raises(ValueError, match=r"^pass y_prob only with an array of labels, not with a mapping of curves$"):
        roc_curves({"a": (Y24, P24)}, P24)
    for bad in [(Y24,), (Y24, P24, P24), Y24]:
        with pytest.raises(ValueError, match=r"^curve 'a' must be a \(y_true, y_prob\) pair$"):
            roc_curves({"a": bad})
    with pytest.raises(ValueError, match=r"^roc_curves needs a predictions DataFrame, a \{name: \(y, p\)\} mapping, "
                                         r"or y and y_prob arrays$"):
        roc_curves(Y24)


def test_roc_curves_from_a_mapping_and_from_arrays():
    res = roc_curves({1: [Y24.tolist(), P24.tolist()], "b": (Y24, 1 - P24)}, ci=None)
    assert list(res.curves) == ["1", "b"]  # names as text, in the given order
    assert res.curves["1"].value == pytest.approx(roc_auc_score(Y24, P24))
    assert res.curves["b"].value == pytest.approx(roc_auc_score(Y24, 1 - P24))
    single = roc_curves(Y24, P24, ci=None)
    assert list(single.curves) == ["model"] and single.curves["model"].value == pytest.approx(roc_auc_score(Y24, P24))


def test_roc_curves_skips_single_class_curves_with_a_counted_reason():
    data = {"ok": (Y24, P24), "neg": (np.zeros(4), np.arange(4) / 4), "pos": (np.ones(3), np.arange(3) / 3),
            "empty": (np.zeros(0), np.zeros(0))}
    with pytest.warns(RuntimeWarning) as record:
        res = roc_curves(data, ci=None)
    assert res.skipped == {"neg": "only one class (n_pos=0 of n=4)", "pos": "only one class (n_pos=3 of n=3)",
                           "empty": "only one class (n_pos=0 of n=0)"}
    assert [str(w.message) for w in record] == [
        "ROC: 'neg' skipped: only one class (n_pos=0 of n=4)", "ROC: 'pos' skipped: only one class (n_pos=3 of n=3)",
        "ROC: 'empty' skipped: only one class (n_pos=0 of n=0)"]
    # The warning points at the caller of roc_curves, not at roc.py (under mutmut its trampoline
    # is one frame between the two, so only the first check holds there).
    assert not record[0].filename.endswith(os.path.join("evaluate", "roc.py"))
    if "MUTANT_UNDER_TEST" not in os.environ:
        assert record[0].filename == __file__
    assert list(res.curves) == ["ok"]
    with pytest.warns(RuntimeWarning), pytest.raises(ValueError, match=r"^ROC: no curve with both classes to draw$"):
        roc_curves({"neg": data["neg"]})


def test_roc_curves_passes_every_setting_to_roc_curve():
    res = roc_curves({"a": (Y24, P24)}, n_boot=40, seed=2, confidence=0.8, band=True, band_n_boot=7)
    ref = roc_curve(Y24, P24, n_boot=40, seed=2, confidence=0.8, band=True, band_n_boot=7)
    got = res.curves["a"]
    assert (got.value, got.ci, got.method, got.band_method, got.confidence) == (
        ref.value, ref.ci, ref.method, ref.band_method, ref.confidence)
    pd.testing.assert_frame_equal(got.band, ref.band)
    assert res.confidence == 0.8
    assert roc_curves({"a": (Y24, P24)}, ci="delong").curves["a"].method == "DeLong"


def test_roc_curves_small_sample_floors_default_to_10_and_can_be_lowered():
    y, p = Y6, P6  # 5 events, 6 non-events
    assert roc_curves({"a": (y, p)}).curves["a"].not_estimable == "5 events < 10, 6 non-events < 10"
    assert roc_curves({"a": (Y24, P24)}, ci=None).curves["a"].not_estimable is None  # 12 and 12
    assert roc_curves({"a": (y, p)}, min_events=5).curves["a"].not_estimable == "6 non-events < 10"
    assert roc_curves({"a": (y, p)}, min_nonevents=6).curves["a"].not_estimable == "5 events < 10"


def test_roc_curves_quotes_metrics_and_keeps_their_not_estimable_cells():
    metrics = {
        "q": {"auroc": {"value": 0.61, "ci": [0.5, 0.7], "method": "DeLong"}},
        "ne_in_auroc": {"auroc": {"value": None, "not_estimable": "3 events < 10"}},
        "ne_in_cell": {"auroc": None, "not_estimable": "4 events < 10"},
        "ne_no_auroc": {"not_estimable": "2 events < 10"},
    }
    data = {k: (Y24, P24) for k in ("q", "ne_in_auroc", "ne_in_cell", "ne_no_auroc", "computed")}
    res = roc_curves(data, metrics=metrics, ci=None, confidence=0.9)
    assert (res.curves["q"].value, res.curves["q"].ci, res.curves["q"].method) == (0.61, (0.5, 0.7), "DeLong")
    for name, reason in [("ne_in_auroc", "3 events < 10"), ("ne_in_cell", "4 events < 10"),
                         ("ne_no_auroc", "2 events < 10")]:
        c = res.curves[name]
        assert c.not_estimable == reason and math.isnan(c.value) and c.ci is None and c.method == "none"
        assert (c.n, c.n_pos, c.confidence) == (24, 12, 0.9) and len(c.fpr) == 0
    assert res.curves["computed"].value == pytest.approx(roc_auc_score(Y24, P24))


def test_roc_curves_defaults_are_roc_curves_defaults():
    got = roc_curves({"a": (Y24, P24)}).curves["a"]
    ref = roc_curve(Y24, P24, n_boot=500, seed=0, confidence=0.95)
    assert (got.value, got.ci, got.method, got.confidence, got.band) == (ref.value, ref.ci, ref.method, 0.95, None)
    assert got.method == "stratified bootstrap (500 resamples)"
    banded = roc_curves({"a": (Y24, P24)}, ci=None, band=True).curves["a"]
    assert banded.band_method == "pointwise stratified bootstrap (200 resamples)"


def test_roc_curves_reads_a_table_whose_columns_are_text():
    # e.g. pd.read_csv(..., dtype=str): labels and scores are converted to numbers, not compared as text
    df = _table().astype({"y_true": str, "y_prob": str})
    df.loc[0, "y_true"] = np.nan
    res = roc_curves(df, ci=None)
    assert res.curves["mace_30d"].value == pytest.approx(roc_auc_score(Y24, P24))
    assert res.curves["zzz_custom"].n == 23
