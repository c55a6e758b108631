r"""The prepared cache: each file prepared once for a pipeline, on disk, read back row by row.

A run of 10,000 CCTAs or 500,000 ECGs cannot re-read and re-prepare every file in every process of
every run. :class:`PreparedCache` keeps the result of a :class:`~riskfm.data.pipeline.Pipeline`
(the deterministic part of an encoder's preparation) per source file, keyed by

* the pipeline's fingerprint (spec, plausibility limits, step versions, riskfm version): a folder
  per fingerprint, so a change of spec makes a new cache and can never read a stale one;
* the source's fingerprint (:func:`source_fingerprint`: size and modification time of the file,
  of a WFDB record's header and signal files, or of every file of a DICOM folder): a file
  changed since it was prepared is prepared again.

Failures are kept too (with their reason), so a second run reads no source file at all.

Layout of one pipeline's folder under the cache root::

    <root>/<modality>-<fingerprint>/
        pipeline.json                 the pipeline: steps, parameters, output shape and dtype
        shards/<id>.npy               [n, *shape] prepared arrays (np.save format)
        shards/<id>.mask.npy          [n, *mask_shape] bool lead masks (ECG)
        shards/<id>.index.csv         key, source, row, ok, reason, note (one line per file)

A shard is written whole by one process: arrays first, then its index through a temporary file
and a rename, so a shard without an index (an interrupted fill) is never read, and fills that run
at the same time (several processes, several machines on one file system) never collide. Reads
use ``os.pread`` on the shard files: pages go to the OS page cache, not to the process, so the
memory of a process reading the cache does not grow with the cohort.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import secrets
import shutil
import time
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from riskfm.data.pipeline import Pipeline, Prepared

__all__ = ["CACHE_ENV", "CacheEntry", "CacheSpaceError", "CachedArrays", "FillReport", "PreparedCache", "ShardReader",
           "cohort_entries", "default_cache_dir", "in_part", "source_fingerprint"]

#: Environment variable naming the default cache root.
CACHE_ENV = "RISKFM_CACHE_DIR"
#: Bump when the folder layout changes (part of the folder name).
LAYOUT_VERSION = 1
#: A shard holds at most this many bytes of arrays (and at most ``_MAX_SHARD_ITEMS`` files).
_SHARD_BYTES = 256 * 2**20
_MAX_SHARD_ITEMS = 1024
_INDEX_COLUMNS = ["key", "source", "row", "ok", "reason", "note"]


def default_cache_dir() -> Path:
    """Return the cache root used when a config names none: ``$RISKFM_CACHE_DIR``, else ``~/.cache/riskfm/prepared``.

    ``$XDG_CACHE_HOME`` replaces ``~/.cache`` where it is set (the XDG convention).
    """
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "riskfm" / "prepared"


#: Signal-file suffixes of WFDB records: the header and these beside it make up one record.
_WFDB_PARTS = (".hea", ".dat", ".mat")


def _stat_entries(source: str) -> list[tuple[str, int, int]]:
    """(name, size in bytes, mtime in ns) of every file that makes up ``source``."""
    text, member = (str(source).split("::", 1) + [""])[:2] if "::" in str(source) else (str(source), "")
    path = Path(text)
    if path.is_dir():  # a DICOM series folder: every file in it, stray files included
        out = []
        for root, dirs, files in os.walk(path):
            dirs.sort()
            for name in sorted(files):
                st = os.stat(os.path.join(root, name))
                out.append((os.path.relpath(os.path.join(root, name), path), st.st_size, st.st_mtime_ns))
        return out
    if path.is_file() and (member or path.suffix.lower() not in _WFDB_PARTS):
        # One file (NIfTI, DICOM, XML), or a record inside a container (CODE-15's
        # "exams_part0.hdf5::<exam_id>"): the member is part of the name, the container's stats count.
        st = path.stat()
        return [(path.name + (f"::{member}" if member else ""), st.st_size, st.st_mtime_ns)]
    # A WFDB record: its name without extension (PhysioNet's convention), its .hea or its signal
    # file; the header and the usual signal files beside it all count, so a rewritten .dat is noticed.
    stem = path.with_suffix("") if path.is_file() else path
    out = []
    for ext in _WFDB_PARTS:
        p = stem.with_name(stem.name + ext)
        if p.is_file():
            st = p.stat()
            out.append((p.name, st.st_size, st.st_mtime_ns))
    return out


def source_fingerprint(path: str | os.PathLike) -> str:
    """20 hex digits identifying the current content of a source file or folder, from stats only.

    Size and modification time (ns) of each file the source is made of (a WFDB record's header and
    signal files, every file of a DICOM folder, the container of ``"file.hdf5::<exam_id>"`` with
    the member named): a file replaced or edited gets another fingerprint without being read.

    Raises
    ------
    FileNotFoundError
        Nothing exists at ``path`` (nor a WFDB record of that name).
    """
    entries = _stat_entries(os.fspath(path))
    if not entries:
        raise FileNotFoundError(f"{path}: no such file, folder or WFDB record")
    text = "\n".join(f"{n}\0{s}\0{m}" for n, s, m in entries)
    return hashlib.sha1(text.encode()).hexdigest()[:20]


def in_part(key: str, part: tuple[int, int] | None) -> bool:
    """Return True when ``key`` belongs to part ``i`` of ``n`` (``part=(i, n)``; stable across machines)."""
    if part is None:
        return True
    i, n = part
    return zlib.crc32(key.encode()) % n == i


class CacheSpaceError(OSError):
    """The disk under the cache folder has less free space than a fill needs."""


@dataclass(frozen=True)
class CacheEntry:
    """Where one prepared file lives: shard id and row, or why it could not be prepared.

    Attributes
    ----------
    key : str
        The source path as the manifest resolves it.
    source : str
        :func:`source_fingerprint` of the source when it was prepared.
    shard : str
        Shard id (file stem under ``shards/``).
    row : int
        Row in the shard's arrays; -1 for a failure.
    ok : bool
        Prepared (True) or excluded (False, ``reason`` says why).
    reason, note : str
        The exclusion reason; repairs made (e.g. flat leads masked).
    """

    key: str
    source: str
    shard: str
    row: int
    ok: bool
    reason: str = ""
    note: str = ""


@dataclass
class FillReport:
    """What :meth:`PreparedCache.fill` did.

    Attributes
    ----------
    prepared, failed : int
        Files prepared now, and files that failed now (their reasons are cached too).
    reused : int
        Files already in the cache with an unchanged source.
    skipped : int
        Missing files left to other parts (``part``).
    seconds : float
        Wall time.
    """

    prepared: int = 0
    failed: int = 0
    reused: int = 0
    skipped: int = 0
    seconds: float = 0.0


class ShardReader:
    """Reads rows of a cache folder's shard files with ``os.pread`` (picklable, opens files per read).

    Parameters
    ----------
    folder : path
        A pipeline's cache folder.
    """

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        self._headers: dict[str, tuple[int, tuple[int, ...], np.dtype]] = {}

    def __getstate__(self) -> dict:
        return {"folder": self.folder, "_headers": {}}

    def _header(self, name: str) -> tuple[int, tuple[int, ...], np.dtype]:
        if name not in self._headers:
            with open(self.folder / "shards" / name, "rb") as f:
                major, _ = np.lib.format.read_magic(f)
                read = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
                shape, fortran, dtype = read(f)
                if fortran:
                    raise ValueError(f"{self.folder / 'shards' / name}: Fortran-ordered shard; delete the cache folder")
                self._headers[name] = (f.tell(), tuple(shape), dtype)
        return self._headers[name]

    def row(self, name: str, row: int) -> np.ndarray:
        """Return row ``row`` of shard file ``name`` (e.g. ``"<id>.npy"``) as a read-only array."""
        offset, shape, dtype = self._header(name)
        if not 0 <= row < shape[0]:
            raise IndexError(f"{self.folder / 'shards' / name}: row {row} out of range ({shape[0]} rows)")
        n = int(math.prod(shape[1:])) * dtype.itemsize
        fd = os.open(self.folder / "shards" / name, os.O_RDONLY)
        try:
            data = os.pread(fd, n, offset + row * n)
        finally:
            os.close(fd)
        if len(data) != n:
            raise OSError(f"{self.folder / 'shards' / name}: truncated (row {row}); delete the cache folder")
        return np.frombuffer(data, dtype=dtype).reshape(shape[1:])


class PreparedCache:
    """One pipeline's prepared files under a cache root (see the module docstring for the layout).

    Parameters
    ----------
    root : path
        The cache root (``data.cache_dir``; :func:`default_cache_dir` by default).
    pipeline : Pipeline
        What the cache holds: the pipeline of an encoder input spec (``ecg_pipeline(spec)``, ``ct_pipeline(spec)``).
    """

    def __init__(self, root: str | os.PathLike, pipeline: Pipeline) -> None:
        if pipeline.shape is None:
            # one shard holds one shape: a whole-volume pipeline keeps each file's own grid
            raise ValueError(f"PreparedCache: the {pipeline.modality} pipeline has no fixed output shape "
                             f"({[s.name for s in pipeline.steps]}); only fixed-shape pipelines are cached")
        self.root = Path(root).expanduser()
        self.pipeline = pipeline
        self.folder = self.root / f"{pipeline.modality}-v{LAYOUT_VERSION}-{pipeline.fingerprint}"
        self.reader = ShardReader(self.folder)
        self._index: dict[str, list[CacheEntry]] = {}
        # Source fingerprints computed by this object (a DICOM folder's means listing the folder):
        # fill() and the lookups that follow within one preparation stat each source once.
        self._sources: dict[str, str] = {}
        self.reload()

    # -- index ---------------------------------------------------------------------------------------
    def reload(self) -> None:
        """Read every complete shard's index (call after other processes filled the cache)."""
        index: dict[str, list[CacheEntry]] = {}
        shards = self.folder / "shards"
        names = sorted(p.name for p in shards.glob("*.index.csv")) if shards.is_dir() else []
        for name in names:  # shard ids start with the write time: later entries come last
            shard = name[: -len(".index.csv")]
            table = pd.read_csv(shards / name, dtype=str, keep_default_na=False)
            for key, source, row, ok, reason, note in table[_INDEX_COLUMNS].itertuples(index=False):
                index.setdefault(key, []).append(CacheEntry(key, source, shard, int(row), ok == "1", reason, note))
        self._index = index

    def __len__(self) -> int:
        return len(self._index)

    def _source(self, key: str) -> str:
        if key not in self._sources:
            self._sources[key] = source_fingerprint(key)
        return self._sources[key]

    def lookup(self, key: str, source: str | None = None) -> CacheEntry | None:
        """Return the newest entry of ``key`` whose source fingerprint is ``source`` (computed when None), or None."""
        entries = self._index.get(str(key))
        if not entries:
            return None
        if source is None:
            try:
                source = self._source(str(key))
            except FileNotFoundError:
                return None
        for entry in reversed(entries):
            if entry.source == source:
                return entry
        return None

    def read(self, entry: CacheEntry) -> Prepared:
        """Return a prepared entry's array (read-only, ``pipeline.shape``), mask and note."""
        if not entry.ok:
            raise ValueError(f"{entry.key} was excluded when prepared: {entry.reason}")
        array = self.reader.row(f"{entry.shard}.npy", entry.row)
        mask = None if self.pipeline.mask_shape is None else self.reader.row(f"{entry.shard}.mask.npy", entry.row)
        return Prepared(array, mask, entry.note)

    # -- filling -------------------------------------------------------------------------------------
    def _write_meta(self) -> None:
        meta = self.folder / "pipeline.json"
        if meta.exists():
            return
        (self.folder / "shards").mkdir(parents=True, exist_ok=True)
        tmp = meta.with_name(f"pipeline.json.{os.getpid()}.{secrets.token_hex(3)}.tmp")
        tmp.write_text(json.dumps(self.pipeline.describe(), indent=2, default=str) + "\n")
        os.replace(tmp, meta)

    def _write_shard(self, results: list[tuple[str, str, Prepared | None, str | None]]) -> None:
        shards = self.folder / "shards"
        shard = f"{time.time_ns():020d}-{os.getpid()}-{secrets.token_hex(4)}"
        ok = [r for r in results if r[2] is not None]
        for suffix, values in ((".npy", [r[2].array for r in ok]),
                               (".mask.npy", [r[2].mask for r in ok] if self.pipeline.mask_shape else [])):
            if not values:
                continue
            tmp = shards / f"{shard}{suffix}.tmp"
            with open(tmp, "wb") as f:
                np.save(f, np.stack(values))
            os.replace(tmp, shards / f"{shard}{suffix}")
        rows, k = [], 0
        for key, source, prepared, reason in results:
            rows.append((key, source, k if prepared is not None else -1, "1" if prepared is not None else "0",
                         reason or "", "" if prepared is None else prepared.note))
            k += prepared is not None
        tmp = shards / f"{shard}.index.csv.tmp"
        pd.DataFrame(rows, columns=_INDEX_COLUMNS).to_csv(tmp, index=False)
        os.replace(tmp, shards / f"{shard}.index.csv")  # the shard exists from this rename on
        for key, source, row, ok_flag, reason, note in rows:
            self._index.setdefault(key, []).append(CacheEntry(key, source, shard, row, ok_flag == "1", reason,
                                                              note))

    def _check_space(self, need: int, n: int) -> None:
        """Refuse to start a fill that cannot fit: a full disk halfway through 10,000 CTs helps no one."""
        probe = self.folder
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        free = shutil.disk_usage(probe).free
        if need > free:
            raise CacheSpaceError(
                f"prepared cache {self.folder}: {n} files need about {need / 2**30:.1f} GB but {probe} has "
                f"{free / 2**30:.1f} GB free; set data.cache_dir (or ${CACHE_ENV}) to a larger disk, or "
                "data.cache: false to prepare into memory")

    def missing(self, keys: Iterable[str]) -> tuple[list[tuple[str, str]], int]:
        """Return the ``(key, source fingerprint)`` pairs not in the cache for their current source, and the hit count.

        A key whose source no longer exists is left out (the cohort reports missing files).
        """
        todo, hits = [], 0
        for key in dict.fromkeys(str(k) for k in keys):
            try:
                source = self._source(key)
            except FileNotFoundError:
                continue
            if self.lookup(key, source) is None:
                todo.append((key, source))
            else:
                hits += 1
        return todo, hits

    def fill(self, keys: Iterable[str], *, workers: int = 1, progress: bool = False,
             part: tuple[int, int] | None = None) -> FillReport:
        """Prepare every file of ``keys`` that is not cached for its current source (resumable).

        Parameters
        ----------
        keys : iterable of str
            Source paths (as the manifest resolves them).
        workers : int
            Threads preparing files.
        progress : bool
            Show a progress bar.
        part : (i, n), optional
            Prepare only the files of part ``i`` of ``n`` (:func:`in_part`): ``riskfm prepare
            --shard i/N`` on N machines, or the N processes of a distributed run.

        Returns
        -------
        FillReport
        """
        start = time.perf_counter()
        todo, hits = self.missing(keys)
        mine = [(k, s) for k, s in todo if in_part(k, part)]
        report = FillReport(reused=hits, skipped=len(todo) - len(mine))
        item_bytes = max(1, int(math.prod(self.pipeline.shape)) * np.dtype(self.pipeline.dtype).itemsize)
        if mine:
            self._check_space(len(mine) * item_bytes, len(mine))
            self._write_meta()
        per_shard = max(1, min(_MAX_SHARD_ITEMS, _SHARD_BYTES // item_bytes))
        sources = dict(mine)
        outcomes = self.pipeline.map([k for k, _ in mine], workers=workers, progress=progress)
        batch: list[tuple[str, str, Prepared | None, str | None]] = []
        for key, prepared, reason in outcomes:
            batch.append((key, sources[key], prepared, reason))
            report.prepared += prepared is not None
            report.failed += prepared is None
            if len(batch) == per_shard:
                self._write_shard(batch)
                batch = []
        if batch:
            self._write_shard(batch)
        report.seconds = time.perf_counter() - start
        return report

    def size_bytes(self) -> int:
        """Bytes on disk of this pipeline's folder."""
        return sum(p.stat().st_size for p in self.folder.rglob("*") if p.is_file()) if self.folder.exists() else 0


@dataclass
class CachedArrays(Mapping):
    """Patient id -> prepared value, read from the cache when asked for (picklable for DataLoader workers).

    ECG values are ``(array, lead mask)``, CT values the HU array; both read-only views of a fresh
    read (copy before changing them).

    Attributes
    ----------
    reader : ShardReader
        The cache folder's reader.
    entries : dict of str to CacheEntry
        Patient -> its prepared file's entry.
    with_mask : bool
        Return ``(array, mask)`` (ECG) instead of the array.
    """

    reader: ShardReader
    entries: dict[str, CacheEntry] = field(default_factory=dict)
    with_mask: bool = False

    def __getitem__(self, patient_id: str):
        entry = self.entries[patient_id]
        array = self.reader.row(f"{entry.shard}.npy", entry.row)
        if self.with_mask:
            return array, self.reader.row(f"{entry.shard}.mask.npy", entry.row)
        return array

    def __iter__(self) -> Iterator[str]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)


def cohort_entries(cache: PreparedCache, pairs: Sequence[tuple[str, str]]) -> tuple[dict, list[dict], list[dict]]:
    """Map ``(patient_id, path)`` pairs to entries; returns (patient -> entry, failures, notes).

    A path the cache lacks (not filled, or its source changed since) is a failure naming the cache
    folder, never a silent absence.
    """
    entries, failures, notes = {}, [], []
    for pid, path in pairs:
        entry = cache.lookup(path)
        if entry is None:
            failures.append({"patient_id": pid, "reason": f"{cache.pipeline.modality} not prepared: {path} is not "
                                                          f"in the cache {cache.folder} for its current content"})
        elif not entry.ok:
            failures.append({"patient_id": pid, "reason": entry.reason})
        else:
            entries[pid] = entry
            if entry.note:
                notes.append({"patient_id": pid, "note": entry.note})
    return entries, failures, notes
