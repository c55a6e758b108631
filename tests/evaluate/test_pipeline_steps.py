"""evaluate()'s steps one at a time: the right rows go in, the results land in the right place.

Each step of ``riskfm.evaluate.pipeline`` is checked on small predictions against an independent
computation (scikit-learn, numpy by hand) or, for statistics that are reference-tested in their
own modules, against that function called on the rows the step should have used: the split the
threshold is chosen on, the split recalibration is fitted on, the known outcomes only. Notes,
captions and file names are compared exactly: they are what the report shows.
"""

from __future__ import annotations

import logging
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from sklearn.metrics import average_precision_score

from riskfm.evaluate import pipeline as pl
from riskfm.evaluate.calibration import calibration, fit_recalibration
from riskfm.evaluate.discrimination import average_precision
from riskfm.evaluate.fairness import fairness_gaps
from riskfm.evaluate.guards import estimable
from riskfm.evaluate.results import bootstrap_method
from riskfm.evaluate.run_metrics import metrics_from_predictions, read_metrics, validate_predictions
from riskfm.evaluate.spec import EvaluationSpec
from riskfm.evaluate.thresholds import (
    three_level_thresholds,
    threshold_at_sensitivity,
    threshold_at_specificity,
    threshold_metrics,
    youden_threshold,
)

SIZES = {"train": 150, "val": 90, "test": 100, "external": 80}
TARGETS = (("stenosis_lad", 0.3), ("mace_30d", 0.2))


def predictions(sizes=SIZES, targets=TARGETS, seed=0) -> pd.DataFrame:
    """Long-format predictions; the first patient of every split x target has an unknown outcome."""
    rng = np.random.default_rng(seed)
    frames = []
    for split, n in sizes.items():
        pids = [f"{split[:2].upper()}{i:03d}" for i in range(n)]
        for target, prev in targets:
            x = rng.normal(size=n)
            p = 1 / (1 + np.exp(-(1.2 * x + math.log(prev / (1 - prev)))))
            y = (rng.random(n) < p).astype(float)
            y[0] = np.nan
            frames.append(pd.DataFrame({"patient_id": pids, "split": split, "target": target, "y_true": y,
                                        "y_prob": p}))
    return pd.concat(frames, ignore_index=True)


def start(df: pd.DataFrame, out: Path, cov=None, **spec) -> tuple[pl._Run, dict]:
    """A run and its AUROC cells, as ``evaluate`` makes them before the steps."""
    s = EvaluationSpec.from_any({"n_boot": 40, "figures": False, "report": False, **spec})
    df = validate_predictions(df, source="<test>")
    run = pl._Run(df, out, s, "train", "val", cov)
    metrics = metrics_from_predictions(df, ci=s.ci, n_boot=s.n_boot, seed=s.seed, confidence=s.confidence,
                                       min_events=s.min_events, min_nonevents=s.min_nonevents)
    return run, metrics


def known(df: pd.DataFrame, split: str, target: str) -> tuple[np.ndarray, np.ndarray]:
    d = df[(df["split"] == split) & (df["target"] == target) & df["y_true"].notna()]
    return d["y_true"].to_numpy(float), d["y_prob"].to_numpy(float)


class Recorder:
    """Stands in for a figure function: records its arguments; ``.plot(title=...)`` returns the title."""

    def __init__(self):
        self.calls = []

    def __call__(self, *args, **kwargs):
        self.calls.append((args, kwargs))
        return self

    def plot(self, **kwargs):
        return kwargs


# ----------------------------------------------------------------------------- module helpers
@pytest.mark.parametrize("name, safe", [("test", "test"), ("test/ext set", "test_ext_set"), ("a..b-c", "a..b-c"),
                                        ("__x__", "x"), ("//", "unnamed"), ("", "unnamed"), (7, "7"),
                                        ("Zürich", "Z_rich"), ("X_ray X", "X_ray_X")])
def test_file_names_are_safe(name, safe):
    assert pl._safe(name) == safe


@pytest.mark.parametrize("y, both", [([], False), ([0.0], False), ([1.0], False), ([0.0, 0.0], False),
                                     ([1.0, 1.0], False), ([0.0, 1.0], True), ([1.0, 0.0, 0.0], True)])
def test_both_outcomes(y, both):
    assert pl._both(np.asarray(y, dtype=float)) is both


def test_events_are_counted_in_words():
    assert [pl._events(k) for k in (0, 1, 2)] == ["0 events", "1 event", "2 events"]


def test_contrast_records_put_the_hazard_ratio_in_an_estimate_object():
    c = pd.DataFrame({"group": ["high", "intermediate"], "reference": ["low", "low"], "n": [40, 30],
                      "n_events": [12, 0], "hazard_ratio": [2.5, np.nan], "ci_low": [1.25, np.nan],
                      "ci_high": [5.0, np.nan], "cox_p": [0.01, np.nan], "logrank_p": [0.02, 0.5],
                      "not_estimable": ["", "no events in the 'intermediate' group"]})
    method = "Cox (Efron ties), Wald interval"
    assert pl._contrast_records(c) == [
        {"group": "high", "reference": "low",
         "hazard_ratio": {"value": 2.5, "ci": [1.25, 5.0], "method": method, "n": 40, "n_pos": None,
                          "confidence": 0.95, "se": None},
         "n": 40, "n_events": 12, "cox_p": 0.01, "logrank_p": 0.02, "not_estimable": ""},
        {"group": "intermediate", "reference": "low",
         "hazard_ratio": {"value": None, "ci": None, "method": method, "n": 30, "n_pos": None, "confidence": 0.95,
                          "se": None, "not_estimable": "no events in the 'intermediate' group"},
         "n": 30, "n_events": 0, "cox_p": pytest.approx(np.nan, nan_ok=True), "logrank_p": 0.5,
         "not_estimable": "no events in the 'intermediate' group"}]


