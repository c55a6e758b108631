"""Clinical evaluation on plain arrays and DataFrames (never models, never torch).

- ``discrimination``: AUROC with stratified-bootstrap or DeLong intervals, the DeLong test for
  two correlated AUROCs, ROC curve points.
- ``risk_groups``: incidence thresholds and risk groups, reliability bins with Wilson intervals,
  Kaplan-Meier cumulative incidence per group with the log-rank test.
- ``run_metrics``: ``predictions.csv`` in, ``metrics.json`` out, and a printable AUROC table.

Examples
--------
>>> from riskfm.evaluate import roc_auc
>>> est = roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], ci=None)
>>> round(est.value, 2)
0.75
"""

from riskfm.evaluate.discrimination import (
    Estimate,
    bootstrap_aurocs,
    check_binary_scores,
    delong_covariance,
    delong_test,
    delong_variance,
    roc_auc,
    roc_curve_points,
)
from riskfm.evaluate.risk_groups import (
    CumulativeIncidence,
    assign_risk_groups,
    cumulative_incidence_by_group,
    incidence_threshold,
    order_groups,
    reliability_table,
    risk_bin_edges,
    wilson_interval,
)
from riskfm.evaluate.run_metrics import (
    OPTIONAL_COLUMNS,
    REQUIRED_COLUMNS,
    TARGETS,
    PredictionsError,
    auroc_table,
    metrics_from_predictions,
    ordered_splits,
    ordered_targets,
    read_metrics,
    read_predictions,
    validate_predictions,
    write_metrics,
)

__all__ = [
    "OPTIONAL_COLUMNS",
    "REQUIRED_COLUMNS",
    "TARGETS",
    "CumulativeIncidence",
    "Estimate",
    "PredictionsError",
    "assign_risk_groups",
    "auroc_table",
    "bootstrap_aurocs",
    "check_binary_scores",
    "cumulative_incidence_by_group",
    "delong_covariance",
    "delong_test",
    "delong_variance",
    "incidence_threshold",
    "metrics_from_predictions",
    "order_groups",
    "ordered_splits",
    "ordered_targets",
    "read_metrics",
    "read_predictions",
    "reliability_table",
    "risk_bin_edges",
    "roc_auc",
    "roc_curve_points",
    "validate_predictions",
    "wilson_interval",
    "write_metrics",
]
