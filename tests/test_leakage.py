"""Columns that give the label away are refused at fit, by name and by single-column separability."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from melagbm import FusionClassifier
from melagbm.leakage import LabelLeakError, single_column_auc


@pytest.fixture(scope="module")
def ground_truth(isic_root) -> pd.DataFrame:
    """6,000 rows of the real ISIC 2020 ground-truth CSV as a user reads it (every melanoma's row kept)."""
    meta = pd.read_csv(isic_root / "ISIC_2020_Training_GroundTruth.csv").set_index("image_name")
    benign = meta[meta.target == 0].sample(6000 - int(meta.target.sum()), random_state=0)
    return pd.concat([meta[meta.target == 1], benign]).sort_index()


def test_isic_label_columns_are_refused_by_name(ground_truth) -> None:
    X, y = ground_truth.drop(columns="target"), ground_truth["target"]  # drops only the target, as the user did
    with pytest.raises(LabelLeakError, match=r"\['diagnosis', 'benign_malignant'\] give the label away"):
        FusionClassifier(image_col=None, verbose=0).fit(X, y)
    with pytest.raises(LabelLeakError, match="'target'"):  # a copy of the label under its usual name
        FusionClassifier(image_col=None, verbose=0).fit(X.drop(columns=["diagnosis", "benign_malignant"])
                                                        .assign(target=y), y)


def test_a_renamed_label_column_is_refused_by_its_separability(ground_truth) -> None:
    X, y = ground_truth.drop(columns="target"), ground_truth["target"]
    renamed = X.rename(columns={"diagnosis": "histology", "benign_malignant": "pathology_report"})
    with pytest.raises(LabelLeakError, match=r"'histology': alone it separates the classes with ROC AUC 1\.000"):
        FusionClassifier(image_col=None, verbose=0).fit(renamed, y)
    numeric = X.drop(columns=["diagnosis", "benign_malignant"]).assign(score=y * 3.0 + 1.0)
    with pytest.raises(LabelLeakError, match="'score'"):
        FusionClassifier(image_col=None, verbose=0).fit(numeric, y)


def test_honest_columns_pass_and_a_named_column_is_used(ground_truth) -> None:
    X, y = ground_truth.drop(columns="target"), ground_truth["target"]
    honest = FusionClassifier(image_col=None, random_state=0, verbose=0).fit(
        X.drop(columns=["diagnosis", "benign_malignant"]), y
    )
    assert {"age__years", "sex__category", "site__general"} <= set(honest.feature_names_)
    assert honest.oof_roc_auc_ < 0.9  # metadata alone is weak: nothing leaked
    named = FusionClassifier(
        image_col=None, metadata_cols=["age_approx", "sex", "benign_malignant"], random_state=0, verbose=0
    ).fit(X, y)  # the user says it is known before the diagnosis: their call
    assert "metadata__benign_malignant" in named.feature_names_ and named.oof_roc_auc_ > 0.99


def test_ham10000_dx_is_refused(ham_root) -> None:
    meta = pd.read_csv(ham_root / "HAM10000_metadata.csv").sample(2000, random_state=0)
    y = (meta["dx"] == "mel").astype(int)
    with pytest.raises(LabelLeakError, match=r"\['dx', 'dx_type'\]"):
        FusionClassifier(image_col=None, verbose=0).fit(meta.drop(columns=["image_id"]), y, groups=meta["lesion_id"])


def test_single_column_auc_does_not_memorise_id_columns(ground_truth) -> None:
    y = ground_truth["target"].to_numpy()
    assert single_column_auc(ground_truth["benign_malignant"], y) == pytest.approx(1.0)
    assert single_column_auc(ground_truth["patient_id"], y) < 0.8  # ids rarely recur across halves
    assert 0.5 <= single_column_auc(ground_truth["age_approx"], y) < 0.8
    assert single_column_auc(pd.Series(np.where(y == 1, np.nan, 1.0)), y) == pytest.approx(1.0)  # missing = label
