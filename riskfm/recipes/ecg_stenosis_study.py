"""Seed 002 on a user's cohort: fine-tune an ECG encoder for severe stenosis per artery, then the paper's analysis.

``riskfm study ecg-stenosis CONFIG`` / :func:`ecg_stenosis`. CONFIG is a ``riskfm train`` run
configuration with an optional ``study:`` section (:class:`ECGStenosisOptions`). The study

1. trains ONE run of the configured ECG encoder (an ECGFounder checkpoint when the config names
   ``encoders.ecg: {name: ecgfounder-12lead, checkpoint: ...}``, else the config's choice) for the
   four arteries (targets ``stenosis``: RCA, LM, LAD, LCX; modality ``ecg`` only) with
   :func:`riskfm.train.run.run_training`, in ``<out>/run/``. A finished run of the same
   configuration (same fingerprint: config, manifest, files; and the same epochs) is reused, not
   retrained; the ``study:`` section is not part of the run, so changing report options never
   retrains;
2. evaluates the internal test split and then each external site (``split.external_sites``, in
   that order; the paper's internal then external validation) and writes ``<out>/report.html``
   with CSV tables in ``<out>/tables/`` and PNG figures in ``<out>/figures/``:

   a. per-artery AUROC with stratified-bootstrap 95% CIs beside the paper's published values;
   b. the same in a clinically normal-ECG subset: a manifest column (``study.normal_ecg_column``)
      or riskfm's measured rule (:mod:`riskfm.ecg.measurements`), unmeasurable ECGs counted;
   c. subgroup AUROCs by age band, sex and acquisition time (``study.date_column``, binned by
      calendar year or date quantiles) with forest plots and Cochran's Q across the levels;
   d. risk groups from vessel-specific incidence thresholds (the top fraction equal to the
      artery's training prevalence is high risk), observed stenosis rate per group, calibration
      curves, and cumulative event curves with numbers at risk (``time_to_event_days``, ``event``);
   e. median beats of high- vs low-risk patients per lead with the difference and its pointwise
      95% CI, and the mean ECG attribution of high-risk patients in median-beat space.

A section (or a part of one) whose data is absent -- no external site, no date column, no
follow-up columns, too few events -- is skipped with the reason written in the report and in
``res.metrics["skipped"]``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import yaml
from pydantic import Field

from riskfm.arteries import STENOSIS_COLUMNS
from riskfm.recipes import ecg_stenosis_analysis as an
from riskfm.recipes.result import RecipeResult
from riskfm.recipes.study_config import StudyConfig, StudyOptions, load_study_config
from riskfm.train.config import ConfigError, RunConfig

log = logging.getLogger(__name__)

__all__ = ["ECGStenosisOptions", "NormalRuleOptions", "ecg_stenosis"]


class NormalRuleOptions(StudyOptions):
    """``study.normal_ecg_rule``: limits of riskfm's normal-ECG rule (:class:`riskfm.ecg.measurements.NormalECGRule`)."""

    heart_rate_bpm: tuple[float, float] = (50.0, 100.0)
    max_rr_cv: float = Field(0.15, gt=0)
    max_qrs_ms: float = Field(120.0, gt=0)
    max_st_deviation_mv: float = Field(0.1, gt=0)
    max_st_elevation_v2_v3_mv: float = Field(0.2, gt=0)


class ECGStenosisOptions(StudyOptions):
    """The ``study:`` section of ``riskfm study ecg-stenosis`` (every key optional).

    Attributes
    ----------
    normal_ecg_column : str or None
        Manifest column marking a clinically normal ECG (yes/no, 1/0, true/false); default: riskfm's
        measured rule (``normal_ecg_rule``).
    normal_ecg_rule : NormalRuleOptions
        Limits of the measured rule (heart rate, R-R regularity, QRS, ST deviation).
    date_column : str or None
        Manifest column with the ECG acquisition date; without it the acquisition-time strata are
        skipped (with the reason).
    date_bins : {"year", "quantile"}
        Acquisition-time strata: calendar years, or ``date_quantiles`` equal-count date bins.
    date_quantiles : int
        Bins of ``date_bins: quantile``.
    age_column, sex_column : str
        Manifest columns of the demographic strata (skipped with the reason when absent).
    age_bins : list of float
        Inner cut points of the age bands (years).
    n_boot : int or None
        Bootstrap resamples of every interval (default: the run's ``evaluate.n_boot``).
    attribution_method : str
        ECG attribution method (:data:`riskfm.explain.ecg.ECG_METHODS`).
    attribution_patients : int
        High-risk patients per set and artery whose attributions are averaged (a seeded sample; 0:
        no attributions).
    n_steps : int
        Integrated Gradients steps.
    dpi : int
        Resolution of the PNG figures.
    figures : bool
        Draw the figures (the slow part: about a second each); False writes tables and the report only.
    """

    normal_ecg_column: str | None = None
    normal_ecg_rule: NormalRuleOptions = Field(default_factory=NormalRuleOptions)
    date_column: str | None = None
    date_bins: Literal["year", "quantile"] = "year"
    date_quantiles: int = Field(4, ge=2, le=12)
    age_column: str = "age"
    sex_column: str = "sex"
    age_bins: list[float] = Field(default_factory=lambda: [50.0, 65.0])
    n_boot: int | None = Field(None, ge=50)
    attribution_method: Literal["integrated_gradients", "gradient_shap", "occlusion", "saliency", "gradcam"] = \
        "integrated_gradients"
    attribution_patients: int = Field(16, ge=0)
    n_steps: int = Field(32, ge=2)
    dpi: int = Field(150, ge=50, le=600)
    figures: bool = True


