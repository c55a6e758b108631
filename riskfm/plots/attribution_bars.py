"""Bar charts of attributions: clinical variables of one patient, modality contributions per patient and cohort.

Colours say the direction: vermillion raises the explained output (risk), blue lowers it; rows that
are not clinical variables (the prompt, special tokens of a language model) are grey.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from riskfm.plots.style import NEUTRAL, OKABE_ITO, SINGLE_COLUMN_IN, new_figure, publication_style

__all__ = ["plot_modality_cohort", "plot_modality_contributions", "plot_variable_attributions"]

_UP, _DOWN = OKABE_ITO["vermillion"], OKABE_ITO["blue"]
MODALITY_LABELS = {"ecg": "ECG", "ct": "CT", "clinical": "Clinical"}


def _colour(name: str, value: float) -> str:
    if name.startswith("["):
        return NEUTRAL
    return _UP if value >= 0 else _DOWN


def plot_variable_attributions(names: Sequence[str], values: Sequence[float], *, title: str | None = None,
                               xlabel: str = "attribution", max_rows: int = 20,
                               width_in: float = SINGLE_COLUMN_IN) -> Figure:
    """Horizontal bars, largest magnitude at the top (at most ``max_rows``).

    Parameters
    ----------
    names, values : variable names and their attributions (same length).
    """
    names, values = list(names), np.asarray(values, dtype=float)
    if len(names) != len(values):
        raise ValueError(f"{len(names)} names but {len(values)} values")
    if not len(names):
        raise ValueError("no variables to plot")
    order = np.argsort(-np.abs(values), kind="stable")[:max_rows]
    order = order[::-1]  # barh draws bottom-up
    with publication_style():
        fig = new_figure(width_in, 0.22 * len(order) + 0.9)
        ax = fig.add_subplot()
        y = np.arange(len(order))
        ax.barh(y, values[order], color=[_colour(names[k], values[k]) for k in order], height=0.7)
        ax.set_yticks(y, [names[k] for k in order])
        ax.axvline(0, color="black", lw=0.5)
        ax.set_xlabel(xlabel)
        if title:  # a figure title, left-aligned: long titles would overflow an axes title
            fig.suptitle(title, fontsize=9, x=0.01, ha="left")
    return fig


def plot_modality_contributions(modalities: Sequence[str], values: Sequence[float], *, f_all: float, f_none: float,
                                output: str = "logit", title: str | None = None,
                                width_in: float = SINGLE_COLUMN_IN, height_in: float = 1.9) -> Figure:
    """One patient's Shapley value per modality; the caption gives f(none) + sum = f(all)."""
    values = np.asarray(values, dtype=float)
    labels = [MODALITY_LABELS.get(m, m) for m in modalities]
    with publication_style():
        fig = new_figure(width_in, height_in)
        ax = fig.add_subplot()
        y = np.arange(len(labels))[::-1]
        ax.barh(y, values, color=[_UP if v >= 0 else _DOWN for v in values], height=0.6)
        for yy, v in zip(y, values):
            ax.text(v, yy, f" {v:+.3f} ", va="center", ha="left" if v >= 0 else "right", fontsize=7)
        ax.set_yticks(y, labels)
        ax.axvline(0, color="black", lw=0.5)
        span = float(np.abs(values).max()) or 1.0
        ax.set_xlim(-1.35 * span if (values < 0).any() else -0.1 * span, 1.35 * span)
        ax.set_xlabel(f"Shapley value ({output})\nall missing {f_none:+.3f}, + contributions = {f_all:+.3f}")
        if title:
            fig.suptitle(title, fontsize=9, x=0.01, ha="left")
    return fig


def plot_modality_cohort(frame: pd.DataFrame, *, output: str = "logit", target: str = "",
                         title: str | None = None, width_in: float = SINGLE_COLUMN_IN,
                         height_in: float = 2.0) -> Figure:
    """Cohort mean Shapley value per modality with its confidence interval, and the mean magnitude (dots).

    ``frame`` is :meth:`riskfm.explain.ModalityAttribution.cohort_mean` (modality, mean, ci_low,
    ci_high, mean_abs, n).
    """
    need = {"modality", "mean", "ci_low", "ci_high", "mean_abs", "n"}
    if not need <= set(frame.columns):
        raise ValueError(f"frame needs columns {sorted(need)}, has {list(frame.columns)}")
    labels = [f"{MODALITY_LABELS.get(m, m)} (n={n})" for m, n in zip(frame["modality"], frame["n"])]
    mean = frame["mean"].to_numpy(float)
    err = np.vstack([mean - frame["ci_low"].to_numpy(float), frame["ci_high"].to_numpy(float) - mean])
    with publication_style():
        fig = new_figure(width_in, height_in)
        ax = fig.add_subplot()
        y = np.arange(len(labels))[::-1]
        ax.barh(y, mean, xerr=np.nan_to_num(err), color=[_UP if v >= 0 else _DOWN for v in mean], height=0.55,
                error_kw={"elinewidth": 0.7, "ecolor": "black"}, label="mean (95% CI)")
        ax.scatter(frame["mean_abs"], y, marker="D", s=10, color="black", zorder=3, label="mean |value|")
        ax.set_yticks(y, labels)
        ax.axvline(0, color="black", lw=0.5)
        ax.set_xlabel(f"Shapley value ({output})")
        ax.legend(loc="best", fontsize=6.5)
        fig.suptitle(title or f"Modality contributions{' to ' + target if target else ''}", fontsize=9, x=0.01,
                     ha="left")
    return fig
