"""The referral threshold: chosen so that the target sensitivity holds for new patients with a stated confidence,
and what it does estimated on scores that did not choose it.

**The rule.** Refer every lesion whose score reaches the k-th highest melanoma score of the training sample.
For melanomas drawn from the same population, the share of new melanomas scoring at least that high is
distributed as Beta(k, n + 1 - k) (n melanomas; the order statistics of any continuous distribution), so
the threshold's sensitivity on new patients is at least the target with probability
``beta.sf(target, k, n + 1 - k)``. :func:`confident_threshold` takes the highest threshold whose probability
reaches ``confidence``: a one-sided lower confidence bound on sensitivity (the exact binomial, Clopper-Pearson
bound) that needs no model of the scores. It holds for the sample it was chosen on, where conformal risk
control promises the target only on average over samples, i.e. about half the time on small ones. With patient
or lesion ids, n counts patients (lesions) with a melanoma, each at its lowest melanoma score: a patient's
melanomas are not independent draws. ``confidence=None`` is the plain rule: the highest threshold that reached
the target on the sample (no margin for the next patients).

**The estimate.** :func:`cross_fitted_referral` chooses a threshold by the same rule on the other folds'
out-of-fold scores for each fold, applies it to that fold's, and reports sensitivity, specificity and the share
of lesions referred with bootstrap intervals over patients (lesions) in which the thresholds are chosen again:
the threshold's own uncertainty is part of the interval. Each interval is the hull of that bootstrap's and the exact
binomial interval over the patients (lesions), since resamples pile up at 0 or 1 where few melanomas are missed.
With fewer than about 30 melanomas (patients), where the rule's threshold is the lowest melanoma score, the final
threshold (chosen on every fold) sits lower than the folds' and the stated specificity is optimistic
(``benchmarks/card_coverage.py`` on the ISIC subset); the threshold then keeps the target with less than the confidence
asked (``achieved_confidence``), and the weak-model warning says so first.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from itertools import islice
from typing import Any

import numpy as np
import pandas as pd

from ._checks import check_scores
from ._resampling import bootstrap_weights

__all__ = ["ReferralEstimate", "achieved_confidence", "check_rule", "confident_threshold", "cross_fitted_referral",
           "rank_needed", "sensitivity_confidence"]

_DRAWS_AT_ONCE = 100  # bootstrap weightings evaluated together (memory: this many x rows)


@lru_cache(maxsize=4096)
def rank_needed(n: int, sensitivity: float, confidence: float | None) -> int:
    """How many of n melanoma scores (highest first) the threshold must reach: the plain rule's
    ``ceil(sensitivity * n)`` (at least 1), or the smallest k whose threshold keeps ``sensitivity`` with
    ``confidence`` (n when none does).

    Parameters
    ----------
    n : int
        Melanomas (patients or lesions) the threshold is chosen on, at least 1.
    sensitivity : float
        The sensitivity to keep.
    confidence : float or None
        The rule's confidence; None: the plain rule.

    Returns
    -------
    k : int
        1 to n.
    """
    if confidence is None:
        return max(int(np.ceil(sensitivity * n - 1e-9)), 1)
    from scipy.stats import beta

    ranks = np.arange(1, n + 1)
    holds = np.flatnonzero(beta.sf(sensitivity, ranks, n + 1 - ranks) >= confidence)
    return int(ranks[holds[0]]) if len(holds) else n


def sensitivity_confidence(n: int, k: int, sensitivity: float) -> float:
    """The probability that a threshold at the k-th highest of n melanoma scores keeps ``sensitivity`` on new
    melanomas of the same population: ``beta.sf(sensitivity, k, n + 1 - k)``.

    Parameters
    ----------
    n : int
        Melanomas (patients or lesions with one) the threshold was chosen on.
    k : int
        How many of them score at or above the threshold, 1 to n.
    sensitivity : float
        The sensitivity to keep, in (0, 1).

    Returns
    -------
    confidence : float
        In [0, 1].
    """
    from scipy.stats import beta

    return float(beta.sf(sensitivity, k, n + 1 - k))


def achieved_confidence(
    y_true: Any, score: Any, threshold: float, sensitivity: float, groups: Any = None,
) -> tuple[float, int]:
    """(the confidence with which ``threshold`` keeps ``sensitivity`` for new melanomas, the melanomas it was judged
    on): :func:`sensitivity_confidence` of the n melanomas (patients or lesions, each at its lowest score) and the k
    of them at or above the threshold. Below the requested confidence when too few melanomas allow it.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Labels, 1 = melanoma.
    score : array-like of shape (n_samples,)
        The scores the threshold was chosen on.
    threshold : float
        The threshold (refer where ``score >= threshold``).
    sensitivity : float
        The sensitivity to keep, in (0, 1).
    groups : array-like of shape (n_samples,), default=None
        Patient (or lesion) ids: each one's melanomas count once.

    Returns
    -------
    confidence : float
        In [0, 1].
    n : int
        Melanomas (patients or lesions) counted.
    """
    y, score = _melanoma_labels(y_true, score)
    scores, _ = _melanoma_units(y, score, None if groups is None else np.asarray(groups))
    k = int(np.sum(scores >= threshold))
    return (sensitivity_confidence(len(scores), k, sensitivity) if k else 0.0), int(len(scores))


def _melanoma_labels(y_true: Any, score: Any) -> tuple[np.ndarray, np.ndarray]:
    """(labels as 0/1, 1 = the larger label; scores as floats), checked as ``check_scores`` does."""
    y, score, _ = check_scores(y_true, score)
    return (y == np.max(y)).astype(int), score


def _melanoma_units(y: np.ndarray, score: np.ndarray, groups: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(each unit's melanoma score, highest first; one row of the unit): a unit is a group holding a melanoma
    (at its lowest melanoma score), or a melanoma row without groups."""
    rows = np.flatnonzero(y == 1)
    if groups is not None:
        frame = pd.DataFrame({"group": groups[rows], "score": score[rows], "row": rows})
        lowest = frame.sort_values("score", kind="mergesort").drop_duplicates("group")
        rows = lowest["row"].to_numpy()
    order = np.argsort(-score[rows], kind="mergesort")
    return score[rows][order], rows[order]


