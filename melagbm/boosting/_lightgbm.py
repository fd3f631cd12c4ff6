"""LightGBM: native categoricals, callbacks for early stopping, ``pred_contrib`` for SHAP."""

from __future__ import annotations

import logging
import warnings
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone

from ._adapter import BoosterAdapter

__all__ = ["LightGBMAdapter"]

_logger = logging.getLogger(__name__)

#: Log-loss names LightGBM's early stopping watches by default for a binary objective.
_LOGLOSS_METRICS = (None, "", "binary_logloss", "logloss", "binary", "cross_entropy", "xentropy")


class LightGBMAdapter(BoosterAdapter):
    """``lightgbm.LGBMClassifier``: trains on the CPU (GPU builds are not assumed)."""

    name = "lightgbm"
    file_name = "booster.lgbm.txt"
    #: Small trees: a few strong features over thousands of rows (tuned on HAM10000, benchmarks/quality.py).
    default_params = {"n_estimators": 2000, "learning_rate": 0.03, "num_leaves": 7, "min_child_samples": 40,
                      "verbose": -1}

    def estimator_class(self) -> type:
        """LightGBM: ``lightgbm.LGBMClassifier``."""
        from lightgbm import LGBMClassifier

        return LGBMClassifier

    def device_params(self, device: str) -> dict[str, Any]:
        """LightGBM: no parameters; training stays on the CPU (a CUDA device is logged at INFO).

        Parameters
        ----------
        device : str
            "cpu" or "cuda[:n]".
        """
        if device.startswith("cuda"):
            _logger.info("LightGBM trains on the CPU (GPU builds are not assumed)")
        return {}

    def validation_curve(self, estimator, X, y, sample_weight, X_val, y_val, patience):  # type: ignore[no-untyped-def]
        """LightGBM: fit a clone with the ``lightgbm.early_stopping`` callback; its recorded validation log-loss.

        Parameters
        ----------
        estimator : LGBMClassifier
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
        import lightgbm

        metric = "binary_logloss" if len(np.unique(y)) <= 2 else "multi_logloss"  # whatever the user's metric
        probe = clone(estimator).set_params(metric=metric)
        probe.fit(X, y, sample_weight=sample_weight, eval_X=(X_val,), eval_y=(y_val,),
                  callbacks=[lightgbm.early_stopping(patience, verbose=False)])
        return np.asarray(probe.evals_result_["valid_0"][metric], dtype=float)

    def margin(self, booster: Any, X: pd.DataFrame) -> np.ndarray:
        """LightGBM: ``predict(raw_score=True)``, one column raveled.

        Parameters
        ----------
        booster : LGBMClassifier
            A fitted classifier.
        X : DataFrame
            Rows to score.
        """
        margin = booster.predict(X, raw_score=True)
        return margin.ravel() if margin.ndim == 2 and margin.shape[1] == 1 else margin

    def contributions(self, booster: Any, X: pd.DataFrame) -> np.ndarray:
        """LightGBM: ``predict(pred_contrib=True)``, reshaped per output.

        Parameters
        ----------
        booster : LGBMClassifier
            A fitted classifier.
        X : DataFrame
            Rows to explain.
        """
        n_rows, n_features = X.shape
        raw = np.asarray(booster.predict(X, pred_contrib=True), dtype=float)
        return raw.reshape(n_rows, raw.shape[1] // (n_features + 1), n_features + 1)

    def to_bytes(self, booster: Any) -> bytes:
        """LightGBM: the text model (``model_to_string``), UTF-8.

        Parameters
        ----------
        booster : LGBMClassifier
            A fitted classifier.
        """
        return booster.booster_.model_to_string().encode()

    def from_bytes(self, template: Any, raw: bytes, n_classes: int, features: list[str]) -> Any:
        """LightGBM: a ``lightgbm.Booster`` from the text model, with the attributes ``fit`` sets (lightgbm 4.x).

        Parameters
        ----------
        template : LGBMClassifier
            An unfitted classifier with the saved parameters.
        raw : bytes
            The text model.
        n_classes : int
            The number of classes.
        features : list of str
            Column names (whitespace written as "_", as LightGBM does).
        """
        import lightgbm
        from lightgbm.sklearn import _LGBMLabelEncoder

        booster = lightgbm.Booster(model_str=_with_feature_names(raw.decode(), features))
        codes = np.arange(n_classes)
        template._Booster = booster  # the attributes LGBMClassifier.fit sets (lightgbm 4.x)
        template._n_features = template._n_features_in = booster.num_feature()
        template._le = _LGBMLabelEncoder().fit(codes)
        template._classes = template._le.classes_
        template._n_classes = n_classes
        template._class_map = dict(zip(codes, codes))
        template._objective = booster.params.get("objective", "binary" if n_classes == 2 else "multiclass")
        template._fitted_with_feature_names = True
        template._evals_result, template._best_score = {}, {}
        template._best_iteration = booster.best_iteration
        template.fitted_ = True
        return template

    def set_feature_names(self, booster: Any, features: list[str]) -> None:
        """LightGBM: the booster rebuilt from its text model with the new ``feature_names=`` line.

        Parameters
        ----------
        booster : LGBMClassifier
            A fitted classifier.
        features : list of str
            New column names (whitespace written as "_", as LightGBM does).
        """
        import lightgbm

        booster._Booster = lightgbm.Booster(model_str=_with_feature_names(booster.booster_.model_to_string(), features))

    def dask_train(self, estimator: Any, client: Any, X: Any, y: Any, weight: Any, **fit_params: Any) -> Any:
        """LightGBM: a ``DaskLGBMClassifier`` with ``estimator``'s parameters less ``n_jobs`` (workers' threads).

        Parameters
        ----------
        estimator : LGBMClassifier
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
            Further arguments for ``DaskLGBMClassifier.fit``.
        """
        from lightgbm.dask import DaskLGBMClassifier

        params = estimator.get_params()
        params.pop("n_jobs", None)  # lightgbm.dask trains with each worker's threads
        twin = DaskLGBMClassifier(client=client, **params)
        with warnings.catch_warnings():  # ... and says so
            warnings.filterwarnings("ignore", message="Parameter (n_jobs|num_threads) will be ignored")
            twin.fit(X, y, sample_weight=weight, **fit_params)
        return twin

    def to_local(self, twin: Any, estimator: Any) -> Any:
        """LightGBM: the twin's own ``to_local()``.

        Parameters
        ----------
        twin : DaskLGBMClassifier
            A trained twin.
        estimator : LGBMClassifier
            Unused: the twin knows its local class.
        """
        return twin.to_local()

    def dask_best_rounds(
        self, estimator: Any, client: Any, X: Any, y: Any, weight: Any, held: Any, patience: int
    ) -> int:
        """LightGBM: train on the other rows, then replay LightGBM's rule on the held-out rows.

        lightgbm.dask has no early stopping (each worker would judge on its own share), so every
        round is trained and :meth:`replay_best_rounds` picks the best on the held-out rows, collected
        on the client.

        Parameters
        ----------
        estimator : LGBMClassifier
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
        train_weight = None if weight is None else weight[~held]
        local = self.to_local(self.dask_train(estimator, client, X[~held], y[~held], train_weight), estimator)
        X_val, y_val = client.compute([X[held], y[held]], sync=True)  # one pass over the table
        return self.replay_best_rounds(local, X_val, y_val.to_numpy(), patience)

    def replay_best_rounds(self, local: Any, X_val: pd.DataFrame, y_val: np.ndarray, patience: int) -> int:
        """LightGBM's early-stopping rule on validation log-loss, replayed tree by tree on a trained model.

        Parameters
        ----------
        local : LGBMClassifier
            A fitted two-class classifier, every round trained.
        X_val : DataFrame
            Validation rows.
        y_val : ndarray of shape (n_val,)
            Their class codes (0 or 1).
        patience : int
            Rounds without improvement before stopping; 0 keeps every round, as does a DART booster.

        Returns
        -------
        int
            The round with the lowest validation log-loss before ``patience`` rounds without a lower one.

        Raises
        ------
        ValueError
            When the booster's ``metric`` is other than log-loss.
        """
        booster = local.booster_
        rounds_trained = booster.current_iteration()
        params = local.get_params()
        if patience <= 0 or params.get("boosting_type") == "dart":  # LightGBM does not stop early then
            return rounds_trained
        if params.get("metric") not in _LOGLOSS_METRICS:
            raise ValueError(
                f"DaskFusionClassifier stops LightGBM early on log-loss, as FusionClassifier does by default; "
                f"metric={params.get('metric')!r} is not supported there: drop it, or set early_stopping=False"
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


def _with_feature_names(model: str, features: list[str]) -> str:
    """A LightGBM text model with its ``feature_names=`` line naming ``features`` (whitespace as "_", as
    LightGBM writes names); ValueError when the model has another number of features."""
    head, found, rest = model.partition("\nfeature_names=")
    if not found:
        raise ValueError("the LightGBM model names no features")
    names, newline, body = rest.partition("\n")
    if len(names.split(" ")) != len(features):
        raise ValueError(f"the booster has {len(names.split(' '))} features, the manifest {len(features)}")
    renamed = " ".join("_".join(str(name).split()) for name in features)
    return f"{head}\nfeature_names={renamed}{newline}{body}"
