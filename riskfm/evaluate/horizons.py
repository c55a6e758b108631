"""Follow-up horizons: a target's horizon from its name, and administrative censoring at it.

Kept apart from :mod:`riskfm.evaluate.survival` because both the cumulative-incidence curves
(:mod:`riskfm.evaluate.risk_groups`) and the survival metrics need it, and survival builds on risk groups.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

__all__ = ["censor_at", "target_horizon_days"]


def censor_at(time_days: Any, event: Any, horizon_days: float | None) -> tuple[np.ndarray, np.ndarray]:
    """Administrative censoring at a horizon: follow-up cut at ``horizon_days``, later events censored.

    Returns ``(min(t, horizon), event and t <= horizon)`` as float arrays [n]; unchanged (as float
    arrays) when ``horizon_days`` is None. A 30-day outcome is judged on events by day 30.
    """
    t = np.asarray(time_days, dtype=float)
    e = np.asarray(event, dtype=float)
    if horizon_days is None:
        return t, e
    h = float(horizon_days)
    if not h > 0:
        raise ValueError(f"horizon_days must be > 0, got {horizon_days!r}")
    return np.minimum(t, h), np.where(t <= h, e, 0.0)


def target_horizon_days(target: str, overrides: dict[str, float] | None = None) -> float | None:
    """Horizon (days) of a target with a fixed horizon: ``overrides[target]``, else from its name.

    ``mace_30d`` -> 30, ``death_1y`` -> 365, ``event_12m`` -> 365 (months as 365/12 days, rounded),
    ``_6w`` -> 42; None for names without one (a time-to-event target such as ``risk_score``).
    """
    if overrides and target in overrides:
        return float(overrides[target])
    m = re.search(r"(?:^|_)(\d+)\s*(d|day|days|w|wk|week|weeks|m|mo|month|months|y|yr|year|years)$", str(target))
    if not m:
        return None
    k, unit = int(m.group(1)), m.group(2)[0]
    return float(k * {"d": 1, "w": 7, "y": 365}.get(unit, 0) or round(k * 365 / 12))
