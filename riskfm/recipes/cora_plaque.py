"""CORA downstream task (a): coronary plaque characterisation.

Volume-level multi-label classification - calcified plaque present, non-calcified plaque present
- from the whole CT: pretrained CORA encoder + pooling of its feature maps + linear head, trained
with binary cross-entropy. The paper's head is global average pooling of the bottleneck, for
96^3 artery-centric patches. This recipe classifies whole heart volumes, in which a plaque is a
few voxels, and its defaults are the head docs/ct.md (section 6) measured better for those:
max pooling (``pool="max"``) of all four encoder stages (``scales="all"``); the head first
fitted as a linear probe of the frozen encoder (``head_init="probe"``: LP-FT); then everything,
a pretrained encoder at a tenth of the head's learning rate so a short run does not wash out
what pretraining put in the features. ``pool="avg", scales="bottleneck", head_init="random"`` is
the paper's head. Scored by AUROC
with 500-sample stratified bootstrap CIs per label, computed from the test predictions by
:func:`riskfm.evaluate.run_metrics.metrics_from_predictions` (the evaluation's own cells, small-sample
rule included). Labels come from manifest columns ``plaque_calcified`` / ``plaque_noncalcified``
or from each CT's plaque mask.

Outputs in ``out_dir``: ``metrics.json`` (``{"test": {target: {auroc: {value, ci, method, n}, n, n_pos, ...}},
"pool": ..., ...}``), ``predictions.csv`` (patient_id, split, target, y_true, y_prob),
``history.csv``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from riskfm.ct.cases import CTCase, LoadedCase
from riskfm.ct.finetune import (
    HEAD_INITS,
    PLAQUE_TARGETS,
    POOLS,
    SCALES,
    PlaqueClassifier,
    plaque_targets,
    volume_input,
)
from riskfm.data.splits import split_indices
from riskfm.evaluate.run_metrics import metrics_from_predictions
from riskfm.progress import progress as progress_bar
from riskfm.recipes.cora_common import build_network, load_cases, write_outputs
from riskfm.recipes.result import RecipeResult
from riskfm.train.bundle import config_fingerprint
from riskfm.train.tasks.sampled import SampledBatchTask, fit_sampled

__all__ = ["run_plaque_characterisation"]


def _volume_shape(cases: Sequence[LoadedCase]) -> tuple[int, int, int]:
    # The largest grid among the cases, rounded up to a multiple of 8 (three stride-2 stages).
    biggest = np.max([c.vol.shape for c in cases], axis=0)
    return tuple(int(-(-n // 8) * 8) for n in biggest)


def run_plaque_characterisation(
    source: str | Path | Sequence[CTCase] | Sequence[LoadedCase],
    out_dir: str | Path,
    *,
    checkpoint: str | Path | None = None,
    width: int | None = None,
    spacing: Sequence[float] | None = None,
    shape: Sequence[int] | None = None,
    steps: int = 300,
    batch_size: int = 4,
    lr: float = 1e-3,
    encoder_lr: float | None = None,
    freeze_encoder: bool = False,
    pool: str = "max",
    scales: str = "all",
    head_init: str = "probe",
    test_fraction: float = 0.3,
    train_indices: Sequence[int] | None = None,
    test_indices: Sequence[int] | None = None,
    n_boot: int = 500,
    seed: int = 0,
    progress: bool = True,
    min_events: int = 10,
    min_nonevents: int = 10,
) -> RecipeResult:
    """Fine-tune (or train from scratch) CORA for plaque characterisation and score it.

    Parameters
    ----------
    source : manifest, folder, or cases
        CTs with plaque labels (see the module docstring); loaded cases are reused as they are.
    out_dir : str or path
        Output folder (created).
    checkpoint : path, optional
        ``cora_pretrained.pt`` from ``riskfm pretrain-ct``; None trains the same network from scratch.
    width : int, optional
        Network width (default: the checkpoint's, or 8 from scratch).
    spacing : sequence of 3 float, optional
        Working spacing (default: the checkpoint's, or (2.0, 1.5, 1.5) mm).
    shape : sequence of 3 int, optional
        Whole-volume input size (default: the largest case grid rounded up to a multiple of 8).
    steps, batch_size, lr
        Training length, batch and head learning rate (AdamW, cosine decay).
    encoder_lr : float, optional
        Encoder learning rate. Default: ``lr / 10`` for a pretrained checkpoint (keeps its
        features while the head learns), ``lr`` from scratch (a random encoder needs the full
        rate: docs/ct.md, section 6). Recorded in ``metrics.json``.
    freeze_encoder : bool
        Linear probe: only the head trains.
    pool : {"avg", "max", "avgmax"}, default "max"
        Pooling of each feature map before the linear head (:class:`PlaqueClassifier`): global
        max, ``"avg"`` CORA's global average, ``"avgmax"`` both concatenated. Recorded in
        ``metrics.json``.
    scales : {"bottleneck", "all"}, default "all"
        Which encoder maps are pooled: all four stages concatenated, or CORA's bottleneck only
        (:class:`PlaqueClassifier`). Recorded in ``metrics.json``.
    head_init : {"probe", "random"}, default "probe"
        ``"probe"``: linear probing then fine-tuning (LP-FT, Kumar et al., ICLR 2022) - before any
        step the head is fitted as an L2 logistic regression on the frozen encoder's pooled
        features of the training CTs, and the feature standardisation is fixed to their
        statistics (:meth:`PlaqueClassifier.init_head_from_probe`); costs one forward pass per
        training CT. ``"random"``: the head starts random and the standardisation uses batch
        statistics (the paper's head). Recorded in ``metrics.json``.
    test_fraction, train_indices, test_indices
        Random split of the cases, or explicit index lists.
    n_boot : int
        Bootstrap resamples of the AUROC CI.
    seed : int
    progress : bool
        Report on stderr: bars over the CTs read, the linear probe, the fine-tuning steps (with
        the loss) and the CTs scored (silent anyway under ``riskfm --quiet`` / ``RISKFM_QUIET=1``).
    min_events, min_nonevents : int
        Below these counts in the test split a label's AUROC is not reported (``auroc: null`` with
        ``not_estimable``), the evaluation's small-sample rule (docs/evaluation.md).

    Returns
    -------
    RecipeResult
        ``name`` ``"cora_plaque"``; ``metrics`` as written to ``metrics.json``: ``test`` (per
        label: ``auroc`` (``{"value", "ci": [low, high], "method", "n"}``), ``n``, ``n_pos``, ... as in a run's
        ``metrics.json``, or ``auroc: None`` with ``not_estimable``) and the run's settings
        (``pool``, ``scales``, ``head_init``, ``lr``, ``encoder_lr``, ``n_train``, ``n_test``,
        ``input_shape``, ...); ``tables`` ``predictions`` (patient_id, split, target, y_true,
        y_prob; train and test cases) and ``history`` (loss per step); ``files`` ``metrics``,
        ``predictions``, ``history``; ``extras`` ``model`` (the trained
        :class:`PlaqueClassifier`, in eval mode), ``fit`` (FitResult), ``train_indices`` and
        ``test_indices`` (positions of the cases).
    """
    out = Path(out_dir)
    if pool not in POOLS:
        raise ValueError(f"pool must be one of {POOLS}, got {pool!r}")
    if scales not in SCALES:
        raise ValueError(f"scales must be one of {SCALES}, got {scales!r}")
    if head_init not in HEAD_INITS:
        raise ValueError(f"head_init must be one of {HEAD_INITS}, got {head_init!r}")
    if batch_size < 2 and head_init == "random":
        # A probe start fixes the feature standardisation; a random head standardises over the batch.
        raise ValueError(f"batch_size must be >= 2 with head_init='random' (the head standardises features "
                         f"over the batch), got {batch_size}")
    cases = load_cases(source, spacing, kinds=("plaque",), checkpoint=checkpoint, progress=progress)
    shape = tuple(int(s) for s in shape) if shape is not None else _volume_shape(cases)
    # the new head (and a network from scratch) start from the seed, whatever ran before in the process
    torch.manual_seed(seed)
    net = build_network(checkpoint, width=width, spacing=spacing or tuple(cases[0].vol.spacing), shape=shape)
    windows = net.input_spec.windows
    x_all = np.stack([volume_input(c, shape, windows) for c in cases])
    y_all = np.stack([plaque_targets(c) for c in cases])
    if train_indices is None or test_indices is None:
        train_idx, test_idx = split_indices(len(cases), test_fraction, seed)
    else:
        train_idx, test_idx = np.asarray(train_indices), np.asarray(test_indices)

    if encoder_lr is None:
        encoder_lr = lr / 10 if checkpoint is not None else lr
    model = PlaqueClassifier(net, n_labels=len(PLAQUE_TARGETS), pool=pool, scales=scales)
    if freeze_encoder:
        for p in net.parameters():
            p.requires_grad_(False)
    x_train, y_train = torch.from_numpy(x_all[train_idx]), torch.from_numpy(y_all[train_idx])
    # Positive weights balance each label's prevalence in the training part.
    pos = y_train.mean(dim=0).clamp(0.05, 0.95)
    loss = torch.nn.BCEWithLogitsLoss(pos_weight=(1 - pos) / pos)

    def batches(rng: np.random.Generator):
        pick = rng.integers(0, len(train_idx), batch_size)
        return x_train[pick], y_train[pick]

    if head_init == "probe":
        model.init_head_from_probe(x_train, y_train.numpy(), progress=progress)
    config = {"task": "cora-plaque", "checkpoint": None if checkpoint is None else str(checkpoint),
              "width": net.width, "pool": pool, "scales": scales, "freeze_encoder": bool(freeze_encoder),
              "head_init": head_init, "steps": steps, "batch_size": batch_size, "lr": lr, "encoder_lr": encoder_lr,
              "seed": seed, "input_shape": list(shape), "train_cases": [cases[i].case.patient_id for i in train_idx]}
    task = SampledBatchTask("cora-plaque", model, loss, batches, seed=seed,
                            encoder=None if freeze_encoder else net, encoder_lr=encoder_lr)
    fit = fit_sampled(task, steps, lr=lr, seed=seed, out_dir=out, config=config,
                      fingerprint=config_fingerprint(config), desc="fine-tuning CORA (plaque)", progress=progress)
    model.eval()
    # Score only the cases of the two parts: with a subsampled training set (label-efficiency runs)
    # the unused cases would cost a forward pass each for nothing.
    used = np.union1d(train_idx, test_idx)
    prob = np.full((len(cases), len(PLAQUE_TARGETS)), np.nan, dtype=np.float32)
    with torch.no_grad(), progress_bar(total=len(used), enabled=progress, desc=f"scoring {len(used)} CTs", unit="CT") as bar:
        for k in range(0, len(used), 4):
            i = used[k:k + 4]
            prob[i] = torch.sigmoid(model(torch.from_numpy(x_all[i]))).numpy()
            bar.update(len(i))

    rows = []
    for split, idx in (("train", train_idx), ("test", test_idx)):
        for j, target in enumerate(PLAQUE_TARGETS):
            for i in idx:
                rows.append({"patient_id": cases[i].case.patient_id, "split": split, "target": target,
                             "y_true": float(y_all[i, j]), "y_prob": float(prob[i, j])})
    predictions = pd.DataFrame(rows)
    # AUROC and its stratified bootstrap CI per label as the evaluation computes them, the
    # small-sample rule included (docs/evaluation.md): no number from a handful of events.
    cells = metrics_from_predictions(predictions[predictions["split"] == "test"], ci="bootstrap", n_boot=n_boot,
                                     seed=seed, min_events=min_events, min_nonevents=min_nonevents)["test"]
    metrics = {"test": {t: cells[t] for t in PLAQUE_TARGETS}, "pretrained": checkpoint is not None,
               "checkpoint": str(checkpoint) if checkpoint else None,
               "pool": pool, "scales": scales, "freeze_encoder": bool(freeze_encoder),
               "steps": steps, "head_init": head_init,
               "lr": lr, "encoder_lr": None if freeze_encoder else encoder_lr,
               "n_train": int(len(train_idx)), "n_test": int(len(test_idx)), "input_shape": list(shape)}
    tables = {"predictions": predictions, "history": pd.DataFrame(fit.steps)}
    return RecipeResult("cora_plaque", metrics=metrics, tables=tables, files=write_outputs(out, metrics, tables),
                        extras={"model": model, "fit": fit, "train_indices": train_idx, "test_indices": test_idx})
