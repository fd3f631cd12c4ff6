"""Each named step of FusionClassifier.fit on its own: its fitted state and what it reports (the metadata steps
on synthetic rows, the image step on real HAM10000 images)."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from melagbm import FusionClassifier, ImageEmbedder, MetadataEncoder
from melagbm.boosting import BoostingStep, n_rounds
from melagbm.datasets import make_synthetic
from melagbm.decision import OperatingPoint, logit
from melagbm.features import ImageSignal, PatientContext
from melagbm.features.image_features import ImageFeatures
from melagbm.features.inputs import InputGate
from melagbm.features.table import FeatureTable

PACKAGE = Path(__file__).resolve().parents[1] / "melagbm"


@pytest.fixture(scope="module")
def metadata_rows():
    """3,000 synthetic rows of metadata (age, sex, site; melanomas older and more often on the torso), with
    patient_id: the steps' tests need no data set."""
    X, y, groups = make_synthetic(n_samples=3000, image_size=16, positive_rate=0.05, random_state=0)
    return X.drop(columns="image").assign(patient_id=groups.to_numpy()), y, groups


def _gate(**overrides) -> InputGate:
    return InputGate(**{"image_col": None, "group_col": None, "patient_col": "auto", "metadata_cols": "auto",
                        **overrides})


def test_input_gate_fixes_the_roles_of_the_columns(metadata_rows) -> None:
    X, y, groups = metadata_rows
    gate = _gate().check_params().fit(X.columns)
    assert gate.patient_col_ == "patient_id"
    assert list(gate.metadata(X).columns) == ["age", "sex", "site"]  # the id is never metadata
    np.testing.assert_array_equal(gate.groups(X, None), X["patient_id"].to_numpy())
    np.testing.assert_array_equal(gate.patients(X), groups.to_numpy())
    with pytest.raises(ValueError, match="X has no column 'image'"):
        _gate(image_col="image").check_columns(X.columns)
    with pytest.raises(ValueError, match="patient ids, for the patient context.*missing at rows"):
        gate.patients(X.assign(patient_id=X["patient_id"].where(np.arange(len(X)) != 7)))
    with pytest.raises(ValueError, match="metadata_cols must be"):
        _gate(metadata_cols="all").check_params()
    assert _gate(patient_col=None).fit(X.columns).patient_col_ is None


def test_image_features_score_out_of_fold_and_name_their_families(ham_sample) -> None:
    X, y, groups = ham_sample
    step = ImageFeatures(backbones=("tf_efficientnet_lite0",), embedder=ImageEmbedder(verbose=0),
                         scorer=ImageSignal(), signal="joint").check_params().fit_embedders("cpu")
    embeddings = step.embed(X["image"], on_bad_image="raise")
    oof, = step.fit_scores(embeddings, y.to_numpy(), groups.to_numpy(), seed=0)
    assert list(oof.columns) == ["image__score"] and step.feature_families_ == {"image__score": "image"}
    assert roc_auc_score(y, oof["image__score"]) > 0.7  # the probe sees melanoma in held-out lesions
    fitted, bad = step.transform(X["image"])
    assert not bad.any() and step.context_columns() == ()
    in_sample = roc_auc_score(y, fitted["image__score"])
    assert in_sample > roc_auc_score(y, oof["image__score"])  # training rows look easier in sample: why OOF
    per_backbone = ImageFeatures(backbones=("tf_efficientnet_lite0",), embedder=ImageEmbedder(verbose=0),
                                 scorer=ImageSignal(), signal="per_backbone").fit_embedders("cpu")
    per_backbone.fit_scores(embeddings, y.to_numpy(), groups.to_numpy(), seed=0)
    name = "image_tf_efficientnet_lite0__score"
    assert per_backbone.feature_families_ == {name: "image: tf_efficientnet_lite0"}
    assert per_backbone.context_columns() == (name,)
    with pytest.raises(ValueError, match="distinct encoders"):
        ImageFeatures(backbones=("a", "a"), embedder=ImageEmbedder(), scorer=ImageSignal()).check_params()


def test_patient_context_reports_the_columns_it_makes(metadata_rows) -> None:
    X, _, groups = metadata_rows
    table = MetadataEncoder().fit_transform(X[["age", "sex", "site"]]).reset_index(drop=True)
    step = PatientContext(columns=("age__years", "not_in_the_table")).fit(list(table.columns))
    names = ["patient_context__n_images", "patient_context__age__years_z", "patient_context__age__years_rank",
             "patient_context__n_outlying"]
    assert list(step.feature_families_) == names and set(step.feature_families_.values()) == {"patient context"}
    context = step.transform(table, groups.to_numpy())
    assert list(context.columns) == names
    np.testing.assert_array_equal(context["patient_context__n_images"], groups.map(groups.value_counts()))
    z_by_patient = context["patient_context__age__years_z"].groupby(groups.to_numpy()).mean()
    assert np.abs(z_by_patient).max() < 1e-9  # z-scores centre on each patient
    np.testing.assert_array_equal(context["patient_context__n_outlying"],
                                  (context["patient_context__age__years_z"].abs() > 2).astype(float))