# ----------------------------------------------------------------------------------------- the run


def study_run_config(study: StudyConfig) -> tuple[RunConfig, list[str]]:
    """Return the training run of the study: the config's run, ECG only, the four arteries, out ``<out>/run``.

    Returns
    -------
    (RunConfig, notes)
        The notes say what the study changed in the given run configuration.
    """
    from riskfm.train.config import parse_config

    data = study.run.model_dump(mode="json")
    notes = []
    if data["modalities"] != ["ecg"]:
        notes.append(f"modalities {data['modalities']} -> ['ecg']: the study trains on the ECG alone")
    if data["targets"] != ["stenosis"]:
        notes.append(f"targets {data['targets']} -> ['stenosis'] (RCA, LM, LAD, LCX)")
    data["modalities"], data["targets"] = ["ecg"], ["stenosis"]
    data["encoders"] = {"ecg": data["encoders"]["ecg"]}
    data["out"] = str(Path(data["out"]) / "run")
    return parse_config(data, study.source), notes


def _finished_run(cfg: RunConfig) -> Any:
    """Return the cohort of ``cfg``'s run folder when it holds this very run, finished; else None.

    Raises
    ------
    RunFolderError
        The folder holds another run (a different fingerprint).
    """
    from riskfm.train.run import load_cohort
    from riskfm.train.run_folder import LOCK, check_fingerprint, run_fingerprint

    out = Path(cfg.out)
    needed = [out / n for n in ("model.pt", "predictions.csv", "config.yaml")]
    if not all(p.is_file() for p in needed) or (out / LOCK).exists():
        return None
    cohort = load_cohort(cfg)
    files = [p for col in ("ecg_path", "ct_path") for p in cohort.df[col]]
    if not check_fingerprint(out, run_fingerprint(cfg.model_dump(mode="json"), cfg.manifest, files)):
        return None
    # The fingerprint leaves out what a resume may change (epochs, patience): those must match too.
    if yaml.safe_load((out / "config.yaml").read_text()) != cfg.model_dump(mode="json"):
        return None
    return cohort


def train_or_reuse(cfg: RunConfig) -> tuple[pd.DataFrame, Any, str]:
    """Return the run's predictions, its cohort and ``"reused"`` / ``"trained"``."""
    from riskfm.evaluate.run_metrics import read_predictions
    from riskfm.train.run import run_training

    cohort = _finished_run(cfg)
    if cohort is not None:
        log.info("reusing the finished run in %s", cfg.out)
        return read_predictions(Path(cfg.out) / "predictions.csv"), cohort, "reused"
    result = run_training(cfg)
    return result.predictions, result.cohort, "trained"


# ----------------------------------------------------------------------------------------- inputs

#: The files a study wrote, relative to its folder: removed before the next study writes there, so a
#: figure or table of an earlier study (other options, other data) is never left beside the new report.
OUTPUTS_LIST = "study_outputs.json"


def _remove_previous_outputs(out: Path) -> None:
    listed = out / OUTPUTS_LIST
    if not listed.is_file():
        return
    try:
        names = json.loads(listed.read_text())
    except ValueError:
        names = []
    for name in names:
        path = (out / str(name)).resolve()
        # Only files inside the study folder (never the run, never outside): what the study wrote.
        if out.resolve() in path.parents and (out / "run").resolve() not in path.parents and path.is_file():
            path.unlink()
    listed.unlink()



def _check_columns(table: pd.DataFrame, opts: ECGStenosisOptions, manifest: str) -> None:
    for key in ("normal_ecg_column", "date_column"):
        col = getattr(opts, key)
        if col is not None and col not in table.columns:
            raise ConfigError(f"study.{key}: column {col!r} is not in the manifest {manifest} "
                              f"(its columns: {', '.join(map(str, table.columns))})")


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_")


def evaluation_sets(preds: pd.DataFrame, cfg: RunConfig) -> tuple[dict[str, pd.DataFrame], dict[str, str], list[str]]:
    """Return the internal test split, then each external site: name -> predictions, name -> paper column, notes."""
    sets: dict[str, pd.DataFrame] = {}
    reference: dict[str, str] = {}
    notes: list[str] = []
    stenosis = preds[preds["target"].isin(STENOSIS_COLUMNS)]
    sets["internal test"] = stenosis[stenosis["split"] == "test"]
    reference["internal test"] = "internal"
    external = stenosis[stenosis["split"] == "external"]
    if not cfg.split.external_sites:
        notes.append("no external validation: the config names no external site (split.external_sites)")
    for site in cfg.split.external_sites:
        d = external[external["site"].astype(str) == str(site)]
        if d.empty:
            notes.append(f"external site {site!r}: no patients in the run's predictions; skipped")
            continue
        sets[f"external {site}"] = d
        reference[f"external {site}"] = "external"
    return sets, reference, notes


