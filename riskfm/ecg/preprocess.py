"""Turn an :class:`~riskfm.ecg.record.ECG` into exactly what an encoder's input spec asks for.

:func:`prepare_ecg` composes small public steps, each usable on its own:

1. :func:`derive_limb_leads`: compute missing III, aVR, aVL, aVF from I and II;
2. :func:`reorder_leads`: rows in ``spec.leads`` order, zero rows + ``False`` mask for absent leads;
3. :func:`resample`: polyphase resampling to ``spec.fs``;
4. :func:`notch`, :func:`bandpass`, :func:`remove_baseline`: the filters the spec asks for, applied
   to the whole recording *before* cropping so the window is free of filter edge transients;
5. :func:`crop_or_pad`: centre crop or zero pad to ``spec.n_samples``;
6. :func:`normalise`: ``"none"`` (mV), ``"global_zscore"`` or ``"lead_zscore"`` over present leads;
7. NaN -> 0.

Arrays are ``[leads, T]``; time is the last axis throughout.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from fractions import Fraction

import numpy as np
from scipy import ndimage, signal

from riskfm.ecg.leads import canonical_lead_name
from riskfm.ecg.record import ECG
from riskfm.ecg.spec import ECGInputSpec

__all__ = [
    "prepare_ecg",
    "reorder_leads",
    "derive_limb_leads",
    "resample",
    "crop_or_pad",
    "bandpass",
    "notch",
    "remove_baseline",
    "normalise",
    "NORMALISATIONS",
    "ecg_windows",
    "aggregate_windows",
]

#: Accepted values of ``ECGInputSpec.normalisation``.
NORMALISATIONS: tuple[str, ...] = ("none", "global_zscore", "lead_zscore", "lead_minmax")

# Standard deviations below this (in the array's units) are treated as a flat line: dividing by
# them would turn quantisation noise into unit-variance garbage.
_MIN_STD = 1e-6

# Largest denominator accepted when turning a rate ratio into integer up/down factors: keeps the
# polyphase filter small while representing every common ECG rate pair (e.g. 257 -> 500 Hz) exactly.
_MAX_RATIO_DENOMINATOR = 1000


def _key(name: str) -> str:
    """Name used to match leads: the canonical name for standard leads, else the name itself."""
    return canonical_lead_name(name) or name


def derive_limb_leads(x: np.ndarray, leads: Sequence[str]) -> tuple[np.ndarray, tuple[str, ...]]:
    """Add the limb leads III, aVR, aVL, aVF that are missing, computed from leads I and II.

    Uses Einthoven's law and Goldberger's augmented-lead definitions::

        III = II - I,  aVR = -(I + II) / 2,  aVL = I - II / 2,  aVF = II - I / 2

    which is how devices that store only I, II and V1-V6 (e.g. GE MUSE) expect them rebuilt.

    Parameters
    ----------
    x : np.ndarray
        ``[n_leads, T]`` signal in mV.
    leads : sequence of str
        Name of each row (canonical names or aliases).

    Returns
    -------
    x : np.ndarray
        ``[n_leads + k, T]``: the input rows followed by the ``k`` derived leads.
    leads : tuple of str
        Names of the returned rows. Unchanged (and ``x`` returned as is) when I or II is absent
        or nothing is missing.
    """
    x = np.asarray(x)
    keys = [_key(name) for name in leads]
    if "I" not in keys or "II" not in keys:
        return x, tuple(leads)
    lead_i = x[keys.index("I")].astype(np.float64)
    lead_ii = x[keys.index("II")].astype(np.float64)
    formulas = {
        "III": lambda: lead_ii - lead_i,
        "aVR": lambda: -(lead_i + lead_ii) / 2.0,
        "aVL": lambda: lead_i - lead_ii / 2.0,
        "aVF": lambda: lead_ii - lead_i / 2.0,
    }
    missing = [name for name in formulas if name not in keys]
    if not missing:
        return x, tuple(leads)
    derived = np.stack([formulas[name]() for name in missing]).astype(x.dtype, copy=False)
    return np.concatenate([x, derived], axis=0), (*leads, *missing)


def reorder_leads(
    x: np.ndarray, leads: Sequence[str], target_leads: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Put rows in ``target_leads`` order; absent leads become zero rows.

    Parameters
    ----------
    x : np.ndarray
        ``[n_leads, T]`` signal.
    leads : sequence of str
        Name of each row of ``x``. Standard leads match through their aliases (``"avr"`` matches
        ``"aVR"``); other names must match exactly.
    target_leads : sequence of str
        Wanted lead order (e.g. ``spec.leads``).

    Returns
    -------
    out : np.ndarray
        float32 ``[len(target_leads), T]``.
    mask : np.ndarray
        bool ``[len(target_leads)]``, True where the lead came from ``x``.

    Raises
    ------
    ValueError
        If the row count differs from ``len(leads)`` or a lead name repeats in ``leads``.
    """
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[0] != len(leads):
        raise ValueError(f"reorder_leads: x has shape {x.shape} but {len(leads)} lead names were given")
    keys = [_key(name) for name in leads]
    if len(set(keys)) != len(keys):
        raise ValueError(f"reorder_leads: lead names repeat (after alias matching): {list(leads)}")
    row_of = {key: row for row, key in enumerate(keys)}
    out = np.zeros((len(target_leads), x.shape[1]), dtype=np.float32)
    mask = np.zeros(len(target_leads), dtype=bool)
    for i, name in enumerate(target_leads):
        row = row_of.get(_key(name))
        if row is not None:
            out[i] = x[row]
            mask[i] = True
    return out, mask


