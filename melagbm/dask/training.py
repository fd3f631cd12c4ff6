"""Boosters trained across the cluster: xgboost.dask (GPU capable) or lightgbm.dask, returned as local models."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone

from ..boosting import adapter_for, margin

__all__ = ["fit_distributed", "margins"]


def fit_distributed(
    estimator: Any, client: Any, X: Any, y: Any, weight: Any = None, *,
    validation: Any = None, n_iter_no_change: int = 100,
) -> tuple[Any, int]:
    """Train ``estimator``'s Dask twin on Dask ``X``/``y``; with ``validation`` (a boolean Dask
    Series, True = held out), stop early on the held-out rows, then retrain on all rows with
    the best number of rounds, as :func:`melagbm.boosting.fit_booster` does locally.

    Returns the trained model as a local classifier, and its number of rounds.
    """
    adapter = adapter_for(estimator)
    if validation is not None:
        best = adapter.dask_best_rounds(estimator, client, X, y, weight, validation, n_iter_no_change)
        estimator = clone(estimator).set_params(n_estimators=max(best, 1))
    local = adapter.to_local(adapter.dask_train(estimator, client, X, y, weight), estimator)
    return local, int(local.get_params()["n_estimators"])


def margins(local: Any, X: Any, rows: Any) -> pd.Series:
    """The local model's raw margins for Dask ``X``, computed on the workers, indexed by ``rows``."""

    def partition(part: pd.DataFrame, row: pd.Series) -> pd.Series:
        return pd.Series(margin(local, part) if len(part) else np.zeros(0), index=row.to_numpy(), dtype=float)

    return X.map_partitions(partition, rows, meta=pd.Series([], dtype=float)).compute()
