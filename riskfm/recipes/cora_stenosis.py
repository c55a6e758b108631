"""CORA downstream task (b): stenosis detection as segmentation, scored at lesion level.

The whole pretrained CORA network (encoder AND decoder) initialises a segmenter of stenotic
lesions, trained with the pretraining loss (Tversky alpha 0.1 / beta 0.9 + focal gamma 4) on
patches of heart-cropped CTs (the heart mask's bounding box plus a margin: extracardiac structures
cannot raise false positives). Test CTs are segmented whole with Gaussian-blended sliding windows
and thresholded; every reference connected component is a lesion, and a predicted component is
a true positive if it overlaps one by more than 10 voxels (precision, recall, F1 over all test
lesions, :func:`riskfm.evaluate.segmentation.lesion_detection`).

Targets: a ``_stenosis`` mask per CT (or ``stenosis_mask_path`` column); without one the plaque
mask stands in (the synthetic cohort draws each stenosis as a plaque). Outputs: ``metrics.json``,
``per_case.csv``, ``history.csv`` in ``out_dir``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from riskfm.ct.cases import CTCase, LoadedCase
from riskfm.ct.finetune import predict_dense
from riskfm.ct.pretrain import CoraLoss
from riskfm.ct.seg_metrics import LesionScores, lesion_detection
from riskfm.data.splits import split_indices
from riskfm.recipes.cora_common import (
    DenseTaskOptions,
    evaluate_cases,
    fine_tune_dense,
    load_cases,
    write_outputs,
)
from riskfm.recipes.result import RecipeResult

__all__ = ["run_stenosis_detection", "stenosis_target"]


def stenosis_target(cases: Sequence[LoadedCase]) -> str:
    """``"stenosis"`` when every case has a stenosis mask, else ``"plaque"`` (all must have one)."""
    if all("stenosis" in c.masks for c in cases):
        return "stenosis"
    if all("plaque" in c.masks for c in cases):
        return "plaque"
    raise ValueError("stenosis detection needs a _stenosis (or _plaque) mask for every case")


def run_stenosis_detection(
    source: str | Path | Sequence[CTCase] | Sequence[LoadedCase],
    out_dir: str | Path,
    *,
    checkpoint: str | Path | None = None,
    options: DenseTaskOptions | None = None,
    min_overlap: int = 10,
    margin_mm: float = 10.0,
    progress: bool = True,
    **overrides: Any,
) -> RecipeResult:
    """Fine-tune CORA (encoder + decoder) for stenosis segmentation; lesion-level P / R / F1.

    Parameters
    ----------
    source : manifest, folder, or cases
        CTs with heart masks and stenosis (or plaque) masks.
    checkpoint : path, optional
        Pretrained ``cora_pretrained.pt``; None trains from scratch.
    options : DenseTaskOptions, optional
        Width, spacing, patch, steps, batch size, learning rate, threshold (probability above
        which a voxel is predicted stenotic), test fraction and seed; keyword ``overrides``
        (``steps=``, ``patch=``, ...) replace single fields.
    min_overlap : int
        Overlap (voxels) a true positive must exceed (CORA: 10).
    margin_mm : float
        Heart-crop margin.
    progress : bool
        Report on stderr: bars over the CTs read, the fine-tuning steps (with the loss) and the
        test CTs segmented (silent anyway under ``riskfm --quiet`` / ``RISKFM_QUIET=1``).

    Returns
    -------
    RecipeResult
        ``name`` ``"cora_stenosis"``; ``metrics`` as written to ``metrics.json`` (lesion-level
        ``precision``, ``recall``, ``f1`` and the counts ``n_ref``, ``detected``, ``n_pred``,
        ``tp_pred``; ``target``, ``threshold``, ``min_overlap``, ``pretrained``, ``n_train``,
        ``n_test``, ``steps``); ``tables`` ``per_case`` (one row per test CT) and ``history`` (loss
        per step); ``files`` ``metrics``, ``per_case``, ``history``; ``extras`` ``fit``
        (EngineResult: ``fit.steps`` the loss per step) and ``network`` (the fine-tuned CoraResUNet).
    """
    out = Path(out_dir)
    opts = DenseTaskOptions.resolve(options, **overrides)
    cases = load_cases(source, opts.spacing, kinds=("heart", "stenosis", "plaque"), checkpoint=checkpoint,
                       require="heart", crop_heart=True, margin_mm=margin_mm, progress=progress)
    target = stenosis_target(cases)
    train_idx, test_idx = split_indices(len(cases), opts.test_fraction, opts.seed)
    net, fit = fine_tune_dense(cases, train_idx, target, CoraLoss(), checkpoint, opts,
                               desc="fine-tuning CORA (stenosis)", progress=progress, checkpoint_dir=out)

    scored: list[LesionScores] = []

    def score(i: int) -> dict:
        prob = predict_dense(net, cases[i], opts.patch, net.input_spec.windows)
        scored.append(lesion_detection(prob >= opts.threshold, cases[i].masks[target] > 0, min_overlap=min_overlap))
        return {"patient_id": cases[i].case.patient_id, **scored[-1].to_dict()}

    rows = evaluate_cases(test_idx, score, progress=progress)
    total = sum(scored, LesionScores(0, 0, 0, 0))
    metrics = {**total.to_dict(), "target": target, "threshold": opts.threshold, "min_overlap": min_overlap,
               "pretrained": checkpoint is not None, "n_train": int(len(train_idx)),
               "n_test": int(len(test_idx)), "steps": opts.steps}
    tables = {"per_case": pd.DataFrame(rows), "history": pd.DataFrame(fit.steps)}
    return RecipeResult("cora_stenosis", metrics=metrics, tables=tables, files=write_outputs(out, metrics, tables),
                        extras={"fit": fit, "network": net})
