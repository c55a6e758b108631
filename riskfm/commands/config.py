"""``riskfm config init|show``: write the default run configuration to edit; print a resolved one.

Parse, validate, call the library (:mod:`riskfm.config_default`); no logic lives here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from riskfm.commands.common import handle_errors

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Run configurations: write the default one to edit, print a resolved one.")


@app.command()
@handle_errors
def init(
    path: Annotated[Path, typer.Argument(help="the YAML file to write")] = Path("riskfm.yaml"),
    force: Annotated[bool, typer.Option("--force", help="overwrite an existing file")] = False,
) -> None:
    """Write the default run configuration (what `riskfm train` uses without CONFIG) as commented YAML."""
    from riskfm.config_default import write_default_config

    written = write_default_config(path, force=force)
    typer.echo(f"wrote {written}; set `manifest` (and `out`), then: riskfm train {written}")


@app.command()
@handle_errors
def show(
    config: Annotated[Path, typer.Argument(help="run configuration (YAML)")],
) -> None:
    """Validate CONFIG and print it with every key resolved (defaults filled in, paths absolute)."""
    from riskfm.config_default import config_yaml, resolve_run_config

    typer.echo(config_yaml(resolve_run_config(config)), nl=False)
