"""Seed-003 non-gated pipeline, end to end: segmentation -> per-slice summaries -> bucket trees.

A non-gated chest CT blurs and smears calcium with the heartbeat, so the Agatston sum of the
predicted mask is biased; seed 003 instead summarises the predicted calcium of the five slices with
the largest area (:mod:`riskfm.ct.calcium.nongated`) and lets gradient-boosted trees learn the
bucket. This recipe runs that on exams with reference scores: a trained segmenter predicts each
exam's calcium, the summaries of the training exams fit :class:`BucketClassifier`, and the test
exams are classified. The Agatston-of-the-mask bucket is reported next to it as the baseline the
trees must beat.

Writes ``nongated_exams.csv`` (per test exam: reference, both predictions), ``nongated_metrics.json``
(Cohen's kappa with CIs, weighted kappa, accuracy per method) and ``nongated_confusion.png``
(:func:`riskfm.plots.cac.plot_bucket_confusion`). :func:`run_nongated_synthetic` runs it on
synthetic non-gated exams (``riskfm cac nongated``), training a segmenter first when none is given.
Progress on stderr (:mod:`riskfm.progress`): a bar of the exams segmented.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from riskfm.ct.calcium.categories import BUCKET_NAMES, agatston_bucket
from riskfm.ct.calcium.nongated import BucketClassifier, exam_features, slice_summaries
from riskfm.ct.calcium.scoring import score_calcium
from riskfm.recipes.result import RecipeResult

__all__ = ["nongated_features", "run_nongated", "run_nongated_synthetic"]


def nongated_features(segmenter: Any, exams: Sequence[Any], *, desc: str = "segmenting exams"
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Exam vectors and mask Agatston scores from a segmenter's predictions.

    Parameters
    ----------
    segmenter : CalciumSegmenter
        Anything with ``predict(hu, spacing) -> labels [Z, Y, X]`` (0 background, 1-4 arteries).
    exams : sequence of exams
        Objects with ``hu`` ``[Z, Y, X]`` (HU) and ``spacing`` (z, y, x) mm.
    desc : str
        The progress bar's label (stderr, :mod:`riskfm.progress`).

    Returns
    -------
    features : np.ndarray of float, shape [N, 20]
        :func:`riskfm.ct.calcium.nongated.exam_features` of each exam's predicted calcium.
    agatston : np.ndarray of float, shape [N]
        Agatston score of each predicted mask.
    """
    from riskfm.progress import progress

    feats, agat = [], []
    for ex in progress(exams, desc=desc, unit="exam"):
        labels = segmenter.predict(ex.hu, ex.spacing)
        feats.append(exam_features(slice_summaries(ex.hu, labels, ex.spacing)))
        agat.append(score_calcium(ex.hu, ex.spacing, labels=labels).agatston)
    return np.asarray(feats), np.asarray(agat)


