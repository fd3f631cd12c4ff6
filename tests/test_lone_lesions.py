"""A lesion screened alone is scored by the model fitted without patient context (synthetic lesions; no data needed)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from melagbm import FusionClassifier, load
from melagbm.boosting import margin as booster_margin
from melagbm.card import to_markdown
from melagbm.lone_lesions import lone_rows

pytestmark = pytest.mark.filterwarnings("ignore::melagbm.exceptions.WeakModelWarning")  # 60 synthetic patients


@pytest.fixture(scope="module")
def synthetic():
    from melagbm.datasets import make_synthetic

    X, y, groups = make_synthetic(220, random_state=1)
    return X.assign(patient_id=groups.to_numpy()), y, groups


@pytest.fixture(scope="module")
def model(synthetic):
    X, y, groups = synthetic
    train = groups.isin(groups.unique()[:60]).to_numpy()
    return FusionClassifier(backbone="tf_efficientnet_lite0", n_seeds=2, verbose=0).fit(
        X[train], y[train], groups=groups[train])


@pytest.fixture(scope="module")
def held_out(synthetic):
    X, y, groups = synthetic
    held = ~groups.isin(groups.unique()[:60]).to_numpy()
    return X[held], y[held]


def test_lone_rows_counts_lesions_not_images() -> None:
    patients = np.array(["a", "a", "b", "c", "c"])
    assert lone_rows(patients).tolist() == [False, False, True, False, False]
    lesions = np.array(["a1", "a1", "b1", "c1", "c2"])  # patient a: one lesion imaged twice
    assert lone_rows(patients, lesions).tolist() == [True, True, True, False, False]
    with pytest.raises(ValueError, match="2 lesion ids for 5 patient ids"):
        lone_rows(patients, lesions[:2])


def test_the_lone_lesion_model_has_every_column_but_the_patient_context(model) -> None:
    lone = model.lone_lesion_model_
    context = [name for name, family in model.feature_families_.items() if family == "patient context"]
    assert context and not set(context) & set(lone.feature_names_)
    assert set(lone.feature_names_) | set(context) == set(model.feature_names_)
    assert 0 < lone.threshold_ < 1 and lone.operating_point_.estimate_ is not None


def test_a_lesion_alone_is_scored_by_the_lone_lesion_model(model, held_out) -> None:
    X, _ = held_out
    several = X.groupby("patient_id").filter(lambda rows: len(rows) > 1)
    assert not model.lone_lesions(several).any()
    row = several.iloc[[0]]
    assert model.lone_lesions(row).tolist() == [True]
    lone = model.lone_lesion_model_
    table = model.transform_features(row)[lone.feature_names_]
    expected = lone.operating_point_.probability(booster_margin(lone.booster_, table))
    assert model.predict_proba(row)[0, 1] == pytest.approx(expected[0], abs=1e-12)
    # with the patient's other lesions the same lesion is scored by the model's own booster, its context used
    together = model.predict_proba(several)[0, 1]
    own = model.operating_point_.probability(booster_margin(model.booster_, model.transform_features(several)))[0]
    assert together == pytest.approx(own, abs=1e-12) and together != pytest.approx(expected[0], abs=1e-6)


def test_each_head_refers_at_its_own_threshold(model, held_out) -> None:
    X, _ = held_out
    alone = pd.concat([X.iloc[[i]].assign(patient_id=f"alone-{i}") for i in range(len(X))])
    assert model.lone_lesions(alone).all()
    proba = model.predict_proba(alone)[:, 1]
    refer = model.predict(alone) == 1
    assert (refer == (proba >= model.lone_lesion_model_.threshold_)).all()
    assert ((model.decision_function(alone) > 0) == refer).all()


def test_a_lesion_alone_is_explained_without_patient_context(model, held_out) -> None:
    X, _ = held_out
    rows = pd.concat([X.iloc[[0]].assign(patient_id="alone"), X.groupby("patient_id").filter(lambda r: len(r) > 2)])
    alone = model.lone_lesions(rows)
    assert alone.tolist()[0] and not alone[1:].any()
    grouped = model.explain(rows, grouped=True)
    context = grouped.feature_names.index("patient context")
    assert grouped.values[0, context] == 0 and np.abs(grouped.values[1:, context]).sum() > 0
    assert grouped.display_data[0, context] == "not available (one lesion)"
    assert all(shown != "not available (one lesion)" for shown in grouped.display_data[1:, context])
    # each row's values add up to the margin of the booster that scored it
    table = model.transform_features(rows)
    lone = model.lone_lesion_model_
    margin = np.where(alone, booster_margin(lone.booster_, table[lone.feature_names_]),
                      booster_margin(model.booster_, table))
    np.testing.assert_allclose(grouped.values.sum(axis=1) + grouped.base_values, margin, atol=1e-6)
    full = model.explain(rows.iloc[[0]])
    context_columns = [i for i, name in enumerate(full.feature_names) if name.startswith("patient_context__")]
    assert np.isnan(full.data[0, context_columns]).all()  # not available, rather than a patient of one lesion
    assert set(full.display_data[0, context_columns]) == {"not available (one lesion)"}


def test_the_card_says_how_a_lesion_alone_is_scored(model) -> None:
    lone = model.model_card_["lone_lesions"]
    assert any(line.startswith("Weak model for lesions sent alone: ") for line in model.model_card_["warnings"])
    assert lone["operating_point"]["threshold"] == pytest.approx(model.lone_lesion_model_.threshold_)
    assert lone["performance"]["metrics"]["roc_auc"]["value"] > 0.5
    text = to_markdown(model.model_card_)
    assert "## A lesion sent alone" in text and "Out-of-fold ROC AUC of lesions scored alone" in text


def test_the_lone_lesion_model_is_saved_and_loaded(model, held_out, tmp_path) -> None:
    X, _ = held_out
    rows = pd.concat([X.iloc[[0]].assign(patient_id="alone"), X.iloc[1:]])
    path = model.save(tmp_path / "lone.melagbm")
    loaded = load(path)
    np.testing.assert_allclose(loaded.predict_proba(rows), model.predict_proba(rows), atol=1e-9)
    np.testing.assert_allclose(loaded.explain(rows, grouped=True).values, model.explain(rows, grouped=True).values,
                               atol=1e-9)


def test_without_the_lone_lesion_model_a_lesion_alone_keeps_its_context(synthetic) -> None:
    X, y, groups = synthetic
    model = FusionClassifier(image_col=None, lone_lesion_model=False, n_seeds=1, verbose=0)
    model.fit(X.drop(columns="image"), y, groups=groups)
    assert model.lone_lesion_model_ is None and "lone_lesions" not in model.model_card_
    assert not model.lone_lesions(X.drop(columns="image").iloc[[0]]).any()
    assert FusionClassifier(patient_col=None, image_col=None, n_seeds=1, verbose=0).fit(
        X.drop(columns=["image", "patient_id"]), y, groups=groups).lone_lesion_model_ is None


def test_lesions_of_different_patients_in_one_call_score_as_one_call_each(model, held_out) -> None:
    X, _ = held_out
    rows = X.iloc[:6].assign(patient_id=[f"own-{i}" for i in range(6)])
    together = model.predict_proba(rows)[:, 1]
    np.testing.assert_allclose(together, [model.predict_proba(rows.iloc[[i]])[0, 1] for i in range(6)], atol=1e-12)
