r"""A fast ECG store: a cohort's ECGs preprocessed once into memory-mapped float16 shards plus an index.

Reading a WFDB record and filtering it costs milliseconds; an epoch over hundreds of thousands of
ECGs should cost only memory copies. :func:`build_ecg_store` does the parsing and preprocessing
once, for one encoder input spec, and :class:`ECGStore` serves the arrays by memory map.

Layout of a store folder::

    store.json                    spec, record count, shard size, array shape, dtype
    shards/shard_00000.npy        float16 [n, leads, samples] (np.save format, memory-mapped)
    shards/shard_00000.mask.npy   bool    [n, leads] lead masks
    shards/shard_00000.index.csv  row, key (the ECG path), ok, reason, quality_ok, quality_flags

Records are sorted by key and cut into shards of ``shard_size``. A shard is complete when its
``index.csv`` exists: it is written last, through a temporary file and a rename, so an interrupted
build leaves no half shard behind and a rerun (``resume``) builds only the missing shards. Shard
``k`` belongs to machine ``k % N`` of ``N`` (``--shard i/N``), so N machines sharing a file system
build disjoint shards of one store. Each worker process builds whole shards.

Command line (:mod:`riskfm.commands.ecg`, over :func:`build_manifest_store` and :func:`store_summary`)::

    riskfm ecg store build manifest.csv --out ecg_store --encoder ecgfounder-12lead \
        --workers 8 [--shard 0/4] [--shard-size 1024]
    riskfm ecg store info ecg_store
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from riskfm.ecg.spec import ECGInputSpec

__all__ = ["ECGStore", "StoreError", "build_ecg_store", "build_manifest_store", "manifest_ecg_paths", "spec_from_dict",
           "spec_to_dict", "store_summary"]

STORE_VERSION = 1


class StoreError(ValueError):
    """A store folder that is missing, incomplete or built for another input spec."""


def spec_to_dict(spec: ECGInputSpec) -> dict:
    """JSON-able dict of an input spec (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(spec)))


def spec_from_dict(values: dict) -> ECGInputSpec:
    """Inverse of :func:`spec_to_dict`."""
    fixed = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    return ECGInputSpec(**fixed)


def _same_spec(a: ECGInputSpec, b: ECGInputSpec) -> bool:
    return spec_to_dict(a) == spec_to_dict(b)


def manifest_ecg_paths(manifest: str | os.PathLike) -> list[str]:
    """Absolute ECG paths (the store keys) listed in a riskfm manifest, resolved like ``Cohort``."""
    from riskfm.data.manifest import read_manifest_table, resolve_path

    manifest = Path(manifest)
    df = read_manifest_table(manifest)
    if "ecg_path" not in df.columns:
        raise StoreError(f"{manifest}: no ecg_path column")
    root = manifest.resolve().parent
    return sorted({str(resolve_path(v, root)) for v in df["ecg_path"].fillna("") if v})


def _shard_name(k: int) -> str:
    return f"shard_{k:05d}"


def _build_shard(args: tuple) -> tuple[int, int, int]:
    """Worker: read + prepare the records of shard ``k``; returns (k, n_ok, n_failed)."""
    out_dir, k, keys, spec_values, quality = args
    from riskfm.ecg.io import read_ecg
    from riskfm.ecg.preprocess import prepare_ecg
    from riskfm.ecg.quality import ecg_quality

    spec = spec_from_dict(spec_values)
    shards = Path(out_dir) / "shards"
    name = _shard_name(k)
    n_leads, n_samples = len(spec.leads), int(spec.n_samples)
    tmp_arr = shards / f"{name}.tmp.npy"
    arr = np.lib.format.open_memmap(tmp_arr, mode="w+", dtype=np.float16, shape=(len(keys), n_leads, n_samples))
    masks = np.zeros((len(keys), n_leads), dtype=bool)
    rows = []
    for i, key in enumerate(keys):
        row = {"row": i, "key": key, "ok": True, "reason": "", "quality_ok": True, "quality_flags": ""}
        try:
            ecg = read_ecg(key)
            if quality:
                row.update(ecg_quality(ecg).as_dict())
            x, mask = prepare_ecg(ecg, spec)
            if not np.isfinite(x).all():
                raise ValueError(f"{key}: non-finite values after preprocessing")
            arr[i] = x.astype(np.float16)
            masks[i] = mask
        except Exception as exc:  # noqa: BLE001 - every unreadable record is indexed with its reason
            arr[i] = 0
            row.update(ok=False, reason=str(exc))
        rows.append(row)
    arr.flush()
    del arr
    os.replace(tmp_arr, shards / f"{name}.npy")
    np.save(shards / f"{name}.mask.tmp.npy", masks)
    os.replace(shards / f"{name}.mask.tmp.npy", shards / f"{name}.mask.npy")
    tmp_index = shards / f"{name}.index.tmp.csv"
    pd.DataFrame(rows).to_csv(tmp_index, index=False)
    os.replace(tmp_index, shards / f"{name}.index.csv")  # written last: marks the shard complete
    n_ok = sum(r["ok"] for r in rows)
    return k, n_ok, len(rows) - n_ok


