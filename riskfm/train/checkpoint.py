"""Atomic checkpoints that load with ``torch.load(weights_only=True)``.

A checkpoint is written to a temporary file in the same folder and moved into place with
``os.replace`` (atomic on POSIX), so a crash mid-write never leaves a truncated ``last.ckpt``:
resume always finds either the previous complete checkpoint or the new one.
"""

from __future__ import annotations

import os
import random
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from riskfm.errors import CheckpointError, checkpoint_load_error


def save_atomic(obj: dict[str, Any], path: str | os.PathLike) -> Path:
    """Save ``obj`` with ``torch.save`` to a temp file beside ``path``, then atomically rename it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def load_checkpoint(path: str | os.PathLike, *, weights_only: bool = True) -> dict[str, Any]:
    """Load a riskfm checkpoint (tensors, numbers, strings, lists and dicts only).

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist (the message names it).
    CheckpointError
        ``path`` is a folder; or ``weights_only`` loading refused the file because it pickles Python
        objects (``<file>: refused: ...``); or the file is not a torch checkpoint at all, e.g.
        truncated or corrupt (``<file>: not a readable riskfm checkpoint (truncated or corrupt?)``);
        or it holds something other than a dict. Torch's own message is kept as the ``__cause__``.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    if not path.is_file():
        raise CheckpointError(f"{path}: is a folder, not a checkpoint file")
    try:
        with warnings.catch_warnings():  # a plain pickle triggers a protocol warning before it fails
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            obj = torch.load(path, map_location="cpu", weights_only=weights_only)
    except (PermissionError, FileNotFoundError, IsADirectoryError):
        raise  # the system's message names the file (a torch reader's OSError(22) means truncated)
    except Exception as exc:  # noqa: BLE001 - torch raises UnpicklingError / RuntimeError / EOFError / KeyError
        raise checkpoint_load_error(path, exc, weights_only=weights_only) from exc
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: not a riskfm checkpoint (it holds a {type(obj).__name__}, not a dict)")
    return obj


def rng_state() -> dict[str, Any]:
    """Return the Python, numpy and torch RNG states in weights_only-loadable types."""
    np_state = np.random.get_state()
    return {
        "python": [list(x) if isinstance(x, tuple) else x for x in random.getstate()],
        "numpy": {"key": np_state[0], "pos": int(np_state[2]), "has_gauss": int(np_state[3]),
                  "cached": float(np_state[4]), "state": torch.from_numpy(np_state[1].astype(np.int64))},
        "torch": torch.get_rng_state(),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the Python, numpy and torch RNG states saved by :func:`rng_state`."""
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = state["numpy"]
    np.random.set_state((n["key"], n["state"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    torch.set_rng_state(state["torch"])
