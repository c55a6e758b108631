"""The sections of the evaluation report (text, tables, figures) from a finished evaluation run."""

from __future__ import annotations

from typing import Any

import pandas as pd

from riskfm.evaluate.guards import is_missing, not_estimable_text
from riskfm.report.html import Section


def estimate_text(value: Any, low: Any = None, high: Any = None, reason: Any = None, digits: int = 3) -> str:
    """Show an estimate as the report's tables do.

    ``0.812 [0.750, 0.860]``; the value alone when either bound is missing (None or NaN);
    ``n/e (1 event < 10)`` when ``reason`` (why it is not estimable) is a non-empty string, whatever
    the value; ``n/a`` when the value is missing. ``digits`` decimals throughout.
    """
    if isinstance(reason, str) and reason:
        return not_estimable_text(reason)
    if is_missing(value):
        return "n/a"
    if is_missing(low) or is_missing(high):
        return f"{value:.{digits}f}"
    return f"{value:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def _reason(r: pd.Series) -> str | None:
    x = r.get("not_estimable")
    return x if isinstance(x, str) and x else None


def discrimination_display(t: pd.DataFrame) -> pd.DataFrame:
    """Format the discrimination table as shown: n, events, AUROC [CI] and AUPRC [CI].

    A statistic that is not estimable is shown as ``n/e (reason)``.
    """
    return pd.DataFrame([{
        "split": r["split"], "target": r["target"], "n": int(r["n"]), "events": int(r["n_pos"]),
        "AUROC [CI]": estimate_text(r["auroc"], r["auroc_ci_low"], r["auroc_ci_high"], _reason(r)),
        "AUPRC [CI]": estimate_text(r["auprc"], r["auprc_ci_low"], r["auprc_ci_high"], _reason(r))}
        for _, r in t.iterrows()])


def thresholds_display(t: pd.DataFrame) -> pd.DataFrame:
    """Metrics at the threshold with their Wilson (F1: bootstrap) intervals."""
    rows = []
    for _, r in t.iterrows():
        row = {"split": r["split"], "target": r["target"], "rule": r["rule"], "threshold": r["threshold"],
               "n": int(r["n"]), "events": int(r["n_pos"]), "tp": r["tp"], "fp": r["fp"], "tn": r["tn"], "fn": r["fn"]}
        for m in ("sensitivity", "specificity", "ppv", "npv", "f1"):
            name = f"{m.upper() if m in ('ppv', 'npv') else m} [CI]"
            row[name] = estimate_text(r[m], r[f"{m}_ci_low"], r[f"{m}_ci_high"])
        rows.append(row)
    return pd.DataFrame(rows)


def survival_display(t: pd.DataFrame) -> pd.DataFrame:
    """Format the survival table as shown: concordance, time-dependent AUROC and integrated Brier.

    Parameters
    ----------
    t : pandas.DataFrame
        One row per split x target with columns ``split``, ``target``, ``n``, ``n_events``,
        ``harrell_c``, ``uno_c``, ``mean_time_auc``, ``integrated_brier`` and optionally
        ``not_estimable`` (the reason, or empty).

    Returns
    -------
    pandas.DataFrame
        Columns ``split``, ``target``, ``n``, ``events``, ``Harrell's C``, ``Uno's C``, ``mean
        time-dependent AUROC`` and ``integrated Brier``, as text with 3 decimals (``n/e (reason)``
        when not estimable, an em dash for the Brier score then; ``n/a`` when undefined).
    """
    return pd.DataFrame([{
        "split": r["split"], "target": r["target"], "n": int(r["n"]), "events": int(r["n_events"]),
        "Harrell's C": estimate_text(r["harrell_c"], reason=_reason(r)),
        "Uno's C": estimate_text(r["uno_c"], reason=_reason(r)),
        "mean time-dependent AUROC": estimate_text(r["mean_time_auc"], reason=_reason(r)),
        "integrated Brier": estimate_text(r["integrated_brier"]) if not _reason(r) else "\u2014"}
        for _, r in t.iterrows()])


def contrasts_display(t: pd.DataFrame) -> pd.DataFrame:
    """Hazard ratios: ``HR [CI]`` or ``not estimable (did not converge: separated groups)``."""
    rows = []
    for _, r in t.iterrows():
        reason = _reason(r)
        hr = (f"not estimable ({reason})" if reason
              else estimate_text(r["hazard_ratio"], r["ci_low"], r["ci_high"], digits=2))
        rows.append({"split": r["split"], "target": r["target"], "group": r["group"], "reference": r["reference"],
                     "n": int(r["n"]), "events": int(r["n_events"]), "hazard ratio [95% CI]": hr,
                     "Cox p": "\u2014" if reason else _p(r["cox_p"]),
                     "log-rank p": _p(r["logrank_p"]) if not is_missing(r["logrank_p"]) else "no events"})
    return pd.DataFrame(rows)


def _p(x: Any) -> str:
    if is_missing(x):
        return "n/a"
    return "< 0.001" if x < 0.001 else f"{x:.3f}"


