"""evaluate.pipeline._Run analyses, one step at a time: agreement, survival, decision curves, subgroups.

Each test builds a small deterministic predictions frame, runs the step the way ``evaluate()`` does and
checks that the step feeds the reference-tested functions the right rows (split, target, known
outcomes, follow-up censored at the horizon, train split as reference) and puts their results in
the right place (metrics cell keys, table columns and row order, notes, figure captions and names).
"""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from riskfm.evaluate import pipeline  # noqa: E402
from riskfm.evaluate.agreement import bland_altman  # noqa: E402
from riskfm.evaluate.fairness import FAIRNESS_COLUMNS, fairness_gaps  # noqa: E402
from riskfm.evaluate.pipeline import _contrast_records, _Run  # noqa: E402
from riskfm.evaluate.risk_groups import assign_risk_groups  # noqa: E402
from riskfm.evaluate.run_metrics import metrics_from_predictions, validate_predictions  # noqa: E402
from riskfm.evaluate.spec import EvaluationSpec  # noqa: E402
from riskfm.evaluate.subgroups import subgroup_metrics  # noqa: E402
from riskfm.evaluate.survival import SurvivalMetrics, group_contrasts, survival_metrics  # noqa: E402

SIZES = {"train": 60, "test": 60, "external": 50}
SECTION = "Subgroups and fairness"
SURVIVAL_COLUMNS = ["split", "target", "n", "n_events", "harrell_c", "uno_c", "mean_time_auc", "integrated_brier",
                    "not_estimable"]


# ------------------------------------------------------------------------------------------ builders
def predictions(sizes=None, targets=("mace_30d", "risk_score", "stenosis_lad"), seed=0, time=True,
                site=True) -> pd.DataFrame:
    """Long-format predictions: events spread over days 1-60, so a 30-day horizon censors some."""
    rng = np.random.default_rng(seed)
    frames = []
    for split, n in (sizes or SIZES).items():
        pids = [f"{split}{i:03d}" for i in range(n)]
        for target in targets:
            x = rng.normal(size=n)
            p = 1 / (1 + np.exp(-(1.5 * x - 0.4)))
            y = (rng.random(n) < p).astype(float)
            f = {"patient_id": pids, "split": split, "target": target, "y_true": y, "y_prob": p}
            if time:
                f["time_to_event_days"] = np.where(y == 1, rng.uniform(1, 60, n), rng.uniform(20, 90, n))
                f["event"] = y.copy()
            if site:
                f["site"] = np.where(split == "external", "site_ext",
                                     np.where(np.arange(n) % 2 == 0, "site_a", "site_b"))
            frames.append(pd.DataFrame(f))
    return pd.concat(frames, ignore_index=True)


def covariates(df: pd.DataFrame, seed: int = 1) -> pd.DataFrame:
    ids = df["patient_id"].drop_duplicates().to_numpy()
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"patient_id": ids, "sex": np.where(np.arange(len(ids)) % 2 == 0, "F", "M"),
                         "smoker": rng.choice(["no", "yes"], len(ids))})


def with_age(cov: pd.DataFrame) -> pd.DataFrame:
    # Bands '\u226450', '50\u201365', '>65' sort differently as strings: their order must survive.
    return cov.assign(age=np.resize([72, 45, 58, 80, 38, 61], len(cov)))


def make_run(df: pd.DataFrame, tmp_path, cov=None, **spec) -> tuple[_Run, dict]:
    kw = {"n_boot": 20, "min_events": 5, "min_nonevents": 5, "seed": 3, **spec}
    s = EvaluationSpec(**kw)
    df = validate_predictions(df)
    run = _Run(df, tmp_path, s, "train", "val", cov)
    metrics = metrics_from_predictions(df, ci=s.ci, n_boot=s.n_boot, seed=s.seed, confidence=s.confidence,
                                       min_events=s.min_events, min_nonevents=s.min_nonevents)
    return run, metrics


def rows(df, split, target, known=True):
    d = df[(df["split"] == split) & (df["target"] == target)]
    return d[d["y_true"].notna()] if known else d


def follow_up(df, split, target, horizon):
    """Follow-up by hand: rows with time and event, cut at the horizon (later events censored)."""
    d = df[(df["split"] == split) & (df["target"] == target)]
    d = d[d["time_to_event_days"].notna() & d["event"].notna()]
    t, e, r = (d["time_to_event_days"].to_numpy(float), d["event"].to_numpy(float), d["y_prob"].to_numpy(float))
    if horizon is not None:
        e = np.where(t <= horizon, e, 0.0)
        t = np.minimum(t, horizon)
    return t, e, r


def pending(run, section=None):
    return [(sec, cap, name) for sec, cap, name, _ in run.pending if section is None or sec == section]


def draw(run, name):
    make = {n: m for _, _, n, m in run.pending}[name]
    fig = make()
    try:
        texts = [ax.get_title(loc=loc) for ax in fig.axes for loc in ("left", "center", "right")]
        texts += [ax.get_xlabel() for ax in fig.axes]
        texts += [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]
        return [line for t in texts for line in t.splitlines()]
    finally:
        plt.close(fig)