# ----------------------------------------------------------------------------- covariates
def test_covariates_from_a_frame_are_text_ids_and_the_frame_is_left_alone():
    cov = pd.DataFrame({"patient_id": [7, 8], "sex": ["F", "M"]})
    out = pl.read_covariates(cov)
    assert out["patient_id"].tolist() == ["7", "8"] and out["sex"].tolist() == ["F", "M"]
    assert cov["patient_id"].tolist() == [7, 8]  # the caller's frame is not changed


def test_covariates_from_a_csv_keep_leading_zeros_and_lose_padding(tmp_path):
    f = tmp_path / "cov.csv"
    f.write_text("patient_id,sex\n007,F\n 008 ,M\n")
    assert pl.read_covariates(f)["patient_id"].tolist() == ["007", "008"]
    assert pl.read_covariates(str(f))["patient_id"].tolist() == ["007", "008"]


def test_covariate_errors_name_the_source_and_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"^covariates file not found: .*nope\.csv$"):
        pl.read_covariates(tmp_path / "nope.csv")
    with pytest.raises(ValueError, match=r"^<covariates DataFrame>: covariates need a 'patient_id' column "
                                         r"\(found \['id', 'sex'\]\)$"):
        pl.read_covariates(pd.DataFrame({"id": [1], "sex": ["F"]}))
    f = tmp_path / "cov.csv"
    f.write_text("patient_id,sex\nP1,F\n P1,M\nP2,F\nP2,M\n")
    with pytest.raises(ValueError, match=r"cov\.csv: patient_id 'P1' appears more than once \(2 repeats\); give "
                                         r"one row per patient$"):
        pl.read_covariates(f)
    f.write_text("id,sex\nP1,F\n")
    with pytest.raises(ValueError, match=r"cov\.csv: covariates need a 'patient_id' column"):
        pl.read_covariates(f)


# ----------------------------------------------------------------------------- the operating threshold
@pytest.mark.parametrize("rule", ["incidence", "youden", "sensitivity", "specificity"])
def test_each_threshold_rule_is_the_named_function_with_the_spec_targets(rule):
    df = predictions(sizes={"train": 300})
    y, p = known(df, "train", "mace_30d")
    spec = EvaluationSpec(threshold=rule, sensitivity=0.8, specificity=0.7)
    want = {"incidence": float(np.quantile(p, 1 - y.mean(), method="inverted_cdf")),
            "youden": youden_threshold(y, p), "sensitivity": threshold_at_sensitivity(y, p, 0.8),
            "specificity": threshold_at_specificity(y, p, 0.7)}
    got = pl._choose_threshold(spec, y, p)
    if rule == "incidence":  # the top fraction equal to the prevalence is high risk
        assert (p >= got).mean() == pytest.approx(y.mean(), abs=1.5 / len(p))
    else:
        assert got == want[rule]
    assert len({round(v, 12) for v in want.values()}) == 4  # the rules differ on these data


# ----------------------------------------------------------------------------- the run's own helpers
def test_rows_are_one_split_and_target_with_known_outcomes(tmp_path):
    df = predictions(sizes={"train": 30, "test": 20})
    run, _ = start(df, tmp_path)
    d = run.rows("test", "mace_30d")
    assert len(d) == 19 and set(d["split"]) == {"test"} and set(d["target"]) == {"mace_30d"}
    assert d["y_true"].notna().all()
    assert len(run.rows("test", "mace_30d", known=False)) == 20
    assert run.rows("val", "mace_30d").empty


def test_estimable_uses_the_spec_minimums(tmp_path):
    run, _ = start(predictions(sizes={"train": 30}), tmp_path, min_events=3, min_nonevents=4)
    assert run.estimable(np.array([1, 1, 1, 0, 0, 0, 0.0])) is None
    assert run.estimable(np.array([1, 1, 0, 0, 0, 0.0])) == estimable(np.array([1, 1, 0, 0, 0, 0.0]), run.spec)
    assert run.estimable(np.array([1, 1, 1, 0, 0, 0.0])) is not None
    assert "2 events" in run.estimable(np.array([1, 1, 0, 0, 0, 0.0]))


def test_notes_are_kept_by_section_in_order_and_logged(tmp_path, caplog):
    run, _ = start(predictions(sizes={"train": 30}), tmp_path)
    with caplog.at_level(logging.INFO, logger="riskfm.evaluate.pipeline"):
        run.note("Calibration", "first")
        run.note("Calibration", "second")
        run.note("Thresholds", "third")
    assert run.notes == {"Calibration": ["first", "second"], "Thresholds": ["third"]}
    assert [r.getMessage() for r in caplog.records] == ["evaluate: first", "evaluate: second", "evaluate: third"]


def test_figures_are_queued_only_when_asked_and_drawn_once(tmp_path, monkeypatch):
    off, _ = start(predictions(sizes={"train": 30}), tmp_path)
    off.figure("Calibration", "caption", "a.png", Figure)
    assert off.pending == []

    run, _ = start(predictions(sizes={"train": 30}), tmp_path, figures=True)

    def bad():
        raise ValueError("no curve to draw")

    def make():
        fig = Figure(figsize=(1, 1))
        fig.add_subplot().plot([0, 1])
        return fig

    run.figure("Calibration", "drawn", "cal.png", make)
    run.figure("Calibration", "not drawn", "bad.png", bad)
    run.figure("Extra", "second section", "x.png", make)
    assert [(s, c, n) for s, c, n, _ in run.pending] == [("Calibration", "drawn", "cal.png"),
                                                         ("Calibration", "not drawn", "bad.png"),
                                                         ("Extra", "second section", "x.png")]
    bars = []
    monkeypatch.setattr(pl, "progress", lambda items, **kw: bars.append(kw) or items)
    run.draw_figures()
    assert bars == [{"desc": "evaluate: drawing figures", "unit": "figure", "delay": 2.0}]
    assert run.pending == []
    assert run.figures == {"Calibration": [("drawn", tmp_path / "figures" / "cal.png")],
                           "Extra": [("second section", tmp_path / "figures" / "x.png")]}
    assert (tmp_path / "figures" / "cal.png").is_file() and not (tmp_path / "figures" / "bad.png").exists()
    assert run.notes == {"Calibration": ["figure bad.png skipped: no curve to draw"]}


