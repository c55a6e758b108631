"""The report's sections: the methods text (against docs/evaluation.md), the shown tables, the layout.

The methods paragraphs are what users copy into a paper, so they are compared word for word with
the docs page that quotes them; the display tables are what a reader sees of every number, so they
are compared cell for cell with frames written out here.
"""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from riskfm.evaluate.report_sections import (
    build_sections,
    contrasts_display,
    discrimination_display,
    estimate_text,
    fairness_display,
    subgroups_display,
    survival_display,
    thresholds_display,
)
from riskfm.evaluate.spec import EvaluationSpec

DOCS = Path(__file__).resolve().parents[2] / "docs" / "evaluation.md"
NAN = math.nan
EMPTY = "Nothing to show for these predictions."


def make_run(spec=None, *, splits=("train", "val", "test", "external"), targets=("mace_30d", "stenosis_lad"),
             train="train", val="val", tables=None, figures=None, notes=None, warnings=()):
    return SimpleNamespace(spec=spec or EvaluationSpec(), splits=list(splits), targets=list(targets),
                           train_split=train, val_split=val, tables=tables or {}, figures=figures or {},
                           notes=notes or {}, warning_notes=lambda: list(warnings))


def documented_sections() -> list[tuple[str, list[str]]]:
    """The ``#### title`` + blockquote pairs under "What the report says", paragraphs joined."""
    text = DOCS.read_text(encoding="utf-8")
    part = text.split("## What the report says", 1)[1].split("\n## ", 1)[0]
    out = []
    for block in part.split("\n#### ")[1:]:
        title, body = block.split("\n", 1)
        quoted = [ln[1:].strip() for ln in body.splitlines() if ln.startswith(">")]
        paras = " ".join(q if q else "\n\n" for q in quoted).split("\n\n")
        out.append((title.strip(), [" ".join(p.split()) for p in paras]))
    return out


def paragraphs(text: str) -> list[str]:
    return [" ".join(p.split()) for p in text.split("\n\n")]


# ----------------------------------------------------------------------------- the methods text
def test_methods_text_is_the_one_docs_quote_word_for_word():
    documented = documented_sections()
    assert len(documented) == 7
    shown = [(s.title, paragraphs(s.text)) for s in build_sections(make_run(), {})]
    assert shown == documented


def test_methods_text_follows_the_spec_and_the_run():
    spec = EvaluationSpec(confidence=0.9, ci="delong", n_boot=200, seed=7, min_events=5, min_nonevents=8,
                          threshold="youden", sensitivity=0.85, specificity=0.95, calibration_bins=5,
                          calibration_strategy="uniform", calibration_min_bin_size=30, recalibration=["platt"],
                          subgroup_metric="auprc", subgroup_quantiles=3, max_subgroup_levels=6)
    run = make_run(spec, splits=("dev", "tune", "holdout"), targets=("stenosis_rca",), train="dev", val="tune")
    text = {s.title: paragraphs(s.text) for s in build_sections(run, {})}
    rule = ("AUROC, AUPRC and C-index are reported only with at least 5 events and 8 non-events; below that they "
            "are shown as n/e (not estimable)")
    assert text["Summary"][0] == (
        "Splits: dev, tune, holdout. Targets: stenosis_rca. Thresholds are chosen on 'dev' and applied unchanged "
        "elsewhere; recalibration is fitted on 'tune'. AUROC intervals: DeLong; every bootstrap: 200 resamples, "
        "seed 7; 90% coverage.")
    assert text["Summary"][1].startswith(rule) and text["Subgroups and fairness"][1] == text["Summary"][1]
    assert text["Discrimination"][0].startswith("AUROC (Mann-Whitney, ties count 1/2) with DeLong intervals and "
                                                "AUPRC (average precision, step-wise")
    thr = text["Thresholds"][0]
    assert thr.startswith("Operating point: the 'youden' threshold chosen on 'dev' (incidence:")
    assert "PPV and NPV with 90% Wilson intervals;" in thr
    assert "below the sensitivity-0.85 cut-off is low risk, at or above the specificity-0.95 cut-off" in thr
    cal = text["Calibration"][0]
    assert "ECE over up to 5 uniform bins (quantile bins: at least 30 patients per bin" in cal
    assert cal.endswith("Recalibration maps (platt) are fitted on 'tune' and judged on the other evaluation "
                        "splits.")
    sub = text["Subgroups and fairness"][0]
    assert sub.startswith("AUPRC per subgroup with 90% stratified bootstrap intervals.")
    assert "each with a 90% bootstrap interval over patients" in sub
    assert "cut into 3 quantile bins; categorical attributes may have at most 6 levels." in sub
    assert "95%" not in " ".join(p for v in text.values() for p in v)

    none = build_sections(make_run(EvaluationSpec(recalibration=[])), {})
    assert "Recalibration maps (none) are fitted on 'val'" in none[3].text


