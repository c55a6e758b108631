"""What ``riskfm.evaluate.evaluate`` computes: one small, validated evaluation spec.

A spec is a dataclass, a dict or a YAML file with these keys (all optional)::

    ci: bootstrap            # AUROC interval: bootstrap | delong
    n_boot: 500              # bootstrap resamples (AUROC, AUPRC, subgroups)
    seed: 0
    confidence: 0.95
    calibration_bins: 10
    calibration_strategy: quantile    # quantile (equal-count) | uniform (equal-width) bins
    calibration_min_bin_size: 20      # fewer bins when a split is small: at least this many per bin
    threshold: incidence     # incidence | youden | sensitivity | specificity
    sensitivity: 0.9         # target of the "sensitivity" threshold and of the low-risk cut-off
    specificity: 0.9         # target of the "specificity" threshold and of the high-risk cut-off
    recalibration: [platt, temperature, isotonic]   # fitted on val_split, applied to the others
    survival_targets: [mace_30d, risk_score]        # targets with follow-up for time-to-event
    decision_thresholds: [0.01, 0.5, 0.01]          # start, stop (inclusive), step
    subgroups: null          # covariate columns for subgroup analyses (null: all but reserved ones)
    subgroup_bins: {age: [50, 65]}                  # cut points of numeric attributes
    subgroup_quantiles: 4    # other numeric attributes with more than 6 values: quantile bins
    max_subgroup_levels: 12  # a categorical attribute with more levels is refused
    subgroup_metric: auroc
    min_events: 10           # an AUROC / AUPRC / C-index needs at least this many events ...
    min_nonevents: 10        # ... and this many non-events, else it is "not estimable"
    horizon_days: {}         # target -> horizon (days) of its cumulative incidence; default from
                             # the name (mace_30d: 30), none for time-to-event targets
    primary_target: null     # target of the forest figures (null: mace_30d, else the first)
    figures: true
    report: true
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from riskfm.evaluate.guards import DEFAULT_MIN_EVENTS, DEFAULT_MIN_NONEVENTS

THRESHOLD_METHODS = ("incidence", "youden", "sensitivity", "specificity")


@dataclass
class EvaluationSpec:
    """Settings of ``riskfm.evaluate.evaluate`` (see the module docstring for each key)."""

    ci: str = "bootstrap"
    n_boot: int = 500
    seed: int = 0
    confidence: float = 0.95
    calibration_bins: int = 10
    calibration_strategy: str = "quantile"
    calibration_min_bin_size: int = 20
    threshold: str = "incidence"
    sensitivity: float = 0.9
    specificity: float = 0.9
    recalibration: list[str] = field(default_factory=lambda: ["platt", "temperature", "isotonic"])
    survival_targets: list[str] = field(default_factory=lambda: ["mace_30d", "risk_score"])
    decision_thresholds: list[float] = field(default_factory=lambda: [0.01, 0.5, 0.01])
    subgroups: list[str] | None = None
    subgroup_bins: dict[str, list[float]] = field(default_factory=dict)
    subgroup_quantiles: int = 4
    max_subgroup_levels: int = 12
    subgroup_metric: str = "auroc"
    min_events: int = DEFAULT_MIN_EVENTS
    min_nonevents: int = DEFAULT_MIN_NONEVENTS
    horizon_days: dict[str, float] = field(default_factory=dict)
    primary_target: str | None = None
    figures: bool = True
    report: bool = True

    def __post_init__(self) -> None:
        from riskfm.evaluate.calibration import RECALIBRATION_METHODS
        from riskfm.evaluate.discrimination import CI_METHODS
        from riskfm.evaluate.subgroups import METRICS

        def bad(key: str, msg: str) -> ValueError:
            return ValueError(f"evaluation spec: {key}: {msg}")

        if self.ci not in CI_METHODS:
            raise bad("ci", f"must be one of {CI_METHODS}, got {self.ci!r}")
        if int(self.n_boot) != self.n_boot or self.n_boot < 10:
            raise bad("n_boot", f"must be an integer >= 10, got {self.n_boot!r}")
        if not 0 < self.confidence < 1:
            raise bad("confidence", f"must be in (0, 1), got {self.confidence}")
        if self.calibration_strategy not in ("uniform", "quantile"):
            raise bad("calibration_strategy", f"must be uniform or quantile, got {self.calibration_strategy!r}")
        if self.threshold not in THRESHOLD_METHODS:
            raise bad("threshold", f"must be one of {THRESHOLD_METHODS}, got {self.threshold!r}")
        for key in ("sensitivity", "specificity"):
            if not 0 < getattr(self, key) <= 1:
                raise bad(key, f"must be in (0, 1], got {getattr(self, key)}")
        unknown = [m for m in self.recalibration if m not in RECALIBRATION_METHODS]
        if unknown:
            raise bad("recalibration", f"unknown method(s) {unknown}; choose from {RECALIBRATION_METHODS}")
        if len(self.decision_thresholds) != 3 or not 0 < self.decision_thresholds[0] < self.decision_thresholds[1] < 1:
            raise bad("decision_thresholds", f"must be [start, stop, step] with 0 < start < stop < 1, "
                      f"got {self.decision_thresholds}")
        if not self.decision_thresholds[2] > 0:
            raise bad("decision_thresholds", f"step must be > 0, got {self.decision_thresholds[2]!r}")
        for key, low in (("calibration_min_bin_size", 1), ("subgroup_quantiles", 2), ("max_subgroup_levels", 2),
                         ("min_events", 1), ("min_nonevents", 1)):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value or value < low:
                raise bad(key, f"must be an integer >= {low}, got {value!r}")
            setattr(self, key, int(value))
        if self.subgroup_quantiles > self.max_subgroup_levels:
            raise bad("subgroup_quantiles", f"{self.subgroup_quantiles} bins exceed max_subgroup_levels "
                      f"({self.max_subgroup_levels})")
        for name, edges in (self.subgroup_bins or {}).items():
            if len(edges) + 1 > self.max_subgroup_levels:
                raise bad("subgroup_bins", f"{name}: {len(edges)} cut points give {len(edges) + 1} levels, more than "
                          f"max_subgroup_levels ({self.max_subgroup_levels})")
        if not isinstance(self.horizon_days, dict):
            raise bad("horizon_days", f"must map target -> days, got {self.horizon_days!r}")
        for name, days in self.horizon_days.items():
            if not isinstance(days, (int, float)) or isinstance(days, bool) or not days > 0:
                raise bad("horizon_days", f"{name}: must be a number of days > 0, got {days!r}")
        if self.subgroup_metric not in METRICS:
            raise bad("subgroup_metric", f"must be one of {sorted(METRICS)}, got {self.subgroup_metric!r}")

    @classmethod
    def from_any(cls, spec: EvaluationSpec | dict | str | os.PathLike | None) -> EvaluationSpec:
        """Build a spec from an instance, a dict, a YAML file path or None (defaults).

        Raises
        ------
        ValueError
            Unknown keys (named, with the file) or invalid values.
        """
        if spec is None:
            return cls()
        if isinstance(spec, cls):
            return spec
        source = "<dict>"
        if isinstance(spec, (str, os.PathLike)):
            import yaml

            path = Path(spec)
            if not path.is_file():
                raise FileNotFoundError(f"evaluation spec not found: {path}")
            source = str(path)
            spec = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(spec, dict):
            raise ValueError(f"evaluation spec {source}: expected a mapping, got {type(spec).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(spec) - known)
        if unknown:
            raise ValueError(f"evaluation spec {source}: unknown key(s) {unknown}; known keys: {sorted(known)}")
        try:
            return cls(**spec)
        except ValueError as exc:
            raise ValueError(f"{source}: {exc}") from exc

    def to_dict(self) -> dict[str, Any]:
        """Plain dictionary (written into metrics.json's companion files)."""
        return asdict(self)
