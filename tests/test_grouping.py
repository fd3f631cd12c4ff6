"""Groups reach fit's internal splits: from the loaders' id columns, from routing, or a warning says they did not."""

from __future__ import annotations

import re
import sys

import numpy as np
import pytest
import sklearn
from sklearn.model_selection import StratifiedGroupKFold, cross_validate

import melagbm._progress
import melagbm.boosting._step
import melagbm.decision
from melagbm import FusionClassifier, ImageEmbedder
from melagbm.classifier import UngroupedFitWarning
from melagbm.datasets import load_ham10000, load_isic2020
from melagbm.evaluation import cross_validate as evaluate
from melagbm.features.image_score import ImageSignal
from melagbm.features.lesion import LesionFeatures


@pytest.fixture(scope="module")
def isic_metadata(isic_root):
    """3,000 rows of the real ISIC 2020 metadata as the loader gives them (no images)."""
    return load_isic2020(isic_root, metadata="ISIC_2020_Training_GroundTruth.csv", image_dir=None,
                         n_samples=3000, positive_fraction=0.05, random_state=0)


@pytest.fixture
def split_groups(monkeypatch) -> list:
    """The groups each internal split of fit was given (None: split by row)."""
    seen: list = []
    real = melagbm.decision.stratified_group_splits

    def spy(y, groups, n_splits, seed):
        seen.append(None if groups is None else len(np.unique(groups)))
        return real(y, groups, n_splits, seed)

    for step in (melagbm.boosting._step, melagbm.decision):  # early stopping's split, the decision's folds
        monkeypatch.setattr(step, "stratified_group_splits", spy)
    return seen


def test_loader_gives_patient_context_without_being_told(isic_metadata, split_groups) -> None:
    X, y, groups = isic_metadata
    model = FusionClassifier(image_col=None, random_state=0, verbose=0).fit(X, y, groups=groups)
    assert model.patient_col_ == "patient_id" and "patient context" in model.family_to_columns_
    assert "patient context" in model.explain(X.head(40), grouped=True).feature_names
    assert not any("patient_id" in name for name in model.feature_names_)  # an id, never a feature
    unrouted = FusionClassifier(image_col=None, random_state=0, verbose=0).fit(X, y)  # as cross_validate calls it
    assert unrouted.n_groups_ == groups.nunique() and split_groups and all(n == groups.nunique() for n in split_groups)


def test_ham10000_lesions_group_the_splits_but_are_no_patients(ham_root, split_groups) -> None:
    X, y, lesions = load_ham10000(ham_root, n_samples=1500, random_state=0)
    model = FusionClassifier(image_col=None, random_state=0, verbose=0).fit(X.drop(columns="image"), y)
    assert model.n_groups_ == lesions.nunique() and model.patient_col_ is None
    assert model.feature_names_ == ["age__years", "sex__category", "site__general"]
    assert all(n == lesions.nunique() for n in split_groups)


def test_routed_groups_reach_the_internal_splits(isic_metadata, split_groups) -> None:
    X, y, groups = isic_metadata
    X = X.drop(columns="patient_id")  # only the splitter and the router know the patients
    with sklearn.config_context(enable_metadata_routing=True):
        model = FusionClassifier(image_col=None, random_state=0, verbose=0).set_fit_request(groups=True)
        result = cross_validate(model, X, y, params={"groups": groups}, cv=StratifiedGroupKFold(3),
                                return_estimator=True, return_indices=True)
    for estimator, train in zip(result["estimator"], result["indices"]["train"]):
        assert estimator.n_groups_ == groups.iloc[train].nunique()
    assert split_groups and None not in split_groups


def test_an_ungrouped_fit_beside_an_id_column_warns(isic_metadata, split_groups) -> None:
    X, y, groups = isic_metadata
    X = X.drop(columns="patient_id").assign(subject_id=groups.to_numpy())
    with pytest.warns(UngroupedFitWarning, match=r"\['subject_id'\].*set_fit_request\(groups=True\)") as record:
        model = FusionClassifier(image_col=None, random_state=0, verbose=0).fit(X, y)
    assert record[0].filename == __file__  # the user's line, not melagbm's
    assert model.n_groups_ is None and None in split_groups


def test_fit_prints_a_one_line_summary_unless_silenced(isic_metadata, capsys) -> None:
    X, y, groups = isic_metadata
    FusionClassifier(image_col=None, random_state=0).fit(X, y)
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    assert re.fullmatch(
        rf"FusionClassifier fitted on 3000 rows, {int(y.sum())} melanomas, {groups.nunique()} groups, patient "
        r"context from 'patient_id'; \d+ features, 5 boosters averaged \(\d+-\d+ rounds each\), threshold [0-9.e-]+ "
        r"\(on patients that did not choose it: sensitivity [01]\.\d\d \[[01]\.\d\d, [01]\.\d\d\], specificity "
        r"[01]\.\d\d \[[01]\.\d\d, [01]\.\d\d\], referred [01]\.\d\d \[[01]\.\d\d, [01]\.\d\d\]\), "
        r"internal out-of-fold AUC 0\.\d{3}",
        out[0],
    ), out[0]
    FusionClassifier(image_col=None, random_state=0, verbose=0).fit(X, y)
    assert capsys.readouterr().out == ""


def test_progress_is_plain_lines_in_a_process_that_merely_imported_ipykernel(monkeypatch, capsys) -> None:
    import types

    monkeypatch.setattr(melagbm._progress, "PROGRESS_DELAY_S", 0.0)
    monkeypatch.setitem(sys.modules, "ipykernel", types.ModuleType("ipykernel"))  # a notebook runner imported it
    list(melagbm._progress.progress(range(3), desc="steps", unit="step"))
    err = capsys.readouterr().err
    assert "steps: 100% (3/3 steps" in err and "\r" not in err and "|" not in err, err  # lines, not a bar


def test_long_steps_show_progress_by_default(ham_sample, isic_metadata, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(melagbm._progress, "PROGRESS_DELAY_S", 0.0)  # as if each step lasted long
    images = list(ham_sample[0]["image"].iloc[:12])
    LesionFeatures(cache=None).fit().transform(images)
    ImageEmbedder(cache=None, batch_size=4).fit().transform(images)
    X, y, groups = isic_metadata
    evaluate(FusionClassifier(image_col=None, random_state=0, verbose=0), X, y, groups, n_splits=2, n_bootstrap=0)
    err = capsys.readouterr().err
    for bar in ("measuring lesions: 100% (12/12 images", "embedding (tf_efficientnet_lite0): 100% (3/3 batches",
                "cross-validation folds: 100% (2/2 folds"):
        assert bar in err, err
    assert "\r" not in err  # not a terminal: plain lines, no bar redraws filling a log
    FusionClassifier(image_col=None, random_state=0).fit(X, y, groups=groups)  # the steps that ran silent
    err = capsys.readouterr().err
    assert "boosting (early stopping, refit): 100% (5/5 boosters" in err, err
    assert "out-of-fold boosters (calibration, threshold): 100% (5/5 boosters" in err, err
    embeddings = np.random.default_rng(0).normal(size=(len(y), 8))
    ImageSignal(n_repeats=2, verbose=1).fit_transform_tables(embeddings, y.to_numpy(), groups.to_numpy(), n_tables=2)
    assert "image probe (out of fold): 100% (4/4 partitions" in capsys.readouterr().err
    LesionFeatures(cache=None, verbose=0).fit().transform(images[:3])
    assert capsys.readouterr().err == ""