class _Writer:
    """Where the study's tables and figures go, and what it has written."""

    def __init__(self, out: Path, dpi: int, draw: bool = True) -> None:
        self.out, self.dpi, self.draw = out, dpi, draw
        self.tables: dict[str, pd.DataFrame] = {}
        self.figures: dict[str, Path] = {}
        self.files: dict[str, Path] = {}

    def table(self, name: str, df: pd.DataFrame) -> pd.DataFrame:
        path = self.out / "tables" / f"{name}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        df.to_csv(path, index=False)
        self.tables[name], self.files[f"table_{name}"] = df, path
        return df

    def figure(self, figs: list, caption: str, name: str, make: Any, *args: Any, **kwargs: Any) -> None:
        """Draw ``make(*args, **kwargs)`` to ``figures/<name>.png``, listed under ``caption`` (not with figures off)."""
        if not self.draw:
            return
        from riskfm.plots.style import save_figure

        path = save_figure(make(*args, **kwargs), self.out / "figures" / f"{name}.png", dpi=self.dpi)
        self.figures[name] = path
        figs.append((caption, path))


# ----------------------------------------------------------------------------------------- sections


def _normal_flags(opts: ECGStenosisOptions, table: pd.DataFrame, ecg_paths: pd.Series, manifest: str,
                  progress: bool) -> tuple[pd.Series, pd.DataFrame, str]:
    """Normal-ECG flag per patient (NA: unknown / unmeasurable), the per-patient table, and how it was decided."""
    if opts.normal_ecg_column is not None:
        col = opts.normal_ecg_column
        raw = table.set_index("patient_id")[col]
        flags = an.parse_flags(raw, col, manifest).reindex(ecg_paths.index)
        per = pd.DataFrame({"patient_id": flags.index, "normal": flags.to_numpy(),
                            "reason": np.where(flags.isna(), f"no value in {col!r}", "")})
        return flags, per, f"the manifest's column {col!r}"
    from riskfm.ecg.beats import BeatDetectionError
    from riskfm.ecg.measurements import NormalECGRule, measure_ecg_file
    from riskfm.progress import progress as bar

    rule = NormalECGRule(**opts.normal_ecg_rule.model_dump())
    rows = []
    for pid, path in bar(list(ecg_paths.items()), enabled=progress, desc="measuring ECGs (normal-ECG rule)",
                         unit="ECG"):
        row: dict[str, Any] = {"patient_id": pid, "normal": pd.NA, "heart_rate_bpm": math.nan, "rr_cv": math.nan,
                               "qrs_ms": math.nan, "max_abs_st_mv": math.nan, "reason": ""}
        if not isinstance(path, str) or not path:
            row["reason"] = "unmeasurable: no ECG"
        else:
            try:
                m = measure_ecg_file(path)
            except (BeatDetectionError, ValueError, OSError) as exc:
                row["reason"] = f"unmeasurable: {exc}"
            else:
                why = rule.reasons(m)
                row.update(normal=not why, heart_rate_bpm=m.heart_rate_bpm, rr_cv=m.rr_cv, qrs_ms=m.qrs_ms,
                           max_abs_st_mv=m.max_abs_st_mv, reason="; ".join(why))
        rows.append(row)
    per = pd.DataFrame(rows)
    flags = pd.Series(per["normal"].to_numpy(), index=per["patient_id"], dtype="boolean")
    r = opts.normal_ecg_rule
    how = (f"riskfm's measured rule: heart rate {r.heart_rate_bpm[0]:g}-{r.heart_rate_bpm[1]:g} bpm, R-R CV <= "
           f"{r.max_rr_cv:g}, QRS < {r.max_qrs_ms:g} ms, |ST| at the J point <= {r.max_st_deviation_mv:g} mV "
           f"(elevation in V2-V3 <= {r.max_st_elevation_v2_v3_mv:g} mV)")
    return flags, per, how


def _attributes(opts: ECGStenosisOptions, table: pd.DataFrame, manifest: str,
                skipped: dict[str, str]) -> tuple[dict[str, pd.Series], list[str]]:
    """Subgroup attributes by patient id: age band, sex, acquisition time (what the manifest has)."""
    t = table.set_index(table["patient_id"].astype(str))
    attrs: dict[str, pd.Series] = {}
    notes: list[str] = []
    if opts.age_column in t.columns and pd.to_numeric(t[opts.age_column], errors="coerce").notna().any():
        age = pd.to_numeric(t[opts.age_column], errors="coerce")
        attrs["age"] = an.age_levels(age, opts.age_bins)
        bad = int((age.isna() & t[opts.age_column].notna()).sum())
        if bad or age.isna().any():
            notes.append(f"{opts.age_column}: {bad} value(s) not numbers and {int(t[opts.age_column].isna().sum())} "
                         "missing: those patients are in no age band")
    else:
        skipped["subgroups: age"] = f"the manifest has no numeric column {opts.age_column!r}"
    if opts.sex_column in t.columns and t[opts.sex_column].notna().any():
        attrs["sex"] = an.text_levels(t[opts.sex_column])
    else:
        skipped["subgroups: sex"] = f"the manifest has no column {opts.sex_column!r}"
    if opts.date_column is None:
        skipped["subgroups: acquisition time"] = "no date column: set study.date_column to the ECG acquisition date"
    else:
        levels, date_notes = an.date_levels(t[opts.date_column], opts.date_column, manifest, bins=opts.date_bins,
                                            n_quantiles=opts.date_quantiles)
        attrs["acquisition time"] = levels
        notes += date_notes
    return attrs, notes


