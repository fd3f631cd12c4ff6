"""The step contract: fit as a loop over named steps, predict as the same steps' transform, options as call
arguments (data-free: synthetic images)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from melagbm import EmbeddingStore, FusionClassifier
from melagbm.datasets import make_synthetic
from melagbm.embedding import BadImageWarning
from melagbm.features.inputs import InputGate
from melagbm.pipeline import Rows, StepOptions, run_steps

LITE0 = "tf_efficientnet_lite0"


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> tuple:
    folder = tmp_path_factory.mktemp("synthetic")
    X, y, groups = make_synthetic(n_samples=140, directory=folder, random_state=0)
    store = EmbeddingStore(tmp_path_factory.mktemp("store"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = FusionClassifier(backbone=LITE0, cache=store, n_seeds=2, random_state=0, verbose=0)
        model.fit(X, y, groups=groups)
    return X, y, groups, model, store


def test_rows_keep_drops_every_per_row_value_and_member_tables_share_the_steps_order() -> None:
    frame = pd.DataFrame({"a": range(5)}, index=list("vwxyz"))
    image = pd.DataFrame({"image__score": np.arange(5.0)})
    other = pd.DataFrame({"image__score": -np.arange(5.0)})
    meta = pd.DataFrame({"age__years": np.arange(5.0) * 10})
    rows = Rows(frame=frame, y=np.array([0, 1, 0, 1, 0]), groups=np.array(list("ppqqr")),
                columns={"image": image, "metadata": meta}, member_columns=[{"image": other}])
    kept = rows.keep(np.array([True, False, True, True, False]))
    assert list(kept.frame.index) == ["v", "x", "y"] and kept.y.tolist() == [0, 0, 1]
    assert kept.groups.tolist() == ["p", "q", "q"] and kept.unreadable.tolist() == [False] * 3
    assert kept.table()["image__score"].tolist() == [0.0, 2.0, 3.0]
    first, second, third = kept.member_tables(3)
    assert list(first.columns) == list(second.columns) == ["image__score", "age__years"]
    assert second["image__score"].tolist() == [-0.0, -2.0, -3.0] and third is first  # no third version: the first's
    assert list(kept.table(without=("image",)).columns) == ["age__years"]


def test_fit_runs_the_named_steps_in_order_and_times_each_stage(synthetic, capsys) -> None:
    X, y, groups, model, _ = synthetic
    names = [step.name for step in model.fitted_feature_steps()]
    assert names == ["inputs", "embedding", "image", "metadata", "lesion"]  # no patient column in the synthetic data
    assert [step.runs_on for step in model.fitted_feature_steps()] == ["client", "partition", "client", "client", "partition"]
    assert list(model.fit_seconds_)[:5] == names
    assert {"boosting", "decision (out of fold)", "model card"} <= set(model.fit_seconds_)
    assert all(seconds >= 0 for seconds in model.fit_seconds_.values())
    families: dict[str, str] = {}
    for step in model.fitted_feature_steps():
        families.update(step.feature_families_)
    assert families == model.feature_families_  # the model's families are the steps' own, in their order
    verbose = FusionClassifier(image_col=None, verbose=2).fit(X[["age", "sex", "site"]], y, groups=groups)
    captured = capsys.readouterr()
    log = captured.out + captured.err
    assert "fit stages: inputs" in log and "metadata" in log and set(verbose.fit_seconds_) >= {"inputs", "metadata"}


def test_predict_is_the_fitted_steps_transform_in_turn(synthetic) -> None:
    X, _, _, model, store = synthetic
    gate = model.fitted_feature_steps()[0].gate
    assert isinstance(gate, InputGate)
    rows = run_steps(model.fitted_feature_steps(), Rows(frame=X.iloc[:25]), StepOptions(cache=store), fitting=False)
    pd.testing.assert_frame_equal(rows.table()[model.feature_names_],
                                  model.transform_features(X.iloc[:25]).reset_index(drop=True))


def test_the_store_and_bad_image_rule_are_call_options_never_written_to_fitted_steps(synthetic, tmp_path) -> None:
    X, _, _, model, store = synthetic
    other = EmbeddingStore(tmp_path / "other")
    model.set_params(cache=other, on_bad_image="skip")
    try:
        before = [(embedder.cache, embedder.on_bad_image) for embedder in model.embedders_]
        with pytest.warns(DeprecationWarning, match="fitted_feature_steps"):
            _ = model.feature_steps_  # reading the (deprecated) assembler changes nothing
        rows = X.iloc[:6].copy()
        rows.iloc[0, rows.columns.get_loc("image")] = str(tmp_path / "missing.png")
        with pytest.warns(BadImageWarning):
            proba = model.predict_proba(rows)[:, 1]
        assert np.isnan(proba[0]) and not np.isnan(proba[1:]).any()  # the call's rule: skipped, not raised
        assert model.embedders_[0].encoder_id_ in other.encoders()  # the call's store got the vectors
        assert model.lesion_features_.encoder_id_ in other.encoders()
        assert [(embedder.cache, embedder.on_bad_image) for embedder in model.embedders_] == before
        assert model.lesion_features_.cache is store
    finally:
        model.set_params(cache=store, on_bad_image="raise")


def test_renamed_parameters_and_methods_still_work_for_a_release_with_a_deprecation_warning() -> None:
    with pytest.warns(DeprecationWarning, match="'image_features' is renamed 'image_encoding'"):
        image = FusionClassifier(image_features="pca").make_steps()["image"]
    assert image.scorer.mode == "pca"
    with pytest.warns(DeprecationWarning, match="'image_signal' is renamed 'backbone_signals'"):
        image = FusionClassifier(image_signal="per_backbone").make_steps()["image"]
    assert image.signal == "per_backbone"
    with pytest.warns(DeprecationWarning, match=r"fit_steps\(\) is renamed make_steps\(\)"):
        assert list(FusionClassifier().fit_steps()) == list(FusionClassifier().make_steps())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the new names warn nothing
        image = FusionClassifier(image_encoding="probe+pca", backbone_signals="per_backbone").make_steps()["image"]
    assert (image.scorer.mode, image.signal) == ("probe+pca", "per_backbone")
    with pytest.raises(ValueError, match="image_encoding must be one of"):
        FusionClassifier(image_encoding="probes").make_steps()


def test_a_model_saved_under_the_old_parameter_names_loads_with_the_new_ones() -> None:
    old = FusionClassifier()
    state = {**vars(old), "image_features": "pca", "image_signal": "per_backbone"}
    del state["image_encoding"], state["backbone_signals"]  # as a pickle of an earlier release holds it
    loaded = FusionClassifier.__new__(FusionClassifier)
    loaded.__setstate__(state)
    params = loaded.get_params()
    assert (params["image_encoding"], params["backbone_signals"]) == ("pca", "per_backbone")
    assert params["image_features"] == params["image_signal"] == "deprecated"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert loaded.make_steps()["image"].scorer.mode == "pca"  # a refit of it warns nothing
