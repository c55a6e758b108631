"""Progress for long commands, on stderr: what is being done, how far, and the time left.

Every command that can take more than a few seconds reports through this module, so that one
switch silences all of them: ``riskfm --quiet ...`` (or ``RISKFM_QUIET=1``). On a terminal a
``tqdm`` bar redraws in place (with its rate and estimated time left); when stderr is a file or a
pipe (a cluster job log) the bar is redrawn at most every 30 s, so the log holds a line per
half-minute rather than thousands of carriage returns.

>>> from riskfm.progress import progress, status                                # doctest: +SKIP
>>> status("reading 40 CTs")                                                    # doctest: +SKIP
>>> for step in progress(range(400), desc="fine-tuning", unit="step"): ...      # doctest: +SKIP
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import Any

__all__ = ["is_quiet", "progress", "set_quiet", "status"]

QUIET_ENV = "RISKFM_QUIET"
_state = {"quiet": False}


def set_quiet(quiet: bool) -> None:
    """Silence (or restore) every progress bar and status line of this process."""
    _state["quiet"] = bool(quiet)


def is_quiet() -> bool:
    """Return True under ``--quiet``, ``RISKFM_QUIET=1``, or on a torchrun rank other than 0."""
    if _state["quiet"] or os.environ.get(QUIET_ENV, "").strip().lower() in ("1", "true", "yes"):
        return True
    return int(os.environ.get("RANK", "0") or 0) != 0


def _interactive() -> bool:
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


def progress(iterable: Iterable | None = None, *, total: int | None = None, desc: str = "", unit: str = "it",
             leave: bool = False, enabled: bool = True, **kwargs: Any):
    """Return a ``tqdm`` bar on stderr (disabled when quiet); use as an iterable wrapper or with ``update``.

    Parameters
    ----------
    iterable : what to iterate over (optional: ``progress(total=n, desc=...)`` then ``bar.update(k)``).
    total : number of items when ``iterable`` has no ``len``.
    desc : what is being done, e.g. ``"pretraining CORA"``; shown before the bar.
    unit : the thing counted (``"step"``, ``"CT"``, ``"patient"``).
    leave : keep the finished bar on screen.
    enabled : False gives a bar that shows nothing (same interface), e.g. for a ``progress=False``
        argument of a library function.
    """
    from tqdm.auto import tqdm

    kwargs.setdefault("mininterval", 0.5 if _interactive() else 30.0)
    return tqdm(iterable, total=total, desc=desc, unit=unit, leave=leave, file=sys.stderr,
                disable=not enabled or is_quiet(), dynamic_ncols=True, **kwargs)


def status(message: str) -> None:
    """Print one line on stderr saying what the command is doing now (nothing when quiet)."""
    if not is_quiet():
        print(f"riskfm: {message}", file=sys.stderr, flush=True)