# ----------------------------------------------------------------------------- one estimate as text
@pytest.mark.parametrize("args, kwargs, shown", [
    ((0.81234, 0.75049, 0.86071), {}, "0.812 [0.750, 0.861]"),
    ((0.81234, 0.75049, 0.86071), {"digits": 2}, "0.81 [0.75, 0.86]"),
    ((0.81234,), {}, "0.812"),
    ((0.81234, 0.75, None), {}, "0.812"),
    ((0.81234, None, 0.86), {}, "0.812"),
    ((0.81234, NAN, 0.86), {}, "0.812"),
    ((0.81234, 0.75, NAN), {}, "0.812"),
    ((None, 0.75, 0.86), {}, "n/a"),
    ((NAN, 0.75, 0.86), {}, "n/a"),
    ((0.81234, 0.75, 0.86, "3 events < 10"), {}, "n/e (3 events < 10)"),
    ((NAN, None, None, "3 events < 10"), {}, "n/e (3 events < 10)"),
    ((0.81234, 0.75, 0.86, ""), {}, "0.812 [0.750, 0.860]"),
    ((0.81234, 0.75, 0.86, NAN), {}, "0.812 [0.750, 0.860]"),  # a CSV's empty reason reads as NaN
    ((np.float64(0.5), np.float64(0.25), np.float64(0.75)), {}, "0.500 [0.250, 0.750]"),
])
def test_estimate_text(args, kwargs, shown):
    assert estimate_text(*args, **kwargs) == shown


# ----------------------------------------------------------------------------- the shown tables
def test_discrimination_display_shows_counts_as_integers_and_reasons():
    t = pd.DataFrame({
        "split": ["test", "external"], "target": ["mace_30d", "mace_30d"], "n": [200.0, 40.0],
        "n_pos": [25.0, 3.0], "auroc": [0.81234, NAN], "auroc_ci_low": [0.75049, NAN],
        "auroc_ci_high": [0.86071, NAN], "auprc": [0.4012, NAN], "auprc_ci_low": [0.30049, NAN],
        "auprc_ci_high": [0.5, NAN], "not_estimable": ["", "3 events < 10"]})
    want = pd.DataFrame({"split": ["test", "external"], "target": ["mace_30d", "mace_30d"], "n": [200, 40],
                         "events": [25, 3], "AUROC [CI]": ["0.812 [0.750, 0.861]", "n/e (3 events < 10)"],
                         "AUPRC [CI]": ["0.401 [0.300, 0.500]", "n/e (3 events < 10)"]})
    assert_frame_equal(discrimination_display(t), want)
    # A table written before the column existed shows its estimates.
    assert discrimination_display(t.drop(columns="not_estimable").head(1))["AUROC [CI]"].tolist() == [
        "0.812 [0.750, 0.861]"]


