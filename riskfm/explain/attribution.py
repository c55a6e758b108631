"""Attribution results: values aligned with the model's input, metadata, ``.plot()`` and ``.to_numpy()``.

One class per kind of input, sharing :class:`Attribution`:

* :class:`ECGAttribution`: ``values`` ``[B, leads, T]`` (raw window or median beat, as the encoder
  reads it); per-lead and per-time summaries; the move into median-beat space.
* :class:`CTAttribution`: ``values`` ``[B, C, Z, Y, X]`` (one map per HU-window channel); the voxel map
  and its peak.
* :class:`ClinicalAttribution`: ``values`` ``[B, V]`` per clinical variable (token or column
  attributions in ``meta``).
* :class:`ModalityAttribution`: ``values`` ``[B, M]`` Shapley values per modality; cohort means.

Patients that lack the explained modality have NaN rows (``meta["skipped"]`` says why).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["Attribution", "CTAttribution", "ClinicalAttribution", "ECGAttribution", "ModalityAttribution"]


@dataclass
class Attribution:
    """What an explanation produced.

    Attributes
    ----------
    modality : ``"ecg"``, ``"ct"``, ``"clinical"`` or ``"modalities"``.
    method : canonical method name (``integrated_gradients``, ``gradcam``, ...).
    target : explained target (``"mace_30d"``, ``"stenosis_lad"``, ...).
    output : ``"logit"`` or ``"probability"``.
    values : float array, first axis the patients (see the subclass for the other axes).
    patient_ids : one per row of ``values``.
    inputs : what was explained (the encoder inputs ``[B, ...]``, or the clinical texts / rows).
    feature_names : names along the feature axis (leads, variables, modalities).
    meta : method details; ``meta["patients"]`` holds one dict per patient (e.g. IG's ``delta``).
    """

    modality: str
    method: str
    target: str
    output: str
    values: np.ndarray
    patient_ids: list[str]
    inputs: Any = None
    feature_names: list[str] | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def to_numpy(self) -> np.ndarray:
        """Return the attribution values (the array itself, not a copy)."""
        return self.values

    def __len__(self) -> int:
        return len(self.patient_ids)

    def index(self, patient: int | str) -> int:
        """Return the row of ``patient`` (a position or a patient id).

        Raises
        ------
        IndexError
            If a position is out of range.
        KeyError
            If a patient id is not in :attr:`patient_ids`.
        """
        if isinstance(patient, (int, np.integer)):
            if not -len(self) <= patient < len(self):
                raise IndexError(f"patient {patient} out of range for {len(self)} patients")
            return int(patient) % len(self)
        if str(patient) not in self.patient_ids:
            raise KeyError(f"patient {patient!r} is not in this attribution (patients: {self.patient_ids[:10]})")
        return self.patient_ids.index(str(patient))

    def save(self, path: str | os.PathLike) -> Path:
        """Write ``values``, ``patient_ids``, ``feature_names`` to a compressed ``.npz``; return its path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, values=self.values, patient_ids=np.asarray(self.patient_ids),
                            feature_names=np.asarray(self.feature_names or []), modality=self.modality,
                            method=self.method, target=self.target, output=self.output)
        return path

    def plot(self, patient: int | str = 0, **kwargs: Any):  # pragma: no cover - overridden
        """Draw one patient's attribution (each subclass implements it; the base class raises)."""
        raise NotImplementedError


def _title(a: Attribution, i: int) -> str:
    return f"{a.patient_ids[i]}: {a.target}, {a.method.replace('_', ' ')}"


