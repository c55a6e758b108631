"""Seed 001 (CORA), Fig. 5: 30-day MACE from CT, from the clinical variables, and from both (``riskfm study cora-mace``).

The paper's model: the pretrained CORA encoder with global average pooling for the CCTA; a frozen
language model (Qwen-7B in the paper) reading the Table 1 demographic and clinical variables
written as text behind CORA's prompt, its embedding projected by an MLP; the two concatenated and
fed to a linear classifier trained with cross-entropy. In riskfm that is a ``riskfm train`` run
with ``encoders.ct`` the CORA encoder (``cora-resunet``, pooled bottleneck), ``encoders.clinical``
``text-lm`` (frozen; last-token pooling for decoder-only models such as Qwen), concatenation
fusion with the CT features passed through unprojected (``fusion.passthrough: [ct]``; the text
embedding is normalised and projected by ``fusion.proj_dim`` units with GELU) and a linear
``mace_30d`` head trained with binary cross-entropy.

The study trains one run per arm (:mod:`riskfm.recipes.cora_mace_arms`: CT only, clinical only, CT +
clinical, and the CT arms from scratch when a pretrained checkpoint is given), all on the same
split, then evaluates each arm on the internal test split and the external sites: AUROC with a
stratified-bootstrap CI (``study.n_boot`` resamples, 500 as in the paper) and the paired bootstrap
test between arms (:func:`riskfm.evaluate.paired_bootstrap_test`: the same resampled patients for
both arms; difference in AUROC, its percentile CI and a two-sided p-value). Every arm is evaluated
on the same patients: those every arm scored in that split (the others are counted in the notes).
With fewer events or non-events than ``evaluate.min_events`` / ``min_nonevents`` a number is
"not estimable", never a number.

Outputs in ``out``::

    arms/<arm>/          each arm's riskfm train run folder (config, predictions, metrics, model)
    summary.csv          split x arm: n, events, AUROC and its CI
    comparisons.csv      split x pair of arms: AUROCs, difference, CI, z, p
    arms.csv             the arms: modalities, CT weights, encoders, reused or trained, best epoch
    predictions.csv      split, patient_id, y_true and one y_prob column per arm (the compared patients)
    figures/roc_<split>.png
    study.json           options, notes, arms, tables, the paper's Fig. 5 numbers
    report.html
"""

from __future__ import annotations

import logging
import os
from itertools import combinations
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from riskfm.errors import RiskfmError
from riskfm.recipes.cora_mace_arms import TARGET, ArmPlan, ArmRun, check_same_splits, plan_arms, run_arm
from riskfm.recipes.result import RecipeResult
from riskfm.recipes.study_config import StudyOptions, load_study_config

log = logging.getLogger(__name__)

__all__ = ["PAPER_FIG5", "CoraMaceOptions", "compare_arms", "cora_mace"]

ArmName = Literal["ct", "ct_scratch", "clinical", "ct_clinical", "ct_clinical_scratch"]

#: The paper's AUROCs (95% CI) in Fig. 5 / Results, on its cohort (internal N=555, external N=2,108):
#: for context only, never for comparison with another cohort. The "scratch" image baseline has no CI.
PAPER_FIG5: dict[str, dict[str, tuple[float, float | None, float | None]]] = {
    "test": {"ct_clinical": (0.75, 0.67, 0.82), "ct": (0.74, 0.65, 0.81), "ct_scratch": (0.64, None, None)},
    "external": {"ct_clinical": (0.756, 0.722, 0.789), "ct": (0.68, 0.64, 0.72), "ct_scratch": (0.59, None, None)},
}


# Order of arms within a default pair (difference = first minus second).
_PAIR_ORDER = ("ct_clinical", "ct", "clinical", "ct_clinical_scratch", "ct_scratch")