def _median_beats(paths: pd.Series, progress: bool) -> tuple[dict[str, np.ndarray], list[dict[str, str]]]:
    from riskfm.explain.waveforms import DISPLAY_SPEC, cohort_median_beats

    have = paths[paths.map(lambda p: isinstance(p, str) and bool(p))]
    beats, kept, failures = cohort_median_beats(list(have.to_numpy()), DISPLAY_SPEC, progress=progress)
    ids = list(have.index)
    return {ids[k]: beats[i] for i, k in enumerate(kept)}, failures


def _attribution(model: Any, cfg: RunConfig, cohort: Any, patients: list[str], target: str,
                 opts: ECGStenosisOptions) -> tuple[list[np.ndarray], list[np.ndarray], Any, list[str]]:
    """Median beats and attributions (median-beat space) of ``patients`` for ``target``; problems listed."""
    from riskfm.data.dataset import RiskDataset
    from riskfm.data.sample import collate_samples
    from riskfm.ecg.beats import BeatDetectionError
    from riskfm.explain.api import explain
    from riskfm.train.run import prepare_for

    sub = cohort.subset(patients)
    prepared = prepare_for(sub, dict(model.encoders.items()), cfg=cfg)
    ds = RiskDataset(sub, prepared, clinical=None)
    problems = [f"{f['patient_id']}: {f['reason']}" for f in prepared.failures]
    if len(ds) == 0:
        return [], [], None, problems
    batch = collate_samples([ds[i] for i in range(len(ds))])
    kw = {"n_steps": opts.n_steps} if opts.attribution_method == "integrated_gradients" else {}
    att = explain(model, batch, "ecg", opts.attribution_method, target, **kw)
    beats, maps, space = [], [], None
    for k in range(len(att.patient_ids)):
        if not batch["ecg_present"][k] or not np.isfinite(att.values[k]).all():
            continue
        try:
            space = att.to_median_beat(k)
        except BeatDetectionError as exc:
            problems.append(f"{att.patient_ids[k]}: {exc}")
            continue
        beats.append(space.beat)
        maps.append(space.attribution)
    return beats, maps, (att, space), problems


# ----------------------------------------------------------------------------------------- the study