def same(a, b):
    """Dict equality where NaN == NaN (estimates of not-estimable statistics)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


# ------------------------------------------------------------------------------------------ survival
def test_survival_without_time_columns_is_a_note_and_nothing_else(tmp_path):
    run, metrics = make_run(predictions(time=False), tmp_path)
    before = repr(metrics)
    run.thresholds = {"mace_30d": {"method": "incidence", "value": 0.4, "chosen_on": "train"}}
    run.survival(metrics)
    assert run.notes == {"Time to event": ["predictions have no time_to_event_days/event columns; section skipped"]}
    assert run.tables == {} and run.pending == [] and repr(metrics) == before


def test_survival_metrics_use_horizon_censoring_and_the_train_reference(tmp_path):
    df = predictions()
    # Unknown binary label but known follow-up: still in the survival rows; no follow-up: left out.
    df.loc[(df["split"] == "test") & (df["target"] == "mace_30d") & (df["patient_id"] == "test001"), "y_true"] = np.nan
    df.loc[(df["split"] == "test") & (df["target"] == "risk_score") & (df["patient_id"] == "test002"),
           "time_to_event_days"] = np.nan
    df.loc[(df["split"] == "test") & (df["target"] == "risk_score") & (df["patient_id"] == "test003"), "event"] = np.nan
    run, metrics = make_run(df, tmp_path)
    run.survival(metrics)
    df = run.df
    assert run.notes["Time to event"] == [
        "mace_30d: follow-up censored at its 30-day horizon (events after it count as censored) for the "
        "concordance, hazard ratios and incidence curves"]
    expected_rows = []
    for target, horizon in (("mace_30d", 30.0), ("risk_score", None)):
        train = follow_up(df, "train", target, horizon)
        for split in ("train", "test", "external"):
            t, e, r = follow_up(df, split, target, horizon)
            sm = survival_metrics(t, e, r, train=train)
            assert same(metrics[split][target]["survival"], sm.to_dict())
            assert sm.integrated_brier is not None
            expected_rows.append([split, target, len(t), int(e.sum()), sm.harrell_c.value, sm.uno_c.value,
                                  sm.mean_auc_t.value, sm.integrated_brier.value, ""])
        assert "survival" not in metrics["test"]["stenosis_lad"]  # not a survival target
    # The horizon changes the events: some mace_30d events fall after day 30.
    raw = rows(df, "test", "mace_30d", known=False)
    assert (raw["event"].sum() > expected_rows[1][3]) and expected_rows[1][2] == SIZES["test"]
    assert expected_rows[4][2] == SIZES["test"] - 2  # risk_score: two rows without follow-up
    table = run.tables["survival"]
    assert list(table.columns) == SURVIVAL_COLUMNS
    assert table.values.tolist() == expected_rows
    # No thresholds chosen: no contrasts, no figures.
    assert "risk_group_contrasts" not in run.tables and run.pending == []
    assert all("risk_group_contrasts" not in c for by_t in metrics.values() for c in by_t.values())


def test_survival_horizon_from_spec_and_targets_from_spec(tmp_path):
    df = predictions(targets=("risk_score", "stenosis_lad"))
    run, metrics = make_run(df, tmp_path, survival_targets=["stenosis_lad", "absent_target"],
                            horizon_days={"stenosis_lad": 40})
    run.survival(metrics)
    assert run.notes["Time to event"] == [
        "stenosis_lad: follow-up censored at its 40-day horizon (events after it count as censored) for the "
        "concordance, hazard ratios and incidence curves"]
    assert list(run.tables["survival"]["target"]) == ["stenosis_lad"] * 3
    t, e, r = follow_up(run.df, "external", "stenosis_lad", 40.0)
    sm = survival_metrics(t, e, r, train=follow_up(run.df, "train", "stenosis_lad", 40.0))
    assert same(metrics["external"]["stenosis_lad"]["survival"], sm.to_dict())
    assert all("survival" not in metrics[s]["risk_score"] for s in metrics)


def test_survival_not_estimable_no_events_and_no_train_events(tmp_path):
    df = predictions(sizes={"train": 40, "test": 40, "small": 12, "quiet": 15}, targets=("risk_score",))
    small = df["split"] == "small"
    df.loc[small, ["y_true", "event"]] = 0.0
    df.loc[small & df["patient_id"].isin(["small000", "small001", "small002"]), ["y_true", "event"]] = 1.0
    df.loc[df["split"] == "quiet", ["y_true", "event"]] = 0.0
    df.loc[df["split"] == "train", "event"] = 0.0  # train has no events: no reference
    run, metrics = make_run(df, tmp_path)
    run.thresholds = {"risk_score": {"method": "youden", "value": 0.5, "chosen_on": "train"}}
    run.survival(metrics)
    assert run.notes["Time to event"] == [
        "risk_score: no follow-up with events in split 'train'; Uno's C uses each split's own censoring, "
        "no integrated Brier score"]
    t, e, r = follow_up(run.df, "test", "risk_score", None)
    sm = survival_metrics(t, e, r, train=None)
    assert sm.integrated_brier is None and same(metrics["test"]["risk_score"]["survival"], sm.to_dict())
    reason = "3 events < 5"
    assert same(metrics["small"]["risk_score"]["survival"],
                {**SurvivalMetrics.missing(reason, 12, 3).to_dict(), "time_auc": None, "not_estimable": reason})
    assert "survival" not in metrics["quiet"]["risk_score"] and "survival" not in metrics["train"]["risk_score"]
    table = run.tables["survival"]
    assert list(table.columns) == SURVIVAL_COLUMNS  # not-estimable rows have the same keys
    assert table["split"].tolist() == ["test", "small"] and table["target"].tolist() == ["risk_score"] * 2
    assert table["integrated_brier"].iloc[0] is None or math.isnan(table["integrated_brier"].iloc[0])
    assert table.iloc[0]["not_estimable"] == ""
    small_row = table.iloc[1].to_dict()
    assert small_row["n"] == 12 and small_row["n_events"] == 3 and small_row["not_estimable"] == reason
    assert all(math.isnan(small_row[k]) for k in ("harrell_c", "uno_c", "mean_time_auc", "integrated_brier"))
    # Contrasts in the not-estimable split too (the log-rank test does not need 5 events).
    g = assign_risk_groups(run.df.loc[run.df["split"] == "small", "y_prob"].to_numpy(float), 0.5)
    assert len(set(g)) == 2
    assert "risk_group_contrasts" in metrics["small"]["risk_score"]
    assert [n for _, _, n in pending(run)] == ["cumulative_incidence_test_risk_score.png",
                                               "cumulative_incidence_small_risk_score.png"]


def test_survival_one_train_event_is_a_reference_and_one_patient_is_a_row(tmp_path):
    df = predictions(sizes={"train": 30, "test": 40, "solo": 1}, targets=("risk_score",))
    train = df["split"] == "train"
    df.loc[train, ["y_true", "event"]] = 0.0
    df.loc[train & (df["patient_id"] == "train007"), ["y_true", "event"]] = 1.0
    df.loc[df["split"] == "solo", ["y_true", "event"]] = 1.0
    run, metrics = make_run(df, tmp_path)
    run.survival(metrics)
    assert "Time to event" not in run.notes  # one event is enough for the censoring reference
    t, e, r = follow_up(run.df, "test", "risk_score", None)
    sm = survival_metrics(t, e, r, train=follow_up(run.df, "train", "risk_score", None))
    assert same(metrics["test"]["risk_score"]["survival"], sm.to_dict())
    reason = "1 event < 5, 0 non-events < 5"
    assert metrics["solo"]["risk_score"]["survival"]["not_estimable"] == reason
    assert list(run.tables["survival"].columns) == SURVIVAL_COLUMNS
    assert run.tables["survival"][["split", "n", "n_events", "not_estimable"]].values.tolist() == [
        ["train", 30, 1, "1 event < 5"], ["test", 40, int(e.sum()), ""], ["solo", 1, 1, reason]]


def test_survival_contrasts_and_incidence_figures_three_levels(tmp_path):
    df = predictions()
    run, metrics = make_run(df, tmp_path)
    cuts = [0.3, 0.6]
    run.thresholds = {"mace_30d": {"method": "incidence", "value": 0.45, "chosen_on": "train", "risk_levels": cuts},
                      "risk_score": {"method": "youden", "value": 0.5, "chosen_on": "train"}}
    run.survival(metrics)
    expected = []
    for target, horizon, c in (("mace_30d", 30.0, cuts), ("risk_score", None, 0.5)):
        for split in ("train", "test", "external"):
            t, e, r = follow_up(run.df, split, target, horizon)
            gc = group_contrasts(t, e, assign_risk_groups(r, c))
            assert same(metrics[split][target]["risk_group_contrasts"], _contrast_records(gc))
            expected.append(gc.assign(split=split, target=target))
    table = run.tables["risk_group_contrasts"]
    assert list(table.columns) == ["split", "target", "group", "reference", "n", "n_events", "hazard_ratio", "ci_low",
                                   "ci_high", "cox_p", "logrank_p", "not_estimable"]
    exp = pd.concat(expected, ignore_index=True)[list(table.columns)]
    pd.testing.assert_frame_equal(table.reset_index(drop=True), exp)
    assert table["group"].tolist()[:2] == ["intermediate", "high"]
    # One figure per non-train split and target; the train split gets contrasts but no figure.
    t_test, e_test, _ = follow_up(run.df, "test", "mace_30d", 30.0)
    t_ext, e_ext, _ = follow_up(run.df, "external", "risk_score", None)
    lab_m, lab_r = "30-day MACE", "risk score"
    from riskfm.plots.style import target_label

    lab_m, lab_r = target_label("mace_30d"), target_label("risk_score")
    n_ev = int(e_test.sum())
    assert pending(run) == [
        ("Time to event", f"Kaplan\u2013Meier cumulative incidence of {lab_m} by risk group over its 30-day horizon "
         f"(dotted line), test (three levels: sensitivity/specificity cut-offs 0.300, 0.600, chosen on train); "
         f"n={len(t_test)}, {n_ev} events; numbers at risk below", "cumulative_incidence_test_mace_30d.png"),
        ("Time to event", f"Kaplan\u2013Meier cumulative incidence of {lab_m} by risk group over its 30-day horizon "
         f"(dotted line), external (three levels: sensitivity/specificity cut-offs 0.300, 0.600, chosen on train); "
         f"n={SIZES['external']}, {int(follow_up(run.df, 'external', 'mace_30d', 30.0)[1].sum())} events; numbers at "
         "risk below", "cumulative_incidence_external_mace_30d.png"),
        ("Time to event", "Kaplan\u2013Meier cumulative incidence by risk group of the time-to-event target "
         f"{lab_r}, over follow-up (to day {float(np.max(follow_up(run.df, 'test', 'risk_score', None)[0])):g}), "
         f"test (youden threshold 0.500, chosen on train); n={SIZES['test']}, "
         f"{int(follow_up(run.df, 'test', 'risk_score', None)[1].sum())} events; numbers at risk below",
         "cumulative_incidence_test_risk_score.png"),
        ("Time to event", "Kaplan\u2013Meier cumulative incidence by risk group of the time-to-event target "
         f"{lab_r}, over follow-up (to day {float(np.max(t_ext)):g}), external (youden threshold 0.500, chosen on "
         f"train); n={len(t_ext)}, {int(e_ext.sum())} events; numbers at risk below",
         "cumulative_incidence_external_risk_score.png"),
    ]
    assert f"{lab_m} by day 30 \u2014 test" in draw(run, "cumulative_incidence_test_mace_30d.png")
    assert f"Time to event: {lab_r} \u2014 external" in draw(run, "cumulative_incidence_external_risk_score.png")


def test_survival_incidence_figure_draws_the_right_rows(tmp_path, monkeypatch):
    run, metrics = make_run(predictions(targets=("mace_30d",)), tmp_path, confidence=0.9)
    run.thresholds = {"mace_30d": {"method": "incidence", "value": 0.45, "chosen_on": "train"}}
    run.survival(metrics)
    seen = {}

    def fake(t, e, groups, confidence, horizon_days):
        seen.update(t=t, e=e, groups=groups, confidence=confidence, horizon=horizon_days)
        raise ValueError("stop")

    monkeypatch.setattr(pipeline, "cumulative_incidence_by_group", fake)
    make = {n: m for _, _, n, m in run.pending}["cumulative_incidence_external_mace_30d.png"]
    with pytest.raises(ValueError, match="stop"):
        make()
    t, e, r = follow_up(run.df, "external", "mace_30d", 30.0)
    np.testing.assert_array_equal(seen["t"], t)
    np.testing.assert_array_equal(seen["e"], e)
    np.testing.assert_array_equal(seen["groups"], assign_risk_groups(r, 0.45))
    assert seen["confidence"] == 0.9 and seen["horizon"] == 30.0


def test_survival_metrics_error_is_a_note(tmp_path, monkeypatch):
    run, metrics = make_run(predictions(targets=("risk_score",)), tmp_path)

    def broken(t, e, r, train):
        raise ValueError("times outside follow-up")

    monkeypatch.setattr(pipeline, "survival_metrics", broken)
    run.survival(metrics)
    assert run.notes["Time to event"] == [f"{s}/risk_score: survival metrics skipped: times outside follow-up"
                                          for s in ("train", "test", "external")]
    assert "survival" not in run.tables and all("survival" not in metrics[s]["risk_score"] for s in metrics)


def test_survival_single_group_has_no_contrast_and_figures_off(tmp_path):
    run, metrics = make_run(predictions(targets=("risk_score",)), tmp_path, figures=False)
    run.thresholds = {"risk_score": {"method": "incidence", "value": 0.999, "chosen_on": "train"}}
    run.survival(metrics)
    assert "risk_group_contrasts" not in run.tables and run.pending == []
    assert "survival" in run.tables


def test_contrast_records_turns_hazard_ratios_into_estimates():
    c = pd.DataFrame([
        {"group": "high", "reference": "low", "n": 7, "n_events": 3, "hazard_ratio": 2.5, "ci_low": 1.25,
         "ci_high": 5.0, "cox_p": 0.01, "logrank_p": 0.02, "not_estimable": ""},
        {"group": "intermediate", "reference": "low", "n": 4, "n_events": 0, "hazard_ratio": math.nan,
         "ci_low": math.nan, "ci_high": math.nan, "cox_p": math.nan, "logrank_p": 0.5,
         "not_estimable": "no events in the 'intermediate' group"}])
    out = _contrast_records(c)
    assert out[0] == {"group": "high", "reference": "low",
                      "hazard_ratio": {"value": 2.5, "ci": [1.25, 5.0], "method": "Cox (Efron ties), Wald interval",
                                       "n": 7, "n_pos": None, "confidence": 0.95, "se": None},
                      "n": 7, "n_events": 3, "cox_p": 0.01, "logrank_p": 0.02, "not_estimable": ""}
    assert list(out[0]) == ["group", "reference", "hazard_ratio", "n", "n_events", "cox_p", "logrank_p",
                            "not_estimable"]
    hr = out[1]["hazard_ratio"]
    assert hr["value"] is None and hr["ci"] is None and hr["n"] == 4
    assert hr["not_estimable"] == "no events in the 'intermediate' group"
    assert out[1]["not_estimable"] == "no events in the 'intermediate' group" and out[1]["logrank_p"] == 0.5


# ------------------------------------------------------------------------------------------ decision curves
def test_decision_curves_grid_table_and_figures(tmp_path):
    from riskfm.plots.style import target_label

    df = predictions(sizes={"train": 30, "val": 20, "test": 30}, targets=("mace_30d", "stenosis_lad"), time=False)
    df.loc[(df["split"] == "test") & (df["patient_id"] == "test004"), "y_true"] = np.nan  # unknown: left out
    df.loc[(df["split"] == "val") & (df["target"] == "stenosis_lad"), "y_true"] = 0.0  # single class: no curve
    run, metrics = make_run(df, tmp_path, decision_thresholds=[0.1, 0.3, 0.1])
    run.decision_curves()
    table = run.tables["decision_curves"]
    assert list(table.columns) == ["split", "target", "n", "n_pos", "threshold", "net_benefit", "treat_all",
                                   "treat_none"]
    assert run.targets == ["stenosis_lad", "mace_30d"]
    order = [("train", "stenosis_lad"), ("train", "mace_30d"), ("val", "mace_30d"), ("test", "stenosis_lad"),
             ("test", "mace_30d")]
    assert table[["split", "target"]].drop_duplicates().apply(tuple, axis=1).tolist() == order
    for split, target in order:
        d = rows(run.df, split, target)
        y, p = d["y_true"].to_numpy(float), d["y_prob"].to_numpy(float)
        got = table[(table["split"] == split) & (table["target"] == target)]
        assert got["threshold"].tolist() == [0.1, 0.2, 0.3]
        assert (got["n"] == len(y)).all() and (got["n_pos"] == int(y.sum())).all()
        for pt, nb, ta, tn in got[["threshold", "net_benefit", "treat_all", "treat_none"]].itertuples(index=False):
            treat = p >= pt
            want = ((treat & (y == 1)).sum() - (treat & (y == 0)).sum() * pt / (1 - pt)) / len(y)
            assert nb == pytest.approx(want, abs=1e-12)
            assert ta == pytest.approx(y.mean() - (1 - y.mean()) * pt / (1 - pt), abs=1e-12) and tn == 0
    assert (table.loc[table["split"] == "test", "n"] == [29] * 6).all()
    cap = "Net benefit of acting on predicted {} risk, {}, against treat-all and treat-none"
    assert pending(run) == [
        ("Decision curves", cap.format(target_label("mace_30d"), "val"), "decision_curve_val_mace_30d.png"),
        ("Decision curves", cap.format(target_label("stenosis_lad"), "test"), "decision_curve_test_stenosis_lad.png"),
        ("Decision curves", cap.format(target_label("mace_30d"), "test"), "decision_curve_test_mace_30d.png"),
    ]
    texts = draw(run, "decision_curve_test_stenosis_lad.png")
    assert f"Decision curve \u2014 {target_label('stenosis_lad')}, test" in texts
    assert any(target_label("stenosis_lad") in t and "Decision" not in t for t in texts)  # the legend
    assert metrics == make_run(df, tmp_path, decision_thresholds=[0.1, 0.3, 0.1])[1]  # metrics untouched


@pytest.mark.parametrize("spec, grid", [([0.1, 0.45, 0.2], [0.1, 0.3]), ([0.2, 0.9, 0.5], [0.2, 0.7]),
                                         ([0.05, 0.35, 0.1], [0.05, 0.15, 0.25, 0.35])])
def test_decision_curve_grid_stops_at_stop(tmp_path, spec, grid):
    # Bug fixed: arange(start, stop + step / 2, step) went past stop when step does not divide
    # stop - start ([0.1, 0.45, 0.2] gave 0.5; [0.2, 0.9, 0.5] gave 1.2 and evaluate() failed).
    df = predictions(sizes={"train": 20}, targets=("mace_30d",), time=False)
    run, metrics = make_run(df, tmp_path, decision_thresholds=spec)
    run.decision_curves()
    assert run.tables["decision_curves"]["threshold"].tolist() == grid


@pytest.mark.parametrize("step", [0, -0.1])
def test_decision_curve_step_must_be_positive(step):
    with pytest.raises(ValueError, match=rf"^evaluation spec: decision_thresholds: step must be > 0, got {step}$"):
        EvaluationSpec(decision_thresholds=[0.1, 0.5, step])


def test_decision_curves_default_grid_train_only_and_nothing(tmp_path):
    df = predictions(sizes={"train": 30}, targets=("mace_30d",), time=False)
    run, metrics = make_run(df, tmp_path)
    run.decision_curves()
    t = run.tables["decision_curves"]
    assert len(t) == 50 and t["threshold"].iloc[5] == 0.06 and t["threshold"].iloc[-1] == 0.5
    assert run.pending == []  # the train split gets no figure
    df.loc[:, "y_true"] = 0.0
    run, metrics = make_run(df, tmp_path)
    run.decision_curves()
    assert "decision_curves" not in run.tables and run.pending == []


# ------------------------------------------------------------------------------------------ attributes
def test_attributes_covariates_site_and_notes(tmp_path):
    df = predictions(sizes={"train": 20, "test": 20, "external": 20}, targets=("mace_30d",), time=False)
    cov = covariates(df)
    run, _ = make_run(df, tmp_path, cov=cov)
    attrs = run.attributes()
    assert list(attrs) == ["sex", "smoker", "site"] and run.notes == {}
    site = run.df.drop_duplicates("patient_id").set_index("patient_id")["site"]
    pd.testing.assert_series_equal(attrs["site"], site)
    assert attrs["sex"].loc["test001"] == cov.set_index("patient_id").loc["test001", "sex"]
    # Covariates for patients not in the predictions are left out.
    extra = pd.concat([cov, pd.DataFrame({"patient_id": ["zz"], "sex": ["X"], "smoker": ["no"]})])
    run, _ = make_run(df, tmp_path, cov=extra)
    assert "X" not in set(run.attributes()["sex"].astype(str))
    # Only the site, from spec.subgroups (the covariates have no site column).
    run, _ = make_run(df, tmp_path, cov=cov, subgroups=["sex", "site"])
    assert list(run.attributes()) == ["sex", "site"] and run.notes == {}
    run, _ = make_run(df, tmp_path, cov=cov, subgroups=["smoker"])
    assert list(run.attributes()) == ["smoker"]
    # A site column in the covariates wins over the predictions' one.
    own = cov.assign(site=np.where(np.arange(len(cov)) % 3 == 0, "hq", "branch"))
    run, _ = make_run(df, tmp_path, cov=own, subgroups=["site", "sex"])
    a = run.attributes()
    assert list(a) == ["site", "sex"] and set(a["site"].astype(str)) == {"hq", "branch"}


def test_attributes_without_matching_covariates_or_sites(tmp_path):
    df = predictions(sizes={"train": 20, "test": 20, "external": 20}, targets=("mace_30d",), time=False)
    run, _ = make_run(df, tmp_path, cov=pd.DataFrame({"patient_id": ["nobody"], "sex": ["F"]}))
    assert list(run.attributes()) == ["site"]
    assert run.notes == {SECTION: ["no covariate row matches a patient of the predictions"]}
    run, _ = make_run(df, tmp_path, subgroups=["sex", "site"])
    assert list(run.attributes()) == ["site"]
    assert run.notes == {SECTION: ["subgroups requested but no covariates given"]}
    run, _ = make_run(df, tmp_path, subgroups=["sex"])
    assert run.attributes() == {}
    run, _ = make_run(df, tmp_path, max_subgroup_levels=2, subgroup_quantiles=2)
    assert run.attributes() == {}
    assert run.notes == {SECTION: ["site: 3 sites, more than max_subgroup_levels (2); no site subgroups"]}
    run, _ = make_run(df, tmp_path, max_subgroup_levels=3, subgroup_quantiles=2)
    assert list(run.attributes()) == ["site"] and run.notes == {}
    run, _ = make_run(df[df["split"] != "external"], tmp_path)
    assert list(run.attributes()) == ["site"] and run.attributes()["site"].nunique() == 2
    run, _ = make_run(df.assign(site="one"), tmp_path)
    assert run.attributes() == {} and run.notes == {}
    run, _ = make_run(df.drop(columns="site"), tmp_path)
    assert run.attributes() == {} and run.notes == {}
    run, _ = make_run(df.drop(columns="site"), tmp_path, cov=covariates(df), subgroups=["sex", "site"])
    with pytest.raises(ValueError, match="site"):  # asked for a site that nobody has
        run.attributes()


def test_attributes_pass_bins_and_notes_of_subgroup_attributes(tmp_path):
    df = predictions(sizes={"train": 20, "test": 20}, targets=("mace_30d",), time=False, site=False)
    cov = covariates(df).assign(age=np.arange(40) + 30, bmi=np.linspace(18, 40, 40), ward=[f"w{i % 8}" for i in range(40)],
                                one="x")
    run, _ = make_run(df, tmp_path, cov=cov[["patient_id", "age", "bmi", "one"]], subgroup_bins={"age": [50]},
                      subgroup_quantiles=3, max_subgroup_levels=5)
    a = run.attributes()
    assert list(a) == ["age", "bmi"] and a["age"].nunique() == 2 and a["bmi"].nunique() == 3
    assert run.notes == {SECTION: ["covariates: 'bmi' (40 values) cut into 3 quantile bins (\u226425, 25\u201333, >33)",
                                   "covariates: 'one' has a single level; left out"]}
    with pytest.raises(ValueError, match="ward"):
        make_run(df, tmp_path, cov=cov[["patient_id", "ward"]], max_subgroup_levels=5,
                 subgroup_quantiles=2)[0].attributes()


# ------------------------------------------------------------------------------------------ subgroups
def expected_subgroup_cell(run, split, target, attrs, metric="auroc", thr=None):
    s = run.spec
    d = rows(run.df, split, target)
    y, p = d["y_true"].to_numpy(float), d["y_prob"].to_numpy(float)
    sub, gaps, tables = {}, {}, []
    for name, series in attrs.items():
        g = series.reindex(d["patient_id"].to_numpy()).reset_index(drop=True)  # keeps categorical bands
        if g.nunique() < 2:
            continue
        t = subgroup_metrics(y, p, g, metric, attribute=name, n_boot=s.n_boot, seed=s.seed,
                             confidence=s.confidence, threshold=thr, min_events=s.min_events,
                             min_nonevents=s.min_nonevents)
        tables.append(t)
        sub[name] = {str(r["level"]): r for _, r in t[t["level"] != "All"].iterrows()}
        gaps[name] = fairness_gaps(pd.DataFrame({"group": g, "y_true": y, "y_prob": p}), "group", metric,
                                   threshold=thr, n_resamples=s.n_boot, seed=s.seed, confidence=s.confidence,
                                   min_events=s.min_events, min_nonevents=s.min_nonevents, attribute=name)
    return sub, gaps, tables


def check_cell(run, metrics, split, target, attrs, metric, thr, counts):
    """The cell's subgroups and fairness_gaps against subgroup_metrics / fairness_gaps on the same rows."""
    sub, gaps, _ = expected_subgroup_cell(run, split, target, attrs, metric, thr)
    cell = metrics[split][target]
    assert list(cell["subgroups"]) == list(sub)
    for name, levels in sub.items():
        assert list(cell["subgroups"][name]) == list(levels)
        for level, r in levels.items():
            got = cell["subgroups"][name][level]
            assert list(got)[:5] == ["metric", "value", "ci", "method", "n"]
            assert got["metric"] == metric and got["n"] == r["n"] and got["n_pos"] == r["n_pos"]
            assert got["confidence"] == run.spec.confidence
            if r["not_estimable"]:
                counts[1] += 1
                assert got["value"] is None and got["ci"] is None and got["method"] == "none"
                assert got["not_estimable"] == r["not_estimable"]
            else:
                counts[0] += r["n_pos"] < 10 or r["n"] - r["n_pos"] < 10
                assert got["value"] == pytest.approx(r["value"]) and got["method"] == r["method"]
                assert got["ci"] == pytest.approx([r["ci_low"], r["ci_high"]])
                assert "not_estimable" not in got
    assert same(cell["fairness_gaps"], {k: v.to_dict() for k, v in gaps.items()})