class CoraMaceOptions(StudyOptions):
    """The ``study:`` section of ``riskfm study cora-mace``.

    Attributes
    ----------
    arms : list of str, optional
        Arms to run among ``ct``, ``ct_scratch``, ``clinical``, ``ct_clinical``,
        ``ct_clinical_scratch`` (default: ``ct``, ``clinical``, ``ct_clinical``, plus the two
        scratch arms when ``encoders.ct.checkpoint`` is set).
    splits : list of {"test", "external"}, optional
        Splits evaluated (default: ``test``, and ``external`` when ``split.external_sites`` is set).
    pairs : list of [arm, arm], optional
        Pairs compared by the paired bootstrap, difference = first minus second (default: every
        pair of arms run, the richer arm first: CT + clinical, CT, clinical, then the scratch arms).
    n_boot : int
        Bootstrap resamples of the CIs and of the paired test (the paper: 500).
    seed : int
        Bootstrap seed (the same resamples of patients for every arm of a split).
    confidence : float
        Coverage of the intervals.
    image_projection : bool
        False (the paper): the pooled CT features are concatenated as they are; True: projected
        like the text embedding (riskfm's default fusion).
    clinical_columns : {"table1", "all"}
        When the config does not set ``data.clinical_columns``: give the language model the
        manifest's Table 1 variables (the paper), or every clinical column.
    """

    arms: list[ArmName] | None = Field(None, min_length=1)
    splits: list[Literal["test", "external"]] | None = Field(None, min_length=1)
    pairs: list[tuple[ArmName, ArmName]] | None = None
    n_boot: int = Field(500, ge=10)
    seed: int = 0
    confidence: float = Field(0.95, gt=0, lt=1)
    image_projection: bool = False
    clinical_columns: Literal["table1", "all"] = "table1"

    @model_validator(mode="after")
    def _pairs_of_arms(self) -> CoraMaceOptions:
        for a, b in self.pairs or []:
            if a == b:
                raise ValueError(f"pairs: {[a, b]} compares an arm with itself")
            if self.arms is not None and not {a, b} <= set(self.arms):
                raise ValueError(f"pairs: {[a, b]} names an arm not in arms {self.arms}")
        return self


