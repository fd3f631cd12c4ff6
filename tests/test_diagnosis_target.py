"""diagnosis_col: the image probe learns every diagnosis; the diagnosis is a training target, never a feature."""

from __future__ import annotations

import numpy as np
import pytest

from melagbm import FusionClassifier
from melagbm.datasets import load_ham10000
from melagbm.features.image_score import MIN_DIAGNOSIS_ROWS, diagnosis_targets

PARAMS = {"backbone": "tf_efficientnet_lite0", "lesion_features": False, "random_state": 0, "verbose": 0}


@pytest.fixture(scope="module")
def ham_with_diagnoses(ham_root):
    X, y, groups = load_ham10000(ham_root, n_samples=400, random_state=1, diagnosis=True)
    held_out = np.isin(groups, np.unique(groups)[::4])
    return X[~held_out], y[~held_out], groups[~held_out], X[held_out]


def test_the_probe_learns_the_diagnoses_and_predicting_needs_none(ham_with_diagnoses) -> None:
    X, y, groups, X_new = ham_with_diagnoses
    model = FusionClassifier(diagnosis_col="diagnosis", **PARAMS).fit(X, y, groups=groups)
    common = [d for d, n in X["diagnosis"].value_counts().items() if n >= MIN_DIAGNOSIS_ROWS and d != "mel"]
    image = model.family_to_columns_["image"]
    assert image[0] == "image__score" and set(image[1:]) >= {f"image__diagnosis_{d}" for d in common}
    assert not any("diagnosis" in c for c in model.feature_names_ if model.feature_families_[c] != "image")
    with_column = model.predict_proba(X_new)
    np.testing.assert_array_equal(model.predict_proba(X_new.drop(columns="diagnosis")), with_column)
    np.testing.assert_array_equal(model.predict_proba(X_new.assign(diagnosis="nv")), with_column)  # ignored
    melanoma = model.image_signal_.positive_classes_
    assert melanoma == ["mel"]


def test_a_diagnosis_column_is_never_used_as_metadata_without_being_named(ham_with_diagnoses) -> None:
    from melagbm import LabelLeakError

    X, y, groups, _ = ham_with_diagnoses
    with pytest.raises(LabelLeakError, match="diagnosis"):
        FusionClassifier(image_col=None, random_state=0, verbose=0).fit(X.drop(columns="image"), y, groups=groups)


def test_diagnoses_that_do_not_decide_the_label_are_named() -> None:
    y = np.array([1, 1, 0, 0, 0] * 10)
    diagnoses = np.array(["mel", "nv", "nv", "nv", "bkl"] * 10)
    with pytest.raises(ValueError, match=r"diagnoses \['nv'\] occur with both labels"):
        diagnosis_targets(diagnoses, y)
    probe_y, positive = diagnosis_targets(np.array(["mel", "mel", "nv", "nv", "df"] * 20), np.tile(y[:5], 20))
    assert positive == ["mel"] and set(probe_y) == {"mel", "nv", "df"}
    from melagbm.features import ImageSignal

    spelled_twice = np.array(["mel", "mel", "nv", "NV", "bkl"] * 20)
    with pytest.raises(ValueError, match="clashing column names"):
        ImageSignal().fit_transform(np.random.default_rng(0).normal(size=(100, 4)), np.tile(y[:5], 20),
                                    targets=spelled_twice)
    pooled, _ = diagnosis_targets(np.array(["mel", "mel", "nv", "nv", "df"] * 2), y[:10])
    assert set(pooled) == {"other (label 0)", "other (label 1)"}  # each below MIN_DIAGNOSIS_ROWS rows


def test_diagnosis_col_is_checked_before_any_image_is_read(ham_with_diagnoses) -> None:
    X, y, groups, _ = ham_with_diagnoses
    with pytest.raises(ValueError, match="diagnosis_col is the target of the image probe"):
        FusionClassifier(diagnosis_col="diagnosis", image_encoding="pca", **PARAMS).fit(X, y)
    with pytest.raises(ValueError, match="X has no column 'dx'"):
        FusionClassifier(diagnosis_col="dx", **PARAMS).fit(X, y)
    with pytest.raises(ValueError, match="'diagnosis' .* missing at rows"):
        FusionClassifier(diagnosis_col="diagnosis", **PARAMS).fit(
            X.assign(diagnosis=X["diagnosis"].where(np.arange(len(X)) != 3)), y, groups=groups)


def test_a_model_with_a_diagnosis_target_is_saved_and_loaded(ham_with_diagnoses, tmp_path) -> None:
    import melagbm

    X, y, groups, X_new = ham_with_diagnoses
    model = FusionClassifier(diagnosis_col="diagnosis", **PARAMS).fit(X, y, groups=groups)
    loaded = melagbm.load(model.save(tmp_path / "dx.melagbm"))
    assert loaded.image_signal_.positive_classes_ == ["mel"] and loaded.feature_names_ == model.feature_names_
    np.testing.assert_allclose(loaded.predict_proba(X_new.drop(columns="diagnosis")), model.predict_proba(X_new),
                               rtol=0, atol=1e-12)