def _caught() -> list[warnings.WarningMessage]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.warn("old API", DeprecationWarning, stacklevel=1)
        warnings.warn("soon old", PendingDeprecationWarning, stacklevel=1)
        warnings.warn("will change", FutureWarning, stacklevel=1)
        warnings.warn_explicit("overflow encountered in exp", RuntimeWarning, "/x/lifelines/fitters/coxph.py", 10)
        warnings.warn("Cox hazard ratio did not converge", RuntimeWarning, stacklevel=1)
        warnings.warn("divide by zero\nsecond line", RuntimeWarning, stacklevel=1)
        warnings.warn_explicit("divide by zero\nother", RuntimeWarning, "elsewhere.py", 3)
        warnings.warn("x" * 200, UserWarning, stacklevel=1)
    return caught


def test_warnings_are_counted_by_kind_and_explained_once(tmp_path, caplog):
    run, _ = start(predictions(sizes={"train": 30}), tmp_path)
    caught = _caught()
    assert len(caught) == 8
    with caplog.at_level(logging.DEBUG, logger="riskfm.evaluate.pipeline"):
        run.absorb(caught)
    cox = "Cox fits (lifelines): overflow / convergence"
    assert run.warning_counts == {cox: 2, "RuntimeWarning: divide by zero": 2, f"UserWarning: {'x' * 160}": 1}
    meaning = dict(pl._EXPECTED_WARNINGS)[cox]
    assert meaning.startswith("lifelines warns (overflow in exp")
    assert run.warning_notes() == [f"{cox} (2 warnings): {meaning}", "RuntimeWarning: divide by zero (2 warnings)",
                                   f"UserWarning: {'x' * 160} (1 warning)"]
    debug = [r.getMessage() for r in caplog.records]
    assert [m.split(":")[:2] for m in debug] == [["evaluate", " DeprecationWarning"],
                                                 ["evaluate", " PendingDeprecationWarning"],
                                                 ["evaluate", " FutureWarning"]]
    assert debug[0] == f"evaluate: DeprecationWarning: old API ({caught[0].filename}:{caught[0].lineno})"


# ----------------------------------------------------------------------------- discrimination
def test_discrimination_cells_tables_and_figures(tmp_path, monkeypatch):
    df = predictions(sizes={**SIZES, "small": 40})
    small = (df["split"] == "small") & (df["target"] == "mace_30d")
    df.loc[small, "y_true"] = [np.nan] + [1.0] * 4 + [0.0] * 35  # 4 events: not estimable, both outcomes
    df.loc[(df["split"] == "small") & (df["target"] == "stenosis_lad"), "y_true"] = [np.nan] + [0.0] * 39
    run, metrics = start(df, tmp_path, figures=True, n_boot=30, seed=3, confidence=0.9)
    roc, forest = Recorder(), Recorder()
    monkeypatch.setattr(pl, "roc_curves", roc)
    monkeypatch.setattr("riskfm.plots.forest.plot_forest", forest)  # imported when the step runs
    run.discrimination(metrics)
    splits = ["train", "val", "test", "external", "small"]
    for split in splits:
        for target, _ in TARGETS:
            y, p = known(df, split, target)
            cell = metrics[split][target]
            if split != "small":
                assert cell["auprc"]["value"] == pytest.approx(average_precision_score(y, p), abs=1e-12)
                assert cell["auprc"] == average_precision(y, p, n_boot=30, seed=3, confidence=0.9).to_dict()
                assert cell["auprc_chance"] == pytest.approx(y.mean(), abs=1e-15)
    small_cell = metrics["small"]["mace_30d"]
    reason = small_cell["not_estimable"]
    assert small_cell["auprc"] == {"value": None, "ci": None, "method": bootstrap_method(30), "n": 39, "n_pos": 4,
                                   "confidence": 0.9, "se": None, "not_estimable": reason}
    assert "auprc_chance" not in small_cell
    assert "auprc" not in metrics["small"]["stenosis_lad"]  # one outcome only: no AUPRC at all

    t = run.tables["discrimination"]
    assert list(t.columns) == ["split", "target", "n", "n_pos", "auroc", "auroc_ci_low", "auroc_ci_high", "auprc",
                               "auprc_ci_low", "auprc_ci_high", "not_estimable"]
    assert list(zip(t["split"], t["target"])) == [(s, tg) for s in splits for tg, _ in TARGETS]
    assert all(t[c].dtype == float for c in t.columns[4:10])
    test = t[(t["split"] == "test") & (t["target"] == "mace_30d")].iloc[0]
    cell = metrics["test"]["mace_30d"]
    assert (test["n"], test["n_pos"], test["auroc"], test["auroc_ci_low"], test["auroc_ci_high"], test["auprc"],
            test["auprc_ci_low"], test["auprc_ci_high"], test["not_estimable"]) == (
        cell["n"], cell["n_pos"], cell["auroc"]["value"], *cell["auroc"]["ci"], cell["auprc"]["value"],
        *cell["auprc"]["ci"], "")
    sm = t[(t["split"] == "small") & (t["target"] == "mace_30d")].iloc[0]
    assert sm["not_estimable"] == reason and math.isnan(sm["auprc"]) and math.isnan(sm["auroc_ci_low"])

    v = run.tables["validation"]
    assert list(v.columns) == ["target", *splits] and v["target"].tolist() == ["stenosis_lad", "mace_30d"]
    lo, hi = cell["auroc"]["ci"]
    assert v.loc[1, "test"] == (f"{cell['auroc']['value']:.3f} [{lo:.3f}, {hi:.3f}]; {cell['n_pos']} events, "
                                f"n={cell['n']}")
    assert v.loc[1, "small"] == f"n/e ({reason}); n=39"
    assert v.loc[0, "small"] == f"n/e ({metrics['small']['stenosis_lad']['not_estimable']}); n=39"

    assert run.notes == {"Discrimination": ["split 'small': no target with at least 10 events and 10 non-events; "
                                            "no ROC figure"]}
    names = [(sec, cap, name) for sec, cap, name, _ in run.pending]
    assert names == [("Discrimination", f"ROC curves, {s} split (shaded: 90% pointwise bootstrap band; legend: AUROC "
                      "with its interval, or n/e with the reason)", f"roc_{s}.png") for s in splits[:4]] + [
        ("Discrimination", "AUROC per target and split: internal vs external validation (n and events on the right; "
         "n/e: not estimable, no point drawn)", "validation_auroc.png")]

    assert run.pending[2][3]() == {"title": "ROC \u2014 test"}
    (args, kw), = roc.calls
    rows = args[0]
    assert set(rows["split"]) == {"test"} and set(rows["target"]) == {"stenosis_lad", "mace_30d"}
    assert len(rows) == 2 * 99 and rows["y_true"].notna().all()
    assert kw == {"split": "test", "metrics": metrics["test"], "band": True, "seed": 3, "confidence": 0.9,
                  "min_events": 10, "min_nonevents": 10}
    run.pending[4][3]()
    (args, kw), = forest.calls
    f = args[0]
    assert kw == {"reference": 0.5, "title": "AUROC by split", "confidence": 0.9}
    assert list(f.columns) == ["attribute", "level", "metric", "n", "n_pos", "value", "ci_low", "ci_high",
                               "not_estimable"]
    assert f["level"].tolist() == [s for s in splits for _ in TARGETS]
    assert f["attribute"].tolist()[:2] == ["LAD stenosis", "30-day MACE"]
    assert set(f["metric"]) == {"auroc"} and f["value"].dtype == float and f["ci_low"].dtype == float
    assert f["value"].tolist()[:8] == t["auroc"].tolist()[:8]


