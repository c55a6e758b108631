"""Errors that mean "the user's input is wrong", and how the command line reports them.

:class:`RiskfmError` is the base class of riskfm's own user errors: a problem with the user's
input, config or files, whose message names the thing and says how to fix it. The ``riskfm``
command line prints its message as ``error: <message>`` and exits with code 2, without a traceback
(``riskfm --verbose ...`` or ``RISKFM_VERBOSE=1`` shows it).

Older error classes (``ManifestError``, ``ConfigError``, ``ECGReadError``, ``CTReadError``, ...) are
``ValueError`` subclasses; the command line treats every exception of :data:`USER_ERROR_TYPES`
(``RiskfmError``, ``ValueError``, ``OSError`` such as ``FileNotFoundError`` / ``PermissionError``,
``KeyError``) as a user error, and anything else as an internal error (exit 1).

This module imports nothing heavy (no torch), so any module may import it.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable

__all__ = [
    "EXIT_INTERNAL_ERROR",
    "EXIT_USER_ERROR",
    "USER_ERROR_TYPES",
    "CheckpointError",
    "RiskfmError",
    "checkpoint_load_error",
    "did_you_mean",
    "error_message",
    "is_user_error",
]

#: Exit code of the command line for a user error (the same code click uses for usage errors).
EXIT_USER_ERROR = 2
#: Exit code of the command line for an unexpected internal error.
EXIT_INTERNAL_ERROR = 1


class RiskfmError(Exception):
    """A problem with the user's input, config or files; the CLI prints its message and exits 2.

    The message should name the file, key or value at fault and say how to fix it, in one or two
    lines. Subclasses usually also derive from the builtin exception that fits (``ValueError``,
    ``KeyError``, ...), so code catching those keeps working.
    """


class CheckpointError(RiskfmError, ValueError):
    """A checkpoint file cannot be used: unreadable, refused by ``weights_only`` loading, or not fitting.

    Also available as ``riskfm.encoders.CheckpointError``.
    """


#: Exception types the command line reports as user errors (exit 2, no traceback).
USER_ERROR_TYPES: tuple[type[BaseException], ...] = (RiskfmError, ValueError, OSError, KeyError)


def is_user_error(exc: BaseException) -> bool:
    """Return whether the command line reports ``exc`` as a user error (exit 2), not an internal one."""
    return isinstance(exc, USER_ERROR_TYPES)


def error_message(exc: BaseException) -> str:
    """Return the text the command line prints after ``error:`` for ``exc``.

    A ``KeyError``'s ``str`` is the repr of its argument (quotes, escaped newlines); this returns the
    argument itself when it is a sentence, and ``missing key 'name'`` when it is a bare key. An
    ``OSError`` raised by the system (``[Errno 2] No such file or directory: 'x'``) becomes
    ``x: No such file or directory``.
    """
    if isinstance(exc, KeyError) and type(exc).__str__ is KeyError.__str__:
        if len(exc.args) == 1:
            arg = exc.args[0]
            if isinstance(arg, str) and " " in arg.strip():
                return arg
            return f"missing key {arg!r}"
        return str(exc)
    if isinstance(exc, OSError) and exc.strerror and exc.filename is not None and not isinstance(exc, RiskfmError):
        where = os.fsdecode(exc.filename) if isinstance(exc.filename, str | bytes) else str(exc.filename)
        if exc.filename2 is not None:
            where += f" -> {os.fsdecode(exc.filename2)}"
        return f"{where}: {exc.strerror}"
    text = str(exc).strip()
    return text or type(exc).__name__


def did_you_mean(word: str, options: Iterable[str], *, n: int = 3, cutoff: float = 0.5) -> str:
    """Return ``" (did you mean 'a' or 'b'?)"`` for the options close to ``word``, or ``""``."""
    close = difflib.get_close_matches(str(word), sorted(set(options)), n=n, cutoff=cutoff)
    if not close:
        return ""
    quoted = [repr(c) for c in close]
    return f" (did you mean {' or '.join(quoted) if len(quoted) < 3 else ', '.join(quoted)}?)"


# torch's weights_only unpickler names the class it refused in its message, e.g.
# "Unsupported global: GLOBAL __main__.Foo was not an allowed global by default" (torch >= 2.4) or
# "Trying to load unsupported GLOBAL __main__.Foo" / "Unsupported class __main__.Foo" (older).
_REFUSED = re.compile(r"(?:Unsupported global: GLOBAL|unsupported GLOBAL|Unsupported class)\s+([\w.]+)", re.I)

_DEFAULT_REFUSED_HINT = ("load it once with torch.load(..., weights_only=False) in Python and save only its "
                         "tensors, numbers, strings, lists and dicts")


def checkpoint_load_error(
    path: str | os.PathLike,
    exc: BaseException,
    *,
    weights_only: bool = True,
    kind: str = "riskfm checkpoint",
    refused_hint: str = _DEFAULT_REFUSED_HINT,
) -> CheckpointError:
    """Return a short :class:`CheckpointError` for an exception raised by ``torch.load(path)``.

    ``torch.load`` reports every failure at length (several paragraphs); this keeps one sentence:

    * refused by ``weights_only=True`` (the file pickles Python classes):
      ``<file>: refused: it holds Python objects beyond tensors and plain containers (<class>), which
      weights_only loading does not run; if you trust its origin, <refused_hint>``;
    * anything else (random bytes, truncated zip, empty file, a plain pickle):
      ``<file>: not a readable <kind> (truncated or corrupt?)``.

    The caller raises the result ``from exc`` so that ``--verbose`` still shows torch's message.
    """
    file = os.fspath(path)
    text = str(exc)
    if weights_only:
        match = _REFUSED.search(text)
        if match:
            return CheckpointError(
                f"{file}: refused: it holds Python objects beyond tensors and plain containers "
                f"({match.group(1)}), which weights_only loading does not run; if you trust its origin, "
                f"{refused_hint}"
            )
    return CheckpointError(f"{file}: not a readable {kind} (truncated or corrupt?)")
