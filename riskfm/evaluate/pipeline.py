"""One call from predictions to metrics.json, CSV tables, figures and a self-contained report.html.

``evaluate(predictions, out_dir)`` writes::

    out_dir/metrics.json          {split: {target: cell}}: every estimate an object {value, ci, method, n}
    out_dir/tables/*.csv          discrimination, thresholds, risk_levels, calibration_bins,
                                  recalibration, survival, risk_group_contrasts, decision_curves,
                                  subgroups, fairness_gaps, validation
    out_dir/figures/*.png         ROC with CI band, calibration, cumulative incidence by risk group,
                                  decision curves, forest plots (subgroups; internal vs external)
    out_dir/report.html           all of it in one file (figures embedded)

Intervals are spelled as everywhere in ``riskfm.evaluate`` (``riskfm.evaluate.results``):
``"ci": [low, high]`` in metrics.json, ``ci_low`` / ``ci_high`` (``<statistic>_ci_low`` when a
row has several) in the CSV tables. Every number is computed here or in the modules it calls;
the figures only draw the results (``.plot()``).

Roles of the splits: thresholds (incidence, Youden, sensitivity/specificity, three risk levels)
are chosen on ``train_split`` and applied unchanged to every split; recalibration maps are fitted
on ``val_split`` and judged on every other split except ``train_split``; the training split also
provides the censoring distribution and the Cox baseline for the survival metrics. A split that
is missing is reported in notes, never silently replaced.

Small samples: every AUROC, AUPRC and C-index goes through ``riskfm.evaluate.guards.estimable``
(at least ``min_events`` events and ``min_nonevents`` non-events, 10 each by default); below that
it is "not estimable" everywhere (tables, figures, fairness gaps, metrics.json), with the reason
and the counts. Expected numerical warnings (lifelines' overflow and convergence warnings from
Cox fits on separated risk groups) are caught and summarised once in the report.
"""

from __future__ import annotations

import logging
import math
import os
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from riskfm.evaluate.calibration import calibration, fit_recalibration
from riskfm.evaluate.decision_curve import decision_curve
from riskfm.evaluate.discrimination import average_precision
from riskfm.evaluate.fairness import FAIRNESS_COLUMNS, fairness_gaps
from riskfm.evaluate.guards import estimable
from riskfm.evaluate.horizons import censor_at, target_horizon_days
from riskfm.evaluate.report_sections import build_sections, estimate_text
from riskfm.evaluate.results import Estimate, bootstrap_method, make_ci
from riskfm.evaluate.risk_groups import assign_risk_groups, cumulative_incidence_by_group, incidence_threshold
from riskfm.evaluate.roc import roc_curves
from riskfm.evaluate.run_metrics import (
    metrics_from_predictions,
    ordered_splits,
    ordered_targets,
    read_predictions,
    validate_predictions,
    write_metrics,
)
from riskfm.evaluate.spec import EvaluationSpec
from riskfm.evaluate.subgroups import subgroup_attributes, subgroup_metrics
from riskfm.evaluate.survival import (
    SurvivalMetrics,
    group_contrasts,
    survival_metrics,
)
from riskfm.evaluate.thresholds import (
    three_level_thresholds,
    threshold_at_sensitivity,
    threshold_at_specificity,
    threshold_metrics,
    youden_threshold,
)
from riskfm.progress import progress, status

log = logging.getLogger(__name__)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(name)).strip("_") or "unnamed"


def _both(y: np.ndarray) -> bool:
    """Tell whether outcomes ``y`` (0/1) hold both an event and a non-event."""
    return 0 < int(y.sum()) < len(y)


def _contrast_records(c: pd.DataFrame) -> list[dict[str, Any]]:
    """``group_contrasts`` rows for metrics.json: the hazard ratio as an estimate object."""
    out = []
    for r in c.to_dict(orient="records"):
        ci_low, ci_high = r.pop("ci_low"), r.pop("ci_high")
        hr = r.pop("hazard_ratio")
        out.append({"group": r.pop("group"), "reference": r.pop("reference"), "hazard_ratio": Estimate(
            hr, make_ci(ci_low, ci_high), "Cox (Efron ties), Wald interval", int(r["n"]), None, 0.95, None,
            r.get("not_estimable") or None).to_dict(), **r})
    return out


def _events(k: int) -> str:
    return f"{k} event" + ("" if k == 1 else "s")


# Warnings that the analyses are expected to raise on small or separated groups, with what they
# mean; ``evaluate`` catches them and the report summarises them once.
_EXPECTED_WARNINGS: tuple[tuple[str, str], ...] = (
    ("Cox fits (lifelines): overflow / convergence",
     "lifelines warns (overflow in exp, low variance, Newton-Raphson not converged) when a risk group has all "
     "or almost all of its events before the other group's, or none: the groups are separated and the hazard "
     "ratio has no finite maximum-likelihood estimate. Such hazard ratios are shown as 'not estimable (did "
     "not converge: separated groups)'; the log-rank tests do not depend on the fit and are reported."),
)


