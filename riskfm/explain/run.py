"""Explain a trained run: the figures ``riskfm explain RUN_DIR --patients ...`` writes.

Every file goes to a folder of the explained target, ``OUT/<target>/`` (``OUT`` defaults to
``RUN_DIR/explain``; e.g. ``RUN_DIR/explain/mace_30d/ecg_paper_P00012.png``), so explaining a
second target (``stenosis_lad``) writes beside the first instead of over it. Explaining the same
target again replaces that target's files. For each chosen patient::

    ecg_paper_<pid>.png        12-lead print-out (25 mm/s, 10 mm/mV) with the ECG attribution overlaid
    ecg_median_beat_<pid>.png  the attribution in median-beat space (R peaks by neurokit2 on lead II)
    ct_<pid>.png               axial / coronal / sagittal slices through the peak and a MIP, map over CT
    clinical_<pid>.png         attribution per clinical variable
    modalities_<pid>.png       Shapley value of ECG, CT and clinical data

and for the cohort (patients of ``cohort_splits`` in ``predictions.csv``, at most ``cohort_size``)::

    modalities_cohort.png / .csv        mean Shapley value per modality
    median_beats_<target>.png / .csv    median beats of high- vs low-risk patients, CI bands, shading
                                        where they differ (Welch t-test, Benjamini-Hochberg)
    sanity_randomisation.png, sanity_deletion_insertion.png   with ``sanity=True`` (first patient's ECG)
    summary.json                        predictions, per-variable and per-modality values, files, problems

High risk is the top fraction of patients equal to the training prevalence of the target
(:func:`riskfm.evaluate.risk_groups.incidence_threshold` on the run's training predictions).

Progress goes to stderr: a line per phase (loading the run, each modality's attributions, the
cohort figures, the sanity checks) and bars over the records read, the patients drawn and the
cohort; ``riskfm --quiet`` / ``RISKFM_QUIET=1`` or ``progress=False`` silence it.
"""

from __future__ import annotations

import json
import logging
import os
import re
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from riskfm.ecg.beats import BeatDetectionError
from riskfm.explain.api import canonical_method, explain, input_kind
from riskfm.explain.targets import resolve_target

log = logging.getLogger(__name__)

__all__ = ["ExplainRunResult", "explain_run", "target_folder"]


def target_folder(out: str | os.PathLike, target: str) -> Path:
    """Return the folder of one target's files: ``out / <target>`` (unsafe characters become ``_``)."""
    return Path(out) / (re.sub(r"[^A-Za-z0-9_.-]+", "_", str(target)).strip("._") or "target")


class _Progress:
    """Status lines and bars of one explain run (nothing when ``enabled`` is False or under ``--quiet``)."""

    def __init__(self, enabled: bool) -> None:
        from riskfm.progress import is_quiet

        self.enabled = enabled and not is_quiet()

    def say(self, message: str) -> None:
        if self.enabled:
            from riskfm.progress import status

            status(message)

    def bar(self, iterable: Any = None, **kwargs: Any):
        from riskfm.progress import progress

        return progress(iterable, enabled=self.enabled, **kwargs)


@dataclass
class ExplainRunResult:
    """Files written (in ``out_dir``, the target's folder) and the numbers behind them (also in ``summary.json``)."""

    out_dir: Path
    files: list[Path] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)


def _clinical_mode(model: Any) -> str | None:
    if "clinical" not in model.encoders:
        return None
    return "text" if model.input_keys["clinical"] == "clinical_text" else "tabular"


def _dataset(model: Any, cohort: Any, tabular: Any, report: _Progress | None = None):
    from riskfm.data.dataset import RiskDataset
    from riskfm.train.run import prepare_for

    report = report or _Progress(False)
    prepared = prepare_for(cohort, dict(model.encoders.items()), progress=report.enabled)
    ds = RiskDataset(cohort, prepared, clinical=_clinical_mode(model), tabular=tabular)
    enc = model.encoders["clinical"] if "clinical" in model.encoders else None
    texts = [t for t in ds.texts if t is not None]
    if enc is not None and hasattr(enc, "precompute") and texts and getattr(enc, "freeze", False):
        report.say(f"encoding {len(texts)} clinical texts")
        enc.precompute(texts)
    return ds, prepared


