"""From booster margins to calibrated probabilities and a referral decision."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ._checks import check_scores

__all__ = ["CALIBRATION_METHODS", "Calibration", "class_weight_shift", "fit_calibration", "logit", "sigmoid",
           "threshold_for_sensitivity"]

CALIBRATION_METHODS = ("sigmoid", "isotonic")


def sigmoid(margin: np.ndarray) -> np.ndarray:
    """The logistic function, accurate in both tails (1 + tanh would lose tiny probabilities' digits)."""
    from scipy.special import expit

    return expit(np.asarray(margin, dtype=float))


def logit(probability: np.ndarray | float) -> np.ndarray:
    """Log-odds of a probability, clipped to [1e-12, 1 - 1e-12] so 0 and 1 stay finite."""
    clipped = np.clip(np.asarray(probability, dtype=float), 1e-12, 1 - 1e-12)
    return np.log(clipped) - np.log1p(-clipped)


@dataclass(frozen=True)
class Calibration:
    """A monotone map from the booster's margin to a probability, kept as plain numbers.

    ``method="sigmoid"``: ``p = sigmoid(slope * margin + intercept)`` (Platt scaling).
    ``method="isotonic"``: piecewise-linear through ``(knots_x, knots_y)``, clipped at the ends.
    ``method="shift"``: ``p = sigmoid(margin + intercept)``, undoing class re-weighting.
    """

    method: str
    slope: float = 1.0
    intercept: float = 0.0
    knots_x: tuple[float, ...] = ()
    knots_y: tuple[float, ...] = ()

    def __call__(self, margin: np.ndarray) -> np.ndarray:
        margin = np.asarray(margin, dtype=float)
        if self.method == "isotonic":
            return np.interp(margin, self.knots_x, self.knots_y)
        return sigmoid(self.slope * margin + self.intercept)


def fit_calibration(method: str, margin: np.ndarray, y: np.ndarray) -> Calibration:
    """Fit ``method`` ("sigmoid" or "isotonic") on out-of-fold margins and 0/1 labels."""
    margin, y = np.asarray(margin, dtype=float), np.asarray(y, dtype=int)
    if method == "sigmoid":
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression(C=1e4, max_iter=1000).fit(margin[:, None], y)
        return Calibration("sigmoid", slope=float(model.coef_[0, 0]), intercept=float(model.intercept_[0]))
    if method == "isotonic":
        from sklearn.isotonic import IsotonicRegression

        model = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(margin, y)
        return Calibration(
            "isotonic",
            knots_x=tuple(float(v) for v in model.X_thresholds_),
            knots_y=tuple(float(v) for v in model.y_thresholds_),
        )
    raise ValueError(f"calibration must be one of {CALIBRATION_METHODS} or None, got {method!r}")


def class_weight_shift(weights: np.ndarray, y: np.ndarray) -> Calibration:
    """The prior correction for a booster trained with per-class weights.

    Weighting class c by w_c multiplies the odds the booster learns by w_1 / w_0;
    subtracting log(w_1 / w_0) from the margin gives back the odds of the data.
    """
    w1 = float(np.mean(weights[y == 1]))
    w0 = float(np.mean(weights[y == 0]))
    return Calibration("shift", intercept=-float(np.log(w1 / w0)))


def threshold_for_sensitivity(y_true: Any, score: Any, sensitivity: float) -> float:
    """The highest threshold t with sensitivity of ``score >= t`` at least ``sensitivity``."""
    y_true, score, _ = check_scores(y_true, score)
    if not 0.0 < sensitivity <= 1.0:
        raise ValueError(f"sensitivity must be in (0, 1], got {sensitivity!r}")
    positives = np.sort(score[y_true == np.max(y_true)])[::-1]
    needed = int(np.ceil(sensitivity * len(positives) - 1e-9))
    return float(positives[max(needed, 1) - 1])