def test_subgroups_cells_tables_forest_and_threshold(tmp_path):
    from riskfm.plots.style import target_label

    df = predictions(sizes={"train": 30, "test": 36, "external": 36}, targets=("stenosis_lad", "mace_30d"),
                     time=False)
    df.loc[(df["split"] == "test") & (df["patient_id"] == "test000"), "y_true"] = np.nan
    cov = with_age(covariates(df))
    run, metrics = make_run(df, tmp_path, cov=cov, subgroup_metric="sensitivity", confidence=0.9, min_events=3,
                            min_nonevents=3, subgroup_bins={"age": [50, 65]})
    run.thresholds = {"mace_30d": {"method": "incidence", "value": 0.35, "chosen_on": "train"},
                      "stenosis_lad": {"method": "incidence", "value": 0.6, "chosen_on": "train"}}
    run.subgroups(metrics)
    attrs = run.attributes()
    assert list(attrs) == ["sex", "smoker", "age", "site"]
    assert "subgroups" not in metrics["train"]["mace_30d"]  # the train split is not a subgroup analysis
    all_tables, all_gaps, counts = [], [], [0, 0]
    for split in ("test", "external"):
        for target in ("stenosis_lad", "mace_30d"):
            sub, gaps, tables = expected_subgroup_cell(run, split, target, attrs, "sensitivity",
                                                       run.thresholds[target]["value"])
            check_cell(run, metrics, split, target, attrs, "sensitivity", run.thresholds[target]["value"], counts)
            cell = metrics[split][target]
            assert list(cell["subgroups"]["age"]) == [lv for lv in ("\u226450", "50\u201365", ">65")
                                                      if lv in cell["subgroups"]["age"]]
            all_tables.append(pd.concat(tables, ignore_index=True).assign(split=split, target=target))
            all_gaps += [g.estimable_rows().assign(split=split, target=target) for g in gaps.values()
                         if len(g.estimable_rows())]
    assert counts[0] and counts[1]  # small but estimable levels, and not estimable ones: the spec's rule
    sub_t = pd.concat(all_tables, ignore_index=True)
    sub_t = sub_t[["split", "target", *[c for c in sub_t.columns if c not in ("split", "target")]]]
    pd.testing.assert_frame_equal(run.tables["subgroups"], sub_t)
    gap_t = pd.concat(all_gaps, ignore_index=True)
    gap_t = gap_t[["split", "target", *[c for c in gap_t.columns if c not in ("split", "target")]]]
    pd.testing.assert_frame_equal(run.tables["fairness_gaps"], gap_t)
    # One per attribute, split and target; the site has one level (site_ext) in the external split.
    assert (run.tables["subgroups"]["level"] == "All").sum() == 2 * 4 + 2 * 3
    # The forest figure: the primary target (mace_30d by default), every non-train split.
    lab = target_label("mace_30d")
    cap = (f"SENSITIVITY of {lab} by subgroup, {{}} (90% stratified bootstrap intervals; dashed: all patients; "
           "n and events on the right; n/e: not estimable, no point drawn: fewer than 3 events or 3 non-events)")
    assert pending(run) == [(SECTION, cap.format("test"), "forest_test_mace_30d.png"),
                            (SECTION, cap.format("external"), "forest_external_mace_30d.png")]
    assert run.notes == {}
    assert f"{lab} \u2014 external" in draw(run, "forest_external_mace_30d.png")