def _display_ecg(path: str, spec: Any) -> np.ndarray:
    """Return the record ``[leads, T]`` in mV on the encoder's time grid.

    Same rate, length and filters as the encoder's input, without normalisation.
    """
    from riskfm.ecg.io import read_ecg
    from riskfm.ecg.preprocess import prepare_ecg

    x, _ = prepare_ecg(read_ecg(path), replace(spec, representation="raw", normalisation="none"))
    return x


def _risk_groups(preds: pd.DataFrame, target: str, patients: list[str]) -> tuple[np.ndarray, float, str]:
    """Return high-risk flags of ``patients`` (order kept), the threshold and how it was chosen."""
    from riskfm.evaluate.risk_groups import incidence_threshold

    rows = preds[preds["target"] == target]
    train = rows[rows["split"] == "train"].dropna(subset=["y_true"])
    ref, how = (train, "training") if len(train) else (rows.dropna(subset=["y_true"]), "whole-run")
    prevalence = float(ref["y_true"].mean()) if len(ref) else float("nan")
    if 0.0 < prevalence < 1.0:
        threshold = incidence_threshold(ref["y_prob"].to_numpy(float), prevalence)
        how = f"top {prevalence:.1%} of predicted risk ({how} prevalence of {target})"
    else:
        threshold = float(rows["y_prob"].median())
        how = "median predicted risk (no prevalence available)"
    p = rows.drop_duplicates("patient_id").set_index("patient_id")["y_prob"].reindex(patients).to_numpy(float)
    return p >= threshold, threshold, how


