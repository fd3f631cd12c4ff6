from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score, roc_curve

from melagbm.evaluation import (
    metrics_table,
    partial_auc,
    roc_auc,
    sensitivity_at_specificity,
    specificity_at_sensitivity,
    threshold_for_sensitivity,
)


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


def _challenge_partial_auc(solution, submission, min_tpr=0.80):
    """The ISIC 2024 challenge's public scoring formula, as published."""
    v_gt = abs(np.asarray(solution) - 1)
    v_pred = np.array([1.0 - x for x in submission])
    max_fpr = abs(1 - min_tpr)
    partial_auc_scaled = roc_auc_score(v_gt, v_pred, max_fpr=max_fpr)
    return 0.5 * max_fpr**2 + (max_fpr - 0.5 * max_fpr**2) / (1.0 - 0.5) * (partial_auc_scaled - 0.5)


def _random_labels(rng: np.random.Generator, sizes: tuple[int, int], prevalences: tuple[float, float]) -> np.ndarray:
    """0/1 labels of random length and prevalence, both classes present."""
    n = int(rng.integers(*sizes))
    y = (rng.random(n) < rng.uniform(*prevalences)).astype(int)
    y[:2] = [0, 1]
    return y


@pytest.mark.parametrize("seed", range(25))
def test_partial_auc_agrees_with_the_challenge_formula(seed) -> None:
    rng = np.random.default_rng(seed)
    y = _random_labels(rng, (20, 3000), (0.01, 0.5))
    n = len(y)
    score = np.round(rng.random(n) + 0.5 * y * rng.random(), int(rng.integers(1, 4)))  # many ties
    for min_tpr in (0.8, 0.9, 0.5):
        assert abs(partial_auc(y, score, min_tpr) - _challenge_partial_auc(y, score, min_tpr)) < 1e-9


def test_threshold_reaches_the_target_sensitivity() -> None:
    rng = np.random.default_rng(0)
    y = (rng.random(2000) < 0.05).astype(int)
    score = np.round(y * 0.3 + rng.random(2000), 2)
    for target in (0.5, 0.8, 0.9, 0.95, 1.0):
        threshold = threshold_for_sensitivity(y, score, target)
        sensitivity = np.mean(score[y == 1] >= threshold)
        assert sensitivity >= target
        assert np.mean(score[y == 1] > threshold) < target  # the highest such threshold


def test_metrics_table_on_a_known_case() -> None:
    y = np.array([0, 0, 0, 0, 1, 1])
    proba = np.array([0.1, 0.2, 0.3, 0.6, 0.5, 0.9])
    groups = np.array(["a", "a", "b", "b", "a", "a"])
    table = metrics_table(y, proba, predicted=(proba >= 0.5).astype(int), groups=groups, n_bootstrap=0)
    assert table.loc["roc_auc", "value"] == pytest.approx(7 / 8)
    assert table.loc["sensitivity", "value"] == 1.0 and table.loc["specificity", "value"] == 0.75
    assert table.loc["brier", "value"] == pytest.approx(np.mean((proba - y) ** 2))
    # patient a: 0.9 (melanoma) first, 0.5 (melanoma) second; patient b has none
    assert table.loc["top_k_sensitivity", "value"] == 0.5
    assert np.isnan(table.loc["roc_auc", "ci_low"])


def test_specificity_at_sensitivity_mirrors_sensitivity_at_specificity() -> None:
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    score = np.array([0.1, 0.2, 0.3, 0.7, 0.4, 0.6, 0.8, 0.9])
    assert specificity_at_sensitivity(y, score, 1.0) == 0.75
    assert specificity_at_sensitivity(y, score, 0.5) == 1.0
    assert sensitivity_at_specificity(y, score, 0.75) == 1.0


def test_bootstrap_resamples_whole_groups() -> None:
    """Each patient's rows move together: images that duplicate each other add no evidence."""
    rng = np.random.default_rng(1)
    groups = np.repeat(np.arange(150), 2)
    y = np.repeat((rng.random(150) < 0.3).astype(int), 2)
    proba = np.repeat(rng.random(150) * 0.7, 2) + 0.3 * y
    table = metrics_table(y, proba, groups=groups, n_bootstrap=300, random_state=0)
    low, value, high = table.loc["roc_auc", ["ci_low", "value", "ci_high"]]
    assert low < value < high and high - low < 0.2
    rows_only = metrics_table(y, proba, n_bootstrap=300, random_state=0)
    # every row twice: resampling rows pretends twice the evidence, so its interval is narrower
    width = lambda t: t.loc["roc_auc", "ci_high"] - t.loc["roc_auc", "ci_low"]  # noqa: E731
    assert width(rows_only) < width(table)