def _parse_shard(shard: str | tuple[int, int] | None) -> tuple[int, int]:
    if shard is None:
        return 0, 1
    if isinstance(shard, str):
        try:
            i, n = (int(v) for v in shard.split("/"))
        except ValueError as exc:
            raise ValueError(f"shard must look like 'i/N' (e.g. '0/4'), got {shard!r}") from exc
    else:
        i, n = shard
    if not (n >= 1 and 0 <= i < n):
        raise ValueError(f"shard i/N needs 0 <= i < N, got {i}/{n}")
    return i, n


def build_ecg_store(
    keys: Iterable[str],
    out_dir: str | os.PathLike,
    spec: ECGInputSpec,
    *,
    shard_size: int = 1024,
    n_workers: int = 1,
    shard: str | tuple[int, int] | None = None,
    resume: bool = True,
    quality: bool = True,
    progress: bool = False,
) -> dict:
    """Preprocess ECG files for ``spec`` into a store folder (see the module docstring).

    Parameters
    ----------
    keys : iterable of str
        ECG paths (anything ``read_ecg`` accepts, e.g. ``"x.hdf5::123"``); they are the store's
        keys. Use :func:`manifest_ecg_paths` for a manifest's ECGs.
    out_dir : str or PathLike
        Store folder (created).
    spec : ECGInputSpec
        The encoder's input spec; the arrays are ``prepare_ecg(read_ecg(key), spec)``.
    shard_size : int
        Records per shard (the unit of work, resumption and machine splitting).
    n_workers : int
        Worker processes (each builds whole shards).
    shard : "i/N" or (i, N), optional
        Build only the shards ``k`` with ``k % N == i`` (one of N machines).
    resume : bool
        Skip shards that are complete; False rebuilds them.
    quality : bool
        Run :func:`riskfm.ecg.quality.ecg_quality` on each raw record and index its flags.

    Returns
    -------
    dict
        ``{"built": shards built now, "skipped": complete shards kept, "ok": records, "failed": records}``.

    Raises
    ------
    StoreError
        If ``out_dir`` holds a store built with another spec, key list or shard size.
    """
    keys = sorted(set(keys))
    if not keys:
        raise StoreError(f"{out_dir}: no ECG keys to store")
    if shard_size < 1:
        raise ValueError(f"shard_size must be >= 1, got {shard_size}")
    machine, n_machines = _parse_shard(shard)
    out = Path(out_dir)
    (out / "shards").mkdir(parents=True, exist_ok=True)
    n_shards = (len(keys) + shard_size - 1) // shard_size
    meta = {"version": STORE_VERSION, "spec": spec_to_dict(spec), "n_records": len(keys), "shard_size": shard_size,
            "n_shards": n_shards, "dtype": "float16", "shape": [len(spec.leads), int(spec.n_samples)],
            "keys_digest": _digest(keys)}
    meta_path = out / "store.json"
    if meta_path.is_file():
        old = json.loads(meta_path.read_text())
        diff = sorted(k for k in meta if old.get(k) != meta[k])
        if diff and resume:
            raise StoreError(f"{out}: existing store differs in {diff} (other spec, records or shard size); "
                             "use a new folder or resume=False")
    tmp = out / f"store.json.tmp{os.getpid()}"
    tmp.write_text(json.dumps(meta, indent=1))
    os.replace(tmp, meta_path)

    mine = [k for k in range(n_shards) if k % n_machines == machine]
    todo = [k for k in mine if not (resume and (out / "shards" / f"{_shard_name(k)}.index.csv").is_file())]
    jobs = [(str(out), k, keys[k * shard_size:(k + 1) * shard_size], meta["spec"], quality) for k in todo]
    summary = {"built": 0, "skipped": len(mine) - len(todo), "ok": 0, "failed": 0}
    if n_workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(min(n_workers, len(jobs))) as pool:
            results = pool.map(_build_shard, jobs)
            summary = _tally(results, summary, len(jobs), progress)
    else:
        summary = _tally(map(_build_shard, jobs), summary, len(jobs), progress)
    return summary


