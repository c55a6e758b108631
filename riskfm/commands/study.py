"""``riskfm study ...``: the seeds' headline studies, each one command on a user's run configuration.

Parse, validate, call the library; no logic lives here. CONFIG is a ``riskfm train`` configuration
with an optional ``study:`` section (:mod:`riskfm.recipes.study_config`):

* ``ecg-stenosis`` calls :func:`riskfm.recipes.ecg_stenosis` (seed 002: ECG foundation model ->
  severe stenosis per artery, with the paper's whole analysis);
* ``cora-mace`` calls :func:`riskfm.recipes.cora_mace` (seed 001: CORA image features + a frozen
  language model of the clinical variables -> 30-day MACE, by arm).

Each writes a report folder (``report.html``, tables, figures) and prints where it is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from riskfm.commands.common import handle_errors

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="The papers' headline studies on your cohort: ECG -> stenosis, CORA + LLM -> MACE.")

CONFIG = Annotated[Path, typer.Argument(help="run configuration (YAML, the `riskfm train` format) with an "
                                              "optional `study:` section")]
OUT = Annotated[Path | None, typer.Option(help="override `out` (the study's folder)")]
EPOCHS = Annotated[int | None, typer.Option(help="override the number of epochs (`train.epochs`)")]


def _overrides(out: Path | None, epochs: int | None) -> dict:
    return {"out": str(out.resolve()) if out else None, "train.epochs": epochs}


def _print_result(res) -> None:
    # Every study returns its headline table as tables["summary"] and its HTML report as files["report"].
    typer.echo(res.tables["summary"].to_string(index=False))
    typer.echo(f"report: {res.files['report']}")


@app.command("ecg-stenosis")
@handle_errors
def ecg_stenosis(config: CONFIG, out: OUT = None, epochs: EPOCHS = None, verbose: bool = False) -> None:
    """Seed 002: fine-tune an ECG encoder for severe stenosis per artery and write the paper's analysis."""
    from riskfm.recipes import ecg_stenosis as run

    _print_result(run(config, overrides=_overrides(out, epochs)))


@app.command("cora-mace")
@handle_errors
def cora_mace(config: CONFIG, out: OUT = None, epochs: EPOCHS = None, verbose: bool = False) -> None:
    """Seed 001: CORA image features + frozen LLM of the clinical variables -> 30-day MACE, by arm."""
    from riskfm.recipes import cora_mace as run

    _print_result(run(config, overrides=_overrides(out, epochs)))
