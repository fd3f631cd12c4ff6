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
                        validation_fraction=0.2, n_iter_no_change=30, n_jobs=1, n_members=3)
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
                            validation_fraction=0.2, n_iter_no_change=patience, n_jobs=1)
        return step.fit([table], y, groups, device="cpu", seed=0).booster_.n_estimators

    assert rounds({"metric": "auc"}) == rounds(None) < 2000
    assert rounds({"n_estimators": 300}, patience=0) == 300  # no patience: every round kept, as on Dask
    with pytest.raises(ValueError, match="n_repeats"):
        ImageSignal(n_repeats=0).fit_transform(embeddings, y, groups)


def test_each_table_has_its_own_fold_partitions(embedded) -> None:
    embeddings, y, groups = embedded
    signal = ImageSignal(n_repeats=2, random_state=5)
    tables = signal.fit_transform_tables(embeddings, y, groups, n_tables=3)
    for index, table in enumerate(tables):  # table t averages the partitions seeded 5 + 2t and 5 + 2t + 1
        alone = ImageSignal(n_repeats=2, random_state=5 + 2 * index).fit_transform(embeddings, y, groups)
        np.testing.assert_allclose(table["image__score"], alone["image__score"], rtol=1e-6, atol=1e-9)
    assert not np.allclose(tables[0]["image__score"], tables[1]["image__score"])
    np.testing.assert_allclose(tables[0]["image__score"], signal.fit_transform(embeddings, y, groups)["image__score"])


def test_boosters_averaged_each_stop_on_their_own_split(embedded) -> None:
    import pandas as pd

    from melagbm.boosting import BoosterAverage, margin

    embeddings, y, groups = embedded
    tables = [pd.DataFrame(embeddings[:, start:start + 20], columns=[f"f{i}" for i in range(20)])
              for start in (0, 20, 40)]  # three versions of the columns, as the image scores differ
    step = BoostingStep(booster="lightgbm", params=None, class_weight=None, early_stopping=True,
                        validation_fraction=0.2, n_iter_no_change=30, n_jobs=1, n_members=3)
    booster = step.fit(tables, y, groups, device="cpu", seed=0).booster_
    assert isinstance(booster, BoosterAverage) and len(booster) == 3
    splits = step.validation_splits(y, groups, seed=0)
    for index, (table, split) in enumerate(zip(tables, splits)):
        estimator = step.estimator(device="cpu", seed=index, n_rows=len(table))
        alone, rounds = fit_booster(estimator, table, y, sample_weight=None, validation=split, n_iter_no_change=30)
        assert booster.rounds[index] == rounds
        np.testing.assert_allclose(booster.members[index].predict(table, raw_score=True),
                                   alone.predict(table, raw_score=True))
    mean = np.mean([member.predict(tables[0], raw_score=True) for member in booster.members], axis=0)
    np.testing.assert_allclose(margin(booster, tables[0]), mean)
    assert np.allclose(booster.predict_proba(tables[0])[:, 1], 1 / (1 + np.exp(-mean)))
    with pytest.raises(ValueError, match="n_members=3 got 1 tables"):
        step.fit(tables[:1], y, groups, device="cpu", seed=0)


def test_early_stopping_counts_every_patient_with_a_melanoma(isic_root) -> None:
    from melagbm.boosting._step import class_units
    from melagbm.datasets import load_isic2020

    _, y, groups = load_isic2020(isic_root)
    y, groups = y.to_numpy(), groups.to_numpy()
    with_melanoma = len(np.unique(groups[y == 1]))
    first_rows = y[np.unique(groups, return_index=True)[1]]
    assert first_rows.sum() < 10 <= with_melanoma  # why counting first rows turned early stopping off here
    assert list(class_units(y, groups)) == [len(np.unique(groups[y == 0])), with_melanoma]
    step = BoostingStep(booster="lightgbm", params=None, class_weight=None, early_stopping="auto",
                        validation_fraction=0.15, n_iter_no_change=50, n_jobs=1)
    assert step.validation_splits(y, groups, seed=0) is not None


def test_the_default_model_averages_five_boosters_and_saves_them(ham_sample, tmp_path) -> None:
    import zipfile

    from melagbm import load
    from melagbm.boosting import BoosterAverage
    from melagbm.card import to_markdown

    X, y, groups = ham_sample
    model = FusionClassifier(**PARAMS).fit(X[:220], y[:220], groups=groups[:220])
    assert isinstance(model.booster_, BoosterAverage) and len(model.booster_) == model.n_seeds == 5
    assert model.n_estimators_ == sum(model.booster_.rounds)
    assert model.model_card_["model"]["member_rounds"] == model.booster_.rounds
    rounds = model.booster_.rounds
    assert f"5 boosters averaged ({min(rounds)}-{max(rounds)} rounds each)" in to_markdown(model.model_card_)
    path = model.save(tmp_path / "averaged.melagbm")
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
    assert {"booster.lgbm.txt", "booster.1.lgbm.txt", "booster.4.lgbm.txt"} <= names
    np.testing.assert_array_equal(load(path).predict_proba(X[220:]), model.predict_proba(X[220:]))
    single = FusionClassifier(**PARAMS, n_seeds=1).fit(X[:220], y[:220], groups=groups[:220])
    assert not isinstance(single.booster_, BoosterAverage)  # one booster, saved as 0.1 saved it


def test_fold_probes_fit_in_the_span_of_the_rows_with_the_same_scores(embedded) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from melagbm.features.image_score import fold_basis

    embeddings, y, _ = embedded
    rows = embeddings[:200]
    basis = fold_basis(rows)
    assert basis.shape == (200, 200) < rows.shape  # fewer rows than dimensions: one column per row
    standardised = StandardScaler().fit_transform(rows)
    train, test = np.arange(150), np.arange(150, 200)
    C = 2.0 / rows.shape[1]
    direct = LogisticRegression(C=C, max_iter=3000, tol=1e-8).fit(standardised[train], y[:200][train])
    rotated = LogisticRegression(C=C, max_iter=3000, tol=1e-8).fit(basis[train], y[:200][train])
    np.testing.assert_allclose(rotated.decision_function(basis[test]), direct.decision_function(standardised[test]),
                               atol=1e-3)
    assert fold_basis(embeddings[:, :100]).shape == (len(embeddings), 100)  # more rows than dimensions: as is
