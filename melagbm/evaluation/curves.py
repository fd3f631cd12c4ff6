"""ROC curves of fixed scores under any row weights, and the weights of a bootstrap by group.

What the bootstrap intervals of :func:`~melagbm.evaluation.metrics_table` and the paired
differences of :func:`~melagbm.evaluation.compare_scores` are computed from: a resample is a
weighting of the rows (how often its group was drawn), so the scores are sorted once.
"""

from __future__ import annotations

import numpy as np

from .._resampling import bootstrap_weights

__all__ = ["WeightedCurves", "bootstrap_weights"]


class WeightedCurves:
    """ROC and precision-recall curves of fixed scores under any row weights.

    The scores are sorted once; each weighting (a bootstrap resample) then costs a few
    cumulative sums instead of a sort per metric.

    Parameters
    ----------
    y : ndarray of shape (n_samples,)
        Labels, 1 = melanoma.
    score : ndarray of shape (n_samples,)
        Scores, higher = more suspicious.

    Attributes
    ----------
    order : ndarray of shape (n_samples,)
        The rows by descending score (stable for ties).
    ends : ndarray
        Position, in that order, of the last row of each block of tied scores.
    y : ndarray of shape (n_samples,)
        The labels in that order, as floats.
    """

    def __init__(self, y: np.ndarray, score: np.ndarray) -> None:
        self.order = np.argsort(-score, kind="mergesort")
        sorted_score = score[self.order]
        self.ends = np.r_[np.flatnonzero(np.diff(sorted_score)), len(score) - 1]  # last row of each tie block
        self.y = y[self.order].astype(float)

    def counts(self, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Cumulative weighted true and false positives at each distinct threshold, high to low.

        Parameters
        ----------
        weight : ndarray of shape (n_samples,)
            Row weights, in the rows' original order.

        Returns
        -------
        tps, fps : ndarray
            One entry per distinct score, from the highest down.
        """
        w = weight[self.order]
        tps = np.cumsum(w * self.y)[self.ends]
        fps = np.cumsum(w * (1.0 - self.y))[self.ends]
        return tps, fps

    def metrics(self, weight: np.ndarray) -> dict[str, float]:
        """The curve metrics under ``weight``.

        Parameters
        ----------
        weight : ndarray of shape (n_samples,)
            Row weights; both classes must weigh more than 0.

        Returns
        -------
        dict of str to float
            ``roc_auc``, ``pauc_80``, ``sens_at_spec90``, ``sens_at_spec95``, ``spec_at_sens95`` and
            ``average_precision`` (names as in :data:`~melagbm.evaluation.METRIC_LABELS`).
        """
        tps, fps = self.counts(weight)
        tpr = np.r_[0.0, tps / tps[-1]]
        fpr = np.r_[0.0, fps / fps[-1]]
        precision = tps / np.maximum(tps + fps, 1e-300)
        return {
            "roc_auc": float(np.trapezoid(tpr, fpr)),
            "pauc_80": _area_above(fpr, tpr, 0.8),
            "sens_at_spec90": float(tpr[fpr <= 0.1 + 1e-12].max()),
            "sens_at_spec95": float(tpr[fpr <= 0.05 + 1e-12].max()),
            "spec_at_sens95": float(1.0 - fpr[tpr >= 0.95 - 1e-12].min()),
            "average_precision": float(np.sum(np.diff(tpr) * precision)),
        }


def _area_above(fpr: np.ndarray, tpr: np.ndarray, level: float) -> float:
    """Area between a piecewise-linear ROC curve and the line TPR = ``level`` (where above it)."""
    f0, f1, t0, t1 = fpr[:-1], fpr[1:], tpr[:-1], tpr[1:]
    both = (t0 >= level) & (t1 >= level)
    area = np.sum((f1 - f0)[both] * ((t0 + t1)[both] / 2.0 - level))
    cross = (t0 < level) & (t1 > level)
    if np.any(cross):
        fc = f0[cross] + (level - t0[cross]) / (t1[cross] - t0[cross]) * (f1[cross] - f0[cross])
        area += np.sum((f1[cross] - fc) * (t1[cross] - level) / 2.0)
    return float(area)