def ecg_stenosis(config: str | os.PathLike | dict | RunConfig, overrides: dict[str, Any] | None = None,
                 *, progress: bool = True) -> RecipeResult:
    """Run seed 002's study on a run configuration (see the module docstring).

    Parameters
    ----------
    config : path, dict or RunConfig
        A ``riskfm train`` configuration with an optional ``study:`` section
        (:class:`ECGStenosisOptions`). ``out`` is the study's folder; the training run goes to
        ``<out>/run``.
    overrides : dict, optional
        Dotted keys set before validation (``{"train.epochs": 2, "study.date_column": "ecg_date"}``).
    progress : bool
        Bars over the ECGs measured and read on stderr (silent under ``riskfm --quiet``).

    Returns
    -------
    RecipeResult
        ``name`` ``"ecg_stenosis"``; ``tables``: ``summary`` (one row per evaluation set x artery:
        ``split, artery, target, n, n_pos, auroc, ci_low, ci_high, paper_auroc, not_estimable``),
        ``paper_layout``, ``normal_ecg``, ``normal_ecg_patients``, ``subgroups``,
        ``heterogeneity``, ``risk_thresholds``, ``risk_groups``, ``calibration``,
        ``cumulative_incidence``, ``at_risk``, ``waveforms``, ``attribution_leads`` and
        ``median_beats_<set>_<artery>`` (per lead x offset: group means, difference, CIs); ``files``:
        ``report`` (the HTML), ``run`` (the run folder), ``predictions`` and each table's CSV;
        ``figures``: the PNGs by name; ``metrics``: ``run`` (``"trained"`` / ``"reused"``),
        ``encoder``, ``sets``, ``normal_ecg`` counts, ``skipped`` (section -> reason), ``notes``.

    Raises
    ------
    ConfigError
        A wrong key or value in the config or its ``study:`` section, or a column it names that
        the manifest lacks.
    """
    from riskfm.data.manifest import read_manifest_table
    from riskfm.progress import is_quiet

    progress = progress and not is_quiet()
    study = load_study_config(config, overrides)
    opts = study.options(ECGStenosisOptions)
    cfg, notes = study_run_config(study)
    out = Path(study.run.out)
    n_boot = opts.n_boot or cfg.evaluate.n_boot
    seed, mins = cfg.split.seed, {"min_events": cfg.evaluate.min_events, "min_nonevents": cfg.evaluate.min_nonevents}
    table = read_manifest_table(cfg.manifest, cfg.data.na_values)
    table["patient_id"] = table["patient_id"].astype(str)
    _check_columns(table, opts, cfg.manifest)  # before training: a typo must not cost a run
    if opts.normal_ecg_column is not None:
        an.parse_flags(table[opts.normal_ecg_column], opts.normal_ecg_column, cfg.manifest)
    skipped: dict[str, str] = {}
    attrs, attr_notes = _attributes(opts, table, cfg.manifest, skipped)
    for n in notes:
        log.warning("study ecg-stenosis: %s", n)

    preds, cohort, how = train_or_reuse(cfg)
    preds = preds.assign(patient_id=preds["patient_id"].astype(str))
    sets, reference, set_notes = evaluation_sets(preds, cfg)
    for n in set_notes:
        skipped[n.split(":")[0]] = n
    _remove_previous_outputs(out)
    w = _Writer(out, opts.dpi, opts.figures)
    sections: list[Any] = []
    ecg_paths = cohort.df.assign(patient_id=cohort.df["patient_id"].astype(str)).set_index("patient_id")["ecg_path"]
    evaluated = sorted({p for d in sets.values() for p in d["patient_id"]})

    # a. per-artery AUROC beside the paper's values
    auroc = {name: an.auroc_rows(d, n_boot=n_boot, seed=seed, **mins) for name, d in sets.items()}
    summary = w.table("summary", an.summary_rows(auroc, reference))
    layout = w.table("paper_layout", an.paper_layout(auroc, reference))
    drawn = [] if opts.figures else ["figures not drawn (study.figures: false): tables only"]
    sections.append(_setup_section(study, cfg, how, notes + set_notes + drawn, cohort, sets))
    sections.append(_auroc_section(layout, summary, n_boot, mins))

    # b. the normal-ECG subset
    flags, per_patient, rule = _normal_flags(opts, table, ecg_paths.reindex(evaluated), cfg.manifest, progress)
    w.table("normal_ecg_patients", per_patient)
    normal_tables, counts = {}, {}
    for name, d in sets.items():
        f = flags.reindex(d["patient_id"].to_numpy())
        keep = f.fillna(False).to_numpy(bool)
        n_pat = d["patient_id"].nunique()
        ids = set(d["patient_id"])
        counts[name] = {"patients": n_pat, "normal": int(flags.reindex(list(ids)).fillna(False).sum()),
                        "abnormal": int((flags.reindex(list(ids)) == False).sum()),  # noqa: E712 - boolean NA
                        "unknown_or_unmeasurable": int(flags.reindex(list(ids)).isna().sum())}
        normal_tables[name] = an.auroc_rows(d[keep], n_boot=n_boot, seed=seed, **mins)
    normal = an.summary_rows(normal_tables, reference)
    normal = normal.merge(summary[["split", "target", "auroc"]].rename(columns={"auroc": "auroc_all_patients"}),
                          on=["split", "target"], how="left")
    w.table("normal_ecg", normal)
    sections.append(_normal_section(normal, counts, rule, per_patient))

    # c. subgroup stability
    sub_tables, het_tables, forest_figs = [], [], []
    if attrs:
        from riskfm.plots.forest import plot_forest

        for name, d in sets.items():
            levels, het = an.subgroup_rows(d, attrs, n_boot=n_boot, seed=seed, **mins)
            if levels.empty:
                continue
            sub_tables.append(levels.assign(split=name))
            het_tables.append(het.assign(split=name))
            w.figure(forest_figs, f"{name}: AUROC by subgroup, per artery", f"forest_{_slug(name)}",
                     plot_forest, an.forest_table(levels), title=f"AUROC by subgroup, {name}")
    else:
        skipped["subgroups"] = "no subgroup attribute in the manifest (age, sex, acquisition date)"
    subgroups = w.table("subgroups", pd.concat(sub_tables, ignore_index=True) if sub_tables else pd.DataFrame())
    heterogeneity = w.table("heterogeneity", pd.concat(het_tables, ignore_index=True) if het_tables
                            else pd.DataFrame())
    sections.append(_subgroup_section(subgroups, heterogeneity, forest_figs, attr_notes, skipped))

    # d. risk groups, calibration, cumulative events
    thresholds = w.table("risk_thresholds", an.risk_thresholds(preds[(preds["split"] == "train")
                                                                    & preds["target"].isin(STENOSIS_COLUMNS)]))
    risk_parts, calib_parts, inc_parts, risk_parts_at, risk_figs = [], [], [], [], []
    for name, d in sets.items():
        risk_parts.append(an.risk_group_rows(d, thresholds).assign(split=name))
        c_rows, i_rows, a_rows, figs = _calibration_and_events(d, thresholds, name, w, skipped)
        calib_parts += c_rows
        inc_parts += i_rows
        risk_parts_at += a_rows
        risk_figs += figs
    risk = w.table("risk_groups", pd.concat(risk_parts, ignore_index=True) if risk_parts else pd.DataFrame())
    calib = w.table("calibration", pd.concat(calib_parts, ignore_index=True) if calib_parts else pd.DataFrame())
    incidence = w.table("cumulative_incidence", pd.concat(inc_parts, ignore_index=True) if inc_parts
                        else pd.DataFrame())
    at_risk = w.table("at_risk", pd.concat(risk_parts_at, ignore_index=True) if risk_parts_at else pd.DataFrame())
    sections.append(_risk_section(thresholds, risk, calib, risk_figs, skipped))

    # e. waveforms and attributions
    wave, leads_tab, wave_figs, wave_problems = _waveforms(sets, thresholds, ecg_paths, cohort, cfg, opts, w,
                                                          progress, skipped)
    waveforms = w.table("waveforms", wave)
    attribution_leads = w.table("attribution_leads", leads_tab)
    sections.append(_waveform_section(waveforms, attribution_leads, wave_figs, wave_problems, opts, skipped))

    from riskfm.report.html import write_html_report

    report = write_html_report(sections, out / "report.html", title="riskfm study: ECG -> severe stenosis per artery",
                               subtitle=f"seed 002 (Xiao et al.) on {cfg.manifest}; run {cfg.out} ({how})")
    files = {"report": report, "run": Path(cfg.out), "predictions": Path(cfg.out) / "predictions.csv", **w.files}
    (out / OUTPUTS_LIST).write_text(json.dumps(sorted(str(p.relative_to(out)) for p in
                                                      [report, *w.files.values(), *w.figures.values()]), indent=1))
    metrics = {"run": how, "encoder": cfg.encoders["ecg"].name, "checkpoint": cfg.encoders["ecg"].checkpoint,
               "sets": list(sets), "n_boot": n_boot, "normal_ecg": {"rule": rule, "counts": counts},
               "skipped": skipped, "notes": notes + attr_notes}
    tables = dict(w.tables)
    tables.update(calibration=calib, cumulative_incidence=incidence, at_risk=at_risk)
    return RecipeResult("ecg_stenosis", metrics=metrics, tables=tables, figures=w.figures, files=files,
                        extras={"predictions": preds})


