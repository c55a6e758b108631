"""A whole run from a config: cohort -> splits -> encoders -> RiskModel -> fit -> predictions, metrics, figures.

Outputs in ``cfg.out``::

    config.yaml        the resolved configuration
    fingerprint.json   what identifies the run (config, manifest and file hashes, seeds, versions)
    cohort_report.txt  patients kept / excluded (with reasons), modality availability, label counts,
                       the clinical variables with their types and missing shares
    clinical_columns.csv  the clinical variables used: column, type, missing share, values
    exclusions.csv     one row per excluded patient and why
    splits.csv         patient_id -> split
    history.csv        per-epoch training loss and validation AUROC
    checkpoints/       last.ckpt (resume) and best.ckpt
    model.pt           the best model as a bundle that ``riskfm predict`` loads
    predictions.csv    patient_id, split, target, y_true, y_prob (+ site, time_to_event_days, event)
    metrics.json       {split: {target: {auroc: {value, ci, method, n}, n, n_pos, ...}}}
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

from riskfm.ct.plausibility import CTPlausibility
from riskfm.data.cohort import Cohort
from riskfm.data.columns import clinical_summary, format_summary
from riskfm.data.dataset import PreparedCohort, RiskDataset, prepare_cohort
from riskfm.data.manifest import STENOSIS_TARGETS, ManifestError, read_manifest_table
from riskfm.data.splits import make_splits
from riskfm.ecg.plausibility import ECGPlausibility
from riskfm.encoders import check_encoder_kwargs, create_encoder, encoder_info
from riskfm.errors import CheckpointError
from riskfm.models.fusion import ConcatFusion
from riskfm.models.heads import build_head
from riskfm.models.risk_model import RiskModel, encoder_input_key
from riskfm.train.bundle import BundleKindError, load_bundle, save_bundle
from riskfm.train.config import RunConfig, dump_config, parse_config
from riskfm.train.engine import EngineResult, fit, make_fabric
from riskfm.train.run_folder import (
    RunLock,
    check_fingerprint,
    fingerprint_id,
    run_fingerprint,
    write_fingerprint,
)
from riskfm.train.trainer import data_loader, predict, resolve_num_workers

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    """What :func:`run_training` returns (all of it is also written to ``out_dir``).

    Attributes
    ----------
    out_dir : Path
        The run folder.
    predictions : pandas.DataFrame
        Long format: ``patient_id, split, target, y_true, y_prob, site, time_to_event_days, event``.
    metrics : dict
        ``metrics.json``: ``{split: {target: {...}}}`` (empty on ranks other than 0).
    fit : EngineResult
        Best epoch, its validation AUROC and the per-epoch history.
    cohort : Cohort
        The patients kept, with the exclusions and their reasons.
    splits : dict of str -> ndarray
        Patient ids per split (``train``, ``val``, ``test``, ``external``).
    """

    out_dir: Path
    predictions: pd.DataFrame
    metrics: dict
    fit: EngineResult
    cohort: Cohort
    splits: dict[str, np.ndarray]


def check_run_encoders(cfg: RunConfig) -> None:
    """Check a run config's encoder names, keyword names and checkpoint files without building anything.

    Errors name the config file and key (``encoders.ecg.name: unknown encoder ...``).
    """
    from riskfm.encoders import EncoderArgumentError, UnknownEncoderError, list_encoders
    from riskfm.errors import RiskfmError, did_you_mean

    source = cfg.source
    for m in cfg.modalities:
        ec = cfg.encoders[m]
        try:
            info = check_encoder_kwargs(ec.name, ec.kwargs)
        except UnknownEncoderError as exc:
            raise UnknownEncoderError(
                f"{source}: encoders.{m}.name: unknown encoder {ec.name!r}{did_you_mean(ec.name, list_encoders(m))}; "
                f"the {m} encoders are: {', '.join(list_encoders(m))}") from exc
        except EncoderArgumentError as exc:
            raise EncoderArgumentError(f"{source}: encoders.{m}.kwargs: {exc}") from exc
        except ValueError as exc:  # an input_spec mapping with unknown keys
            raise RiskfmError(f"{source}: encoders.{m}.kwargs: {exc}") from exc
        if info.modality != m:
            raise RiskfmError(f"{source}: encoders.{m}.name: {ec.name!r} is a {info.modality} encoder, not a {m} "
                              f"encoder; the {m} encoders are: {', '.join(list_encoders(m))}")
        if ec.checkpoint and "://" not in ec.checkpoint and not Path(ec.checkpoint).expanduser().is_file():
            raise FileNotFoundError(f"{source}: encoders.{m}.checkpoint: file not found: {ec.checkpoint}")


def _reads_table(encoder_name: str) -> bool:
    """Return whether a clinical encoder reads the matrix of a fitted ``TabularPreprocessor``.

    Such encoders (``tabular-mlp``, ``clinical-lm-tokens``) have a ``tabular_kwargs(preprocessor)``
    class method giving the keywords that size them for the training split's columns.
    """
    return hasattr(encoder_info(encoder_name).constructor, "tabular_kwargs")


def build_encoders(cfg: RunConfig, tabular: Any = None) -> dict[str, torch.nn.Module]:
    """Create each modality's encoder from the registry (weights from local checkpoints only).

    ``tabular``, the fitted clinical ``TabularPreprocessor`` when the clinical encoder reads the table,
    sizes that encoder (its ``tabular_kwargs``; keywords set in the config win).
    """
    encoders = {}
    for m in cfg.modalities:
        ec = cfg.encoders[m]
        kwargs = dict(ec.kwargs)
        if m == "clinical" and tabular is not None and _reads_table(ec.name):
            for key, value in encoder_info(ec.name).constructor.tabular_kwargs(tabular).items():
                kwargs.setdefault(key, value)
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
    """Assemble the RiskModel of a config: the encoders, concatenation fusion and one head per target.

    ``train_df`` (the training split's labels) sets the positive-class weights when
    ``train.balance_positives``; without it (loading a trained model) the weights come from the bundle.
    """
    fusion = ConcatFusion({m: e.feature_dim for m, e in encoders.items()}, proj_dim=cfg.fusion.proj_dim,
                          modality_dropout=cfg.fusion.modality_dropout, dropout=cfg.fusion.dropout,
                          norm=cfg.fusion.norm, passthrough=cfg.fusion.passthrough)
    model = RiskModel(encoders, fusion, _heads(cfg, fusion.out_dim, train_df, cfg.train.balance_positives))
    for m in cfg.modalities:
        ec = cfg.encoders[m]
        if ec.freeze or ec.finetune == "linear_probe":
            model.freeze_encoder(m)
        elif ec.finetune == "partial":
            from riskfm.train.finetune import apply_partial_unfreeze

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
    types = cohort.clinical_types
    return TabularPreprocessor(numeric=[c for c in cols if types.get(c) == "numeric"],
                               categorical=[c for c in cols if types.get(c) != "numeric"]).fit(train)


def load_cohort(cfg: RunConfig) -> Cohort:
    """Read the run's cohort: the manifest checked for the config's modalities, targets and clinical columns."""
    return Cohort.from_manifest(cfg.manifest, modalities=cfg.modalities, on_missing_file=cfg.data.on_missing_file,
                                targets=cfg.targets, clinical=cfg.data.clinical_columns,
                                na_values=cfg.data.na_values)


def plausibility_limits(cfg: RunConfig) -> tuple[ECGPlausibility, CTPlausibility]:
    """Return the config's ``data.checks`` as the ECG and CT plausibility limits the preparation applies."""
    return (ECGPlausibility(**cfg.data.checks.ecg.model_dump()), CTPlausibility(**cfg.data.checks.ct.model_dump()))


def cache_root(cfg: RunConfig | None) -> Path | None:
    """Return the prepared-cache root a run uses (None: prepare into memory, ``data.cache: false``)."""
    from riskfm.data.cache import default_cache_dir

    if cfg is not None and not cfg.data.cache:
        return None
    if cfg is not None and cfg.data.cache_dir:
        return Path(cfg.data.cache_dir).expanduser()
    return default_cache_dir()


def prepare_for(cohort: Cohort, encoders: dict[str, torch.nn.Module], n_workers: int | None = None,
                progress: bool = False, ecg_store: str | None = None, ecg_quality: bool = False,
                cfg: RunConfig | None = None, fabric: Any = None) -> PreparedCohort:
    """Prepare every file for the encoders' input specs, through the prepared cache unless ``data.cache`` is off.

    Unreadable or implausible files exclude their patient (counted with the reason); repairs
    (masked flat leads) are noted. Under a distributed ``fabric`` each process fills its part of
    what the cache lacks, then all serve the whole cohort from it.
    """
    ecg_checks, ct_checks = plausibility_limits(cfg) if cfg is not None else (None, None)
    part = barrier = None
    if fabric is not None and fabric.world_size > 1:
        part, barrier = (fabric.global_rank, fabric.world_size), fabric.barrier
    prepared = prepare_cohort(
        cohort,
        ecg_spec=encoders["ecg"].input_spec if "ecg" in encoders else None,
        ct_spec=encoders["ct"].input_spec if "ct" in encoders else None,
        n_workers=n_workers, progress=progress, ecg_store=ecg_store, ecg_quality=ecg_quality,
        ecg_checks=ecg_checks, ct_checks=ct_checks, cache_dir=cache_root(cfg), part=part, barrier=barrier,
    )
    cohort.exclude(prepared.failures)
    cohort.note(prepared.notes)
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
    from riskfm.train.finetune import with_finetune_recipes

    check_run_encoders(cfg)  # a typo in an encoder name or keyword fails before any file is read
    cfg, notes = with_finetune_recipes(cfg)  # a copy: the caller's config is never changed
    for note in notes:
        log.info("fine-tuning recipe: %s", note)
    out = Path(cfg.out)
    fabric = make_fabric(cfg.train)
    rank0 = fabric.is_global_zero
    # Everything that can refuse the run does so before anything is written to `out`.
    cohort = load_cohort(cfg)
    lock = RunLock(out)
    if rank0:
        files = [p for col in ("ecg_path", "ct_path") for p in cohort.df[col]]
        fingerprint = run_fingerprint(cfg.model_dump(mode="json"), cfg.manifest, files)
        lock.acquire()
        try:
            check_fingerprint(out, fingerprint)
            write_fingerprint(out, fingerprint)
            dump_config(cfg, out / "config.yaml")
        except BaseException:
            lock.release()
            raise
    try:
        return _run_locked(cfg, fabric, out, cohort, fingerprint_id(fingerprint) if rank0 else "")
    finally:
        lock.release()


def _run_locked(cfg: RunConfig, fabric, out: Path, cohort: Cohort, fingerprint: str = "") -> RunResult:
    rank0 = fabric.is_global_zero
    if rank0 and cfg.data.clinical_columns is None and "clinical" in cfg.modalities:
        # Inferred clinical variables are shown, so a column taken by mistake is seen before a paper is.
        fabric.print(format_summary(clinical_summary(cohort.df, cohort.clinical_types)))
    # Seed before any weight is drawn: two runs of one config start from the same encoders and heads.
    fabric.seed_everything(cfg.train.seed, verbose=False)
    splits = make_splits(cohort.df, external_sites=cfg.split.external_sites, test_fraction=cfg.split.test_fraction,
                         val_fraction=cfg.split.val_fraction, train_fraction=cfg.split.train_fraction,
                         seed=cfg.split.seed)
    tabular = None
    if "clinical" in cfg.modalities and _reads_table(cfg.encoders["clinical"].name):
        tabular = _tabular(cfg, cohort, splits["train"])
    encoders = build_encoders(cfg, tabular)
    prepared = prepare_for(cohort, encoders, cfg.data.n_workers, progress=cfg.train.progress and rank0,
                           ecg_store=cfg.data.ecg_store, ecg_quality=cfg.data.ecg_quality_filter, cfg=cfg,
                           fabric=fabric)
    splits = {k: np.asarray([p for p in v if p in set(cohort.patient_ids)]) for k, v in splits.items()}
    mode = _clinical_mode(encoders)
    datasets = {k: RiskDataset(cohort.subset(v), prepared, clinical=mode, tabular=tabular,
                               augment=cfg.train.augment and k == "train", seed=cfg.train.seed, ct_windows="batch")
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
    from riskfm.train.tasks.risk_model import RiskModelTask, engine_config

    task = RiskModelTask(model, datasets["train"], datasets["val"], cfg.train, encoder_lr=encoder_lr,
                         encoder_opts=encoder_opts)
    result = fit(task, engine_config(cfg.train), out, fabric=fabric, config=cfg.model_dump(mode="json"),
                 fingerprint=fingerprint)

    frames = []
    for name, ds in datasets.items():
        workers = resolve_num_workers(cfg.train.num_workers, max(1, fabric.world_size // cfg.train.num_nodes),
                                      fabric.device.type)
        loader = fabric.setup_dataloaders(data_loader(ds, cfg.train.batch_size, workers))
        frames.append(predict(fabric, model, loader, ds).assign(split=name))
    preds = pd.concat(frames, ignore_index=True)
    preds = preds[["patient_id", "split", "target", "y_true", "y_prob", "site", "time_to_event_days", "event"]]
    metrics: dict = {}
    if rank0:
        metrics = write_run_outputs(cfg, out, preds, cohort, splits, result, model, tabular, fingerprint)
    fabric.barrier()
    return RunResult(out, preds, metrics, result, cohort, splits)


COVARIATES = ("sex", "age")  # the subgroup attributes a run's evaluation reports when the manifest has them


def evaluation_spec(cfg: RunConfig) -> dict[str, Any]:
    """Return a run's evaluation settings (its ``evaluate`` section) as ``riskfm.evaluate.evaluate`` takes them."""
    return {"ci": cfg.evaluate.ci, "n_boot": cfg.evaluate.n_boot, "seed": cfg.split.seed,
            "figures": cfg.evaluate.figures, "subgroup_bins": {"age": [50, 65]},
            "min_events": cfg.evaluate.min_events, "min_nonevents": cfg.evaluate.min_nonevents}


def evaluation_covariates(manifest: str | os.PathLike) -> pd.DataFrame | None:
    """Return ``patient_id`` + the subgroup attributes (:data:`COVARIATES`) of a manifest, or None without any."""
    table = read_manifest_table(manifest)
    cols = [c for c in COVARIATES if c in table.columns]
    if not cols:
        return None
    return table[["patient_id", *cols]].assign(patient_id=lambda d: d["patient_id"].astype(str))


def write_run_outputs(cfg: RunConfig, out: Path, preds: pd.DataFrame, cohort: Cohort,
                      splits: dict[str, np.ndarray], result: EngineResult, model: RiskModel, tabular: Any,
                      fingerprint: str = "") -> dict:
    """Write a finished run's files (predictions, evaluation, cohort report, splits, history, model.pt).

    Returns
    -------
    dict
        The metrics written to ``out/metrics.json``.
    """
    from riskfm.evaluate import evaluate

    preds.to_csv(out / "predictions.csv", index=False)
    cov_cols = [c for c in COVARIATES if c in cohort.df.columns]
    metrics = evaluate(preds[preds["target"] != "risk_score"], out, spec=evaluation_spec(cfg),
                       covariates=cohort.df[["patient_id", *cov_cols]] if cov_cols else None,
                       title=f"riskfm run: {out.name}")
    summary = clinical_summary(cohort.df, cohort.clinical_types)
    summary.to_csv(out / "clinical_columns.csv", index=False)
    (out / "cohort_report.txt").write_text(cohort.report() + "\n" + format_summary(summary) + "\n")
    cohort.exclusions.to_csv(out / "exclusions.csv", index=False)
    pd.DataFrame([(pid, k) for k, v in splits.items() for pid in v], columns=["patient_id", "split"]).to_csv(
        out / "splits.csv", index=False)
    pd.DataFrame(result.history).to_csv(out / "history.csv", index=False)
    # a risk-model bundle (riskfm.train.bundle): what predict / explain rebuild the model from
    save_bundle(out / "model.pt", kind="risk-model", model=model.checkpoint_state_dict(),
                config=cfg.model_dump(mode="json"), fingerprint=fingerprint,
                tabular=None if tabular is None else tabular.to_dict(),
                clinical_columns=list(cohort.clinical_columns), targets=model.targets,
                clinical_types=dict(cohort.clinical_types), best_epoch=result.best_epoch,
                best_val_auroc=result.best_metric)
    return metrics


@dataclass
class LoadedRunModel:
    """A trained run's model and what is needed to feed it new patients.

    Attributes
    ----------
    model : RiskModel
        In eval mode, on the CPU.
    config : RunConfig
        The run's configuration (encoder checkpoints cleared: the bundle holds every weight).
    tabular : TabularPreprocessor or None
        The fitted clinical-variable preprocessor of a ``tabular-mlp`` clinical encoder.
    clinical_columns : list of str
        The clinical variables the model was trained with, in order.
    clinical_types : dict
        Column -> ``"numeric"`` / ``"categorical"``, so new manifests are converted the same way.
    """

    model: RiskModel
    config: RunConfig
    tabular: Any
    clinical_columns: list[str]
    clinical_types: dict[str, str]


def load_run_model(run_dir: str | os.PathLike) -> LoadedRunModel:
    """Rebuild a trained model from ``run_dir/model.pt`` (no network, ``weights_only`` loading).

    Raises
    ------
    CheckpointError
        ``model.pt`` is not a riskfm run bundle, or its weights do not fit the model its config
        describes (written by another riskfm version, or edited); the message names the file.
    """
    path = Path(run_dir) / "model.pt"
    try:
        bundle = load_bundle(path, "risk-model")  # a model.pt of an older riskfm is read as a bundle too
    except BundleKindError as exc:
        raise CheckpointError(f"{exc}; give the folder that `riskfm train` wrote") from None
    if not bundle.get("config") or "model" not in bundle:
        raise CheckpointError(f"{path}: not a riskfm run model (no 'config' / 'model'); give the folder that "
                              "`riskfm train` wrote")
    cfg = parse_config(bundle["config"], str(path))
    tabular = None
    if bundle.get("tabular") is not None:
        from riskfm.clinical.tabular import TabularPreprocessor

        tabular = TabularPreprocessor.from_dict(bundle["tabular"])
    for m in cfg.modalities:  # the bundle holds every weight; don't reload encoder checkpoints
        cfg.encoders[m].checkpoint = None
    encoders = build_encoders(cfg, tabular)
    model = build_model(cfg, encoders)
    try:
        model.load_checkpoint_state_dict(bundle["model"])
    except (RuntimeError, CheckpointError) as exc:
        # A missing key (CheckpointError) or a tensor of another shape (torch's RuntimeError): the
        # user's file does not fit this riskfm, not a bug of ours.
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        detail = "; ".join(lines[:3]).replace("checkpoint does not match the model: ", "")
        raise CheckpointError(f"{path}: its weights do not fit the model its config describes ({detail}); was it "
                              "written by another riskfm version? Retrain with `riskfm train`") from exc
    model.eval()
    return LoadedRunModel(model, cfg, tabular, list(bundle.get("clinical_columns", [])),
                          dict(bundle.get("clinical_types") or {}))


def predict_manifest(run_dir: str | os.PathLike, manifest: str | os.PathLike, *, batch_size: int = 32,
                     on_missing_file: str = "exclude", cache_dir: str | os.PathLike | bool | None = None
                     ) -> tuple[pd.DataFrame, Cohort]:
    """Apply a trained run to the patients of another manifest (labels may be empty); see :func:`predict_loaded`."""
    return predict_loaded(load_run_model(run_dir), manifest, batch_size=batch_size, on_missing_file=on_missing_file,
                          cache_dir=cache_dir)


def predict_loaded(loaded: LoadedRunModel, manifest: str | os.PathLike, *, batch_size: int = 32,
                   on_missing_file: str = "exclude", cache_dir: str | os.PathLike | bool | None = None
                   ) -> tuple[pd.DataFrame, Cohort]:
    """Score a manifest with an already loaded run model (:func:`load_run_model`).

    ``cache_dir``: the prepared cache to read and fill (None or True: this machine's default,
    ``$RISKFM_CACHE_DIR`` or ``~/.cache/riskfm/prepared``, not the training machine's folder;
    False: prepare into memory).

    Returns
    -------
    (predictions, cohort)
        Long-format predictions (``patient_id, split="predict", target, y_true, y_prob, site,
        time_to_event_days, event``) and the cohort (its ``exclusions`` and ``report()``).
    """
    from lightning_fabric import Fabric

    model, cfg, tabular = loaded.model, loaded.config, loaded.tabular
    clinical_cols, types = loaded.clinical_columns, loaded.clinical_types
    declared = {c: types.get(c) for c in clinical_cols} if "clinical" in cfg.modalities else None
    try:
        cohort = Cohort.from_manifest(manifest, modalities=cfg.modalities, on_missing_file=on_missing_file,
                                      clinical=declared, na_values=cfg.data.na_values,
                                      allow_empty_modalities=True)
    except ManifestError as exc:
        if "data.clinical_columns lists" in str(exc):
            missing = [c for c in clinical_cols if c not in read_manifest_table(manifest).columns]
            raise ManifestError(f"{manifest}: clinical columns the model was trained with are missing: "
                                f"{missing}") from None
        raise
    # The training machine's cache folder may not exist here: predict uses this machine's default
    # cache ($RISKFM_CACHE_DIR or ~/.cache/riskfm/prepared) unless told otherwise.
    data = {"cache_dir": None} if cache_dir is None or cache_dir is True else (
        {"cache": False} if cache_dir is False else {"cache": True, "cache_dir": os.fspath(cache_dir)})
    local = cfg.model_copy(update={"data": cfg.data.model_copy(update=data)})
    prepared = prepare_for(cohort, dict(model.encoders.items()), cfg=local)
    ds = RiskDataset(cohort, prepared, clinical=_clinical_mode(dict(model.encoders.items())), tabular=tabular,
                     ct_windows="batch")
    _precompute_text(dict(model.encoders.items()), [ds])
    fabric = Fabric(accelerator="cpu", devices=1)
    loader = data_loader(ds, batch_size, resolve_num_workers(cfg.train.num_workers, device="cpu"))
    preds = predict(fabric, model, loader, ds).assign(split="predict")
    return preds[["patient_id", "split", "target", "y_true", "y_prob", "site", "time_to_event_days", "event"]], cohort
