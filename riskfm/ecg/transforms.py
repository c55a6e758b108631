"""The ECG preparation steps and :func:`ecg_pipeline`, the pipeline an :class:`ECGInputSpec` owns.

``ecg_pipeline(spec)`` composes, in order:

1. :class:`ReadECG` -- any format :func:`riskfm.ecg.read_ecg` reads (mV, leads named);
2. :class:`CheckECGPlausibility` -- exclude units errors and too-short records, mask flat leads
   (:mod:`riskfm.ecg.plausibility`; skipped when the limits are disabled);
3. :class:`CheckECGQuality` -- only with ``quality=True`` (:mod:`riskfm.ecg.quality`);
4. :class:`PrepareForSpec` -- leads, rate, filters, window and normalisation of the spec
   (:func:`riskfm.ecg.preprocess.prepare_ecg`, itself a composition of public steps);
5. :class:`MedianBeat` -- only for ``representation="median_beat"`` (:mod:`riskfm.ecg.beats`);
6. :class:`ToStorage` -- refuse non-finite values, store float16 (mV or z-scores: float16 keeps
   about 3 significant digits, 1 µV at 1 mV).

Every step is deterministic, so the result is what the prepared cache keeps; augmentation runs
after it, per item.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from riskfm.data.pipeline import Implausible, Item, Pipeline, Step, compose
from riskfm.ecg.spec import ECGInputSpec

__all__ = ["CheckECGPlausibility", "CheckECGQuality", "MedianBeat", "PrepareForSpec", "ReadECG", "ToStorage",
           "ecg_pipeline"]

#: Spec fields that only record provenance: they do not change the prepared array.
_PROVENANCE = ("licence", "source")


class ReadECG(Step):
    """Read the recording (``item.data`` becomes an :class:`~riskfm.ecg.record.ECG` in mV)."""

    name = "read_ecg"
    reads = True

    def __call__(self, item: Item) -> Item:
        """Read ``item.source``; reader errors name the file and the problem."""
        from riskfm.ecg.io import read_ecg

        item.data = read_ecg(item.source)
        item.meta["fs"] = float(item.data.fs)
        return item


class CheckECGPlausibility(Step):
    """Exclude implausible recordings; mask flat leads absent (noted).

    Parameters
    ----------
    limits : ECGPlausibility
        The limits (``data.checks.ecg`` of a run config).
    window_s : float
        The encoder's window in seconds (a record shorter than ``min_duration_fraction`` of it is excluded).
    """

    name = "check_ecg_plausibility"

    def __init__(self, limits, window_s: float) -> None:
        self.limits = limits
        self.window_s = float(window_s)

    def params(self) -> dict:
        """Return the limits and the window length."""
        return {"limits": dataclasses.asdict(self.limits), "window_s": self.window_s}

    def __call__(self, item: Item) -> Item:
        """Raise :class:`Implausible` with the check's reason, or return the item (flat leads dropped)."""
        from riskfm.ecg.plausibility import check_ecg_plausibility, drop_leads

        verdict = check_ecg_plausibility(item.data, self.window_s, self.limits)
        if verdict.exclude_reason:
            raise Implausible(verdict.exclude_reason)
        if verdict.flat_leads and self.limits.mask_flat_leads:
            item.data = drop_leads(item.data, verdict.flat_leads)
            item.notes.append(f"ecg flat leads masked absent: {', '.join(verdict.flat_leads)}")
        return item


class CheckECGQuality(Step):
    """Exclude recordings failing :func:`riskfm.ecg.quality.ecg_quality` (reason ``"ecg quality: ..."``)."""

    name = "check_ecg_quality"

    def __call__(self, item: Item) -> Item:
        """Raise :class:`Implausible` naming the failed checks, or return the item unchanged."""
        from riskfm.ecg.quality import ecg_quality

        report = ecg_quality(item.data)
        if not report.ok:
            raise Implausible(f"ecg quality: poor signal quality ({'; '.join(report.reasons)})")
        return item


