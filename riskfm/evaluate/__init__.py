"""Clinical evaluation on plain arrays and DataFrames (never models, never torch).

- ``discrimination``: AUROC and AUPRC with stratified-bootstrap or DeLong intervals; the DeLong
  and paired bootstrap comparisons of two models.
- ``roc``: ROC curves with a pointwise bootstrap band, ready to draw.
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
- ``subgroups``: any metric per subgroup with CIs; covariates to subgroup attributes.
- ``heterogeneity``: Cochran's Q (and I^2) of subgroup AUROCs with DeLong variances.
- ``fairness``: gaps of a metric between subgroups with bootstrap intervals over patients.
- ``agreement``: Bland-Altman, Cohen's kappa, Kolmogorov-Smirnov, accuracy at score cut-offs.
- ``segmentation``: Dice, clDice, surface distance, lesion detection (one empty-mask rule).
- ``guards``: the small-sample rule (``estimable``): fewer than 10 events or 10 non-events and an
  AUROC, AUPRC or C-index is "not estimable" in every table, figure and file.
- ``pipeline``: ``evaluate(predictions, out_dir)``: metrics.json, CSV tables, figures, report.html.
- ``_checks``: the input checks every module uses; ``results``: the result shape below.

Results and intervals (``riskfm.evaluate.results``)
---------------------------------------------------
Every statistic returns an object with ``value``, ``ci`` (a ``(low, high)`` tuple of floats, or
None when no interval was computed), ``method`` (how the interval was obtained, e.g.
``"stratified bootstrap (500 resamples)"``, ``"DeLong"``, ``"Wilson"``, ``"asymptotic"``), ``n``
(patients, pairs or exams used) and ``to_dict()``; those with a figure have ``plot(path=None,
**kwargs)``. Results made of several estimates (calibration, operating points, survival) hold
each as an :class:`Estimate`. An interval has one spelling per medium:

- objects: ``ci = (low, high)``;
- JSON (``to_dict()``, ``metrics.json``): ``"ci": [low, high]``, null when there is none;
- flat tables (DataFrames, CSV): columns ``ci_low``, ``ci_high`` (``<statistic>_ci_low``,
  ``<statistic>_ci_high`` when a row holds several intervals).

Per-case segmentation scores (``dice``, ``cl_dice``, ...) are plain floats.

Examples
--------
>>> from riskfm.evaluate import roc_auc
>>> est = roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], ci=None)
>>> round(est.value, 2)
0.75
"""

from riskfm.evaluate.agreement import (
    BlandAltman,
    Kappa,
    KSResult,
    bland_altman,
    cohen_kappa,
    diagnostic_at_cutoffs,
    ks_test,
)
from riskfm.evaluate.calibration import CalibrationResult, Recalibrator, calibration, fit_recalibration
from riskfm.evaluate.decision_curve import DecisionCurve, decision_curve
from riskfm.evaluate.discrimination import (
    PairedComparison,
    average_precision,
    delong_test,
    paired_bootstrap_test,
    roc_auc,
)
from riskfm.evaluate.fairness import FairnessGaps, fairness_gaps
from riskfm.evaluate.guards import estimable
from riskfm.evaluate.heterogeneity import Heterogeneity, cochran_q, subgroup_heterogeneity
from riskfm.evaluate.horizons import censor_at
from riskfm.evaluate.pipeline import evaluate
from riskfm.evaluate.results import Estimate
from riskfm.evaluate.risk_groups import (
    CumulativeIncidence,
    assign_risk_groups,
    cumulative_incidence_by_group,
    incidence_threshold,
    reliability_table,
    wilson_interval,
)
from riskfm.evaluate.roc import RocCurve, RocCurves, roc_curve, roc_curves
from riskfm.evaluate.run_metrics import (
    PredictionsError,
    auroc_table,
    metrics_from_predictions,
    read_metrics,
    read_predictions,
    validate_predictions,
    write_metrics,
)
from riskfm.evaluate.segmentation import (
    LesionScores,
    cl_dice,
    dice,
    dice_scores,
    lesion_detection,
    mean_surface_distance,
)
from riskfm.evaluate.spec import EvaluationSpec
from riskfm.evaluate.subgroups import subgroup_attributes, subgroup_metrics
from riskfm.evaluate.survival import (
    CoxOnScore,
    SurvivalMetrics,
    aalen_johansen_by_group,
    group_contrasts,
    survival_metrics,
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
    "BlandAltman",
    "CalibrationResult",
    "CoxOnScore",
    "CumulativeIncidence",
    "DecisionCurve",
    "Estimate",
    "EvaluationSpec",
    "FairnessGaps",
    "Heterogeneity",
    "KSResult",
    "Kappa",
    "LesionScores",
    "PairedComparison",
    "PredictionsError",
    "Recalibrator",
    "RocCurve",
    "RocCurves",
    "SurvivalMetrics",
    "ThresholdMetrics",
    "aalen_johansen_by_group",
    "assign_risk_groups",
    "auroc_table",
    "average_precision",
    "bland_altman",
    "calibration",
    "censor_at",
    "cl_dice",
    "cochran_q",
    "cohen_kappa",
    "cumulative_incidence_by_group",
    "decision_curve",
    "delong_test",
    "diagnostic_at_cutoffs",
    "dice",
    "dice_scores",
    "estimable",
    "evaluate",
    "fairness_gaps",
    "fit_recalibration",
    "group_contrasts",
    "incidence_threshold",
    "ks_test",
    "lesion_detection",
    "mean_surface_distance",
    "metrics_from_predictions",
    "paired_bootstrap_test",
    "read_metrics",
    "read_predictions",
    "reliability_table",
    "roc_auc",
    "roc_curve",
    "roc_curves",
    "subgroup_attributes",
    "subgroup_heterogeneity",
    "subgroup_metrics",
    "survival_metrics",
    "three_level_thresholds",
    "threshold_at_sensitivity",
    "threshold_at_specificity",
    "threshold_metrics",
    "validate_predictions",
    "wilson_interval",
    "write_metrics",
    "youden_threshold",
]