def test_image_scores_are_also_compared_within_patient_and_site(metadata_rows) -> None:
    X, y, groups = metadata_rows
    table = MetadataEncoder().fit_transform(X[["age", "sex", "site"]]).reset_index(drop=True)
    table["image__score"] = np.random.default_rng(0).normal(size=len(table)) + 2.0 * y.to_numpy()
    step = PatientContext(columns=("image__score",)).fit(list(table.columns))
    context = step.transform(table, groups.to_numpy())
    prefix = "patient_context__image__score"
    assert {f"{prefix}_diff", f"{prefix}_site_z", f"{prefix}_site_rank"} <= set(context.columns)
    keys = pd.Series(groups.to_numpy()).astype(str) + "/" + table["site__general"].astype(str)
    for key in keys.unique()[:25]:  # each (patient, site) cell: its own z-scores and ranks
        rows = (keys == key).to_numpy()
        scores = table["image__score"][rows]
        if rows.sum() > 1 and scores.std(ddof=0) > 0:
            np.testing.assert_allclose(context[f"{prefix}_site_z"][rows], (scores - scores.mean()) / scores.std(ddof=0))
            assert context[f"{prefix}_site_rank"][rows].max() == 1.0
        else:
            assert (context[f"{prefix}_site_z"][rows] == 0).all() and (context[f"{prefix}_site_rank"][rows] == 0.5).all()
    np.testing.assert_allclose(context[f"{prefix}_diff"],
                               table["image__score"] - table["image__score"].groupby(groups.to_numpy()).transform("mean")
                               .where(groups.map(groups.value_counts()).to_numpy() > 1, table["image__score"]))


def test_feature_table_puts_the_steps_side_by_side_with_their_families(metadata_rows) -> None:
    X, _, _ = metadata_rows
    gate = _gate().fit(X.columns)
    assembler = FeatureTable(inputs=gate, metadata=MetadataEncoder().fit(gate.metadata(X)),
                             context=PatientContext()).fit()
    table, bad = assembler.transform(X)
    assert list(table.columns) == list(assembler.families()) and not bad.any()
    assert assembler.families() == {"age__years": "age", "sex__category": "sex", "site__general": "site",
                                    "patient_context__n_images": "patient context"}


def test_boosting_step_stops_early_on_whole_patients(metadata_rows) -> None:
    X, y, groups = metadata_rows
    table = MetadataEncoder().fit_transform(X[["age", "sex", "site"]]).reset_index(drop=True)
    step = BoostingStep(booster="lightgbm", params=None, class_weight=None, early_stopping="auto",
                        validation_fraction=0.15, n_iter_no_change=50, n_jobs=None).check_params()
    train, val = step.validation_split(y.to_numpy(), groups.to_numpy(), seed=0)
    assert not set(groups.iloc[train]) & set(groups.iloc[val])  # no patient on both sides
    step.fit([table], y.to_numpy(), groups.to_numpy(), device="cpu", seed=0)
    assert 1 <= n_rounds(step.booster_) < step.estimator_.get_params()["n_estimators"]  # it stopped early
    assert step.estimator_.get_params()["n_jobs"] == 1  # one thread for a small table
    fixed = BoostingStep.with_rounds(step.estimator_, step.booster_)
    assert n_rounds(fixed) == n_rounds(step.booster_) and not hasattr(fixed, "booster_")
    with pytest.raises(ValueError, match="validation_fraction must be in"):
        BoostingStep(booster="xgboost", params=None, class_weight=None, early_stopping=True,
                     validation_fraction=1.0, n_iter_no_change=5, n_jobs=None).check_params()


def test_operating_point_refers_at_the_sensitivity_it_was_asked_for(metadata_rows) -> None:
    X, y, _ = metadata_rows
    y = y.to_numpy()
    margin = (X["age"].fillna(X["age"].median()).to_numpy() - 50.0) / 10.0  # age: a weak margin
    point = OperatingPoint(target_sensitivity=0.9).check_params().start(y, None).fit(margin, y)
    probability = point.probability(margin)
    assert point.oof_roc_auc_ == pytest.approx(roc_auc_score(y, margin))
    assert (probability[y == 1] >= point.threshold_).mean() >= 0.9
    assert point.threshold_log_odds_ == pytest.approx(float(logit(point.threshold_)))
    np.testing.assert_array_equal(point.decision_function(margin) > 0, probability >= point.threshold_)
    assert abs(probability.mean() - y.mean()) < 0.01  # Platt scaling: calibrated on average
    plain = OperatingPoint(calibration=None, target_sensitivity=None).start(y, None).fit(margin, y)
    assert plain.calibration_ is None and plain.threshold_ == 0.5 and plain.threshold_log_odds_ is None
    with pytest.raises(ValueError, match="target_sensitivity must be in"):
        OperatingPoint(target_sensitivity=1.5).check_params()


def test_the_fitted_state_is_the_steps_and_a_model_file_keeps_exactly_it(metadata_rows) -> None:
    from melagbm.classifier import FITTED_ATTRIBUTES
    from melagbm.persistence import _STATE

    X, y, groups = metadata_rows
    model = FusionClassifier(image_col=None, random_state=0, verbose=0).fit(X, y, groups=groups)
    stored = {name for name in vars(model) if name.endswith("_") and not name.startswith("_")}
    assert stored == set(FITTED_ATTRIBUTES) == _STATE["FusionClassifier"]
    assert model.n_estimators_ == n_rounds(model.booster_)
    assert model.family_to_columns_["patient context"] == ["patient_context__n_images"]
    assert list(model.make_steps()) == ["inputs", "image", "lesion", "context", "boosting", "pooling", "decision"]


def test_the_dask_twin_calls_no_private_method_of_fusion_classifier() -> None:
    def methods(path: Path, cls: str) -> set[str]:
        tree = ast.parse(path.read_text())
        [node] = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls]
        return {f.name for f in node.body if isinstance(f, ast.FunctionDef)}

    base = {m for m in methods(PACKAGE / "classifier.py", "FusionClassifier") if m.startswith("_")
            and not m.startswith("__")}
    twin_source = PACKAGE / "dask" / "classifier.py"
    own = methods(twin_source, "DaskFusionClassifier")
    reached = sorted({node.attr for node in ast.walk(ast.parse(twin_source.read_text()))
                      if isinstance(node, ast.Attribute) and node.attr in base - own})
    assert reached == []