def _check_rate(fs: float, what: str) -> float:
    """Return ``fs`` as a float, raising ValueError when it is not finite and positive."""
    try:
        value = float(fs)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} must be a number in Hz; got {fs!r}") from exc
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{what} must be finite and > 0 Hz; got {fs!r}")
    return value


def resample(x: np.ndarray, fs_in: float, fs_out: float) -> np.ndarray:
    """Resample along time with a polyphase anti-aliasing filter.

    The rate ratio ``fs_out / fs_in`` is written as ``up / down`` with
    :class:`fractions.Fraction` (denominator at most 1000) and passed to
    :func:`scipy.signal.resample_poly`, whose FIR filter keeps the passband amplitude and removes
    content above the new Nyquist frequency when downsampling.

    Parameters
    ----------
    x : np.ndarray
        ``[..., T]`` signal (e.g. ``[leads, T]`` in mV).
    fs_in, fs_out : float
        Current and wanted sampling rates in Hz.

    Returns
    -------
    np.ndarray
        float32 ``[..., ceil(T * up / down)]``; a float32 copy when the rates are equal.

    Raises
    ------
    ValueError
        If a rate is not finite and positive.
    """
    fs_in = _check_rate(fs_in, "resample: fs_in")
    fs_out = _check_rate(fs_out, "resample: fs_out")
    x = np.asarray(x)
    ratio = Fraction(fs_out / fs_in).limit_denominator(_MAX_RATIO_DENOMINATOR)
    if ratio == 1:
        return x.astype(np.float32, copy=True)
    if ratio.numerator == 0:
        raise ValueError(f"resample: ratio {fs_out} / {fs_in} Hz is too small to represent")
    out = signal.resample_poly(x.astype(np.float64), ratio.numerator, ratio.denominator, axis=-1)
    return out.astype(np.float32)


def crop_or_pad(x: np.ndarray, n_samples: int, *, pad: str = "end") -> np.ndarray:
    """Centre-crop or zero-pad the time axis to exactly ``n_samples``.

    Parameters
    ----------
    x : np.ndarray
        ``[..., T]`` signal.
    n_samples : int
        Wanted length (> 0).
    pad : {"end", "both"}
        Where zeros go when ``T < n_samples``: after the signal (default: sample 0 stays the
        recording's start) or split evenly on both sides.

    Returns
    -------
    np.ndarray
        ``[..., n_samples]``, same dtype as ``x``. Cropping keeps the central ``n_samples``
        (the extra sample, if odd, is dropped from the end).
    """
    if int(n_samples) != n_samples or n_samples <= 0:
        raise ValueError(f"crop_or_pad: n_samples must be a positive integer; got {n_samples!r}")
    if pad not in ("end", "both"):
        raise ValueError(f"crop_or_pad: pad must be 'end' or 'both'; got {pad!r}")
    n_samples = int(n_samples)
    x = np.asarray(x)
    length = x.shape[-1]
    if length == n_samples:
        return x.copy()
    if length > n_samples:
        start = (length - n_samples) // 2
        return x[..., start:start + n_samples].copy()
    missing = n_samples - length
    before = missing // 2 if pad == "both" else 0
    widths = [(0, 0)] * (x.ndim - 1) + [(before, missing - before)]
    return np.pad(x, widths, mode="constant")


