"""The embedded demo: synthetic cohort -> multimodal training (ECG + CT + clinical text) -> report.

It compares the model's AUROC with the oracle AUROC (the AUROC of each label's true probability,
which the synthetic cohort knows) on the internal test split and on the external site.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pandas as pd

from riskfm.arteries import STENOSIS_COLUMNS
from riskfm.recipes.result import RecipeResult
from riskfm.synthetic import make_cohort
from riskfm.synthetic.cohort import SyntheticCohort
from riskfm.train.run_folder import FINGERPRINT, LOCK

__all__ = ["DEMO_TARGETS", "demo_config", "oracle_predictions", "run_demo"]

#: The demo's targets: severe stenosis per artery (riskfm.arteries order) and 30-day MACE.
DEMO_TARGETS: tuple[str, ...] = (*STENOSIS_COLUMNS, "mace_30d")


def demo_config(manifest: Path, out: Path, *, quick: bool = False, epochs: int | None = None,
                seed: int = 0) -> dict:
    """Return the demo's run configuration (small encoders that train on a laptop CPU).

    A plain mapping for :class:`riskfm.train.config.RunConfig` with ``manifest`` and ``out`` as
    given. Training runs 24 epochs and the evaluation draws 500 bootstrap resamples; ``quick``
    makes that 2 epochs and 200 resamples, and ``epochs``, when given, sets the epochs either way.
    ``seed`` is the training seed (weights, batch order, augmentation); the split seed stays 0.
    """
    return {
        "manifest": str(manifest),
        "out": str(out),
        "modalities": ["ecg", "ct", "clinical"],
        "targets": ["stenosis", "mace_30d"],
        "split": {"external_sites": ["site_ext"], "test_fraction": 0.2, "val_fraction": 0.2, "seed": 0},
        "encoders": {
            # R-aligned median beats of the ECG band-passed like ECGFounder (zero-phase 0.67-40 Hz,
            # no baseline wander, no mains noise) at 250 Hz, read as the PR-referenced ST map
            # (12 leads x 20 ms bins), each value standardised over patients, by one linear layer.
            # The convolutional branch is off: on ~500 training patients it memorised the training
            # set within a few epochs, and a logistic regression on the standardised ST map came
            # within 0.02 of the oracle per artery where the network with convolutions stayed
            # 0.04-0.05 away (docs/quickstart.md, benchmarks/bench_demo.py).
            "ecg": {"name": "median-beat-cnn", "kwargs": {"feature_dim": 128, "conv": False, "st_norm": True,
                                                          "input_spec": {"fs": 250.0, "n_samples": 2500,
                                                                         "bandpass_hz": [0.67, 40.0],
                                                                         "representation": "median_beat"}}},
            # The CT network learns at a fifth of the rate of the rest: at the common rate it memorised
            # the ~500 training CTs within a few epochs (training loss 0.2 while validation AUROC fell),
            # and the three-modality model was further from the oracle than ECG + clinical alone on
            # all three seeds (external per-artery gap 0.054 vs 0.041, MACE 0.053 vs 0.032).
            "ct": {"name": "cnn3d-small", "lr": 2e-4, "kwargs": {"widths": [8, 16, 32, 64]}},
            # Clinical variables as one token each from the frozen MiniLM's embeddings of their names
            # and values (docs/clinical-encoders.md): within noise of the tabular encoder over demo
            # seeds 0-2 (external gap 0.037 +- 0.009 per artery vs 0.043 +- 0.012, MACE 0.051 +-
            # 0.011 vs 0.043 +- 0.028; benchmarks/results/demo.json), so the demo shows all three
            # encoder families. The sentence embedding of the whole record (text-lm) overfits here.
            "clinical": {"name": "clinical-lm-tokens"},
        },
        "fusion": {"proj_dim": 64, "modality_dropout": 0.1, "dropout": 0.1},
        "train": {"epochs": epochs or (2 if quick else 24), "batch_size": 32, "lr": 1e-3, "weight_decay": 1e-2,
                  "scheduler": "cosine", "ema_decay": 0.98, "augment": True, "patience": 8, "seed": seed,
                  "resume": False},
        "evaluate": {"n_boot": 200 if quick else 500},
        # The demo's prepared arrays live beside its cohort (out_dir/cache), not in ~/.cache: the
        # cohort is written anew by each demo, which would leave the old arrays behind there.
        "data": {"cache_dir": str(Path(out).parent / "cache")},
    }


def oracle_predictions(predictions: pd.DataFrame, oracle: pd.DataFrame) -> pd.DataFrame:
    """Return the predictions frame with ``y_prob`` replaced by each label's true probability.

    Parameters
    ----------
    predictions : pandas.DataFrame
        Long predictions, one row per patient x target, with columns ``patient_id``, ``target`` and
        ``y_prob`` (and any others, kept).
    oracle : pandas.DataFrame
        One row per patient: ``patient_id`` and ``p_<target>`` for each of :data:`DEMO_TARGETS`
        (the synthetic cohort's true probability of each label).

    Returns
    -------
    pandas.DataFrame
        ``predictions``' rows that have an oracle entry (inner join on ``patient_id`` and
        ``target``), with ``y_prob`` set to the true probability.
    """
    long = oracle.melt(id_vars=["patient_id"], value_vars=[f"p_{t}" for t in DEMO_TARGETS],
                       var_name="target", value_name="p_true")
    long["target"] = long["target"].str.slice(2)
    merged = predictions.merge(long, on=["patient_id", "target"], how="inner")
    return merged.assign(y_prob=merged["p_true"]).drop(columns="p_true")


def _check_reused_cohort(cohort: SyntheticCohort, *, n: int, seed: int) -> None:
    """Refuse a written cohort that is not the one ``make_cohort(n=n, seed=seed)`` writes by default.

    Parameters
    ----------
    cohort : SyntheticCohort
        The cohort to reuse; its folder's ``cohort.json`` (written last by ``make_cohort``, so its
        presence means the cohort is complete) is read.
    n, seed : int
        The demo's number of patients and seed.

    Raises
    ------
    ValueError
        If ``cohort.json`` is missing or unreadable, or records another generator, number of
        patients, seed or site list; the message names the file and the field.
    """
    from riskfm.synthetic.patients import DEFAULT_SITES

    path = Path(cohort.root) / "cohort.json"
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: cannot reuse this cohort, its record is missing or unreadable ({exc})") from exc
    expected = {"generator": "riskfm.synthetic.make_cohort", "n": n, "seed": seed,
                "sites": [s.name for s in DEFAULT_SITES]}
    for key, value in expected.items():
        if info.get(key) != value:
            raise ValueError(f"{path}: cannot reuse this cohort for the demo: {key} is {info.get(key)!r}, "
                             f"the demo needs {value!r}")


def run_demo(out_dir: str | Path = "runs/demo", *, n: int | None = None, quick: bool = False, seed: int = 0,
             epochs: int | None = None, cohort: SyntheticCohort | None = None) -> RecipeResult:
    """Generate the cohort, train, evaluate, and compare the model's AUROC with the oracle's.

    Writes ``out_dir/cohort`` (the synthetic cohort) and ``out_dir/report`` (config, predictions.csv,
    metrics.json, oracle_metrics.json, auroc_vs_oracle.csv, figures/). The demo always trains from
    scratch: an earlier demo's report (a riskfm run folder) is replaced, while any other non-empty
    ``report`` folder is refused, not overwritten.

    Parameters
    ----------
    out_dir : str or path
        Output folder.
    n : int, optional
        Synthetic patients (default 300 with ``quick``, else 1000).
    quick : bool
        Smoke-test size: 300 patients, 2 epochs, 200 bootstrap resamples.
    seed : int
        Seed of the cohort and of the training (weights, batch order, augmentation).
    epochs : int, optional
        Overrides the number of training epochs.
    cohort : SyntheticCohort, optional
        A cohort that :func:`riskfm.synthetic.make_cohort` already wrote with this ``n`` and
        ``seed`` (and the default sites), used instead of writing ``out_dir/cohort`` again: the
        cohort is a deterministic function of them, so a benchmark repeating one seed writes it
        once. Its ``cohort.json`` must record the same ``n`` and ``seed`` (``ValueError`` if not);
        ``cohort_seconds`` is then 0.

    Returns
    -------
    RecipeResult
        ``name`` ``"demo"``; ``tables`` ``auroc_vs_oracle`` (model and oracle AUROC per target
        on the test and external splits); ``metrics`` ``model`` (the run's ``metrics.json``
        structure), ``oracle`` (the same for the true probabilities) and the wall times in
        seconds, ``cohort_seconds``, ``train_seconds`` (training + evaluation) and
        ``total_seconds``; ``files`` ``out_dir``, ``report`` (the run folder), ``manifest`` (the
        cohort's), ``auroc_vs_oracle`` and ``oracle_metrics``; ``figures`` the evaluation's PNGs
        in ``report/figures`` by name; ``extras`` ``fit`` (the training's FitResult).
    """
    from riskfm.evaluate.run_metrics import auroc_table, metrics_from_predictions, write_metrics
    from riskfm.train.run import run_training

    out_dir = Path(out_dir)
    n = n or (300 if quick else 1000)
    t0 = time.perf_counter()
    if cohort is None:
        cohort = make_cohort(n=n, seed=seed, out_dir=out_dir / "cohort")
        shutil.rmtree(out_dir / "cache", ignore_errors=True)  # arrays of the files just replaced
    else:
        _check_reused_cohort(cohort, n=n, seed=seed)
    t_cohort = time.perf_counter() - t0
    cfg = demo_config(cohort.manifest_path, out_dir / "report", quick=quick, epochs=epochs, seed=seed)
    report = out_dir / "report"
    if (report / FINGERPRINT).is_file() and not (report / LOCK).exists():
        shutil.rmtree(report)  # an earlier demo's run folder (another size or seed would be refused)
    result = run_training(cfg)
    t_train = time.perf_counter() - t0 - t_cohort
    preds = result.predictions[result.predictions["target"].isin(DEMO_TARGETS)]
    oracle_preds = oracle_predictions(preds, cohort.oracle())
    oracle = metrics_from_predictions(oracle_preds, ci=None)
    files = {"out_dir": out_dir, "report": report, "manifest": Path(cohort.manifest_path),
             "auroc_vs_oracle": report / "auroc_vs_oracle.csv", "oracle_metrics": report / "oracle_metrics.json"}
    write_metrics(oracle, files["oracle_metrics"])
    table = auroc_table(result.metrics, oracle=oracle).reset_index()
    table = table[table["split"].isin(["test", "external"])].reset_index(drop=True)
    table.to_csv(files["auroc_vs_oracle"], index=False)
    metrics = {"model": result.metrics, "oracle": oracle, "cohort_seconds": t_cohort, "train_seconds": t_train,
               "total_seconds": time.perf_counter() - t0}
    figures = {p.stem: p for p in sorted((report / "figures").glob("*.png"))}  # the evaluation's
    return RecipeResult("demo", metrics=metrics, tables={"auroc_vs_oracle": table}, files=files, figures=figures,
                        extras={"fit": result.fit})