def test_thresholds_display_names_every_rate_with_its_interval():
    rates = {m: [0.5 + i / 10] for i, m in enumerate(("sensitivity", "specificity", "ppv", "npv", "f1"))}
    t = pd.DataFrame({"split": ["test"], "target": ["stenosis_lad"], "rule": ["incidence"], "threshold": [0.25],
                      "n": [100.0], "n_pos": [20.0], "tp": [10], "fp": [5], "tn": [75], "fn": [10],
                      **{k: v for m, x in rates.items() for k, v in
                         ((m, x), (f"{m}_ci_low", [x[0] - 0.05]), (f"{m}_ci_high", [NAN if m == "f1" else x[0] + 0.05]))}})
    want = pd.DataFrame({"split": ["test"], "target": ["stenosis_lad"], "rule": ["incidence"], "threshold": [0.25],
                         "n": [100], "events": [20], "tp": [10], "fp": [5], "tn": [75], "fn": [10],
                         "sensitivity [CI]": ["0.500 [0.450, 0.550]"], "specificity [CI]": ["0.600 [0.550, 0.650]"],
                         "PPV [CI]": ["0.700 [0.650, 0.750]"], "NPV [CI]": ["0.800 [0.750, 0.850]"],
                         "f1 [CI]": ["0.900"]})
    assert_frame_equal(thresholds_display(t), want)


def test_survival_display_shows_no_brier_score_where_not_estimable():
    t = pd.DataFrame({"split": ["test", "external", "val"], "target": ["risk_score"] * 3, "n": [300.0, 50.0, 80.0],
                      "n_events": [40.0, 4.0, 30.0], "harrell_c": [0.7123, NAN, 0.65], "uno_c": [0.7011, NAN, 0.6],
                      "mean_time_auc": [0.7299, NAN, 0.62], "integrated_brier": [0.1049, NAN, None],
                      "not_estimable": ["", "4 events < 10", NAN]})  # NaN: how a CSV reads an empty reason
    want = pd.DataFrame({"split": ["test", "external", "val"], "target": ["risk_score"] * 3, "n": [300, 50, 80],
                         "events": [40, 4, 30], "Harrell's C": ["0.712", "n/e (4 events < 10)", "0.650"],
                         "Uno's C": ["0.701", "n/e (4 events < 10)", "0.600"],
                         "mean time-dependent AUROC": ["0.730", "n/e (4 events < 10)", "0.620"],
                         "integrated Brier": ["0.105", "\u2014", "n/a"]})
    assert_frame_equal(survival_display(t), want)


def test_contrasts_display_hazard_ratios_and_p_values():
    t = pd.DataFrame({
        "split": ["test"] * 4, "target": ["mace_30d"] * 4, "group": ["high", "intermediate", "high", "high"],
        "reference": ["low"] * 4, "n": [120.0, 80.0, 60.0, 30.0], "n_events": [30.0, 8.0, 12.0, 0.0],
        "hazard_ratio": [2.3456, NAN, 1.5, NAN], "ci_low": [1.5049, NAN, 0.8, NAN], "ci_high": [3.6, NAN, NAN, NAN],
        "cox_p": [0.0004, NAN, NAN, NAN], "logrank_p": [0.0123, 0.001, 0.00099, NAN],
        "not_estimable": ["", "did not converge: separated groups", NAN, "no events in group"]})
    want = pd.DataFrame({
        "split": ["test"] * 4, "target": ["mace_30d"] * 4, "group": ["high", "intermediate", "high", "high"],
        "reference": ["low"] * 4, "n": [120, 80, 60, 30], "events": [30, 8, 12, 0],
        "hazard ratio [95% CI]": ["2.35 [1.50, 3.60]", "not estimable (did not converge: separated groups)", "1.50",
                                  "not estimable (no events in group)"],
        "Cox p": ["< 0.001", "\u2014", "n/a", "\u2014"], "log-rank p": ["0.012", "0.001", "< 0.001", "no events"]})
    assert_frame_equal(contrasts_display(t), want)


