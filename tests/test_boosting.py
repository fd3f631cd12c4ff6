"""One adapter per boosting backend: each does every backend-specific job, and only it touches its library."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from scipy.special import logit

from melagbm import MetadataEncoder
from melagbm.boosting import ADAPTERS, adapter_for, fit_booster, make_booster, margin
from melagbm.datasets import load_isic2020

PACKAGE = Path(__file__).resolve().parents[1] / "melagbm"


@pytest.fixture(scope="module")
def table(isic_root):
    """4,000 rows of the real ISIC 2020 metadata, encoded as the booster sees them (categorical sex, site)."""
    X, y, _ = load_isic2020(isic_root, metadata="ISIC_2020_Training_GroundTruth.csv", image_dir=None,
                            n_samples=4000, positive_fraction=0.05, random_state=0)
    return MetadataEncoder().fit_transform(X.drop(columns="patient_id")).reset_index(drop=True), y.to_numpy()


@pytest.mark.parametrize("name", list(ADAPTERS))
def test_adapter_makes_fits_explains_and_serialises(table, name) -> None:
    X, y = table
    adapter = ADAPTERS[name]
    estimator = make_booster(name, params={"n_estimators": 300}, device="cpu", random_state=0, n_jobs=1)
    assert adapter_for(estimator) is adapter and type(estimator) is adapter.estimator_class()
    rows = np.arange(len(y))
    validation = (rows[rows % 5 != 0], rows[rows % 5 == 0])
    fitted, rounds = fit_booster(estimator, X, y, sample_weight=None, validation=validation, n_iter_no_change=20)
    assert 1 <= rounds < 300 and fitted.get_params()["n_estimators"] == rounds  # stopped early, refit on all rows
    raw = margin(fitted, X)
    np.testing.assert_allclose(raw, logit(fitted.predict_proba(X)[:, 1]), atol=1e-6)
    contributions = adapter.contributions(fitted, X)
    assert contributions.shape == (len(X), 1, X.shape[1] + 1)
    np.testing.assert_allclose(contributions.sum(axis=2)[:, 0], raw, atol=1e-4)  # exact TreeSHAP adds up
    template = make_booster(name, params={"n_estimators": 300}, device="cpu", random_state=0, n_jobs=1)
    restored = adapter.from_bytes(template, adapter.to_bytes(fitted), n_classes=2, features=list(X.columns))
    np.testing.assert_array_equal(margin(restored, X), raw)


def test_device_maps_per_backend() -> None:
    assert ADAPTERS["xgboost"].device_params("cuda:0")["device"] == "cuda"
    assert ADAPTERS["xgboost"].device_params("cpu")["device"] == "cpu"
    assert ADAPTERS["lightgbm"].device_params("cuda") == {}  # LightGBM trains on the CPU


def test_unknown_boosters_are_named() -> None:
    with pytest.raises(ValueError, match="booster must be one of \\('lightgbm', 'xgboost'\\)"):
        adapter_for("catboost")
    with pytest.raises(TypeError, match="got LogisticRegression"):
        from sklearn.linear_model import LogisticRegression

        adapter_for(LogisticRegression())


def test_only_the_adapters_import_a_boosting_library() -> None:
    pattern = re.compile(r"^\s*(import|from)\s+(lightgbm|xgboost)\b", re.M)
    outside = [str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py")
               if "boosting" not in path.parts and pattern.search(path.read_text())]
    assert outside == []


def test_the_old_module_still_imports_with_a_deprecation_warning() -> None:
    import importlib
    import sys

    sys.modules.pop("melagbm.boosters", None)
    with pytest.warns(DeprecationWarning, match="import from melagbm.boosting"):
        old = importlib.import_module("melagbm.boosters")
    assert old.make_booster is make_booster and old.DEFAULT_PARAMS["lightgbm"]["num_leaves"] == 7
