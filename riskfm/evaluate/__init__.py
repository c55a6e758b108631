"""Clinical evaluation on plain arrays and DataFrames (never models, never torch).

- ``discrimination``: AUROC with stratified-bootstrap or DeLong intervals, the DeLong test for
  two correlated AUROCs, ROC curve points.
- ``risk_groups``: incidence thresholds and risk groups, reliability bins with Wilson intervals,
  Kaplan-Meier cumulative incidence per group with the log-rank test.
- ``run_metrics``: ``predictions.csv`` in, ``metrics.json`` out, and a printable AUROC table.
- ``thresholds``: sensitivity / specificity / PPV / NPV / F1 at a threshold; Youden, fixed
  sensitivity or specificity thresholds; three risk levels.
- ``calibration``: intercept, slope, ECE, Brier, Spiegelhalter's z; Platt / temperature / isotonic
  recalibration.
- ``survival``: Harrell's and Uno's C, time-dependent AUROC, integrated Brier score, hazard ratios
  and log-rank tests between risk groups, Aalen-Johansen incidence.
- ``decision_curve``: net benefit against treat-all and treat-none.
- ``subgroups``: any metric per subgroup with CIs, fairness gaps; covariates to subgroup attributes.
- ``guards``: the small-sample rule (``estimable``): fewer than 10 events or 10 non-events and an
  AUROC, AUPRC or C-index is "not estimable" in every table, figure and file.
- ``pipeline``: ``evaluate(predictions, out_dir)``: metrics.json, CSV tables, figures, report.html.

Examples
--------
>>> from riskfm.evaluate import roc_auc
>>> est = roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], ci=None)
>>> round(est.value, 2)
0.75
"""

from riskfm.evaluate.calibration import (
    CalibrationResult,
    Recalibrator,
    brier_score,
    calibration,
    expected_calibration_error,
    fit_recalibration,
    spiegelhalter_z,
)
from riskfm.evaluate.decision_curve import DecisionCurve, decision_curve
from riskfm.evaluate.discrimination import (
    Estimate,
    PairedComparison,
    average_precision,
    bootstrap_aurocs,
    check_binary_scores,
    delong_covariance,
    delong_test,
    delong_variance,
    paired_bootstrap_test,
    roc_auc,
    roc_curve_points,
)
from riskfm.evaluate.guards import estimable, not_estimable_text
from riskfm.evaluate.pipeline import evaluate, read_covariates
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
from riskfm.evaluate.spec import EvaluationSpec
from riskfm.evaluate.subgroups import (
    METRICS,
    bin_numeric,
    fairness_gaps,
    metric_estimate,
    quantile_edges,
    subgroup_attributes,
    subgroup_metrics,
)
from riskfm.evaluate.survival import (
    CoxOnScore,
    SurvivalMetrics,
    aalen_johansen_by_group,
    censor_at,
    group_contrasts,
    harrell_c,
    survival_metrics,
    target_horizon_days,
)
from riskfm.evaluate.thresholds import (
    ThresholdMetrics,
    three_level_thresholds,
    threshold_at_sensitivity,
    threshold_at_specificity,
    threshold_metrics,
    youden_threshold,
)

__all__ = [
    "METRICS",
    "OPTIONAL_COLUMNS",
    "REQUIRED_COLUMNS",
    "TARGETS",
    "CalibrationResult",
    "CoxOnScore",
    "CumulativeIncidence",
    "DecisionCurve",
    "Estimate",
    "EvaluationSpec",
    "PairedComparison",
    "PredictionsError",
    "Recalibrator",
    "SurvivalMetrics",
    "ThresholdMetrics",
    "aalen_johansen_by_group",
    "assign_risk_groups",
    "auroc_table",
    "average_precision",
    "bin_numeric",
    "bootstrap_aurocs",
    "brier_score",
    "calibration",
    "censor_at",
    "check_binary_scores",
    "cumulative_incidence_by_group",
    "decision_curve",
    "delong_covariance",
    "delong_test",
    "delong_variance",
    "estimable",
    "evaluate",
    "expected_calibration_error",
    "fairness_gaps",
    "fit_recalibration",
    "group_contrasts",
    "harrell_c",
    "incidence_threshold",
    "metric_estimate",
    "metrics_from_predictions",
    "not_estimable_text",
    "order_groups",
    "ordered_splits",
    "ordered_targets",
    "paired_bootstrap_test",
    "quantile_edges",
    "read_covariates",
    "read_metrics",
    "read_predictions",
    "reliability_table",
    "risk_bin_edges",
    "roc_auc",
    "roc_curve_points",
    "spiegelhalter_z",
    "subgroup_attributes",
    "subgroup_metrics",
    "survival_metrics",
    "target_horizon_days",
    "three_level_thresholds",
    "threshold_at_sensitivity",
    "threshold_at_specificity",
    "threshold_metrics",
    "validate_predictions",
    "wilson_interval",
    "write_metrics",
    "youden_threshold",
]