class PrepareForSpec(Step):
    """Leads, rate, filters, window and normalisation of ``spec`` (``item.data`` becomes ``[leads, n_samples]``)."""

    name = "prepare_ecg"

    def __init__(self, spec: ECGInputSpec) -> None:
        self.spec = spec

    def params(self) -> dict:
        """Every spec field that changes the array (provenance fields left out)."""
        values = dataclasses.asdict(self.spec)
        return {k: v for k, v in values.items() if k not in _PROVENANCE and k not in ("representation",
                                                                                       "beat_window_s")}

    def __call__(self, item: Item) -> Item:
        """Prepare the ECG; the lead mask goes to ``item.mask``."""
        from riskfm.ecg.preprocess import prepare_ecg

        item.data, item.mask = prepare_ecg(item.data, self.spec)
        item.meta["fs"] = float(self.spec.fs)
        return item


class MedianBeat(Step):
    """The per-lead median of R-aligned beats: ``[leads, round(before*fs) + round(after*fs)]``.

    Parameters
    ----------
    window_s : (float, float)
        Seconds before and after the R peak.
    """

    name = "median_beat"

    def __init__(self, window_s: tuple[float, float]) -> None:
        self.window_s = (float(window_s[0]), float(window_s[1]))

    def params(self) -> dict:
        """Return the beat window in seconds."""
        return {"window_s": list(self.window_s)}

    def __call__(self, item: Item) -> Item:
        """Replace the window by its median beat; too few beats is an error naming the file."""
        from riskfm.ecg.beats import BeatDetectionError, median_beat

        try:
            item.data = median_beat(item.data, item.meta["fs"], window_s=self.window_s)
        except BeatDetectionError as exc:
            raise ValueError(f"{item.source}: {exc}") from None
        return item


class ToStorage(Step):
    """Refuse non-finite values and cast to the cache's dtype (float16 by default)."""

    name = "to_storage"

    def __init__(self, dtype: str = "float16") -> None:
        self.dtype = str(np.dtype(dtype))

    def params(self) -> dict:
        """Return the storage dtype."""
        return {"dtype": self.dtype}

    def __call__(self, item: Item) -> Item:
        """Cast ``item.data``; NaN or inf after preprocessing is an error naming the file."""
        x = np.asarray(item.data)
        if not np.isfinite(x).all():
            raise ValueError(f"{item.source}: non-finite values after preprocessing")
        item.data = x.astype(self.dtype)
        return item


def ecg_pipeline(spec: ECGInputSpec, *, checks=None, quality: bool = False) -> Pipeline:
    """Build the whole deterministic preparation of one ECG file for ``spec``.

    Parameters
    ----------
    spec : ECGInputSpec
        The encoder's input spec.
    checks : ECGPlausibility, optional
        Plausibility limits (default limits when None; ``enabled=False`` leaves the step out).
    quality : bool, default False
        Also exclude records failing the signal-quality checks.

    Returns
    -------
    Pipeline
        ``path -> Prepared`` with a float16 ``[len(spec.leads), spec.input_samples]`` array and a
        bool ``[len(spec.leads)]`` lead mask.

    Raises
    ------
    ValueError
        An unknown ``spec.representation``.
    """
    from riskfm.ecg.plausibility import ECGPlausibility

    if spec.representation not in ("raw", "median_beat"):
        raise ValueError(f"unknown ECG representation {spec.representation!r}; use 'raw' or 'median_beat'")
    checks = checks or ECGPlausibility()
    steps: list[Step] = [ReadECG()]
    if checks.enabled:
        steps.append(CheckECGPlausibility(checks, spec.seconds))
    if quality:
        steps.append(CheckECGQuality())
    steps.append(PrepareForSpec(spec))
    if spec.representation == "median_beat":
        steps.append(MedianBeat(spec.beat_window_s))
    steps.append(ToStorage("float16"))
    n_leads = len(spec.leads)
    return compose("ecg", steps, (n_leads, spec.input_samples), "float16", (n_leads,))
