"""Boosters trained across the cluster: xgboost.dask (GPU capable) or lightgbm.dask, returned as local models."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone

from ..boosters import booster_kind

__all__ = ["fit_distributed", "margins"]


def _dask_twin(estimator: Any, client: Any) -> Any:
    """The Dask estimator with ``estimator``'s parameters."""
    params = estimator.get_params()
    if booster_kind(estimator) == "lightgbm":
        from lightgbm.dask import DaskLGBMClassifier

        params.pop("n_jobs", None)  # lightgbm.dask trains with each worker's threads
        return DaskLGBMClassifier(client=client, **params)
    from xgboost.dask import DaskXGBClassifier

    twin = DaskXGBClassifier(**params)
    twin.client = client
    return twin


def _to_local(twin: Any, estimator: Any) -> Any:
    """The trained Dask model as ``estimator``'s local class (what FusionClassifier holds)."""
    if booster_kind(estimator) == "lightgbm":
        return twin.to_local()
    local = clone(estimator)
    local.load_model(bytearray(twin.get_booster().save_raw(raw_format="json")))
    return local


def _train(estimator: Any, client: Any, X: Any, y: Any, weight: Any, **fit_params: Any) -> Any:
    twin = _dask_twin(estimator, client)
    with warnings.catch_warnings():  # lightgbm.dask notes that it sets the threads itself
        warnings.filterwarnings("ignore", message="Parameter (n_jobs|num_threads) will be ignored")
        twin.fit(X, y, sample_weight=weight, **fit_params)
    return twin


def _lightgbm_matrix(X: pd.DataFrame, booster: Any) -> np.ndarray:
    """``X`` as the float matrix LightGBM predicts on: categories as the codes it trained with, NaN if unseen."""
    categories = iter(booster.pandas_categorical or [])
    columns = []
    for name in X.columns:
        column = X[name]
        if isinstance(column.dtype, pd.CategoricalDtype):
            codes = column.cat.set_categories(next(categories)).cat.codes.to_numpy()
            columns.append(np.where(codes < 0, np.nan, codes.astype(float)))
        else:
            columns.append(column.to_numpy(dtype=float, na_value=np.nan))
    return np.column_stack(columns)


def _best_rounds_lightgbm(local: Any, X_val: pd.DataFrame, y_val: np.ndarray, patience: int) -> int:
    """LightGBM's early-stopping rule on validation log-loss, replayed tree by tree on a trained model.

    (lightgbm.dask has no early stopping: each worker would judge on its own share.)
    """
    booster = local.booster_
    rounds_trained = booster.current_iteration()
    params = local.get_params()
    if patience <= 0 or params.get("boosting_type") == "dart":  # LightGBM does not stop early then
        return rounds_trained
    metric = params.get("metric")
    if metric not in (None, "", "binary_logloss", "logloss", "binary", "cross_entropy", "xentropy"):
        raise ValueError(
            f"DaskFusionClassifier stops LightGBM early on log-loss, as FusionClassifier does by default; "
            f"metric={metric!r} is not supported there: drop it, or set early_stopping=False"
        )
    values = _lightgbm_matrix(X_val, booster)
    margin = np.zeros(len(X_val))
    best, best_loss = 1, np.inf
    for rounds in range(1, rounds_trained + 1):
        margin += booster.predict(values, start_iteration=rounds - 1, num_iteration=1, raw_score=True)
        loss = float(np.mean(np.logaddexp(0.0, margin) - y_val * margin))
        if loss < best_loss:
            best, best_loss = rounds, loss
        elif rounds - best >= patience:
            break
    return best


def fit_distributed(
    estimator: Any, client: Any, X: Any, y: Any, weight: Any = None, *,
    validation: Any = None, n_iter_no_change: int = 100,
) -> tuple[Any, int]:
    """Train ``estimator``'s Dask twin on Dask ``X``/``y``; with ``validation`` (a boolean Dask
    Series, True = held out), stop early on the held-out rows, then retrain on all rows with
    the best number of rounds, as :func:`melagbm.boosters.fit_booster` does locally.

    Returns the trained model as a local classifier, and its number of rounds.
    """
    if validation is not None:
        train, held = ~validation, validation
        train_weight = None if weight is None else weight[train]
        if booster_kind(estimator) == "xgboost":
            probe = clone(estimator).set_params(early_stopping_rounds=n_iter_no_change)
            twin = _train(probe, client, X[train], y[train], train_weight,
                          eval_set=[(X[held], y[held])], verbose=False)
            best = int(twin.best_iteration) + 1
        else:
            local = _to_local(_train(estimator, client, X[train], y[train], train_weight), estimator)
            X_val, y_val = client.compute([X[held], y[held]], sync=True)  # one pass over the table
            best = _best_rounds_lightgbm(local, X_val, y_val.to_numpy(), n_iter_no_change)
        estimator = clone(estimator).set_params(n_estimators=max(best, 1))
    local = _to_local(_train(estimator, client, X, y, weight), estimator)
    return local, int(local.get_params()["n_estimators"])


def margins(local: Any, X: Any, rows: Any) -> pd.Series:
    """The local model's raw margins for Dask ``X``, computed on the workers, indexed by ``rows``."""
    from ..classifier import _margin

    def partition(part: pd.DataFrame, row: pd.Series) -> pd.Series:
        return pd.Series(_margin(local, part) if len(part) else np.zeros(0), index=row.to_numpy(), dtype=float)

    return X.map_partitions(partition, rows, meta=pd.Series([], dtype=float)).compute()
