"""Model files saved by earlier releases load and predict exactly as they did (issue 17's safety net).

``tests/fixtures/models/`` holds models saved by the releases named in their file names (made by
``tests/fixtures/make_legacy_models.py``), the probabilities each gave on 30 held-out ISIC 2020 images,
and an embedding store with those images' vectors and lesion measurements, so the comparison runs
the whole model without recomputing the CNN's float32 output.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import melagbm
from melagbm.datasets import load_isic2020

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "models"
SAVED = sorted(FIXTURES.glob("*.melagbm"))


def test_every_release_and_kind_has_a_fixture() -> None:
    names = {path.stem.rsplit("-", 1)[0] for path in SAVED}
    assert {"lgbm_fused_context", "xgb_fused_context", "lgbm_image_plain", "xgb_metadata"} <= names
    assert len({path.stem.rsplit("-", 1)[1] for path in SAVED}) >= 2  # more than one release


@pytest.mark.parametrize("path", SAVED, ids=[path.stem for path in SAVED])
def test_saved_model_predicts_as_it_did(path, isic_root, tmp_path, monkeypatch) -> None:
    store = tmp_path / "cache"
    shutil.copytree(FIXTURES / "embeddings", store / "embeddings")
    monkeypatch.setenv("MELAGBM_CACHE", str(store))
    expected = pd.read_csv(path.with_suffix(".csv"))
    X, _, groups = load_isic2020(isic_root)
    X = X.assign(patient_id=groups.to_numpy()).loc[expected["image_name"]]
    model = melagbm.load(path)
    X = X[list(model.feature_names_in_)]
    hits = melagbm.EmbeddingStore(store / "embeddings").stats()["entries"]
    np.testing.assert_allclose(model.predict_proba(X)[:, 1], expected["proba"].to_numpy(), rtol=0, atol=1e-9)
    np.testing.assert_array_equal(model.predict(X), expected["predicted"].to_numpy())
    if model.embedders_:  # the vectors came from the store: the encoder's identity (its store key) is unchanged
        assert melagbm.EmbeddingStore(store / "embeddings").stats()["entries"] == hits


def _saved_state(path: Path) -> dict:
    with zipfile.ZipFile(path) as archive:
        return json.loads(archive.read("manifest.json"))["model"]["state"]["__dict__"]


#: Files in melagbm 0.1's layout: flat attributes (embedders_, calibration_, ...), names before family__feature.
FLAT = [path for path in SAVED if "embedders_" in _saved_state(path)]


def test_fixtures_hold_both_layouts() -> None:
    """Files in the flat layout of 0.1 and files holding the steps (saved by the redesigned release)."""
    assert FLAT and len(FLAT) < len(SAVED)


@pytest.mark.parametrize("path", FLAT, ids=[path.stem for path in FLAT])
def test_saved_model_loads_as_todays_steps_with_family_feature_names(path) -> None:
    """The flat state of the files becomes the steps; the columns get today's names; the derived values are
    the ones the file stored."""
    from melagbm.features._names import current_name

    saved = _saved_state(path)
    model = melagbm.load(path)
    old_names = saved["feature_names_"]
    assert model.feature_names_ == [current_name(name) for name in old_names]
    assert all("__" in name for name in model.feature_names_) and "age__years" in model.feature_names_
    assert model.n_estimators_ == saved["n_estimators_"]
    assert model.threshold_ == saved["threshold_"]
    assert model.threshold_log_odds_ == saved["threshold_log_odds_"]
    assert model.oof_roc_auc_ == saved.get("oof_roc_auc_")
    families = saved["family_to_columns_"]["__dict__"]
    assert model.family_to_columns_ == {family: [current_name(c) for c in columns] for family, columns in families.items()}
    assert (model.image_features_ is None) == (not saved["embedders_"])
    assert (model.patient_context_ is None) == (saved["patient_col_"] is None)