@dataclass
class ECGAttribution(Attribution):
    """ECG attribution ``values`` ``[B, leads, T]`` aligned with ``inputs`` (the encoder input).

    Extra attributes: ``fs`` (Hz), ``representation`` (``"raw"`` or ``"median_beat"``),
    ``beat_window_s`` (seconds before / after R of a median beat), ``units`` of the input.
    """

    fs: float = 500.0
    representation: str = "raw"
    beat_window_s: tuple[float, float] = (0.25, 0.45)
    units: str = "mV"

    @property
    def leads(self) -> list[str]:
        """Lead names, one per row of a patient's ``[leads, T]`` map."""
        return list(self.feature_names or [])

    def per_lead(self, absolute: bool = True) -> np.ndarray:
        """Return ``[B, leads]``: each lead's attribution summed over time (magnitudes when ``absolute``)."""
        v = np.abs(self.values) if absolute else self.values
        return v.sum(axis=2)

    def per_time(self, absolute: bool = True) -> np.ndarray:
        """Return ``[B, T]``: each sample's attribution summed over leads (magnitudes when ``absolute``)."""
        v = np.abs(self.values) if absolute else self.values
        return v.sum(axis=1)

    def to_median_beat(self, patient: int | str = 0, *, peaks: np.ndarray | None = None):
        """Move one patient's map into median-beat space.

        Raw records are aligned on neurokit2's lead II R peaks (or ``peaks``, sample indices of the
        record); a median-beat input already is.

        Returns
        -------
        riskfm.explain.beat_space.BeatSpaceAttribution
            Median beat and mean attribution, each ``[leads, W]``, with ``time_s`` ``[W]`` in seconds
            from R.
        """
        from riskfm.explain.beat_space import BeatSpaceAttribution, to_median_beat

        i = self.index(patient)
        x, a = np.asarray(self.inputs[i], dtype=np.float64), self.values[i]
        if self.representation == "median_beat":
            before = int(round(self.beat_window_s[0] * self.fs))
            return BeatSpaceAttribution(beat=x, attribution=a, time_s=(np.arange(x.shape[1]) - before) / self.fs,
                                        peaks=np.zeros(0, int), n_beats=1, leads=tuple(self.leads), fs=self.fs)
        return to_median_beat(x, a, self.fs, self.leads, window_s=self.beat_window_s, peaks=peaks)

    def plot(self, patient: int | str = 0, *, signal: np.ndarray | None = None, kind: str | None = None,
             **kwargs: Any):
        """Draw one patient's attribution over the ECG.

        ``kind="paper"`` (the default for raw inputs) draws the 12-lead paper figure with the
        attribution overlaid; ``kind="median_beat"`` (the default for median-beat inputs) the
        median-beat figure. ``signal`` ``[leads, T]`` replaces the drawn trace (e.g. the record in mV
        when the model read z-scores); the attribution must be aligned with it.
        """
        i = self.index(patient)
        kind = kind or ("median_beat" if self.representation == "median_beat" else "paper")
        title = kwargs.pop("title", _title(self, i))
        if kind == "median_beat":
            from riskfm.plots.median_beats import plot_median_beat_attribution

            beat = self.to_median_beat(i)
            return plot_median_beat_attribution(beat.beat, beat.attribution, beat.time_s, self.leads, title=title,
                                                units=self.units, n_beats=beat.n_beats, **kwargs)
        if kind != "paper":
            raise ValueError(f"kind must be 'paper' or 'median_beat', got {kind!r}")
        if self.representation == "median_beat" and signal is None:
            raise ValueError("a median-beat attribution is drawn on the 12-lead paper layout only with the record: "
                             "pass signal=[leads, T] and a pasted map (riskfm.explain.beat_space.paste_beats)")
        from riskfm.plots.ecg_paper import plot_ecg_paper

        x = np.asarray(self.inputs[i]) if signal is None else np.asarray(signal)
        return plot_ecg_paper(x, self.fs, self.leads, attribution=self.values[i], title=title,
                              units=self.units if signal is None else kwargs.pop("units", "mV"), **kwargs)


@dataclass
class CTAttribution(Attribution):
    """CT attribution ``values`` ``[B, C, Z, Y, X]`` aligned with ``inputs`` (the windowed volumes).

    Extra attributes: ``spacing`` (z, y, x) mm and ``windows`` (level, width) HU of the channels.
    """

    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)
    windows: tuple[tuple[float, float], ...] = ()

    def voxel_map(self, patient: int | str = 0) -> np.ndarray:
        """Return ``[Z, Y, X]``: the attribution per voxel (channels summed; Grad-CAM's shared map as is)."""
        v = self.values[self.index(patient)]
        return v[0] if self.meta.get("shared_over_channels") else v.sum(axis=0)

    def peak(self, patient: int | str = 0) -> tuple[int, int, int]:
        """Return the (z, y, x) voxel index of the largest attribution."""
        m = self.voxel_map(patient)
        return tuple(int(i) for i in np.unravel_index(int(np.nanargmax(m)), m.shape))  # type: ignore[return-value]

    def background(self, patient: int | str = 0, window: tuple[float, float] | None = None) -> tuple[np.ndarray, str]:
        """Return a display image ``[Z, Y, X]`` in [0, 1] and its label.

        The image is the input channel whose (level, width) HU window is closest to ``window``
        (default the angiographic window (350, 700)); the label reads ``"W<width>/L<level>"``.
        """
        x = np.asarray(self.inputs[self.index(patient)])
        if not self.windows:
            return x[0], "channel 0"
        want = np.asarray(window if window is not None else (350.0, 700.0))
        j = int(np.argmin([np.abs(np.asarray(w) - want).sum() for w in self.windows]))
        level, width = self.windows[j]
        return x[j], f"W{width:g}/L{level:g}"

    def plot(self, patient: int | str = 0, *, hu: np.ndarray | None = None, window: tuple[float, float] | None = None,
             **kwargs: Any):
        """Draw axial, coronal and sagittal slices through the peak and a MIP, the map over the CT.

        ``hu`` ``[Z, Y, X]`` (on the encoder grid) draws the CT in HU with ``window`` (level, width);
        otherwise the input channel closest to ``window`` is shown.
        """
        from riskfm.plots.ct_slices import plot_ct_attribution

        i = self.index(patient)
        if hu is not None:
            level, width = window if window is not None else (350.0, 700.0)
            image = np.clip((np.asarray(hu, dtype=np.float64) - (level - width / 2)) / width, 0, 1)
            label = f"W{width:g}/L{level:g}"
        else:
            image, label = self.background(i, window)
        title = kwargs.pop("title", _title(self, i))
        return plot_ct_attribution(image, self.voxel_map(i), self.spacing, title=title, window_label=label, **kwargs)


