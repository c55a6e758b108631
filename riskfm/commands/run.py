"""``riskfm demo``, ``riskfm train`` and ``riskfm predict``: a whole run, from a config or the default one.

Parse, validate, call the library; no logic lives here:

* ``demo`` calls :func:`riskfm.recipes.demo.run_demo`;
* ``train`` calls :func:`riskfm.train.run.run_training` on the configuration
  :func:`riskfm.config_default.resolve_run_config` reads (CONFIG, or the default configuration);
* ``predict`` calls :func:`riskfm.train.run.predict_manifest`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from riskfm.commands.common import SEED, format_auroc, handle_errors, run_model_errors

EPOCHS = Annotated[int | None, typer.Option(help="override the number of epochs (`train.epochs`)")]
_TABLE_COLUMNS = ("split", "target", "AUROC (95% CI)", "n", "n_pos", "oracle AUROC", "gap")


def print_auroc_table(table, title: str) -> None:
    """Print an AUROC table (:func:`riskfm.evaluate.run_metrics.auroc_table`) with rich.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per split and target: ``auroc``, ``ci_low``, ``ci_high``, ``n``, ``n_pos``, optional
        ``note`` (why not estimable) and ``oracle_auroc``; ``split`` / ``target`` as columns or index.
        Each AUROC is printed by :func:`~riskfm.commands.common.format_auroc` (the estimate and its
        CI on one line; a missing one says why, e.g. ``n/e (1 event < 10)``).
    title : str
        The table's title.
    """
    from rich.console import Console
    from rich.table import Table

    if "split" not in table.columns:
        table = table.reset_index()
    t = Table(title=title)
    for col in _TABLE_COLUMNS:
        # The estimate and its CI stay on one line (a CI folded or cut to "(0.45…" reads as another
        # number); the other columns fold when the terminal is narrow, nothing is ever cut.
        t.add_column(col, justify="right" if col not in ("split", "target") else "left",
                     no_wrap=col == "AUROC (95% CI)", overflow="fold")
    for _, r in table.iterrows():
        orc = r.get("oracle_auroc", float("nan"))
        gap = "" if orc != orc or r["auroc"] != r["auroc"] else f"{r['auroc'] - orc:+.3f}"
        t.add_row(str(r["split"]), str(r["target"]), format_auroc(r), str(r["n"]), str(r["n_pos"]),
                  "" if orc != orc else f"{orc:.3f}", gap)
    Console().print(t)


@handle_errors
def demo(
    out: Annotated[Path, typer.Option(help="output folder (cohort/ and report/ are written inside)")] = Path("runs/demo"),
    quick: Annotated[bool, typer.Option(help="300 patients, 2 epochs: a smoke test in about a minute")] = False,
    n: Annotated[int | None, typer.Option(help="number of synthetic patients (default 1000)")] = None,
    epochs: EPOCHS = None,
    seed: SEED = 0,
    verbose: bool = False,
) -> None:
    """Generate the synthetic cohort, train ECG + CT + clinical-text model, report AUROC vs oracle."""
    from riskfm.recipes.demo import run_demo

    res = run_demo(out, n=n, quick=quick, seed=seed, epochs=epochs)
    print_auroc_table(res.tables["auroc_vs_oracle"], "riskfm demo: model AUROC vs oracle (Bayes-optimal) AUROC")
    m = res.metrics  # the timings are wall seconds in the result's metrics
    typer.echo(f"cohort {m['cohort_seconds']:.0f} s, training + evaluation {m['train_seconds']:.0f} s, "
               f"total {m['total_seconds']:.0f} s; best epoch {res.extras['fit'].best_epoch + 1}")
    typer.echo(f"report: {res.files['report']}")


@handle_errors
def train(
    config: Annotated[Path | None, typer.Argument(
        help="run configuration (YAML); omitted: the default configuration (`riskfm config init` writes it), "
             "which needs --manifest")] = None,
    manifest: Annotated[Path | None, typer.Option(help="override `manifest`")] = None,
    out: Annotated[Path | None, typer.Option(help="override `out`")] = None,
    epochs: EPOCHS = None,
    external_site: Annotated[list[str] | None, typer.Option(help="override `split.external_sites` (repeatable)")] = None,
    verbose: bool = False,
) -> None:
    """Train and evaluate a model from CONFIG, or the default configuration; works the same under `torchrun`."""
    from riskfm.config_default import resolve_run_config

    cfg = resolve_run_config(config, {
        "manifest": str(manifest.resolve()) if manifest else None,
        "out": str(out.resolve()) if out else None,
        "train.epochs": epochs,
        "split.external_sites": list(external_site) if external_site else None,
    })
    from riskfm.train.run import run_training

    res = run_training(cfg)
    if int(os.environ.get("RANK", "0")) == 0:
        from riskfm.evaluate.run_metrics import auroc_table

        print_auroc_table(auroc_table(res.metrics), f"riskfm train: {cfg.out}")
        typer.echo(f"outputs: {res.out_dir}")


@handle_errors
def predict(
    run_dir: Annotated[Path, typer.Argument(help="a finished run folder (holds model.pt)")],
    manifest: Annotated[Path, typer.Argument(help="manifest of the patients to score")],
    out: Annotated[Path, typer.Option(help="where to write the predictions CSV")] = Path("predictions.csv"),
    batch_size: int = 32,
    cache_dir: Annotated[Path | None, typer.Option(
        help="prepared cache to read and fill (default $RISKFM_CACHE_DIR, else ~/.cache/riskfm/prepared)")] = None,
    cache: Annotated[bool, typer.Option(help="--no-cache: prepare every file into memory instead")] = True,
) -> None:
    """Score the patients of MANIFEST with a trained run."""
    from riskfm.train.run import predict_manifest

    if not (run_dir / "model.pt").is_file():
        raise FileNotFoundError(f"{run_dir}: not a finished run folder (no model.pt); give the `out` folder "
                                "of a completed `riskfm train`")
    if not manifest.is_file():
        raise FileNotFoundError(f"{manifest}: manifest not found")
    with run_model_errors(run_dir):
        preds, cohort = predict_manifest(run_dir, manifest, batch_size=batch_size,
                                         cache_dir=False if not cache else cache_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    preds.to_csv(out, index=False)
    typer.echo(cohort.report())
    typer.echo(f"{preds['patient_id'].nunique()} patients scored -> {out}")


@handle_errors
def prepare(
    config: Annotated[Path | None, typer.Argument(
        help="run configuration (YAML), as for `riskfm train`; omitted: the default configuration, "
             "which needs --manifest")] = None,
    manifest: Annotated[Path | None, typer.Option(help="override `manifest`")] = None,
    shard: Annotated[str | None, typer.Option(
        help="prepare part i of N (0-based, e.g. 0/4): N machines sharing the cache folder fill it together")] = None,
    workers: Annotated[int | None, typer.Option(help="threads preparing files (default `data.n_workers`)")] = None,
    cache_dir: Annotated[Path | None, typer.Option(help="override `data.cache_dir`")] = None,
    verbose: bool = False,
) -> None:
    """Prepare the ECG and CT files of CONFIG's cohort into the prepared cache (resumable, shardable)."""
    from riskfm.config_default import resolve_run_config
    from riskfm.progress import is_quiet
    from riskfm.train.prepare import parse_shard, prepare_run

    part = parse_shard(shard)
    cfg = resolve_run_config(config, {
        "manifest": str(manifest.resolve()) if manifest else None,
        "data.cache_dir": str(cache_dir.resolve()) if cache_dir else None,
    })
    table = prepare_run(cfg, part=part, workers=workers, progress=not is_quiet())
    typer.echo(table.to_string(index=False))