def _threshold(units: tuple[np.ndarray, np.ndarray], sensitivity: float, confidence: float | None) -> float:
    """The rule's threshold on melanoma units (each counted once)."""
    scores, _ = units
    return float(scores[rank_needed(len(scores), float(sensitivity), confidence) - 1])


def _thresholds(units: tuple[np.ndarray, np.ndarray], weights: np.ndarray, sensitivity: float,
                confidence: float | None) -> tuple[np.ndarray, np.ndarray]:
    """The rule's threshold with each unit counted as often as its row's weight, for each row of ``weights`` at
    once, and where one exists (some unit weighs more than 0)."""
    scores, rows = units
    if not len(rows):  # no melanoma to choose on
        return np.full(len(weights), np.inf), np.zeros(len(weights), dtype=bool)
    cumulative = np.cumsum(np.rint(weights[:, rows]).astype(int), axis=1)
    exists = cumulative[:, -1] > 0
    needed = np.array([rank_needed(int(total), float(sensitivity), confidence) if total > 0 else 1
                       for total in cumulative[:, -1]])
    position = np.minimum((cumulative < needed[:, None]).sum(axis=1), len(rows) - 1)  # searchsorted, row by row
    return np.where(exists, scores[position], np.inf), exists


def confident_threshold(
    y_true: Any, score: Any, sensitivity: float, confidence: float | None = 0.95, groups: Any = None,
) -> float:
    """The highest threshold whose sensitivity on new patients reaches ``sensitivity`` with ``confidence``.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Labels, 1 = melanoma.
    score : array-like of shape (n_samples,)
        Out-of-fold scores (probabilities or margins), higher = more suspicious.
    sensitivity : float
        The sensitivity to keep, in (0, 1).
    confidence : float or None, default=0.95
        In (0, 1): the probability that the threshold keeps ``sensitivity`` on new melanomas (the exact
        binomial lower bound; see the module). None: the plain rule, the highest threshold that reached
        ``sensitivity`` on these rows.
    groups : array-like of shape (n_samples,), default=None
        Patient (or lesion) ids: with ``confidence``, each patient's melanomas count once, at their lowest
        score.

    Returns
    -------
    threshold : float
        A melanoma's score: refer every ``score >= threshold``. When even the lowest melanoma score cannot
        give ``confidence`` (too few melanomas), that lowest score.

    Raises
    ------
    ValueError
        When the labels hold one class, ``sensitivity`` is not in (0, 1) or ``confidence`` not in (0, 1).
    """
    y, score = _melanoma_labels(y_true, score)
    check_rule(sensitivity, confidence)
    groups = None if groups is None or confidence is None else np.asarray(groups)
    return _threshold(_melanoma_units(y, score, groups), sensitivity, confidence)


