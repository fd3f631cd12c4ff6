"""Stage 4, evaluation: metrics for a rare positive class and grouped cross-validation.

Plots are in ``melagbm.evaluation.plots``, the report folder in ``melagbm.evaluation.report``.
"""

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

__all__ = ["METRIC_LABELS", "CVResult", "cross_validate", "metrics_table", "partial_auc", "roc_auc",
           "sensitivity_at_specificity", "specificity_at_sensitivity", "summarize", "threshold_for_sensitivity",
           "top_k_sensitivity"]