# ----------------------------------------------------------------------------------------- d and e


def _calibration_and_events(d: pd.DataFrame, thresholds: pd.DataFrame, name: str, w: _Writer,
                            skipped: dict[str, str]) -> tuple[list, list, list, list]:
    from riskfm.evaluate.calibration import calibration
    from riskfm.evaluate.risk_groups import assign_risk_groups, cumulative_incidence_by_group

    calib, inc, at, figs = [], [], [], []
    thr = thresholds.set_index("target")["threshold"]
    for target in STENOSIS_COLUMNS:
        art = an.artery_of(target)
        rows = d[d["target"] == target].dropna(subset=["y_true"])
        y, p = rows["y_true"].to_numpy(float), rows["y_prob"].to_numpy(float)
        cal = None
        if len(y) and 0 < y.sum() < len(y):
            try:
                cal = calibration(y, p, n_bins=10, strategy="quantile", min_bin_size=20)
            except ValueError as exc:  # e.g. near-constant predictions: the slope's fit is singular
                skipped[f"calibration: {name} {art}"] = f"calibration not estimable: {exc}"
        elif len(y):
            skipped[f"calibration: {name} {art}"] = f"{int(y.sum())} events in {len(y)} patients: needs both outcomes"
        if cal is not None:
            calib.append(cal.table.assign(split=name, artery=art, target=target, slope=cal.slope.value,
                                          intercept=cal.intercept.value))
            w.figure(figs, f"{name}, {art}: calibration", f"calibration_{_slug(name)}_{art}",
                     cal.plot, label=art, title=f"{art}, {name}")
        t = float(thr.get(target, math.nan))
        if not math.isfinite(t):
            continue
        surv = rows.dropna(subset=["time_to_event_days", "event"]) if {"time_to_event_days", "event"} <= set(
            rows.columns) else rows.iloc[:0]
        if surv.empty:
            skipped[f"cumulative events: {name}"] = ("no follow-up: the manifest's time_to_event_days / event "
                                                     "columns are absent or empty")
            continue
        if len(surv) < len(rows):
            skipped[f"cumulative events: {name} {art} (part)"] = (f"{len(rows) - len(surv)} of {len(rows)} patients "
                                                                 "without follow-up left out of the curves")
        groups = assign_risk_groups(surv["y_prob"].to_numpy(float), t)
        ci = cumulative_incidence_by_group(surv["time_to_event_days"].to_numpy(float),
                                           surv["event"].to_numpy(float), groups)
        for g, curve in ci.curves.items():
            inc.append(curve.assign(split=name, artery=art, target=target, group=g))
        times = _at_risk_times(ci.max_time_days)
        tab = ci.at_risk(times)
        at.append(tab.reset_index(names="group").melt(id_vars="group", var_name="time_days", value_name="at_risk")
                  .assign(split=name, artery=art, target=target,
                          logrank_p=math.nan if ci.logrank_p is None else ci.logrank_p))
        w.figure(figs, f"{name}, {art}: cumulative events by risk group (log-rank p "
                 f"{'n/a' if ci.logrank_p is None else f'{ci.logrank_p:.3g}'})", f"events_{_slug(name)}_{art}",
                 ci.plot, times_days=times, title=f"{art} risk groups, {name}", legend_title="Incidence threshold")
    return calib, inc, at, figs