def subgroups_display(t: pd.DataFrame) -> pd.DataFrame:
    """Format the subgroup table as shown: the metric with its interval per attribute level.

    Parameters
    ----------
    t : pandas.DataFrame
        One row per split x target x attribute level with columns ``split``, ``target``,
        ``attribute``, ``level``, ``n``, ``n_pos``, ``metric`` (its name), ``value``, ``ci_low``,
        ``ci_high`` and optionally ``not_estimable`` (the reason, or empty).

    Returns
    -------
    pandas.DataFrame
        Columns ``split``, ``target``, ``attribute``, ``level``, ``n``, ``events`` and ``<METRIC>
        [CI]`` (e.g. ``AUROC [CI]``) as text ``0.812 [0.750, 0.860]``, or ``n/e (reason)``.
    """
    return pd.DataFrame([{
        "split": r["split"], "target": r["target"], "attribute": r["attribute"], "level": r["level"],
        "n": int(r["n"]), "events": int(r["n_pos"]),
        f"{str(r['metric']).upper()} [CI]": estimate_text(r["value"], r["ci_low"], r["ci_high"], _reason(r))}
        for _, r in t.iterrows()])


def fairness_display(t: pd.DataFrame) -> pd.DataFrame:
    """Gaps with their bootstrap intervals; the level's metric and the reference it is compared with."""
    return pd.DataFrame([{
        "split": r["split"], "target": r["target"], "attribute": r["attribute"], "level": r["level"],
        "n": int(r["n"]), "events": "" if is_missing(r["n_pos"]) else int(r["n_pos"]),
        "metric": estimate_text(r["metric_value"]) if not is_missing(r["metric_value"]) else "\u2014",
        "reference": estimate_text(r["reference"]) if not is_missing(r["reference"]) else "\u2014",
        "gap [CI]": estimate_text(r["gap"], r["ci_low"], r["ci_high"]), "kind": r["kind"]} for _, r in t.iterrows()])


def _with_tables(sec: Section, t: dict[str, pd.DataFrame], *entries: tuple[str, str, Any]) -> Section:
    """Add the run's tables ``(name, caption, display function or None)`` that exist to ``sec``; return it."""
    for name, caption, show in entries:
        if name in t:
            sec.tables.append((caption, show(t[name]) if show else t[name]))
    return sec


