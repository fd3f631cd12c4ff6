"""scikit-learn's estimator checks on the parts that take numeric input."""

from __future__ import annotations

from sklearn.utils.estimator_checks import parametrize_with_checks

from melagbm import FusionClassifier, MetadataEncoder


@parametrize_with_checks(
    [
        FusionClassifier(image_col=None, booster_params={"n_estimators": 50}, random_state=0),
        MetadataEncoder(),
    ]
)
def test_sklearn_compatible_estimator(estimator, check) -> None:
    check(estimator)
