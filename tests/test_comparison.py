"""Paired comparison of two models' scores on real ISIC 2020 metadata (33,126 images, 2,056 patients)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from melagbm.evaluation import COMPARED_METRICS, compare_scores, metrics_table
from melagbm.evaluation.curves import bootstrap_weights


@pytest.fixture(scope="module")
def isic_metadata(isic_root: Path) -> tuple[pd.Series, pd.Series, pd.Series]:
    """(labels, age as a score, patient ids) of the full ISIC 2020 metadata: older, more melanoma."""
    from melagbm.datasets import load_isic2020

    X, y, groups = load_isic2020(isic_root, metadata="ISIC_2020_Training_GroundTruth.csv", image_dir=None)
    age = X["age"].fillna(X["age"].median()).astype(float)
    return y, age, groups


def test_each_models_value_is_its_own_metric(isic_metadata) -> None:
    y, age, groups = isic_metadata
    chance = np.random.default_rng(0).random(len(age))  # a model that knows nothing
    table = compare_scores(y, age, chance, groups=groups, n_bootstrap=0)
    own = metrics_table(y, age, groups=groups, n_bootstrap=0)
    assert list(table.index) == list(COMPARED_METRICS)
    for metric in COMPARED_METRICS:
        assert table.loc[metric, "a"] == pytest.approx(own.loc[metric, "value"], abs=1e-12)
    assert table.loc["roc_auc", "b"] == pytest.approx(roc_auc_score(y, chance), abs=1e-12)
    assert table.loc["roc_auc", "difference"] == pytest.approx(roc_auc_score(y, chance) - roc_auc_score(y, age))
    assert table[["ci_low", "ci_high", "p_value"]].isna().all().all()  # no resamples, no intervals


def test_a_model_against_itself_differs_by_nothing(isic_metadata) -> None:
    y, age, groups = isic_metadata
    table = compare_scores(y, age, age, groups=groups, n_bootstrap=100)
    assert (table["difference"] == 0).all() and (table["ci_low"] == 0).all() and (table["ci_high"] == 0).all()
    assert (table["p_value"] == 1).all()  # every resample ties at 0: as far from a difference as can be


def test_the_paired_interval_is_the_differences_not_the_patients(isic_metadata) -> None:
    """Age against age with a little noise: each model's own interval is wide, their difference's narrow."""
    y, age, groups = isic_metadata
    noisy = age + np.random.default_rng(1).normal(0, 2.0, len(age))
    table = compare_scores(y, age, noisy, groups=groups, n_bootstrap=300, random_state=0)
    low, difference, high = table.loc["roc_auc", ["ci_low", "difference", "ci_high"]]
    own = metrics_table(y, age, groups=groups, n_bootstrap=300, random_state=0).loc["roc_auc"]
    assert low <= difference <= high
    assert high - low < (own["ci_high"] - own["ci_low"]) / 4


def test_a_worse_model_is_found_worse(isic_metadata) -> None:
    """Age turned upside down ranks melanomas low: its ROC AUC is 1 - age's, beyond the interval."""
    y, age, groups = isic_metadata
    table = compare_scores(y, age, -age, groups=groups, n_bootstrap=300, random_state=0)
    auc = roc_auc_score(y, age)
    assert table.loc["roc_auc", "difference"] == pytest.approx((1 - auc) - auc)
    assert table.loc["roc_auc", "ci_high"] < 0 and table.loc["roc_auc", "p_value"] == pytest.approx(2 / 301)


def test_several_fits_are_averaged(isic_metadata) -> None:
    y, age, groups = isic_metadata
    rng = np.random.default_rng(2)
    fits = np.column_stack([age + rng.normal(0, 5.0, len(age)) for _ in range(3)])
    table = compare_scores(y, age, fits, groups=groups, n_bootstrap=50, random_state=0)
    mean_auc = np.mean([roc_auc_score(y, fits[:, column]) for column in range(3)])
    assert table.loc["roc_auc", "b"] == pytest.approx(mean_auc, abs=1e-12)
    assert table.loc["roc_auc", "ci_low"] <= table.loc["roc_auc", "difference"] <= table.loc["roc_auc", "ci_high"]


def test_bootstrap_weights_draw_whole_groups(isic_metadata) -> None:
    y, _, groups = isic_metadata
    codes = pd.factorize(groups)[0]
    labels = y.to_numpy()
    for weight in bootstrap_weights(labels, codes, 5, np.random.default_rng(0)):
        per_group = pd.Series(weight).groupby(codes).agg(["min", "max"])
        assert (per_group["min"] == per_group["max"]).all()  # a patient's images move together
        assert weight[labels == 1].sum() > 0 and weight[labels == 0].sum() > 0