def compare_arms(y: Any, scores: dict[str, Any], pairs: list[tuple[str, str]], *, n_boot: int, seed: int,
                 confidence: float, min_events: int, min_nonevents: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """AUROC of each arm and the paired bootstrap test of each pair, on the same patients.

    Parameters
    ----------
    y : array-like [n]
        0/1 outcome of the patients every arm scored.
    scores : dict arm -> array-like [n]
        Each arm's predicted risk of the same patients, in the same order.
    pairs : list of (arm, arm)
        Pairs to compare (difference = first minus second).
    n_boot, seed, confidence
        Bootstrap settings: with one seed every arm's interval and every test uses the same
        stratified resamples of patients (:func:`riskfm.evaluate.discrimination.stratified_bootstrap_indices`).
    min_events, min_nonevents : int
        The small-sample rule: below it a number is not estimable (NaN with the reason).

    Returns
    -------
    aurocs : DataFrame
        ``arm, n, n_events, auroc, ci_low, ci_high, method, not_estimable``.
    tests : DataFrame
        ``arm_1, arm_2, n, n_events, auroc_1, auroc_2, difference, ci_low, ci_high, z, p_value,
        significance`` (the paper's ``*`` / ``**`` / ``***`` at 0.05 / 0.01 / 0.001, else ``ns``),
        ``method, not_estimable``.
    """
    from riskfm.evaluate import estimable, paired_bootstrap_test, roc_auc
    from riskfm.evaluate.results import bootstrap_method

    y = np.asarray(y, dtype=float)
    n, n_pos = len(y), int((y == 1).sum())
    reason = estimable(y, min_events=min_events, min_nonevents=min_nonevents)
    rows = []
    for arm, p in scores.items():
        row = {"arm": arm, "n": n, "n_events": n_pos, "auroc": np.nan, "ci_low": np.nan, "ci_high": np.nan,
               "method": bootstrap_method(n_boot), "not_estimable": reason}
        if reason is None:
            est = roc_auc(y, np.asarray(p, dtype=float), ci="bootstrap", n_boot=n_boot, seed=seed,
                          confidence=confidence)
            row.update(auroc=est.value, ci_low=est.ci[0], ci_high=est.ci[1], method=est.method)
        rows.append(row)
    tests = []
    for a, b in pairs:
        res = paired_bootstrap_test(y, np.asarray(scores[a], dtype=float), np.asarray(scores[b], dtype=float),
                                    "auroc", n_boot, seed, confidence, min_events=min_events,
                                    min_nonevents=min_nonevents)
        tests.append({"arm_1": a, "arm_2": b, "n": res.n, "n_events": res.n_pos, "auroc_1": res.value1,
                      "auroc_2": res.value2, "difference": res.value,
                      "ci_low": res.ci[0] if res.ci else np.nan, "ci_high": res.ci[1] if res.ci else np.nan,
                      "z": res.z, "p_value": res.p_value, "significance": _stars(res.p_value), "method": res.method,
                      "not_estimable": res.not_estimable})
    return pd.DataFrame(rows), pd.DataFrame(tests, columns=[
        "arm_1", "arm_2", "n", "n_events", "auroc_1", "auroc_2", "difference", "ci_low", "ci_high", "z", "p_value",
        "significance", "method", "not_estimable"])


def _stars(p: float) -> str | None:
    """Return the paper's mark: ``***`` p < 0.001, ``**`` p < 0.01, ``*`` p < 0.05, ``ns``; None when not estimable."""
    if not np.isfinite(p):
        return None
    return "***" if p < 0.001 else "**" if p < 0.01 else "*" if p < 0.05 else "ns"


def _split_patients(runs: list[ArmRun], split: str, notes: list[str]) -> pd.DataFrame:
    """Patients of ``split`` with a known outcome that every arm scored: y_true and one column per arm."""
    frames = {}
    for r in runs:
        p = r.predictions[(r.predictions["split"] == split) & r.predictions["y_true"].notna()]
        frames[r.plan.name] = p.set_index("patient_id")[["y_true", "y_prob"]]
    common = sorted(set.intersection(*(set(f.index) for f in frames.values())))
    union = set.union(*(set(f.index) for f in frames.values()))
    if len(union) > len(common):
        lacking = ", ".join(f"{name}: {len(union) - len(f)}" for name, f in frames.items() if len(f) < len(union))
        notes.append(f"{split}: {len(union) - len(common)} of {len(union)} patients with a known {TARGET} were not "
                     f"scored by every arm ({lacking} not scored: excluded from that arm's run, see its "
                     "exclusions.csv) and are left out of the comparison")
    y = None
    out = pd.DataFrame({"split": split, "patient_id": common})
    for name, f in frames.items():
        f = f.loc[common]
        if y is None:
            y = f["y_true"].to_numpy()
            out["y_true"] = y.astype(int)
        elif not np.array_equal(f["y_true"].to_numpy(), y):
            raise RiskfmError(f"{split}: arms disagree on the {TARGET} label of some patients; were the arms trained "
                              "on different manifests? Delete the arm folders and run the study again")
        out[f"y_prob_{name}"] = f["y_prob"].to_numpy()
    return out


def _without_ct(run: Any) -> set[str]:
    """Patient ids whose manifest row names no CT (the paper's cohort had a CCTA for everyone)."""
    from riskfm.data.manifest import read_manifest_table

    table = read_manifest_table(run.manifest, na_values=run.data.na_values)
    if "ct_path" not in table.columns:
        return set(table["patient_id"].astype(str))
    empty = table["ct_path"].isna() | (table["ct_path"].astype(str).str.strip() == "")
    return set(table.loc[empty, "patient_id"].astype(str))


def _check_one_process(run: Any) -> None:
    """Refuse a multi-process launch: the study trains its arms one after another in this process."""
    from riskfm.train.engine import launched_world

    t = run.train
    one_gpu_list = isinstance(t.devices, str) and len([d for d in t.devices.split(",") if d.strip()]) == 1
    if launched_world() is not None or t.num_nodes > 1 or not (t.devices == 1 or one_gpu_list):
        raise RiskfmError(
            f"{run.source}: train.devices / num_nodes: the study trains its arms one after another in one process "
            f"(devices {t.devices!r}, nodes {t.num_nodes}{', under torchrun' if launched_world() else ''}); a "
            "multi-process launch would run the whole study in every process. Run it with train.devices: 1 "
            "(one GPU or the CPU) and without torchrun")


def _eval_splits(run: Any, opts: CoraMaceOptions) -> list[str]:
    has_external = bool(run.split.external_sites)
    if opts.splits is None:
        return ["test", "external"] if has_external else ["test"]
    if "external" in opts.splits and not has_external:
        raise RiskfmError(f"{run.source}: study.splits lists 'external' but split.external_sites is empty; "
                          "name the external sites or drop 'external'")
    return [s for s in ("test", "external") if s in opts.splits]


def _roc_figure(split: str, patients: pd.DataFrame, aurocs: pd.DataFrame, plans: list[ArmPlan], path: Path,
                opts: CoraMaceOptions, min_events: int, min_nonevents: int) -> Path:
    from riskfm.evaluate.roc import RocCurves, roc_curve

    curves = {}
    for plan in plans:
        row = aurocs.set_index("arm").loc[plan.name]
        quoted = None if row["not_estimable"] else {"value": row["auroc"], "ci": [row["ci_low"], row["ci_high"]],
                                                     "method": row["method"], "confidence": opts.confidence}
        curves[plan.label] = roc_curve(patients["y_true"], patients[f"y_prob_{plan.name}"], ci=None,
                                       confidence=opts.confidence, min_events=min_events,
                                       min_nonevents=min_nonevents, quoted=quoted)
    title = {"test": "Internal test", "external": "External sites"}[split]
    RocCurves(curves, {}, opts.confidence).plot(path, title=f"30-day MACE, {title} (n={len(patients)})")
    return path


def _arms_table(runs: list[ArmRun], patients: dict[str, pd.DataFrame]) -> pd.DataFrame:
    rows = []
    for r in runs:
        cfg = r.plan.config
        row = {"arm": r.plan.name, "label": r.plan.label, "modalities": " + ".join(r.plan.modalities),
               "ct_encoder": cfg.encoders["ct"].name if "ct" in cfg.encoders else None,
               "ct_weights": None if r.plan.ct_weights is None else (
                   cfg.encoders["ct"].checkpoint if r.plan.ct_weights == "pretrained" else "scratch"),
               "clinical_encoder": None, "reused": r.reused, "best_epoch": r.best_epoch,
               "best_val_auroc": r.best_val_auroc, "folder": cfg.out}
        if "clinical" in cfg.encoders:
            enc = cfg.encoders["clinical"]
            model = enc.kwargs.get("model_path") or ("all-MiniLM-L6-v2 (default)" if enc.name in ("text-lm", "minilm")
                                                     else "")
            row["clinical_encoder"] = f"{enc.name} {model}".strip()
        for split, table in patients.items():
            row[f"n_{split}"] = len(table)
        rows.append(row)
    return pd.DataFrame(rows)


def _paper_table() -> pd.DataFrame:
    rows = [{"split": s, "arm": a, "auroc": v, "ci_low": lo, "ci_high": hi}
            for s, arms in PAPER_FIG5.items() for a, (v, lo, hi) in arms.items()]
    return pd.DataFrame(rows)


def _shown(table: pd.DataFrame, value: str) -> pd.DataFrame:
    """Return the table as the report shows it: a not-estimable row says why instead of its numbers."""
    from riskfm.evaluate.guards import not_estimable_text

    out = table.copy().astype(object)
    ne = table["not_estimable"].notna()
    out.loc[ne, value] = [not_estimable_text(r) for r in table.loc[ne, "not_estimable"]]
    return out.drop(columns=["not_estimable"])


def _report(out: Path, summary: pd.DataFrame, comparisons: pd.DataFrame, arms: pd.DataFrame,
            figures: dict[str, Path], notes: list[str], opts: CoraMaceOptions, run: Any) -> Path:
    from riskfm.report.html import Section, write_html_report

    intro = (
        "Reproduces the MACE analysis of CORA (Hao et al., seed 001, Fig. 5) on this cohort: "
        f"30-day MACE from the CT encoder ({run.encoders['ct'].name if 'ct' in run.encoders else 'none'}, globally "
        "average-pooled), from the clinical variables written as text behind CORA's prompt and read by a frozen "
        "language model, and from both concatenated, each arm trained as its own riskfm run on the same split. "
        f"AUROC with {opts.n_boot}-resample stratified bootstrap {opts.confidence:.0%} CIs; arms compared by the "
        "paired bootstrap test (the same resampled patients for both arms; two-sided p from the SD of the "
        "resampled differences). Every arm is scored on the same patients of a split.")
    sections = [
        Section("Study", intro, notes=list(notes)),
        Section("Arms", "One riskfm train run per arm, in arms/<arm>/ (reused when already finished).",
                tables=[("Arms", arms)]),
        Section("AUROC per arm", "", tables=[("AUROC per split and arm", _shown(summary, "auroc"))],
                figures=[(f"ROC curves, {s}", p) for s, p in figures.items()]),
        Section("Paired comparisons", "Difference = AUROC of arm_1 minus AUROC of arm_2.",
                tables=[("Paired bootstrap tests", _shown(comparisons, "difference"))]),
        Section("The paper's numbers", "CORA's Fig. 5 on its own cohort (internal test N=555, 8.6% MACE; external "
                "N=2,108, 11.2% MACE; Qwen-7B text encoder): for orientation only, not comparable with this cohort. "
                "ct_scratch is the paper's supervised baseline trained from scratch.",
                tables=[("Published AUROCs (Fig. 5)", _paper_table())]),
    ]
    return write_html_report(sections, out / "report.html", title="CORA 30-day MACE study",
                             subtitle=f"config {run.source}")


def cora_mace(config: str | os.PathLike | dict[str, Any], overrides: dict[str, Any] | None = None) -> RecipeResult:
    """Run CORA's multimodal 30-day MACE study (seed 001, Fig. 5) on a run configuration.

    Parameters
    ----------
    config : path or dict
        A ``riskfm train`` configuration (``manifest``, ``out``, ``modalities`` with ``ct`` and
        ``clinical``, ``split``, ``encoders``, ``train``, ``evaluate``) with an optional ``study:``
        section (:class:`CoraMaceOptions`). ``targets`` is replaced by ``mace_30d`` (noted).
    overrides : dict, optional
        Dotted keys set first (``{"out": ..., "train.epochs": 3, "study.n_boot": 200}``).

    Returns
    -------
    RecipeResult
        ``tables``: ``summary`` (split x arm: n, events, AUROC, CI), ``comparisons``, ``arms``,
        ``predictions``; ``figures``: ``roc_<split>``; ``files``: ``report`` (HTML), ``study``
        (JSON) and the CSVs; ``metrics``: the content of ``study.json``; ``extras``: ``runs``
        (arm -> :class:`~riskfm.recipes.cora_mace_arms.ArmRun`).

    Raises
    ------
    ConfigError
        A wrong key or value in the run configuration or in ``study:`` (named ``study.<key>``).
    RiskfmError
        The config lacks CT or clinical, ``out`` is a training run's folder, or the arms split the
        cohort differently.
    """
    from riskfm.progress import status
    from riskfm.recipes.cora_common import write_json

    study = load_study_config(config, overrides)
    opts = study.options(CoraMaceOptions)
    run = study.run
    out = Path(run.out)
    if (out / "fingerprint.json").is_file():
        raise RiskfmError(f"{out} is a riskfm train run folder; the study writes its arms and report into its own "
                          "folder: set `out` (or --out) to a new folder")
    _check_one_process(run)
    splits = _eval_splits(run, opts)
    notes: list[str] = []
    plans = plan_arms(run, opts.arms, image_projection=opts.image_projection,
                      clinical_columns=opts.clinical_columns, notes=notes)
    names = [p.name for p in plans]
    # Default: every pair, the richer arm first (multimodal before image, pretrained before scratch), so a
    # positive difference reads as the gain the paper reports.
    pairs = [tuple(p) for p in opts.pairs] if opts.pairs else list(
        combinations(sorted(names, key=_PAIR_ORDER.index), 2))
    bad = [p for p in pairs if not set(p) <= set(names)]
    if bad:
        raise RiskfmError(f"{study.source}: study.pairs: {bad} name arms that are not run (arms: {names})")
    runs = [run_arm(p) for p in plans]
    check_same_splits(runs)

    status("comparing the arms")
    min_ev, min_non = run.evaluate.min_events, run.evaluate.min_nonevents
    no_ct = _without_ct(run) if any("ct" in p.modalities for p in plans) else set()
    summaries, tests, patients, figures = [], [], {}, {}
    for split in splits:
        table = _split_patients(runs, split, notes)
        if table.empty:
            raise RiskfmError(f"split {split!r}: no patient with a known {TARGET} was scored by every arm")
        k = int(table["patient_id"].isin(no_ct).sum())
        if k:
            notes.append(f"{split}: {k} of {len(table)} compared patients have no CT (empty ct_path); the CT arms "
                         "score them from the learned missing-CT embedding alone (CT only: one constant risk)")
        patients[split] = table
        scores = {n: table[f"y_prob_{n}"].to_numpy() for n in names}
        aurocs, comp = compare_arms(table["y_true"].to_numpy(), scores, pairs, n_boot=opts.n_boot, seed=opts.seed,
                                    confidence=opts.confidence, min_events=min_ev, min_nonevents=min_non)
        figures[f"roc_{split}"] = _roc_figure(split, table, aurocs, plans, out / "figures" / f"roc_{split}.png",
                                              opts, min_ev, min_non)
        summaries.append(aurocs.assign(split=split))
        tests.append(comp.assign(split=split))
    labels = {p.name: p.label for p in plans}
    summary = pd.concat(summaries, ignore_index=True)
    summary.insert(1, "label", summary["arm"].map(labels))
    summary = summary[["split", "arm", "label", "n", "n_events", "auroc", "ci_low", "ci_high", "method",
                       "not_estimable"]]
    comparisons = pd.concat(tests, ignore_index=True)
    comparisons = comparisons[["split", *[c for c in comparisons.columns if c != "split"]]]
    arms = _arms_table(runs, patients)
    predictions = pd.concat(patients.values(), ignore_index=True)

    tables = {"summary": summary, "comparisons": comparisons, "arms": arms, "predictions": predictions}
    files: dict[str, Path] = {}
    out.mkdir(parents=True, exist_ok=True)
    for name, t in tables.items():
        files[name] = out / f"{name}.csv"
        t.to_csv(files[name], index=False)
    metrics = {"study": "cora_mace", "paper": "seed 001: CORA (Hao et al.), Fig. 5", "target": TARGET, "options": opts.model_dump(mode="json"),
               "splits": splits, "notes": notes, "arms": arms.to_dict(orient="records"),
               "summary": summary.to_dict(orient="records"), "comparisons": comparisons.to_dict(orient="records"),
               "paper_fig5": _paper_table().to_dict(orient="records")}
    for note in notes:  # also on stderr: a patient left out must not go unseen
        log.warning("cora-mace: %s", note)
    files["study"] = write_json(metrics, out / "study.json")
    files["report"] = _report(out, summary, comparisons, arms, {k.removeprefix("roc_"): v for k, v in figures.items()},
                              notes, opts, run)
    return RecipeResult("cora_mace", metrics=metrics, tables=tables, figures=figures, files=files,
                        extras={"runs": {r.plan.name: r for r in runs}})