def test_subgroups_forest_rows_primary_target_and_confidence(tmp_path, monkeypatch):
    df = predictions(sizes={"train": 30, "test": 36}, targets=("stenosis_lad", "risk_score"), time=False)
    run, metrics = make_run(df, tmp_path, cov=covariates(df), primary_target="risk_score", confidence=0.9)
    run.subgroups(metrics)
    counts = [0, 0]
    for target in ("stenosis_lad", "risk_score"):
        check_cell(run, metrics, "test", target, run.attributes(), "auroc", None, counts)
    assert counts[0]  # AUROC levels estimable with 5 events but not with the default 10: the spec's rule
    assert [n for _, _, n in pending(run)] == ["forest_test_risk_score.png"]
    assert "AUROC (90% CI)" in draw(run, "forest_test_risk_score.png")
    assert "(90% stratified bootstrap intervals;" in run.pending[0][1]
    seen = dict(zip(("ft", "split", "target"), run.pending[0][3].__defaults__))
    assert seen["split"] == "test" and seen["target"] == "risk_score"
    t = run.tables["subgroups"]
    t = t[(t["target"] == "risk_score")].drop(columns=["split", "target"])
    want = pd.concat([t[t["level"] == "All"].head(1), t[t["level"] != "All"]], ignore_index=True)
    pd.testing.assert_frame_equal(seen["ft"], want)
    assert seen["ft"]["level"].tolist()[:2] == ["All", "F"]
    # Default primary target without mace_30d: the first target.
    run, metrics = make_run(df, tmp_path, cov=covariates(df))
    run.subgroups(metrics)
    assert [n for _, _, n in pending(run)] == ["forest_test_stenosis_lad.png"]
    run, metrics = make_run(df, tmp_path, cov=covariates(df), figures=False)
    run.subgroups(metrics)
    assert run.pending == [] and "subgroups" in run.tables