def _tally(results, summary: dict, total: int, progress: bool) -> dict:
    if progress:
        from tqdm.auto import tqdm

        results = tqdm(results, total=total, desc="ECG store shards")
    for _, ok, failed in results:
        summary["built"] += 1
        summary["ok"] += ok
        summary["failed"] += failed
    return summary


def _digest(keys: Sequence[str]) -> str:
    import hashlib

    return hashlib.sha256("\n".join(keys).encode()).hexdigest()[:16]


class ECGStore:
    """Read access to a store folder written by :func:`build_ecg_store`.

    Parameters
    ----------
    path : str or PathLike
        The store folder.
    require_complete : bool, default True
        Raise when shards are missing (e.g. a machine of a split build has not finished).

    Attributes
    ----------
    spec : ECGInputSpec
        The spec the arrays were prepared for.
    index : pandas.DataFrame
        One row per record: ``key``, ``shard``, ``row``, ``ok``, ``reason``, ``quality_ok``,
        ``quality_flags``.

    Examples
    --------
    >>> store = ECGStore("ecg_store")                       # doctest: +SKIP
    >>> x, mask = store["/data/ptbxl/records500/00000/00001_hr"]  # doctest: +SKIP
    >>> # x: read-only float16 [12, 5000] (leads, samples); mask: bool [12]
    """

    def __init__(self, path: str | os.PathLike, *, require_complete: bool = True) -> None:
        self.path = Path(path)
        meta_path = self.path / "store.json"
        if not meta_path.is_file():
            raise StoreError(f"{self.path}: not an ECG store (no store.json); build one with "
                             "`riskfm ecg store build`")
        self.meta = json.loads(meta_path.read_text())
        if self.meta.get("version") != STORE_VERSION:
            raise StoreError(f"{self.path}: store version {self.meta.get('version')} is not {STORE_VERSION}")
        self.spec = spec_from_dict(self.meta["spec"])
        parts, missing = [], []
        for k in range(self.meta["n_shards"]):
            index_file = self.path / "shards" / f"{_shard_name(k)}.index.csv"
            if not index_file.is_file():
                missing.append(k)
                continue
            parts.append(pd.read_csv(index_file, dtype={"key": str, "reason": str, "quality_flags": str},
                                     keep_default_na=False).assign(shard=k))
        if missing and require_complete:
            raise StoreError(f"{self.path}: {len(missing)} of {self.meta['n_shards']} shards are not built yet "
                             f"(e.g. {missing[:5]}); finish the build (it resumes) or pass require_complete=False")
        self.index = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
            columns=["row", "key", "ok", "reason", "quality_ok", "quality_flags", "shard"])
        self._where = {key: (int(s), int(r)) for key, s, r in zip(self.index["key"], self.index["shard"],
                                                                    self.index["row"])}
        self._arrays: dict[int, np.ndarray] = {}
        self._masks: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.index)

    def __contains__(self, key: object) -> bool:
        return key in self._where

    def keys(self) -> list[str]:
        """Return the record keys (the ECG paths of the ``key`` index column), in index order."""
        return list(self._where)

    def check_spec(self, spec: ECGInputSpec) -> None:
        """Raise :class:`StoreError` unless the store was built for exactly ``spec``."""
        if not _same_spec(spec, self.spec):
            a, b = spec_to_dict(self.spec), spec_to_dict(spec)
            diff = {k: (a[k], b.get(k)) for k in a if a[k] != b.get(k)}
            raise StoreError(f"{self.path}: built for another input spec; differing fields (store, encoder): {diff}. "
                             "Build a store for this encoder.")

    def _shard(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        if k not in self._arrays:
            base = self.path / "shards" / _shard_name(k)
            self._arrays[k] = np.load(f"{base}.npy", mmap_mode="r")
            self._masks[k] = np.load(f"{base}.mask.npy")
        return self._arrays[k], self._masks[k]

    def record(self, key: str) -> dict:
        """Return the index row of ``key`` as a dict.

        Keys: ``row``, ``key``, ``ok``, ``reason``, ``quality_ok``, ``quality_flags`` and ``shard``.

        Raises
        ------
        KeyError
            When the store has no record ``key``.
        """
        if key not in self._where:
            raise KeyError(f"{self.path}: no record {key!r} in the store")
        shard, row = self._where[key]
        hit = self.index[(self.index["shard"] == shard) & (self.index["row"] == row)].iloc[0]
        return hit.to_dict()

    def __getitem__(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        """``(x, mask)``: a read-only float16 ``[leads, samples]`` memory-mapped view and its bool lead mask."""
        if key not in self._where:
            raise KeyError(f"{self.path}: no record {key!r} in the store")
        shard, row = self._where[key]
        arr, masks = self._shard(shard)
        return arr[row], masks[row]

    def __getstate__(self) -> dict:  # memmaps are reopened in DataLoader worker processes
        state = self.__dict__.copy()
        state["_arrays"], state["_masks"] = {}, {}
        return state


def _store_spec(encoder: str, spec: ECGInputSpec | dict | str | os.PathLike | None) -> ECGInputSpec:
    """Return the input spec a store is built for.

    That is ``spec`` (object, mapping or JSON file) when given, else ``encoder``'s.
    """
    if isinstance(spec, ECGInputSpec):
        return spec
    from riskfm.encoders import encoder_info, encoder_input_spec, input_spec_from_mapping

    if spec is not None and not isinstance(spec, dict):
        path = Path(spec)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: spec file not found (a JSON file of ECGInputSpec fields)")
        try:
            spec = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise StoreError(f"{path}: not valid JSON ({exc}); give ECGInputSpec fields, e.g. "
                             '{"fs": 500, "n_samples": 5000}') from exc
        return input_spec_from_mapping("ecg", spec, owner=str(path))
    if spec is not None:
        return input_spec_from_mapping("ecg", spec, owner="spec")
    info = encoder_info(encoder)
    if info.modality != "ecg":
        raise StoreError(f"encoder {encoder!r} is a {info.modality} encoder; an ECG store needs an ECG encoder's "
                         "input spec")
    return encoder_input_spec(encoder)  # on the meta device: no 30.8M weights allocated to read a spec


def build_manifest_store(
    manifest: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    encoder: str = "ecgfounder-12lead",
    spec: ECGInputSpec | dict | str | os.PathLike | None = None,
    **build_options,
) -> dict:
    """Preprocess the ECGs of a manifest into a store for one encoder (``riskfm ecg store build``).

    Parameters
    ----------
    manifest : str or PathLike
        A riskfm manifest with an ``ecg_path`` column (:func:`manifest_ecg_paths`).
    out_dir : str or PathLike
        Store folder (created).
    encoder : str, default "ecgfounder-12lead"
        Registry name of the ECG encoder whose ``input_spec`` the arrays follow.
    spec : ECGInputSpec, mapping or path to a JSON file, optional
        The input spec itself (fields of :class:`~riskfm.ecg.spec.ECGInputSpec`); overrides
        ``encoder``.
    **build_options
        ``shard_size``, ``n_workers``, ``shard``, ``resume``, ``quality``, ``progress``: as in
        :func:`build_ecg_store`.

    Returns
    -------
    dict
        ``{"built", "skipped", "ok", "failed"}`` as :func:`build_ecg_store`.

    Raises
    ------
    StoreError
        No ``ecg_path`` column, a spec file that is not JSON, a non-ECG encoder, or an existing
        store built otherwise.
    UnknownEncoderError, EncoderArgumentError
        Unknown encoder name; spec fields that do not exist or have the wrong type.
    """
    spec = _store_spec(encoder, spec)
    return build_ecg_store(manifest_ecg_paths(manifest), out_dir, spec, **build_options)


def store_summary(path: str | os.PathLike) -> dict:
    """Count the records and shards of a store folder, complete or not (``riskfm ecg store info``).

    Returns
    -------
    dict
        ``records`` (indexed so far), ``ok`` (read and preprocessed), ``quality_flagged``,
        ``shards_built`` and ``shards`` (in all).

    Raises
    ------
    StoreError
        Not a store folder, or a store of another version.
    """
    store = ECGStore(path, require_complete=False)
    return {"records": len(store), "ok": int(store.index["ok"].astype(bool).sum()),
            "quality_flagged": int((~store.index["quality_ok"].astype(bool)).sum()),
            "shards_built": int(store.index["shard"].nunique()), "shards": store.meta["n_shards"]}
