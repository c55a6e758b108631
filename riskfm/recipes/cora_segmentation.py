"""CORA downstream task (c): coronary artery segmentation, and its data-efficiency curve.

The pretrained CORA encoder with a NEW (randomly initialised) decoder is fine-tuned with Dice
loss to segment the coronary lumen (the CT's coronary mask, nonzero = artery). Test CTs are
segmented whole by Gaussian-blended sliding windows and scored per case by Dice, centreline Dice
(clDice) and the symmetric mean surface distance in mm (:mod:`riskfm.evaluate.segmentation`).

:func:`run_data_efficiency` repeats the fine-tuning on growing training subsets (CORA: 50-800
labelled cases) for the pretrained network and the same network from scratch, on one fixed test
set, and writes one table row per (model, size).

Both report on stderr (bars over the CTs read, the fine-tuning steps with the loss, the test CTs
segmented; a line per run of the data-efficiency curve) unless ``progress=False`` or
``riskfm --quiet`` / ``RISKFM_QUIET=1``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from riskfm.ct.cases import CTCase, LoadedCase
from riskfm.ct.finetune import predict_dense
from riskfm.ct.io import write_nifti
from riskfm.ct.seg_metrics import cl_dice, dice, mean_surface_distance
from riskfm.data.splits import nested_subsets, split_indices
from riskfm.progress import status
from riskfm.recipes.cora_common import (
    DenseTaskOptions,
    evaluate_cases,
    fine_tune_dense,
    load_cases,
    write_json,
    write_outputs,
)
from riskfm.recipes.result import RecipeResult

__all__ = ["run_artery_segmentation", "run_data_efficiency"]


def _cases(source, checkpoint, spacing, progress: bool = True) -> list[LoadedCase]:
    return load_cases(source, spacing, kinds=("coronary",), checkpoint=checkpoint, require="coronary",
                      progress=progress)


def _train_and_score(cases, train_idx, test_idx, checkpoint, opts: DenseTaskOptions, width=None,
                     progress: bool = True, mask_dir: Path | None = None, checkpoint_dir: Path | None = None):
    from monai.losses import DiceLoss

    net, fit = fine_tune_dense(cases, train_idx, "coronary", DiceLoss(sigmoid=True), checkpoint, opts, width=width,
                               new_decoder=True, foreground_prob=0.8, desc="fine-tuning CORA (segmentation)",
                               progress=progress, checkpoint_dir=checkpoint_dir)
    windows = net.input_spec.windows

    def score(i: int) -> dict:
        pred = predict_dense(net, cases[i], opts.patch, windows) >= opts.threshold
        ref = cases[i].masks["coronary"] > 0
        if mask_dir is not None:  # what the scores are computed from, on the working grid, for inspection
            pid, affine = cases[i].case.patient_id, cases[i].vol.affine
            write_nifti(mask_dir / f"{pid}_pred.nii.gz", pred, affine, np.uint8)
            write_nifti(mask_dir / f"{pid}_ref.nii.gz", ref, affine, np.uint8)
        return {"patient_id": cases[i].case.patient_id, "dice": dice(pred, ref),
                "cldice": cl_dice(pred, ref), "msd_mm": mean_surface_distance(pred, ref, cases[i].vol.spacing)}

    return pd.DataFrame(evaluate_cases(test_idx, score, progress=progress)), fit


def _summary(per_case: pd.DataFrame) -> dict:
    return {f"{m}_mean": float(np.nanmean(per_case[m])) if per_case[m].notna().any() else float("nan")
            for m in ("dice", "cldice", "msd_mm")}


def run_artery_segmentation(
    source: str | Path | Sequence[CTCase] | Sequence[LoadedCase],
    out_dir: str | Path,
    *,
    checkpoint: str | Path | None = None,
    options: DenseTaskOptions | None = None,
    progress: bool = True,
    **overrides: Any,
) -> RecipeResult:
    """Fine-tune pretrained encoder + new decoder (Dice loss) for coronary segmentation.

    Parameters
    ----------
    source : manifest, folder, or cases
        CTs with a coronary mask (``_coronary`` / ``_labels`` beside the CT).
    out_dir : str or path
        Output folder (created).
    checkpoint : path, optional
        Pretrained ``cora_pretrained.pt``; None trains from scratch.
    options : DenseTaskOptions, optional
        Training and test settings; keyword ``overrides`` (``steps=``, ``patch=``, ...) replace
        single fields.
    progress : bool
        Progress on stderr (see the module docstring).

    Returns
    -------
    RecipeResult
        ``name`` ``"cora_segmentation"``; ``metrics`` as written to ``metrics.json``
        (``dice_mean``, ``cldice_mean``, ``msd_mm_mean`` (mm) over the test CTs, ``pretrained``,
        ``n_train``, ``n_test``, ``steps``); ``tables`` ``per_case`` (patient_id, dice, cldice,
        msd_mm per test CT) and ``history`` (loss per step); ``files`` ``metrics``, ``per_case``,
        ``history`` and ``masks``, the folder holding the predicted and reference masks of every
        test CT on the working grid (``<patient>_pred.nii.gz``, ``<patient>_ref.nii.gz``);
        ``extras`` ``fit``.
    """
    out = Path(out_dir)
    opts = DenseTaskOptions.resolve(options, **overrides)
    cases = _cases(source, checkpoint, opts.spacing, progress)
    train_idx, test_idx = split_indices(len(cases), opts.test_fraction, opts.seed)
    per_case, fit = _train_and_score(cases, train_idx, test_idx, checkpoint, opts, progress=progress,
                                     mask_dir=out / "masks", checkpoint_dir=out)
    metrics = {**_summary(per_case), "pretrained": checkpoint is not None, "n_train": int(len(train_idx)),
               "n_test": int(len(test_idx)), "steps": opts.steps}
    tables = {"per_case": per_case, "history": pd.DataFrame(fit.steps)}
    files = {**write_outputs(out, metrics, tables), "masks": out / "masks"}
    return RecipeResult("cora_segmentation", metrics=metrics, tables=tables, files=files, extras={"fit": fit})


def run_data_efficiency(
    source: str | Path | Sequence[CTCase] | Sequence[LoadedCase],
    out_dir: str | Path,
    *,
    checkpoint: str | Path | None,
    train_sizes: Sequence[int] = (50, 100, 200, 400, 800),
    options: DenseTaskOptions | None = None,
    progress: bool = True,
    **overrides: Any,
) -> RecipeResult:
    """Coronary segmentation at growing training-set sizes, pretrained vs from scratch.

    ``options`` / ``overrides`` / ``progress`` as in :func:`run_artery_segmentation`.

    Sizes larger than the training part are capped at it (and repeated sizes dropped). The
    subsets are nested (:func:`riskfm.data.splits.nested_subsets`: the first ``n`` of one
    shuffled order), so a bigger set always contains a smaller one. Without ``checkpoint`` only
    the from-scratch rows are produced.

    Returns
    -------
    RecipeResult
        ``name`` ``"cora_data_efficiency"``; ``tables`` ``data_efficiency`` (one row per model x
        size: model, n_train, dice_mean, cldice_mean, msd_mm_mean (mm)); ``metrics`` as written to
        ``metrics.json`` (``rows``: the table's rows, ``n_test``); ``files`` ``table``
        (``data_efficiency.csv``) and ``metrics``.
    """
    out = Path(out_dir)
    opts = DenseTaskOptions.resolve(options, **overrides)
    cases = _cases(source, checkpoint, opts.spacing, progress)
    train_idx, test_idx = split_indices(len(cases), opts.test_fraction, opts.seed)
    subsets = nested_subsets(train_idx, train_sizes, opts.seed)  # ValueError when no size is positive
    width = opts.width
    if width is None and checkpoint is not None:  # from scratch means the SAME network, untrained
        from riskfm.train.checkpoint import load_checkpoint

        width = load_checkpoint(checkpoint).get("config", {}).get("width")
    models = [("pretrained", checkpoint), ("scratch", None)] if checkpoint is not None else [("scratch", None)]
    rows = []
    runs = len(subsets) * len(models)
    for n, subset in subsets.items():
        for name, ckpt in models:
            if progress:
                status(f"data efficiency, run {len(rows) + 1}/{runs}: {name}, {n} training CTs")
            per_case, _ = _train_and_score(cases, subset, test_idx, ckpt, opts, width=width, progress=progress)
            rows.append({"model": name, "n_train": n, **_summary(per_case)})
    table = pd.DataFrame(rows)
    metrics = {"rows": rows, "n_test": int(len(test_idx))}
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "data_efficiency.csv", index=False)
    files = {"table": out / "data_efficiency.csv", "metrics": write_json(metrics, out / "metrics.json")}
    return RecipeResult("cora_data_efficiency", metrics=metrics, tables={"data_efficiency": table}, files=files)