def read_covariates(covariates: pd.DataFrame | str | os.PathLike) -> pd.DataFrame:
    """Patient attributes for subgroup analyses: a DataFrame or a CSV with ``patient_id`` + columns.

    Raises
    ------
    ValueError
        No ``patient_id`` column or repeated patient ids (named with the source).
    """
    source = "<covariates DataFrame>"
    if not isinstance(covariates, pd.DataFrame):
        source = str(covariates)
        if not Path(covariates).is_file():
            raise FileNotFoundError(f"covariates file not found: {covariates}")
        covariates = pd.read_csv(covariates, dtype={"patient_id": str})
    if "patient_id" not in covariates.columns:
        raise ValueError(f"{source}: covariates need a 'patient_id' column (found {list(covariates.columns)})")
    cov = covariates.copy()
    cov["patient_id"] = cov["patient_id"].astype(str).str.strip()
    dup = cov["patient_id"].duplicated()
    if dup.any():
        raise ValueError(f"{source}: patient_id {cov.loc[dup, 'patient_id'].iloc[0]!r} appears more than once "
                         f"({int(dup.sum())} repeats); give one row per patient")
    return cov


def _choose_threshold(spec: EvaluationSpec, y: np.ndarray, p: np.ndarray) -> float:
    """Return the operating threshold of ``spec.threshold`` on labels ``y`` and risks ``p``.

    ``y`` (0/1) and ``p`` (predicted risks) are the training patients' arrays ``[n]``.
    """
    if spec.threshold == "incidence":
        return incidence_threshold(p, float(y.mean()))
    if spec.threshold == "youden":
        return youden_threshold(y, p)
    if spec.threshold == "sensitivity":
        return threshold_at_sensitivity(y, p, spec.sensitivity)
    return threshold_at_specificity(y, p, spec.specificity)


