"""CORA downstream task (b): stenosis detection as segmentation, scored at lesion level.

The whole pretrained CORA network (encoder AND decoder) initialises a segmenter of stenotic
lesions, trained with the pretraining loss (Tversky alpha 0.1 / beta 0.9 + focal gamma 4) on
patches of heart-cropped CTs (the heart mask's bounding box plus a margin: extracardiac structures
cannot raise false positives). Test CTs are segmented whole with Gaussian-blended sliding windows
and thresholded; every reference connected component is a lesion, and a predicted component is
a true positive if it overlaps one by more than 10 voxels (precision, recall, F1 over all test
lesions, :func:`riskfm.ct.seg_metrics.lesion_detection`).

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
from riskfm.ct.finetune import DenseOutput, DensePatchSampler, fit_steps, predict_dense
from riskfm.ct.pretrain import CoraLoss
from riskfm.ct.seg_metrics import LesionScores, lesion_detection
from riskfm.recipes.cora_common import (
    DenseTaskOptions,
    build_network,
    evaluate_cases,
    load_cases,
    split_indices,
    write_json,
)

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
) -> dict:
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
    dict
        ``metrics`` ({precision, recall, f1, counts}), ``per_case`` DataFrame, ``fit``, ``paths``.
    """
    out = Path(out_dir)
    opts = DenseTaskOptions.resolve(options, **overrides)
    cases = load_cases(source, opts.spacing, kinds=("heart", "stenosis", "plaque"), checkpoint=checkpoint,
                       require="heart", crop_heart=True, margin_mm=margin_mm, progress=progress)
    target = stenosis_target(cases)
    patch = opts.patch
    net = build_network(checkpoint, width=opts.width, spacing=opts.spacing or tuple(cases[0].vol.spacing), shape=patch)
    windows = net.input_spec.windows
    train_idx, test_idx = split_indices(len(cases), opts.test_fraction, opts.seed)
    sampler = DensePatchSampler([cases[i] for i in train_idx], target, patch, windows)
    fit = fit_steps(DenseOutput(net), CoraLoss(), lambda rng: sampler(rng, opts.batch_size), opts.steps,
                    lr=opts.lr, seed=opts.seed, desc="fine-tuning CORA (stenosis)", progress=progress)

    scored: list[LesionScores] = []

    def score(i: int) -> dict:
        prob = predict_dense(net, cases[i], patch, windows)
        scored.append(lesion_detection(prob >= opts.threshold, cases[i].masks[target] > 0, min_overlap=min_overlap))
        return {"patient_id": cases[i].case.patient_id, **scored[-1].to_dict()}

    rows = evaluate_cases(test_idx, score, progress=progress)
    total = sum(scored, LesionScores(0, 0, 0, 0))
    metrics = {**total.to_dict(), "target": target, "threshold": opts.threshold, "min_overlap": min_overlap,
               "pretrained": checkpoint is not None, "n_train": int(len(train_idx)),
               "n_test": int(len(test_idx)), "steps": opts.steps}
    out.mkdir(parents=True, exist_ok=True)
    per_case = pd.DataFrame(rows)
    per_case.to_csv(out / "per_case.csv", index=False)
    pd.DataFrame(fit.history).to_csv(out / "history.csv", index=False)
    paths = {"metrics": write_json(metrics, out / "metrics.json"), "per_case": out / "per_case.csv",
             "history": out / "history.csv"}
    return {"metrics": metrics, "per_case": per_case, "fit": fit, "paths": paths, "network": net}