def _at_risk_times(t_max: float) -> list[float]:
    """Return the times of the numbers at risk: 0 and calendar-like steps (a week ... two years), at most 5 intervals."""
    steps = (1.0, 7.0, 14.0, 30.0, 60.0, 90.0, 180.0, 365.0, 730.0)
    step = next((st for st in steps if t_max / st <= 5), 365.0 * np.ceil(t_max / (5 * 365.0)))
    return [float(k * step) for k in range(int(t_max // step) + 1)]


def _waveforms(sets: dict[str, pd.DataFrame], thresholds: pd.DataFrame, ecg_paths: pd.Series, cohort: Any,
               cfg: RunConfig, opts: ECGStenosisOptions, w: _Writer, progress: bool,
               skipped: dict[str, str]) -> tuple[pd.DataFrame, pd.DataFrame, list, list[str]]:
    from riskfm.evaluate.risk_groups import assign_risk_groups
    from riskfm.explain.waveforms import DISPLAY_SPEC, compare_median_beats
    from riskfm.plots.median_beats import plot_median_beat_attribution
    from riskfm.train.run import load_run_model

    evaluated = sorted({p for d in sets.values() for p in d["patient_id"]})
    beats, failures = _median_beats(ecg_paths.reindex(evaluated), progress)
    problems = [f"median beat of {f['path']}: {f['reason']}" for f in failures]
    n_no_ecg = int(sum(1 for p in evaluated if not isinstance(ecg_paths.get(p), str) or not ecg_paths.get(p)))
    if failures or n_no_ecg:
        problems.insert(0, f"{len(failures)} ECG(s) gave no median beat and {n_no_ecg} patient(s) have no ECG: "
                           "left out of the waveform comparison")
    model = load_run_model(cfg.out).model if opts.attribution_patients > 0 else None
    rng = np.random.default_rng(cfg.split.seed)
    rows, lead_rows, figs = [], [], []
    thr = thresholds.set_index("target")["threshold"]
    for name, d in sets.items():
        for target in STENOSIS_COLUMNS:
            art = an.artery_of(target)
            t = float(thr.get(target, math.nan))
            sub = d[d["target"] == target]
            sub = sub[sub["patient_id"].isin(beats)]
            if not math.isfinite(t) or sub.empty:
                skipped[f"waveforms: {name} {art}"] = "no threshold or no patient with a median beat"
                continue
            high = assign_risk_groups(sub["y_prob"].to_numpy(float), t) == "high"
            ids = sub["patient_id"].to_numpy()
            if high.sum() < 2 or (~high).sum() < 2:
                skipped[f"waveforms: {name} {art}"] = (f"{int(high.sum())} high- and {int((~high).sum())} low-risk "
                                                       "patients with a median beat: each group needs 2")
                continue
            comp = compare_median_beats(np.stack([beats[p] for p in ids[high]]),
                                        np.stack([beats[p] for p in ids[~high]]),
                                        fs=DISPLAY_SPEC.fs, leads=DISPLAY_SPEC.leads, target=target)
            slug = f"{_slug(name)}_{art}"
            w.table(f"median_beats_{slug}", comp.to_frame())
            w.figure(figs, f"{name}, {art}: median beats, high vs low risk", f"median_beats_{slug}",
                     comp.plot, title=f"{art}, {name}: median beats by risk group (mean, {comp.confidence:.0%} CI)")
            w.figure(figs, f"{name}, {art}: high \u2212 low difference, pointwise 95% CI",
                     f"median_beat_difference_{slug}", comp.plot_difference)
            peak = np.unravel_index(int(np.argmax(np.abs(comp.difference))), comp.difference.shape)
            rows.append({"split": name, "artery": art, "target": target, "n_high": comp.n_high, "n_low": comp.n_low,
                         "significant_share": float(comp.significant.mean()),
                         "largest_difference_lead": comp.leads[peak[0]],
                         "largest_difference_ms": float(1000 * comp.time_s[peak[1]]),
                         "largest_difference_mv": float(comp.difference[peak]),
                         "largest_difference_ci_low": float(comp.difference_ci[0][peak]),
                         "largest_difference_ci_high": float(comp.difference_ci[1][peak])})
            if model is None:
                continue
            pool = sorted(ids[high].tolist())
            chosen = sorted(rng.choice(pool, min(len(pool), opts.attribution_patients), replace=False).tolist())
            beat_list, maps, got, att_problems = _attribution(model, cfg, cohort, chosen, target, opts)
            problems += att_problems
            if not maps:
                skipped[f"attributions: {name} {art}"] = "no high-risk patient's attribution could be aligned"
                continue
            mean_beat, mean_share = an.mean_attribution(beat_list, maps)
            att, space = got
            w.figure(figs, f"{name}, {art}: mean {opts.attribution_method.replace('_', ' ')} of {len(maps)} "
                     "high-risk patients in median-beat space", f"attribution_{slug}",
                     plot_median_beat_attribution, mean_beat, mean_share, space.time_s, att.leads, units=att.units,
                     title=f"{art}, {name}: mean attribution share, {len(maps)} high-risk patients")
            share = mean_share.sum(axis=1)
            lead_rows += [{"split": name, "artery": art, "target": target, "lead": lead, "share": float(s),
                           "n_patients": len(maps), "method": att.method} for lead, s in zip(att.leads, share)]
    return pd.DataFrame(rows), pd.DataFrame(lead_rows), figs, problems


# ----------------------------------------------------------------------------------------- report


def _setup_section(study: StudyConfig, cfg: RunConfig, how: str, notes: list[str], cohort: Any,
                   sets: dict[str, pd.DataFrame]) -> Any:
    from riskfm.report.html import Section

    enc = cfg.encoders["ecg"]
    text = (f"Reproduces the analysis of {an.PAPER_SOURCE}: an ECG encoder fine-tuned for severe (>= 70%) or "
            "complete stenosis of the RCA, LM, LAD and LCX, evaluated on the internal test split and each external "
            "site. The paper is known from its abstract only: its AUROCs are the reference column; its cohort, "
            "preprocessing, normal-ECG definition, strata and thresholds are not published, and riskfm's readings "
            "of them are stated in each section.\n\n"
            f"Encoder: {enc.name}" + (f" from {enc.checkpoint}" if enc.checkpoint else " (no pretrained checkpoint)")
            + f"; training run {cfg.out} ({how}); manifest {cfg.manifest}; "
            f"{len(cohort.exclusions)} patient(s) excluded by the run (see its exclusions.csv). "
            f"Evaluation sets: {', '.join(f'{k} ({v.patient_id.nunique()} patients)' for k, v in sets.items())}.")
    return Section("Study and setup", text=text, notes=list(notes))


def _auroc_section(layout: pd.DataFrame, summary: pd.DataFrame, n_boot: int, mins: dict[str, int]) -> Any:
    from riskfm.report.html import Section

    return Section("a. Per-artery AUROC", text=(
        f"AUROC with 95% stratified-bootstrap intervals ({n_boot} resamples) per artery, in the paper's layout, "
        "beside the published values (internal column for the internal test split, external for each external "
        f"site). An AUROC from fewer than {mins['min_events']} events or {mins['min_nonevents']} non-events "
        "(evaluate.min_events / min_nonevents) is not estimable (n/e)."),
        tables=[("Paper layout", layout), ("Per set and artery", summary)])


def _normal_section(normal: pd.DataFrame, counts: dict, rule: str, per_patient: pd.DataFrame) -> Any:
    from riskfm.report.html import Section

    count_table = pd.DataFrame([{"set": k, **v} for k, v in counts.items()])
    reasons = per_patient.loc[per_patient["reason"].astype(str).str.startswith("unmeasurable"), "reason"]
    notes = [f"{len(reasons)} ECG(s) unmeasurable and left out of the subset: "
             + "; ".join(f"{r} ({n})" for r, n in reasons.str.slice(0, 80).value_counts().head(5).items())] \
        if len(reasons) else []
    return Section("b. Normal-ECG subset", text=(
        f"Patients whose ECG is clinically normal by {rule}. The paper reports stable performance in this subset "
        "without defining it (abstract only). AUROC in the subset beside all patients and the paper."),
        tables=[("Patients per set", count_table), ("AUROC in the normal-ECG subset", normal)], notes=notes)


def _subgroup_section(subgroups: pd.DataFrame, het: pd.DataFrame, figs: list, notes: list[str],
                      skipped: dict[str, str]) -> Any:
    from riskfm.report.html import Section

    skip = [f"{k}: {v}" for k, v in skipped.items() if k.startswith("subgroups")]
    return Section("c. Subgroup stability", text=(
        "AUROC per age band, sex and acquisition-time stratum with bootstrap intervals (forest plots), and "
        "Cochran's Q across the levels of each attribute (inverse-variance weights, DeLong variances; levels below "
        "the small-sample rule left out). A large p-value is absence of evidence of a difference, not proof of "
        "stability."), tables=[("Heterogeneity (Cochran's Q)", het), ("AUROC by subgroup", subgroups)],
        figures=figs, notes=notes + skip)


def _risk_section(thresholds: pd.DataFrame, risk: pd.DataFrame, calib: pd.DataFrame, figs: list,
                  skipped: dict[str, str]) -> Any:
    from riskfm.report.html import Section

    skip = [f"{k}: {v}" for k, v in skipped.items() if k.startswith(("calibration", "cumulative"))]
    cal = calib.drop_duplicates(["split", "artery"])[["split", "artery", "slope", "intercept"]] if len(calib) else calib
    return Section("d. Risk groups, calibration and cumulative events", text=(
        "Vessel-specific incidence thresholds (riskfm's reading of the paper): for each artery the top fraction "
        "of patients equal to its training prevalence is high risk, the threshold being that quantile of the "
        "training patients' predicted risk. Observed stenosis rate per group with Wilson intervals; calibration "
        "(quantile bins); cumulative incidence of the manifest's event (time_to_event_days, event) by risk group "
        "(Kaplan-Meier, log-rank test) with numbers at risk."),
        tables=[("Thresholds", thresholds), ("Observed rate by risk group", risk), ("Calibration", cal)],
        figures=figs, notes=skip)


def _waveform_section(waveforms: pd.DataFrame, leads: pd.DataFrame, figs: list, problems: list[str],
                      opts: ECGStenosisOptions, skipped: dict[str, str]) -> Any:
    from riskfm.report.html import Section

    skip = [f"{k}: {v}" for k, v in skipped.items() if k.startswith(("waveforms", "attributions"))]
    top = leads.sort_values("share", ascending=False).groupby(["split", "artery"]).head(3) if len(leads) else leads
    return Section("e. Waveforms and attributions", text=(
        "Median beats (R-aligned on lead II, 0.67-40 Hz, mV) of high- vs low-risk patients per lead: group means "
        "with 95% CIs, their difference (high - low) with its pointwise Welch 95% CI, grey where the groups differ "
        "after Benjamini-Hochberg correction. Attributions: mean share of |"
        f"{opts.attribution_method.replace('_', ' ')}| per lead and offset from R over a seeded sample of up to "
        f"{opts.attribution_patients} high-risk patients (each patient weighted equally), drawn on their mean beat."),
        tables=[("Waveform differences", waveforms), ("Leads with the largest attribution share", top)],
        figures=figs, notes=skip + problems[:20] + ([f"... and {len(problems) - 20} more"] if len(problems) > 20
                                                    else []))
