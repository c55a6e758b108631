"""A run folder that knows which run it holds: fingerprint, refusal to mix runs, one writer at a time.

``riskfm train`` used to resume whatever ``out/checkpoints/last.ckpt`` it found, so reusing an output
folder with another manifest silently continued the other run, and two processes writing one folder
silently mixed their outputs. Now:

* ``fingerprint.json`` identifies the run: the resolved config (less the keys that may change on a
  resume: epochs, patience, progress bars, loader workers), a SHA-256 of the manifest file and of
  the list of files it names (path and size of each), the seeds, and the riskfm / torch / Python
  versions. A folder whose fingerprint differs is refused with a message naming what differs.
  A non-empty folder without a fingerprint (not a riskfm run, or one from an older riskfm) is
  refused too: nothing in it is overwritten.
* ``.riskfm.lock`` holds the pid and host of the process that writes the folder. A second process
  is refused; a lock left by a process that no longer runs (same host) is reported and replaced.

Nothing is written to the folder before these checks pass.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from riskfm.errors import RiskfmError

log = logging.getLogger(__name__)

FINGERPRINT = "fingerprint.json"
LOCK = ".riskfm.lock"

#: Config keys that may change between a run and its resume without making it another run.
RESUMABLE_KEYS: tuple[str, ...] = (
    "train.epochs", "train.patience", "train.min_epochs", "train.progress", "train.resume",
    "train.num_workers", "data.n_workers", "data.cache", "data.cache_dir",
)


class RunFolderError(RiskfmError, ValueError):
    """The output folder holds another run, or another process is writing it."""


def _drop(config: dict, dotted: str) -> None:
    *parents, leaf = dotted.split(".")
    node = config
    for p in parents:
        node = node.get(p, {})
        if not isinstance(node, dict):
            return
    node.pop(leaf, None)


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _size(entry: str) -> int:
    """Bytes behind a manifest path: the file, or a WFDB record name's ``.hea`` + ``.dat``; -1 for a folder."""
    base = Path(entry.split("::")[0])
    if base.is_file():
        return base.stat().st_size
    parts = [base.with_name(base.name + ext) for ext in (".hea", ".dat")]
    sizes = [p.stat().st_size for p in parts if p.is_file()]
    return sum(sizes) if sizes else -1


def files_digest(paths: list[str]) -> tuple[str, int]:
    """Return the SHA-256 over ``path<TAB>size`` of each named file (DICOM folders: path only), and the count.

    Sizes catch a file replaced by another (for a WFDB record named without extension, its header
    and signal file); contents are not read (100,000 ECGs would take minutes).
    """
    h = hashlib.sha256()
    n = 0
    for p in sorted(set(paths)):
        if not p:
            continue
        n += 1
        h.update(f"{p}\t{_size(p)}\n".encode())
    return h.hexdigest(), n


def run_fingerprint(config: dict, manifest: str | os.PathLike, files: list[str]) -> dict[str, Any]:
    """Return what identifies a run: config (less :data:`RESUMABLE_KEYS`), manifest, file hashes, versions."""
    import numpy
    import torch

    from riskfm._version import __version__ as riskfm_version

    cfg = json.loads(json.dumps(config))  # deep copy, JSON types only
    for key in RESUMABLE_KEYS:
        _drop(cfg, key)
    digest, n_files = files_digest(files)
    return {
        "config": cfg,
        "manifest": str(manifest),
        "manifest_sha256": _sha256_file(Path(manifest)),
        "files_sha256": digest,
        "n_files": n_files,
        "seed": {"train": config.get("train", {}).get("seed"), "split": config.get("split", {}).get("seed")},
        "versions": {"riskfm": riskfm_version, "torch": torch.__version__, "numpy": numpy.__version__,
                     "python": platform.python_version()},
    }


def fingerprint_id(fingerprint: dict[str, Any]) -> str:
    """Return 20 hex digits identifying a run (its fingerprint less the library versions, which may change on resume).

    Stored in the run's checkpoint bundles, so a checkpoint copied into another run's folder is refused.
    """
    from riskfm.train.bundle import config_fingerprint

    return config_fingerprint({k: v for k, v in fingerprint.items() if k != "versions"})


