from __future__ import annotations

import os

import numpy as np
import pytest
from lightgbm import LGBMClassifier
from sklearn.base import clone
from sklearn.model_selection import StratifiedGroupKFold, cross_validate
from sklearn.pipeline import Pipeline

from melagbm import EmbeddingStore, FusionClassifier, ImageReadError
from melagbm.backbones import DEFAULT_BACKBONES
from melagbm.evaluation import cross_validate as evaluate
from melagbm.evaluation import roc_auc
from melagbm.features.lesion import LESION_FEATURES


@pytest.fixture(scope="module")
def fitted(ham_model) -> FusionClassifier:
    return ham_model


def test_fit_predict_on_real_dermoscopy(ham_sample, fitted) -> None:
    X, y, _ = ham_sample
    proba = fitted.predict_proba(X.head(20))
    assert proba.shape == (20, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert list(fitted.classes_) == [0, 1]
    np.testing.assert_array_equal(fitted.predict(X.head(20)), (proba[:, 1] >= fitted.threshold_).astype(int))
    log_odds = fitted.decision_function(X.head(20)) + fitted.threshold_log_odds_
    np.testing.assert_allclose(1 / (1 + np.exp(-log_odds)), proba[:, 1], rtol=1e-6)
    lesion = list(LESION_FEATURES)  # on by default with images
    assert fitted.feature_names_ == ["image__score", "age__years", "sex__category", "site__general", *lesion]
    assert {family: columns for family, columns in fitted.family_to_columns_.items() if not family.startswith("lesion")} == {
        "image": ["image__score"], "age": ["age__years"], "sex": ["sex__category"], "site": ["site__general"]
    }
    assert sum(len(c) for f, c in fitted.family_to_columns_.items() if f.startswith("lesion")) == len(lesion)
    assert fitted.patient_col_ is None  # no patient_id column: no patient context
    assert fitted.device_ == "cpu" and fitted.n_estimators_ >= 1
    table = fitted.transform_features(X.head(3))
    assert list(table.columns) == fitted.feature_names_ and list(table.index) == list(X.head(3).index)
    assert str(table["site__general"].dtype) == "category" and table["age__years"].notna().all()


def test_grouped_cv_on_real_images_beats_chance_clearly(ham_sample) -> None:
    X, y, groups = ham_sample
    result = evaluate(FusionClassifier(random_state=0), X, y, groups, n_splits=3, n_bootstrap=200)
    oof = result.oof
    assert list(oof.index) == list(X.index) and oof["proba"].between(0, 1).all()
    assert oof.groupby("group")["fold"].nunique().max() == 1, "a lesion was split across folds"
    assert roc_auc(y, oof["proba"]) > 0.75
    table = result.metrics
    assert table.loc["roc_auc", "value"] == pytest.approx(roc_auc(y, oof["proba"]))
    assert (table["ci_low"] <= table["value"]).all() and (table["value"] <= table["ci_high"]).all()
    # each fold refers at its own threshold, chosen for 90 % sensitivity on its training folds
    assert oof.groupby("fold")["threshold"].nunique().eq(1).all()
    assert table.loc["sensitivity", "value"] > 0.6
    assert result.confusion_matrix().to_numpy().sum() == len(y)


def test_refit_reuses_the_embedding_store(ham_sample, fitted) -> None:
    X, y, groups = ham_sample
    store = EmbeddingStore(os.environ["MELAGBM_CACHE"] + "/embeddings")
    FusionClassifier(random_state=0, cache=store).fit(X, y, groups=groups)
    backbones = len(fitted.embedders_)
    assert backbones == len(DEFAULT_BACKBONES) == 3  # three views of two packaged encoders
    # the fixture embedded and measured them already: one hit per image for each backbone and the lesion rows
    assert store.misses == 0 and store.hits == (backbones + 1) * len(X)


def test_sklearn_contract(ham_sample, fitted) -> None:
    X, y, groups = ham_sample
    model = FusionClassifier(booster=LGBMClassifier(num_leaves=5), random_state=0)
    params = model.get_params(deep=True)
    assert params["booster__num_leaves"] == 5
    model.set_params(booster__num_leaves=7, image_encoding="probe")
    twin = clone(model)
    assert twin.get_params()["booster__num_leaves"] == 7 and not hasattr(twin, "booster_")
    twin.fit(X, y, groups=groups)
    assert twin.booster_.get_params()["num_leaves"] == 7
    pipe = Pipeline([("clf", FusionClassifier(random_state=0))])
    result = cross_validate(
        pipe, X, y, groups=groups, cv=StratifiedGroupKFold(n_splits=2), scoring="roc_auc"
    )
    assert result["test_score"].shape == (2,) and np.all(result["test_score"] > 0.5)


def test_xgboost_booster_with_categoricals(ham_sample) -> None:
    X, y, groups = ham_sample
    model = FusionClassifier(booster="xgboost", random_state=0).fit(X, y, groups=groups)
    proba = model.predict_proba(X.head(10))[:, 1]
    assert proba.shape == (10,) and np.all((proba > 0) & (proba < 1))
    assert model.booster_.get_params()["enable_categorical"] is True
    log_odds = model.decision_function(X.head(10)) + model.threshold_log_odds_
    np.testing.assert_allclose(1 / (1 + np.exp(-log_odds)), proba, rtol=1e-5)


@pytest.mark.parametrize("mode", ["pca", "embedding", "probe+pca"])
def test_image_feature_modes(ham_sample, mode) -> None:
    X, y, groups = ham_sample
    model = FusionClassifier(image_encoding=mode, n_components=8, n_seeds=1, random_state=0).fit(X, y, groups=groups)
    image_columns = model.family_to_columns_["image"]
    expected = {"pca": 8, "embedding": 1752 + 1752 + 1800, "probe+pca": 9}[mode]  # Lite0 twice, Lite2
    assert len(image_columns) == expected
    assert model.predict_proba(X.head(5)).shape == (5, 2)


def test_metadata_only_and_image_only(ham_sample) -> None:
    X, y, groups = ham_sample
    meta = FusionClassifier(image_col=None).fit(X.drop(columns="image"), y, groups=groups)
    assert meta.feature_names_ == ["age__years", "sex__category", "site__general"] and meta.embedders_ == []
    image = FusionClassifier(metadata_cols=[], lesion_features=False).fit(X, y, groups=groups)
    assert image.feature_names_ == ["image__score"]
    with pytest.raises(ValueError, match="lesion_features=True needs images"):
        FusionClassifier(image_col=None, lesion_features=True).fit(X.drop(columns="image"), y)
    with pytest.raises(ValueError, match="lesion_features must be True, False or 'auto'"):
        FusionClassifier(lesion_features="yes").fit(X, y)


def test_patient_id_column_adds_context_by_default_and_is_never_a_feature(ham_sample) -> None:
    X, y, groups = ham_sample
    patients = X.assign(patient_id=groups.to_numpy())  # stand-in patient ids: HAM10000's lesion ids
    auto = FusionClassifier(image_col=None).fit(patients.drop(columns="image"), y)
    assert auto.patient_col_ == "patient_id" and auto.feature_names_ == ["age__years", "sex__category", "site__general", "patient_context__n_images"]
    assert auto.feature_families_["patient_context__n_images"] == "patient context"
    off = FusionClassifier(image_col=None, patient_col=None).fit(patients.drop(columns="image"), y)
    assert off.patient_col_ is None and off.feature_names_ == ["age__years", "sex__category", "site__general"]
    schema = auto.input_schema_  # what the model reads, for a service or a form: roles and known values
    assert (schema.image, schema.patient, schema.lesion) == (None, "patient_id", "lesion_id")
    assert schema.fields == {"age": "age", "sex": "sex", "site": "site"} and schema.other_metadata == ()
    assert sorted(schema.values["sex"]) == ["female", "male"] and "unknown" not in schema.values["site"]
    assert set(X["site"].dropna()) <= set(schema.values["site"]) and schema.columns == tuple(auto.feature_names_in_)
    with pytest.raises(ValueError, match="missing:\n- patient_id"):  # the context needs the patient column
        auto.predict_proba(X.drop(columns="image").head())
    gap = patients.drop(columns="image").head(40).copy()
    gap.loc[gap.index[[2, 7]], "patient_id"] = None
    with pytest.raises(ValueError, match=rf"column 'patient_id' .* rows \[{gap.index[2]!r}, {gap.index[7]!r}\].*patient_col=None"):
        auto.predict_proba(gap)
    with pytest.raises(ValueError, match=r"metadata_cols names \['patient_id'\]"):
        FusionClassifier(image_col=None, metadata_cols=["age", "patient_id"]).fit(patients.drop(columns="image"), y)


def test_missing_image_file_is_named(ham_sample, fitted) -> None:
    X, _, _ = ham_sample
    broken = X.head(3).copy()
    broken.iloc[1, broken.columns.get_loc("image")] = "/data/gone/ISIC_9999999.jpg"
    with pytest.raises(ImageReadError, match=r"ISIC_9999999\.jpg"):
        fitted.predict_proba(broken)


def test_missing_column_is_named(ham_sample, fitted) -> None:
    X, y, _ = ham_sample
    with pytest.raises(ValueError, match="site"):
        fitted.predict_proba(X.drop(columns="site"))
    with pytest.raises(ValueError, match="no column 'image'"):
        FusionClassifier().fit(X.rename(columns={"image": "path"}), y)


def test_single_class_target_is_refused(ham_sample) -> None:
    X, y, _ = ham_sample
    with pytest.raises(ValueError, match="one class only"):
        FusionClassifier().fit(X.head(10), np.zeros(10, dtype=int))


def test_group_col_is_never_a_feature(ham_sample) -> None:
    X, y, groups = ham_sample
    framed = X.assign(lesion_id=groups.to_numpy())
    model = FusionClassifier(group_col="lesion_id", random_state=0).fit(framed, y)
    assert "lesion_id" not in " ".join(model.feature_names_)
    model.predict_proba(framed.head(4))


def test_synthetic_images_carry_signal() -> None:
    from melagbm.datasets import make_synthetic

    X, y, groups = make_synthetic(240, image_size=64, random_state=0)
    train = groups.isin(groups.unique()[: int(groups.nunique() * 0.7)]).to_numpy()
    model = FusionClassifier(backbone="tf_efficientnet_lite0", cache=None, random_state=0)
    model.fit(X[train], y[train], groups=groups[train])
    assert roc_auc(y[~train], model.predict_proba(X[~train])[:, 1]) > 0.7


def test_per_backbone_image_signal_gives_each_backbone_a_family(ham_sample, tmp_path) -> None:
    from melagbm import load

    X, y, groups = ham_sample
    model = FusionClassifier(backbone_signals="per_backbone", lesion_features=False, random_state=0).fit(
        X, y, groups=groups
    )
    # one column and one family per view ("@" is not a character of booster column names)
    scores = ["image_tf_efficientnet_lite0_224__score", "image_tf_efficientnet_lite0_384__score",
              "image_tf_efficientnet_lite2_320__score"]
    assert model.feature_names_ == [*scores, "age__years", "sex__category", "site__general"]
    families = ["image: tf_efficientnet_lite0@224", "image: tf_efficientnet_lite0@384", "image: tf_efficientnet_lite2@320"]
    assert [model.feature_families_[name] for name in scores] == families
    grouped = model.explain(X.head(20), grouped=True)
    assert list(grouped.feature_names)[:3] == families
    joint = FusionClassifier(lesion_features=False, random_state=0).fit(X, y, groups=groups)
    lite0_only = FusionClassifier(backbone="tf_efficientnet_lite0@224", lesion_features=False, random_state=0).fit(
        X, y, groups=groups
    )  # each backbone's score is that backbone's own probe: the same as a one-backbone model's
    np.testing.assert_allclose(
        model.transform_features(X.head(30))[scores[0]], lite0_only.transform_features(X.head(30))["image__score"]
    )
    assert not np.allclose(model.predict_proba(X.head(30)), joint.predict_proba(X.head(30)))
    loaded = load(model.save(tmp_path / "per_backbone.melagbm"))
    np.testing.assert_array_equal(loaded.predict_proba(X.head(30)), model.predict_proba(X.head(30)))
    with pytest.raises(ValueError, match="backbone_signals must be"):
        FusionClassifier(backbone_signals="separate").fit(X.head(60), y.head(60))
    with pytest.raises(ValueError, match="distinct encoders"):
        FusionClassifier(backbone=("tf_efficientnet_lite0", "tf_efficientnet_lite0")).fit(X.head(60), y.head(60))


@pytest.mark.parametrize("params, message", [
    ({"booster": "lightgmb"}, "booster must be one of"),
    ({"booster_params": [("num_leaves", 7)]}, "booster_params must be a dict"),
    ({"class_weight": "even"}, "class_weight must be"),
    ({"early_stopping": "yes"}, "early_stopping must be"),
    ({"validation_fraction": 1.5}, "validation_fraction must be in"),
    ({"n_iter_no_change": -1}, "n_iter_no_change must be"),
    ({"image_encoding": "probes"}, "image_encoding must be one of"),
    ({"n_components": 0}, "n_components must be"),
    ({"probe_C": -1.0}, "probe_C must be"),
    ({"batch_size": 0}, "batch_size must be"),
    ({"pixel_spacing_mm": -0.1}, "pixel_spacing_mm must be"),
    ({"metadata_cols": "all"}, "metadata_cols must be"),
    ({"backbone_signals": "each"}, "backbone_signals must be"),
    ({"calibration": "platt"}, "calibration must be"),
])
def test_every_parameter_is_checked_before_any_image_is_read(params, message, ham_sample, monkeypatch) -> None:
    X, y, groups = ham_sample
    read = []
    monkeypatch.setattr("melagbm.classifier.ImageEmbedder.transform", lambda self, images: read.append(1))
    monkeypatch.setattr("melagbm.features.inputs.content_hash", lambda *args: read.append(1))
    with pytest.raises(ValueError, match=message):
        FusionClassifier(cache=None, verbose=0, **params).fit(X, y, groups=groups)
    assert read == []  # refused before a single image was hashed or embedded