def build_sections(run: Any, metrics: dict) -> list[Section]:
    """Report sections in reading order; a section without content says why."""
    s = run.spec
    conf = f"{100 * s.confidence:g}%"
    t = run.tables
    sections = []
    rule = (f"AUROC, AUPRC and C-index are reported only with at least {s.min_events} events and "
            f"{s.min_nonevents} non-events; below that they are shown as n/e (not estimable) with the reason, "
            "carry no interval, no point in the figures and no fairness gap. This is a floor below which an "
            "interval is meaningless, not a sample size that makes an estimate precise (validation studies "
            "need about 100 events and 100 non-events): read every estimate with its n and events.")

    # The spec's ``ci`` is the AUROC's interval only: AUPRC, F1 and the subgroup and fairness
    # intervals are bootstraps whatever it says.
    auroc_ci = "stratified percentile bootstrap" if s.ci == "bootstrap" else "DeLong"
    summary = Section("Summary", text=(
        f"Splits: {', '.join(run.splits)}. Targets: {', '.join(run.targets)}. Thresholds are chosen on "
        f"'{run.train_split}' and applied unchanged elsewhere; recalibration is fitted on '{run.val_split}'. "
        f"AUROC intervals: {auroc_ci}; every bootstrap: {s.n_boot} resamples, seed {s.seed}; {conf} coverage."
        f"\n\n{rule}"))
    sections.append(_with_tables(summary, t, ("validation", "AUROC [CI]; events, n per target and split (internal "
                                                             "vs external validation)", None)))

    disc = Section("Discrimination", text=(
        f"AUROC (Mann-Whitney, ties count 1/2) with {auroc_ci} intervals and AUPRC (average precision, "
        "step-wise; chance level = prevalence) with stratified percentile bootstrap intervals; in a stratified "
        "bootstrap positives and negatives are resampled separately so every resample keeps the prevalence."))
    sections.append(_with_tables(disc, t, ("discrimination", "AUROC and AUPRC", discrimination_display)))

    thr = Section("Thresholds", text=(
        f"Operating point: the '{s.threshold}' threshold chosen on '{run.train_split}' (incidence: the top "
        "fraction of training patients equal to the training prevalence is high risk). Sensitivity, "
        f"specificity, PPV and NPV with {conf} Wilson intervals; F1 with a stratified parametric bootstrap. "
        f"Three risk levels: below the sensitivity-{s.sensitivity:g} cut-off is low risk, at or above the "
        f"specificity-{s.specificity:g} cut-off is high risk."))
    sections.append(_with_tables(thr, t, ("thresholds", f"Metrics at the threshold [{conf} CI]", thresholds_display),
                                 ("risk_levels", "Three risk levels", None)))

    cal = Section("Calibration", text=(
        "Calibration intercept (calibration-in-the-large: logistic regression with logit(p) as offset; ideal "
        "0) and slope (logistic regression of y on logit(p); ideal 1), ECE over up to "
        f"{s.calibration_bins} {s.calibration_strategy} bins (quantile bins: at least "
        f"{s.calibration_min_bin_size} patients per bin, so small splits get fewer bins), Brier and scaled "
        "Brier score, Spiegelhalter's z. "
        f"Recalibration maps ({', '.join(s.recalibration) or 'none'}) are fitted on '{run.val_split}' and "
        "judged on the other evaluation splits."))
    rows = []
    for split, by_t in metrics.items():
        for target, c in by_t.items():
            k = c.get("calibration")
            if k:
                rows.append({"split": split, "target": target, "n": c["n"], "events": c["n_pos"],
                             "intercept [CI]": estimate_text(k["intercept"]["value"], *(k["intercept"]["ci"] or [None, None])),
                             "slope [CI]": estimate_text(k["slope"]["value"], *(k["slope"]["ci"] or [None, None])),
                             "ece": k["ece"], "brier": k["brier"], "scaled_brier": k["scaled_brier"],
                             "spiegelhalter_z": k["spiegelhalter_z"], "spiegelhalter_p": k["spiegelhalter_p"]})
    if rows:
        cal.tables.append(("Calibration statistics", pd.DataFrame(rows).astype(
            {k: float for k in ("ece", "brier", "scaled_brier", "spiegelhalter_z", "spiegelhalter_p")})))
    sections.append(_with_tables(cal, t, ("recalibration", "Recalibration (fitted on validation)", None)))

    surv = Section("Time to event", text=(
        "Kaplan-Meier cumulative incidence per risk group with pointwise intervals and numbers at risk; "
        "log-rank tests and Cox hazard ratios against the low-risk group; Harrell's and Uno's C-index, "
        "time-dependent (cumulative/dynamic) AUROC and the integrated Brier score (risk turned into survival "
        "by a Cox model on logit(p) fitted on the training split). A target with a fixed horizon (30-day "
        "MACE) is judged on the events by its horizon: follow-up is censored there and its figure ends there; "
        "a time-to-event target is drawn over its whole follow-up. A hazard ratio is not estimable when a "
        "group has no events, or when the groups are separated (the Cox fit has no finite optimum)."))
    sections.append(_with_tables(
        surv, t, ("survival", "Concordance, time-dependent AUROC, integrated Brier score", survival_display),
        ("risk_group_contrasts", "Risk groups against the low-risk group", contrasts_display)))

    dca = Section("Decision curves", text=(
        "Net benefit = TP/n - FP/n x pt/(1 - pt) at threshold probability pt, against treating everyone "
        "and treating no one. The model is useful where its curve lies above both."))
    sections.append(dca)

    sub = Section("Subgroups and fairness", text=(
        f"{s.subgroup_metric.upper()} per subgroup with {conf} stratified bootstrap intervals. Fairness gap: "
        "binary attribute M_g - M_~g; multi-level attribute M_Sj - median over its levels; and max - min over the "
        f"levels, each with a {conf} bootstrap interval over patients (resampled within each level and outcome, "
        "every gap recomputed on each resample). Levels that are not "
        "estimable are left out of the gaps (an attribute needs two estimable levels). Reserved manifest "
        "columns other than site (ids, image paths, outcomes, follow-up) are never subgroups; numeric "
        f"attributes with many values are cut into {s.subgroup_quantiles} quantile bins; categorical "
        f"attributes may have at most {s.max_subgroup_levels} levels.\n\n{rule}"))
    sections.append(_with_tables(sub, t, ("subgroups", "Metric per subgroup", subgroups_display),
                                 ("fairness_gaps", f"Fairness gaps with {conf} bootstrap intervals (estimable levels "
                                                   "only; max - min per attribute)", fairness_display)))

    if "agreement" in t or "Agreement of scores" in run.figures or "Agreement of scores" in run.notes:
        agree = Section("Agreement of scores", text=(
            f"Bland-Altman: bias = mean(predicted - reference), {conf} limits of agreement = bias -+ z x SD of "
            "the differences, plotted against the pair means."))
        sections.append(_with_tables(agree, t, ("agreement", "Bias and limits of agreement", None)))

    for sec in sections:
        sec.figures.extend(run.figures.get(sec.title, []))
        sec.notes.extend(run.notes.get(sec.title, []))
        if not sec.figures and not sec.tables and sec.title != "Summary" and not sec.notes:
            sec.notes.append("Nothing to show for these predictions.")
    extra = [k for k in run.figures if k not in {sec.title for sec in sections}]
    for k in extra:
        sections.append(Section(k, figures=run.figures[k], notes=run.notes.get(k, [])))
    warning_lines = run.warning_notes()
    if warning_lines:
        sections.append(Section("Numerical warnings", text=(
            "Warnings raised by the statistical libraries during this evaluation, counted and explained here once "
            "instead of printed each time."), notes=warning_lines))
    return sections
