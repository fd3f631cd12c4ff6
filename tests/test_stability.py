"""Reproducible by default, steadier on small data: n_seeds averages the internal splits (issue 18)."""

from __future__ import annotations

import numpy as np
import pytest

from melagbm import FusionClassifier, ImageEmbedder
from melagbm.boosting import BoostingStep, adapter_for, fit_booster
from melagbm.features.image_score import MAX_REPEATS, ImageSignal

PARAMS = {"backbone": "tf_efficientnet_lite0", "lesion_features": False, "verbose": 0}


@pytest.fixture(scope="module")
def embedded(ham_sample):
    X, y, groups = ham_sample
    embeddings = ImageEmbedder(layers=4, verbose=0).fit().transform(X["image"])
    return embeddings, y.to_numpy(), groups.to_numpy()


def test_the_same_data_gives_the_same_model_by_default(ham_sample) -> None:
    X, y, groups = ham_sample
    first = FusionClassifier(**PARAMS).fit(X[:220], y[:220], groups=groups[:220])
    second = FusionClassifier(**PARAMS).fit(X[:220], y[:220], groups=groups[:220])
    np.testing.assert_array_equal(first.predict_proba(X[220:]), second.predict_proba(X[220:]))
    assert first.n_estimators_ == second.n_estimators_
    other = FusionClassifier(**PARAMS, random_state=None).fit(X[:220], y[:220], groups=groups[:220])
    assert other.random_state is None and np.isfinite(other.predict_proba(X[220:])).all()


def test_out_of_fold_scores_are_averaged_over_fold_partitions(embedded) -> None:
    embeddings, y, groups = embedded
    averaged = ImageSignal(n_repeats=3, random_state=7).fit_transform(embeddings, y, groups)
    singles = [ImageSignal(n_repeats=1, random_state=seed).fit_transform(embeddings, y, groups)
               for seed in (7, 8, 9)]
    np.testing.assert_allclose(averaged["image__score"], np.mean([s["image__score"] for s in singles], axis=0),
                               rtol=1e-6, atol=1e-9)
    assert not np.allclose(singles[0]["image__score"], singles[1]["image__score"])  # partitions differ
    auto = ImageSignal(n_repeats="auto")
    assert [auto.repeats(n) for n in (100, 661, 2160, 8000, 20000)] == [MAX_REPEATS, 15, 4, 1, 1]


def test_rounds_come_from_the_mean_validation_curve_of_several_splits(embedded) -> None:
    import pandas as pd

    embeddings, y, groups = embedded
    table = pd.DataFrame(embeddings[:, :20], columns=[f"f{i}" for i in range(20)])
    step = BoostingStep(booster="lightgbm", params=None, class_weight=None, early_stopping=True,
                        validation_fraction=0.2, n_iter_no_change=30, n_jobs=1, n_splits=3)
    splits = step.validation_splits(y, groups, seed=0)
    assert len(splits) == 3
    validation_sets = [set(groups[val]) for _, val in splits]
    assert all(not (a & b) for i, a in enumerate(validation_sets) for b in validation_sets[i + 1:])  # disjoint
    estimator = step.estimator(device="cpu", seed=0, n_rows=len(table))
    adapter = adapter_for(estimator)
    curves = [adapter.validation_curve(estimator, table.iloc[tr], y[tr], None, table.iloc[va], y[va], 30)
              for tr, va in splits]
    common = min(map(len, curves))
    expected = int(np.argmin(np.mean([c[:common] for c in curves], axis=0))) + 1
    _, rounds = fit_booster(estimator, table, y, sample_weight=None, validation=splits, n_iter_no_change=30)
    assert rounds == expected
    _, single = fit_booster(estimator, table, y, sample_weight=None, validation=splits[0], n_iter_no_change=30)
    assert single == int(np.argmin(curves[0])) + 1


def test_n_seeds_is_checked_before_any_image_is_read(ham_sample) -> None:
    X, y, groups = ham_sample
    for bad in (0, 2.5, True, "5"):
        with pytest.raises(ValueError, match="n_seeds"):
            FusionClassifier(**PARAMS, n_seeds=bad, image_col="absent").fit(X, y, groups=groups)


def test_probe_regularisation_can_be_chosen_by_grouped_cross_validation(embedded) -> None:
    from scipy.special import expit
    from sklearn.metrics import log_loss

    from melagbm.features.image_score import CV_C_FACTORS

    embeddings, y, groups = embedded
    chosen = ImageSignal(probe_C="cv", random_state=3)
    oof = chosen.fit_transform(embeddings, y, groups)["image__score"]
    width = embeddings.shape[1]
    losses = {factor: log_loss(y, expit(ImageSignal(probe_C=factor * 2 / width, random_state=3)
                                        .fit_transform(embeddings, y, groups)["image__score"]))
              for factor in CV_C_FACTORS}
    best = min(losses, key=losses.get)
    assert chosen.C_ == pytest.approx(best * 2 / width)
    assert log_loss(y, expit(oof)) == pytest.approx(losses[best])
    assert chosen.probe_[-1].C == pytest.approx(chosen.C_)  # the final probe uses the chosen C


def test_early_stopping_watches_the_log_loss_whatever_the_metric(embedded) -> None:
    import pandas as pd

    embeddings, y, groups = embedded
    table = pd.DataFrame(embeddings[:, :20], columns=[f"f{i}" for i in range(20)])

    def rounds(params: dict | None, patience: int = 30) -> int:
        step = BoostingStep(booster="lightgbm", params=params, class_weight=None, early_stopping=True,
                            validation_fraction=0.2, n_iter_no_change=patience, n_jobs=1, n_splits=3)
        return step.fit(table, y, groups, device="cpu", seed=0).booster_.n_estimators

    assert rounds({"metric": "auc"}) == rounds(None) < 2000
    assert rounds({"n_estimators": 300}, patience=0) == 300  # no patience: every round kept, as on Dask
    with pytest.raises(ValueError, match="n_repeats"):
        ImageSignal(n_repeats=0).fit_transform(embeddings, y, groups)
