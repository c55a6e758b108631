"""The sections of the evaluation report (text, tables, figures) from a finished evaluation run."""

from __future__ import annotations

from typing import Any

import pandas as pd

from riskfm.report.html import Section


def _cols(df: pd.DataFrame | None, cols: list[str]) -> pd.DataFrame | None:
    if df is None:
        return None
    return df[[c for c in cols if c in df.columns]]


def build_sections(run: Any, metrics: dict) -> list[Section]:
    """Report sections in reading order; a section without content says why."""
    s = run.spec
    conf = f"{100 * s.confidence:g}%"
    t = run.tables
    sections = []

    summary = Section("Summary", text=(
        f"Splits: {', '.join(run.splits)}. Targets: {', '.join(run.targets)}. Thresholds are chosen on "
        f"'{run.train_split}' and applied unchanged elsewhere; recalibration is fitted on '{run.val_split}'. "
        f"AUROC intervals: {s.ci} ({s.n_boot} resamples when bootstrap, seed {s.seed}), {conf} coverage."))
    if "validation" in t:
        summary.tables.append(("AUROC [CI] per target and split (internal vs external validation)", t["validation"]))
    sections.append(summary)

    disc = Section("Discrimination", text=(
        "AUROC (Mann-Whitney, ties count 1/2) and AUPRC (average precision, step-wise; chance level = "
        "prevalence) with stratified percentile bootstrap intervals: positives and negatives are resampled "
        "separately so every resample keeps the prevalence."))
    if "discrimination" in t:
        disc.tables.append(("AUROC and AUPRC", t["discrimination"]))
    sections.append(disc)

    thr = Section("Thresholds", text=(
        f"Operating point: the '{s.threshold}' threshold chosen on '{run.train_split}' (incidence: the top "
        "fraction of training patients equal to the training prevalence is high risk). Sensitivity, "
        "specificity, PPV and NPV with Wilson intervals; F1 with a stratified parametric bootstrap. Three risk "
        f"levels: below the sensitivity-{s.sensitivity:g} cut-off is low risk, at or above the "
        f"specificity-{s.specificity:g} cut-off is high risk."))
    if "thresholds" in t:
        thr.tables.append(("Metrics at the threshold", _cols(t["thresholds"], [
            "split", "target", "method", "threshold", "tp", "fp", "tn", "fn", "sensitivity", "specificity",
            "ppv", "npv", "f1"])))
    if "risk_levels" in t:
        thr.tables.append(("Three risk levels", t["risk_levels"]))
    sections.append(thr)

    cal = Section("Calibration", text=(
        "Calibration intercept (calibration-in-the-large: logistic regression with logit(p) as offset; ideal "
        "0) and slope (logistic regression of y on logit(p); ideal 1), ECE over "
        f"{s.calibration_bins} {s.calibration_strategy} bins, Brier and scaled Brier score, Spiegelhalter's z. "
        f"Recalibration maps ({', '.join(s.recalibration) or 'none'}) are fitted on '{run.val_split}' and "
        "judged on the other evaluation splits."))
    rows = []
    for split, by_t in metrics.items():
        for target, c in by_t.items():
            if "brier" in c:
                rows.append({"split": split, "target": target, "intercept": c["calibration_intercept"],
                             "slope": c["calibration_slope"], "ece": c["ece"], "brier": c["brier"],
                             "scaled_brier": c["scaled_brier"], "spiegelhalter_z": c["spiegelhalter_z"],
                             "spiegelhalter_p": c["spiegelhalter_p"]})
    if rows:
        cal.tables.append(("Calibration statistics", pd.DataFrame(rows).astype(
            {k: float for k in ("intercept", "slope", "ece", "brier", "scaled_brier", "spiegelhalter_z",
                                "spiegelhalter_p")})))
    if "recalibration" in t:
        cal.tables.append(("Recalibration (fitted on validation)", t["recalibration"]))
    sections.append(cal)

    surv = Section("Time to event", text=(
        "Kaplan-Meier cumulative incidence per risk group with pointwise intervals and numbers at risk; "
        "log-rank tests and Cox hazard ratios against the low-risk group; Harrell's and Uno's C-index, "
        "time-dependent (cumulative/dynamic) AUROC and the integrated Brier score (risk turned into survival "
        "by a Cox model on logit(p) fitted on the training split)."))
    if "survival" in t:
        surv.tables.append(("Concordance, time-dependent AUROC, integrated Brier score", t["survival"]))
    if "risk_group_contrasts" in t:
        surv.tables.append(("Risk groups against the low-risk group", t["risk_group_contrasts"]))
    sections.append(surv)

    dca = Section("Decision curves", text=(
        "Net benefit = TP/n - FP/n x pt/(1 - pt) at threshold probability pt, against treating everyone "
        "and treating no one. The model is useful where its curve lies above both."))
    sections.append(dca)

    sub = Section("Subgroups and fairness", text=(
        f"{s.subgroup_metric.upper()} per subgroup with {conf} stratified bootstrap intervals. Fairness gap: "
        "binary attribute M_g - M_~g; multi-level attribute M_Sj - median over its levels."))
    if "subgroups" in t:
        sub.tables.append(("Metric per subgroup", t["subgroups"]))
    if "fairness_gaps" in t:
        sub.tables.append(("Fairness gaps", t["fairness_gaps"]))
    sections.append(sub)

    if "agreement" in t or "Agreement of scores" in run.figures or "Agreement of scores" in run.notes:
        agree = Section("Agreement of scores", text=(
            f"Bland-Altman: bias = mean(predicted - reference), {conf} limits of agreement = bias -+ z x SD of "
            "the differences, plotted against the pair means."))
        if "agreement" in t:
            agree.tables.append(("Bias and limits of agreement", t["agreement"]))
        sections.append(agree)

    for sec in sections:
        sec.figures.extend(run.figures.get(sec.title, []))
        sec.notes.extend(run.notes.get(sec.title, []))
        if not sec.figures and not sec.tables and sec.title != "Summary" and not sec.notes:
            sec.notes.append("Nothing to show for these predictions.")
    extra = [k for k in run.figures if k not in {sec.title for sec in sections}]
    for k in extra:
        sections.append(Section(k, figures=run.figures[k], notes=run.notes.get(k, [])))
    return sections
