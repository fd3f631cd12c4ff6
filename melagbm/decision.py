"""From booster margins to calibrated probabilities and a referral decision: the operating point."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator

from ._checks import check_scores
from ._splits import stratified_group_splits
from ._warnings import warn
from .referral import (
    ReferralEstimate, achieved_confidence, check_rule, confident_threshold, cross_fitted_referral, rank_needed,
)

__all__ = ["CALIBRATION_METHODS", "Calibration", "OperatingPoint", "class_weight_shift", "fit_calibration", "logit",
           "sigmoid", "threshold_for_sensitivity"]

CALIBRATION_METHODS = ("sigmoid", "isotonic")


def sigmoid(margin: np.ndarray) -> np.ndarray:
    """The logistic function, accurate in both tails (1 + tanh would lose tiny probabilities' digits).

    Parameters
    ----------
    margin : array-like
        Log-odds, any shape.

    Returns
    -------
    probability : ndarray
        ``1 / (1 + exp(-margin))``, of the shape of ``margin``.
    """
    from scipy.special import expit

    return expit(np.asarray(margin, dtype=float))


def logit(probability: np.ndarray | float) -> np.ndarray:
    """Log-odds of a probability, clipped to [1e-12, 1 - 1e-12] so 0 and 1 stay finite.

    Parameters
    ----------
    probability : array-like or float
        Probabilities, any shape.

    Returns
    -------
    log_odds : ndarray
        ``log(p / (1 - p))`` of the clipped probabilities, of the shape of ``probability``.
    """
    clipped = np.clip(np.asarray(probability, dtype=float), 1e-12, 1 - 1e-12)
    return np.log(clipped) - np.log1p(-clipped)


@dataclass(frozen=True)
class Calibration:
    """A monotone map from the booster's margin to a probability, kept as plain numbers.

    ``method="sigmoid"``: ``p = sigmoid(slope * margin + intercept)`` (Platt scaling).
    ``method="isotonic"``: piecewise-linear through ``(knots_x, knots_y)``, clipped at the ends.
    ``method="shift"``: ``p = sigmoid(margin + intercept)``, undoing class re-weighting.

    Parameters
    ----------
    method : {"sigmoid", "isotonic", "shift"}
        The form of the map.
    slope : float, default=1.0
        Multiplies the margin (``"sigmoid"``; 1 for ``"shift"``).
    intercept : float, default=0.0
        Added to the scaled margin, in log-odds (``"sigmoid"`` and ``"shift"``).
    knots_x : tuple of float, default=()
        Increasing margins of the isotonic knots (``"isotonic"`` only).
    knots_y : tuple of float, default=()
        Probabilities at ``knots_x``, non-decreasing in [0, 1] (``"isotonic"`` only).
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
    """Fit ``method`` ("sigmoid" or "isotonic") on out-of-fold margins and 0/1 labels.

    Parameters
    ----------
    method : {"sigmoid", "isotonic"}
        Platt scaling (a logistic regression on the margin) or isotonic regression.
    margin : array-like of shape (n_samples,)
        Out-of-fold booster margins (log-odds).
    y : array-like of shape (n_samples,)
        Labels, 1 = melanoma.

    Returns
    -------
    Calibration
        The fitted map from margin to melanoma probability.

    Raises
    ------
    ValueError
        When ``method`` is neither "sigmoid" nor "isotonic".
    """
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

    Parameters
    ----------
    weights : ndarray of shape (n_samples,)
        The booster's training sample weights.
    y : ndarray of shape (n_samples,)
        Labels, 1 = melanoma; w_c is the mean weight of class c.

    Returns
    -------
    Calibration
        ``method="shift"`` with ``intercept = -log(w_1 / w_0)``.
    """
    w1 = float(np.mean(weights[y == 1]))
    w0 = float(np.mean(weights[y == 0]))
    return Calibration("shift", intercept=-float(np.log(w1 / w0)))


def threshold_for_sensitivity(y_true: Any, score: Any, sensitivity: float) -> float:
    """The highest threshold t with sensitivity of ``score >= t`` at least ``sensitivity``.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Labels, 1 = melanoma.
    score : array-like of shape (n_samples,)
        Scores, higher = more suspicious (e.g. melanoma probabilities).
    sensitivity : float
        The sensitivity to reach, in (0, 1].

    Returns
    -------
    threshold : float
        The score of one melanoma: referring every ``score >= threshold`` finds at least
        ``sensitivity`` of the melanomas.

    Raises
    ------
    ValueError
        When ``sensitivity`` is not in (0, 1].
    """
    y_true, score, _ = check_scores(y_true, score)
    if not 0.0 < sensitivity <= 1.0:
        raise ValueError(f"sensitivity must be in (0, 1], got {sensitivity!r}")
    positives = np.sort(score[y_true == np.max(y_true)])[::-1]
    return float(positives[rank_needed(len(positives), float(sensitivity), None) - 1])


class OperatingPoint(BaseEstimator):
    """Margin -> calibrated probability -> referral: the decision step of a two-class model.

    Fitted on out-of-fold booster margins of the training rows (the folds come from
    :meth:`splits`), so the probability and the threshold are those the model shows on
    rows it did not train on.

    Parameters
    ----------
    calibration : {"sigmoid", "isotonic"} or None, default="sigmoid"
        The margin -> probability map; None keeps the booster's own probability.
    target_sensitivity : float or None, default=0.9
        Refer at a probability threshold chosen on the out-of-fold predictions to keep this
        sensitivity (see ``sensitivity_confidence``); None refers above 0.5.
    calibration_folds : int, default=5
        Folds of the internal cross-validation behind the out-of-fold margins.
    sensitivity_confidence : float or None, default=0.95
        The threshold keeps ``target_sensitivity`` on new patients with this confidence (an exact
        lower confidence bound; see :mod:`melagbm.referral`). None: the highest threshold that reached
        the target out of fold (the rule of melagbm 0.1, optimistic for the next patients).

    Attributes
    ----------
    calibration_ : Calibration or None
        None: the booster's own probability (``sigmoid(margin)``).
    chosen_threshold_ : float or None
        The threshold chosen for ``target_sensitivity``; None when none was chosen.
    oof_roc_auc_ : float or None
        ROC AUC of the out-of-fold margins (None without them).
    estimate_ : ReferralEstimate or None
        What the threshold rule does on rows that did not choose the threshold (cross-fitted over the
        folds, with intervals); None without a threshold or folds.
    """

    def __init__(
        self, *, calibration: str | None = "sigmoid", target_sensitivity: float | None = 0.9,
        calibration_folds: int = 5, sensitivity_confidence: float | None = 0.95,
    ) -> None:
        self.calibration = calibration
        self.target_sensitivity = target_sensitivity
        self.calibration_folds = calibration_folds
        self.sensitivity_confidence = sensitivity_confidence

    def __setstate__(self, state: dict[str, Any]) -> None:
        if "chosen_threshold_" in state and "estimate_" not in state:  # fitted before the confidence rule
            state = {**state, "sensitivity_confidence": None, "estimate_": None}
        self.__dict__.update(state)

    def check_params(self) -> OperatingPoint:
        """Raise ValueError naming the first invalid parameter; return self."""
        if self.calibration is not None and self.calibration not in CALIBRATION_METHODS:
            raise ValueError(f"calibration must be one of {CALIBRATION_METHODS} or None, got {self.calibration!r}")
        target = self.target_sensitivity
        if target is not None and not (isinstance(target, (int, float)) and 0.0 < target < 1.0):
            raise ValueError(f"target_sensitivity must be in (0, 1) or None, got {target!r}")
        check_rule(0.5 if target is None else target, self.sensitivity_confidence)
        if not isinstance(self.calibration_folds, (int, np.integer)) or self.calibration_folds < 2:
            raise ValueError(f"calibration_folds must be an integer >= 2, got {self.calibration_folds!r}")
        return self

    def start(self, y: np.ndarray, weights: np.ndarray | None) -> OperatingPoint:
        """Reset the fitted state: no threshold, and the prior shift of any class weights as the calibration.

        Parameters
        ----------
        y : ndarray of shape (n_samples,)
            Labels of the training rows, 1 = melanoma.
        weights : ndarray of shape (n_samples,) or None
            The booster's training sample weights; None when it trained unweighted (no shift).

        Returns
        -------
        self : OperatingPoint
            This operating point, reset.
        """
        self.calibration_ = None if weights is None else class_weight_shift(weights, y)
        self.chosen_threshold_: float | None = None
        self.oof_roc_auc_: float | None = None
        self.estimate_: ReferralEstimate | None = None
        return self

    def splits(
        self, y: np.ndarray, groups: np.ndarray | None, seed: int
    ) -> list[tuple[np.ndarray, np.ndarray]] | None:
        """The folds for the out-of-fold margins; None (with a warning when folds are impossible) when there
        is nothing to calibrate or choose.

        Parameters
        ----------
        y : ndarray of shape (n_samples,)
            Labels of the training rows, 1 = melanoma; the folds are stratified by them.
        groups : ndarray of shape (n_samples,) or None
            Patient (or lesion) ids: each group stays in one fold. None splits rows.
        seed : int
            Seed of the fold assignment.

        Returns
        -------
        splits : list of (ndarray, ndarray) or None
            ``(train, test)`` row positions of each of the ``calibration_folds`` folds (fewer when the
            rarest class allows fewer).
        """
        if self.calibration is None and self.target_sensitivity is None:
            return None
        try:
            return list(stratified_group_splits(y, groups, int(self.calibration_folds), seed))
        except ValueError as exc:
            warn(
                f"No out-of-fold calibration or threshold ({exc}); predict_proba is the booster's "
                "probability and predict uses 0.5.",
                UserWarning,
            )
            return None

    def fit(
        self, margin: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None, folds: np.ndarray | None = None,
        *, seed: int = 0,
    ) -> OperatingPoint:
        """Fit the calibration and choose the threshold on out-of-fold margins and 0/1 labels (after ``start``),
        then estimate what the threshold rule does on rows that did not choose it.

        Parameters
        ----------
        margin : ndarray of shape (n_samples,)
            Out-of-fold booster margins (log-odds) of the training rows.
        y : ndarray of shape (n_samples,)
            Labels, 1 = melanoma.
        groups : ndarray of shape (n_samples,), default=None
            Patient (or lesion) ids: the rule counts a patient's melanomas once, and the estimate's bootstrap
            draws patients whole.
        folds : ndarray of shape (n_samples,), default=None
            Each row's fold in the cross-validation behind ``margin``: the estimate chooses each fold's
            threshold on the other folds. None: no estimate.
        seed : int, default=0
            Seed of the estimate's bootstrap.

        Returns
        -------
        self : OperatingPoint
            This operating point, fitted.
        """
        self.oof_roc_auc_ = None
        self.estimate_ = None
        if len(np.unique(y)) == 2:
            from sklearn.metrics import roc_auc_score

            self.oof_roc_auc_ = float(roc_auc_score(y, margin))
        if self.calibration is not None:
            self.calibration_ = fit_calibration(self.calibration, margin, y)
        if self.target_sensitivity is not None:
            probability = self.probability(margin)
            target, confidence = float(self.target_sensitivity), self.sensitivity_confidence
            self.chosen_threshold_ = confident_threshold(y, probability, target, confidence, groups=groups)
            if folds is not None:
                estimate = cross_fitted_referral(y, probability, folds, sensitivity=target, confidence=confidence,
                                                 groups=groups, random_state=seed)
                achieved, units = achieved_confidence(y, probability, self.chosen_threshold_, target,
                                                      groups=None if confidence is None else groups)
                self.estimate_ = replace(estimate, achieved_confidence=achieved, melanoma_units=units)
        return self

    @property
    def threshold_(self) -> float:
        """The probability from which a lesion is referred: the chosen threshold, else 0.5."""
        return 0.5 if self.chosen_threshold_ is None else self.chosen_threshold_

    @property
    def threshold_log_odds_(self) -> float | None:
        """The chosen threshold on the log-odds scale (None when none was chosen)."""
        return None if self.chosen_threshold_ is None else float(logit(self.chosen_threshold_))

    def probability(self, margin: np.ndarray) -> np.ndarray:
        """The (calibrated) melanoma probability.

        Parameters
        ----------
        margin : ndarray of shape (n_samples,)
            Booster margins (log-odds).

        Returns
        -------
        probability : ndarray of shape (n_samples,)
            Melanoma probability in [0, 1].
        """
        return sigmoid(margin) if self.calibration_ is None else self.calibration_(margin)

    def log_odds(self, margin: np.ndarray) -> np.ndarray:
        """Log-odds of the calibrated probability.

        Parameters
        ----------
        margin : ndarray of shape (n_samples,)
            Booster margins (log-odds).

        Returns
        -------
        log_odds : ndarray of shape (n_samples,)
            ``logit`` of :meth:`probability`; the margin itself without a calibration.
        """
        if self.calibration_ is None:
            return np.asarray(margin, dtype=float)
        if self.calibration_.method == "isotonic":
            return logit(self.calibration_(margin))
        return self.calibration_.slope * np.asarray(margin, dtype=float) + self.calibration_.intercept

    def decision_function(self, margin: np.ndarray) -> np.ndarray:
        """Calibrated log-odds measured from the threshold's: positive exactly where the lesion is referred.

        Parameters
        ----------
        margin : ndarray of shape (n_samples,)
            Booster margins (log-odds).

        Returns
        -------
        score : ndarray of shape (n_samples,)
            Log-odds minus the threshold's log-odds (0 without a chosen threshold): positive where
            the lesion is referred, at most 0 where it is not.
        """
        positive = self.probability(margin)
        if self.chosen_threshold_ is None:  # no chosen threshold: the most probable class
            refer, origin = positive > 0.5, 0.0
        else:
            refer, origin = positive >= self.chosen_threshold_, self.threshold_log_odds_
        shifted = self.log_odds(margin) - origin  # the sign follows the probability exactly:
        return np.where(refer, np.maximum(shifted, np.finfo(float).tiny), np.minimum(shifted, 0.0))
