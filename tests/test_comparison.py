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
    assert (table["p_value"] == 1).all()


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
    assert table.loc["roc_auc", "ci_high"] < 0 and table.loc["roc_auc", "p_value"] < 0.01


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


def test_a_resample_of_one_class_is_left_out() -> None:
    y = np.array([0, 1])
    weights = list(bootstrap_weights(y, np.array([0, 1]), 200, np.random.default_rng(0)))
    assert 0 < len(weights) < 200  # drawing one row twice gives one class: about half the draws
    assert all(weight.tolist() == [1.0, 1.0] for weight in weights)


def test_bad_scores_are_named(isic_metadata) -> None:
    y, age, groups = isic_metadata
    with pytest.raises(ValueError, match=r"score_b has shape \(10,\)"):
        compare_scores(y, age, age[:10], groups=groups)
    broken = age.copy()
    broken.iloc[3] = np.nan
    with pytest.raises(ValueError, match=rf"score_a has non-finite values at rows \['{age.index[3]}'\]"):
        compare_scores(y, broken, age, groups=groups)
    with pytest.raises(ValueError, match="groups has 5 entries but y_true has"):
        compare_scores(y, age, age, groups=groups[:5])
    with pytest.raises(ValueError, match="y_true holds one class only"):
        compare_scores(np.zeros(len(y)), age, age)