def test_subgroups_skip_single_level_single_class_and_no_attributes(tmp_path):
    df = predictions(sizes={"train": 30, "test": 60, "external": 40}, targets=("mace_30d", "stenosis_lad"),
                     time=False)
    df.loc[(df["split"] == "external") & (df["target"] == "stenosis_lad"), "y_true"] = 1.0  # one class
    cov = covariates(df)
    cov.loc[cov["patient_id"].str.startswith("external"), "sex"] = "F"  # one level in external
    run, metrics = make_run(df, tmp_path, cov=cov)
    run.subgroups(metrics)
    assert list(metrics["external"]["mace_30d"]["subgroups"]) == ["smoker"]  # one sex level, one site
    assert list(metrics["test"]["mace_30d"]["subgroups"]) == ["sex", "smoker", "site"]
    assert "subgroups" not in metrics["external"]["stenosis_lad"]
    assert run.tables["subgroups"][["split", "target"]].drop_duplicates().apply(tuple, axis=1).tolist() == [
        ("test", "stenosis_lad"), ("test", "mace_30d"), ("external", "mace_30d")]
    # No attribute at all.
    run, metrics = make_run(df.drop(columns="site"), tmp_path)
    run.subgroups(metrics)
    assert run.notes == {SECTION: ["no subgroup attributes (pass covariates=, or a site column)"]}
    assert run.tables == {} and run.pending == []
    # Attributes, but none with two levels among the evaluated patients: no tables, no note.
    one = cov.assign(sex=np.where(cov["patient_id"].str.startswith("train"), "M", "F"))[["patient_id", "sex"]]
    run, metrics = make_run(df.drop(columns="site"), tmp_path, cov=one)
    run.subgroups(metrics)
    assert run.tables == {} and run.notes == {}
    # No usable attribute in the test split, two sexes in the external split: external still analysed.
    base = covariates(df)
    late = base.assign(sex=np.where(base["patient_id"].str.startswith("test"), "F", base["sex"]))[["patient_id", "sex"]]
    run, metrics = make_run(df.drop(columns="site"), tmp_path, cov=late)
    run.subgroups(metrics)
    assert run.tables["subgroups"][["split", "target"]].drop_duplicates().apply(tuple, axis=1).tolist() == [
        ("external", "mace_30d")]


