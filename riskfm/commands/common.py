"""What every ``riskfm`` command shares: one error handler, ``--verbose`` and logging.

Every command function (in riskfm/cli.py and riskfm/commands/*.py) is decorated with
:func:`handle_errors`; riskfm/cli.py's module docstring says what users see.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from riskfm.errors import EXIT_INTERNAL_ERROR, EXIT_USER_ERROR, CheckpointError, error_message, is_user_error

__all__ = ["VERBOSE_ENV", "handle_errors", "report_error", "run_model_errors", "set_global_verbose", "setup_logging",
           "verbose_requested"]

#: Environment variable that turns on ``--verbose`` for every command (``1``, ``true``, ``yes``, ``on``).
VERBOSE_ENV = "RISKFM_VERBOSE"
_META_KEY = "riskfm.verbose"  # click's Context.meta is shared by a command and its parent groups
_VERBOSE_HELP = "show the traceback of an error, and INFO logs (same as `riskfm --verbose` or RISKFM_VERBOSE=1)"

F = TypeVar("F", bound=Callable[..., Any])


def _click_api() -> tuple[Callable[..., Any], tuple[type[BaseException], ...]]:
    """``get_current_context`` and the exceptions the parser handles itself, for the click typer runs on.

    typer >= 0.2x ships its own copy of click (``typer._click``; ``typer.Exit`` is not click's);
    older typer uses the ``click`` package. Both are covered.
    """
    passthrough: list[type[BaseException]] = [typer.Exit, typer.Abort]
    passthrough += [c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException"]
    get_context = None
    try:
        from typer._click.globals import get_current_context as get_context
    except ImportError:
        pass
    try:
        import click

        passthrough += [click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort]
        get_context = get_context or click.get_current_context
    except ImportError:
        pass
    return get_context or (lambda silent=True: None), tuple(dict.fromkeys(passthrough))


_get_current_context, _PASSTHROUGH = _click_api()


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record is emitted (test runners swap it per call)."""

    @property  # type: ignore[override]
    def stream(self):  # noqa: D102
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def setup_logging(verbose: bool) -> None:
    """INFO logs with ``--verbose``, WARNING otherwise (only the first call configures logging)."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s", handlers=[_StderrHandler()])


def set_global_verbose(ctx: Any, verbose: bool) -> None:
    """Record the top-level ``riskfm --verbose`` for the command that runs under ``ctx``."""
    if ctx is not None and verbose:
        ctx.meta[_META_KEY] = True


def verbose_requested(flag: bool = False) -> bool:
    """The command's ``--verbose``, or ``riskfm --verbose``, or ``RISKFM_VERBOSE=1``."""
    if flag:
        return True
    ctx = _get_current_context(silent=True)
    if ctx is not None and ctx.meta.get(_META_KEY):
        return True
    return os.environ.get(VERBOSE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def report_error(exc: BaseException, verbose: bool) -> int:
    """Print ``exc`` for a user of the command line and return the exit code.

    User errors (:func:`riskfm.errors.is_user_error`): ``error: <message>``, exit 2. Anything else
    is an internal error: ``error: <type>: <first line>`` plus a hint to rerun with ``--verbose``,
    exit 1. With ``verbose`` the full traceback comes first.
    """
    if verbose:
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
        sys.stderr.flush()
    if is_user_error(exc):
        typer.secho(f"error: {error_message(exc)}", fg=typer.colors.RED, err=True)
        return EXIT_USER_ERROR
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    first = lines[0].strip() if lines else ""
    if len(first) > 300:
        first = first[:297] + "..."
    typer.secho(f"error: internal error, {type(exc).__name__}" + (f": {first}" if first else ""),
                fg=typer.colors.RED, err=True)
    if not verbose:
        typer.secho("run with --verbose for the traceback (e.g. riskfm --verbose <command> ...)",
                    fg=typer.colors.RED, err=True)
    return EXIT_INTERNAL_ERROR


def handle_errors(func: F) -> F:
    """Decorate a typer command: report errors cleanly, and give it a ``--verbose`` option.

    * A ``verbose`` parameter the command already declares keeps working, and receives the
      effective value (its flag, ``riskfm --verbose`` or ``RISKFM_VERBOSE``); commands without one
      get a ``--verbose`` flag that only this wrapper reads.
    * Logging is configured (INFO when verbose).
    * click / typer exceptions (usage errors, ``typer.Exit``) pass through; Ctrl-C exits 130; any
      other exception is printed by :func:`report_error` and becomes ``typer.Exit`` with its code
      (2 user error, 1 internal error).
    """
    signature = inspect.signature(func, eval_str=True)
    declares_verbose = "verbose" in signature.parameters

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        flag = kwargs.get("verbose", False) if declares_verbose else kwargs.pop("verbose", False)
        verbose = verbose_requested(bool(flag))
        if declares_verbose:
            kwargs["verbose"] = verbose
        setup_logging(verbose)
        try:
            return func(*args, **kwargs)
        except _PASSTHROUGH:
            raise  # usage errors, typer.Exit, typer.Abort: typer reports them
        except KeyboardInterrupt:
            typer.secho("interrupted", fg=typer.colors.RED, err=True)
            raise typer.Exit(code=130) from None
        except Exception as exc:  # noqa: BLE001 - every error ends here, reported in one or two lines
            code = report_error(exc, verbose)
            raise typer.Exit(code=code) from None

    params = list(signature.parameters.values())
    if not declares_verbose:
        params.append(inspect.Parameter("verbose", inspect.Parameter.KEYWORD_ONLY, default=False,
                                        annotation=Annotated[bool, typer.Option("--verbose", help=_VERBOSE_HELP)]))
    wrapper.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
    # typer resolves annotations with get_type_hints(): give it the evaluated ones, not strings
    # that would be looked up in this module's namespace.
    wrapper.__annotations__ = {p.name: p.annotation for p in params}
    if signature.return_annotation is not inspect.Signature.empty:
        wrapper.__annotations__["return"] = signature.return_annotation
    return wrapper  # type: ignore[return-value]


@contextlib.contextmanager
def run_model_errors(run_dir: str | os.PathLike) -> Iterator[None]:
    """Name ``RUN_DIR/model.pt`` when its weights do not fit the model its config describes.

    ``RiskModel.load_checkpoint_state_dict`` reports that as a ``RuntimeError`` ("checkpoint does
    not match the model: ..."); it is a problem with the user's file, so it becomes a
    :class:`~riskfm.errors.CheckpointError` (exit 2). Any other ``RuntimeError`` stays an internal error.
    """
    try:
        yield
    except (RuntimeError, CheckpointError) as exc:
        if "checkpoint does not match" not in str(exc):
            raise
        raise CheckpointError(f"{Path(run_dir) / 'model.pt'}: {exc}; was it written by another riskfm version? "
                              "Retrain with `riskfm train`") from exc