def test_discrimination_small_split_keeps_the_roc_of_its_estimable_target(tmp_path, monkeypatch):
    df = predictions(sizes={"train": 150, "test": 100})
    only = (df["split"] == "test") & (df["target"] == "stenosis_lad")
    df.loc[only, "y_true"] = [np.nan] + [1.0] * 3 + [0.0] * 96
    run, metrics = start(df, tmp_path, figures=True)
    run.discrimination(metrics)
    roc = Recorder()
    monkeypatch.setattr(pl, "roc_curves", roc)
    [p for p in run.pending if p[2] == "roc_test.png"][0][3]()
    (args, _), = roc.calls
    # The not-estimable target with both outcomes stays in the legend (as n/e): both targets are passed.
    assert set(args[0]["target"]) == {"stenosis_lad", "mace_30d"}


def test_one_split_draws_no_internal_vs_external_figure(tmp_path):
    run, metrics = start(predictions(sizes={"test": 120}), tmp_path, figures=True)
    run.discrimination(metrics)
    assert [name for _, _, name, _ in run.pending] == ["roc_test.png"]


def test_a_split_without_a_roc_figure_does_not_stop_the_next(tmp_path):
    df = predictions(sizes={"train": 150, "val": 30, "test": 100})
    for target, _ in TARGETS:  # 2 events each: not estimable
        df.loc[(df["split"] == "val") & (df["target"] == target), "y_true"] = [np.nan] + [1.0] * 2 + [0.0] * 27
    run, metrics = start(df, tmp_path, figures=True)
    run.discrimination(metrics)
    assert [name for _, _, name, _ in run.pending] == ["roc_train.png", "roc_test.png", "validation_auroc.png"]
    assert run.notes["Discrimination"] == ["split 'val': no target with at least 10 events and 10 non-events; "
                                           "no ROC figure"]


def test_forest_leaves_out_empty_cells(tmp_path, monkeypatch):
    df = predictions(sizes={"train": 100, "test": 100})
    df = df[~((df["split"] == "test") & (df["target"] == "mace_30d"))]
    one = pd.DataFrame({"patient_id": ["V1", "V1"], "split": "val", "target": ["stenosis_lad", "mace_30d"],
                        "y_true": [1.0, 0.0], "y_prob": [0.7, 0.2]})  # n = 1: drawn as n/e
    df = pd.concat([df, one, pd.DataFrame({"patient_id": ["X1"], "split": ["test"], "target": ["mace_30d"],
                                           "y_true": [np.nan], "y_prob": [0.5]})], ignore_index=True)
    run, metrics = start(df, tmp_path, figures=True)
    forest = Recorder()
    monkeypatch.setattr("riskfm.plots.forest.plot_forest", forest)
    run.discrimination(metrics)
    [p for p in run.pending if p[2] == "validation_auroc.png"][0][3]()
    (args, _), = forest.calls
    assert args[0]["level"].tolist() == ["train", "train", "val", "val", "test"]  # test/mace_30d has n = 0


# ----------------------------------------------------------------------------- thresholds
def _risk_group_counts(p, y, lo, hi):
    low, high = p < lo, p >= hi
    mid = ~low & ~high
    return [(int(m.sum()), int(y[m].sum())) for m in (low, mid, high)]


