"""The small-sample rule: when a discrimination statistic is reported as a number.

One rule, used by every table, figure and file of ``riskfm.evaluate`` (the run metrics, the
discrimination and validation tables, ROC legends, subgroup tables and forest plots, fairness
gaps, survival concordance):

    an AUROC, an AUPRC, their intervals, a DeLong comparison or a C-index is *estimable* only
    when the patients hold at least ``min_events`` events AND ``min_nonevents`` non-events
    (default 10 each; ``min_events`` / ``min_nonevents`` of the evaluation spec).

Below that the statistic is not estimable: tables show ``n/e (1 event < 10)`` with n and the
number of events, figures draw no point or interval, fairness gaps leave it out, and
``metrics.json`` records ``null`` for the value and interval with ``n``, ``n_pos`` and the
``not_estimable`` reason.

Why 10: an AUROC from one event is the rank of one patient among the others; its bootstrap
interval collapses to a point (every resample repeats that patient) or spans nonsense, and a
DeLong variance needs at least two of each class. Ten events and ten non-events is the common
floor below which no estimate or interval is meaningful; it is not enough for a precise
validation, for which Vergouwe et al. (J Clin Epidemiol 2005;58:475-483) and Collins et al.
(Stat Med 2016;35:214-226) recommend at least 100 events and 100 non-events. The counts are
always shown, so a reader can judge an estimate that passes the floor but is still imprecise.

>>> estimable([0] * 29 + [1])
'1 event < 10'
>>> estimable([0] * 40 + [1] * 12) is None
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

DEFAULT_MIN_EVENTS = 10
DEFAULT_MIN_NONEVENTS = 10
NOT_ESTIMABLE = "n/e"

__all__ = ["DEFAULT_MIN_EVENTS", "DEFAULT_MIN_NONEVENTS", "NOT_ESTIMABLE", "class_counts", "estimable",
           "min_counts", "not_estimable_text"]


def min_counts(spec: Any = None, *, min_events: int | None = None,
               min_nonevents: int | None = None) -> tuple[int, int]:
    """(min_events, min_nonevents) from explicit values, else a spec (object or mapping), else 10 and 10."""
    def pick(name: str, explicit: int | None, default: int) -> int:
        if explicit is not None:
            value = explicit
        elif isinstance(spec, Mapping):
            value = spec.get(name, default)
        else:
            value = getattr(spec, name, default) if spec is not None else default
        if int(value) != value or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        return int(value)

    return (pick("min_events", min_events, DEFAULT_MIN_EVENTS),
            pick("min_nonevents", min_nonevents, DEFAULT_MIN_NONEVENTS))


def class_counts(y: Any) -> tuple[int, int]:
    """(n, n_pos) of binary labels ``y`` [n] (0/1, bool or float; NaN = unknown, not counted)."""
    arr = np.asarray(y, dtype=float).ravel()
    arr = arr[~np.isnan(arr)]
    return int(arr.size), int((arr == 1).sum())


def _plural(k: int, word: str) -> str:
    return f"{k} {word}" + ("" if k == 1 else "s")


def estimable(y: Any, spec: Any = None, *, min_events: int | None = None,
              min_nonevents: int | None = None) -> str | None:
    """Why a discrimination statistic of labels ``y`` is not estimable, or None when it is.

    Parameters
    ----------
    y : array-like, shape [n]
        Binary outcomes (0/1 or bool; NaN = unknown and ignored). For a C-index pass the event
        indicator: censored patients count as non-events.
    spec : EvaluationSpec, mapping or None
        Source of ``min_events`` and ``min_nonevents`` (default 10 each).
    min_events, min_nonevents : int, optional
        Override the spec.

    Returns
    -------
    str or None
        None when there are at least ``min_events`` events and ``min_nonevents`` non-events;
        otherwise the reason with the counts, e.g. ``"1 event < 10"`` or
        ``"3 events < 10, 4 non-events < 10"``; ``"no patients with a known outcome"`` when empty.
    """
    lo_ev, lo_non = min_counts(spec, min_events=min_events, min_nonevents=min_nonevents)
    n, n_pos = class_counts(y)
    if n == 0:
        return "no patients with a known outcome"
    reasons = []
    if n_pos < lo_ev:
        reasons.append(f"{_plural(n_pos, 'event')} < {lo_ev}")
    if n - n_pos < lo_non:
        reasons.append(f"{_plural(n - n_pos, 'non-event')} < {lo_non}")
    return ", ".join(reasons) or None


def not_estimable_text(reason: str | None) -> str:
    """How tables show a statistic that is not estimable: ``"n/e (1 event < 10)"``."""
    return f"{NOT_ESTIMABLE} ({reason})" if reason else NOT_ESTIMABLE


def is_missing(x: Any) -> bool:
    """Tell whether ``x`` is None or NaN (how tables and JSON hold a value that is not reported).

    Values that cannot be converted to float (e.g. strings) are not missing.
    """
    if x is None:
        return True
    try:
        return math.isnan(float(x))
    except (TypeError, ValueError):
        return False
