"""A whole run from a config: cohort -> splits -> encoders -> RiskModel -> fit -> predictions, metrics, figures.

Outputs in ``cfg.out``::

    config.yaml        the resolved configuration
    cohort_report.txt  patients kept / excluded (with reasons), modality availability, label counts
    exclusions.csv     one row per excluded patient and why
    splits.csv         patient_id -> split
    history.csv        per-epoch training loss and validation AUROC
    checkpoints/       last.ckpt (resume) and best.ckpt
    model.pt           the best model as a bundle that ``riskfm predict`` loads
    predictions.csv    patient_id, split, target, y_true, y_prob (+ site, time_to_event_days, event)
    metrics.json       {split: {target: {auroc, auroc_ci, n, n_pos, ...}}}
    figures/           ROC, calibration and cumulative-incidence PNGs
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from riskfm.data.cohort import Cohort
from riskfm.data.dataset import PreparedCohort, RiskDataset, prepare_cohort
from riskfm.data.manifest import STENOSIS_TARGETS
from riskfm.data.sample import collate_samples
from riskfm.data.splits import make_splits
from riskfm.encoders import create_encoder
from riskfm.models.fusion import ConcatFusion
from riskfm.models.heads import build_head
from riskfm.models.risk_model import RiskModel, encoder_input_key
from riskfm.train.checkpoint import load_checkpoint, save_atomic
from riskfm.train.config import RunConfig, dump_config, parse_config
from riskfm.train.trainer import FitResult, fit, make_fabric, predict

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    out_dir: Path
    predictions: pd.DataFrame
    metrics: dict
    fit: FitResult
    cohort: Cohort
    splits: dict[str, np.ndarray]


def build_encoders(cfg: RunConfig, n_tabular_features: int | None = None) -> dict[str, torch.nn.Module]:
    """Create each modality's encoder from the registry (weights from local checkpoints only)."""
    encoders = {}
    for m in cfg.modalities:
        ec = cfg.encoders[m]
        kwargs = dict(ec.kwargs)
        if ec.name == "tabular-mlp" and n_tabular_features is not None:
            kwargs.setdefault("n_features", n_tabular_features)
        enc = create_encoder(ec.name, checkpoint=ec.checkpoint, weights_only=ec.weights_only, **kwargs)
        if getattr(enc, "modality", m) != m:
            raise ValueError(f"encoders.{m}.name: {ec.name!r} is a {enc.modality} encoder, not a {m} encoder")
        encoders[m] = enc
    return encoders


def _heads(cfg: RunConfig, in_dim: int, train_df: pd.DataFrame | None, balance: bool) -> list[torch.nn.Module]:
    def pos_weight(cols):
        if train_df is None or not balance:
            return None
        w = []
        for c in cols:
            y = train_df[c].dropna()
            pos = max(float(y.sum()), 1.0)
            # sqrt(neg/pos): helps rare labels (left main) without the instability of the full ratio
            w.append(float(np.sqrt(max(len(y) - pos, 1.0) / pos)))
        return w

    heads, stenosis_done = [], False
    for t in cfg.targets:
        if t.startswith("stenosis"):
            if not stenosis_done:  # the stenosis head always predicts all four arteries
                heads.append(build_head("stenosis", in_dim, pos_weight=pos_weight(STENOSIS_TARGETS)))
                stenosis_done = True
        elif t == "survival":
            heads.append(build_head("survival", in_dim))
        else:
            pw = pos_weight([t])
            heads.append(build_head(t, in_dim, pos_weight=None if pw is None else pw[0]))
    return heads


def build_model(cfg: RunConfig, encoders: dict[str, torch.nn.Module], train_df: pd.DataFrame | None = None
                ) -> RiskModel:
    fusion = ConcatFusion({m: e.feature_dim for m, e in encoders.items()}, proj_dim=cfg.fusion.proj_dim,
                          modality_dropout=cfg.fusion.modality_dropout, dropout=cfg.fusion.dropout,
                          norm=cfg.fusion.norm)
    model = RiskModel(encoders, fusion, _heads(cfg, fusion.out_dim, train_df, cfg.train.balance_positives))
    for m in cfg.modalities:
        ec = cfg.encoders[m]
        if ec.freeze or ec.finetune == "linear_probe":
            model.freeze_encoder(m)
        elif ec.finetune == "partial":
            from riskfm.ecg.finetune import apply_partial_unfreeze

            apply_partial_unfreeze(model.encoders[m], ec.unfreeze_last_k)
    return model


def _clinical_mode(encoders: dict[str, torch.nn.Module]) -> str | None:
    if "clinical" not in encoders:
        return None
    return "text" if encoder_input_key("clinical", encoders["clinical"]) == "clinical_text" else "tabular"


