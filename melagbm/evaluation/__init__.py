"""Stage 4, evaluation: metrics for a rare positive class, grouped cross-validation, paired comparison.

Plots are in ``melagbm.evaluation.plots``, the report folder in ``melagbm.evaluation.report``.
"""

from .comparison import COMPARED_METRICS, compare_scores
from .metrics import (
    METRIC_LABELS,
    CVResult,
    cross_validate,
    metrics_table,
    partial_auc,
    roc_auc,
    sensitivity_at_specificity,
    specificity_at_sensitivity,
    summarize,
    threshold_for_sensitivity,
    top_k_sensitivity,
)

__all__ = ["COMPARED_METRICS", "METRIC_LABELS", "CVResult", "compare_scores", "cross_validate", "metrics_table",
           "partial_auc", "roc_auc", "sensitivity_at_specificity", "specificity_at_sensitivity", "summarize",
           "threshold_for_sensitivity", "top_k_sensitivity"]
