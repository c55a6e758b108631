"""A preparation pipeline: small composable steps from a source file to the array an encoder is fed.

An encoder's input spec determines its whole preparation (:func:`riskfm.ecg.transforms.ecg_pipeline`,
:func:`riskfm.ct.transforms.ct_pipeline` of the spec; functions, not spec methods, because the specs
sit below the readers in the import layering): a :class:`Pipeline` of :class:`Step` objects in the style of MONAI's
transforms. Each step takes an :class:`Item` (the array plus what travels with it: sampling rate,
spacing, lead mask, notes) and returns it changed. The steps of a pipeline are deterministic, so
their result can be written once to the prepared cache (:mod:`riskfm.data.cache`) and read back by
every later run; random augmentation and the per-item window channels run after the cache, in the
dataset.

A pipeline's :attr:`Pipeline.fingerprint` hashes every step's name, version and parameters (and
riskfm's version): a change of spec, of a plausibility limit or of a step's implementation (its
``version``) gives another fingerprint and so another cache, never a stale read.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Implausible", "Item", "Pipeline", "Prepared", "Step"]


class Implausible(ValueError):
    """A file that reads but fails a plausibility or quality check; its message is the exclusion reason."""


@dataclass
class Item:
    """What flows through a pipeline: the data plus what travels with it.

    Attributes
    ----------
    source : str
        The file or folder the item was read from (for messages).
    data : Any
        The current value: an ``ECG`` or ``CTVolume`` after reading, then an array.
    mask : np.ndarray or None
        bool ``[leads]`` lead mask (ECG), None where the modality has none.
    meta : dict
        Geometry and rates the steps need (``fs`` in Hz, ``spacing`` in mm).
    notes : list of str
        Repairs made on the way (e.g. flat leads masked absent), reported per patient.
    """

    source: str
    data: Any = None
    mask: np.ndarray | None = None
    meta: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


class Step:
    """One preparation step: ``__call__(item) -> item``.

    Subclasses set ``name`` (stable, used in the fingerprint), bump ``version`` whenever their
    output changes for the same parameters, and return their parameters from :meth:`params`.
    """

    name: str = "step"
    version: int = 1
    #: True for the step that reads the source file: :meth:`Pipeline.apply` skips it for data
    #: already in memory.
    reads: bool = False

    def params(self) -> dict:
        """JSON-able parameters that determine the output (hashed into the pipeline fingerprint)."""
        return {}

    def __call__(self, item: Item) -> Item:  # pragma: no cover - abstract
        """Return the item after this step."""
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({args})"


@dataclass(frozen=True)
class Prepared:
    """A pipeline's result for one file: the array to cache, its lead mask and a repair note.

    Attributes
    ----------
    array : np.ndarray
        ``Pipeline.shape`` of ``Pipeline.dtype``.
    mask : np.ndarray or None
        bool ``Pipeline.mask_shape``, or None for a pipeline without a mask.
    note : str
        Repairs joined by ``"; "`` (empty when none).
    """

    array: np.ndarray
    mask: np.ndarray | None = None
    note: str = ""


@dataclass(frozen=True)
class Pipeline:
    """The deterministic preparation of one modality for one encoder input spec.

    Attributes
    ----------
    modality : str
        ``"ecg"`` or ``"ct"``.
    steps : tuple of Step
        Applied in order to an ``Item`` holding the source path; the last leaves the array to cache.
    shape : tuple of int or None
        Shape of every prepared array (e.g. ``[leads, samples]``, ``[Z, Y, X]``); None for a
        whole-volume pipeline whose output keeps each file's own grid (not cacheable).
    dtype : str
        Its numpy dtype name (``"float16"`` for ECG in mV or z-scores, ``"int16"`` for CT in HU).
    mask_shape : tuple of int or None
        Shape of the lead mask, or None.
    """

    modality: str
    steps: tuple[Step, ...]
    shape: tuple[int, ...] | None
    dtype: str
    mask_shape: tuple[int, ...] | None = None

    def describe(self) -> dict:
        """JSON description: modality, output shape / dtype and every step with its version and parameters."""
        from riskfm._version import __version__

        return {
            "modality": self.modality,
            "shape": None if self.shape is None else list(self.shape),
            "dtype": self.dtype,
            "mask_shape": None if self.mask_shape is None else list(self.mask_shape),
            "riskfm": __version__,
            "steps": [{"name": s.name, "version": s.version, "params": s.params()} for s in self.steps],
        }

    @property
    def fingerprint(self) -> str:
        """20 hex digits of SHA-256 over :meth:`describe`: equal exactly when the output is the same."""
        text = json.dumps(self.describe(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:20]

    def run(self, path: str, meta: dict | None = None) -> Item:
        """Apply every step to the file or folder ``path`` and return the final item.

        ``meta`` starts the item's ``meta`` (e.g. the companion mask files a step reads).
        """
        item = Item(source=str(path), meta=dict(meta or {}))
        for step in self.steps:
            item = step(item)
        return item

    def apply(self, item: Item) -> Item:
        """Apply every step but the reading one to an item already holding its data (in memory).

        For a volume or record the caller has read (or made) itself, so that it gets exactly the
        preparation a file would.
        """
        for step in self.steps:
            if not step.reads:
                item = step(item)
        return item

    def __call__(self, path: str) -> Prepared:
        """Prepare one file: the array in ``shape`` / ``dtype``, the mask and the notes.

        Raises
        ------
        Implausible
            The file reads but fails a check (the message is the exclusion reason).
        Exception
            Whatever the reader raises for an unreadable file (its message names the file).
        """
        if self.shape is None:
            raise ValueError(f"{path}: a whole-volume pipeline has no fixed output shape; use Pipeline.run")
        item = self.run(path)
        array = np.asarray(item.data)
        if tuple(array.shape) != tuple(self.shape) or array.dtype != np.dtype(self.dtype):
            # A step that breaks the contract must fail loudly: a cache shard has one shape.
            raise ValueError(f"{path}: pipeline produced {array.dtype} {tuple(array.shape)}, expected "
                             f"{self.dtype} {tuple(self.shape)} ({[s.name for s in self.steps]})")
        mask = None
        if self.mask_shape is not None:
            mask = np.asarray(item.mask, dtype=bool).reshape(self.mask_shape)
        return Prepared(array, mask, "; ".join(item.notes))

    def attempt(self, path: str) -> tuple[Prepared | None, str | None]:
        """Prepare one file, turning every failure into an exclusion reason.

        Returns
        -------
        (Prepared, None) or (None, reason)
            ``reason`` is the check's reason plus the path for an implausible file
            (``"ecg implausible: units: ... (/x/P1.hea)"``) and ``"<modality> unreadable: <error>"``
            for a file the reader or a step refused (the error names the file).
        """
        try:
            return self(path), None
        except Implausible as exc:
            return None, f"{exc} ({path})"
        except Exception as exc:  # noqa: BLE001 - every reader error becomes a counted exclusion
            return None, f"{self.modality} unreadable: {exc}"

    def map(self, paths: Sequence[str], *, workers: int = 1, progress: bool = False,
            desc: str | None = None) -> Iterator[tuple[str, Prepared | None, str | None]]:
        """Prepare many files with ``workers`` threads; yields ``(path, prepared, reason)`` in order.

        Threads suffice: reading and the numpy / scipy steps release the GIL for most of their time.
        """
        paths = list(paths)
        run = lambda p: (p, *self.attempt(p))  # noqa: E731 - a one-line closure for map
        if workers > 1 and len(paths) > 1:
            from concurrent.futures import ThreadPoolExecutor

            pool = ThreadPoolExecutor(workers)
            iterator = pool.map(run, paths)
        else:
            pool, iterator = None, map(run, paths)
        if progress:
            from riskfm.progress import progress as progress_bar

            iterator = progress_bar(iterator, total=len(paths), unit="file",
                                    desc=desc or f"preparing {len(paths)} {self.modality.upper()} files")
        try:
            yield from iterator
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)


def compose(modality: str, steps: Sequence[Step], shape: Sequence[int] | None, dtype: str,
            mask_shape: Sequence[int] | None = None) -> Pipeline:
    """Build a :class:`Pipeline` (tuples made of the sequences)."""
    return Pipeline(modality, tuple(steps), None if shape is None else tuple(int(s) for s in shape),
                    str(np.dtype(dtype)),
                    None if mask_shape is None else tuple(int(s) for s in mask_shape))
