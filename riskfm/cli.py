"""``riskfm`` command line: builds the app and mounts the commands of riskfm/commands/*.py.

Every command parses and validates its arguments and calls one library function; no logic lives
here or there. docs/cli.md lists the commands, the library function behind each and the exit codes.

Errors
------
Every command (in riskfm/commands/*.py) is wrapped by
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

import sys
from typing import Annotated

import typer

from riskfm.commands.common import set_global_verbose

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


def _mount_commands() -> None:
    """Mount every command of riskfm/commands/<topic>.py (each is already wrapped by handle_errors)."""
    from riskfm.commands import cac, config, ct, ecg, evaluate, explain, run, study

    for name, command in (("demo", run.demo), ("train", run.train), ("predict", run.predict),
                          ("prepare", run.prepare),
                          ("evaluate", evaluate.evaluate), ("explain", explain.explain),
                          ("pretrain-ct", ct.pretrain_ct)):
        app.command(name)(command)
    app.add_typer(config.app, name="config", help="Run configurations: write the default one (init), print one (show).")
    app.add_typer(cac.app, name="cac", help="Coronary calcium: score scans, train segmentation, protocols.")
    app.add_typer(ct.app, name="ct", help="CORA CCTA model: plaque, stenosis, segmentation, abnormality maps.")
    app.add_typer(ecg.app, name="ecg", help="ECG tools: build and inspect the ECG store.")
    app.add_typer(study.app, name="study", help="The papers' headline studies: ecg-stenosis (seed 002), cora-mace (seed 001).")


_mount_commands()


def _end_process_group() -> None:
    # A distributed run (torchrun) leaves gloo's threads running at exit unless the group is
    # destroyed; the process can then abort ("terminate called without an active exception")
    # after a run that succeeded. Only when torch.distributed was loaded: light commands stay light.
    dist = sys.modules.get("torch.distributed")
    if dist is not None and dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def main() -> None:
    """Entry point of the ``riskfm`` script (Ctrl-C exits 130)."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
    finally:
        _end_process_group()


if __name__ == "__main__":
    main()