def explain_run(run_dir: str | os.PathLike, patients: list[str], out: str | os.PathLike | None = None, *,
                target: Any = None, manifest: str | os.PathLike | None = None, ecg_method: str | None = None,
                ct_method: str | None = None, clinical_method: str | None = None,
                cohort_splits: tuple[str, ...] = ("test", "external"), cohort_size: int = 200,
                n_steps: int = 50, sanity: bool = False, seed: int = 0, dpi: int = 300,
                progress: bool = True) -> ExplainRunResult:
    """Write the explanation figures of ``patients`` of a trained run (see the module docstring).

    Parameters
    ----------
    run_dir : a finished run folder (``model.pt``, ``predictions.csv``, ``config.yaml``).
    patients : patient ids of the run's manifest.
    out : output folder (default ``run_dir/explain``); the files go to its subfolder named after the
        target (:func:`target_folder`), which ``ExplainRunResult.out_dir`` gives.
    target : explained target (default ``mace_30d`` when predicted).
    manifest : patients' manifest (default: the run's ``manifest``).
    ecg_method, ct_method, clinical_method : methods (defaults: integrated_gradients, gradcam,
        layer_integrated_gradients / feature_ablation).
    cohort_splits, cohort_size : patients of the cohort figures (a seeded sample when more; 0: no
        cohort figures).
    n_steps : Integrated Gradients steps (ECG, CT, text).
    sanity : also run the cascading randomisation and deletion / insertion checks on the first patient.
    dpi : resolution of the PNGs (300 for print; the 12-lead print-out is then 3200 x 1700 pixels).
    progress : report each phase and bars over records, patients and cohort on stderr (silent
        anyway under ``riskfm --quiet`` / ``RISKFM_QUIET=1``).

    Raises
    ------
    FileNotFoundError
        ``run_dir`` has no ``model.pt``, or the manifest is missing.
    ValueError
        A patient id is not in the manifest, or no patient could be prepared.
    """
    from riskfm.data.cohort import Cohort
    from riskfm.data.sample import collate_samples
    from riskfm.plots.style import save_figure
    from riskfm.train.run import load_run_model

    run_dir = Path(run_dir)
    if not (run_dir / "model.pt").is_file():
        raise FileNotFoundError(f"{run_dir} is not a finished run: no model.pt")
    if not patients:
        raise ValueError("give at least one patient id (--patients)")
    report = _Progress(progress)
    report.say(f"loading the model of {run_dir}")
    loaded = load_run_model(run_dir)
    model, cfg, tabular = loaded.model, loaded.config, loaded.tabular
    clinical_cols, types = loaded.clinical_columns, loaded.clinical_types
    methods = {}
    for modality, method in (("ecg", ecg_method), ("ct", ct_method), ("clinical", clinical_method)):
        if modality in model.encoders:  # a typo fails now, not after minutes
            methods[modality] = canonical_method(input_kind(model, modality), method)
    manifest = Path(manifest or cfg.manifest)
    tgt = resolve_target(model, target)
    out_dir = target_folder(Path(out) if out is not None else run_dir / "explain", tgt.name)
    out_dir.mkdir(parents=True, exist_ok=True)
    report.say(f"explaining {tgt.name} for {len(patients)} patient{'s' * (len(patients) != 1)} -> {out_dir}")
    result = ExplainRunResult(out_dir)
    problems: list[str] = []
    summary: dict[str, Any] = {"run_dir": str(run_dir), "manifest": str(manifest), "target": tgt.name,
                               "output": "logit", "patients": {}, "problems": problems}

    declared = {c: types.get(c) for c in clinical_cols} if "clinical" in cfg.modalities else None
    cohort = Cohort.from_manifest(manifest, modalities=cfg.modalities, on_missing_file="missing",
                                  clinical=declared, na_values=cfg.data.na_values, allow_empty_modalities=True)
    known = set(cohort.patient_ids)
    unknown = [p for p in patients if p not in known]
    if unknown:
        raise ValueError(f"patients not in {manifest}: {unknown}; e.g. {sorted(known)[:5]}")

    def save(fig: Any, name: str) -> None:
        result.files.append(save_figure(fig, out_dir / name, dpi=dpi))

    # -------------------------------------------------------------------------- chosen patients
    sub = cohort.subset(patients)
    ds, prepared = _dataset(model, sub, tabular, report)
    for fail in prepared.failures:
        problems.append(f"{fail['patient_id']}: {fail['reason']}")
    order = [p for p in patients if p in set(ds.patient_ids)]
    if not order:
        raise ValueError(f"none of the patients could be prepared: {problems}")
    index = {p: i for i, p in enumerate(ds.patient_ids)}
    batch = collate_samples([ds[index[p]] for p in order])
    records = [ds.clinical_records[index[p]] for p in order]
    with torch.no_grad():
        model.eval()
        probs = model.predict_proba(batch)[tgt.name].cpu().numpy()
    per_patient = {p: {"prediction": float(probs[k])} for k, p in enumerate(order)}
    summary["patients"] = per_patient
    df = sub.df.set_index("patient_id")

    def attribute(modality: str, method: str | None, **kw: Any) -> Any:
        # A modality none of the chosen patients has is a problem to report, not a reason to stop.
        if modality not in model.encoders:
            return None
        report.say(f"{modality} attributions ({methods[modality].replace('_', ' ')}) for {len(order)} "
                   f"patient{'s' * (len(order) != 1)}")
        try:
            att = explain(model, batch, modality, method, tgt.name, **kw)
        except ValueError as exc:
            problems.append(f"{modality}: {exc}")
            return None
        summary[f"{modality}_method"] = att.method
        return att

    ecg_att = attribute("ecg", ecg_method, n_steps=n_steps)
    if ecg_att is not None:
        enc, att = model.encoders["ecg"], ecg_att
        for k, pid in enumerate(report.bar(order, desc="drawing ECG figures", unit="patient")):
            if not batch["ecg_present"][k]:
                continue
            per_lead = att.per_lead()[k]
            per_patient[pid]["ecg_per_lead"] = {lead: round(float(v), 8) for lead, v in zip(att.leads, per_lead)}
            _ecg_figures(att, k, pid, str(df.loc[pid, "ecg_path"]), enc.input_spec, save, problems)
    att = attribute("ct", ct_method, n_steps=n_steps)
    if att is not None:
        for k, pid in enumerate(report.bar(order, desc="drawing CT figures", unit="patient")):
            if batch["ct_present"][k] and pid in prepared.ct_hu:
                per_patient[pid]["ct_peak_voxel"] = list(att.peak(k))
                save(att.plot(k, hu=prepared.ct_hu[pid].astype(np.float32)), f"ct_{pid}.png")
    kw = {"n_steps": n_steps} if _clinical_mode(model) == "text" else {}
    names = tabular.feature_names if tabular is not None else None
    att = attribute("clinical", clinical_method, records=records, feature_names=names, **kw)
    if att is not None:
        for k, pid in enumerate(report.bar(order, desc="drawing clinical figures", unit="patient")):
            if not np.isfinite(att.values[k]).any():
                continue
            per_patient[pid]["clinical"] = {n: float(v) for n, v in zip(att.feature_names, att.values[k])
                                            if np.isfinite(v)}
            save(att.plot(k), f"clinical_{pid}.png")
    report.say("modality Shapley values")
    mod = explain(model, batch, "modalities", None, tgt.name, seed=seed)
    for k, pid in enumerate(report.bar(order, desc="drawing modality figures", unit="patient")):
        per_patient[pid]["modalities"] = {m: round(float(v), 8) for m, v in zip(mod.feature_names, mod.values[k])}
        save(mod.plot(k), f"modalities_{pid}.png")

    # -------------------------------------------------------------------------- cohort figures
    preds_path = run_dir / "predictions.csv"
    if cohort_size <= 0:
        summary["cohort"] = {"splits": list(cohort_splits), "n": 0}
    elif preds_path.is_file():
        preds = pd.read_csv(preds_path, dtype={"patient_id": str})
        pool = preds[(preds["target"] == tgt.name) & preds["split"].isin(cohort_splits)]["patient_id"]
        pool = [p for p in dict.fromkeys(pool) if p in known]
        if len(pool) > cohort_size:
            pool = sorted(np.random.default_rng(seed).choice(pool, cohort_size, replace=False).tolist())
        summary["cohort"] = {"splits": list(cohort_splits), "n": len(pool)}
        if pool:
            report.say(f"cohort figures: {len(pool)} patients of {'/'.join(cohort_splits)}")
            _cohort_modalities(model, cohort, tabular, pool, tgt.name, seed, save, out_dir, summary, result,
                               report)
            _cohort_median_beats(cohort, preds, pool, tgt.name, model, save, out_dir, summary, problems, result,
                                 report)
    else:
        problems.append(f"{preds_path} not found: no cohort figures")

    if sanity and ecg_att is not None and batch["ecg_present"][0]:
        from riskfm.explain.sanity import cascading_randomisation, deletion_insertion

        report.say(f"sanity checks on {order[0]}'s ECG: cascading randomisation")
        rand = cascading_randomisation(model, batch, "ecg", ecg_method, tgt.name, patient=0, seed=seed,
                                       n_steps=n_steps, progress=report.enabled)
        save(rand.plot(), "sanity_randomisation.png")
        report.say(f"sanity checks on {order[0]}'s ECG: deletion / insertion curves")
        curves = deletion_insertion(model, batch, ecg_att, patient=0, target=tgt.name, seed=seed)
        save(curves.plot(), "sanity_deletion_insertion.png")
        summary["sanity"] = {"randomisation": rand.to_frame().to_dict("records"), "deletion_insertion": curves.auc}

    summary["files"] = [str(p) for p in result.files]
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=float))
    result.summary = summary
    return result


