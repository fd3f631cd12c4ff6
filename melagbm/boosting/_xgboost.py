"""XGBoost: ``enable_categorical``, ``early_stopping_rounds``, ``pred_contribs`` (on the GPU when it is there)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone

from ._adapter import BoosterAdapter

__all__ = ["XGBoostAdapter"]


class XGBoostAdapter(BoosterAdapter):
    """``xgboost.XGBClassifier``: trains on CUDA when the device is a GPU."""

    name = "xgboost"
    file_name = "booster.xgb.json"
    default_params = {"n_estimators": 2000, "learning_rate": 0.03, "max_depth": 3, "min_child_weight": 2,
                      "tree_method": "hist", "enable_categorical": True, "max_cat_to_onehot": 1, "verbosity": 0}

    def estimator_class(self) -> type:
        from xgboost import XGBClassifier

        return XGBClassifier

    def device_params(self, device: str) -> dict[str, Any]:
        return {"device": "cuda" if device.startswith("cuda") else "cpu", "enable_categorical": True}

    def best_rounds(self, estimator, X, y, sample_weight, X_val, y_val, patience):  # type: ignore[no-untyped-def]
        probe = clone(estimator).set_params(early_stopping_rounds=patience)
        probe.fit(X, y, sample_weight=sample_weight, eval_set=[(X_val, y_val)], verbose=False)
        return int(probe.best_iteration) + 1

    def margin(self, booster: Any, X: pd.DataFrame) -> np.ndarray:
        margin = booster.predict(X, output_margin=True)
        return margin.ravel() if margin.ndim == 2 and margin.shape[1] == 1 else margin

    def contributions(self, booster: Any, X: pd.DataFrame) -> np.ndarray:
        from xgboost import DMatrix

        missing = booster.get_params().get("missing")  # the marker the model was trained with
        matrix = DMatrix(X, enable_categorical=True, missing=np.nan if missing is None else missing)
        raw = np.asarray(booster.get_booster().predict(matrix, pred_contribs=True), dtype=float)
        return raw.reshape(X.shape[0], -1, X.shape[1] + 1)

    def to_bytes(self, booster: Any) -> bytes:
        return bytes(booster.get_booster().save_raw(raw_format="json"))

    def from_bytes(self, template: Any, raw: bytes, n_classes: int, n_features: int) -> Any:
        template.load_model(bytearray(raw))
        return template

    def dask_train(self, estimator: Any, client: Any, X: Any, y: Any, weight: Any, **fit_params: Any) -> Any:
        from xgboost.dask import DaskXGBClassifier

        twin = DaskXGBClassifier(**estimator.get_params())
        twin.client = client
        twin.fit(X, y, sample_weight=weight, **fit_params)
        return twin

    def to_local(self, twin: Any, estimator: Any) -> Any:
        local = clone(estimator)
        local.load_model(bytearray(twin.get_booster().save_raw(raw_format="json")))
        return local

    def dask_best_rounds(
        self, estimator: Any, client: Any, X: Any, y: Any, weight: Any, held: Any, patience: int
    ) -> int:
        probe = clone(estimator).set_params(early_stopping_rounds=patience)
        train_weight = None if weight is None else weight[~held]
        twin = self.dask_train(probe, client, X[~held], y[~held], train_weight,
                               eval_set=[(X[held], y[held])], verbose=False)
        return int(twin.best_iteration) + 1
