"""One checkpoint format for every task: a *bundle*, written atomically, read with ``weights_only=True``.

A bundle is a plain dict::

    {"kind": "risk-model",          # what the weights are (BUNDLE_KINDS)
     "version": 1,                  # the bundle layout (BUNDLE_VERSION)
     "model": {...},                # the model's state dict
     "config": {...},               # what built and trained it (JSON-able)
     "fingerprint": "...",          # the run's identity (may be empty)
     "riskfm": "0.x.y",             # the riskfm version that wrote it
     ...}                           # kind-specific entries (e.g. "train": the engine's resume state)

:func:`load_bundle` is the one reader: a bundle of another kind, or of a newer layout than this
riskfm reads, is refused with a message that names the file, what it holds and what was expected.
Files written before bundles existed (a released run's ``model.pt`` / ``checkpoints/*.ckpt``, a
``cora_pretrained.pt``, a calcium segmenter) carry no ``kind``: they are read through
:func:`upgrade_legacy`, which recognises each old layout by its keys and returns it as a bundle,
so nothing already written needs converting by hand (``riskfm checkpoint upgrade`` rewrites one
in place for good).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from riskfm.errors import CheckpointError
from riskfm.train.checkpoint import load_checkpoint, save_atomic

__all__ = ["BUNDLE_KINDS", "BUNDLE_VERSION", "BundleKindError", "config_fingerprint", "load_bundle", "save_bundle",
           "upgrade_legacy"]

#: The bundle layout this riskfm writes and the newest it reads.
BUNDLE_VERSION = 1

#: What a bundle can hold: the risk model (a training checkpoint or a finished run's ``model.pt``),
#: CORA pretrained weights, a CORA dense fine-tune, a CORA plaque classifier, a calcium segmenter.
BUNDLE_KINDS: tuple[str, ...] = ("risk-model", "cora-pretrain", "cora-dense", "cora-plaque", "calcium-segmenter")


class BundleKindError(CheckpointError):
    """A checkpoint holds another kind of model than the caller needs (or an unknown kind)."""


def config_fingerprint(config: Mapping[str, Any]) -> str:
    """Return 20 hex digits of SHA-256 over a JSON-able config: a run's identity in its bundles.

    Keys are sorted and values JSON-encoded (others as ``str``), so equal configs give equal
    fingerprints whatever their key order.
    """
    import hashlib
    import json

    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:20]


def save_bundle(path: str | os.PathLike, *, kind: str, model: Mapping[str, Any], config: Mapping[str, Any] | None = None,
                fingerprint: str = "", **extra: Any) -> Path:
    """Write a bundle atomically (a temporary file, then a rename: never a truncated file).

    Parameters
    ----------
    path : str or Path
        Destination file (its folder is created).
    kind : str
        One of :data:`BUNDLE_KINDS`.
    model : Mapping
        The model's state dict (tensors).
    config : Mapping, optional
        JSON-able description of what built and trained the model.
    fingerprint : str
        The run's identity (:mod:`riskfm.train.run_folder`), or empty.
    **extra
        Kind-specific entries (tensors, numbers, strings, lists, dicts: ``weights_only``-loadable).
    """
    from riskfm._version import __version__

    if kind not in BUNDLE_KINDS:
        raise ValueError(f"save_bundle: kind must be one of {BUNDLE_KINDS}, got {kind!r}")
    clash = sorted(set(extra) & {"kind", "version", "model", "config", "fingerprint", "riskfm"})
    if clash:
        raise ValueError(f"save_bundle: extra entries {clash} would overwrite the bundle's own")
    return save_atomic({"kind": kind, "version": BUNDLE_VERSION, "model": dict(model), "config": dict(config or {}),
                        "fingerprint": str(fingerprint), "riskfm": __version__, **extra}, path)


def _legacy_kind(obj: Mapping[str, Any]) -> str | None:
    """Return the kind of a checkpoint written before bundles, recognised by its keys (None: unknown)."""
    config = obj.get("config") if isinstance(obj.get("config"), Mapping) else {}
    if "targets" in obj and "clinical_columns" in obj:
        return "risk-model"  # a finished run's model.pt
    if "best" in obj and "bad_epochs" in obj:
        return "risk-model"  # the risk trainer's last.ckpt
    if "val_auroc" in obj and "epoch" in obj:
        return "risk-model"  # the risk trainer's best.ckpt
    if config.get("encoder") == "cora-resunet" and "step" in obj:
        return "cora-pretrain"  # cora_pretrained.pt
    if "step" in obj and "scheduler" in obj and isinstance(config.get("synthesis"), Mapping):
        return "cora-pretrain"  # pretraining's last.ckpt
    if "riskfm_calcium_config" in obj and "state_dict" in obj:
        return "calcium-segmenter"  # CalciumSegmenter.save
    return None


def upgrade_legacy(obj: Mapping[str, Any], *, source: str = "checkpoint") -> dict[str, Any]:
    """Return a checkpoint written before bundles as a bundle (``version`` 0: upgraded on reading).

    Every old entry is kept; ``kind``, ``version``, ``fingerprint`` and ``riskfm`` are added.

    Raises
    ------
    BundleKindError
        The layout is not one riskfm ever wrote.
    """
    kind = _legacy_kind(obj)
    if kind is None:
        raise BundleKindError(f"{source}: not a riskfm checkpoint: no 'kind' entry and none of the layouts riskfm "
                              f"wrote before bundles (keys: {sorted(obj)[:8]})")
    out = dict(obj)
    if kind == "calcium-segmenter":  # {"state_dict", "riskfm_calcium_config"}
        out["model"], out["config"] = out.pop("state_dict"), dict(out.pop("riskfm_calcium_config"))
    return {**out, "kind": kind, "version": 0, "fingerprint": str(obj.get("fingerprint", "")),
            "riskfm": str(obj.get("riskfm", "before bundles")), "config": dict(out.get("config") or {})}


def load_bundle(path: str | os.PathLike, kind: str | tuple[str, ...] | None = None, *,
                weights_only: bool = True) -> dict[str, Any]:
    """Read a bundle (or an older riskfm checkpoint, upgraded on the fly) and check its kind and version.

    Parameters
    ----------
    path : str or Path
        The checkpoint file.
    kind : str or tuple of str, optional
        The kind(s) the caller can use; None accepts any.
    weights_only : bool
        Load with ``torch.load(weights_only=True)`` (tensors and plain containers only).

    Returns
    -------
    dict
        The bundle: ``kind``, ``version``, ``model``, ``config``, ``fingerprint``, ``riskfm`` and
        the kind's own entries.

    Raises
    ------
    FileNotFoundError
        No such file.
    CheckpointError
        Unreadable, refused by ``weights_only``, or written by a newer riskfm (bundle version above
        :data:`BUNDLE_VERSION`).
    BundleKindError
        It holds another kind than ``kind``.
    """
    obj = load_checkpoint(path, weights_only=weights_only)
    bundle = obj if "kind" in obj else upgrade_legacy(obj, source=str(path))
    version = bundle.get("version")
    if not isinstance(version, int) or version > BUNDLE_VERSION:
        raise CheckpointError(f"{path}: bundle version {version!r} was written by a newer riskfm "
                              f"({bundle.get('riskfm', '?')}); this riskfm reads versions up to {BUNDLE_VERSION}: "
                              "upgrade riskfm")
    wanted = (kind,) if isinstance(kind, str) else kind
    if wanted is not None and bundle["kind"] not in wanted:
        raise BundleKindError(f"{path}: holds a {bundle['kind']!r} checkpoint, not {' or '.join(map(repr, wanted))}")
    return bundle
