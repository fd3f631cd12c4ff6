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
        """XGBoost: ``xgboost.XGBClassifier``."""
        from xgboost import XGBClassifier

        return XGBClassifier

    def device_params(self, device: str) -> dict[str, Any]:
        """XGBoost: ``device`` "cuda" or "cpu", and ``enable_categorical``.

        Parameters
        ----------
        device : str
            "cpu" or "cuda[:n]".
        """
        return {"device": "cuda" if device.startswith("cuda") else "cpu", "enable_categorical": True}

    def validation_curve(self, estimator, X, y, sample_weight, X_val, y_val, patience):  # type: ignore[no-untyped-def]
        """XGBoost: fit a clone with ``early_stopping_rounds=patience``; its recorded validation log-loss.

        Parameters
        ----------
        estimator : XGBClassifier
            The unfitted classifier; cloned.
        X : DataFrame
            Training rows.
        y : ndarray of shape (n_samples,)
            Their class codes.
        sample_weight : ndarray of shape (n_samples,) or None
            Their weights.
        X_val : DataFrame
            Validation rows.
        y_val : ndarray of shape (n_val,)
            Their class codes.
        patience : int
            Rounds without improvement before stopping.
        """
        metric = "logloss" if len(np.unique(y)) <= 2 else "mlogloss"  # whatever the user's eval_metric
        probe = clone(estimator).set_params(early_stopping_rounds=patience, eval_metric=metric)
        probe.fit(X, y, sample_weight=sample_weight, eval_set=[(X_val, y_val)], verbose=False)
        return np.asarray(probe.evals_result()["validation_0"][metric], dtype=float)

    def margin(self, booster: Any, X: pd.DataFrame) -> np.ndarray:
        """XGBoost: ``predict(output_margin=True)``, one column raveled.

        Parameters
        ----------
        booster : XGBClassifier
            A fitted classifier.
        X : DataFrame
            Rows to score.
        """
        margin = booster.predict(X, output_margin=True)
        return margin.ravel() if margin.ndim == 2 and margin.shape[1] == 1 else margin

    def contributions(self, booster: Any, X: pd.DataFrame) -> np.ndarray:
        """XGBoost: ``Booster.predict(pred_contribs=True)`` on a ``DMatrix`` with the model's ``missing``.

        Parameters
        ----------
        booster : XGBClassifier
            A fitted classifier.
        X : DataFrame
            Rows to explain.
        """
        from xgboost import DMatrix

        missing = booster.get_params().get("missing")  # the marker the model was trained with
        matrix = DMatrix(X, enable_categorical=True, missing=np.nan if missing is None else missing)
        raw = np.asarray(booster.get_booster().predict(matrix, pred_contribs=True), dtype=float)
        return raw.reshape(X.shape[0], -1, X.shape[1] + 1)

    def to_bytes(self, booster: Any) -> bytes:
        """XGBoost: the JSON model (``save_raw(raw_format="json")``).

        Parameters
        ----------
        booster : XGBClassifier
            A fitted classifier.
        """
        return bytes(booster.get_booster().save_raw(raw_format="json"))

    def from_bytes(self, template: Any, raw: bytes, n_classes: int, features: list[str]) -> Any:
        """XGBoost: ``template.load_model`` on the JSON model, then :meth:`set_feature_names`.

        Parameters
        ----------
        template : XGBClassifier
            An unfitted classifier with the saved parameters.
        raw : bytes
            The JSON model.
        n_classes : int
            The number of classes (unused: the model holds it).
        features : list of str
            Column names.
        """
        template.load_model(bytearray(raw))
        self.set_feature_names(template, features)
        return template

    def set_feature_names(self, booster: Any, features: list[str]) -> None:
        """XGBoost: sets the booster's ``feature_names``.

        Parameters
        ----------
        booster : XGBClassifier
            A fitted classifier.
        features : list of str
            New column names.
        """
        model = booster.get_booster()
        if model.num_features() != len(features):
            raise ValueError(f"the booster has {model.num_features()} features, the manifest {len(features)}")
        model.feature_names = [str(name) for name in features]

    def dask_train(self, estimator: Any, client: Any, X: Any, y: Any, weight: Any, **fit_params: Any) -> Any:
        """XGBoost: a ``DaskXGBClassifier`` with ``estimator``'s parameters, trained through ``client``.

        Parameters
        ----------
        estimator : XGBClassifier
            The unfitted local classifier.
        client : distributed.Client
            The cluster's client.
        X : dask DataFrame
            Training rows.
        y : dask Series
            Their class codes.
        weight : dask Series or None
            Their weights.
        **fit_params : dict
            Further arguments for ``DaskXGBClassifier.fit``.
        """
        from xgboost.dask import DaskXGBClassifier

        twin = DaskXGBClassifier(**estimator.get_params())
        twin.client = client
        twin.fit(X, y, sample_weight=weight, **fit_params)
        return twin

    def to_local(self, twin: Any, estimator: Any) -> Any:
        """XGBoost: a clone of ``estimator`` loading the twin's JSON model.

        Parameters
        ----------
        twin : DaskXGBClassifier
            A trained twin.
        estimator : XGBClassifier
            The local classifier to clone.
        """
        local = clone(estimator)
        local.load_model(bytearray(twin.get_booster().save_raw(raw_format="json")))
        return local

    def dask_best_rounds(
        self, estimator: Any, client: Any, X: Any, y: Any, weight: Any, held: Any, patience: int
    ) -> int:
        """XGBoost: train the Dask twin on the other rows with ``eval_set`` the held-out ones; ``best_iteration`` + 1.

        Parameters
        ----------
        estimator : XGBClassifier
            The unfitted local classifier.
        client : distributed.Client
            The cluster's client.
        X : dask DataFrame
            All rows.
        y : dask Series
            Their class codes.
        weight : dask Series or None
            Their weights.
        held : dask Series of bool
            True for the validation rows.
        patience : int
            Rounds without improvement before stopping.
        """
        probe = clone(estimator).set_params(early_stopping_rounds=patience)
        train_weight = None if weight is None else weight[~held]
        twin = self.dask_train(probe, client, X[~held], y[~held], train_weight,
                               eval_set=[(X[held], y[held])], verbose=False)
        return int(twin.best_iteration) + 1