def check_rule(sensitivity: Any, confidence: Any) -> None:
    """Raise ValueError naming ``target_sensitivity`` or ``sensitivity_confidence`` when out of (0, 1)."""
    for name, value, optional in (("target_sensitivity", sensitivity, False),
                                  ("sensitivity_confidence", confidence, True)):
        if value is None and optional:
            continue
        if isinstance(value, bool) or not (isinstance(value, (int, float, np.floating)) and 0.0 < value < 1.0):
            raise ValueError(f"{name} must be in (0, 1){' or None' if optional else ''}, got {value!r}")


@dataclass(frozen=True)
class ReferralEstimate:
    """What the referral rule does on scores that did not choose its threshold (cross-fitted), with intervals.

    Each figure is ``(value, ci_low, ci_high)``; the interval is the wider of a percentile bootstrap over
    patients (lesions) in which every fold's threshold is chosen again and the exact binomial interval over the
    patients (approximate with groups, whose rows need not all agree).

    Parameters
    ----------
    sensitivity : tuple of float
        Melanomas referred.
    specificity : tuple of float
        Other lesions not referred.
    referral_rate : tuple of float
        All lesions referred.
    plain_specificity : tuple of float
        Specificity of the plain rule (the highest threshold that reached the target, no confidence) on the
        same folds: what the confidence costs.
    target_sensitivity : float
        The sensitivity the rule aims at.
    confidence : float or None
        The rule's confidence (None: the plain rule).
    folds : int
        Folds of the cross-fit.
    n_bootstrap : int
        Resamples behind the intervals.
    grouped : bool
        Whether rows were drawn (and melanomas counted) by patient or lesion.
    achieved_confidence : float or None, default=None
        The confidence with which the model's own threshold keeps the target (below ``confidence`` when too few
        melanomas allow it; see :func:`achieved_confidence`); None where not computed.
    melanoma_units : int or None, default=None
        The melanomas (patients or lesions) the threshold was chosen on.
    """

    sensitivity: tuple[float, float, float]
    specificity: tuple[float, float, float]
    referral_rate: tuple[float, float, float]
    plain_specificity: tuple[float, float, float]
    target_sensitivity: float
    confidence: float | None
    folds: int
    n_bootstrap: int
    grouped: bool
    achieved_confidence: float | None = None
    melanoma_units: int | None = None

    @property
    def method(self) -> str:
        """How the figures were estimated, in words."""
        rule = ("the plain rule (the highest threshold that reached the target)" if self.confidence is None
                else f"the rule that keeps the target with {100 * self.confidence:.0f} % confidence")
        return (f"cross-fitted over {self.folds} folds: each fold referred at a threshold chosen by {rule} on the "
                f"other folds' out-of-fold scores; 95 % intervals: the wider of {self.n_bootstrap} bootstrap "
                f"resamples of whole {'groups' if self.grouped else 'rows'}, every threshold chosen again in each, "
                "and the exact binomial interval")

    def to_dict(self) -> dict[str, Any]:
        """The estimate as the model card keeps it: each figure as value, ci_low, ci_high and label."""
        labels = {"sensitivity": "melanomas referred (sensitivity)",
                  "specificity": "other lesions not referred (specificity)",
                  "referral_rate": "lesions referred",
                  "plain_specificity": "specificity of the plain rule (no confidence margin)"}
        figures = {name: dict(zip(("value", "ci_low", "ci_high"), getattr(self, name)), label=label)
                   for name, label in labels.items()}
        return {"method": self.method, "target_sensitivity": self.target_sensitivity,
                "confidence": self.confidence, "achieved_confidence": self.achieved_confidence,
                "melanoma_units": self.melanoma_units, "folds": self.folds, "bootstrap": self.n_bootstrap,
                **figures}


