"""Seed-000 low-data protocol: 5-fold CV, training folds at 100/75/50/25%, test folds intact.

Compares the 3D network on the CT foundation model (CORA's residual U-Net, "cora3d";
foundation-initialised when ``encoder_checkpoint`` is given, otherwise labelled "cora3d-random")
with the slice-wise U-Net by Dice (overall and per artery, :data:`riskfm.arteries.ARTERIES` order),
averaged over folds. The folds are :func:`riskfm.data.splits.low_data_folds`. Writes
``low_data_folds.csv`` (one row per model x fraction x fold), ``low_data_summary.csv`` (mean and
SD over folds) and ``low_data_dice.png`` (:func:`riskfm.plots.cac.plot_low_data_dice`).

Progress on stderr (:mod:`riskfm.progress`, silent under ``riskfm --quiet``): a bar of the arms
(model x fold x fraction) and, inside it, each training's steps with its loss.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from riskfm.arteries import ARTERIES, ARTERY_LABELS
from riskfm.ct.calcium.protocols import arm_name, protocol_exams
from riskfm.data.splits import low_data_folds
from riskfm.evaluate.segmentation import dice_scores
from riskfm.recipes.result import RecipeResult
from riskfm.train.tasks.calcium_segmentation import train_segmenter

__all__ = ["run_low_data"]


def run_low_data(out: str | Path, *, exams: Sequence[Any] | None = None, n_exams: int = 20, seed: int = 0,
                 n_folds: int = 5, fractions: Sequence[float] = (1.0, 0.75, 0.5, 0.25), epochs: int = 10,
                 steps_per_epoch: int = 10, widths: Sequence[int] = (8, 16, 32, 64),
                 encoder_checkpoint: str | Path | None = None, models: Sequence[str] = ("unet2d", "cora3d")
                 ) -> RecipeResult:
    """Run the protocol and write its tables and figure under ``out``.

    Parameters
    ----------
    out : str or path
        Output folder (created).
    exams : sequence of CalciumExam-like, optional
        Labelled exams (``hu``, ``spacing``, ``labels``); default ``n_exams`` synthetic ones.
    n_exams : int
        Synthetic exams rendered when none are given.
    seed : int
        Seed of the synthetic exams, the folds (:func:`riskfm.data.splits.low_data_folds`) and
        the trainings (``seed + fold``).
    n_folds, fractions, epochs, steps_per_epoch, widths
        Protocol and training sizes (seed 000: 5 folds, 100/75/50/25%, 10 epochs).
    encoder_checkpoint : path, optional
        Pretrained encoder of the 3D model: a ``riskfm pretrain-ct`` checkpoint for "cora3d" (its
        width must match ``widths[0]``), a ``cnn3d-small`` one for "seg3d".
    models : sequence of {"unet2d", "seg3d", "cora3d"}
        The arms compared.

    Returns
    -------
    RecipeResult
        ``name`` ``"cac_low_data"``; ``metrics`` the protocol's size (``n_exams``, ``n_folds``,
        ``fractions``, ``models``: the arm names); ``tables`` ``folds`` (one row per model x fraction x fold:
        ``n_train``, ``n_test``, ``train_seconds``, ``seconds_per_exam``, ``dice_<artery>`` and
        ``dice_overall``, each the mean over the fold's test exams) and ``summary`` (per model x
        fraction: ``dice_*_mean`` and ``dice_*_std`` over folds); ``files`` ``folds``, ``summary``
        (CSV); ``figures`` ``figure`` (``low_data_dice.png``).
    """
    from riskfm.plots.cac import plot_low_data_dice
    from riskfm.progress import progress, status

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if exams is None:
        status(f"low-data protocol: rendering {n_exams} synthetic exams")
        exams = protocol_exams(n_exams, seed, desc="rendering exams")
    splits = low_data_folds(len(exams), n_folds=n_folds, fractions=fractions, seed=seed)
    arms = [(split, model) for split in splits for model in models]
    status(f"low-data protocol: {len(arms)} trainings ({len(splits)} fold x fraction cells x {len(models)} models, "
           f"{epochs} epochs x {steps_per_epoch} steps each)")
    rows = []
    bar = progress(total=len(arms), desc="low-data arms", unit="arm", leave=True)
    for split, model in arms:
        name = arm_name(model, encoder_checkpoint)
        bar.set_postfix(model=name, fraction=split.fraction, fold=split.fold, refresh=False)
        t0 = time.perf_counter()
        seg = train_segmenter([exams[i] for i in split.train], model=model, widths=widths, epochs=epochs,
                              steps_per_epoch=steps_per_epoch, seed=seed + split.fold,
                              encoder_checkpoint=encoder_checkpoint if model != "unet2d" else None,
                              progress=f"training {name} fold {split.fold + 1}/{n_folds} at {100 * split.fraction:.0f}%")
        train_s = time.perf_counter() - t0
        per_exam = []
        t1 = time.perf_counter()
        for i in split.test:
            pred = seg.predict(exams[i].hu, exams[i].spacing)
            per_exam.append(dice_scores(pred, exams[i].labels, labels=[ARTERY_LABELS[a] for a in ARTERIES],
                                        names=ARTERIES))
        sec = (time.perf_counter() - t1) / max(len(split.test), 1)
        d = pd.DataFrame(per_exam)
        row = {"model": name, "fraction": split.fraction, "fold": split.fold, "n_train": len(split.train),
               "n_test": len(split.test), "train_seconds": train_s, "seconds_per_exam": sec}
        row.update({f"dice_{k}": float(np.nanmean(d[k])) if d[k].notna().any() else np.nan
                    for k in (*ARTERIES, "overall")})
        rows.append(row)
        bar.update(1)
    bar.close()
    folds = pd.DataFrame(rows)
    cols = [c for c in folds.columns if c.startswith("dice_")]
    summary = folds.groupby(["model", "fraction"])[cols].agg(["mean", "std"])
    summary.columns = [f"{a}_{b}" for a, b in summary.columns]
    summary = summary.reset_index()
    files = {"folds": out / "low_data_folds.csv", "summary": out / "low_data_summary.csv"}
    figures = {"figure": out / "low_data_dice.png"}
    folds.to_csv(files["folds"], index=False)
    summary.to_csv(files["summary"], index=False)
    plot_low_data_dice(summary, figures["figure"])
    metrics = {"n_exams": len(exams), "n_folds": n_folds, "fractions": [float(f) for f in fractions],
               "models": list(dict.fromkeys(folds["model"]))}
    return RecipeResult("cac_low_data", metrics=metrics, tables={"folds": folds, "summary": summary}, files=files,
                        figures=figures)