def run_nongated(out: str | Path, segmenter: Any, *, train_exams: Sequence[Any], test_exams: Sequence[Any],
                 seed: int = 0) -> RecipeResult:
    """Fit the bucket trees on ``train_exams`` and score ``test_exams``; write tables and a figure.

    Parameters
    ----------
    out : path
        Output folder.
    segmenter : CalciumSegmenter
        Trained calcium segmentation (:func:`riskfm.train.tasks.calcium_segmentation.train_segmenter`).
    train_exams, test_exams : sequences of exams
        ``hu``, ``spacing`` and ``reference`` (a ``CalciumScore``) each, e.g.
        ``make_calcium_exam(i, gated=False)``. The training exams need at least two buckets.
    seed : int
        Seed of the trees.

    Returns
    -------
    RecipeResult
        ``name`` ``"cac_nongated"``; ``metrics`` as written to ``nongated_metrics.json``
        (``n_train``, ``n_test``, ``seconds_per_exam`` and, for ``trees`` and ``mask``,
        ``kappa`` and ``kappa_linear`` (``{"value", "ci", "method", "n", ...}``) and ``accuracy`` of the
        bucket against the reference's); ``tables`` ``exams`` (one row per test exam: reference,
        mask Agatston and buckets 0-4); ``files`` ``exams``, ``metrics``; ``figures`` ``figure``
        (``nongated_confusion.png``); ``extras`` ``classifier`` (the fitted BucketClassifier).
    """
    from riskfm.evaluate.agreement import cohen_kappa
    from riskfm.plots.cac import plot_bucket_confusion

    if not train_exams or not test_exams:
        raise ValueError("run_nongated needs training and test exams")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    x_train, _ = nongated_features(segmenter, train_exams, desc="segmenting training exams")
    y_train = agatston_bucket(np.array([ex.reference.agatston for ex in train_exams]))
    clf = BucketClassifier(seed=seed).fit(x_train, y_train)
    t0 = time.perf_counter()
    x_test, mask_agatston = nongated_features(segmenter, test_exams, desc="segmenting test exams")
    trees = clf.predict(x_test)
    seconds = (time.perf_counter() - t0) / len(test_exams)
    ref = np.array([ex.reference.agatston for ex in test_exams])
    ref_bucket = agatston_bucket(ref)
    df = pd.DataFrame({"exam": np.arange(len(test_exams)), "reference_agatston": ref, "reference_bucket": ref_bucket,
                       "mask_agatston": mask_agatston, "mask_bucket": agatston_bucket(mask_agatston),
                       "trees_bucket": trees})
    metrics: dict[str, Any] = {"n_train": len(train_exams), "n_test": len(test_exams),
                               "seconds_per_exam": seconds}
    for name in ("trees", "mask"):
        pred = df[f"{name}_bucket"].to_numpy()
        # All five buckets: a bucket absent from this test set still counts as a step for weighted kappa.
        k = cohen_kappa(ref_bucket, pred, categories=range(len(BUCKET_NAMES)))
        kw = cohen_kappa(ref_bucket, pred, weights="linear", categories=range(len(BUCKET_NAMES)), seed=seed)
        metrics[name] = {"kappa": k.to_dict(), "kappa_linear": kw.to_dict(),
                         "accuracy": float(np.mean(pred == ref_bucket))}
    files = {"exams": out / "nongated_exams.csv", "metrics": out / "nongated_metrics.json"}
    figures = {"figure": out / "nongated_confusion.png"}
    df.to_csv(files["exams"], index=False)
    files["metrics"].write_text(json.dumps(metrics, indent=2))
    plot_bucket_confusion(ref_bucket, {"bucket trees": df["trees_bucket"].to_numpy(),
                                       "Agatston of the mask": df["mask_bucket"].to_numpy()}, figures["figure"])
    return RecipeResult("cac_nongated", metrics=metrics, tables={"exams": df}, files=files, figures=figures,
                        extras={"classifier": clf})


def run_nongated_synthetic(out: str | Path, model: str | Path | Any | None = None, *, n_train: int = 60,
                           n_test: int = 40, n_gated: int = 24, seed: int = 0, epochs: int = 10,
                           steps_per_epoch: int = 25) -> RecipeResult:
    """Run :func:`run_nongated` on synthetic non-gated exams, training a segmenter first if none is given.

    What ``riskfm cac nongated`` runs. Without ``model``, a U-Net is trained on ``n_gated`` gated
    synthetic exams (:func:`riskfm.train.tasks.calcium_segmentation.train_segmenter_on_synthetic`); then
    ``n_train`` + ``n_test`` non-gated synthetic exams are rendered (their own seeds,
    :func:`riskfm.ct.calcium.protocols.protocol_exams` offsets 20000 and 30000) and
    :func:`run_nongated` fits the bucket trees and scores the test exams. Status lines and bars on
    stderr (:mod:`riskfm.progress`).

    Parameters
    ----------
    out : str or path
        Output folder (created).
    model : path or CalciumSegmenter, optional
        A trained segmentation model: a ``.pt`` from ``riskfm cac train``
        (:func:`riskfm.ct.calcium.load_calcium_model`) or a segmenter object. None trains one.
    n_train, n_test : int
        Non-gated synthetic exams that fit the bucket trees / are held out.
    n_gated : int, default 24
        Gated synthetic exams the fallback U-Net trains on (without ``model``).
    seed : int
        Seed of the synthetic exams, the fallback U-Net's training and the trees.
    epochs, steps_per_epoch : int
        Training length of the fallback U-Net.

    Returns
    -------
    RecipeResult
        :func:`run_nongated`'s result.
    """
    from riskfm.ct.calcium import load_calcium_model
    from riskfm.ct.calcium.protocols import protocol_exams
    from riskfm.progress import status
    from riskfm.train.tasks.calcium_segmentation import train_segmenter_on_synthetic

    if model is None:
        status(f"no segmentation model given: training a U-Net on {n_gated} gated synthetic exams first")
        segmenter = train_segmenter_on_synthetic(n_gated, seed=seed, desc="rendering gated exams", epochs=epochs,
                                                 steps_per_epoch=steps_per_epoch, progress="training unet2d")
    elif isinstance(model, str | os.PathLike):
        segmenter = load_calcium_model(model)
    else:
        segmenter = model
    status(f"rendering {n_train} + {n_test} non-gated synthetic exams")
    train = protocol_exams(n_train, seed, offset=20_000, desc="rendering training exams", gated=False)
    test = protocol_exams(n_test, seed, offset=30_000, desc="rendering test exams", gated=False)
    return run_nongated(out, segmenter, train_exams=train, test_exams=test, seed=seed)