def test_subgroups_display_names_the_metric_in_the_column():
    t = pd.DataFrame({"split": ["test", "test"], "target": ["mace_30d"] * 2, "attribute": ["sex", "sex"],
                      "level": ["F", "M"], "n": [100.0, 20.0], "n_pos": [30.0, 2.0], "metric": ["auprc"] * 2,
                      "value": [0.6549, NAN], "ci_low": [0.5, NAN], "ci_high": [0.8, NAN],
                      "not_estimable": ["", "2 events < 10"]})
    want = pd.DataFrame({"split": ["test", "test"], "target": ["mace_30d"] * 2, "attribute": ["sex", "sex"],
                         "level": ["F", "M"], "n": [100, 20], "events": [30, 2],
                         "AUPRC [CI]": ["0.655 [0.500, 0.800]", "n/e (2 events < 10)"]})
    assert_frame_equal(subgroups_display(t), want)


def test_fairness_display_range_row_has_no_events_metric_or_reference():
    t = pd.DataFrame({"split": ["test", "test"], "target": ["mace_30d"] * 2, "attribute": ["site", "site"],
                      "level": ["A", "max - min"], "n": [150.0, 300.0], "n_pos": [20.0, NAN],
                      "metric_value": [0.7012, NAN], "reference": [0.6549, NAN], "gap": [0.0463, 0.1049],
                      "ci_low": [-0.05, 0.02], "ci_high": [0.14, 0.2], "kind": ["vs median", "range"]})
    want = pd.DataFrame({"split": ["test", "test"], "target": ["mace_30d"] * 2, "attribute": ["site", "site"],
                         "level": ["A", "max - min"], "n": [150, 300], "events": [20, ""],
                         "metric": ["0.701", "\u2014"], "reference": ["0.655", "\u2014"],
                         "gap [CI]": ["0.046 [-0.050, 0.140]", "0.105 [0.020, 0.200]"], "kind": ["vs median", "range"]})
    assert_frame_equal(fairness_display(t), want)


# ----------------------------------------------------------------------------- the layout
def _tables() -> dict[str, pd.DataFrame]:
    """One small table of each kind a run writes, with the columns the display functions read."""
    return {
        "validation": pd.DataFrame({"target": ["mace_30d"], "test": ["0.812 [0.750, 0.861]; 25 events, n=200"]}),
        "discrimination": pd.DataFrame({"split": ["test"], "target": ["mace_30d"], "n": [200], "n_pos": [25],
                                        "auroc": [0.8], "auroc_ci_low": [0.7], "auroc_ci_high": [0.9],
                                        "auprc": [0.4], "auprc_ci_low": [0.3], "auprc_ci_high": [0.5]}),
        "thresholds": pd.DataFrame({"split": ["test"], "target": ["mace_30d"], "rule": ["incidence"],
                                    "threshold": [0.2], "n": [200], "n_pos": [25], "tp": [15], "fp": [20],
                                    "tn": [155], "fn": [10], **{f"{m}{s}": [0.5] for m in (
                                        "sensitivity", "specificity", "ppv", "npv", "f1")
                                        for s in ("", "_ci_low", "_ci_high")}}),
        "risk_levels": pd.DataFrame({"split": ["test"], "group": ["low"], "n": [100]}),
        "recalibration": pd.DataFrame({"split": ["test"], "method": ["platt"], "brier_after": [0.1]}),
        "survival": pd.DataFrame({"split": ["test"], "target": ["mace_30d"], "n": [200], "n_events": [25],
                                  "harrell_c": [0.7], "uno_c": [0.7], "mean_time_auc": [0.7],
                                  "integrated_brier": [0.1]}),
        "risk_group_contrasts": pd.DataFrame({"split": ["test"], "target": ["mace_30d"], "group": ["high"],
                                              "reference": ["low"], "n": [100], "n_events": [20],
                                              "hazard_ratio": [2.0], "ci_low": [1.2], "ci_high": [3.1],
                                              "cox_p": [0.01], "logrank_p": [0.02]}),
        "subgroups": pd.DataFrame({"split": ["test"], "target": ["mace_30d"], "attribute": ["sex"], "level": ["F"],
                                   "n": [100], "n_pos": [12], "metric": ["auroc"], "value": [0.7], "ci_low": [0.6],
                                   "ci_high": [0.8]}),
        "fairness_gaps": pd.DataFrame({"split": ["test"], "target": ["mace_30d"], "attribute": ["sex"],
                                       "level": ["F"], "n": [100], "n_pos": [12], "metric_value": [0.7],
                                       "reference": [0.65], "gap": [0.05], "ci_low": [-0.1], "ci_high": [0.2],
                                       "kind": ["vs rest"]}),
        "agreement": pd.DataFrame({"split": ["test"], "score": ["agatston"], "bias": [1.5]}),
    }