def _synthetic(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(labels, score a, score b that is a little better, groups of 4 rows)."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.2).astype(int)
    return y, y + rng.normal(0, 1.0, n), y + rng.normal(0, 0.8, n), np.arange(n) // 4


def test_the_p_value_is_two_sided_and_counts_the_far_side() -> None:
    """Recomputed by hand from the same resamples: 2 (k + 1) / (B + 1), k the resamples on the far side of 0."""
    y, a, b, groups = _synthetic()
    table = compare_scores(y, a, b, groups=groups, n_bootstrap=400, random_state=3)
    draws = np.array([roc_auc_score(y, b, sample_weight=w) - roc_auc_score(y, a, sample_weight=w)
                      for w in bootstrap_weights(y, groups, 400, np.random.default_rng(3))])
    far = min((draws <= 0).sum(), (draws >= 0).sum())
    assert table.loc["roc_auc", "p_value"] == pytest.approx(min(1.0, 2 * (far + 1) / (len(draws) + 1)))
    assert table.loc["roc_auc", "ci_low"] == pytest.approx(np.quantile(draws, 0.025))
    swapped = compare_scores(y, b, a, groups=groups, n_bootstrap=400, random_state=3)
    assert swapped.loc["roc_auc", "p_value"] == table.loc["roc_auc", "p_value"]  # two-sided: the order is no matter
    assert swapped.loc["roc_auc", "ci_high"] == pytest.approx(-table.loc["roc_auc", "ci_low"])


def test_without_groups_rows_are_drawn_alone() -> None:
    """Rows in groups of 4 with the same score: drawn alone they pretend 4 times the evidence, a narrower interval."""
    y, a, b, _ = _synthetic()
    by_group, by_row = (
        compare_scores(np.repeat(y, 4), np.repeat(a, 4), np.repeat(b, 4), groups=grouping, n_bootstrap=300)
        for grouping in (np.repeat(np.arange(len(y)), 4), None)
    )
    width = lambda table: table.loc["roc_auc", "ci_high"] - table.loc["roc_auc", "ci_low"]  # noqa: E731
    assert width(by_row) < 0.7 * width(by_group)


def test_several_fits_on_either_side() -> None:
    y, a, b, groups = _synthetic()
    table = compare_scores(y, np.column_stack([a, b]), b, groups=groups, n_bootstrap=0)
    assert table.loc["roc_auc", "a"] == pytest.approx((roc_auc_score(y, a) + roc_auc_score(y, b)) / 2)


def test_bad_scores_are_named() -> None:
    y, a, b, groups = _synthetic()
    with pytest.raises(ValueError, match=r"score_b has shape \(10,\)"):
        compare_scores(y, a, b[:10], groups=groups)
    with pytest.raises(ValueError, match=r"score_b has shape \(400, 0\)"):
        compare_scores(y, a, np.empty((400, 0)))
    broken = a.copy()
    broken[[3, 7]] = np.nan
    with pytest.raises(ValueError, match=r"score_a has non-finite values at rows \[3, 7\]"):
        compare_scores(y, broken, b)
    with pytest.raises(ValueError, match="score_a must hold numbers"):
        compare_scores(y, ["high"] * 400, b)
    with pytest.raises(ValueError, match="groups has 5 rows but y_true has 400"):
        compare_scores(y, a, b, groups=[0, 1, 2, 3, None])
    with pytest.raises(ValueError, match="y_true holds one class only"):
        compare_scores(np.zeros(400), a, b)
    labels = y.astype(float)
    labels[5] = np.nan
    with pytest.raises(ValueError, match=r"y_true must be 0/1 .*\(rows \[5\]\)"):
        compare_scores(labels, a, b)
    with pytest.raises(ValueError, match="confidence must lie in"):
        compare_scores(y, a, b, confidence=95)
    with pytest.raises(ValueError, match="n_bootstrap must be >= 0"):
        compare_scores(y, a, b, n_bootstrap=-1)


def test_series_are_paired_by_index_not_silently_by_position() -> None:
    y, a, _, _ = _synthetic()
    index = pd.Index([f"ISIC_{row:07d}" for row in range(len(y))])
    labels, score = pd.Series(y, index=index), pd.Series(a, index=index)
    shuffled = score.sample(frac=1.0, random_state=0)
    with pytest.raises(ValueError, match=r"score_b's index does not match y_true's.*\.loc\[y_true\.index\]"):
        compare_scores(labels, score, shuffled)
    same = compare_scores(labels, score, shuffled.loc[labels.index], n_bootstrap=20)
    assert (same["difference"] == 0).all()


def test_a_resample_of_one_class_is_left_out() -> None:
    y = np.array([0, 1])
    weights = list(bootstrap_weights(y, np.array([0, 1]), 200, np.random.default_rng(0)))
    assert 0 < len(weights) < 200  # drawing one row twice gives one class: about half the draws
    assert all(weight.tolist() == [1.0, 1.0] for weight in weights)