def _ecg_figures(att: Any, k: int, pid: str, path: str, spec: Any, save: Any, problems: list[str]) -> None:
    """Save the 12-lead print-out and the median-beat figure of patient ``k``."""
    from riskfm.explain.beat_space import paste_beats
    from riskfm.plots.ecg_paper import plot_ecg_paper

    title = f"{pid}: {att.target}, {att.method.replace('_', ' ')}"
    try:
        display = _display_ecg(path, spec)
    except (ValueError, OSError) as exc:
        problems.append(f"{pid}: ECG display failed: {exc}")
        return
    if att.representation == "median_beat":
        # The model read the median beat riskfm's own detector built; spread its map over those beats.
        from riskfm.ecg.beats import detect_r_peaks

        before = int(round(att.beat_window_s[0] * att.fs))
        overlay = paste_beats(att.values[k], detect_r_peaks(display, att.fs), display.shape[1], before)
    else:
        overlay = att.values[k]
    save(plot_ecg_paper(display, att.fs, att.leads, attribution=overlay, title=title), f"ecg_paper_{pid}.png")
    try:
        save(att.plot(k, kind="median_beat", title=title), f"ecg_median_beat_{pid}.png")
    except BeatDetectionError as exc:
        problems.append(f"{pid}: no median-beat figure: {exc}")


