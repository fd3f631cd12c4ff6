"""Calibrated probabilities and the operating threshold, on real HAM10000 metadata and images (parameter checks
and the small-data fallback on synthetic rows)."""

from __future__ import annotations

import numpy as np
import pytest

from melagbm import FusionClassifier
from melagbm.boosting import margin as booster_margin
from melagbm.datasets import load_ham10000, make_synthetic
from melagbm.decision import Calibration, fit_calibration, sigmoid
from melagbm.evaluation import cross_validate
from melagbm.pooling import pool_by_lesion


@pytest.fixture(scope="module")
def synthetic_metadata():
    """600 synthetic rows of age, sex and site (no data set needed: parameter checks, small-data fallbacks)."""
    X, y, groups = make_synthetic(n_samples=600, image_size=16, random_state=0)
    return X.drop(columns="image"), y, groups


@pytest.fixture(scope="module")
def ham_metadata(ham_root):
    """All 10,015 HAM10000 rows, metadata only (no images needed)."""
    X, y, groups = load_ham10000(ham_root)
    return X.drop(columns="image"), y, groups


def test_calibrations_are_monotone_probabilities() -> None:
    rng = np.random.default_rng(0)
    margin = rng.normal(size=2000)
    y = (rng.random(2000) < sigmoid(2 * margin - 1)).astype(int)
    platt = fit_calibration("sigmoid", margin, y)
    assert platt.slope == pytest.approx(2, abs=0.3) and platt.intercept == pytest.approx(-1, abs=0.3)
    iso = fit_calibration("isotonic", margin, y)
    grid = np.linspace(-4, 4, 101)
    for calibration in (platt, iso):
        p = calibration(grid)
        assert np.all((p >= 0) & (p <= 1)) and np.all(np.diff(p) >= 0)
    with pytest.raises(ValueError, match="calibration must be"):
        fit_calibration("beta", margin, y)
    assert Calibration("shift", intercept=-np.log(4))(np.array([np.log(4)]))[0] == pytest.approx(0.5)


def test_class_weighting_is_undone_in_predict_proba(ham_metadata) -> None:
    """'balanced' weights inflate the melanoma probability about 8x on HAM10000; melagbm undoes it."""
    X, y, groups = ham_metadata
    prevalence = y.mean()
    raw = FusionClassifier(image_col=None, class_weight="balanced", calibration=None, target_sensitivity=None,
                           random_state=0).fit(X, y, groups=groups)
    assert raw.calibration_.method == "shift"
    booster_mean = raw.booster_.predict_proba(raw.transform_features(X))[:, 1].mean()
    assert booster_mean > 3 * prevalence
    assert raw.predict_proba(X)[:, 1].mean() == pytest.approx(prevalence, rel=0.25)


def test_out_of_fold_probabilities_are_calibrated(ham_metadata) -> None:
    X, y, groups = ham_metadata
    model = FusionClassifier(image_col=None, class_weight="balanced", random_state=0)
    result = cross_validate(model, X, y, groups, n_splits=3, n_bootstrap=0)
    oof = result.oof
    assert oof["proba"].mean() == pytest.approx(y.mean(), rel=0.15)  # calibration in the large
    bins = np.quantile(oof["proba"], [0, 0.5, 0.8, 0.95, 1.0])
    which = np.clip(np.digitize(oof["proba"], bins[1:-1]), 0, 3)
    for b in range(4):  # calibration in each risk band, observed vs. predicted
        rows = which == b
        assert abs(oof.loc[rows, "y"].mean() - oof.loc[rows, "proba"].mean()) < 0.06
    # sensitivity at each fold's operating threshold is close to the 90 % asked for
    assert 0.8 <= result.metrics.loc["sensitivity", "value"] <= 0.99


def test_threshold_and_decisions_on_real_images(ham_sample) -> None:
    X, y, groups = ham_sample
    model = FusionClassifier(target_sensitivity=0.8, calibration="isotonic", random_state=0).fit(X, y, groups=groups)
    assert model.calibration_.method == "isotonic" and 0 < model.threshold_ < 1
    proba = model.predict_proba(X)[:, 1]
    np.testing.assert_array_equal(model.predict(X), (proba >= model.threshold_).astype(int))
    decision = model.decision_function(X)
    np.testing.assert_array_equal(decision > 0, proba >= model.threshold_)
    np.testing.assert_allclose(sigmoid(decision + model.threshold_log_odds_), np.clip(proba, 1e-12, 1 - 1e-12))
    plain = FusionClassifier(calibration=None, target_sensitivity=None, random_state=0).fit(X, y, groups=groups)
    assert plain.calibration_ is None and plain.threshold_ == 0.5 and plain.threshold_log_odds_ is None
    np.testing.assert_allclose(sigmoid(plain.decision_function(X)), plain.predict_proba(X)[:, 1])
    margin = pool_by_lesion(booster_margin(plain.booster_, plain.transform_features(X)), X["lesion_id"].to_numpy())
    np.testing.assert_allclose(plain.predict_proba(X)[:, 1], sigmoid(margin))  # the booster's own, of the lesion


@pytest.mark.parametrize(
    "params, message",
    [
        ({"calibration": "platt"}, "calibration must be"),
        ({"target_sensitivity": 1.5}, "target_sensitivity"),
        ({"calibration_folds": 1}, "calibration_folds"),
    ],
)
def test_bad_decision_parameters_are_named(synthetic_metadata, params, message) -> None:
    X, y, groups = synthetic_metadata
    with pytest.raises(ValueError, match=message):
        FusionClassifier(image_col=None, **params).fit(X, y, groups=groups)


def test_too_few_melanoma_groups_warn_and_fall_back(synthetic_metadata) -> None:
    X, y, groups = synthetic_metadata
    rows = np.r_[np.flatnonzero(y == 1)[:1], np.flatnonzero(y == 0)[:60]]
    with pytest.warns(UserWarning, match="No out-of-fold calibration"):
        model = FusionClassifier(image_col=None, random_state=0).fit(X.iloc[rows], y.iloc[rows])
    assert model.calibration_ is None and model.threshold_ == 0.5


def test_without_a_threshold_predict_is_the_argmax_even_on_isotonic_plateaus(ham_metadata) -> None:
    X, y, groups = ham_metadata
    model = FusionClassifier(image_col=None, calibration="isotonic", target_sensitivity=None, random_state=0)
    model.fit(X, y, groups=groups)
    proba = model.predict_proba(X)
    predicted = model.predict(X)
    np.testing.assert_array_equal(predicted, model.classes_[np.argmax(proba, axis=1)])
    np.testing.assert_array_equal(model.decision_function(X) > 0, predicted == 1)
