"""Clinical metrics for a rare positive class: ROC AUC, partial AUC, sensitivity."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

__all__ = ["partial_auc", "roc_auc", "sensitivity_at_specificity", "summarize"]


def _check(y_true: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y_true, score = np.asarray(y_true), np.asarray(score, dtype=float)
    if y_true.shape != score.shape or y_true.ndim != 1:
        raise ValueError(f"y_true {y_true.shape} and score {score.shape} must be 1-D and equal length")
    if len(np.unique(y_true)) != 2:
        raise ValueError("y_true must hold both classes")
    return y_true, score


def roc_auc(y_true: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve."""
    y_true, score = _check(y_true, score)
    return float(roc_auc_score(y_true, score))


def partial_auc(y_true: np.ndarray, score: np.ndarray, min_tpr: float = 0.8) -> float:
    """Area under the ROC curve above ``min_tpr`` TPR, as the ISIC 2024 challenge scored it.

    The area between the ROC curve and the line TPR = ``min_tpr``: 0 to
    ``1 - min_tpr`` (0.2 by default). Computed as the challenge did: scikit-learn's
    ``roc_auc_score`` with ``max_fpr = 1 - min_tpr`` on flipped labels and negated
    scores, with the McClish standardisation undone.
    """
    y_true, score = _check(y_true, score)
    max_fpr = abs(1.0 - min_tpr)
    scaled = roc_auc_score(np.abs(y_true - 1), -score, max_fpr=max_fpr)
    return float(0.5 * max_fpr**2 + (max_fpr - 0.5 * max_fpr**2) / (1.0 - 0.5) * (scaled - 0.5))


def sensitivity_at_specificity(y_true: np.ndarray, score: np.ndarray, specificity: float = 0.9) -> float:
    """Highest sensitivity (TPR) reachable with specificity of at least ``specificity``."""
    y_true, score = _check(y_true, score)
    fpr, tpr, _ = roc_curve(y_true, score)
    return float(tpr[fpr <= 1.0 - specificity + 1e-12].max())


def summarize(y_true: np.ndarray, score: np.ndarray) -> dict[str, float]:
    """ROC AUC, partial AUC above 80 % TPR and sensitivity at 90 % specificity."""
    return {
        "roc_auc": roc_auc(y_true, score),
        "pauc_80": partial_auc(y_true, score, 0.8),
        "sens_at_spec90": sensitivity_at_specificity(y_true, score, 0.9),
    }