def test_subgroups_not_estimable_levels_and_empty_fairness_table(tmp_path):
    df = predictions(sizes={"train": 20, "test": 40}, targets=("mace_30d",), time=False, site=False)
    run, metrics = make_run(df, tmp_path, cov=covariates(df)[["patient_id", "sex"]], min_events=15,
                            min_nonevents=15)
    run.subgroups(metrics)
    levels = metrics["test"]["mace_30d"]["subgroups"]["sex"]
    assert list(levels) == ["F", "M"]
    d = rows(run.df, "test", "mace_30d")
    for level, got in levels.items():
        sex = covariates(df).set_index("patient_id")["sex"]
        y = d.loc[d["patient_id"].map(sex) == level, "y_true"]
        assert got["value"] is None and got["ci"] is None and got["n"] == len(y) and got["n_pos"] == int(y.sum())
        k = int(y.sum())
        assert got["not_estimable"] == f"{k} events < 15, {len(y) - k} non-events < 15"
        assert got["method"] == "none" and got["metric"] == "auroc"
    assert metrics["test"]["mace_30d"]["fairness_gaps"]["sex"]["value"] is None
    ft = run.tables["fairness_gaps"]
    assert ft.empty and list(ft.columns) == ["split", "target", *FAIRNESS_COLUMNS]
    assert run.notes == {SECTION: ["no fairness gaps: no attribute has two levels with an estimable AUROC "
                                   "(15 events and 15 non-events each)"]}