@dataclass
class ClinicalAttribution(Attribution):
    """Per-variable attribution ``values`` ``[B, V]`` (NaN where a patient's record lacks the variable)."""

    def to_frame(self) -> pd.DataFrame:
        """Return a long table: patient_id, variable, attribution (finite values only)."""
        rows = [(pid, name, float(v)) for pid, row in zip(self.patient_ids, self.values)
                for name, v in zip(self.feature_names or [], row) if np.isfinite(v)]
        return pd.DataFrame(rows, columns=["patient_id", "variable", "attribution"])

    def plot(self, patient: int | str = 0, *, include_text_rows: bool = True, **kwargs: Any):
        """Draw horizontal bars of the variables' attributions, largest magnitude first."""
        from riskfm.explain.clinical import PROMPT_ROW, SPECIAL_ROW
        from riskfm.plots.attribution_bars import plot_variable_attributions

        i = self.index(patient)
        names, vals = [], []
        for name, v in zip(self.feature_names or [], self.values[i]):
            text_row = name in (PROMPT_ROW, SPECIAL_ROW)
            # Special tokens are kept in the IG baseline, so their row is exactly 0: not worth a bar.
            if np.isfinite(v) and (not text_row or (include_text_rows and v != 0.0)):
                names.append(name)
                vals.append(float(v))
        title = kwargs.pop("title", _title(self, i))
        return plot_variable_attributions(names, vals, title=title, xlabel=f"attribution ({self.output})", **kwargs)


@dataclass
class ModalityAttribution(Attribution):
    """Shapley values ``[B, M]`` per modality; ``meta`` has ``f_all`` and ``f_none`` ``[B]``."""

    def cohort_mean(self, confidence: float = 0.95) -> pd.DataFrame:
        """Return per modality: mean Shapley value with a t-interval, mean |value|, patients with it."""
        rows = []
        available = np.asarray(self.meta.get("available", np.ones_like(self.values, dtype=bool)))
        for j, m in enumerate(self.feature_names or []):
            v = self.values[available[:, j], j]
            n = len(v)
            mean = float(v.mean()) if n else float("nan")
            half = float("nan")
            if n > 1:
                half = float(stats.t.ppf(0.5 + confidence / 2, n - 1) * v.std(ddof=1) / np.sqrt(n))
            rows.append({"modality": m, "mean": mean, "ci_low": mean - half, "ci_high": mean + half,
                         "mean_abs": float(np.abs(v).mean()) if n else float("nan"), "n": n})
        return pd.DataFrame(rows)

    def to_frame(self) -> pd.DataFrame:
        """Return a wide table: patient_id, one column per modality, f_all, f_none."""
        df = pd.DataFrame(self.values, columns=self.feature_names)
        df.insert(0, "patient_id", self.patient_ids)
        df["f_all"] = self.meta.get("f_all")
        df["f_none"] = self.meta.get("f_none")
        return df

    def plot(self, patient: int | str | None = 0, **kwargs: Any):
        """Draw one patient's contributions (``patient``) or the cohort means (``patient=None``)."""
        from riskfm.plots.attribution_bars import plot_modality_cohort, plot_modality_contributions

        if patient is None:
            return plot_modality_cohort(self.cohort_mean(), output=self.output, target=self.target, **kwargs)
        i = self.index(patient)
        return plot_modality_contributions(list(self.feature_names or []), self.values[i],
                                           f_all=float(self.meta["f_all"][i]), f_none=float(self.meta["f_none"][i]),
                                           title=kwargs.pop("title", f"{self.patient_ids[i]}: modalities, "
                                                                     f"{self.target}"),
                                           output=self.output, **kwargs)