def test_every_table_goes_to_its_section_with_its_caption():
    t = _tables()
    spec = EvaluationSpec(confidence=0.9)
    secs = {s.title: s for s in build_sections(make_run(spec, tables=t), {})}
    shown = {title: [c for c, _ in s.tables] for title, s in secs.items()}
    assert shown == {
        "Summary": ["AUROC [CI]; events, n per target and split (internal vs external validation)"],
        "Discrimination": ["AUROC and AUPRC"],
        "Thresholds": ["Metrics at the threshold [90% CI]", "Three risk levels"],
        "Calibration": ["Recalibration (fitted on validation)"],
        "Time to event": ["Concordance, time-dependent AUROC, integrated Brier score",
                          "Risk groups against the low-risk group"],
        "Decision curves": [],
        "Subgroups and fairness": ["Metric per subgroup", "Fairness gaps with 90% bootstrap intervals (estimable "
                                                          "levels only; max - min per attribute)"],
        "Agreement of scores": ["Bias and limits of agreement"]}
    frames = {c: f for s in secs.values() for c, f in s.tables}
    # Tables without a display function are shown as written; the others as their display.
    assert frames["Three risk levels"] is t["risk_levels"]
    assert frames["Recalibration (fitted on validation)"] is t["recalibration"]
    assert frames["Bias and limits of agreement"] is t["agreement"]
    assert frames[shown["Summary"][0]] is t["validation"]
    for caption, show, name in [("AUROC and AUPRC", discrimination_display, "discrimination"),
                                ("Metrics at the threshold [90% CI]", thresholds_display, "thresholds"),
                                (shown["Time to event"][0], survival_display, "survival"),
                                (shown["Time to event"][1], contrasts_display, "risk_group_contrasts"),
                                ("Metric per subgroup", subgroups_display, "subgroups"),
                                (shown["Subgroups and fairness"][1], fairness_display, "fairness_gaps")]:
        assert_frame_equal(frames[caption], show(t[name]))
    assert secs["Decision curves"].notes == [EMPTY]
    assert all(EMPTY not in s.notes for title, s in secs.items() if title != "Decision curves")


