"""Lesion pooling: the images of one lesion read as one, on real HAM10000 lesions."""

from __future__ import annotations

import numpy as np
import pytest

from melagbm import FusionClassifier, load
from melagbm.pooling import pool_by_lesion


@pytest.fixture(scope="module")
def fitted(ham_sample):
    X, y, _ = ham_sample
    return FusionClassifier(random_state=0, n_seeds=1, verbose=0).fit(X, y)


@pytest.fixture(scope="module")
def unpooled(ham_sample):
    X, y, _ = ham_sample
    return FusionClassifier(random_state=0, n_seeds=1, verbose=0, lesion_col=None).fit(X, y)


def _repeated_lesion(X):
    counts = X["lesion_id"].map(X["lesion_id"].value_counts())
    first = X.loc[counts > 1, "lesion_id"].iloc[0]
    return X[X["lesion_id"] == first]


def test_values_are_averaged_over_each_lesions_rows(ham_sample) -> None:
    X, _, groups = ham_sample
    values = np.random.default_rng(0).normal(size=(len(X), 3))
    values[5, :] = np.nan  # an unreadable image: stays NaN, joins no mean
    pooled = pool_by_lesion(values, groups.to_numpy())
    lesion = groups.to_numpy()
    for row in range(0, len(X), 17):
        same = (lesion == lesion[row]) & ~np.isnan(values[:, 0])
        expected = np.full(3, np.nan) if row == 5 else values[same].mean(axis=0)
        np.testing.assert_allclose(pooled[row], expected)
    alone = (groups.map(groups.value_counts()) == 1).to_numpy()
    assert alone.any() and (~alone).any()  # the sample has single and repeated lesions
    np.testing.assert_allclose(pool_by_lesion(values[:, 0], lesion)[alone & ~np.isnan(values[:, 0])],
                               values[alone & ~np.isnan(values[:, 0]), 0])
    gap = lesion.astype(object)
    gap[[3, 8]] = None
    with pytest.raises(ValueError, match=r"lesion ids are missing at positions \[3, 8\]"):
        pool_by_lesion(values, gap)


def test_a_lesions_images_get_one_reading(fitted, unpooled, ham_sample) -> None:
    X, _, _ = ham_sample
    assert fitted.lesion_col_ == "lesion_id" and fitted.lesion_pooling_ is not None
    assert unpooled.lesion_pooling_ is None
    assert fitted.feature_names_ == unpooled.feature_names_  # pooling adds no feature; lesion_id is none
    assert not any("lesion_id" in name for name in fitted.feature_names_)
    lesion = _repeated_lesion(X)
    together = fitted.predict_proba(lesion)[:, 1]
    assert np.ptp(together) == 0  # one probability for the lesion
    alone = np.concatenate([fitted.predict_proba(lesion.iloc[[i]])[:, 1] for i in range(len(lesion))])
    assert np.ptp(alone) > 0  # each image alone keeps its own reading
    margins = np.log(alone / (1 - alone))  # the calibration is monotone in the margin: pooled lies between
    pooled = np.log(together[0] / (1 - together[0]))
    assert margins.min() < pooled < margins.max()
    decisions = fitted.predict(lesion)
    assert len(set(decisions)) == 1


def test_pooled_explanation_adds_up_to_the_pooled_margin(fitted, ham_sample) -> None:
    X, _, _ = ham_sample
    rows = X.head(40)
    explanation = fitted.explain(rows)
    margin = explanation.values.sum(axis=1) + explanation.base_values
    from melagbm.boosting import margin as booster_margin

    raw = booster_margin(fitted.booster_, fitted.transform_features(rows))
    np.testing.assert_allclose(margin, pool_by_lesion(raw, rows["lesion_id"].to_numpy()), atol=1e-6)
    grouped = fitted.explain(rows, grouped=True)
    np.testing.assert_allclose(grouped.values.sum(axis=1), explanation.values.sum(axis=1), atol=1e-6)


def test_missing_lesion_ids_are_named(fitted, ham_sample) -> None:
    X, _, _ = ham_sample
    gap = X.head(30).copy()
    gap.loc[gap.index[4], "lesion_id"] = None
    with pytest.raises(ValueError, match=rf"column 'lesion_id' .* rows \[{gap.index[4]!r}\].*lesion_col=None"):
        fitted.predict_proba(gap)


def test_saved_and_loaded_it_still_pools(fitted, ham_sample, tmp_path) -> None:
    X, _, _ = ham_sample
    again = load(fitted.save(tmp_path / "pooled.melagbm"))
    assert again.lesion_col_ == "lesion_id" and again.lesion_pooling_ is not None
    np.testing.assert_allclose(again.predict_proba(X), fitted.predict_proba(X))


def test_the_lesion_column_is_never_metadata_and_groups_the_splits(ham_sample) -> None:
    X, y, _ = ham_sample
    renamed = X.drop(columns="image").rename(columns={"lesion_id": "lesion"})
    model = FusionClassifier(image_col=None, lesion_col="lesion", verbose=0).fit(renamed, y)
    assert model.lesion_pooling_ is None  # nothing to pool without images
    assert model.feature_names_ == ["age__years", "sex__category", "site__general"]
    assert model.n_groups_ == X["lesion_id"].nunique()
    with pytest.raises(ValueError, match="no column 'lesion'"):
        FusionClassifier(lesion_col="lesion").fit(X, y)
