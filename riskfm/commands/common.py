"""What every ``riskfm`` command shares: one error handler, ``--verbose``, logging and common options.

Every command function (in riskfm/commands/*.py) is decorated with :func:`handle_errors`;
riskfm/cli.py's module docstring says what users see. Options that several commands take are
declared once here: as ``Annotated`` types (:data:`OUT_DIR`, :data:`SEED`, ...) and as
:class:`OptionGroup` s, sets of options a command receives as one mapping.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import os
import sys
import traceback
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from riskfm.errors import EXIT_INTERNAL_ERROR, EXIT_USER_ERROR, CheckpointError, error_message, is_user_error

__all__ = ["OUT_DIR", "SEED", "VERBOSE_ENV", "OptionGroup", "check_choice", "format_auroc", "handle_errors",
           "report_error", "run_model_errors", "set_global_verbose", "setup_logging", "verbose_requested"]

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
    """Tell whether verbose output was asked for.

    True for the command's ``--verbose`` (``flag``), ``riskfm --verbose``, or ``RISKFM_VERBOSE=1``
    (also ``true`` / ``yes`` / ``on``).
    """
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


def check_choice(value: str, choices: Iterable[str], option: str) -> str:
    """``value`` if it is one of ``choices``, else a usage error (exit 2) before any work starts.

    Parameters
    ----------
    value : str
        What the user gave.
    choices : sequence of str
        The accepted values (the library's own tuple, e.g. ``segmentation.MODELS``).
    option : str
        The option's name for the message, e.g. ``"--model"``.

    Raises
    ------
    typer.BadParameter
        ``value`` is not accepted; the message lists the choices and a close match.
    """
    from riskfm.errors import did_you_mean

    choices = tuple(choices)
    if value not in choices:
        raise typer.BadParameter(f"{option} must be one of {', '.join(choices)}; got {value!r}"
                                 f"{did_you_mean(value, choices, n=1)}")
    return value


def format_auroc(row: Any) -> str:
    """One AUROC as the commands print it: ``0.812 (0.701-0.903)``, or ``0.812`` without an interval.

    Parameters
    ----------
    row : mapping or pandas.Series
        A row of :func:`riskfm.evaluate.run_metrics.auroc_table`: ``auroc``, ``ci_low``,
        ``ci_high`` (NaN when missing) and ``note`` (why the AUROC is not estimable).

    Returns
    -------
    str
        ``n/e (<note>)`` when the AUROC is not estimable (e.g. ``n/e (1 event < 10)``), ``n/a``
        when it is missing without a reason.
    """
    if row["auroc"] != row["auroc"]:  # NaN: say why instead of a number
        note = row.get("note")
        return f"n/e ({note})" if isinstance(note, str) and note else "n/a"
    if row["ci_low"] == row["ci_low"]:
        return f"{row['auroc']:.3f} ({row['ci_low']:.3f}-{row['ci_high']:.3f})"
    return f"{row['auroc']:.3f}"


#: ``--out`` of the commands that write a folder of results.
OUT_DIR = Annotated[Path, typer.Option(help="output folder")]
#: ``--seed`` of every command that draws random numbers.
SEED = Annotated[int, typer.Option(help="random seed (data, splits and initial weights)")]


class OptionGroup:
    """Options that several commands take, declared once; each command receives them as one dict.

    A command names the group's place in its signature with a parameter (``options`` by default,
    no default value needed: its annotation is ignored); the decorator returned by calling the
    group puts the group's options there, with the command's own defaults, and calls the command
    with ``options={name: value, ...}``. Compose it under :func:`handle_errors`.

    Parameters
    ----------
    **options : tuple of (annotation, default)
        Option name -> its typer annotation (``int`` or ``Annotated[int, typer.Option(help=...)]``)
        and default value.

    Examples
    --------
    >>> TRAINING = OptionGroup(epochs=(int, 10), seed=(SEED, 0))
    >>> @TRAINING(epochs=6)                                   # this command's default: 6 epochs
    ... def fit(out: str = "x", options: dict = None) -> dict:
    ...     return options
    >>> [p.name for p in inspect.signature(fit).parameters.values()]
    ['out', 'epochs', 'seed']
    >>> fit(out="y", epochs=2, seed=1)
    {'epochs': 2, 'seed': 1}
    """

    def __init__(self, **options: tuple[Any, Any]) -> None:
        self.options = dict(options)

    def __call__(self, into: str = "options", **defaults: Any) -> Callable[[F], F]:
        """Return a decorator putting the group's options in place of the command's parameter ``into``.

        Parameters
        ----------
        into : str, default "options"
            The parameter of the command that receives the values (a dict).
        **defaults
            This command's defaults of some options (the group's are used for the others).
        """
        unknown = sorted(set(defaults) - set(self.options))
        if unknown:
            raise TypeError(f"OptionGroup: no option(s) {unknown} in this group ({', '.join(self.options)})")
        names = list(self.options)

        def decorate(func: F) -> F:
            signature = inspect.signature(func, eval_str=True)
            if into not in signature.parameters:
                raise TypeError(f"{func.__name__} has no parameter {into!r} to receive the options {names}")
            params: list[inspect.Parameter] = []
            for p in signature.parameters.values():
                if p.name != into:
                    params.append(p)
                    continue
                kind = (p.kind if p.kind is not inspect.Parameter.POSITIONAL_ONLY
                        else inspect.Parameter.POSITIONAL_OR_KEYWORD)
                params += [inspect.Parameter(name, kind, default=defaults.get(name, default), annotation=annotation)
                           for name, (annotation, default) in self.options.items()]

            @functools.wraps(func)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                kwargs[into] = {name: kwargs.pop(name) for name in names if name in kwargs}
                return func(*args, **kwargs)

            wrapper.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
            wrapper.__annotations__ = {p.name: p.annotation for p in params}
            return wrapper  # type: ignore[return-value]

        return decorate