@pytest.mark.parametrize("seed", range(8))
def test_the_table_agrees_with_scikit_learn_and_the_challenge(seed) -> None:
    """The bootstrap's fast curve arithmetic gives scikit-learn's numbers, ties and weights included."""
    from sklearn.metrics import average_precision_score, balanced_accuracy_score, brier_score_loss, f1_score

    from melagbm.evaluation.curves import WeightedCurves
    from melagbm.evaluation.metrics import _point_metrics

    rng = np.random.default_rng(seed)
    y = _random_labels(rng, (50, 2000), (0.02, 0.4))
    n = len(y)
    proba = np.round(np.clip(0.3 * y + rng.random(n) * 0.7, 0, 1), int(rng.integers(1, 3)))
    predicted = (proba >= 0.5).astype(int)
    weight = rng.integers(0, 4, n).astype(float) if seed % 2 else np.ones(n)
    weight[:2] = 1.0
    got = _point_metrics(WeightedCurves(y, proba), y, proba, predicted, None, weight)
    expected = {
        "roc_auc": roc_auc(y, proba, sample_weight=weight),
        "pauc_80": partial_auc(y, proba, sample_weight=weight),
        "sens_at_spec90": sensitivity_at_specificity(y, proba, 0.9, sample_weight=weight),
        "sens_at_spec95": sensitivity_at_specificity(y, proba, 0.95, sample_weight=weight),
        "spec_at_sens95": specificity_at_sensitivity(y, proba, 0.95, sample_weight=weight),
        "average_precision": average_precision_score(y, proba, sample_weight=weight),
        "brier": brier_score_loss(y, proba, sample_weight=weight),
        "balanced_accuracy": balanced_accuracy_score(y, predicted, sample_weight=weight),
        "f1": f1_score(y, predicted, sample_weight=weight),
    }
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, abs=1e-9), name
    if seed % 2 == 0:
        assert got["pauc_80"] == pytest.approx(_challenge_partial_auc(y, proba), abs=1e-9)


def test_sensitivity_at_specificity_uses_every_threshold() -> None:
    """Collinear ROC points that scikit-learn's drop_intermediate removes are still operating points."""
    y = np.array([1] * 5 + [0, 1, 0, 1] + [1, 1, 1] + [0] * 18)  # two tied (benign, melanoma) pairs
    score = np.array([100, 99, 98, 97, 96, 90, 90, 80, 80, 5, 4, 3] + list(range(-18, 0)), dtype=float)
    fpr, tpr, _ = roc_curve(y, score)  # drops (0.05, 0.6), between (0, 0.5) and (0.1, 0.7)
    assert tpr[fpr <= 0.05].max() == 0.5
    assert sensitivity_at_specificity(y, score, 0.95) == 0.6  # threshold 90 reaches it
    table = metrics_table(y, score / 100, n_bootstrap=0)
    assert table.loc["sens_at_spec95", "value"] == 0.6


def test_calibration_plot_shows_each_bins_count(isic_root) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from melagbm import FusionClassifier
    from melagbm.datasets import load_isic2020
    from melagbm.evaluation import cross_validate
    from melagbm.evaluation.plots import plot_calibration

    X, y, groups = load_isic2020(isic_root, metadata="ISIC_2020_Training_GroundTruth.csv", image_dir=None,
                                 n_samples=3000, positive_fraction=0.05, random_state=1)
    oof = cross_validate(FusionClassifier(image_col=None, random_state=0, verbose=0), X, y, groups, n_splits=3,
                         n_bootstrap=0, verbose=0).oof
    ax = plot_calibration(oof["y"], oof["proba"], show=False)
    counts = [text.get_text().split("/") for text in ax.texts]  # "melanomas/lesions" per bin
    assert len(counts) >= 5 and all(len(c) == 2 for c in counts)
    assert sum(int(lesions) for _, lesions in counts) == len(oof)  # every lesion in one bin
    assert sum(int(melanomas) for melanomas, _ in counts) == int(oof["y"].sum())
    renderer = ax.figure.canvas.get_renderer()
    boxes = [text.get_window_extent(renderer) for text in ax.texts]
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])  # every label legible
    plt.close("all")


def test_one_class_labels_are_named_as_such() -> None:
    from melagbm.evaluation import cross_validate

    with pytest.raises(ValueError, match="y holds one class only: every row is 0 \\(non-melanomas\\)"):
        cross_validate(None, np.zeros((10, 2)), np.zeros(10, dtype=int))


def test_the_roc_curve_has_a_band_from_resamples_of_whole_groups() -> None:
    import matplotlib

    matplotlib.use("Agg")
    from sklearn.metrics import roc_curve

    from melagbm.evaluation.plots import plot_roc, roc_band

    rng = np.random.default_rng(0)
    y = np.repeat((rng.random(300) < 0.2).astype(int), 3)  # each lesion imaged three times
    score = np.repeat(rng.normal(size=300), 3) + 1.2 * y
    groups = np.repeat(np.arange(300), 3)
    grid = np.linspace(0, 1, 101)
    fpr, tpr, _ = roc_curve(y, score)
    curve = tpr[np.searchsorted(fpr, grid, side="right") - 1]
    low, high = roc_band(y, score, groups, grid, 200)
    assert np.mean((low <= curve + 1e-12) & (curve <= high + 1e-12)) > 0.95 and np.all(low <= high)
    rows_low, rows_high = roc_band(y, score, None, grid, 200)
    assert np.mean(high - low) > 1.3 * np.mean(rows_high - rows_low)  # a third of the independent units
    ax = plot_roc(y, score, groups=groups, show=False)
    assert any("95 % band (200 resamples of groups)" in text.get_text() for text in ax.get_legend().get_texts())
    assert plot_roc(y, score, n_bootstrap=0, show=False).get_legend().get_texts()[-1].get_text().startswith("partial")