def bandpass(x: np.ndarray, fs: float, low_hz: float, high_hz: float, *, order: int = 4) -> np.ndarray:
    """Apply a zero-phase Butterworth band-pass filter along time.

    A Butterworth design of ``order`` (second-order sections, so stable at the very low corner
    frequencies ECGs need) applied forwards and backwards with :func:`scipy.signal.sosfiltfilt`:
    no phase shift, so wave timing (QRS onset, ST segment) is preserved.

    Parameters
    ----------
    x : np.ndarray
        ``[..., T]`` signal in mV.
    fs : float
        Sampling rate in Hz.
    low_hz, high_hz : float
        Corner frequencies in Hz, ``0 < low_hz < high_hz < fs / 2`` (e.g. 0.67 and 40).
    order : int
        Butterworth order of the prototype filter (4 by default).

    Returns
    -------
    np.ndarray
        float32, same shape as ``x``.

    Raises
    ------
    ValueError
        For corners outside ``(0, fs / 2)`` or a signal too short for the filter's edge padding.
    """
    fs = _check_rate(fs, "bandpass: fs")
    if not (0 < low_hz < high_hz < fs / 2):
        raise ValueError(
            f"bandpass: need 0 < low ({low_hz} Hz) < high ({high_hz} Hz) < Nyquist ({fs / 2:g} Hz)"
        )
    sos = signal.butter(order, [low_hz, high_hz], btype="bandpass", fs=fs, output="sos")
    try:
        out = signal.sosfiltfilt(sos, np.asarray(x, dtype=np.float64), axis=-1)
    except ValueError as exc:
        raise ValueError(f"bandpass: signal of {np.shape(x)[-1]} samples is too short to filter: {exc}") from exc
    return out.astype(np.float32)


def notch(x: np.ndarray, fs: float, freq_hz: float, *, quality: float = 30.0) -> np.ndarray:
    """Apply a zero-phase IIR notch removing mains interference (50 or 60 Hz) along time.

    Parameters
    ----------
    x : np.ndarray
        ``[..., T]`` signal in mV.
    fs : float
        Sampling rate in Hz.
    freq_hz : float
        Frequency to remove in Hz, ``0 < freq_hz < fs / 2``.
    quality : float
        Quality factor Q (notch width = ``freq_hz / Q``); 30 by default.

    Returns
    -------
    np.ndarray
        float32, same shape as ``x``.
    """
    fs = _check_rate(fs, "notch: fs")
    if not (0 < freq_hz < fs / 2):
        raise ValueError(f"notch: frequency {freq_hz} Hz must lie in (0, Nyquist = {fs / 2:g} Hz)")
    b, a = signal.iirnotch(freq_hz, quality, fs=fs)
    try:
        out = signal.filtfilt(b, a, np.asarray(x, dtype=np.float64), axis=-1)
    except ValueError as exc:
        raise ValueError(f"notch: signal of {np.shape(x)[-1]} samples is too short to filter: {exc}") from exc
    return out.astype(np.float32)


def remove_baseline(x: np.ndarray, fs: float, window_s: float) -> np.ndarray:
    """Subtract a running-median baseline (wander from breathing and electrode motion).

    The median over ``window_s`` seconds ignores the QRS complexes (narrower than the window), so
    what it tracks is the slow baseline. Edges repeat the end sample ("nearest"): with a sloping
    baseline that keeps the median at the edge value, where reflection would lag by half a window.

    Parameters
    ----------
    x : np.ndarray
        ``[..., T]`` signal in mV.
    fs : float
        Sampling rate in Hz.
    window_s : float
        Median window in seconds (e.g. 0.4); rounded to an odd number of samples (at least 1).

    Returns
    -------
    np.ndarray
        float32 ``x - baseline``, same shape as ``x``.
    """
    fs = _check_rate(fs, "remove_baseline: fs")
    if not (math.isfinite(window_s) and window_s > 0):
        raise ValueError(f"remove_baseline: window_s must be > 0 s; got {window_s!r}")
    width = max(1, int(round(window_s * fs)))
    width += 1 - width % 2  # odd, so the median is centred on each sample
    x = np.asarray(x, dtype=np.float32)
    if x.size == 0:
        return x.copy()
    rows = x.reshape(-1, x.shape[-1])
    # Row by row on purpose: scipy's 1-D median filter has a fast running-median path that is
    # ~40x quicker than one N-D call with size (1, width) on a 12 x 19200 ECG.
    baseline = np.stack([ndimage.median_filter(row, size=width, mode="nearest") for row in rows])
    return (rows - baseline).reshape(x.shape).astype(np.float32)