def _cohort_modalities(model, cohort, tabular, pool, target, seed, save, out_dir, summary, result,
                       report: _Progress) -> None:
    from riskfm.data.sample import collate_samples
    from riskfm.explain.attribution import ModalityAttribution

    ds, _ = _dataset(model, cohort.subset(pool), tabular, report)
    parts = []
    for start in report.bar(range(0, len(ds), 32), desc=f"modality Shapley values of {len(ds)} patients",
                            unit="batch"):
        batch = collate_samples([ds[i] for i in range(start, min(start + 32, len(ds)))])
        parts.append(explain(model, batch, "modalities", None, target, seed=seed))
    meta = {"f_all": np.concatenate([p.meta["f_all"] for p in parts]),
            "f_none": np.concatenate([p.meta["f_none"] for p in parts]),
            "available": np.concatenate([p.meta["available"] for p in parts])}
    allm = ModalityAttribution("modalities", parts[0].method, target, parts[0].output,
                               np.concatenate([p.values for p in parts]), [q for p in parts for q in p.patient_ids],
                               feature_names=parts[0].feature_names, meta=meta)
    allm.to_frame().to_csv(out_dir / "modalities_cohort.csv", index=False)
    result.files.append(out_dir / "modalities_cohort.csv")
    save(allm.plot(None), "modalities_cohort.png")
    summary["cohort"]["modalities"] = allm.cohort_mean().to_dict("records")


def _cohort_median_beats(cohort, preds, pool, target, model, save, out_dir, summary, problems, result,
                         report: _Progress) -> None:
    from riskfm.explain.waveforms import DISPLAY_SPEC, cohort_median_beats, compare_median_beats

    if "ecg" not in model.encoders:
        return
    df = cohort.df.set_index("patient_id")
    with_ecg = [p for p in pool if df.loc[p, "ecg_path"]]
    high, threshold, how = _risk_groups(preds, target, with_ecg)
    beats, kept, failures = cohort_median_beats([df.loc[p, "ecg_path"] for p in with_ecg], DISPLAY_SPEC,
                                                progress=report.enabled)
    problems += [f"median beat: {f['path']}: {f['reason']}" for f in failures]
    high = high[kept]
    try:
        comp = compare_median_beats(beats[high], beats[~high], fs=DISPLAY_SPEC.fs, leads=DISPLAY_SPEC.leads,
                                    target=target)
    except ValueError as exc:
        problems.append(f"no median-beat comparison: {exc}")
        return
    comp.to_frame().to_csv(out_dir / f"median_beats_{target}.csv", index=False)
    result.files.append(out_dir / f"median_beats_{target}.csv")
    save(comp.plot(), f"median_beats_{target}.png")
    summary["cohort"]["median_beats"] = {"threshold": threshold, "rule": how, "n_high": comp.n_high,
                                         "n_low": comp.n_low, "significant_share": float(comp.significant.mean())}
    if failures:
        warnings.warn(f"{len(failures)} cohort ECGs gave no median beat (see summary.json problems)", stacklevel=2)
