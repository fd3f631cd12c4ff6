"""LightGBM / XGBoost adapters: defaults, device mapping and owned early stopping."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone

__all__ = ["BOOSTERS", "DEFAULT_PARAMS", "booster_kind", "fit_booster", "make_booster"]

_logger = logging.getLogger(__name__)

BOOSTERS = ("lightgbm", "xgboost")

#: Small trees: a few strong features (image score, age, site) over thousands of rows.
#: Tuned by lesion-grouped CV on HAM10000 (benchmarks/quality.py).
DEFAULT_PARAMS: dict[str, dict[str, Any]] = {
    "lightgbm": {
        "n_estimators": 2000,
        "learning_rate": 0.03,
        "num_leaves": 7,
        "min_child_samples": 40,
        "verbose": -1,
    },
    "xgboost": {
        "n_estimators": 2000,
        "learning_rate": 0.03,
        "max_depth": 3,
        "min_child_weight": 2,
        "tree_method": "hist",
        "enable_categorical": True,
        "max_cat_to_onehot": 1,
        "verbosity": 0,
    },
}


def booster_kind(estimator: Any) -> str:
    """"lightgbm" or "xgboost" for an estimator instance from either library."""
    module = type(estimator).__module__
    for kind in BOOSTERS:
        if module.startswith(kind):
            return kind
    raise TypeError(
        f"booster must be 'lightgbm', 'xgboost' or an LGBMClassifier/XGBClassifier instance, "
        f"got {type(estimator).__name__}"
    )


def make_booster(
    booster: Any,
    *,
    params: dict[str, Any] | None,
    device: str,
    random_state: int,
    n_jobs: int | None,
) -> Any:
    """An unfitted classifier: from a name (with our defaults) or a clone of an instance."""
    if isinstance(booster, str):
        if booster not in BOOSTERS:
            raise ValueError(f"booster must be one of {BOOSTERS} or an estimator, got {booster!r}")
        kind = booster
        if kind == "lightgbm":
            from lightgbm import LGBMClassifier as Classifier
        else:
            from xgboost import XGBClassifier as Classifier
        estimator = Classifier(**DEFAULT_PARAMS[kind])
    else:
        kind = booster_kind(booster)
        estimator = clone(booster)
    settings: dict[str, Any] = dict(params or {})
    own = estimator.get_params()
    if own.get("random_state") is None:  # an instance's own settings win
        settings.setdefault("random_state", random_state)
    if n_jobs is not None and own.get("n_jobs") is None:
        settings.setdefault("n_jobs", n_jobs)
    if kind == "xgboost":
        settings.setdefault("device", "cuda" if device.startswith("cuda") else "cpu")
        settings.setdefault("enable_categorical", True)
    elif device.startswith("cuda"):
        _logger.info("LightGBM trains on the CPU (GPU builds are not assumed)")
    return estimator.set_params(**settings)


def fit_booster(
    estimator: Any,
    X: pd.DataFrame,
    y: np.ndarray,
    *,
    sample_weight: np.ndarray | None,
    validation: tuple[np.ndarray, np.ndarray] | None,
    n_iter_no_change: int,
) -> tuple[Any, int]:
    """Fit ``estimator``; with ``validation`` (train, val indices) stop early, then refit.

    Early stopping watches the validation log-loss; the model is then refit on all
    rows with the best number of rounds, so no labelled row is wasted.
    Returns the fitted estimator and the number of boosting rounds it holds.
    """
    kind = booster_kind(estimator)
    if validation is not None:
        train, val = validation
        probe = clone(estimator)
        weights = None if sample_weight is None else sample_weight[train]
        if kind == "lightgbm":
            import lightgbm

            probe.fit(
                X.iloc[train], y[train], sample_weight=weights,
                eval_X=(X.iloc[val],), eval_y=(y[val],),
                callbacks=[lightgbm.early_stopping(n_iter_no_change, verbose=False)],
            )
            best = int(probe.best_iteration_ or probe.n_estimators)
        else:
            probe.set_params(early_stopping_rounds=n_iter_no_change)
            probe.fit(
                X.iloc[train], y[train], sample_weight=weights,
                eval_set=[(X.iloc[val], y[val])], verbose=False,
            )
            best = int(probe.best_iteration) + 1
        estimator = clone(estimator).set_params(n_estimators=max(best, 1))
    estimator.fit(X, y, sample_weight=sample_weight)
    return estimator, int(estimator.get_params()["n_estimators"])