def test_calibration_table_comes_from_metrics_json_cells():
    cal = {"intercept": {"value": 0.1234, "ci": [-0.2, 0.4]}, "slope": {"value": 0.9, "ci": None}, "ece": None,
           "brier": 0.1, "scaled_brier": 0.2, "spiegelhalter_z": 1, "spiegelhalter_p": 0.23}
    cal2 = {**cal, "intercept": {"value": -0.5, "ci": None}, "slope": {"value": 1.25, "ci": [1.0, 1.5]}, "ece": 0.1}
    metrics = {"val": {"mace_30d": {"n": 80, "n_pos": 9}},
               "test": {"mace_30d": {"n": 200, "n_pos": 25, "calibration": cal},
                        "stenosis_lad": {"n": 200, "n_pos": 50, "calibration": None}},
               "external": {"stenosis_lad": {"n": 90, "n_pos": 30, "calibration": cal2}}}
    sec = build_sections(make_run(), metrics)[3]
    assert sec.title == "Calibration" and [c for c, _ in sec.tables] == ["Calibration statistics"]
    want = pd.DataFrame({"split": ["test", "external"], "target": ["mace_30d", "stenosis_lad"], "n": [200, 90],
                         "events": [25, 30], "intercept [CI]": ["0.123 [-0.200, 0.400]", "-0.500"],
                         "slope [CI]": ["0.900", "1.250 [1.000, 1.500]"], "ece": [NAN, 0.1], "brier": [0.1, 0.1],
                         "scaled_brier": [0.2, 0.2], "spiegelhalter_z": [1.0, 1.0], "spiegelhalter_p": [0.23, 0.23]})
    assert_frame_equal(sec.tables[0][1], want)
    assert sec.notes == []


def test_figures_notes_extra_groups_and_warnings_are_placed():
    figs = {"Discrimination": [("ROC curves, test", Path("roc_test.png"))],
            "Segmentation": [("Dice per case", Path("dice.png"))],
            "Explanations": [("Saliency", Path("sal.png"))]}
    notes = {"Time to event": ["no follow-up"], "Segmentation": ["2 cases skipped"]}
    secs = build_sections(make_run(figures=figs, notes=notes, warnings=["RuntimeWarning: overflow (2 warnings)"]), {})
    titles = [s.title for s in secs]
    assert titles == ["Summary", "Discrimination", "Thresholds", "Calibration", "Time to event", "Decision curves",
                      "Subgroups and fairness", "Segmentation", "Explanations", "Numerical warnings"]
    by = {s.title: s for s in secs}
    assert by["Discrimination"].figures == figs["Discrimination"] and by["Discrimination"].notes == []
    assert by["Time to event"].notes == ["no follow-up"] and by["Time to event"].figures == []
    assert by["Segmentation"].figures == figs["Segmentation"] and by["Segmentation"].notes == ["2 cases skipped"]
    assert by["Explanations"].figures == figs["Explanations"] and by["Explanations"].notes == []
    assert by["Summary"].notes == []  # the summary has its text, never "nothing to show"
    assert [s.title for s in secs if s.notes == [EMPTY]] == ["Thresholds", "Calibration", "Decision curves",
                                                              "Subgroups and fairness"]
    w = by["Numerical warnings"]
    assert w.notes == ["RuntimeWarning: overflow (2 warnings)"] and w.figures == [] and w.tables == []
    assert w.text == ("Warnings raised by the statistical libraries during this evaluation, counted and explained "
                      "here once instead of printed each time.")


@pytest.mark.parametrize("how", ["table", "figure", "note", None])
def test_agreement_section_appears_when_scores_left_a_trace(how):
    tables = {"agreement": _tables()["agreement"]} if how == "table" else {}
    figures = {"Agreement of scores": [("Bland-Altman", Path("ba.png"))]} if how == "figure" else {}
    notes = {"Agreement of scores": ["test/agatston: 2 paired scores, need 3; skipped"]} if how == "note" else {}
    spec = EvaluationSpec(confidence=0.8)
    secs = build_sections(make_run(spec, tables=tables, figures=figures, notes=notes), {})
    agree = [s for s in secs if s.title == "Agreement of scores"]
    if how is None:
        assert not agree
        return
    (a,) = agree
    assert secs.index(a) == 7 and len(secs) == 8
    assert a.text == ("Bland-Altman: bias = mean(predicted - reference), 80% limits of agreement = bias -+ z x SD "
                      "of the differences, plotted against the pair means.")
    assert a.tables == [(c, f) for c, f in [("Bias and limits of agreement", tables.get("agreement"))] if f is not None]
    assert a.figures == figures.get("Agreement of scores", [])
    assert a.notes == notes.get("Agreement of scores", [])

