"""Seed-000 fairness protocol: errors of predicted vs reference Agatston per subgroup, two models.

Subgroups: sex; age <=50 / 51-65 / >65; CAC-DRS category of the reference; epicardial fat volume
quartiles (computed from CT as -190..-30 HU inside the pericardium mask, or read from a column).
Metrics MAE, RMSE, bias; gaps as in seed 000, with bootstrap intervals from
:func:`riskfm.evaluate.fairness_gaps`. Writes ``fairness_exams.csv`` (per exam),
``fairness_<model>.csv`` (per subgroup) and ``fairness_gaps.png`` (gaps of the two models side by
side).

Progress on stderr (:mod:`riskfm.progress`, silent under ``riskfm --quiet``): exams rendered, each
training's steps with its loss, test exams scored.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from riskfm.ct.calcium.epicardial import epicardial_fat_volume
from riskfm.ct.calcium.protocols import add_subgroups, arm_name, fairness_table, protocol_exams
from riskfm.recipes.result import RecipeResult

__all__ = ["run_fairness"]


def run_fairness(out: str | Path, *, segmenters: Mapping[str, Any] | None = None,
                 train_exams: Sequence[Any] | None = None, test_exams: Sequence[Any] | None = None,
                 n_train: int = 16, n_test: int = 40, seed: int = 0, epochs: int = 6,
                 steps_per_epoch: int = 20, widths: Sequence[int] = (8, 16, 32, 64),
                 encoder_checkpoint: str | Path | None = None, model3d: str = "cora3d",
                 metric: str = "mae") -> RecipeResult:
    """Train (or take) two segmenters, score held-out exams, write the fairness tables and figure.

    Parameters
    ----------
    out : str or path
        Output folder (created).
    segmenters : mapping name -> CalciumSegmenter, optional
        Already trained models; by default a U-Net and the 3D model are trained on ``train_exams``.
    train_exams, test_exams : sequences of CalciumExam-like (``hu``, ``spacing``, ``labels``,
        ``pericardium``, ``meta`` with ``sex`` / ``age``), optional; default synthetic.
    n_train, n_test : int
        Synthetic training / test exams rendered when none are given.
    seed : int
        Seed of the synthetic exams, the trainings and the gaps' bootstrap intervals.
    epochs, steps_per_epoch, widths
        Training length and network widths of the two segmenters.
    encoder_checkpoint : path, optional
        Pretrained encoder of the 3D model (``riskfm pretrain-ct`` output for "cora3d").
    model3d : {"cora3d", "seg3d"}
        The 3D model set against the U-Net.
    metric : {"mae", "rmse", "bias"}
        The gap shown in the figure.

    Returns
    -------
    RecipeResult
        ``name`` ``"cac_fairness"``; ``tables`` ``exams`` (one row per test exam: sex, age,
        reference and predicted Agatston per model, seconds per model, epicardial fat in mL, the
        subgroup columns) and ``fairness_<model>`` per model (:func:`fairness_table`: MAE, RMSE,
        bias in Agatston units and their gaps per subgroup, each gap with its bootstrap
        interval); ``metrics`` ``n_test``, ``models``, ``metric`` (the gap in the figure) and
        ``seconds_per_exam`` per model; ``files`` ``exams`` and
        ``table_<model>`` (CSV); ``figures`` ``figure`` (``fairness_gaps.png``).
    """
    from riskfm.plots.fairness import plot_fairness_gaps
    from riskfm.progress import progress, status
    from riskfm.train.tasks.calcium_segmentation import train_segmenter

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if test_exams is None:
        status(f"fairness protocol: rendering {n_test} synthetic test exams")
        test_exams = protocol_exams(n_test, seed, offset=10_000, desc="rendering test exams")
    if segmenters is None:
        if train_exams is None:
            status(f"fairness protocol: rendering {n_train} synthetic training exams")
            train_exams = protocol_exams(n_train, seed, desc="rendering training exams")
        name3d = arm_name(model3d, encoder_checkpoint)
        status(f"fairness protocol: training unet2d and {name3d} ({epochs} epochs x {steps_per_epoch} steps each)")
        segmenters = {
            "unet2d": train_segmenter(train_exams, model="unet2d", widths=widths, epochs=epochs,
                                      steps_per_epoch=steps_per_epoch, seed=seed, progress="training unet2d"),
            name3d: train_segmenter(
                train_exams, model=model3d, widths=widths, epochs=epochs, steps_per_epoch=steps_per_epoch,
                seed=seed, encoder_checkpoint=encoder_checkpoint, progress=f"training {name3d}"),
        }
    rows = []
    for k, ex in enumerate(progress(test_exams, desc=f"scoring test exams with {len(segmenters)} models",
                                    unit="exam")):
        row = {"exam": k, "sex": ex.meta["sex"], "age": ex.meta["age"], "reference": ex.reference.agatston,
               "eat_ml": epicardial_fat_volume(ex.hu, ex.spacing, ex.pericardium)}
        for name, seg in segmenters.items():
            t0 = time.perf_counter()
            row[f"pred_{name}"] = seg.score(ex.hu, ex.spacing).agatston
            row[f"seconds_{name}"] = time.perf_counter() - t0
        rows.append(row)
    exams_df = add_subgroups(pd.DataFrame(rows))
    tables = {name: fairness_table(exams_df, predicted=f"pred_{name}", seed=seed) for name in segmenters}
    files = {"exams": out / "fairness_exams.csv"}
    figures = {"figure": out / "fairness_gaps.png"}
    exams_df.to_csv(files["exams"], index=False)
    for name, t in tables.items():
        files[f"table_{name}"] = out / f"fairness_{name}.csv"
        t.to_csv(files[f"table_{name}"], index=False)
    plot_fairness_gaps(tables, figures["figure"], metric=metric)
    metrics = {"n_test": len(exams_df), "models": list(segmenters), "metric": metric,
               "seconds_per_exam": {name: float(exams_df[f"seconds_{name}"].mean()) for name in segmenters}}
    return RecipeResult("cac_fairness", metrics=metrics,
                        tables={"exams": exams_df, **{f"fairness_{k}": t for k, t in tables.items()}},
                        files=files, figures=figures)