def test_thresholds_are_chosen_on_train_and_applied_unchanged(tmp_path):
    df = predictions()
    run, metrics = start(df, tmp_path, threshold="youden", sensitivity=0.85, specificity=0.8, seed=5,
                         confidence=0.9)
    run.choose_thresholds(metrics)
    rows, levels = [], []
    for target, _ in TARGETS:
        y, p = known(df, "train", target)
        t = youden_threshold(y, p)
        lo, hi = three_level_thresholds(y, p, 0.85, 0.8)
        assert run.thresholds[target] == {"method": "youden", "value": t, "chosen_on": "train", "risk_levels": [lo, hi]}
        for split in SIZES:
            yy, pp = known(df, split, target)
            cell = metrics[split][target]["threshold"]
            tm = threshold_metrics(yy, pp, t, confidence=0.9, seed=5)
            assert cell == {"rule": "youden", "chosen_on": "train", **tm.to_dict()}
            pos = pp >= t
            assert (cell["tp"], cell["fp"], cell["fn"], cell["tn"]) == (
                int((pos & (yy == 1)).sum()), int((pos & (yy == 0)).sum()), int((~pos & (yy == 1)).sum()),
                int((~pos & (yy == 0)).sum()))
            rows.append({"split": split, "target": target, "rule": "youden", **tm.to_row()})
            counts = _risk_group_counts(pp, yy, lo, hi)
            assert metrics[split][target]["risk_levels"] == {
                "cuts": [lo, hi], "n": dict(zip(("low", "intermediate", "high"), (c[0] for c in counts)))}
            for level, (n, k) in zip(("low", "intermediate", "high"), counts):
                levels.append({"split": split, "target": target, "group": level, "cut_low": lo, "cut_high": hi,
                               "n": n, "n_events": k, "event_rate": k / n if n else math.nan})
    pd.testing.assert_frame_equal(run.tables["thresholds"], pd.DataFrame(rows))
    pd.testing.assert_frame_equal(run.tables["risk_levels"], pd.DataFrame(levels))
    assert run.notes == {}


