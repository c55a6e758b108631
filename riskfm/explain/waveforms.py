"""Cohort waveform comparison: median beats of high- vs low-risk patients, lead by lead.

The ECG seed explains its model by how the median beats of patients it calls high risk differ from
those it calls low risk. :func:`cohort_median_beats` computes one median beat per patient (R peaks by
neurokit2 on lead II, reused for every lead; amplitudes in mV) and :func:`compare_median_beats` gives,
at every lead and offset from R:

* each group's mean beat with a t-based confidence interval of the mean;
* the difference of the means (high - low) with its pointwise Welch confidence interval (unequal
  variances, Welch-Satterthwaite degrees of freedom);
* Welch's t-test between the groups (unequal variances), p-values corrected for the
  ``leads x samples`` comparisons by Benjamini-Hochberg (false discovery rate ``alpha``); samples with
  ``q < alpha`` are where the groups "differ significantly" (shaded in the figure).

Risk groups come from the model's predictions (:func:`riskfm.evaluate.risk_groups.incidence_threshold`:
the top fraction of patients equal to the training prevalence is "high risk").
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from riskfm.ecg.beats import DEFAULT_BEAT_WINDOW_S, BeatDetectionError
from riskfm.ecg.spec import STANDARD_LEADS, ECGInputSpec
from riskfm.explain.beat_space import lead_ii_r_peaks

__all__ = ["MedianBeatComparison", "cohort_median_beats", "compare_median_beats", "median_beat_of_record"]

#: Display preprocessing of cohort median beats: 250 Hz, ECGFounder's 0.67-40 Hz band-pass, mV.
DISPLAY_SPEC = ECGInputSpec(fs=250.0, n_samples=2500, bandpass_hz=(0.67, 40.0), normalisation="none")


@dataclass
class MedianBeatComparison:
    """Median beats of two groups compared sample by sample (see the module docstring).

    Attributes
    ----------
    time_s : ``[W]`` seconds from the R peak. leads : lead names.
    mean_high, mean_low : ``[L, W]`` group means (mV).
    high_risk_ci, low_risk_ci : ``[2, L, W]`` lower / upper confidence limits of each group's mean
        (flat tables spell them ``high_risk_ci_low`` / ``high_risk_ci_high``, as every CI in riskfm).
    difference : ``[L, W]`` ``mean_high - mean_low`` (mV).
    difference_ci : ``[2, L, W]`` its pointwise Welch confidence interval (not corrected for the
        ``L x W`` comparisons; the q-values are).
    p, q : ``[L, W]`` Welch t-test p-values and Benjamini-Hochberg q-values.
    significant : ``[L, W]`` bool, ``q < alpha``.
    n_high, n_low : patients per group. alpha, confidence : the levels used.
    labels : group names for legends. target : what the risk groups are of.
    """

    time_s: np.ndarray
    leads: tuple[str, ...]
    mean_high: np.ndarray
    mean_low: np.ndarray
    high_risk_ci: np.ndarray
    low_risk_ci: np.ndarray
    p: np.ndarray
    q: np.ndarray
    significant: np.ndarray
    n_high: int
    n_low: int
    alpha: float = 0.05
    confidence: float = 0.95
    labels: tuple[str, str] = ("high risk", "low risk")
    target: str = ""
    difference: np.ndarray | None = None
    difference_ci: np.ndarray | None = None

    def to_frame(self) -> pd.DataFrame:
        """Return a long table: lead, time_s, mean/CI per group, difference/CI, p, q, significant."""
        rows = []
        for i, lead in enumerate(self.leads):
            cols = {
                "lead": lead, "time_s": self.time_s, "mean_high": self.mean_high[i], "mean_low": self.mean_low[i],
                "high_risk_ci_low": self.high_risk_ci[0, i], "high_risk_ci_high": self.high_risk_ci[1, i],
                "low_risk_ci_low": self.low_risk_ci[0, i], "low_risk_ci_high": self.low_risk_ci[1, i]}
            if self.difference is not None and self.difference_ci is not None:
                cols.update(difference=self.difference[i], difference_ci_low=self.difference_ci[0, i],
                            difference_ci_high=self.difference_ci[1, i])
            cols.update(p=self.p[i], q=self.q[i], significant=self.significant[i])
            rows.append(pd.DataFrame(cols))
        return pd.concat(rows, ignore_index=True)

    def plot(self, **kwargs: Any):
        """Draw the per-lead figure (:func:`riskfm.plots.median_beats.plot_median_beat_comparison`)."""
        from riskfm.plots.median_beats import plot_median_beat_comparison

        return plot_median_beat_comparison(self, **kwargs)

    def plot_difference(self, **kwargs: Any):
        """Draw the per-lead difference with its CI (:func:`riskfm.plots.median_beats.plot_median_beat_difference`)."""
        from riskfm.plots.median_beats import plot_median_beat_difference

        return plot_median_beat_difference(self, **kwargs)


def _mean_ci(x: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    n = x.shape[0]
    mean = x.mean(axis=0)
    if n < 2:
        return mean, np.stack([mean, mean])
    half = stats.t.ppf(0.5 + confidence / 2, n - 1) * x.std(axis=0, ddof=1) / np.sqrt(n)
    return mean, np.stack([mean - half, mean + half])


def _welch_difference_ci(high: np.ndarray, low: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """Pointwise difference of means (high - low) and its Welch interval, ``[L, W]`` and ``[2, L, W]``."""
    diff = high.mean(axis=0) - low.mean(axis=0)
    vh, vl = high.var(axis=0, ddof=1) / len(high), low.var(axis=0, ddof=1) / len(low)
    se2 = vh + vl
    with np.errstate(invalid="ignore", divide="ignore"):
        dof = se2**2 / (vh**2 / (len(high) - 1) + vl**2 / (len(low) - 1))
    # Constant samples (absent leads) have se 0: the interval is the point itself.
    half = np.where(se2 > 0, stats.t.ppf(0.5 + confidence / 2, np.where(se2 > 0, dof, 1.0)) * np.sqrt(se2), 0.0)
    return diff, np.stack([diff - half, diff + half])


def compare_median_beats(high: np.ndarray, low: np.ndarray, *, fs: float, leads: Sequence[str] = STANDARD_LEADS,
                         before_s: float = DEFAULT_BEAT_WINDOW_S[0], alpha: float = 0.05, confidence: float = 0.95,
                         labels: tuple[str, str] = ("high risk", "low risk"),
                         target: str = "") -> MedianBeatComparison:
    """Compare two groups' median beats ``[n, leads, W]`` (see the module docstring).

    Parameters
    ----------
    high, low : median beats of each group, same ``[leads, W]`` per patient, mV.
    fs : Hz of the beats. before_s : seconds of the window before R (sets ``time_s``).
    alpha : false discovery rate for the shading. confidence : level of the CI bands.

    Raises
    ------
    ValueError
        A group has fewer than 2 patients, or the beats' shapes differ.
    """
    high, low = np.asarray(high, dtype=np.float64), np.asarray(low, dtype=np.float64)
    if high.ndim != 3 or low.ndim != 3 or high.shape[1:] != low.shape[1:]:
        raise ValueError(f"high {high.shape} and low {low.shape} must be [n, leads, samples] with equal "
                         "leads x samples")
    if len(high) < 2 or len(low) < 2:
        raise ValueError(f"each risk group needs at least 2 patients with a median beat (high {len(high)}, "
                         f"low {len(low)})")
    if high.shape[1] != len(leads):
        raise ValueError(f"{high.shape[1]} leads in the beats but {len(leads)} lead names")
    mean_h, ci_h = _mean_ci(high, confidence)
    mean_l, ci_l = _mean_ci(low, confidence)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = stats.ttest_ind(high, low, axis=0, equal_var=False).pvalue
    p = np.where(np.isfinite(p), p, 1.0)  # identical constant samples (e.g. absent leads): no difference
    q = stats.false_discovery_control(p.ravel(), method="bh").reshape(p.shape)
    diff, diff_ci = _welch_difference_ci(high, low, confidence)
    width = high.shape[2]
    before = int(round(before_s * fs))
    return MedianBeatComparison(
        time_s=(np.arange(width) - before) / fs, leads=tuple(leads), mean_high=mean_h, mean_low=mean_l,
        high_risk_ci=ci_h, low_risk_ci=ci_l, p=p, q=q, significant=q < alpha, n_high=len(high), n_low=len(low),
        alpha=alpha, confidence=confidence, labels=labels, target=target, difference=diff, difference_ci=diff_ci)


def median_beat_of_record(path: str | os.PathLike, spec: ECGInputSpec = DISPLAY_SPEC, *,
                          window_s: tuple[float, float] = DEFAULT_BEAT_WINDOW_S, min_beats: int = 3) -> np.ndarray:
    """Return the median beat ``[leads, W]`` (mV) of one ECG file.

    The record is read and band-passed per ``spec``, and beats are aligned on neurokit2's lead II
    R peaks. ``W = round(window_s[0] * fs) + round(window_s[1] * fs)`` samples at ``spec.fs``.
    """
    from riskfm.ecg.io import read_ecg
    from riskfm.ecg.preprocess import prepare_ecg

    x, _ = prepare_ecg(read_ecg(path), spec)
    peaks = lead_ii_r_peaks(x, spec.fs, spec.leads)
    before, after = int(round(window_s[0] * spec.fs)), int(round(window_s[1] * spec.fs))
    peaks = peaks[(peaks - before >= 0) & (peaks + after <= x.shape[1])]
    if len(peaks) < min_beats:
        raise BeatDetectionError(f"{path}: only {len(peaks)} complete beats on lead II (need {min_beats})")
    return np.median(np.stack([x[:, p - before:p + after] for p in peaks]), axis=0)


def cohort_median_beats(paths: Sequence[str | os.PathLike], spec: ECGInputSpec = DISPLAY_SPEC, *,
                        window_s: tuple[float, float] = DEFAULT_BEAT_WINDOW_S, progress: bool = True,
                        ) -> tuple[np.ndarray, list[int], list[dict[str, str]]]:
    """Return the median beats of many ECG files.

    ``progress``: a bar over the files on stderr (silent under ``--quiet``).

    Returns
    -------
    beats : float ``[n_ok, leads, W]`` (mV).
    kept : indices into ``paths`` of the records in ``beats``.
    failures : ``{"path", "reason"}`` per record that could not be read or aligned (not silently dropped).
    """
    beats, kept, failures = [], [], []
    if progress:
        from riskfm.progress import progress as bar_of

        paths = bar_of(paths, total=len(paths), desc=f"median beats of {len(paths)} ECGs", unit="ECG")
    for i, path in enumerate(paths):
        try:
            beats.append(median_beat_of_record(path, spec, window_s=window_s))
            kept.append(i)
        except (BeatDetectionError, ValueError, OSError) as exc:
            failures.append({"path": str(path), "reason": str(exc)})
    width = int(round(window_s[0] * spec.fs)) + int(round(window_s[1] * spec.fs))
    out = np.stack(beats) if beats else np.zeros((0, len(spec.leads), width))
    return out, kept, failures