def test_subgroups_errors_become_notes(tmp_path, monkeypatch):
    df = predictions(sizes={"train": 20, "test": 40}, targets=("mace_30d",), time=False, site=False)
    cov = with_age(covariates(df))
    run, metrics = make_run(df, tmp_path, cov=cov, subgroup_bins={"age": [60]})
    real, real_gaps = pipeline.subgroup_metrics, pipeline.fairness_gaps

    def picky(y, p, g, metric, attribute, **kw):
        if attribute == "sex":
            raise ValueError("sex is broken")
        return real(y, p, g, metric, attribute=attribute, **kw)

    monkeypatch.setattr(pipeline, "subgroup_metrics", picky)
    def picky_gaps(frame, group, metric, *, attribute, **kw):
        if attribute == "smoker":
            raise ValueError("no gaps")
        return real_gaps(frame, group, metric, attribute=attribute, **kw)

    monkeypatch.setattr(pipeline, "fairness_gaps", picky_gaps)
    run.subgroups(metrics)
    assert run.notes == {SECTION: ["test/mace_30d/sex: sex is broken",
                                   "test/mace_30d/smoker: no fairness gaps: no gaps"]}
    cell = metrics["test"]["mace_30d"]
    assert list(cell["subgroups"]) == ["smoker", "age"] and list(cell["fairness_gaps"]) == ["age"]
    assert run.tables["subgroups"]["attribute"].drop_duplicates().tolist() == ["smoker", "age"]
    assert set(run.tables["fairness_gaps"]["attribute"]) == {"age"}
    # Every fairness computation failing: the empty table and its note.
    monkeypatch.setattr(pipeline, "fairness_gaps", lambda *a, **k: (_ for _ in ()).throw(ValueError("none")))
    run, metrics = make_run(df, tmp_path, cov=cov[["patient_id", "smoker"]])
    run.subgroups(metrics)
    # Only the errors: the note "no attribute has two estimable levels" would blame the wrong cause.
    assert run.notes == {SECTION: ["test/mace_30d/smoker: no fairness gaps: none"]}
    ft = run.tables["fairness_gaps"]
    assert ft.empty and list(ft.columns) == ["split", "target", *FAIRNESS_COLUMNS]