class _Run:
    """State of one evaluation: the data, the spec, what was written and the notes.

    ``df`` is the output of ``validate_predictions``: ``y_true``, ``y_prob``,
    ``time_to_event_days`` and ``event`` are float64 there, so their arrays are taken as they are.
    """

    def __init__(self, df: pd.DataFrame, out: Path, spec: EvaluationSpec, train_split: str, val_split: str,
                 covariates: pd.DataFrame | None) -> None:
        self.df, self.out, self.spec = df, out, spec
        self.train_split, self.val_split = train_split, val_split
        self.cov = covariates
        self.splits = ordered_splits(df["split"])
        self.targets = ordered_targets(df["target"])
        self.tables: dict[str, pd.DataFrame] = {}
        self.figures: dict[str, list[tuple[str, Path]]] = {}
        self.notes: dict[str, list[str]] = {}
        self.thresholds: dict[str, dict[str, Any]] = {}
        self.pending: list[tuple[str, str, str, Any]] = []
        self.warning_counts: dict[str, int] = {}

    # -------------------------------------------------------------------------------- helpers
    def note(self, section: str, msg: str) -> None:
        log.info("evaluate: %s", msg)
        self.notes.setdefault(section, []).append(msg)

    def rows(self, split: str, target: str, known: bool = True) -> pd.DataFrame:
        d = self.df[(self.df["split"] == split) & (self.df["target"] == target)]
        return d[d["y_true"].notna()] if known else d

    def estimable(self, y: Any) -> str | None:
        """Apply the small-sample rule with this spec's minimum numbers of events and non-events.

        Returns the not-estimable reason, or None when ``y`` (outcomes 0/1) is estimable.
        """
        return estimable(y, self.spec)

    def figure(self, section: str, caption: str, name: str, make: Any) -> None:
        """Queue a figure; ``draw_figures`` draws them all (with one progress bar) at the end."""
        if self.spec.figures:
            self.pending.append((section, caption, name, make))

    def draw_figures(self) -> None:
        from riskfm.plots.style import save_figure

        for section, caption, name, make in progress(self.pending, desc="evaluate: drawing figures",
                                                      unit="figure", delay=2.0):
            try:
                fig = make()
            except ValueError as exc:
                self.note(section, f"figure {name} skipped: {exc}")
                continue
            self.figures.setdefault(section, []).append((caption, save_figure(fig, self.out / "figures" / name)))
        self.pending = []

    def absorb(self, caught: list[warnings.WarningMessage]) -> None:
        """Count caught warnings: expected ones by kind, others by message (summarised in the report)."""
        for w in caught:
            msg, mod = str(w.message), str(w.filename)
            if issubclass(w.category, (DeprecationWarning, PendingDeprecationWarning, FutureWarning)):
                log.debug("evaluate: %s: %s (%s:%s)", w.category.__name__, msg, mod, w.lineno)
                continue
            cox = "lifelines" in mod or "Cox hazard ratio" in msg
            key = _EXPECTED_WARNINGS[0][0] if cox else f"{w.category.__name__}: {msg.splitlines()[0][:160]}"
            self.warning_counts[key] = self.warning_counts.get(key, 0) + 1

    def warning_notes(self) -> list[str]:
        """One line per kind of numerical warning caught, with its count and meaning."""
        meaning = dict(_EXPECTED_WARNINGS)
        out = []
        for key, k in self.warning_counts.items():
            times = f"{k} warning" + ("" if k == 1 else "s")
            out.append(f"{key} ({times}): {meaning[key]}" if key in meaning else f"{key} ({times})")
        return out

    # -------------------------------------------------------------------------------- analyses
    def agreement(self, scores: pd.DataFrame | None, metrics: dict) -> None:
        """Bland-Altman agreement of continuous scores (e.g. predicted vs reference Agatston)."""
        if scores is None:
            return
        from riskfm.evaluate.agreement import bland_altman

        rows = []
        for (split, name), g in scores.groupby(["split", "score"], sort=False):
            g = g.dropna(subset=["reference", "predicted"])
            if len(g) < 3:
                self.note("Agreement of scores", f"{split}/{name}: {len(g)} paired scores, need 3; skipped")
                continue
            ba = bland_altman(g["reference"].to_numpy(), g["predicted"].to_numpy(),
                              confidence=self.spec.confidence)
            cell = ba.to_dict()
            rows.append({"split": split, "score": name, "n": ba.n, "bias": ba.value,
                         "ci_low": ba.ci[0], "ci_high": ba.ci[1],  # 3 pairs or more: always an interval
                         "sd": ba.sd, "loa_low": ba.loa[0], "loa_high": ba.loa[1], "confidence": ba.confidence})
            metrics.setdefault(str(split), {})[str(name)] = {"n": int(ba.n), "bland_altman": cell}
            self.figure("Agreement of scores", f"Bland-Altman, {name} ({split})",
                        f"bland_altman_{_safe(str(split))}_{_safe(str(name))}.png",
                        lambda ba=ba, name=name: ba.plot(title=str(name)))
        if rows:
            self.tables["agreement"] = pd.DataFrame(rows)

    def discrimination(self, metrics: dict) -> None:
        s, rows = self.spec, []
        for split in self.splits:
            for target in self.targets:
                cell = metrics[split][target]
                d = self.rows(split, target)
                y, p = d["y_true"].to_numpy(), d["y_prob"].to_numpy()
                reason = cell.get("not_estimable")
                if reason is None:
                    ap = average_precision(y, p, n_boot=s.n_boot, seed=s.seed, confidence=s.confidence)
                    cell["auprc"] = ap.to_dict()
                    cell["auprc_chance"] = float(y.mean())
                elif _both(y):
                    cell["auprc"] = Estimate.missing(reason, bootstrap_method(s.n_boot), len(y), int(y.sum()),
                                                     s.confidence).to_dict()
                row = {"split": split, "target": target, "n": cell["n"], "n_pos": cell["n_pos"]}
                for name in ("auroc", "auprc"):
                    est = cell.get(name) or {}
                    ci = est.get("ci") or [None, None]
                    row.update({name: est.get("value"), f"{name}_ci_low": ci[0], f"{name}_ci_high": ci[1]})
                rows.append({**row, "not_estimable": reason or ""})
        self.tables["discrimination"] = pd.DataFrame(rows).astype(
            {c: float for c in ("auroc", "auroc_ci_low", "auroc_ci_high", "auprc", "auprc_ci_low", "auprc_ci_high")})
        # Internal vs external side by side: one row per target, one "AUROC [CI] (events / n)" per split.
        wide = {}
        for r in rows:
            txt = estimate_text(r["auroc"], r["auroc_ci_low"], r["auroc_ci_high"], r["not_estimable"] or None)
            counts = f"n={r['n']}" if r["not_estimable"] else f"{_events(r['n_pos'])}, n={r['n']}"
            wide.setdefault(r["target"], {"target": r["target"]})[r["split"]] = f"{txt}; {counts}"
        self.tables["validation"] = pd.DataFrame(list(wide.values()))

        from riskfm.plots.forest import plot_forest
        from riskfm.plots.style import target_label

        for split in self.splits:
            d = self.df[(self.df["split"] == split) & self.df["y_true"].notna()]
            both = [t for t in self.targets if _both(d.loc[d["target"] == t, "y_true"].to_numpy())]
            # A cell that is not estimable still has an "auroc" object, with a null value.
            ok = [t for t in both if (metrics[split][t].get("auroc") or {}).get("value") is not None]
            if not ok:
                self.note("Discrimination", f"split {split!r}: no target with at least {s.min_events} events and "
                          f"{s.min_nonevents} non-events; no ROC figure")
                continue
            # Targets that are not estimable stay in the legend as "n/e (reason)", without a curve.
            self.figure("Discrimination", f"ROC curves, {split} split (shaded: {100 * s.confidence:g}% "
                        "pointwise bootstrap band; legend: AUROC with its interval, or n/e with the reason)",
                        f"roc_{_safe(split)}.png",
                        lambda d=d, both=both, split=split: roc_curves(
                            d[d["target"].isin(both)], split=split, metrics=metrics.get(split), band=True,
                            seed=s.seed, confidence=s.confidence, min_events=s.min_events,
                            min_nonevents=s.min_nonevents).plot(title=f"ROC \u2014 {split}"))
        forest = pd.DataFrame([{"attribute": target_label(r["target"]), "level": r["split"], "metric": "auroc",
                                "n": r["n"], "n_pos": r["n_pos"], "value": r["auroc"], "ci_low": r["auroc_ci_low"],
                                "ci_high": r["auroc_ci_high"], "not_estimable": r["not_estimable"]}
                               for r in rows if r["n"] > 0]).astype({"value": float, "ci_low": float, "ci_high": float})
        if len(forest) and forest["value"].notna().any() and len(self.splits) > 1:
            self.figure("Discrimination", "AUROC per target and split: internal vs external validation "
                        "(n and events on the right; n/e: not estimable, no point drawn)",
                        "validation_auroc.png",
                        lambda: plot_forest(forest, reference=0.5, title="AUROC by split", confidence=s.confidence))

    def choose_thresholds(self, metrics: dict) -> None:
        s, rows, levels = self.spec, [], []
        for target in self.targets:
            ref = self.rows(self.train_split, target)
            chosen_on = self.train_split
            if not _both(ref["y_true"].to_numpy()):
                self.note("Thresholds", f"target {target!r}: split {self.train_split!r} missing or single-class; "
                          "no threshold chosen (thresholds are never chosen on evaluation splits)")
                continue
            y, p = ref["y_true"].to_numpy(), ref["y_prob"].to_numpy()
            t = _choose_threshold(s, y, p)
            info: dict[str, Any] = {"method": s.threshold, "value": t, "chosen_on": chosen_on}
            try:
                lo, hi = three_level_thresholds(y, p, s.sensitivity, s.specificity)
                info["risk_levels"] = [lo, hi]
            except ValueError as exc:
                self.note("Thresholds", f"target {target!r}: no three risk levels: {exc}")
            self.thresholds[target] = info
            for split in self.splits:
                d = self.rows(split, target)
                yy, pp = d["y_true"].to_numpy(), d["y_prob"].to_numpy()
                if not _both(yy):
                    continue
                tm = threshold_metrics(yy, pp, t, confidence=s.confidence, seed=s.seed)
                metrics[split][target]["threshold"] = {"rule": s.threshold, "chosen_on": chosen_on, **tm.to_dict()}
                rows.append({"split": split, "target": target, "rule": s.threshold, **tm.to_row()})
                if "risk_levels" in info:
                    g = assign_risk_groups(pp, info["risk_levels"])
                    for level in ("low", "intermediate", "high"):
                        m = g == level
                        levels.append({"split": split, "target": target, "group": level,
                                       "cut_low": info["risk_levels"][0], "cut_high": info["risk_levels"][1],
                                       "n": int(m.sum()), "n_events": int(yy[m].sum()),
                                       "event_rate": float(yy[m].mean()) if m.any() else math.nan})
                    metrics[split][target]["risk_levels"] = {
                        "cuts": info["risk_levels"],
                        "n": {lv: int((g == lv).sum()) for lv in ("low", "intermediate", "high")}}
        if rows:
            self.tables["thresholds"] = pd.DataFrame(rows)
        if levels:
            self.tables["risk_levels"] = pd.DataFrame(levels)

    def calibration(self, metrics: dict) -> None:
        s, bins, recal = self.spec, [], []
        from riskfm.plots.style import target_label

        for split in self.splits:
            for target in self.targets:
                d = self.rows(split, target)
                y, p = d["y_true"].to_numpy(), d["y_prob"].to_numpy()
                if not _both(y):
                    continue
                try:
                    cal = calibration(y, p, n_bins=s.calibration_bins, strategy=s.calibration_strategy,
                                      confidence=s.confidence, min_bin_size=s.calibration_min_bin_size)
                except ValueError as exc:
                    self.note("Calibration", f"{split}/{target}: calibration skipped: {exc}")
                    continue
                metrics[split][target]["calibration"] = cal.to_dict()
                bins.append(cal.table.assign(split=split, target=target))
                if split != self.train_split:
                    self.figure("Calibration", f"Reliability diagram, {target_label(target)}, {split}: "
                                f"{len(cal.table)} {s.calibration_strategy} bins (patients per bin above each interval), "
                                f"Wilson {100 * s.confidence:g}% intervals; n={len(y)}, {_events(int(y.sum()))}; "
                                f"slope {cal.slope.value:.2f}, intercept {cal.intercept.value:.2f}, ECE {cal.ece:.3f}",
                                f"calibration_{_safe(split)}_{_safe(target)}.png",
                                lambda cal=cal, target=target, split=split: cal.plot(
                                    label=target_label(target),
                                    title=f"Calibration \u2014 {target_label(target)}, {split}"))
        if bins:
            t = pd.concat(bins, ignore_index=True)
            self.tables["calibration_bins"] = t[["split", "target", *[c for c in t.columns if c not in ("split", "target")]]]
        # Recalibration: fitted on the validation split, judged on the others.
        if not s.recalibration:
            return
        for target in self.targets:
            v = self.rows(self.val_split, target)
            if not _both(v["y_true"].to_numpy()):
                self.note("Calibration", f"target {target!r}: split {self.val_split!r} missing or single-class; "
                          "no recalibration")
                continue
            for method in s.recalibration:
                try:
                    rc = fit_recalibration(v["y_true"], v["y_prob"], method)
                except ValueError as exc:
                    self.note("Calibration", f"{target}: {method} recalibration failed: {exc}")
                    continue
                for split in self.splits:
                    if split in (self.train_split, self.val_split):
                        continue
                    d = self.rows(split, target)
                    y = d["y_true"].to_numpy()
                    if not _both(y):
                        continue
                    q = rc.transform(d["y_prob"].to_numpy())  # every map returns risks in [0, 1]
                    try:
                        after = calibration(y, q, n_bins=s.calibration_bins, strategy=s.calibration_strategy,
                                            min_bin_size=s.calibration_min_bin_size)
                    except ValueError as exc:
                        self.note("Calibration", f"{split}/{target}: {method}: {exc}")
                        continue
                    cell = metrics[split][target].setdefault("recalibration", {})
                    cell[method] = {"fitted_on": self.val_split, "brier": after.brier, "ece": after.ece,
                                    "intercept": after.intercept.to_dict(), "slope": after.slope.to_dict()}
                    before = metrics[split][target].get("calibration") or {}
                    recal.append({"split": split, "target": target, "method": method, "fitted_on": self.val_split,
                                  "n": len(y), "n_pos": int(y.sum()),
                                  "brier_before": before.get("brier"), "brier_after": after.brier,
                                  "ece_before": before.get("ece"), "ece_after": after.ece,
                                  "slope_before": (before.get("slope") or {}).get("value"),
                                  "slope_after": after.slope.value,
                                  "intercept_before": (before.get("intercept") or {}).get("value"),
                                  "intercept_after": after.intercept.value})
        if recal:
            self.tables["recalibration"] = pd.DataFrame(recal)

    def survival(self, metrics: dict) -> None:
        if not {"time_to_event_days", "event"} <= set(self.df.columns):
            self.note("Time to event", "predictions have no time_to_event_days/event columns; section skipped")
            return
        from riskfm.plots.style import target_label

        rows, contrasts = [], []
        for target in [t for t in self.spec.survival_targets if t in self.targets]:
            horizon = target_horizon_days(target, self.spec.horizon_days)

            def fu(split: str, target: str = target, horizon: float | None = horizon) -> pd.DataFrame:
                d = self.rows(split, target, known=False)
                d = d[d["time_to_event_days"].notna() & d["event"].notna()].copy()
                # A fixed-horizon outcome (30-day MACE) is judged on events by its horizon.
                d["time_to_event_days"], d["event"] = censor_at(d["time_to_event_days"], d["event"], horizon)
                return d

            if horizon is not None:
                self.note("Time to event", f"{target}: follow-up censored at its {horizon:g}-day horizon (events "
                          "after it count as censored) for the concordance, hazard ratios and incidence curves")
            tr = fu(self.train_split)
            train = None
            if len(tr) and tr["event"].sum() > 0:
                train = (tr["time_to_event_days"].to_numpy(), tr["event"].to_numpy(),
                         tr["y_prob"].to_numpy())
            else:
                self.note("Time to event", f"{target}: no follow-up with events in split {self.train_split!r}; "
                          "Uno's C uses each split's own censoring, no integrated Brier score")
            thr = self.thresholds.get(target)
            for split in self.splits:
                d = fu(split)
                if len(d) == 0 or d["event"].sum() == 0:
                    continue
                t, e, r = (d["time_to_event_days"].to_numpy(), d["event"].to_numpy(),
                           d["y_prob"].to_numpy())
                n_events = int(e.sum())
                reason = self.estimable(e)  # censored patients count as non-events
                sm = None
                if reason is None:
                    try:
                        sm = survival_metrics(t, e, r, train=train)
                    except ValueError as exc:
                        self.note("Time to event", f"{split}/{target}: survival metrics skipped: {exc}")
                if sm is not None:
                    metrics[split][target]["survival"] = sm.to_dict()
                    rows.append({"split": split, "target": target, "n": sm.n, "n_events": sm.n_events,
                                 "harrell_c": sm.harrell_c.value, "uno_c": sm.uno_c.value,
                                 "mean_time_auc": sm.mean_auc_t.value,
                                 "integrated_brier": None if sm.integrated_brier is None else sm.integrated_brier.value,
                                 "not_estimable": ""})
                elif reason is not None:
                    metrics[split][target]["survival"] = {
                        **SurvivalMetrics.missing(reason, len(t), n_events).to_dict(), "time_auc": None,
                        "not_estimable": reason}
                    rows.append({"split": split, "target": target, "n": len(t), "n_events": n_events,
                                 "harrell_c": math.nan, "uno_c": math.nan, "mean_time_auc": math.nan,
                                 "integrated_brier": math.nan, "not_estimable": reason})
                if thr is None:
                    continue
                cuts = thr.get("risk_levels") or thr["value"]
                groups = assign_risk_groups(r, cuts)
                if len(set(groups)) >= 2:
                    c = group_contrasts(t, e, groups)
                    contrasts.append(c.assign(split=split, target=target))
                    metrics[split][target]["risk_group_contrasts"] = _contrast_records(c)
                if split == self.train_split:
                    continue
                how = ("three levels: sensitivity/specificity cut-offs " + ", ".join(f"{x:.3f}" for x in cuts)
                       if isinstance(cuts, list) else f"{thr['method']} threshold {cuts:.3f}")
                if horizon is not None:
                    what = (f"Kaplan\u2013Meier cumulative incidence of {target_label(target)} by risk group over its "
                            f"{horizon:g}-day horizon (dotted line)")
                    fig_title = f"{target_label(target)} by day {horizon:g} \u2014 {split}"
                else:
                    last = float(np.max(t))
                    what = (f"Kaplan\u2013Meier cumulative incidence by risk group of the time-to-event target "
                            f"{target_label(target)}, over follow-up (to day {last:g})")
                    fig_title = f"Time to event: {target_label(target)} \u2014 {split}"
                self.figure("Time to event", f"{what}, {split} ({how}, chosen on {thr['chosen_on']}); "
                            f"n={len(t)}, {_events(n_events)}; numbers at risk below",
                            f"cumulative_incidence_{_safe(split)}_{_safe(target)}.png",
                            lambda t=t, e=e, groups=groups, title=fig_title, horizon=horizon: cumulative_incidence_by_group(
                                t, e, groups, confidence=self.spec.confidence, horizon_days=horizon).plot(title=title))
        if rows:
            self.tables["survival"] = pd.DataFrame(rows)
        if contrasts:
            c = pd.concat(contrasts, ignore_index=True)
            self.tables["risk_group_contrasts"] = c[["split", "target", *[x for x in c.columns
                                                                         if x not in ("split", "target")]]]

    def decision_curves(self) -> None:
        from riskfm.plots.decision_curve import plot_decision_curve
        from riskfm.plots.style import target_label

        a, b, step = self.spec.decision_thresholds
        # start, start + step, ... up to stop (inclusive) and never past it: arange(a, b + step / 2, step)
        # overshot stop when step does not divide stop - start (up to 1.1, which decision_curve refuses).
        # Rounded so that "0.06" is the decimal 0.06, not 0.060000000000000005.
        k = int(np.floor((b - a) / step + 1e-9))
        grid = np.round(a + step * np.arange(k + 1), 10)
        tables = []
        for split in self.splits:
            curves = {}
            for target in self.targets:
                d = self.rows(split, target)
                y = d["y_true"].to_numpy()
                if not _both(y):
                    continue
                dc = decision_curve(y, d["y_prob"].to_numpy(), grid)
                curves[target] = dc
                tables.append(dc.table.assign(split=split, target=target, n=len(y), n_pos=int(y.sum())))
            if split == self.train_split or not curves:
                continue
            # One figure per split and target: treat-all depends on the target's prevalence.
            for target, dc in curves.items():
                self.figure("Decision curves", f"Net benefit of acting on predicted {target_label(target)} risk, "
                            f"{split}, against treat-all and treat-none",
                            f"decision_curve_{_safe(split)}_{_safe(target)}.png",
                            lambda dc=dc, target=target, split=split: plot_decision_curve(
                                {target_label(target): dc}, title=f"Decision curve \u2014 {target_label(target)}, {split}"))
        if tables:
            t = pd.concat(tables, ignore_index=True)
            self.tables["decision_curves"] = t[["split", "target", "n", "n_pos", "threshold", "net_benefit", "treat_all",
                                                "treat_none"]]

    def attributes(self) -> dict[str, pd.Series]:
        """Subgroup attributes by patient id: the covariates (``subgroup_attributes``) and the site."""
        s = self.spec
        attrs: dict[str, pd.Series] = {}
        ids = self.df["patient_id"].drop_duplicates()
        if self.cov is not None:
            cov = self.cov[self.cov["patient_id"].isin(set(ids))]
            if cov.empty:
                self.note("Subgroups and fairness", "no covariate row matches a patient of the predictions")
            else:
                wanted = s.subgroups
                if wanted is not None and "site" not in cov.columns and "site" in self.df.columns:
                    wanted = [c for c in wanted if c != "site"]  # the predictions' site column, below
                found, notes = subgroup_attributes(cov, wanted, bins=s.subgroup_bins,
                                                   max_levels=s.max_subgroup_levels, n_quantiles=s.subgroup_quantiles)
                for n in notes:
                    self.note("Subgroups and fairness", n)
                attrs.update(found)
        elif s.subgroups:
            self.note("Subgroups and fairness", "subgroups requested but no covariates given")
        if "site" in self.df.columns and "site" not in attrs and (s.subgroups is None or "site" in s.subgroups):
            site = self.df.drop_duplicates("patient_id").set_index("patient_id")["site"]
            if site.nunique() > s.max_subgroup_levels:
                self.note("Subgroups and fairness", f"site: {site.nunique()} sites, more than max_subgroup_levels "
                          f"({s.max_subgroup_levels}); no site subgroups")
            elif site.nunique() > 1:
                attrs["site"] = site
        return attrs

    def subgroups(self, metrics: dict) -> None:
        s = self.spec
        attrs = self.attributes()
        if not attrs:
            self.note("Subgroups and fairness", "no subgroup attributes (pass covariates=, or a site column)")
            return
        tables, gaps, gap_failed = [], [], False
        primary = s.primary_target or ("mace_30d" if "mace_30d" in self.targets else self.targets[0])
        from riskfm.plots.forest import plot_forest
        from riskfm.plots.style import target_label

        jobs = [(split, target) for split in self.splits if split != self.train_split for target in self.targets]
        for split, target in progress(jobs, desc="evaluate: subgroups", unit="split/target", delay=2.0):
            d = self.rows(split, target)
            y = d["y_true"].to_numpy()
            if not _both(y):
                continue
            per_target = []
            cell = metrics[split][target]
            for name, series in attrs.items():
                g = series.reindex(d["patient_id"].to_numpy())
                g = pd.Series(g.to_numpy(), dtype=g.dtype)  # categorical bands keep their order
                if g.nunique() < 2:
                    continue
                thr = self.thresholds.get(target, {}).get("value")
                try:
                    t = subgroup_metrics(y, d["y_prob"].to_numpy(), g, s.subgroup_metric, attribute=name,
                                         n_boot=s.n_boot, seed=s.seed, confidence=s.confidence, threshold=thr,
                                         min_events=s.min_events, min_nonevents=s.min_nonevents)
                except ValueError as exc:
                    self.note("Subgroups and fairness", f"{split}/{target}/{name}: {exc}")
                    continue
                m = s.subgroup_metric
                entries = {}
                for _, r in t[t["level"] != "All"].iterrows():
                    reason = r["not_estimable"] or None
                    entries[str(r["level"])] = {"metric": m, **Estimate(
                        r["value"], make_ci(r["ci_low"], r["ci_high"]), r["method"] or "none", int(r["n"]),
                        int(r["n_pos"]), s.confidence, None, reason).to_dict()}
                cell.setdefault("subgroups", {})[name] = entries
                per_target.append(t)
                frame = pd.DataFrame({"group": g, "y_true": y, "y_prob": d["y_prob"].to_numpy()})
                try:
                    fg = fairness_gaps(frame, "group", m, threshold=thr, n_resamples=s.n_boot, seed=s.seed,
                                       confidence=s.confidence, min_events=s.min_events,
                                       min_nonevents=s.min_nonevents, attribute=name)
                except ValueError as exc:
                    self.note("Subgroups and fairness", f"{split}/{target}/{name}: no fairness gaps: {exc}")
                    gap_failed = True
                    continue
                cell.setdefault("fairness_gaps", {})[name] = fg.to_dict()
                if fg.resamples_without_gaps:
                    self.note("Subgroups and fairness", f"{split}/{target}/{name}: {fg.resamples_without_gaps} of "
                              f"{fg.n_resamples} resamples had a level whose {m.upper()} was undefined; the fairness "
                              "intervals come from the others")
                gp = fg.estimable_rows()
                if len(gp):
                    gaps.append(gp.assign(split=split, target=target))
            if not per_target:
                continue
            tt = pd.concat(per_target, ignore_index=True)
            tables.append(tt.assign(split=split, target=target))
            if target == primary:
                # One "All" row on top, then each attribute's levels.
                ft = pd.concat([tt[tt["level"] == "All"].head(1), tt[tt["level"] != "All"]], ignore_index=True)
                self.figure("Subgroups and fairness", f"{s.subgroup_metric.upper()} of {target_label(target)} "
                            f"by subgroup, {split} ({100 * s.confidence:g}% stratified bootstrap intervals; "
                            "dashed: all patients; n and events on the right; n/e: not estimable, no point "
                            f"drawn: fewer than {s.min_events} events or {s.min_nonevents} non-events)",
                            f"forest_{_safe(split)}_{_safe(target)}.png",
                            lambda ft=ft, split=split, target=target: plot_forest(
                                ft, title=f"{target_label(target)} \u2014 {split}", confidence=s.confidence))
        if tables:
            t = pd.concat(tables, ignore_index=True)
            self.tables["subgroups"] = t[["split", "target", *[c for c in t.columns if c not in ("split", "target")]]]
        if gaps:
            g = pd.concat(gaps, ignore_index=True)
            self.tables["fairness_gaps"] = g[["split", "target", *[c for c in g.columns if c not in ("split", "target")]]]
        elif tables:
            self.tables["fairness_gaps"] = pd.DataFrame(columns=["split", "target", *FAIRNESS_COLUMNS])
        if tables and not gaps and not gap_failed:  # after a failure its note above says why
            self.note("Subgroups and fairness", "no fairness gaps: no attribute has two levels with an estimable "
                      f"{s.subgroup_metric.upper()} ({s.min_events} events and {s.min_nonevents} non-events each)")