def _tabular(cfg: RunConfig, cohort: Cohort, train_ids) -> Any:
    from riskfm.clinical.tabular import TabularPreprocessor

    cols = cohort.clinical_columns
    train = cohort.df[cohort.df["patient_id"].isin(set(train_ids))][cols]
    return TabularPreprocessor().fit(train)


def load_cohort(cfg: RunConfig) -> Cohort:
    cohort = Cohort.from_manifest(cfg.manifest, modalities=cfg.modalities, on_missing_file=cfg.data.on_missing_file)
    if cfg.data.clinical_columns is not None:
        unknown = [c for c in cfg.data.clinical_columns if c not in cohort.clinical_columns]
        if unknown:
            raise ValueError(f"data.clinical_columns: {unknown} are not clinical columns of {cfg.manifest} "
                             f"(available: {cohort.clinical_columns})")
        cohort.clinical_columns = list(cfg.data.clinical_columns)
    return cohort


def prepare_for(cohort: Cohort, encoders: dict[str, torch.nn.Module], n_workers: int | None = None,
                progress: bool = False, ecg_store: str | None = None, ecg_quality: bool = False) -> PreparedCohort:
    """Read + prepare every file for the encoders' input specs; unreadable files exclude their patient."""
    prepared = prepare_cohort(
        cohort,
        ecg_spec=encoders["ecg"].input_spec if "ecg" in encoders else None,
        ct_spec=encoders["ct"].input_spec if "ct" in encoders else None,
        n_workers=n_workers, progress=progress, ecg_store=ecg_store, ecg_quality=ecg_quality,
    )
    cohort.exclude(prepared.failures)
    return prepared


def _precompute_text(encoders: dict[str, torch.nn.Module], datasets: list[RiskDataset]) -> None:
    enc = encoders.get("clinical")
    if enc is not None and hasattr(enc, "precompute"):
        texts = sorted({t for d in datasets for t in d.texts if t is not None})
        if texts:
            enc.precompute(texts)


def run_training(cfg: RunConfig | dict) -> RunResult:
    """Train and evaluate one configuration end to end; see the module docstring for the outputs."""
    if isinstance(cfg, dict):
        cfg = parse_config(cfg)
    from riskfm.ecg.finetune import apply_finetune_recipes

    for note in apply_finetune_recipes(cfg):
        log.info("fine-tuning recipe: %s", note)
    out = Path(cfg.out)
    fabric = make_fabric(cfg.train)
    rank0 = fabric.is_global_zero
    if rank0:
        out.mkdir(parents=True, exist_ok=True)
        dump_config(cfg, out / "config.yaml")
    cohort = load_cohort(cfg)
    splits = make_splits(cohort.df, external_sites=cfg.split.external_sites, test_fraction=cfg.split.test_fraction,
                         val_fraction=cfg.split.val_fraction, train_fraction=cfg.split.train_fraction,
                         seed=cfg.split.seed)
    tabular = None
    if "clinical" in cfg.modalities and cfg.encoders["clinical"].name == "tabular-mlp":
        tabular = _tabular(cfg, cohort, splits["train"])
    encoders = build_encoders(cfg, None if tabular is None else len(tabular.feature_names))
    prepared = prepare_for(cohort, encoders, cfg.data.n_workers, progress=cfg.train.progress and rank0,
                           ecg_store=cfg.data.ecg_store, ecg_quality=cfg.data.ecg_quality_filter)
    splits = {k: np.asarray([p for p in v if p in set(cohort.patient_ids)]) for k, v in splits.items()}
    mode = _clinical_mode(encoders)
    datasets = {k: RiskDataset(cohort.subset(v), prepared, clinical=mode, tabular=tabular,
                               augment=cfg.train.augment and k == "train", seed=cfg.train.seed)
                for k, v in splits.items()}
    for k, d in datasets.items():
        if len(d) == 0:
            raise ValueError(f"split {k!r} is empty after exclusions; check the manifest and split settings")
    _precompute_text(encoders, list(datasets.values()))
    train_df = datasets["train"].frame()
    model = build_model(cfg, encoders, train_df)
    encoder_lr = {m: cfg.encoders[m].lr for m in cfg.modalities if cfg.encoders[m].lr}
    encoder_opts = {m: {"weight_decay": cfg.encoders[m].weight_decay,
                        "layerwise_lr_decay": cfg.encoders[m].layerwise_lr_decay} for m in cfg.modalities}
    result = fit(fabric, model, datasets["train"], datasets["val"], cfg.train, out, encoder_lr=encoder_lr,
                 run_config=cfg.model_dump(mode="json"), encoder_opts=encoder_opts)

    frames = []
    for name, ds in datasets.items():
        loader = fabric.setup_dataloaders(torch.utils.data.DataLoader(
            ds, batch_size=cfg.train.batch_size, shuffle=False,
            collate_fn=collate_samples))
        frames.append(predict(fabric, model, loader, ds).assign(split=name))
    preds = pd.concat(frames, ignore_index=True)
    preds = preds[["patient_id", "split", "target", "y_true", "y_prob", "site", "time_to_event_days", "event"]]
    metrics: dict = {}
    if rank0:
        metrics = write_run_outputs(cfg, out, preds, cohort, splits, result, model, tabular)
    fabric.barrier()
    return RunResult(out, preds, metrics, result, cohort, splits)


