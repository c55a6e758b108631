"""One call from predictions to metrics.json, CSV tables, figures and a self-contained report.html.

``evaluate(predictions, out_dir)`` writes::

    out_dir/metrics.json          {split: {target: cell}}: the foundation schema, each cell extended
    out_dir/tables/*.csv          discrimination, thresholds, risk_levels, calibration_bins,
                                  recalibration, survival, risk_group_contrasts, decision_curves,
                                  subgroups, fairness_gaps, validation
    out_dir/figures/*.png         ROC with CI band, calibration, cumulative incidence by risk group,
                                  decision curves, forest plots (subgroups; internal vs external)
    out_dir/report.html           all of it in one file (figures embedded)

Roles of the splits: thresholds (incidence, Youden, sensitivity/specificity, three risk levels)
are chosen on ``train_split`` and applied unchanged to every split; recalibration maps are fitted
on ``val_split`` and judged on every other split except ``train_split``; the training split also
provides the censoring distribution and the Cox baseline for the survival metrics. A split that
is missing is reported in notes, never silently replaced.
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
from riskfm.evaluate.risk_groups import assign_risk_groups, incidence_threshold
from riskfm.evaluate.run_metrics import (
    metrics_from_predictions,
    ordered_splits,
    ordered_targets,
    read_predictions,
    validate_predictions,
    write_metrics,
)
from riskfm.evaluate.spec import EvaluationSpec
from riskfm.evaluate.subgroups import bin_numeric, fairness_gaps, subgroup_metrics
from riskfm.evaluate.survival import group_contrasts, survival_metrics
from riskfm.evaluate.thresholds import (
    three_level_thresholds,
    threshold_at_sensitivity,
    threshold_at_specificity,
    threshold_metrics,
    youden_threshold,
)

log = logging.getLogger(__name__)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(name)).strip("_") or "unnamed"


def _both(y: np.ndarray) -> bool:
    return len(y) > 0 and 0 < int(y.sum()) < len(y)


def _ci(est: Any) -> list[float | None]:
    d = est.to_dict()
    return d["ci"]


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
    """The operating threshold of ``spec.threshold`` on labels ``y`` and risks ``p`` (training patients)."""
    if spec.threshold == "incidence":
        return incidence_threshold(p, float(y.mean()))
    if spec.threshold == "youden":
        return youden_threshold(y, p)
    if spec.threshold == "sensitivity":
        return threshold_at_sensitivity(y, p, spec.sensitivity)
    return threshold_at_specificity(y, p, spec.specificity)


class _Run:
    """State of one evaluation: the data, the spec, what was written and the notes."""

    def __init__(self, df: pd.DataFrame, out: Path, spec: EvaluationSpec, train_split: str, val_split: str,
                 covariates: pd.DataFrame | None, title: str) -> None:
        self.df, self.out, self.spec = df, out, spec
        self.train_split, self.val_split = train_split, val_split
        self.cov = covariates
        self.title = title
        self.splits = ordered_splits(df["split"])
        self.targets = ordered_targets(df["target"])
        self.tables: dict[str, pd.DataFrame] = {}
        self.figures: dict[str, list[tuple[str, Path]]] = {}
        self.notes: dict[str, list[str]] = {}
        self.thresholds: dict[str, dict[str, Any]] = {}

    # -------------------------------------------------------------------------------- helpers
    def note(self, section: str, msg: str) -> None:
        log.info("evaluate: %s", msg)
        self.notes.setdefault(section, []).append(msg)

    def rows(self, split: str, target: str, known: bool = True) -> pd.DataFrame:
        d = self.df[(self.df["split"] == split) & (self.df["target"] == target)]
        return d[d["y_true"].notna()] if known else d

    def figure(self, section: str, caption: str, name: str, make: Any) -> None:
        if not self.spec.figures:
            return
        from riskfm.plots.style import save_figure

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fig = make()
        except ValueError as exc:
            self.note(section, f"figure {name} skipped: {exc}")
            return
        self.figures.setdefault(section, []).append((caption, save_figure(fig, self.out / "figures" / name)))

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
            ba = bland_altman(g["reference"].to_numpy(float), g["predicted"].to_numpy(float),
                              confidence=self.spec.confidence)
            cell = ba.to_dict()
            rows.append({"split": split, "score": name, **cell})
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
                y, p = d["y_true"].to_numpy(float), d["y_prob"].to_numpy(float)
                if _both(y):
                    ap = average_precision(y, p, n_boot=s.n_boot, seed=s.seed, confidence=s.confidence)
                    cell["auprc"], cell["auprc_ci"] = ap.value, _ci(ap)
                    cell["auprc_chance"] = float(y.mean())
                rows.append({"split": split, "target": target, "n": cell["n"], "n_pos": cell["n_pos"],
                             "auroc": cell["auroc"], "auroc_low": cell["auroc_ci"][0],
                             "auroc_high": cell["auroc_ci"][1], "auprc": cell.get("auprc"),
                             "auprc_low": (cell.get("auprc_ci") or [None, None])[0],
                             "auprc_high": (cell.get("auprc_ci") or [None, None])[1]})
        self.tables["discrimination"] = pd.DataFrame(rows).astype({"auroc": float, "auprc": float})
        # Internal vs external side by side: one row per target, one AUROC [CI] column per split.
        wide = {}
        for r in rows:
            txt = ("n/a" if r["auroc"] is None else
                   f"{r['auroc']:.3f} [{r['auroc_low']:.3f}, {r['auroc_high']:.3f}]" if r["auroc_low"] is not None
                   else f"{r['auroc']:.3f}")
            wide.setdefault(r["target"], {"target": r["target"]})[f"{r['split']} (n={r['n']})"] = txt
        self.tables["validation"] = pd.DataFrame(list(wide.values()))

        from riskfm.plots.forest import plot_forest
        from riskfm.plots.roc import plot_roc
        from riskfm.plots.style import target_label

        for split in self.splits:
            d = self.df[(self.df["split"] == split) & self.df["y_true"].notna()]
            ok = [t for t in self.targets if _both(d.loc[d["target"] == t, "y_true"].to_numpy(float))]
            if not ok:
                self.note("Discrimination", f"split {split!r}: no target with both classes; no ROC figure")
                continue
            self.figure("Discrimination", f"ROC curves, {split} split (shaded: {100 * s.confidence:g}% "
                        "pointwise bootstrap band; legend: AUROC with its interval)", f"roc_{_safe(split)}.png",
                        lambda d=d, ok=ok, split=split: plot_roc(
                            d[d["target"].isin(ok)], split=split, metrics=metrics.get(split), band=True,
                            seed=s.seed, title=f"ROC \u2014 {split}"))
        forest = pd.DataFrame([{"attribute": target_label(r["target"]), "level": r["split"], "metric": "auroc",
                                "n": r["n"], "n_pos": r["n_pos"], "value": r["auroc"],
                                "low": r["auroc_low"], "high": r["auroc_high"]}
                               for r in rows if r["auroc"] is not None]).astype(
            {"value": float, "low": float, "high": float}) if any(r["auroc"] is not None for r in rows) else None
        if forest is not None and len(self.splits) > 1:
            self.figure("Discrimination", "AUROC per target and split: internal vs external validation",
                        "validation_auroc.png",
                        lambda: plot_forest(forest, reference=0.5, title="AUROC by split"))

    def choose_thresholds(self, metrics: dict) -> None:
        s, rows, levels = self.spec, [], []
        for target in self.targets:
            ref = self.rows(self.train_split, target)
            chosen_on = self.train_split
            if not _both(ref["y_true"].to_numpy(float)):
                self.note("Thresholds", f"target {target!r}: split {self.train_split!r} missing or single-class; "
                          "no threshold chosen (thresholds are never chosen on evaluation splits)")
                continue
            y, p = ref["y_true"].to_numpy(float), ref["y_prob"].to_numpy(float)
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
                yy, pp = d["y_true"].to_numpy(float), d["y_prob"].to_numpy(float)
                if not _both(yy):
                    continue
                tm = threshold_metrics(yy, pp, t, confidence=s.confidence, seed=s.seed)
                metrics[split][target]["threshold"] = {"method": s.threshold, "chosen_on": chosen_on, **tm.to_dict()}
                rows.append({"split": split, "target": target, "method": s.threshold, **tm.to_dict()})
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
            self.tables["thresholds"] = pd.DataFrame(rows).drop(columns=[c for c in pd.DataFrame(rows).columns
                                                                        if c.endswith("_ci")])
        if levels:
            self.tables["risk_levels"] = pd.DataFrame(levels)

    def calibration(self, metrics: dict) -> None:
        s, bins, recal = self.spec, [], []
        from riskfm.plots.style import target_label

        for split in self.splits:
            for target in self.targets:
                d = self.rows(split, target)
                y, p = d["y_true"].to_numpy(float), d["y_prob"].to_numpy(float)
                if not _both(y):
                    continue
                try:
                    cal = calibration(y, p, n_bins=s.calibration_bins, strategy=s.calibration_strategy,
                                      confidence=s.confidence)
                except ValueError as exc:
                    self.note("Calibration", f"{split}/{target}: calibration skipped: {exc}")
                    continue
                metrics[split][target].update(cal.to_dict())
                bins.append(cal.table.assign(split=split, target=target))
                if split != self.train_split:
                    self.figure("Calibration", f"Reliability diagram, {target_label(target)}, {split} "
                                f"({s.calibration_strategy} bins, Wilson {100 * s.confidence:g}% intervals); "
                                f"slope {cal.slope.value:.2f}, intercept {cal.intercept.value:.2f}, "
                                f"ECE {cal.ece:.3f}",
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
            if not _both(v["y_true"].to_numpy(float)):
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
                    y = d["y_true"].to_numpy(float)
                    if not _both(y):
                        continue
                    q = np.clip(rc.transform(d["y_prob"].to_numpy(float)), 0.0, 1.0)
                    try:
                        after = calibration(y, q, n_bins=s.calibration_bins, strategy=s.calibration_strategy)
                    except ValueError as exc:
                        self.note("Calibration", f"{split}/{target}: {method}: {exc}")
                        continue
                    cell = metrics[split][target].setdefault("recalibration", {})
                    cell[method] = {"fitted_on": self.val_split, "brier": after.brier, "ece": after.ece,
                                    "calibration_intercept": after.intercept.value,
                                    "calibration_slope": after.slope.value}
                    before = metrics[split][target]
                    recal.append({"split": split, "target": target, "method": method, "fitted_on": self.val_split,
                                  "brier_before": before.get("brier"), "brier_after": after.brier,
                                  "ece_before": before.get("ece"), "ece_after": after.ece,
                                  "slope_before": before.get("calibration_slope"), "slope_after": after.slope.value,
                                  "intercept_before": before.get("calibration_intercept"),
                                  "intercept_after": after.intercept.value})
        if recal:
            self.tables["recalibration"] = pd.DataFrame(recal)

    def survival(self, metrics: dict) -> None:
        if not {"time_to_event_days", "event"} <= set(self.df.columns):
            self.note("Time to event", "predictions have no time_to_event_days/event columns; section skipped")
            return
        from riskfm.plots.incidence import plot_cumulative_incidence
        from riskfm.plots.style import target_label

        rows, contrasts = [], []
        for target in [t for t in self.spec.survival_targets if t in self.targets]:
            def fu(split: str, target: str = target) -> pd.DataFrame:
                d = self.rows(split, target, known=False)
                return d[d["time_to_event_days"].notna() & d["event"].notna()]

            tr = fu(self.train_split)
            train = None
            if len(tr) and tr["event"].sum() > 0:
                train = (tr["time_to_event_days"].to_numpy(float), tr["event"].to_numpy(float),
                         tr["y_prob"].to_numpy(float))
            else:
                self.note("Time to event", f"{target}: no follow-up with events in split {self.train_split!r}; "
                          "Uno's C uses each split's own censoring, no integrated Brier score")
            thr = self.thresholds.get(target)
            for split in self.splits:
                d = fu(split)
                if len(d) == 0 or d["event"].sum() == 0:
                    continue
                t, e, r = (d["time_to_event_days"].to_numpy(float), d["event"].to_numpy(float),
                           d["y_prob"].to_numpy(float))
                try:
                    sm = survival_metrics(t, e, r, train=train if split != self.train_split else train)
                except ValueError as exc:
                    self.note("Time to event", f"{split}/{target}: survival metrics skipped: {exc}")
                    sm = None
                if sm is not None:
                    metrics[split][target]["survival"] = sm.to_dict()
                    rows.append({"split": split, "target": target, "n": sm.n, "n_events": sm.n_events,
                                 "harrell_c": sm.harrell_c, "uno_c": sm.uno_c, "mean_time_auc": sm.mean_auc_t,
                                 "integrated_brier": sm.integrated_brier})
                if thr is None:
                    continue
                cuts = thr.get("risk_levels") or thr["value"]
                groups = assign_risk_groups(r, cuts)
                if len(set(groups)) >= 2:
                    c = group_contrasts(t, e, groups)
                    contrasts.append(c.assign(split=split, target=target))
                    metrics[split][target]["risk_group_contrasts"] = c.to_dict(orient="records")
                if split == self.train_split:
                    continue
                how = ("three levels: sensitivity/specificity cut-offs " + ", ".join(f"{x:.3f}" for x in cuts)
                       if isinstance(cuts, list) else f"{thr['method']} threshold {cuts:.3f}")
                self.figure("Time to event", f"Kaplan\u2013Meier cumulative incidence of {target_label(target)} "
                            f"by risk group, {split} ({how}, chosen on {thr['chosen_on']}); numbers at risk below",
                            f"cumulative_incidence_{_safe(split)}_{_safe(target)}.png",
                            lambda t=t, e=e, groups=groups, split=split, target=target: plot_cumulative_incidence(
                                t, e, groups, title=f"{target_label(target)} \u2014 {split}"))
        if rows:
            self.tables["survival"] = pd.DataFrame(rows)
        if contrasts:
            c = pd.concat(contrasts, ignore_index=True)
            self.tables["risk_group_contrasts"] = c[["split", "target", *[x for x in c.columns
                                                                         if x not in ("split", "target")]]]

    def decision_curves(self, metrics: dict) -> None:
        from riskfm.plots.decision_curve import plot_decision_curve
        from riskfm.plots.style import target_label

        a, b, step = self.spec.decision_thresholds
        grid = np.round(np.arange(a, b + step / 2, step), 10)
        tables = []
        for split in self.splits:
            curves = {}
            for target in self.targets:
                d = self.rows(split, target)
                y = d["y_true"].to_numpy(float)
                if not _both(y):
                    continue
                dc = decision_curve(y, d["y_prob"].to_numpy(float), grid)
                curves[target] = dc
                tables.append(dc.table.assign(split=split, target=target))
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
            self.tables["decision_curves"] = t[["split", "target", "threshold", "net_benefit", "treat_all", "treat_none"]]

    def subgroups(self, metrics: dict) -> None:
        s = self.spec
        attrs: dict[str, pd.Series] = {}
        base = self.df[["patient_id"]].drop_duplicates()
        if self.cov is not None:
            cols = s.subgroups if s.subgroups is not None else [c for c in self.cov.columns if c != "patient_id"]
            missing = [c for c in cols if c not in self.cov.columns]
            if missing:
                raise ValueError(f"evaluation spec: subgroups {missing} are not covariate columns "
                                 f"(available: {[c for c in self.cov.columns if c != 'patient_id']})")
            merged = base.merge(self.cov, on="patient_id", how="left").set_index("patient_id")
            for c in cols:
                x = merged[c]
                numeric = pd.api.types.is_numeric_dtype(x) and not pd.api.types.is_bool_dtype(x)
                if c in s.subgroup_bins:
                    x = bin_numeric(x, s.subgroup_bins[c], name=c)
                elif numeric and x.nunique() > 6:
                    x = bin_numeric(x, None, name=c)  # quartiles, as for continuous attributes in the CAC paper
                attrs[c] = pd.Series(x.to_numpy(), index=merged.index, dtype=x.dtype)
        elif s.subgroups:
            self.note("Subgroups and fairness", "subgroups requested but no covariates given")
        if "site" in self.df.columns:
            site = self.df.drop_duplicates("patient_id").set_index("patient_id")["site"]
            if site.nunique() > 1:
                attrs.setdefault("site", site)
        if not attrs:
            self.note("Subgroups and fairness", "no subgroup attributes (pass covariates=, or a site column)")
            return
        tables, gaps = [], []
        primary = s.primary_target or ("mace_30d" if "mace_30d" in self.targets else self.targets[0])
        from riskfm.plots.forest import plot_forest
        from riskfm.plots.style import target_label

        for split in self.splits:
            if split == self.train_split:
                continue
            for target in self.targets:
                d = self.rows(split, target)
                y = d["y_true"].to_numpy(float)
                if not _both(y):
                    continue
                per_target = []
                for name, series in attrs.items():
                    g = series.reindex(d["patient_id"]).reset_index(drop=True)
                    if g.nunique() < 2:
                        continue
                    thr = self.thresholds.get(target, {}).get("value")
                    try:
                        t = subgroup_metrics(y, d["y_prob"].to_numpy(float), g, s.subgroup_metric, attribute=name,
                                             n_boot=s.n_boot, seed=s.seed, confidence=s.confidence, threshold=thr)
                    except ValueError as exc:
                        self.note("Subgroups and fairness", f"{split}/{target}/{name}: {exc}")
                        continue
                    gp = fairness_gaps(t)
                    metrics[split][target].setdefault("fairness_gaps", {})[name] = {
                        r["level"]: {"value": r["value"], "gap": r["gap"], "kind": r["kind"]} for _, r in gp.iterrows()}
                    per_target.append(t)
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
                                "dashed: all patients)", f"forest_{_safe(split)}_{_safe(target)}.png",
                                lambda ft=ft, split=split, target=target: plot_forest(
                                    ft, title=f"{target_label(target)} \u2014 {split}"))
        if tables:
            t = pd.concat(tables, ignore_index=True)
            self.tables["subgroups"] = t[["split", "target", *[c for c in t.columns if c not in ("split", "target")]]]
        if gaps:
            g = pd.concat(gaps, ignore_index=True)
            self.tables["fairness_gaps"] = g[["split", "target", *[c for c in g.columns if c not in ("split", "target")]]]


def evaluate(
    predictions: pd.DataFrame | str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    spec: EvaluationSpec | dict | str | os.PathLike | None = None,
    train_split: str = "train",
    val_split: str = "val",
    covariates: pd.DataFrame | str | os.PathLike | None = None,
    scores: pd.DataFrame | None = None,
    title: str = "riskfm evaluation",
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
    title : str
        Heading of report.html.

    Returns
    -------
    dict
        The metrics written to ``metrics.json``: ``{split: {target: cell}}`` where each cell has
        the foundation keys (``auroc``, ``auroc_ci``, ``n``, ``n_pos``, ``n_excluded_unknown``,
        ``prevalence``, ``ci_method``, ``confidence``) plus, where defined, ``auprc``/``auprc_ci``,
        the calibration statistics, ``threshold``, ``risk_levels``, ``recalibration``,
        ``survival``, ``risk_group_contrasts`` and ``fairness_gaps``.
    """
    spec = EvaluationSpec.from_any(spec)
    source = str(predictions) if not isinstance(predictions, pd.DataFrame) else "<predictions DataFrame>"
    df = (read_predictions(predictions) if not isinstance(predictions, pd.DataFrame)
          else validate_predictions(predictions, source=source))
    cov = read_covariates(covariates) if covariates is not None else None
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    run = _Run(df, out, spec, train_split, val_split, cov, title)
    metrics = metrics_from_predictions(df, ci=spec.ci, n_boot=spec.n_boot, seed=spec.seed,
                                       confidence=spec.confidence)
    run.discrimination(metrics)
    run.choose_thresholds(metrics)
    run.calibration(metrics)
    run.survival(metrics)
    run.decision_curves(metrics)
    run.subgroups(metrics)
    if scores is not None:
        missing = {"patient_id", "split", "score", "reference", "predicted"} - set(scores.columns)
        if missing:
            raise ValueError(f"scores: missing column(s) {sorted(missing)}")
    run.agreement(scores, metrics)
    write_metrics(metrics, out / "metrics.json")
    (out / "tables").mkdir(exist_ok=True)
    for name, table in run.tables.items():
        table.to_csv(out / "tables" / f"{name}.csv", index=False)
    if spec.report:
        from riskfm.evaluate.report_sections import build_sections
        from riskfm.report.html import write_html_report

        write_html_report(build_sections(run, metrics), out / "report.html", title=title, subtitle=source)
    return metrics