def evaluate(
    predictions: pd.DataFrame | str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    spec: EvaluationSpec | dict | str | os.PathLike | None = None,
    train_split: str = "train",
    val_split: str = "val",
    covariates: pd.DataFrame | str | os.PathLike | None = None,
    scores: pd.DataFrame | None = None,
    title: str | None = None,
) -> dict[str, Any]:
    """Evaluate a predictions table: metrics.json, CSV tables, figures and report.html.

    Parameters
    ----------
    predictions : pandas.DataFrame or path
        Long-format predictions (``patient_id, split, target, y_true, y_prob`` and optionally
        ``site, time_to_event_days, event``); see ``riskfm.evaluate.run_metrics``.
    out_dir : str or path
        Output folder (created).
    spec : EvaluationSpec, dict, YAML path or None
        What to compute (``riskfm.evaluate.spec``); None = defaults.
    train_split : str
        Split on which thresholds are chosen and the survival reference is estimated.
    val_split : str
        Split on which recalibration maps are fitted.
    covariates : DataFrame or CSV path, optional
        ``patient_id`` + attribute columns (sex, age, ...) for subgroup and fairness analyses,
        e.g. ``manifest[["patient_id", "sex", "age"]]``.
    scores : DataFrame, optional
        Continuous scores to compare with a reference (``patient_id, split, score, reference,
        predicted``, e.g. ``score="agatston"``): Bland-Altman bias and limits of agreement per split
        and score, a figure each, and a report section. Their cells in ``metrics.json`` hold
        ``{"n", "bland_altman": {...}}`` under the score's name.
    title : str, optional
        Heading of report.html; default ``"riskfm evaluation: <name of out_dir>"``. The line under
        it names the run folder (and the predictions file when one was given).

    Returns
    -------
    dict
        The metrics written to ``metrics.json``: ``{split: {target: cell}}`` where each cell has
        ``n``, ``n_pos``, ``n_excluded_unknown``, ``prevalence`` and ``auroc`` (an estimate object
        ``{"value", "ci", "method", "n", ...}``, see ``riskfm.evaluate.run_metrics``) plus, where
        defined, ``auprc``, ``calibration`` (``intercept``, ``slope``, ``ece``, ``brier``, ...),
        ``threshold`` (``rule``, ``chosen_on``, counts and the rates as estimates),
        ``risk_levels``, ``recalibration``, ``survival``, ``risk_group_contrasts``, ``subgroups``
        (``{attribute: {level: {metric, value, ci, method, n, n_pos[, not_estimable]}}}``) and
        ``fairness_gaps`` (``{attribute: FairnessGaps.to_dict()}``: max - min with its bootstrap
        interval, and each level's gap under ``levels``). A statistic that is not estimable
        (fewer than ``min_events`` events or ``min_nonevents`` non-events) has a null value and
        interval, with ``not_estimable`` giving the reason and counts.

    Raises
    ------
    ValueError
        Invalid spec or scores; a covariate that is reserved, missing, or categorical with more
        than ``max_subgroup_levels`` levels (named).
    """
    spec = EvaluationSpec.from_any(spec)
    out = Path(out_dir)
    if title is None:
        title = f"riskfm evaluation: {out.resolve().name}"
    if isinstance(predictions, pd.DataFrame):
        status(f"evaluate: checking {len(predictions)} prediction rows")
        df = validate_predictions(predictions, source="<predictions DataFrame>")
        source = f"run folder {out}"
    else:
        status(f"evaluate: reading {predictions}")
        df = read_predictions(predictions)
        source = f"predictions {predictions} \u2192 {out}"
    cov = read_covariates(covariates) if covariates is not None else None
    if scores is not None:
        missing = {"patient_id", "split", "score", "reference", "predicted"} - set(scores.columns)
        if missing:
            raise ValueError(f"scores: missing column(s) {sorted(missing)}")
    out.mkdir(parents=True, exist_ok=True)
    run = _Run(df, out, spec, train_split, val_split, cov)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        status(f"evaluate: discrimination ({len(run.splits)} splits x {len(run.targets)} targets, "
               f"{spec.ci} intervals)")
        metrics = metrics_from_predictions(df, ci=spec.ci, n_boot=spec.n_boot, seed=spec.seed,
                                           confidence=spec.confidence, min_events=spec.min_events,
                                           min_nonevents=spec.min_nonevents)
        run.discrimination(metrics)
        status("evaluate: thresholds")
        run.choose_thresholds(metrics)
        status("evaluate: calibration")
        run.calibration(metrics)
        status("evaluate: time to event")
        run.survival(metrics)
        status("evaluate: decision curves")
        run.decision_curves()
        status("evaluate: subgroups and fairness")
        run.subgroups(metrics)
        run.agreement(scores, metrics)
        if run.pending:
            status(f"evaluate: drawing {len(run.pending)} figures")
        run.draw_figures()
    run.absorb(caught)
    for line in run.warning_notes():
        log.info("evaluate: %s", line)
    write_metrics(metrics, out / "metrics.json")
    (out / "tables").mkdir(exist_ok=True)
    for name, table in run.tables.items():
        table.to_csv(out / "tables" / f"{name}.csv", index=False)
    if spec.report:
        from riskfm.report.html import write_html_report

        write_html_report(build_sections(run, metrics), out / "report.html", title=title, subtitle=source)
        status(f"evaluate: report {out / 'report.html'}")
    return metrics
