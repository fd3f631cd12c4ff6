from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_curve

from melagbm.evaluation import partial_auc, roc_auc, sensitivity_at_specificity


def _area_above_tpr(y, score, min_tpr):
    """Independent reference: integrate max(TPR - min_tpr, 0) over FPR along the ROC curve."""
    fpr, tpr, _ = roc_curve(y, score)
    grid = np.linspace(0, 1, 200_001)
    return float(np.trapezoid(np.clip(np.interp(grid, fpr, tpr) - min_tpr, 0, None), grid))


@pytest.mark.parametrize("seed", range(6))
def test_partial_auc_matches_the_area_above_the_tpr_line(seed) -> None:
    rng = np.random.default_rng(seed)
    y = (rng.random(400) < 0.1).astype(int)
    y[:2] = [0, 1]
    score = np.round(y * rng.normal(1, 1, 400) + rng.normal(0, 1, 400), 1)  # ties included
    assert partial_auc(y, score) == pytest.approx(_area_above_tpr(y, score, 0.8), abs=2e-4)
    assert partial_auc(y, score, 0.9) == pytest.approx(_area_above_tpr(y, score, 0.9), abs=2e-4)


def test_metric_ranges() -> None:
    y = np.array([0, 0, 1, 1])
    assert partial_auc(y, np.array([0.1, 0.2, 0.8, 0.9])) == pytest.approx(0.2)
    assert partial_auc(y, np.array([0.9, 0.8, 0.2, 0.1])) == pytest.approx(0.0)
    assert roc_auc(y, np.array([0.1, 0.2, 0.8, 0.9])) == 1.0
    assert sensitivity_at_specificity(y, np.array([0.1, 0.5, 0.4, 0.9]), 0.9) == 0.5
    with pytest.raises(ValueError, match="both classes"):
        roc_auc(np.zeros(3), np.ones(3))
