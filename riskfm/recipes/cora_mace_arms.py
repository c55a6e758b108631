"""The arms of CORA's MACE study (seed 001, Fig. 5): one ``riskfm train`` run each, same cohort and split.

An arm is the study's run configuration restricted to some modalities and to the target
``mace_30d``, written to ``<out>/arms/<arm>/`` by :func:`riskfm.train.run.run_training`:

* ``ct``: the CT encoder of the config (CORA: globally pooled bottleneck), pretrained when
  ``encoders.ct.checkpoint`` is given, else from scratch;
* ``clinical``: the clinical variables written behind CORA's prompt, read by the frozen language
  model of ``encoders.clinical``;
* ``ct_clinical``: both, concatenated (CORA's multimodal model);
* ``ct_scratch``, ``ct_clinical_scratch``: the same two with the CT encoder from random weights,
  only when a checkpoint is given (without one ``ct`` already is from scratch).

Every arm shares the config's ``split`` (same seed), ``train`` and ``evaluate`` sections, so the
arms differ only in what they see. A finished arm is reused: after a run completes the study writes
``study_arm.json`` (the arm's configuration and run fingerprint); a later study with the same arm
configuration, manifest and files reads that arm's outputs instead of training it again. The
marker is removed before an arm (re)trains, so a run stopped half-way is never mistaken for a
finished one.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from riskfm.errors import RiskfmError

log = logging.getLogger(__name__)

__all__ = ["ARM_NAMES", "ArmPlan", "ArmRun", "MARKER", "check_same_splits", "plan_arms", "run_arm",
           "table1_columns"]

#: Every arm the study knows, in display order.
ARM_NAMES: tuple[str, ...] = ("ct", "ct_scratch", "clinical", "ct_clinical", "ct_clinical_scratch")
_MODALITIES = {"ct": ("ct",), "ct_scratch": ("ct",), "clinical": ("clinical",), "ct_clinical": ("ct", "clinical"),
               "ct_clinical_scratch": ("ct", "clinical")}
#: The study's only target.
TARGET = "mace_30d"
#: File written into an arm's folder once its run has finished (see the module docstring).
MARKER = "study_arm.json"
# Keys that do not change what an arm computes (progress bars, loader threads, resume switch).
_NOT_IDENTITY = ("train.progress", "train.num_workers", "train.resume", "data.n_workers", "data.cache",
                 "data.cache_dir")


@dataclass(frozen=True)
class ArmPlan:
    """One arm: its name, how tables show it, and its run configuration.

    Attributes
    ----------
    name : str
        One of :data:`ARM_NAMES` (also its folder under ``<out>/arms/``).
    label : str
        Display name, e.g. ``"CT + clinical (pretrained CT)"``.
    modalities : tuple of str
    ct_weights : str or None
        ``"pretrained"`` / ``"scratch"`` for arms with CT, else None.
    config : RunConfig
        The arm's ``riskfm train`` configuration (``out`` is the arm's folder).
    """

    name: str
    label: str
    modalities: tuple[str, ...]
    ct_weights: str | None
    config: Any


@dataclass
class ArmRun:
    """A finished arm: its predictions and split as written in its folder.

    Attributes
    ----------
    plan : ArmPlan
    predictions : pandas.DataFrame
        The arm's ``predictions.csv`` rows of ``mace_30d``.
    splits : pandas.Series
        ``patient_id`` -> split (``splits.csv``).
    reused : bool
        Whether the outputs of an earlier run were read instead of training.
    best_epoch : int or None
    best_val_auroc : float or None
    """

    plan: ArmPlan
    predictions: pd.DataFrame
    splits: pd.Series
    reused: bool
    best_epoch: int | None
    best_val_auroc: float | None


def table1_columns(columns: Sequence[str]) -> tuple[list[str], list[str]]:
    """Split manifest columns into CORA's Table 1 clinical variables and the other clinical columns.

    Table 1 variables are recognised by :func:`riskfm.clinical.text.canonical_variable` (age, sex,
    race, BMI, blood pressures, tobacco, hypertension, diabetes, cholesterols under common names);
    ids, paths and labels are never clinical.

    Returns
    -------
    (table1, others) : two lists of column names, in manifest order
    """
    from riskfm.clinical.text import canonical_variable
    from riskfm.data.manifest import clinical_columns

    clinical = clinical_columns(pd.DataFrame(columns=list(columns)))
    table1 = [c for c in clinical if canonical_variable(c) is not None]
    return table1, [c for c in clinical if c not in table1]


def _label(name: str, checkpoint: str | None, clinical: Any) -> str:
    weights = "scratch" if name.endswith("_scratch") or checkpoint is None else "pretrained"
    text = clinical is None or clinical.name in ("text-lm", "minilm")
    reader = "LM" if text else clinical.name
    if clinical is not None and (clinical.freeze or clinical.finetune == "linear_probe"):
        reader = f"frozen {reader}"
    clinical_label = f"Clinical {'text' if text else 'variables'} ({reader})"
    return {"ct": f"CT ({weights})", "ct_scratch": "CT (scratch)", "clinical": clinical_label,
            "ct_clinical": f"CT ({weights}) + clinical", "ct_clinical_scratch": "CT (scratch) + clinical"}[name]


def plan_arms(run: Any, arms: Sequence[str] | None, *, image_projection: bool, clinical_columns: str,
              notes: list[str]) -> list[ArmPlan]:
    """Build the arms' run configurations from the study's run configuration.

    Parameters
    ----------
    run : RunConfig
        The study config's run part.
    arms : sequence of str, optional
        Arms to run (default: ``ct``, ``clinical``, ``ct_clinical``, plus the two scratch arms when
        ``encoders.ct.checkpoint`` is given).
    image_projection : bool
        Project the pooled CT features like the text embedding (riskfm's default fusion) instead
        of concatenating them as they are (the paper: ``fusion.passthrough: [ct]``).
    clinical_columns : {"table1", "all"}
        When the config does not set ``data.clinical_columns``: Table 1 variables of the manifest
        (the paper), or every clinical column (riskfm's default).
    notes : list of str
        What the study changed or left out of the config is appended here.

    Returns
    -------
    list of ArmPlan

    Raises
    ------
    RiskfmError
        The config lacks a modality an arm needs, or a scratch arm is asked for without a checkpoint.
    """
    from riskfm.data.manifest import read_manifest_table
    from riskfm.train.config import parse_config

    source = run.source
    checkpoint = run.encoders["ct"].checkpoint if "ct" in run.encoders else None
    if arms is None:
        arms = ["ct", "clinical", "ct_clinical"] + (["ct_scratch", "ct_clinical_scratch"] if checkpoint else [])
    arms = [a for a in ARM_NAMES if a in set(arms)]
    needed = sorted({m for a in arms for m in _MODALITIES[a]})
    missing = [m for m in needed if m not in run.modalities]
    if missing:
        raise RiskfmError(
            f"{source}: modalities: the arms {arms} need {needed}, the config has {run.modalities}; add "
            f"{missing} (and encoders.ct: the CORA encoder, cora-resunet or cora-resunet-small)")
    scratch = [a for a in arms if a.endswith("_scratch")]
    if scratch and not checkpoint:
        raise RiskfmError(f"{source}: study.arms: {scratch} compare a pretrained CT encoder with one from scratch, "
                          "but encoders.ct.checkpoint is not set (without one, `ct` is already from scratch)")
    if [t for t in run.targets if t != TARGET]:
        notes.append(f"targets {run.targets}: the study predicts {TARGET} only; every arm trains that head alone")
    extra = [m for m in run.modalities if m not in needed]
    if extra:
        notes.append(f"modalities {extra} are not part of CORA's MACE study and are left out of every arm")
    if "ct" in needed and not run.encoders["ct"].name.startswith("cora-resunet"):
        notes.append(f"encoders.ct is {run.encoders['ct'].name!r}, not the CORA encoder (cora-resunet, "
                     "cora-resunet-small); the CT arms use it as configured")
    if "clinical" in needed:
        enc = run.encoders["clinical"]
        if enc.name not in ("text-lm", "minilm"):
            notes.append(f"encoders.clinical is {enc.name!r}, not a language model (text-lm): the clinical "
                         "variables are not read as text behind CORA's prompt")
        elif not (enc.freeze or enc.finetune == "linear_probe"):
            notes.append("encoders.clinical is trained (freeze: false); the paper keeps its language model frozen")
    base = run.model_dump(mode="json")
    table1 = None
    if "clinical" in needed and run.data.clinical_columns is None and clinical_columns == "table1":
        table1, others = table1_columns(read_manifest_table(run.manifest, na_values=run.data.na_values).columns)
        if not table1:
            raise RiskfmError(f"{run.manifest}: no column is one of CORA's Table 1 clinical variables (age, sex, "
                              "race, bmi, sbp, dbp, tobacco, hypertension, diabetes, total_cholesterol, ldl, hdl, "
                              "or a common alias); set data.clinical_columns, or study.clinical_columns: all")
        if others:
            notes.append(f"{len(others)} clinical column(s) of the manifest are not Table 1 variables and are not "
                         f"given to the language model: {others} (set data.clinical_columns to choose)")
    plans = []
    for name in arms:
        mods = _MODALITIES[name]
        data = json.loads(json.dumps(base))
        data["out"] = str(Path(run.out) / "arms" / name)
        data["modalities"] = list(mods)
        data["targets"] = [TARGET]
        if table1 is not None and "clinical" in mods:
            # Only arms that read the clinical variables get them: an arm's config (its identity, and
            # so whether a finished run is reused) must not depend on which other arms are run.
            data["data"]["clinical_columns"] = table1
        data["encoders"] = {m: data["encoders"][m] for m in mods}  # from the copy: base stays intact
        if "ct" in mods and name.endswith("_scratch"):
            data["encoders"]["ct"]["checkpoint"] = None
        passthrough = [m for m in base["fusion"].get("passthrough", []) if m in mods]
        if "ct" in mods and not image_projection and "ct" not in passthrough:
            passthrough.append("ct")
        data["fusion"]["passthrough"] = passthrough
        weights = None if "ct" not in mods else ("pretrained" if data["encoders"]["ct"]["checkpoint"] else "scratch")
        label = _label(name, checkpoint, run.encoders.get("clinical"))
        plans.append(ArmPlan(name, label, mods, weights, parse_config(data, f"{source} (arm {name})")))
    return plans


def _identity(cfg: Any) -> dict:
    """Return the arm configuration that decides its results (progress and loader settings left out)."""
    data = cfg.model_dump(mode="json")
    for dotted in _NOT_IDENTITY:
        section, key = dotted.split(".")
        data.get(section, {}).pop(key, None)
    return data


def _fingerprint(cfg: Any) -> dict:
    from riskfm.train.run import load_cohort
    from riskfm.train.run_folder import run_fingerprint

    cohort = load_cohort(cfg)
    files = [p for col in ("ecg_path", "ct_path") for p in cohort.df[col]]
    fp = run_fingerprint(cfg.model_dump(mode="json"), cfg.manifest, files)
    return {k: v for k, v in fp.items() if k != "versions"}


def _finished(plan: ArmPlan) -> bool:
    """Whether the arm's folder holds a finished run of exactly this arm configuration."""
    out = Path(plan.config.out)
    needed = [MARKER, "predictions.csv", "splits.csv", "model.pt"]
    if not all((out / f).is_file() for f in needed) or (out / ".riskfm.lock").exists():
        return False
    try:
        marker = json.loads((out / MARKER).read_text())
    except (OSError, ValueError):
        return False
    return marker.get("config") == _identity(plan.config) and marker.get("fingerprint") == _fingerprint(plan.config)


def _read(plan: ArmPlan, reused: bool) -> ArmRun:
    from riskfm.tables import read_table

    out = Path(plan.config.out)
    preds = read_table(out / "predictions.csv", dtype={"patient_id": str})
    preds = preds[preds["target"] == TARGET].reset_index(drop=True)
    splits = read_table(out / "splits.csv", dtype={"patient_id": str}).set_index("patient_id")["split"]
    marker = json.loads((out / MARKER).read_text())
    return ArmRun(plan, preds, splits, reused, marker.get("best_epoch"), marker.get("best_val_auroc"))


def run_arm(plan: ArmPlan) -> ArmRun:
    """Train and evaluate one arm with :func:`riskfm.train.run.run_training`, or reuse its finished run.

    Returns
    -------
    ArmRun
        Read back from the arm's folder in both cases, so a reused arm and a fresh one give the
        study the same inputs.
    """
    from riskfm.progress import status
    from riskfm.train.run import run_training

    out = Path(plan.config.out)
    if _finished(plan):
        status(f"arm {plan.name}: reusing the finished run in {out}")
        return _read(plan, reused=True)
    status(f"arm {plan.name}: training {plan.label} in {out}")
    (out / MARKER).unlink(missing_ok=True)
    result = run_training(plan.config)
    marker = {"arm": plan.name, "label": plan.label, "config": _identity(plan.config),
              "fingerprint": _fingerprint(plan.config), "best_epoch": int(result.fit.best_epoch),
              "best_val_auroc": float(result.fit.best_metric)}
    from riskfm.recipes.result import jsonable

    (out / MARKER).write_text(json.dumps(jsonable(marker), indent=2) + "\n")
    return _read(plan, reused=False)


def check_same_splits(runs: Sequence[ArmRun]) -> None:
    """Check that every patient is in the same split in every arm that kept them.

    Arms read the same manifest with the same split seed; their cohorts can still differ when a
    CT file is missing or implausible (the CT arms exclude that patient, the clinical arm keeps
    them), and a stratified split of a different cohort is a different split.

    Raises
    ------
    RiskfmError
        Naming the first disagreeing patient, the arms and what to do.
    """
    first = runs[0]
    for other in runs[1:]:
        common = first.splits.index.intersection(other.splits.index)
        a, b = first.splits.loc[common], other.splits.loc[common]
        differ = common[(a != b).to_numpy()]
        if len(differ):
            pid = differ[0]
            only = len(first.splits.index.symmetric_difference(other.splits.index))
            raise RiskfmError(
                f"arms {first.plan.name!r} and {other.plan.name!r} split the cohort differently ({len(differ)} "
                f"patients, e.g. {pid!r}: {a.loc[pid]} vs {b.loc[pid]}): their cohorts differ by {only} patient(s) "
                f"(see exclusions.csv in {first.plan.config.out} and {other.plan.config.out}), so the stratified "
                "split differs; keep those patients in every arm (data.on_missing_file: missing) or remove them "
                "from the manifest")
