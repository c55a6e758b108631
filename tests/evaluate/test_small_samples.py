"""The small-sample rule, covariates without leakage, and the report/figure fixes found on the demo.

References are independent of riskfm: scikit-learn (AUROC, calibration curve), statsmodels (Wilson
intervals), lifelines (concordance), numpy / pandas (counts, quantiles).
"""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.calibration import calibration_curve
from sklearn.metrics import roc_auc_score

from riskfm.evaluate import (
    EvaluationSpec,
    calibration,
    cumulative_incidence_by_group,
    estimable,
    evaluate,
    fairness_gaps,
    group_contrasts,
    metrics_from_predictions,
    read_metrics,
    subgroup_attributes,
    subgroup_metrics,
)
from riskfm.evaluate.horizons import target_horizon_days
from riskfm.evaluate.subgroups import quantile_edges
from riskfm.plots.forest import forest_rows, plot_forest


def _risk(y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(rng.normal(size=len(y)) + 1.3 * y - 1.5)))


def _labels(n: int, events: int, rng: np.random.Generator) -> np.ndarray:
    y = np.zeros(n)
    y[rng.choice(n, events, replace=False)] = 1.0
    return y


def subgroup_frame(seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train (300 patients) and test: group 'small' 30 patients / 1 event, 'large' 200 / 30, 'mid' 60 / 15."""
    rng = np.random.default_rng(seed)
    y_train = _labels(300, 60, rng)
    sizes = {"small": (30, 1), "large": (200, 30), "mid": (60, 15)}
    y_test = np.concatenate([_labels(n, k, rng) for n, k in sizes.values()])
    grp = np.concatenate([[g] * n for g, (n, _) in sizes.items()])
    y = np.r_[y_train, y_test]
    pids = [f"P{i:04d}" for i in range(len(y))]
    df = pd.DataFrame({"patient_id": pids, "split": ["train"] * 300 + ["test"] * len(y_test),
                       "target": "mace_30d", "y_true": y, "y_prob": _risk(y, rng)})
    cov = pd.DataFrame({"patient_id": pids, "grp": np.r_[rng.choice(["small", "large", "mid"], 300), grp]})
    return df, cov


@pytest.fixture(scope="module")
def subgroup_run(tmp_path_factory):
    df, cov = subgroup_frame()
    out = tmp_path_factory.mktemp("small")
    metrics = evaluate(df, out, covariates=cov, spec={"n_boot": 100, "recalibration": []})
    return df, cov, out, metrics


# ----------------------------------------------------------------------------------------- the rule


def test_estimable_reason_and_counts():
    assert estimable([0] * 29 + [1]) == "1 event < 10"
    assert estimable([1] * 12 + [0] * 3) == "3 non-events < 10"
    assert estimable([1] * 3 + [0] * 4) == "3 events < 10, 4 non-events < 10"
    assert estimable([1] * 10 + [0] * 10) is None
    assert estimable([1, 0, np.nan] * 10) is None  # unknown labels are not counted: 10 and 10
    assert estimable([]) == "no patients with a known outcome"
    assert estimable([1] * 5 + [0] * 50, {"min_events": 5}) is None
    assert estimable([1] * 5 + [0] * 50, EvaluationSpec(min_events=6)) == "5 events < 6"
    with pytest.raises(ValueError, match="min_events"):
        EvaluationSpec.from_any({"min_events": 0})
    with pytest.raises(ValueError, match="max_subgroup_levels"):
        EvaluationSpec.from_any({"subgroup_bins": {"age": list(range(20))}})


def test_small_subgroup_is_null_with_reason_and_large_one_matches_sklearn(subgroup_run):
    df, cov, out, _ = subgroup_run
    on_disk = read_metrics(out / "metrics.json")
    levels = on_disk["test"]["mace_30d"]["subgroups"]["grp"]
    small = levels["small"]
    assert small["metric"] == "auroc" and small["value"] is None and small["ci"] is None
    assert (small["n"], small["n_pos"], small["not_estimable"]) == (30, 1, "1 event < 10")
    assert "NaN" not in (out / "metrics.json").read_text()  # JSON null, never NaN
    test = df[df["split"] == "test"].merge(cov, on="patient_id")
    for level in ("large", "mid"):
        d = test[test["grp"] == level]
        cell = levels[level]
        assert cell["value"] == pytest.approx(roc_auc_score(d["y_true"], d["y_prob"]), abs=1e-12)
        assert cell["n"] == len(d) and cell["n_pos"] == int(d["y_true"].sum())
        assert cell["ci"][0] < cell["value"] < cell["ci"][1]
        assert cell["method"] == "stratified bootstrap (100 resamples)"
        assert "not_estimable" not in cell
    # The small group takes no part in the fairness gaps: reference = median of large and mid only.
    gaps = on_disk["test"]["mace_30d"]["fairness_gaps"]["grp"]
    assert set(gaps["levels"]) == {"large", "mid"}
    ref = np.median([levels["large"]["value"], levels["mid"]["value"]])
    assert gaps["levels"]["large"]["value"] == pytest.approx(levels["large"]["value"] - ref)
    assert gaps["levels"]["large"]["ci"][0] <= gaps["levels"]["large"]["value"] <= gaps["levels"]["large"]["ci"][1]
    assert gaps["value"] == pytest.approx(abs(levels["large"]["value"] - levels["mid"]["value"]))  # max - min
    table = pd.read_csv(out / "tables" / "fairness_gaps.csv")
    assert "small" not in set(table["level"]) and {"n", "n_pos", "ci_low", "ci_high"} <= set(table.columns)
    sub = pd.read_csv(out / "tables" / "subgroups.csv")
    row = sub[(sub["split"] == "test") & (sub["level"] == "small")].iloc[0]
    assert math.isnan(row["value"]) and math.isnan(row["ci_low"]) and row["not_estimable"] == "1 event < 10"
    html = (out / "report.html").read_text()
    assert "n/e (1 event &lt; 10)" in html


def test_forest_draws_no_point_for_the_small_subgroup(subgroup_run):
    _, _, out, _ = subgroup_run
    sub = pd.read_csv(out / "tables" / "subgroups.csv")
    t = sub[(sub["split"] == "test") & (sub["target"] == "mace_30d")]
    fig = plot_forest(t, title="test")
    rows = fig.forest_rows.set_index("label")
    assert not rows.loc["   small", "point"] and not rows.loc["   small", "interval"]
    assert rows.loc["   small", "text"] == "n/e (1 event < 10)  n=30, 1 event"
    assert rows.loc["   large", "point"] and rows.loc["   large", "interval"]
    assert rows.loc["   large", "text"].endswith("n=200, 30 events")
    # The artists agree: one square per estimable level at its row, a diamond for all patients.
    ax = fig.axes[0]
    ypos = dict(zip(fig.forest_rows["label"], np.arange(len(rows))[::-1]))
    squares = [ln for ln in ax.lines if ln.get_marker() == "s"]
    assert sorted(float(ln.get_ydata()[0]) for ln in squares) == sorted([ypos["   large"], ypos["   mid"]])
    assert [ln for ln in ax.lines if ln.get_marker() == "D"]
    y_small = ypos["   small"]
    assert not any(list(ln.get_ydata()) in ([y_small], [y_small, y_small]) for ln in ax.lines)  # no point, no CI
    # Every drawn row states n and events.
    assert all("n=" in x and "event" in x for x in fig.forest_rows["text"] if x)


def test_fairness_gaps_need_two_estimable_levels():
    rng = np.random.default_rng(1)
    y = np.r_[_labels(30, 1, rng), _labels(100, 20, rng)]
    p = _risk(y, rng)
    groups = np.r_[["a"] * 30, ["b"] * 100]
    t = subgroup_metrics(y, p, groups, "auroc", attribute="x", n_boot=50)
    assert t.set_index("level").loc["a", "not_estimable"] == "1 event < 10"
    assert t.set_index("level").loc["b", "value"] == pytest.approx(roc_auc_score(y[30:], p[30:]))
    g = fairness_gaps(pd.DataFrame({"x": groups, "y_true": y, "y_prob": p}), "x", "auroc", n_resamples=20)
    assert g.estimable_rows().empty  # a binary attribute with one estimable level has no gap
    assert g.not_estimable == "1 estimable level, need 2" and g.ci is None and math.isnan(g.value)
    assert g.table.set_index("level").loc["a", "not_estimable"] == "1 event < 10"


def test_main_table_with_one_positive_is_not_estimable(tmp_path):
    df, _ = subgroup_frame(seed=2)
    test = df["split"] == "test"
    lm = df.assign(target="stenosis_lm", y_true=0.0)
    lm.loc[lm.index[test][:1], "y_true"] = 1.0  # one positive in test
    lm.loc[lm.index[~test][:40], "y_true"] = 1.0
    both = pd.concat([df, lm], ignore_index=True)
    m = evaluate(both, tmp_path, spec={"n_boot": 50, "figures": False, "recalibration": []})
    cell = m["test"]["stenosis_lm"]
    assert cell["auroc"]["value"] is None and cell["auroc"]["ci"] is None and cell["auprc"]["value"] is None
    assert (cell["n_pos"], cell["not_estimable"]) == (1, "1 event < 10")
    disc = pd.read_csv(tmp_path / "tables" / "discrimination.csv").set_index(["split", "target"])
    row = disc.loc[("test", "stenosis_lm")]
    assert math.isnan(row["auroc"]) and math.isnan(row["auroc_ci_low"]) and row["not_estimable"] == "1 event < 10"
    assert (row["n"], row["n_pos"]) == (290, 1)
    d = both[(both["split"] == "test") & (both["target"] == "mace_30d")]
    assert disc.loc[("test", "mace_30d"), "auroc"] == pytest.approx(roc_auc_score(d["y_true"], d["y_prob"]))
    validation = pd.read_csv(tmp_path / "tables" / "validation.csv").set_index("target")
    assert validation.loc["stenosis_lm", "test"] == "n/e (1 event < 10); n=290"
    assert validation.loc["mace_30d", "test"].endswith("46 events, n=290")
    html = (tmp_path / "report.html").read_text()
    assert "n/e (1 event &lt; 10)" in html and "&lt;predictions DataFrame&gt;" not in html
    assert f"riskfm evaluation: {tmp_path.name}" in html and f"run folder {tmp_path}" in html
    # The same rule in the printable table the CLI reads.
    from riskfm.evaluate import auroc_table

    table = auroc_table(m)
    assert table.loc[("test", "stenosis_lm"), "note"] == "1 event < 10"
    assert math.isnan(table.loc[("test", "stenosis_lm"), "ci_low"])


def test_delong_cells_follow_the_rule_without_warnings():
    df, _ = subgroup_frame(seed=3)
    d = df[df["split"] == "test"].copy()
    d.loc[d.index[5:], "y_true"] = 0.0
    d.loc[d.index[:5], "y_true"] = 1.0  # 5 positives
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = metrics_from_predictions(d, ci="delong")
    assert m["test"]["mace_30d"]["auroc"]["value"] is None
    assert m["test"]["mace_30d"]["not_estimable"] == "5 events < 10"
    m = metrics_from_predictions(d, ci="delong", min_events=5)
    assert m["test"]["mace_30d"]["auroc"]["value"] == pytest.approx(roc_auc_score(d["y_true"], d["y_prob"]))


# ----------------------------------------------------------------------------------------- covariates


def full_manifest(n: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    pids = [f"P{i:04d}" for i in range(n)]
    return pd.DataFrame({
        "patient_id": pids, "site": rng.choice(["a", "b", "c"], n),
        "ecg_path": [f"ecg/{p}.hea" for p in pids], "ct_path": [f"ct/{p}.nii.gz" for p in pids],
        **{f"stenosis_{a}": rng.integers(0, 2, n) for a in ("rca", "lm", "lad", "lcx")},
        "mace_30d": rng.integers(0, 2, n), "time_to_event_days": rng.uniform(0, 730, n).round(1),
        "event": rng.integers(0, 2, n), "age": rng.integers(30, 90, n).astype(float),
        "sex": rng.choice(["female", "male"], n)})


def test_reserved_mirror_matches_the_manifest_contract():
    from riskfm.data.manifest import RESERVED_COLUMNS
    from riskfm.evaluate.subgroups import RESERVED_COLUMNS as MIRROR

    assert set(MIRROR) == set(RESERVED_COLUMNS)


def test_full_manifest_gives_subgroups_only_for_age_sex_site(tmp_path):
    cov = full_manifest()
    attrs, notes = subgroup_attributes(cov)
    assert set(attrs) == {"age", "sex", "site"}
    assert any("ecg_path" in n and "left out" in n for n in notes)
    age = attrs["age"]
    assert age.nunique() == 4
    # Quartile bands: each holds about a quarter of the patients, and their edges are those of numpy.
    edges = quantile_edges(cov["age"], 4)
    np.testing.assert_allclose(edges, np.round(np.quantile(cov["age"], [0.25, 0.5, 0.75])))
    counts = age.value_counts().reindex(age.cat.categories).to_numpy()
    ref = np.bincount(np.searchsorted(edges, cov["age"].to_numpy(), side="left"), minlength=len(edges) + 1)
    np.testing.assert_array_equal(counts, ref)
    assert list(age.cat.categories) == [f"\u2264{edges[0]:g}", f"{edges[0]:g}\u2013{edges[1]:g}",
                                        f"{edges[1]:g}\u2013{edges[2]:g}", f">{edges[2]:g}"]
    # Through evaluate: the subgroup table has rows for those three attributes, never one per patient.
    rng = np.random.default_rng(0)
    y = _labels(len(cov), 90, rng)
    preds = pd.DataFrame({"patient_id": cov["patient_id"], "split": np.where(np.arange(len(cov)) < 150, "train", "test"),
                          "target": "mace_30d", "y_true": y, "y_prob": _risk(y, rng)})
    path = tmp_path / "manifest.csv"
    cov.to_csv(path, index=False)
    evaluate(preds, tmp_path / "ev", covariates=path, spec={"n_boot": 20, "figures": False, "recalibration": []})
    sub = pd.read_csv(tmp_path / "ev" / "tables" / "subgroups.csv")
    assert set(sub["attribute"]) == {"age", "sex", "site"}
    assert sub.groupby("attribute")["level"].nunique().max() <= 5  # 4 bands + "All"
    html = (tmp_path / "ev" / "report.html").read_text()
    assert "are not subgroups" in html
    with pytest.raises(ValueError, match=r"\['mace_30d'\] are reserved"):
        subgroup_attributes(cov, ["sex", "mace_30d"])
    assert set(subgroup_attributes(cov, ["site"])[0]) == {"site"}  # site stays a valid subgroup


def test_many_level_categorical_is_refused_and_numeric_is_binned():
    rng = np.random.default_rng(4)
    n = 400
    cov = pd.DataFrame({"patient_id": [f"P{i}" for i in range(n)],
                        "centre": [f"hospital_{i % 40:02d}" for i in range(n)],
                        "score": rng.permutation(np.arange(200).repeat(2)) * 0.37})
    with pytest.raises(ValueError, match=r"'centre' has 40 levels, more than max_subgroup_levels \(12\)"):
        subgroup_attributes(cov)
    attrs, _ = subgroup_attributes(cov, ["score"])
    assert cov["score"].nunique() == 200
    assert attrs["score"].nunique() <= 12 and attrs["score"].nunique() == 4
    attrs, _ = subgroup_attributes(cov, ["score"], n_quantiles=3, max_levels=3)
    assert attrs["score"].nunique() == 3  # tertiles
    assert set(subgroup_attributes(cov, ["centre"], max_levels=40)[0]) == {"centre"}


# ----------------------------------------------------------------------------------------- figures, tables


def test_threshold_table_has_wilson_intervals(subgroup_run):
    from statsmodels.stats.proportion import proportion_confint

    df, _, out, _ = subgroup_run
    t = pd.read_csv(out / "tables" / "thresholds.csv").set_index("split")
    row = t.loc["test"]
    d = df[df["split"] == "test"]
    y, pos = d["y_true"].to_numpy() == 1, d["y_prob"].to_numpy() >= row["threshold"]
    tp, fp, tn, fn = (y & pos).sum(), (~y & pos).sum(), (~y & ~pos).sum(), (y & ~pos).sum()
    for name, (k, n) in {"sensitivity": (tp, tp + fn), "specificity": (tn, tn + fp), "ppv": (tp, tp + fp),
                         "npv": (tn, tn + fn)}.items():
        lo, hi = proportion_confint(k, n, alpha=0.05, method="wilson")
        assert row[name] == pytest.approx(k / n)
        assert row[f"{name}_ci_low"] == pytest.approx(lo, abs=1e-12)
        assert row[f"{name}_ci_high"] == pytest.approx(hi, abs=1e-12)
    assert (row["n"], row["n_pos"]) == (len(d), int(y.sum()))
    html = (out / "report.html").read_text()
    lo, hi = proportion_confint(tp, tp + fn, alpha=0.05, method="wilson")
    assert f"{tp / (tp + fn):.3f} [{lo:.3f}, {hi:.3f}]" in html


def test_calibration_figure_uses_quantile_bins_with_counts():
    rng = np.random.default_rng(5)
    p = rng.beta(1.2, 6, 600)
    y = (rng.random(600) < p).astype(int)
    fig = calibration(y, p, n_bins=8, strategy="quantile").plot(label="MACE")
    table = fig.calibration_table
    # Equal-count bins, as numpy's quantiles cut them, and the points of scikit-learn's curve.
    edges = np.quantile(p, np.linspace(0, 1, 9))
    counts = np.bincount(np.searchsorted(edges[1:-1], p, side="right"), minlength=8)
    np.testing.assert_array_equal(table["n"].to_numpy(), counts)
    assert (table["n"] == 75).all()
    prob_true, prob_pred = calibration_curve(y, p, n_bins=8, strategy="quantile")
    ax = fig.axes[0]
    points = [ln for ln in ax.lines if ln.get_marker() == "o"][0]
    np.testing.assert_allclose(np.asarray(points.get_xdata(), float), prob_pred, atol=1e-12)
    np.testing.assert_allclose(np.asarray(points.get_ydata(), float), prob_true, atol=1e-12)
    # The count of each bin is written at its point.
    texts = [t.get_text() for t in ax.texts]
    assert texts == [str(c) for c in counts]
    # Legend above the data (outside the axes), quoting slope and intercept.
    fig.canvas.draw()
    legend = ax.get_legend()
    assert legend.get_window_extent().y0 >= ax.get_window_extent().y1 - 1
    labels = [t.get_text() for t in legend.get_texts()]
    assert labels[0].startswith("MACE (8 quantile bins") and any(s.startswith("Slope ") and "intercept" in s
                                                                  for s in labels)
    # A small split gets fewer, larger bins.
    small = calibration(y[:79], p[:79], n_bins=10, strategy="quantile", min_bin_size=20).plot()
    assert len(small.calibration_table) == 3 and small.calibration_table["n"].min() >= 20


def test_cumulative_incidence_of_a_30_day_target_stops_at_its_horizon(tmp_path):
    from lifelines.utils import concordance_index

    assert target_horizon_days("mace_30d") == 30 and target_horizon_days("risk_score") is None
    rng = np.random.default_rng(6)
    n = 400
    y = _labels(n, 80, rng)
    p = _risk(y, rng)
    t = np.where(y == 1, rng.uniform(1, 30, n), rng.uniform(31, 730, n))
    late = rng.random(n) < 0.3  # events after day 30 that 30-day MACE must not count
    e = np.where((y == 1) | late, 1.0, 0.0)
    fig = cumulative_incidence_by_group(t, e, np.where(p > np.median(p), "high", "low"), horizon_days=30).plot()
    ax = fig.axes[0]
    assert ax.get_xlim() == (0.0, 30.0)
    assert any(list(ln.get_xdata()) == [30.0, 30.0] for ln in ax.lines)  # the horizon marker
    assert "30-day horizon" in [txt.get_text() for txt in ax.get_legend().get_texts()]
    df = pd.DataFrame({"patient_id": [f"P{i}" for i in range(n)], "split": np.where(np.arange(n) < 200, "train", "test"),
                       "target": "mace_30d", "y_true": y, "y_prob": p, "time_to_event_days": t, "event": e})
    m = evaluate(df, tmp_path, spec={"n_boot": 20, "figures": False, "recalibration": []})
    test = df[df["split"] == "test"]
    t30, e30 = np.minimum(test["time_to_event_days"], 30), (test["event"] == 1) & (test["time_to_event_days"] <= 30)
    ref = concordance_index(t30, -test["y_prob"], e30)
    assert m["test"]["mace_30d"]["survival"]["harrell_c"]["value"] == pytest.approx(ref, abs=1e-9)
    assert m["test"]["mace_30d"]["survival"]["n_events"] == int(e30.sum())
    html = (tmp_path / "report.html").read_text()
    assert "censored at its 30-day horizon" in html


def test_c_index_with_few_events_is_not_estimable(tmp_path):
    rng = np.random.default_rng(7)
    n = 200
    y = _labels(n, 40, rng)
    split = np.where(np.arange(n) < 120, "train", "test")
    y[(split == "test") & (y == 1)] = 0
    y[np.flatnonzero(split == "test")[:4]] = 1  # 4 events in test
    t = np.where(y == 1, rng.uniform(1, 30, n), 30.0)
    df = pd.DataFrame({"patient_id": [f"P{i}" for i in range(n)], "split": split, "target": "mace_30d",
                       "y_true": y, "y_prob": _risk(y, rng), "time_to_event_days": t, "event": y})
    m = evaluate(df, tmp_path, spec={"n_boot": 20, "figures": False, "recalibration": []})
    surv = m["test"]["mace_30d"]["survival"]
    assert surv["harrell_c"]["value"] is None and surv["uno_c"]["value"] is None
    assert surv["harrell_c"]["not_estimable"] == "4 events < 10"
    assert (surv["n"], surv["n_events"], surv["not_estimable"]) == (80, 4, "4 events < 10")
    assert m["train"]["mace_30d"]["survival"]["harrell_c"]["value"] is not None
    assert "null" in json.dumps(read_metrics(tmp_path / "metrics.json")["test"]["mace_30d"]["survival"])


def test_separated_groups_hazard_ratio_not_estimable_and_warnings_summarised(tmp_path):
    # Every event of the high group precedes the single late event of the low group.
    t = np.r_[np.linspace(700, 100, 30), np.linspace(5, 50, 10)]
    t[0] = 699.0
    e = np.r_[np.zeros(30), np.ones(10)]
    e[0] = 1.0
    g = np.r_[["low"] * 30, ["high"] * 10]
    with pytest.warns(RuntimeWarning, match="did not converge"):
        c = group_contrasts(t, e, g)
    row = c.iloc[0]
    assert row["not_estimable"] == "did not converge: separated groups" and math.isnan(row["hazard_ratio"])
    assert 0 <= row["logrank_p"] < 0.05
    # Through evaluate: the same situation is caught, explained once, and nothing reaches the caller.
    rng = np.random.default_rng(8)
    n = 300
    y = _labels(n, 60, rng)
    p = np.clip(0.05 + 0.9 * y * rng.uniform(0.8, 1.0, n) + 0.02 * rng.random(n), 0, 1)  # perfect ranking
    t = np.where(y == 1, rng.uniform(1, 20, n), 30.0)
    late = np.flatnonzero((np.arange(n) >= 150) & (y == 0))[0]
    y[late], t[late] = 1.0, 29.0  # one low-risk event in test, after every high-risk one
    df = pd.DataFrame({"patient_id": [f"P{i}" for i in range(n)],
                       "split": np.where(np.arange(n) < 150, "train", "test"), "target": "mace_30d",
                       "y_true": y, "y_prob": p, "time_to_event_days": t, "event": y})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        evaluate(df, tmp_path, spec={"n_boot": 20, "figures": False, "recalibration": []})
    leaked = [w for w in caught if not issubclass(w.category, (DeprecationWarning, FutureWarning))]
    assert leaked == [], [str(w.message)[:80] for w in leaked]
    contrasts = pd.read_csv(tmp_path / "tables" / "risk_group_contrasts.csv")
    assert (contrasts["not_estimable"] == "did not converge: separated groups").any()
    html = (tmp_path / "report.html").read_text()
    assert "not estimable (did not converge: separated groups)" in html
    assert html.count(">Numerical warnings</h2>") == 1 and "separated" in html


def test_progress_lines_and_quiet(tmp_path, capsys):
    from riskfm.progress import set_quiet

    df, _ = subgroup_frame(seed=9)
    spec = {"n_boot": 20, "figures": False, "recalibration": [], "report": False}
    evaluate(df, tmp_path / "a", spec=spec)
    err = capsys.readouterr().err
    for section in ("discrimination", "thresholds", "calibration", "subgroups and fairness"):
        assert f"riskfm: evaluate: {section}" in err
    set_quiet(True)
    try:
        evaluate(df, tmp_path / "b", spec=spec)
    finally:
        set_quiet(False)
    assert capsys.readouterr().err == ""


def test_cli_prints_not_estimable_with_reason(tmp_path):
    from typer.testing import CliRunner

    from riskfm.commands.evaluate import app

    df, _ = subgroup_frame(seed=10)
    lm = df.assign(target="stenosis_lm", y_true=0.0)
    lm.loc[lm.index[:40], "y_true"] = 1.0
    lm.loc[lm.index[df["split"] == "test"][:2], "y_true"] = 1.0
    pd.concat([df, lm]).to_csv(tmp_path / "predictions.csv", index=False)
    r = CliRunner().invoke(app, [str(tmp_path / "predictions.csv"), "--no-figures", "--n-boot", "20"])
    assert r.exit_code == 0, r.output
    line = next(x for x in r.output.splitlines() if "test" in x and "stenosis_lm" in x)
    assert "AUROC n/e (2 events < 10)" in line and "n_pos=2" in line


def test_forest_rows_from_a_plain_table():
    t = pd.DataFrame({"attribute": "sex", "level": ["All", "F", "M"], "metric": "auroc", "n": [60, 30, 30],
                      "n_pos": [21, 1, 20], "value": [0.7, np.nan, 0.8], "ci_low": [0.6, np.nan, 0.7],
                      "ci_high": [0.8, np.nan, 0.9], "not_estimable": ["", "1 event < 10", ""]})
    rows = forest_rows(t)
    assert list(rows["kind"]) == ["overall", "heading", "level", "level"]
    assert list(rows["point"]) == [True, False, False, True]
    assert rows["text"].iloc[2] == "n/e (1 event < 10)  n=30, 1 event"
    with pytest.raises(ValueError, match="too many subgroup levels"):
        plot_forest(pd.DataFrame({"attribute": "id", "level": [str(i) for i in range(100)], "metric": "auroc",
                                  "n": 1, "value": 0.5, "ci_low": 0.4, "ci_high": 0.6}))


def test_comparisons_follow_the_rule_when_asked():
    from riskfm.evaluate import delong_test, paired_bootstrap_test

    rng = np.random.default_rng(11)
    y = _labels(80, 4, rng)
    p1, p2 = _risk(y, rng), rng.random(80)
    r = delong_test(y, p1, p2, min_events=10, min_nonevents=10)
    assert r.to_dict()["p_value"] is None and r.not_estimable == "4 events < 10" and r.ci is None
    c = paired_bootstrap_test(y, p1, p2, n_boot=20, min_events=10, min_nonevents=10)
    assert math.isnan(c.value) and c.to_dict()["p_value"] is None and c.not_estimable == "4 events < 10"
    y = _labels(80, 20, rng)
    p1 = _risk(y, rng)
    r = delong_test(y, p1, p2, min_events=10, min_nonevents=10)
    assert r.value1 == pytest.approx(roc_auc_score(y, p1)) and "not_estimable" not in r.to_dict()
