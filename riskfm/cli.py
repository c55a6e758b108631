"""``riskfm`` command line: parse, validate, call the library. No logic lives here.

Errors
------
Every command (here and in riskfm/commands/*.py) is wrapped by
:func:`riskfm.commands.common.handle_errors`, so all report errors the same way:

* **User error** - a problem with the user's input, config or files: a
  :class:`riskfm.errors.RiskfmError`, or a ``ValueError`` (``ConfigError``, ``ManifestError``,
  ``ECGReadError``, ``CTReadError``, ``CheckpointError``, ...), an ``OSError``
  (``FileNotFoundError``, ``PermissionError``, ...) or a ``KeyError``. Printed as
  ``error: <message>`` (a message that names the file / key and the fix), exit code **2**, no
  traceback. Usage errors found by the parser (unknown option, bad number) also exit 2.
* **Internal error** - any other exception (e.g. a ``RuntimeError`` from deep inside torch):
  ``error: internal error, <type>: <first line>`` and "run with --verbose for the traceback",
  exit code **1**.
* Ctrl-C: exit code 130.

``--verbose`` prints the traceback before the message (and turns on INFO logging). It can be given
before the command (``riskfm --verbose train cfg.yaml``), after it (every command takes
``--verbose``), or as the environment variable ``RISKFM_VERBOSE=1``.

Under ``torchrun`` every rank runs the command: only rank 0 prints result tables, but each rank
prints its own error.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from riskfm.commands.common import handle_errors, set_global_verbose

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Multimodal cardiovascular risk models: train, evaluate, predict, demo.")


@app.callback()
def _root(
    ctx: typer.Context,
    verbose: Annotated[bool, typer.Option(
        "--verbose", "-v", help="show tracebacks of errors and INFO logs, for any command (or RISKFM_VERBOSE=1)")] = False,
    quiet: Annotated[bool, typer.Option(
        "--quiet", "-q", help="no progress bars or status lines on stderr, for any command (or RISKFM_QUIET=1)")] = False,
) -> None:
    """Multimodal cardiovascular risk models: train, evaluate, predict, demo."""
    set_global_verbose(ctx, verbose)
    from riskfm.progress import set_quiet

    set_quiet(quiet)  # every invocation decides anew (tests and notebooks run several in one process)


def _print_table(table, title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    if "split" not in table.columns:
        table = table.reset_index()
    t = Table(title=title)
    for col in ("split", "target", "AUROC (95% CI)", "n", "n_pos", "oracle AUROC", "gap"):
        # The estimate and its CI stay on one line (a CI folded or cut to "(0.45…" reads as another
        # number); the other columns fold when the terminal is narrow, nothing is ever cut.
        t.add_column(col, justify="right" if col not in ("split", "target") else "left",
                     no_wrap=col == "AUROC (95% CI)", overflow="fold")
    for _, r in table.iterrows():
        if r["auroc"] != r["auroc"]:  # not estimable: say why (e.g. "1 event < 10") instead of a number
            au = f"n/e ({r['note']})" if isinstance(r.get("note"), str) and r.get("note") else "n/a"
        elif r["ci_low"] == r["ci_low"]:
            au = f"{r['auroc']:.3f} ({r['ci_low']:.3f}-{r['ci_high']:.3f})"
        else:
            au = f"{r['auroc']:.3f}"
        orc = r.get("oracle_auroc", float("nan"))
        gap = "" if orc != orc or r["auroc"] != r["auroc"] else f"{r['auroc'] - orc:+.3f}"
        t.add_row(str(r["split"]), str(r["target"]), au, str(r["n"]), str(r["n_pos"]),
                  "" if orc != orc else f"{orc:.3f}", gap)
    Console().print(t)


@app.command()
@handle_errors
def demo(
    out: Annotated[Path, typer.Option(help="output folder (cohort/ and report/ are written inside)")] = Path("runs/demo"),
    quick: Annotated[bool, typer.Option(help="300 patients, 2 epochs: a smoke test in about a minute")] = False,
    n: Annotated[int | None, typer.Option(help="number of synthetic patients (default 1000)")] = None,
    epochs: Annotated[int | None, typer.Option(help="override the number of epochs")] = None,
    seed: int = 0,
    verbose: bool = False,
) -> None:
    """Generate the synthetic cohort, train ECG + CT + clinical-text model, report AUROC vs oracle."""
    from riskfm.recipes.demo import run_demo

    res = run_demo(out, n=n, quick=quick, seed=seed, epochs=epochs)
    _print_table(res["table"], "riskfm demo: model AUROC vs oracle (Bayes-optimal) AUROC")
    typer.echo(f"cohort {res['cohort_seconds']:.0f} s, training + evaluation {res['train_seconds']:.0f} s, "
               f"total {res['total_seconds']:.0f} s; best epoch {res['fit'].best_epoch + 1}")
    typer.echo(f"report: {res['out_dir'] / 'report'}")


@app.command()
@handle_errors
def train(
    config: Annotated[Path, typer.Argument(help="run configuration (YAML)")],
    manifest: Annotated[Path | None, typer.Option(help="override `manifest`")] = None,
    out: Annotated[Path | None, typer.Option(help="override `out`")] = None,
    epochs: Annotated[int | None, typer.Option(help="override `train.epochs`")] = None,
    external_site: Annotated[list[str] | None, typer.Option(help="override `split.external_sites` (repeatable)")] = None,
    verbose: bool = False,
) -> None:
    """Train and evaluate a model from CONFIG; works the same under `torchrun --nproc_per_node N`."""
    from riskfm.train.config import load_config

    overrides = {
        "manifest": str(manifest.resolve()) if manifest else None,
        "out": str(out.resolve()) if out else None,
        "train.epochs": epochs,
        "split.external_sites": list(external_site) if external_site else None,
    }
    cfg = load_config(config, overrides)
    from riskfm.train.run import run_training

    res = run_training(cfg)
    if int(os.environ.get("RANK", "0")) == 0:
        from riskfm.evaluate.run_metrics import auroc_table

        _print_table(auroc_table(res.metrics), f"riskfm train: {cfg.out}")
        typer.echo(f"outputs: {res.out_dir}")


@app.command()
@handle_errors
def predict(
    run_dir: Annotated[Path, typer.Argument(help="a finished run folder (holds model.pt)")],
    manifest: Annotated[Path, typer.Argument(help="manifest of the patients to score")],
    out: Annotated[Path, typer.Option(help="where to write the predictions CSV")] = Path("predictions.csv"),
    batch_size: int = 32,
) -> None:
    """Score the patients of MANIFEST with a trained run."""
    from riskfm.commands.common import run_model_errors
    from riskfm.train.run import predict_manifest

    if not (run_dir / "model.pt").is_file():
        raise FileNotFoundError(f"{run_dir}: not a finished run folder (no model.pt); give the `out` folder "
                                "of a completed `riskfm train`")
    if not manifest.is_file():
        raise FileNotFoundError(f"{manifest}: manifest not found")
    with run_model_errors(run_dir):
        preds, cohort = predict_manifest(run_dir, manifest, batch_size=batch_size)
    out.parent.mkdir(parents=True, exist_ok=True)
    preds.to_csv(out, index=False)
    typer.echo(cohort.report())
    typer.echo(f"{preds['patient_id'].nunique()} patients scored -> {out}")


def _mount_commands() -> None:
    # Sub-commands live in riskfm/commands/<topic>.py; each is a thin wrapper over the library.
    from riskfm.commands.evaluate import evaluate as evaluate_command

    app.command("evaluate")(evaluate_command)  # each command is already wrapped by handle_errors
    from riskfm.commands.cac import app as cac_app

    app.add_typer(cac_app, name="cac", help="Coronary calcium: score scans, train segmentation, protocols.")
    from riskfm.commands.ct import app as ct_app
    from riskfm.commands.ct import pretrain_ct

    app.command("pretrain-ct")(pretrain_ct)
    app.add_typer(ct_app, name="ct", help="CORA CCTA model: plaque, stenosis, segmentation, abnormality maps.")
    from riskfm.commands.explain import explain

    app.command("explain")(explain)


_mount_commands()


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