def normalise(x: np.ndarray, method: str, mask: np.ndarray | None = None) -> np.ndarray:
    """Scale the signal as an encoder was trained to see it.

    Parameters
    ----------
    x : np.ndarray
        ``[leads, T]`` signal in mV.
    method : {"none", "global_zscore", "lead_zscore", "lead_minmax"}
        ``"none"``: return mV unchanged. ``"global_zscore"``: subtract the mean and divide by the
        standard deviation of all samples of the present leads together (keeps the relative
        amplitude of leads). ``"lead_zscore"``: the same per present lead. ``"lead_minmax"``:
        each present lead divided by its largest absolute value, so it lies in [-1, 1]
        (HuBERT-ECG style).
    mask : np.ndarray, optional
        bool ``[leads]``; absent leads (False) are left as they are (zeros from
        :func:`reorder_leads`) and do not enter the statistics. All leads are present by default.

    Returns
    -------
    np.ndarray
        float32 ``[leads, T]``. A (near-)constant lead or array is only centred, never divided by a
        standard deviation below 1e-6, so flat lines stay finite.
    """
    if method not in NORMALISATIONS:
        raise ValueError(f"normalise: method must be one of {NORMALISATIONS}; got {method!r}")
    out = np.array(x, dtype=np.float32, copy=True)
    if out.ndim != 2:
        raise ValueError(f"normalise: x must be [leads, T]; got shape {out.shape}")
    present = np.ones(out.shape[0], dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    if present.shape != (out.shape[0],):
        raise ValueError(f"normalise: mask has shape {present.shape}, expected ({out.shape[0]},)")
    if method == "none" or not present.any() or out.shape[1] == 0:
        return out
    rows = out[present].astype(np.float64)
    if method == "global_zscore":
        mean = np.nanmean(rows)
        std = np.nanstd(rows)
        rows = rows - mean
        if std > _MIN_STD:
            rows = rows / std
    elif method == "lead_zscore":
        mean = np.nanmean(rows, axis=1, keepdims=True)
        std = np.nanstd(rows, axis=1, keepdims=True)
        rows = (rows - mean) / np.where(std > _MIN_STD, std, 1.0)
    else:
        peak = np.nanmax(np.abs(rows), axis=1, keepdims=True)
        rows = rows / np.where(peak > _MIN_STD, peak, 1.0)
    out[present] = rows.astype(np.float32)
    return out


def prepare_ecg(ecg: ECG, spec: ECGInputSpec, *, crop: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Preprocess one ECG exactly as ``spec`` describes (see the module docstring for the order).

    Parameters
    ----------
    ecg : ECG
        Recording in mV at any rate, with any subset of leads.
    spec : ECGInputSpec
        What the encoder expects: ``fs`` (Hz), ``n_samples``, ``leads`` order, optional
        ``notch_hz``, ``bandpass_hz`` (low, high in Hz), ``baseline_median_s`` (s) and
        ``normalisation``.
    crop : bool, default True
        Crop / pad to ``spec.n_samples``. ``False`` keeps the whole (filtered, normalised)
        recording, for :func:`ecg_windows`.

    Returns
    -------
    x : np.ndarray
        float32 ``[len(spec.leads), spec.n_samples]`` (the whole resampled length when
        ``crop=False``): mV when ``normalisation == "none"``, z-scores for the z-score methods,
        [-1, 1] for ``"lead_minmax"``. Absent leads are zero rows. No NaN.
    lead_mask : np.ndarray
        bool ``[len(spec.leads)]``: True for leads recorded or derived from I and II.

    Raises
    ------
    ValueError
        If ``ecg.fs`` or ``spec.fs`` is not finite and positive, ``spec.n_samples`` is not a positive
        integer, ``spec.normalisation`` is unknown, or a filter setting is out of range.

    Notes
    -----
    Samples that are NaN/inf in a recorded lead are set to 0 mV before resampling and filtering,
    because a single NaN would otherwise spread over the whole lead through the filters; a lead
    with no finite sample at all is treated as absent (mask False).
    """
    fs_in = _check_rate(ecg.fs, f"prepare_ecg: ECG sampling rate (source {ecg.meta.get('source', '?')})")
    fs_out = _check_rate(spec.fs, "prepare_ecg: spec.fs")
    if spec.normalisation not in NORMALISATIONS:
        raise ValueError(
            f"prepare_ecg: spec.normalisation must be one of {NORMALISATIONS}; got {spec.normalisation!r}"
        )

    raw = np.asarray(ecg.signal, dtype=np.float32)
    finite = np.isfinite(raw)
    usable = finite.any(axis=1)
    names = [name for name, ok in zip(ecg.leads, usable) if ok]
    rows = np.where(finite, raw, 0.0)[usable]

    rows, names = derive_limb_leads(rows, names)
    x, mask = reorder_leads(rows, names, spec.leads)
    x = resample(x, fs_in, fs_out)
    if spec.notch_hz is not None:
        x = notch(x, fs_out, spec.notch_hz)
    if spec.bandpass_hz is not None:
        low, high = spec.bandpass_hz
        x = bandpass(x, fs_out, low, high)
    if spec.baseline_median_s is not None:
        x = remove_baseline(x, fs_out, spec.baseline_median_s)
    if crop:
        x = crop_or_pad(x, spec.n_samples)
    # Absent leads must stay exactly zero whatever the filters did to their (zero) rows.
    x[~mask] = 0.0
    x = normalise(x, spec.normalisation, mask)
    x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32, copy=False)
    return x, mask


def ecg_windows(ecg: ECG, spec: ECGInputSpec, *, stride_s: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Split a long recording into model-length windows, each prepared as ``spec`` describes.

    The whole recording is filtered once (so no window has filter edge transients), then cut into
    windows of ``spec.n_samples`` every ``stride_s`` seconds (non-overlapping by default); the
    tail that does not fill a window is covered by one last window ending at the recording's end.
    Each window is normalised on its own, like a single ``prepare_ecg`` input. A recording shorter
    than one window gives one zero-padded window.

    Parameters
    ----------
    ecg : ECG
        Recording in mV.
    spec : ECGInputSpec
        The encoder's input spec.
    stride_s : float, optional
        Window start spacing in seconds (default: ``spec.seconds``, no overlap).

    Returns
    -------
    windows : np.ndarray
        float32 ``[n_windows, len(spec.leads), spec.n_samples]``.
    lead_mask : np.ndarray
        bool ``[len(spec.leads)]``.
    """
    full, mask = prepare_ecg(ecg, dataclasses.replace(spec, normalisation="none"), crop=False)
    n = int(spec.n_samples)
    stride = n if stride_s is None else int(round(float(stride_s) * spec.fs))
    if stride <= 0:
        raise ValueError(f"ecg_windows: stride_s must be > 0 s; got {stride_s!r}")
    length = full.shape[1]
    if length <= n:
        starts = [0]
    else:
        starts = list(range(0, length - n + 1, stride))
        if starts[-1] + n < length:
            starts.append(length - n)
    windows = np.stack([
        normalise(crop_or_pad(full[:, s:s + n], n), spec.normalisation, mask) for s in starts
    ]).astype(np.float32)
    windows[:, ~mask] = 0.0
    return np.nan_to_num(windows, nan=0.0, posinf=0.0, neginf=0.0), mask


def aggregate_windows(values: np.ndarray, how: str = "mean") -> np.ndarray:
    """Aggregate per-window predictions of one recording into one prediction.

    Parameters
    ----------
    values : np.ndarray
        ``[n_windows, ...]`` probabilities (or logits, or features).
    how : {"mean", "max", "median"}
        ``"mean"`` (default; what the window-averaging evaluations of ECG models report), ``"max"``
        (any window positive, e.g. paroxysmal findings) or ``"median"`` (robust to a noisy window).

    Returns
    -------
    np.ndarray
        ``values`` reduced over axis 0.
    """
    values = np.asarray(values)
    if values.ndim == 0 or values.shape[0] == 0:
        raise ValueError(f"aggregate_windows: need at least one window; got shape {values.shape}")
    funcs = {"mean": np.mean, "max": np.max, "median": np.median}
    if how not in funcs:
        raise ValueError(f"aggregate_windows: how must be one of {sorted(funcs)}; got {how!r}")
    return funcs[how](values, axis=0)
