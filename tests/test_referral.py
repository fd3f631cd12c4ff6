"""The referral threshold's rule and its cross-fitted estimate, on scores drawn from known distributions (no data
needed): the rule keeps its sensitivity on new melanomas as often as it says, the estimate's intervals hold."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from melagbm.card import operating_point_lines, weakness
from melagbm.decision import OperatingPoint, threshold_for_sensitivity
from melagbm.referral import (
    ReferralEstimate, achieved_confidence, confident_threshold, cross_fitted_referral, sensitivity_confidence,
)
from melagbm.serve.fhir import referral_rationale

SHIFT = 1.5  # melanoma scores ~ N(1.5, 1), others ~ N(0, 1): a model of ROC AUC 0.86


def draw(n_melanomas: int, seed: int, prevalence: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.r_[np.ones(n_melanomas, int), np.zeros(int(n_melanomas / prevalence) - n_melanomas, int)]
    return y, rng.normal(size=len(y)) + SHIFT * y


def test_without_confidence_the_rule_is_the_highest_threshold_that_reached_the_target() -> None:
    y, score = draw(57, 0)
    for target in (0.8, 0.9, 0.95):
        assert confident_threshold(y, score, target, None) == threshold_for_sensitivity(y, score, target)


def test_the_threshold_is_the_highest_melanoma_score_that_gives_the_confidence() -> None:
    y, score = draw(100, 1)
    melanomas = np.sort(score[y == 1])[::-1]
    threshold = confident_threshold(y, score, 0.9, 0.95)
    k = int(np.sum(melanomas >= threshold))
    assert threshold == melanomas[k - 1]
    assert sensitivity_confidence(100, k, 0.9) >= 0.95 > sensitivity_confidence(100, k - 1, 0.9)
    assert k / 100 > 0.9  # a margin above the target: 96 of 100 must be reached
    # with fewer melanomas than any threshold can promise it for, the lowest melanoma score
    y, score = draw(20, 2)
    assert confident_threshold(y, score, 0.9, 0.95) == score[y == 1].min()


@pytest.mark.parametrize(("confidence", "lowest", "highest"), [(0.9, 0.85, 1.0), (None, 0.3, 0.7)])
def test_new_melanomas_are_caught_at_the_target_as_often_as_promised(confidence, lowest, highest) -> None:
    kept = []
    for seed in range(300):
        y, score = draw(60, seed)
        threshold = confident_threshold(y, score, 0.9, confidence)
        kept.append(norm.sf(threshold - SHIFT) >= 0.9)  # the true sensitivity for new melanomas
    assert lowest <= np.mean(kept) <= highest  # 90 % confidence holds; the plain rule keeps it about half the time


def test_with_too_few_melanomas_the_confidence_reached_is_stated_and_the_model_called_weak() -> None:
    y, score = draw(20, 8)
    threshold = confident_threshold(y, score, 0.9, 0.95)
    achieved, n = achieved_confidence(y, score, threshold, 0.9)
    assert n == 20 and achieved == pytest.approx(1 - 0.9 ** 20) and achieved < 0.95  # all 20 reached: 0.878
    assert achieved_confidence(*draw(100, 1), confident_threshold(*draw(100, 1), 0.9, 0.95), 0.9)[0] >= 0.95
    point = OperatingPoint().start(y, None).fit(score, y, folds=np.arange(len(y)) % 5)
    assert point.estimate_.achieved_confidence == pytest.approx(achieved) and point.estimate_.melanoma_units == 20
    performance = {"metrics": {"roc_auc": {"value": 0.86, "ci_low": 0.8, "ci_high": 0.92}}}
    card_point = {"threshold": point.threshold_, "target_sensitivity": 0.9, "sensitivity_confidence": 0.95,
                  "calibration": "sigmoid", "estimate": point.estimate_.to_dict()}
    line = weakness(performance, card_point, 20)
    assert line is not None and "keeps 90 % sensitivity with 88 % confidence, not the 95 % asked" in line
    words = " ".join(operating_point_lines(card_point, performance))
    assert "no threshold can promise that, and this one keeps it with 88 % confidence" in words
    # 28 melanomas reach 94.7 %: never written as the 95 % asked
    card_point["estimate"] = {**card_point["estimate"], "achieved_confidence": 1 - 0.9 ** 28, "melanoma_units": 28}
    assert "with 94.7 % confidence, not the 95 % asked" in weakness(performance, card_point, 28)
    assert "this one keeps it with 94.7 % confidence" in " ".join(operating_point_lines(card_point, performance))


def test_a_patients_melanomas_count_once_at_their_lowest_score() -> None:
    y, score = draw(80, 3)
    groups = np.arange(len(y))
    doubled_y, doubled_score = np.r_[y, y], np.r_[score, score + 0.5 * (y == 1)]  # each melanoma imaged twice
    doubled_groups = np.r_[groups, groups]
    assert confident_threshold(doubled_y, doubled_score, 0.9, 0.95, groups=doubled_groups) == \
        confident_threshold(y, score, 0.9, 0.95)
    # counted as separate melanomas, twice as many would let the threshold rise
    assert confident_threshold(doubled_y, doubled_score, 0.9, 0.95) > confident_threshold(y, score, 0.9, 0.95)


def cross_fit_by_hand(y, score, folds, target, confidence) -> np.ndarray:
    refer = np.zeros(len(y), dtype=bool)
    for fold in np.unique(folds):
        others = folds != fold
        refer[folds == fold] = score[folds == fold] >= confident_threshold(y[others], score[others], target, confidence)
    return refer


def test_the_estimate_refers_each_fold_at_a_threshold_chosen_on_the_others() -> None:
    y, score = draw(150, 4)
    folds = np.random.default_rng(4).integers(0, 5, len(y))
    estimate = cross_fitted_referral(y, score, folds, sensitivity=0.9, confidence=0.95, n_bootstrap=200)
    refer = cross_fit_by_hand(y, score, folds, 0.9, 0.95)
    assert estimate.sensitivity[0] == pytest.approx(refer[y == 1].mean())
    assert estimate.specificity[0] == pytest.approx(1 - refer[y == 0].mean())
    assert estimate.referral_rate[0] == pytest.approx(refer.mean())
    plain = cross_fit_by_hand(y, score, folds, 0.9, None)
    assert estimate.plain_specificity[0] == pytest.approx(1 - plain[y == 0].mean())
    assert estimate.plain_specificity[0] > estimate.specificity[0]  # what the confidence costs
    for value, low, high in (estimate.sensitivity, estimate.specificity, estimate.referral_rate):
        assert low <= value <= high
    assert estimate.n_bootstrap == 200 and estimate.folds == 5 and not estimate.grouped
    assert "cross-fitted over 5 folds" in estimate.method and "95 % confidence" in estimate.method


@pytest.mark.parametrize("confidence", [None, 0.95])
def test_the_estimates_intervals_hold_the_true_sensitivity_and_specificity(confidence) -> None:
    held = {"sensitivity": 0, "specificity": 0}
    draws = 40
    for seed in range(draws):
        y, score = draw(150, 100 + seed)
        folds = np.random.default_rng(seed).integers(0, 5, len(y))
        estimate = cross_fitted_referral(y, score, folds, sensitivity=0.9, confidence=confidence, n_bootstrap=200,
                                         random_state=seed)
        threshold = confident_threshold(y, score, 0.9, confidence)  # the model's own threshold, on every row
        truth = {"sensitivity": norm.sf(threshold - SHIFT), "specificity": norm.cdf(threshold)}
        for name in held:
            low, high = getattr(estimate, name)[1:]
            held[name] += low <= truth[name] <= high
    assert held["sensitivity"] >= 0.85 * draws and held["specificity"] >= 0.85 * draws


def test_the_estimate_draws_groups_whole() -> None:
    y, score = draw(100, 5)
    y, score = np.repeat(y, 4), np.repeat(score, 4)  # each lesion imaged four times (one score, as pooled)
    groups = np.arange(len(y)) // 4
    folds = groups % 5
    grouped = cross_fitted_referral(y, score, folds, sensitivity=0.9, confidence=None, groups=groups,
                                    n_bootstrap=300)
    alone = cross_fitted_referral(y, score, folds, sensitivity=0.9, confidence=None, n_bootstrap=300)
    assert grouped.grouped and "whole groups" in grouped.method and grouped.specificity[0] == alone.specificity[0]
    width = lambda figure: figure[2] - figure[1]  # noqa: E731
    assert width(grouped.specificity) > 1.5 * width(alone.specificity)  # a quarter of the independent units


def test_bad_arguments_are_named() -> None:
    y, score = draw(30, 6)
    with pytest.raises(ValueError, match="target_sensitivity must be in"):
        confident_threshold(y, score, 1.0)
    with pytest.raises(ValueError, match="sensitivity_confidence must be in"):
        confident_threshold(y, score, 0.9, 1.5)
    with pytest.raises(ValueError, match="folds has 3 entries"):
        cross_fitted_referral(y, score, [0, 1, 2], sensitivity=0.9, confidence=0.95)
    with pytest.raises(ValueError, match="at least two folds"):
        cross_fitted_referral(y, score, np.zeros(len(y)), sensitivity=0.9, confidence=0.95)
    with pytest.raises(ValueError, match="sensitivity_confidence must be in"):
        OperatingPoint(sensitivity_confidence=0.0).check_params()


def test_the_operating_point_keeps_the_estimate_and_upgrades_one_fitted_before_it() -> None:
    y, score = draw(100, 7)
    folds = np.arange(len(y)) % 5
    point = OperatingPoint().check_params().start(y, None).fit(score, y, folds=folds, seed=3)
    probability = point.probability(score)
    assert point.threshold_ == confident_threshold(y, probability, 0.9, 0.95)
    assert isinstance(point.estimate_, ReferralEstimate) and point.estimate_.confidence == 0.95
    old = OperatingPoint.__new__(OperatingPoint)  # as a model file of 0.1/0.2 restores it: no estimate_
    old.__setstate__({"calibration": "sigmoid", "target_sensitivity": 0.9, "calibration_folds": 5,
                      "sensitivity_confidence": 0.95, "calibration_": None, "chosen_threshold_": 0.2,
                      "oof_roc_auc_": 0.8})
    assert old.sensitivity_confidence is None and old.estimate_ is None  # its threshold came from the plain rule


def card_parts(referral: float, specificity: float, auc_low: float) -> tuple[dict, dict]:
    """(the card's performance, its operating point) with these figures."""
    figure = lambda value: {"value": value, "ci_low": value - 0.05, "ci_high": value + 0.05, "label": ""}  # noqa: E731
    estimate = {"method": "cross-fitted", "sensitivity": figure(0.93), "specificity": figure(specificity),
                "referral_rate": figure(referral), "plain_specificity": figure(specificity + 0.1)}
    point = {"threshold": 0.05, "target_sensitivity": 0.9, "sensitivity_confidence": 0.95, "calibration": "sigmoid",
             "estimate": estimate}
    performance = {"metrics": {"roc_auc": {"value": auc_low + 0.05, "ci_low": auc_low, "ci_high": auc_low + 0.1}}}
    return performance, point


def test_a_weak_model_is_named_with_both_numbers_and_what_to_do() -> None:
    performance, point = card_parts(referral=0.96, specificity=0.03, auc_low=0.52)
    line = weakness(performance, point, melanomas=26)
    assert line.startswith("Weak model: out-of-fold ROC AUC 0.570 (95 % CI 0.520-0.620)")
    assert "it would refer 96 % of lesions (95 % CI 91-101 %)" in line and "this fit saw 26" in line
    assert "lower target_sensitivity" in line and "\n" not in line
    assert weakness(*(card_parts(referral=0.3, specificity=0.7, auc_low=0.8)), melanomas=300) is None
    assert weakness(*(card_parts(referral=0.6, specificity=0.55, auc_low=0.8)), melanomas=300) is None
    assert weakness(*(card_parts(referral=0.3, specificity=0.7, auc_low=0.58)), melanomas=300) is not None
    assert weakness(None, point, melanomas=26) is None


def test_the_card_and_fhir_state_the_cross_fitted_figures_and_an_old_card_says_it_is_optimistic() -> None:
    performance, point = card_parts(referral=0.4, specificity=0.62, auc_low=0.8)
    words = " ".join(operating_point_lines(point, performance))
    assert "keep 90 % sensitivity for new patients with 95 % confidence" in words
    assert "other lesions not referred 62 % (95 % CI 57-67 %)" in words and "would clear 72 %" in words
    result = {"refer": True, "probability": 0.2, "threshold": 0.05}
    rationale = referral_rationale(result, {"operating_point": point})
    assert rationale.startswith("refer: the melanoma probability 20.00 % is at or above the referral threshold 5.00 %")
    assert "referred 93 % (95 % CI 88-98 %) of melanomas and cleared 62 % (95 % CI 57-67 %)" in rationale
    old_point = {"threshold": 0.05, "target_sensitivity": 0.9, "calibration": "sigmoid"}  # a card of melagbm 0.1
    old_performance = {"metrics": {"sensitivity": {"value": 0.93, "ci_low": 0.8, "ci_high": 1.0}}}
    old = " ".join(operating_point_lines(old_point, old_performance))
    assert "read off the predictions that chose it" in old and "optimistic for new patients" in old
    assert "not estimated for this model" in referral_rationale(result, {"operating_point": old_point})