def _differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key, "<absent>"), new.get(key, "<absent>")
        name = f"{prefix}{key}"
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, name + ".")
        elif a != b:
            out.append(f"{name}: {_short(a)} -> {_short(b)}")
    return out


def _short(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= 60 else text[:28] + "..." + text[-28:]


def check_fingerprint(out: Path, fingerprint: dict[str, Any]) -> bool:
    """Return True if ``out`` already holds this run (resume), False if it is new or empty.

    Versions may differ (a resume after an upgrade is allowed, with a warning); everything else
    must match.

    Raises
    ------
    RunFolderError
        If ``out`` holds another run, unknown files, or an unreadable fingerprint.
    """
    fresh = f"choose a new --out folder, or delete {out} to start this run from scratch"
    path = out / FINGERPRINT
    if not path.is_file():
        content = [p.name for p in out.iterdir() if p.name != LOCK] if out.is_dir() else []
        if content:
            raise RunFolderError(
                f"{out} is not empty ({', '.join(sorted(content)[:5])}{', ...' if len(content) > 5 else ''}) and "
                f"holds no {FINGERPRINT}: it is not a riskfm run folder, or one written by an older riskfm, "
                f"and resuming into it could mix two runs; {fresh}")
        return False
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise RunFolderError(f"{path} is unreadable ({exc}); {fresh}") from None
    versions_old, versions_new = old.pop("versions", {}), dict(fingerprint).pop("versions", {})
    new = {k: v for k, v in fingerprint.items() if k != "versions"}
    diffs = _differences(old, new)
    if diffs:
        shown = "; ".join(diffs[:4]) + (f"; and {len(diffs) - 4} more" if len(diffs) > 4 else "")
        raise RunFolderError(f"{out} holds another run (its {FINGERPRINT} differs: {shown}); resuming would mix "
                             f"the two runs; {fresh}, or run again with the folder's own config and manifest")
    if versions_old != versions_new:
        log.warning("%s: resuming a run written with %s under %s", out, versions_old, versions_new)
    return True


def write_fingerprint(out: Path, fingerprint: dict[str, Any]) -> None:
    """Write ``fingerprint`` to ``out``'s fingerprint file atomically (temp file, then rename)."""
    tmp = out / f".{FINGERPRINT}.tmp"
    tmp.write_text(json.dumps(fingerprint, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, out / FINGERPRINT)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


@dataclass
class RunLock:
    """An exclusive lock on a run folder (``.riskfm.lock``); use as a context manager."""

    out: Path
    acquired: bool = False

    @property
    def path(self) -> Path:
        """The lock file, ``out / .riskfm.lock``."""
        return self.out / LOCK

    def acquire(self) -> RunLock:
        """Take the lock (creating ``out``), removing a stale lock of a dead process on this host.

        Raises
        ------
        RunFolderError
            If another live process holds the lock.
        """
        self.out.mkdir(parents=True, exist_ok=True)
        info = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                self._handle_existing()
                continue
            with os.fdopen(fd, "w") as fh:
                json.dump(info, fh)
            self.acquired = True
            return self
        raise RunFolderError(f"{self.path}: could not take the run-folder lock")

    def _handle_existing(self) -> None:
        try:
            holder = json.loads(self.path.read_text())
        except (OSError, ValueError):
            holder = {}
        pid, host = holder.get("pid"), holder.get("host")
        if isinstance(pid, int) and host == socket.gethostname() and not _pid_alive(pid):
            log.warning("%s: removing a stale lock left by process %d (started %s), which no longer runs",
                        self.path, pid, holder.get("started", "?"))
            self.path.unlink(missing_ok=True)
            return
        who = f"process {pid} on {host}, started {holder.get('started', '?')}" if pid else "another process"
        raise RunFolderError(
            f"{self.out} is being written by {who} ({self.path}); two runs in one folder would mix their "
            f"outputs. Wait for it, choose another --out, or delete {self.path} if that process is gone")

    def release(self) -> None:
        """Remove the lock file if this object holds the lock."""
        if self.acquired:
            self.path.unlink(missing_ok=True)
            self.acquired = False

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