def test_an_empty_risk_group_has_no_event_rate_and_raises_no_warning(tmp_path):
    df = predictions(sizes={"train": 150, "test": 60}, targets=(("mace_30d", 0.2),))
    low = df["split"] == "test"
    df.loc[low, "y_prob"] = df.loc[low, "y_prob"] / 100  # every test patient below the low cut-off
    run, metrics = start(df, tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # evaluate() would report a "Mean of empty slice" warning
        run.choose_thresholds(metrics)
    lv = run.tables["risk_levels"]
    test = lv[lv["split"] == "test"].set_index("group")
    assert test.loc["low", "n"] == 59 and test.loc[["intermediate", "high"], "n"].tolist() == [0, 0]
    assert test.loc[["intermediate", "high"], "event_rate"].isna().all()
    assert test.loc["low", "event_rate"] == pytest.approx(df.loc[low, "y_true"].mean())


def test_no_threshold_without_a_two_class_training_split(tmp_path):
    df = predictions(sizes={"train": 60, "test": 100})
    df.loc[(df["split"] == "train") & (df["target"] == "mace_30d"), "y_true"] = 0.0
    run, metrics = start(df.drop(columns=[]), tmp_path)
    run.choose_thresholds(metrics)
    assert run.notes["Thresholds"] == ["target 'mace_30d': split 'train' missing or single-class; no threshold "
                                       "chosen (thresholds are never chosen on evaluation splits)"]
    assert "threshold" not in metrics["test"]["mace_30d"] and "mace_30d" not in run.thresholds
    assert set(run.tables["thresholds"]["target"]) == {"stenosis_lad"}
    # Without a train split nothing is chosen for any target.
    run2, m2 = start(predictions(sizes={"test": 100}), tmp_path)
    run2.choose_thresholds(m2)
    assert len(run2.notes["Thresholds"]) == 2 and "thresholds" not in run2.tables and "risk_levels" not in run2.tables


def test_single_threshold_when_three_levels_are_impossible(tmp_path):
    df = predictions(sizes={"train": 150, "val": 40, "test": 80})  # test comes after the skipped split
    one = (df["split"] == "val") & (df["target"] == "mace_30d")
    df.loc[one, "y_true"] = [np.nan] + [0.0] * 39  # one outcome: skipped, no row
    run, metrics = start(df, tmp_path, sensitivity=0.2, specificity=0.2, threshold="incidence")
    run.choose_thresholds(metrics)
    y, p = known(df, "train", "mace_30d")
    with pytest.raises(ValueError) as exc:
        three_level_thresholds(y, p, 0.2, 0.2)
    assert f"target 'mace_30d': no three risk levels: {exc.value}" in run.notes["Thresholds"]
    assert "risk_levels" not in run.thresholds["mace_30d"] and "risk_levels" not in metrics["test"]["mace_30d"]
    assert "threshold" in metrics["test"]["mace_30d"] and "threshold" not in metrics["val"]["mace_30d"]
    assert list(zip(run.tables["thresholds"]["split"], run.tables["thresholds"]["target"])).count(
        ("val", "mace_30d")) == 0


# ----------------------------------------------------------------------------- calibration
def test_calibration_cells_bins_figures_and_recalibration(tmp_path):
    df = predictions(sizes={**SIZES, "test": 150})  # 9 bins on train and test, fewer elsewhere
    spec = {"calibration_bins": 9, "calibration_strategy": "quantile", "calibration_min_bin_size": 12,
            "confidence": 0.9, "recalibration": ["platt", "temperature"], "figures": True}
    run, metrics = start(df, tmp_path, **spec)
    run.calibration(metrics)
    bins = []
    for split in SIZES:
        for target, _ in TARGETS:
            y, p = known(df, split, target)
            cal = calibration(y, p, n_bins=9, strategy="quantile", confidence=0.9, min_bin_size=12)
            # 9 bins on the training split (149 patients), fewer where the minimum bin size binds.
            assert len(cal.table) == min(9, len(y) // 12)
            assert metrics[split][target]["calibration"] == cal.to_dict()
            assert metrics[split][target]["calibration"]["brier"] == pytest.approx(np.mean((p - y) ** 2), abs=1e-12)
            bins.append(cal.table.assign(split=split, target=target))
    want = pd.concat(bins, ignore_index=True)
    want = want[["split", "target", *[c for c in want.columns if c not in ("split", "target")]]]
    pd.testing.assert_frame_equal(run.tables["calibration_bins"], want)

    figs = [(sec, name) for sec, _, name, _ in run.pending]
    assert figs == [("Calibration", f"calibration_{s}_{t}.png") for s in ("val", "test", "external")
                    for t, _ in TARGETS]  # never on the training split
    y, p = known(df, "test", "mace_30d")
    cal = calibration(y, p, n_bins=9, strategy="quantile", confidence=0.9, min_bin_size=12)
    caption = [c for _, c, name, _ in run.pending if name == "calibration_test_mace_30d.png"][0]
    assert caption == (f"Reliability diagram, 30-day MACE, test: {len(cal.table)} quantile bins (patients per bin "
                       f"above each interval), Wilson 90% intervals; n={len(y)}, {int(y.sum())} events; slope "
                       f"{cal.slope.value:.2f}, intercept {cal.intercept.value:.2f}, ECE {cal.ece:.3f}")

    recal = []
    for target, _ in TARGETS:
        vy, vp = known(df, "val", target)
        for method in ("platt", "temperature"):
            rc = fit_recalibration(vy, vp, method)
            for split in ("test", "external"):
                y, p = known(df, split, target)
                after = calibration(y, rc.transform(p), n_bins=9, strategy="quantile", min_bin_size=12)
                assert len(after.table) == min(9, len(y) // 12)
                assert metrics[split][target]["recalibration"][method] == {
                    "fitted_on": "val", "brier": after.brier, "ece": after.ece, "intercept": after.intercept.to_dict(),
                    "slope": after.slope.to_dict()}
                before = metrics[split][target]["calibration"]
                recal.append({"split": split, "target": target, "method": method, "fitted_on": "val", "n": len(y),
                              "n_pos": int(y.sum()), "brier_before": before["brier"], "brier_after": after.brier,
                              "ece_before": before["ece"], "ece_after": after.ece,
                              "slope_before": before["slope"]["value"], "slope_after": after.slope.value,
                              "intercept_before": before["intercept"]["value"],
                              "intercept_after": after.intercept.value})
        for split in ("train", "val"):
            assert "recalibration" not in metrics[split][target]  # never judged where fitted or chosen
    pd.testing.assert_frame_equal(run.tables["recalibration"], pd.DataFrame(recal))
    assert run.notes == {}


def test_calibration_figure_draws_the_result(tmp_path):
    df = predictions(sizes={"train": 100, "test": 100}, targets=(("mace_30d", 0.2),))
    run, metrics = start(df, tmp_path, figures=True, recalibration=[])
    run.calibration(metrics)
    (_, _, name, make), = run.pending
    fig = make()
    assert name == "calibration_test_mace_30d.png"
    assert fig._suptitle.get_text() == "Calibration \u2014 30-day MACE, test"
    assert any(t.get_text().startswith("30-day MACE (") for a in fig.axes for t in a.get_legend().get_texts())
    assert "recalibration" not in run.tables


def test_calibration_notes_when_it_cannot_be_computed(tmp_path, monkeypatch):
    df = predictions(sizes={"train": 100, "test": 60, "external": 60})
    df.loc[(df["split"] == "train") & (df["target"] == "stenosis_lad"), "y_true"] = 0.0  # single-class: skipped
    y_bad, _ = known(df, "test", "stenosis_lad")
    run, metrics = start(df, tmp_path, recalibration=["platt"])

    def failing(y, p, **kw):
        if len(y) == len(y_bad) and np.array_equal(y, y_bad):
            raise ValueError("logistic fit did not converge (perfect separation?)")
        return calibration(y, p, **kw)

    monkeypatch.setattr(pl, "calibration", failing)
    run.calibration(metrics)
    assert run.notes["Calibration"] == [
        "test/stenosis_lad: calibration skipped: logistic fit did not converge (perfect separation?)",
        "target 'stenosis_lad': split 'val' missing or single-class; no recalibration",
        "target 'mace_30d': split 'val' missing or single-class; no recalibration"]
    assert "calibration" not in metrics["test"]["stenosis_lad"]
    assert "calibration" not in metrics["train"]["stenosis_lad"]
    bins = run.tables["calibration_bins"]
    # Each skip leaves the rest: the other target of the skipped split and the splits after it.
    assert list(dict.fromkeys(zip(bins["split"], bins["target"]))) == [
        ("train", "mace_30d"), ("test", "mace_30d"), ("external", "stenosis_lad"), ("external", "mace_30d")]


def test_recalibration_skips_leave_the_other_targets_methods_and_splits(tmp_path, monkeypatch):
    df = predictions(sizes={"train": 100, "val": 80, "test": 60, "external": 60, "zz": 60})
    df.loc[(df["split"] == "val") & (df["target"] == "stenosis_lad"), "y_true"] = 0.0  # no recalibration
    df.loc[(df["split"] == "test") & (df["target"] == "mace_30d"), "y_true"] = 0.0  # nothing to judge
    y_bad, _ = known(df, "external", "mace_30d")
    real_fit, real_cal = pl.fit_recalibration, pl.calibration

    def fit(y, p, method):
        if method == "isotonic":
            raise ValueError("isotonic needs more points")
        return real_fit(y, p, method)

    def cal(y, p, **kw):
        if "confidence" not in kw and np.array_equal(y, y_bad):  # the recalibrated risks of one split
            raise ValueError("all risks equal")
        return real_cal(y, p, **kw)

    monkeypatch.setattr(pl, "fit_recalibration", fit)
    monkeypatch.setattr(pl, "calibration", cal)
    run, metrics = start(df, tmp_path, recalibration=["isotonic", "platt"])
    run.calibration(metrics)
    assert run.notes["Calibration"] == [
        "target 'stenosis_lad': split 'val' missing or single-class; no recalibration",
        "mace_30d: isotonic recalibration failed: isotonic needs more points",
        "external/mace_30d: platt: all risks equal"]
    r = run.tables["recalibration"]
    assert list(zip(r["split"], r["target"], r["method"])) == [("zz", "mace_30d", "platt")]


# ----------------------------------------------------------------------------- evaluate() itself
def test_evaluate_returns_what_it_writes_and_writes_each_table(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("RISKFM_QUIET", raising=False)
    df = predictions(sizes={"train": 100, "val": 60, "test": 60})
    out = tmp_path / "deep" / "run1"
    m = pl.evaluate(df, out, spec={"n_boot": 20, "figures": False, "recalibration": ["platt"]})
    assert read_metrics(out / "metrics.json") == m
    written = sorted(p.stem for p in (out / "tables").glob("*.csv"))
    assert written == sorted(["discrimination", "validation", "thresholds", "risk_levels", "calibration_bins",
                              "recalibration", "decision_curves"])
    t = pd.read_csv(out / "tables" / "thresholds.csv")
    assert len(t) == 6 and "index" not in t.columns and t.columns[0] == "split"
    html = (out / "report.html").read_text()
    assert "<h1>riskfm evaluation: run1</h1>" in html and f"run folder {out} \u00b7 generated" in html
    err = capsys.readouterr().err
    assert f"riskfm: evaluate: checking {len(df)} prediction rows" in err
    assert "riskfm: evaluate: discrimination (3 splits x 2 targets, bootstrap intervals)" in err
    assert f"riskfm: evaluate: report {out / 'report.html'}" in err


def test_evaluate_from_a_file_with_a_title_and_no_report(tmp_path):
    df = predictions(sizes={"train": 80, "test": 60}, targets=(("mace_30d", 0.2),))
    f = tmp_path / "preds.csv"
    df.to_csv(f, index=False)
    pl.evaluate(f, tmp_path / "a", spec={"n_boot": 20, "figures": False}, title="My study")
    html = (tmp_path / "a" / "report.html").read_text()
    assert "<h1>My study</h1>" in html and f"predictions {f} \u2192 {tmp_path / 'a'}" in html
    pl.evaluate(f, tmp_path / "b", spec={"n_boot": 20, "figures": False, "report": False})
    assert (tmp_path / "b" / "metrics.json").is_file() and not (tmp_path / "b" / "report.html").exists()


def test_evaluate_checks_scores_and_covariates_before_writing(tmp_path):
    df = predictions(sizes={"train": 40, "test": 40}, targets=(("mace_30d", 0.2),))
    with pytest.raises(ValueError, match=r"^scores: missing column\(s\) \['predicted', 'reference'\]$"):
        pl.evaluate(df, tmp_path / "s", scores=pd.DataFrame(columns=["patient_id", "split", "score"]))
    with pytest.raises(FileNotFoundError, match="covariates file not found"):
        pl.evaluate(df, tmp_path / "c", covariates=tmp_path / "none.csv")
    assert not (tmp_path / "s").exists() and not (tmp_path / "c").exists()


def test_evaluate_summarises_caught_warnings_in_the_report(tmp_path, monkeypatch, caplog):
    df = predictions(sizes={"train": 60, "test": 60}, targets=(("mace_30d", 0.2),))
    real = pl._Run.decision_curves

    def noisy(self):
        for _ in range(2):  # one place warning twice: both are counted
            warnings.warn("overflow encountered in exp", RuntimeWarning, stacklevel=1)
        return real(self)

    monkeypatch.setattr(pl._Run, "decision_curves", noisy)
    with caplog.at_level(logging.INFO, logger="riskfm.evaluate.pipeline"):
        pl.evaluate(df, tmp_path, spec={"n_boot": 20, "figures": False})
    html = (tmp_path / "report.html").read_text()
    assert "Numerical warnings" in html and "RuntimeWarning: overflow encountered in exp (2 warnings)" in html
    assert "evaluate: RuntimeWarning: overflow encountered in exp (2 warnings)" in [r.getMessage() for r in
                                                                                    caplog.records]


def test_evaluate_passes_the_spec_to_every_auroc(tmp_path):
    df = predictions(sizes={"train": 80, "test": 60, "tiny": 12})
    spec = {"ci": "delong", "n_boot": 20, "seed": 4, "confidence": 0.8, "min_events": 4, "min_nonevents": 12,
            "figures": False, "report": False}
    m = pl.evaluate(df, tmp_path / "d", spec=spec)
    want = metrics_from_predictions(validate_predictions(df), ci="delong", n_boot=20, seed=4, confidence=0.8,
                                    min_events=4, min_nonevents=12)
    assert {s: {t: c["auroc"] for t, c in v.items()} for s, v in m.items()} == {
        s: {t: c["auroc"] for t, c in v.items()} for s, v in want.items()}
    assert m["test"]["mace_30d"]["auroc"]["method"] == "DeLong" and m["test"]["mace_30d"]["auroc"]["confidence"] == 0.8
    assert m["tiny"]["mace_30d"]["not_estimable"] == want["tiny"]["mace_30d"]["not_estimable"]
    b = pl.evaluate(df, tmp_path / "b", spec={**spec, "ci": "bootstrap"})
    wb = metrics_from_predictions(validate_predictions(df), ci="bootstrap", n_boot=20, seed=4, confidence=0.8,
                                  min_events=4, min_nonevents=12)
    assert b["test"]["stenosis_lad"]["auroc"] == wb["test"]["stenosis_lad"]["auroc"]


def test_evaluate_says_what_it_is_doing_in_order(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("RISKFM_QUIET", raising=False)
    df = predictions(sizes={"train": 60, "test": 60}, targets=(("mace_30d", 0.2),))
    f = tmp_path / "p.csv"
    df.to_csv(f, index=False)
    pl.evaluate(f, tmp_path / "o", spec={"n_boot": 20, "recalibration": []})
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("riskfm: ")]
    assert lines == [f"riskfm: evaluate: reading {f}", "riskfm: evaluate: discrimination (2 splits x 1 targets, "
                     "bootstrap intervals)", "riskfm: evaluate: thresholds", "riskfm: evaluate: calibration",
                     "riskfm: evaluate: time to event", "riskfm: evaluate: decision curves",
                     "riskfm: evaluate: subgroups and fairness", "riskfm: evaluate: drawing 5 figures",
                     f"riskfm: evaluate: report {tmp_path / 'o' / 'report.html'}"]
    assert sorted(p.name for p in (tmp_path / "o" / "figures").iterdir()) == [
        "calibration_test_mace_30d.png", "decision_curve_test_mace_30d.png", "roc_test.png", "roc_train.png",
        "validation_auroc.png"]


def test_evaluate_names_a_bad_frame_in_its_error(tmp_path):
    df = predictions(sizes={"train": 20}, targets=(("mace_30d", 0.2),))
    df.loc[3, "y_prob"] = 1.5
    with pytest.raises(ValueError, match=r"^<predictions DataFrame>: column 'y_prob' must be a predicted risk in "
                                         r"\[0, 1\]; row 3 \(patient 'TR003', target 'mace_30d'\) has 1\.5 \(1 bad"):
        pl.evaluate(df, tmp_path)


def with_follow_up(df: pd.DataFrame, seed: int = 1) -> pd.DataFrame:
    """Add follow-up: an event within 30 days for each known positive, censoring after day 30 otherwise."""
    rng = np.random.default_rng(seed)
    e = df["y_true"].fillna(0.0).to_numpy()
    t = np.where(e == 1, rng.uniform(1, 29, len(df)), rng.uniform(31, 400, len(df)))
    return df.assign(time_to_event_days=np.round(t, 1), event=e)


def test_evaluate_runs_every_analysis_it_is_given_data_for(tmp_path):
    df = with_follow_up(predictions(sizes={"train": 120, "val": 60, "test": 100}))
    df["site"] = np.where(df["patient_id"].str[-1].isin(list("01234")), "A", "B")
    ids = df["patient_id"].drop_duplicates()
    cov = tmp_path / "cov.csv"
    pd.DataFrame({"patient_id": ids, "sex": np.where(np.arange(len(ids)) % 2, "F", "M")}).to_csv(cov, index=False)
    scores = pd.DataFrame({"patient_id": ["a", "b", "c", "d"], "split": "test", "score": "agatston",
                           "reference": [0.0, 10.0, 100.0, 400.0], "predicted": [1.0, 12.0, 90.0, 420.0]})
    m = pl.evaluate(df, tmp_path / "o", covariates=cov, scores=scores,
                    spec={"n_boot": 20, "figures": False, "recalibration": []})
    cell = m["test"]["mace_30d"]
    assert {"survival", "risk_group_contrasts", "subgroups", "fairness_gaps"} <= set(cell)
    assert set(cell["subgroups"]) == {"sex", "site"}
    assert m["test"]["agatston"]["bland_altman"]["value"] == pytest.approx(np.mean([1.0, 2.0, -10.0, 20.0]))
    tables = {p.stem for p in (tmp_path / "o" / "tables").glob("*.csv")}
    assert {"survival", "risk_group_contrasts", "decision_curves", "subgroups", "fairness_gaps", "agreement"} <= tables


def test_evaluate_into_a_folder_it_wrote_before(tmp_path):
    df = predictions(sizes={"train": 60, "test": 60}, targets=(("mace_30d", 0.2),))
    spec = {"n_boot": 20, "figures": False}
    first = pl.evaluate(df, tmp_path, spec=spec)
    df.loc[df["split"] == "test", "y_prob"] = 1 - df.loc[df["split"] == "test", "y_prob"]
    second = pl.evaluate(df, tmp_path, spec=spec)
    assert second["test"]["mace_30d"]["auroc"]["value"] == pytest.approx(
        1 - first["test"]["mace_30d"]["auroc"]["value"])
    shown = pd.read_csv(tmp_path / "tables" / "discrimination.csv")
    assert shown.loc[shown["split"] == "test", "auroc"].item() == pytest.approx(
        second["test"]["mace_30d"]["auroc"]["value"])


def test_subgroup_jobs_and_their_progress_bar(tmp_path, monkeypatch):
    df = predictions(sizes={"train": 60, "val": 60, "test": 60})
    df["site"] = np.where(df["patient_id"].str[-1].isin(list("01234")), "A", "B")
    run, metrics = start(df, tmp_path)
    bars = []
    monkeypatch.setattr(pl, "progress", lambda items, **kw: bars.append((list(items), kw)) or items)
    run.subgroups(metrics)
    # Every evaluation split x target, never the training split; the bar says what it counts.
    assert bars == [([("val", "stenosis_lad"), ("val", "mace_30d"), ("test", "stenosis_lad"), ("test", "mace_30d")],
                     {"desc": "evaluate: subgroups", "unit": "split/target", "delay": 2.0})]


def test_resamples_without_fairness_gaps_are_counted_in_a_note(tmp_path):
    rng = np.random.default_rng(3)
    n = 120
    site = np.where(np.arange(n) < 80, "A", "B")
    y = (rng.random(n) < 0.4).astype(float)
    p = np.where(site == "A", rng.uniform(0.3, 0.7, n), 0.2)
    p[80] = 0.9  # site B: one patient called positive, missing from many resamples
    df = pd.DataFrame({"patient_id": [f"P{i}" for i in range(n)], "split": "test", "target": "mace_30d",
                       "y_true": y, "y_prob": p, "site": site})
    run, metrics = start(df, tmp_path, subgroup_metric="ppv", n_boot=60, seed=2, min_events=1, min_nonevents=1)
    run.thresholds = {"mace_30d": {"value": 0.5}}
    run.subgroups(metrics)
    d = run.df
    ref = fairness_gaps(pd.DataFrame({"group": d["site"].to_numpy(), "y_true": d["y_true"].to_numpy(),
                                      "y_prob": d["y_prob"].to_numpy()}), "group", "ppv", threshold=0.5,
                        n_resamples=60, seed=2, min_events=1, min_nonevents=1, attribute="site")
    k = ref.resamples_without_gaps
    assert 5 < k < 55
    assert f"test/mace_30d/site: {k} of 60 resamples had a level whose PPV was undefined; the fairness intervals " \
           "come from the others" in run.notes["Subgroups and fairness"]
    assert metrics["test"]["mace_30d"]["fairness_gaps"]["site"]["resamples_without_gaps"] == k