# ------------------------------------------------------------------------------------------ agreement
def test_agreement_per_split_and_score(tmp_path):
    df = predictions(sizes={"train": 10, "test": 10}, targets=("mace_30d",), time=False)
    rng = np.random.default_rng(5)
    ref = rng.uniform(0, 400, 24)
    scores = pd.DataFrame({"patient_id": [f"p{i}" for i in range(24)],
                           "split": ["test"] * 12 + ["external"] * 12,
                           "score": (["agatston"] * 8 + ["volume"] * 4) * 2,
                           "reference": ref, "predicted": ref + rng.normal(5, 20, 24)})
    scores["comment"] = [None if i % 4 == 0 else "ok" for i in range(24)]  # other columns do not matter
    scores.loc[1, "predicted"] = np.nan  # unpaired: dropped
    scores.loc[[9, 10], "reference"] = np.nan  # test/volume keeps 2 pairs: skipped
    scores.loc[23, "predicted"] = np.nan  # external/volume keeps 3 pairs: enough
    run, metrics = make_run(df, tmp_path, confidence=0.9)
    run.agreement(None, metrics)
    assert run.tables == {} and run.notes == {}
    run.agreement(scores, metrics)
    assert run.notes == {"Agreement of scores": ["test/volume: 2 paired scores, need 3; skipped"]}
    t = run.tables["agreement"]
    assert list(t.columns) == ["split", "score", "n", "bias", "ci_low", "ci_high", "sd", "loa_low", "loa_high",
                               "confidence"]
    assert t[["split", "score"]].apply(tuple, axis=1).tolist() == [("test", "agatston"), ("external", "agatston"),
                                                                   ("external", "volume")]
    for i, (split, name) in enumerate([("test", "agatston"), ("external", "agatston"), ("external", "volume")]):
        g = scores[(scores["split"] == split) & (scores["score"] == name)].dropna(subset=["reference", "predicted"])
        ba = bland_altman(g["reference"].to_numpy(float), g["predicted"].to_numpy(float), confidence=0.9)
        assert t.iloc[i].tolist() == [split, name, ba.n, ba.value, ba.ci[0], ba.ci[1], ba.sd, ba.loa[0], ba.loa[1],
                                      0.9]
        assert metrics[split][name] == {"n": ba.n, "bland_altman": ba.to_dict()}
    assert t["n"].tolist() == [7, 8, 3] and "volume" not in metrics["test"]
    assert "mace_30d" in metrics["test"]  # the target cells stay
    assert pending(run) == [("Agreement of scores", "Bland-Altman, agatston (test)", "bland_altman_test_agatston.png"),
                            ("Agreement of scores", "Bland-Altman, agatston (external)",
                             "bland_altman_external_agatston.png"),
                            ("Agreement of scores", "Bland-Altman, volume (external)",
                             "bland_altman_external_volume.png")]
    assert "volume" in draw(run, "bland_altman_external_volume.png")
    # Only unusable scores: a note, no table.
    run, metrics = make_run(df, tmp_path, figures=False)
    run.agreement(scores[scores["score"] == "volume"].head(3), metrics)
    assert "agreement" not in run.tables and run.pending == []