def cross_fitted_referral(
    y: Any, score: Any, folds: Any, *, sensitivity: float, confidence: float | None, groups: Any = None,
    n_bootstrap: int = 1000, random_state: int | None = 0,
) -> ReferralEstimate:
    """Sensitivity, specificity and referral rate of a threshold rule on rows that did not choose the threshold.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Labels, 1 = melanoma.
    score : array-like of shape (n_samples,)
        Out-of-fold scores of the training rows (the model's probabilities), higher = more suspicious.
    folds : array-like of shape (n_samples,)
        Each row's fold: its threshold is chosen on the rows of every other fold.
    sensitivity : float
        The rule's target sensitivity, in (0, 1).
    confidence : float or None
        The rule's confidence (see :func:`confident_threshold`).
    groups : array-like of shape (n_samples,), default=None
        Patient (or lesion) ids: the bootstrap draws them whole, and the rule counts their melanomas once.
    n_bootstrap : int, default=1000
        Resamples behind the 95 % intervals.
    random_state : int or None, default=0
        Seed of the resampling.

    Returns
    -------
    ReferralEstimate
        The rule's cross-fitted sensitivity, specificity and share referred with 95 % intervals, and the plain
        rule's specificity on the same folds.
    """
    y, score = _melanoma_labels(y, score)
    check_rule(sensitivity, confidence)
    folds = np.asarray(folds)
    if folds.shape != y.shape:
        raise ValueError(f"folds has {folds.size} entries for {len(y)} rows")
    group_array = None if groups is None else np.asarray(groups)
    fold_ids = np.unique(folds)
    if len(fold_ids) < 2:
        raise ValueError("cross-fitting needs at least two folds")
    codes = np.arange(len(y)) if group_array is None else pd.factorize(group_array)[0]

    rules = (confidence,) if confidence is None else (confidence, None)  # the chosen rule, then the plain one
    units = {(fold, rule): _melanoma_units(y[folds != fold], score[folds != fold],
                                           None if group_array is None or rule is None else group_array[folds != fold])
             for fold in fold_ids for rule in rules}
    positive, negative = y == 1, y == 0

    def figures(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per weighting (a row of ``weights``): (sensitivity, specificity, referral rate) of the chosen rule, and
        (specificity,) of the plain one; NaN where some fold's threshold has no melanoma to be chosen on."""
        chosen, plain = np.full((len(weights), 3), np.nan), np.full((len(weights), 1), np.nan)
        drawn = np.ones(len(weights), dtype=bool)
        results = []
        for rule in rules:
            refer = np.zeros(weights.shape, dtype=bool)
            for fold in fold_ids:
                inside = folds == fold
                thresholds, chosen_on = _thresholds(units[fold, rule], weights[:, ~inside], sensitivity, rule)
                drawn &= chosen_on
                refer[:, inside] = score[inside] >= thresholds[:, None]
            results.append((np.sum(weights * positive * refer, axis=1) / np.sum(weights * positive, axis=1),
                            1.0 - np.sum(weights * negative * refer, axis=1) / np.sum(weights * negative, axis=1),
                            np.sum(weights * refer, axis=1) / np.sum(weights, axis=1)))
        chosen[drawn] = np.column_stack(results[0])[drawn]
        plain[drawn, 0] = results[-1][1][drawn]
        return chosen, plain

    point, plain = (figure[0] for figure in figures(np.ones((1, len(y)))))
    resamples = bootstrap_weights(y, codes, n_bootstrap, np.random.default_rng(random_state))
    draws = [figures(np.asarray(batch)) for batch in iter(lambda: list(islice(resamples, _DRAWS_AT_ONCE)), [])]
    chosen_draws = np.concatenate([draw[0] for draw in draws]) if draws else np.empty((0, 3))
    plain_draws = np.concatenate([draw[1] for draw in draws]) if draws else np.empty((0, 1))

    def units_of(rows: np.ndarray) -> int:
        return int(len(np.unique(codes[rows])))

    def interval(value: float, values: np.ndarray, units: int) -> tuple[float, float, float]:
        """The hull of the bootstrap's percentile interval (the thresholds' own uncertainty) and the exact binomial
        interval of ``value`` over ``units`` patients or lesions (where resamples pile up at 0 or 1)."""
        from scipy.stats import beta

        hits = value * units
        low = beta.ppf(0.025, hits, units - hits + 1) if hits > 0 else 0.0
        high = beta.ppf(0.975, hits + 1, units - hits) if hits < units else 1.0
        values = values[np.isfinite(values)]
        if len(values):
            low, high = min(low, np.quantile(values, 0.025)), max(high, np.quantile(values, 0.975))
        return (float(value), float(low), float(high))

    every = np.arange(len(y))
    return ReferralEstimate(
        sensitivity=interval(point[0], chosen_draws[:, 0], units_of(every[y == 1])),
        specificity=interval(point[1], chosen_draws[:, 1], units_of(every[y == 0])),
        referral_rate=interval(point[2], chosen_draws[:, 2], units_of(every)),
        plain_specificity=interval(plain[0], plain_draws[:, 0], units_of(every[y == 0])),
        target_sensitivity=float(sensitivity), confidence=None if confidence is None else float(confidence),
        folds=int(len(fold_ids)), n_bootstrap=int(np.isfinite(chosen_draws[:, 0]).sum()),
        grouped=group_array is not None,
    )
