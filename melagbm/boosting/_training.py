"""Making a booster from melagbm's parameters, and fitting it with early stopping that melagbm owns."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone

from ._average import BoosterAverage
from ._registry import adapter_for

__all__ = ["contributions", "fit_booster", "make_booster", "margin"]


def make_booster(
    booster: Any,
    *,
    params: dict[str, Any] | None,
    device: str,
    random_state: int,
    n_jobs: int | None,
) -> Any:
    """An unfitted classifier: from a name (with the adapter's defaults) or a clone of an instance.

    Parameters
    ----------
    booster : "lightgbm", "xgboost" or estimator
        A name (with the adapter's ``default_params``) or an ``LGBMClassifier``/``XGBClassifier`` to clone.
    params : dict or None
        Parameters set over the defaults or the instance's own.
    device : str
        "cpu" or "cuda[:n]"; the adapter's :meth:`~BoosterAdapter.device_params` fill in what ``params`` leaves unset.
    random_state : int
        The seed, unless ``params`` or the instance sets one.
    n_jobs : int or None
        Booster threads, unless ``params`` or the instance sets them; None: the library's default.

    Returns
    -------
    LGBMClassifier or XGBClassifier
        The unfitted classifier.
    """
    adapter = adapter_for(booster)
    if isinstance(booster, str):
        estimator = adapter.estimator_class()(**adapter.default_params)
    else:
        estimator = clone(booster)
    settings: dict[str, Any] = dict(params or {})
    own = estimator.get_params()
    if own.get("random_state") is None:  # an instance's own settings win
        settings.setdefault("random_state", random_state)
    if n_jobs is not None and own.get("n_jobs") is None:
        settings.setdefault("n_jobs", n_jobs)
    for key, value in adapter.device_params(device).items():
        settings.setdefault(key, value)
    return estimator.set_params(**settings)


def fit_booster(
    estimator: Any,
    X: pd.DataFrame,
    y: np.ndarray,
    *,
    sample_weight: np.ndarray | None,
    validation: tuple[np.ndarray, np.ndarray] | list[tuple[np.ndarray, np.ndarray]] | None,
    n_iter_no_change: int,
) -> tuple[Any, int]:
    """Fit ``estimator``; with ``validation`` (train, val indices) stop early, then refit.

    Early stopping watches the validation log-loss; the model is then refit on all
    rows with the best number of rounds, so no labelled row is wasted.

    Parameters
    ----------
    estimator : LGBMClassifier or XGBClassifier
        The unfitted classifier (as :func:`make_booster` makes it); without ``validation`` it is fitted
        itself, with it a clone is.
    X : DataFrame
        Feature table.
    y : ndarray of shape (n_samples,)
        Class codes.
    sample_weight : ndarray of shape (n_samples,) or None
        Row weights; None weighs every row alike.
    validation : tuple of (ndarray, ndarray), list of them, or None
        Row positions of the training and validation rows for early stopping; with a list of them,
        the rounds where the splits' mean validation log-loss is lowest (a split that stopped
        early counts with its last value; steadier on small data than one split). None, a
        patience of 0 or a DART booster fit ``estimator``'s ``n_estimators`` rounds.
    n_iter_no_change : int
        Rounds without improvement of the validation metric before stopping.

    Returns
    -------
    estimator : LGBMClassifier or XGBClassifier
        The classifier, fitted on every row.
    n_rounds : int
        The number of boosting rounds it holds.
    """
    if validation is not None and _stops_early(estimator, n_iter_no_change):
        several = isinstance(validation, list) and len(validation) > 0 and isinstance(validation[0], tuple)
        splits = validation if several else [validation]
        adapter = adapter_for(estimator)
        curves = [
            adapter.validation_curve(estimator, X.iloc[train], y[train],
                                     None if sample_weight is None else sample_weight[train],
                                     X.iloc[val], y[val], n_iter_no_change)
            for train, val in splits
        ]
        longest = max(len(curve) for curve in curves)  # a stopped curve is taken on at its last value
        padded = [np.concatenate([curve, np.full(longest - len(curve), curve[-1])]) for curve in curves]
        best = int(np.argmin(np.mean(padded, axis=0))) + 1
        estimator = clone(estimator).set_params(n_estimators=best)
    estimator.fit(X, y, sample_weight=sample_weight)
    return estimator, int(estimator.get_params()["n_estimators"])


def _stops_early(estimator: Any, patience: int) -> bool:
    """Early stopping applies: a positive patience and no DART booster (whose rounds are all kept)."""
    params = estimator.get_params()
    return patience > 0 and "dart" not in (params.get("boosting_type"), params.get("booster"))


def margin(booster: Any, X: pd.DataFrame) -> np.ndarray:
    """A fitted booster's raw margin: (n,) log-odds for two classes, (n, k) otherwise.

    Parameters
    ----------
    booster : LGBMClassifier, XGBClassifier or BoosterAverage
        A fitted classifier, or several averaged.
    X : DataFrame
        Rows with the columns the booster was fitted on.

    Returns
    -------
    ndarray of shape (n_samples,) or (n_samples, n_classes)
        Raw scores before the sigmoid (two classes) or softmax.
    """
    if isinstance(booster, BoosterAverage):
        return booster.margin(X)
    return adapter_for(booster).margin(booster, X)


def contributions(booster: Any, X: pd.DataFrame) -> np.ndarray:
    """A fitted booster's exact SHAP contributions, (n, outputs, features + 1), the base value last.

    Parameters
    ----------
    booster : LGBMClassifier, XGBClassifier or BoosterAverage
        A fitted classifier, or several averaged (their mean contributions).
    X : DataFrame
        Rows to explain, with the columns the booster was fitted on.

    Returns
    -------
    ndarray of shape (n_samples, n_outputs, n_features + 1)
        Per output, each feature's contribution in margin space and the base value.
    """
    if isinstance(booster, BoosterAverage):
        return booster.contributions(X)
    return adapter_for(booster).contributions(booster, X)