def write_run_outputs(cfg: RunConfig, out: Path, preds: pd.DataFrame, cohort: Cohort,
                      splits: dict[str, np.ndarray], result: FitResult, model: RiskModel, tabular: Any) -> dict:
    from riskfm.evaluate import evaluate

    preds.to_csv(out / "predictions.csv", index=False)
    cov_cols = [c for c in ("sex", "age") if c in cohort.df.columns]
    metrics = evaluate(preds[preds["target"] != "risk_score"], out,
                       spec={"ci": cfg.evaluate.ci, "n_boot": cfg.evaluate.n_boot, "seed": cfg.split.seed,
                             "figures": cfg.evaluate.figures, "subgroup_bins": {"age": [50, 65]}},
                       covariates=cohort.df[["patient_id", *cov_cols]] if cov_cols else None,
                       title=f"riskfm run: {out.name}")
    (out / "cohort_report.txt").write_text(cohort.report() + "\n")
    cohort.exclusions.to_csv(out / "exclusions.csv", index=False)
    pd.DataFrame([(pid, k) for k, v in splits.items() for pid in v], columns=["patient_id", "split"]).to_csv(
        out / "splits.csv", index=False)
    pd.DataFrame(result.history).to_csv(out / "history.csv", index=False)
    save_atomic({"model": model.checkpoint_state_dict(), "config": cfg.model_dump(mode="json"),
                 "tabular": None if tabular is None else tabular.to_dict(),
                 "clinical_columns": list(cohort.clinical_columns), "targets": model.targets,
                 "best_epoch": result.best_epoch, "best_val_auroc": result.best_val_auroc}, out / "model.pt")
    return metrics


def load_run_model(run_dir: str | os.PathLike) -> tuple[RiskModel, RunConfig, Any, list[str]]:
    """Rebuild a trained model from ``run_dir/model.pt`` (no network, weights_only loading)."""
    bundle = load_checkpoint(Path(run_dir) / "model.pt")
    cfg = parse_config(bundle["config"], str(Path(run_dir) / "model.pt"))
    tabular = None
    if bundle.get("tabular") is not None:
        from riskfm.clinical.tabular import TabularPreprocessor

        tabular = TabularPreprocessor.from_dict(bundle["tabular"])
    for m in cfg.modalities:  # the bundle holds every weight; don't reload encoder checkpoints
        cfg.encoders[m].checkpoint = None
    encoders = build_encoders(cfg, None if tabular is None else len(tabular.feature_names))
    model = build_model(cfg, encoders)
    model.load_checkpoint_state_dict(bundle["model"])
    model.eval()
    return model, cfg, tabular, bundle.get("clinical_columns", [])


def predict_manifest(run_dir: str | os.PathLike, manifest: str | os.PathLike, *, batch_size: int = 32,
                     on_missing_file: str = "exclude") -> tuple[pd.DataFrame, Cohort]:
    """Apply a trained run to the patients of another manifest (labels may be empty)."""
    from lightning_fabric import Fabric

    model, cfg, tabular, clinical_cols = load_run_model(run_dir)
    cohort = Cohort.from_manifest(manifest, modalities=cfg.modalities, on_missing_file=on_missing_file)
    missing = [c for c in clinical_cols if c not in cohort.df.columns]
    if missing and "clinical" in cfg.modalities:
        raise ValueError(f"{manifest}: clinical columns the model was trained with are missing: {missing}")
    cohort.clinical_columns = list(clinical_cols) if "clinical" in cfg.modalities else cohort.clinical_columns
    prepared = prepare_for(cohort, dict(model.encoders.items()))
    ds = RiskDataset(cohort, prepared, clinical=_clinical_mode(dict(model.encoders.items())), tabular=tabular)
    _precompute_text(dict(model.encoders.items()), [ds])
    fabric = Fabric(accelerator="cpu", devices=1)
    loader = torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=False, collate_fn=collate_samples)
    preds = predict(fabric, model, loader, ds).assign(split="predict")
    return preds[["patient_id", "split", "target", "y_true", "y_prob", "site", "time_to_event_days", "event"]], cohort
