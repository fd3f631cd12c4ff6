"""What every gradient-boosting backend must do for melagbm: one adapter class per library."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd

__all__ = ["BoosterAdapter"]


class BoosterAdapter:
    """The backend-specific half of boosting: each method is the one place its library's API is called.

    Subclasses set ``name`` (what ``booster=`` accepts), ``file_name`` (the member holding the
    fitted booster in a model file) and ``default_params``, and implement every method below.
    """

    name: ClassVar[str]
    file_name: ClassVar[str]
    default_params: ClassVar[dict[str, Any]]

    # -- making ------------------------------------------------------------------------
    def estimator_class(self) -> type:
        """The library's scikit-learn classifier."""
        raise NotImplementedError

    def owns(self, estimator: Any) -> bool:
        """Whether ``estimator`` is an instance from this adapter's library.

        Parameters
        ----------
        estimator : object
            Any object; judged by the top-level package of its class's module.

        Returns
        -------
        bool
            True when that package is ``name``.
        """
        return type(estimator).__module__.split(".")[0] == self.name

    def device_params(self, device: str) -> dict[str, Any]:
        """Parameters that put training on ``device``.

        Parameters
        ----------
        device : str
            "cpu" or "cuda[:n]".

        Returns
        -------
        dict
            Estimator parameters; :func:`make_booster` sets them where ``params`` leaves them unset.
        """
        raise NotImplementedError

    # -- fitting -----------------------------------------------------------------------
    def best_rounds(
        self, estimator: Any, X: pd.DataFrame, y: np.ndarray, sample_weight: np.ndarray | None,
        X_val: pd.DataFrame, y_val: np.ndarray, patience: int,
    ) -> int:
        """Fit a copy of ``estimator`` with early stopping on (X_val, y_val); the best number of rounds.

        Parameters
        ----------
        estimator : LGBMClassifier or XGBClassifier
            The unfitted classifier; it is cloned, never fitted itself.
        X : DataFrame
            Training rows.
        y : ndarray of shape (n_samples,)
            Class codes of the training rows.
        sample_weight : ndarray of shape (n_samples,) or None
            Weights of the training rows; None weighs every row alike.
        X_val : DataFrame
            Validation rows, the ones early stopping watches.
        y_val : ndarray of shape (n_val,)
            Class codes of the validation rows.
        patience : int
            Rounds without improvement of the validation metric before stopping.

        Returns
        -------
        int
            The number of rounds with the best validation metric.
        """
        curve = self.validation_curve(estimator, X, y, sample_weight, X_val, y_val, patience)
        return int(np.argmin(curve)) + 1

    def validation_curve(
        self, estimator: Any, X: pd.DataFrame, y: np.ndarray, sample_weight: np.ndarray | None,
        X_val: pd.DataFrame, y_val: np.ndarray, patience: int,
    ) -> np.ndarray:
        """The validation log-loss after each round of a copy of ``estimator``, until early stopping.

        Parameters
        ----------
        estimator : LGBMClassifier or XGBClassifier
            The unfitted classifier; it is cloned, never fitted itself.
        X : DataFrame
            Training rows.
        y : ndarray of shape (n_samples,)
            Class codes of the training rows.
        sample_weight : ndarray of shape (n_samples,) or None
            Weights of the training rows; None weighs every row alike.
        X_val : DataFrame
            Validation rows, the ones early stopping watches.
        y_val : ndarray of shape (n_val,)
            Class codes of the validation rows.
        patience : int
            Rounds without improvement of the validation log-loss before stopping.

        Returns
        -------
        ndarray of shape (n_rounds_run,)
            Log-loss on (X_val, y_val) after rounds 1, 2, ...: at least ``patience`` rounds past the best,
            unless the booster's ``n_estimators`` ran out first.
        """
        raise NotImplementedError

    # -- predicting and explaining ------------------------------------------------------
    def margin(self, booster: Any, X: pd.DataFrame) -> np.ndarray:
        """The raw margin (log-odds): (n,) for two classes, (n, k) for k classes.

        Parameters
        ----------
        booster : LGBMClassifier or XGBClassifier
            A fitted classifier from this adapter's library.
        X : DataFrame
            Rows with the columns the booster was fitted on.

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_classes)
            Raw scores before the sigmoid (two classes) or softmax.
        """
        raise NotImplementedError

    def contributions(self, booster: Any, X: pd.DataFrame) -> np.ndarray:
        """Exact TreeSHAP from the library's own routine: (n, outputs, features + 1), bias last.

        Parameters
        ----------
        booster : LGBMClassifier or XGBClassifier
            A fitted classifier from this adapter's library.
        X : DataFrame
            Rows with the columns the booster was fitted on.

        Returns
        -------
        ndarray of shape (n_samples, n_outputs, n_features + 1)
            Each feature's contribution to the margin, the bias last; ``n_outputs`` is 1 for two
            classes, else the number of classes. A row's contributions sum to its margin.
        """
        raise NotImplementedError

    # -- model files ---------------------------------------------------------------------
    def to_bytes(self, booster: Any) -> bytes:
        """The fitted booster in the library's own portable format.

        Parameters
        ----------
        booster : LGBMClassifier or XGBClassifier
            A fitted classifier from this adapter's library.

        Returns
        -------
        bytes
            The model, as a model file stores it under ``file_name``.
        """
        raise NotImplementedError

    def from_bytes(self, template: Any, raw: bytes, n_classes: int, features: list[str]) -> Any:
        """``template`` (an unfitted copy of the saved wrapper) holding the booster in ``raw``.

        Its columns are named ``features``.

        Parameters
        ----------
        template : LGBMClassifier or XGBClassifier
            An unfitted classifier with the saved wrapper's parameters; filled in and returned.
        raw : bytes
            The booster, as :meth:`to_bytes` wrote it.
        n_classes : int
            The number of classes the booster was trained on.
        features : list of str
            Column names for the loaded booster, one per column it has.

        Returns
        -------
        LGBMClassifier or XGBClassifier
            ``template``, fitted: it predicts with the booster in ``raw``.

        Raises
        ------
        ValueError
            When ``features`` names another number of columns than the booster has.
        """
        raise NotImplementedError

    def set_feature_names(self, booster: Any, features: list[str]) -> None:
        """Rename a fitted booster's columns (as many as it has), in place.

        Parameters
        ----------
        booster : LGBMClassifier or XGBClassifier
            A fitted classifier from this adapter's library; changed in place.
        features : list of str
            The new column names, one per column of the booster.

        Raises
        ------
        ValueError
            When ``features`` names another number of columns than the booster has.
        """
        raise NotImplementedError

    # -- Dask ----------------------------------------------------------------------------
    def dask_train(self, estimator: Any, client: Any, X: Any, y: Any, weight: Any, **fit_params: Any) -> Any:
        """Train the library's Dask twin of ``estimator`` on Dask ``X``/``y``; the trained twin.

        Parameters
        ----------
        estimator : LGBMClassifier or XGBClassifier
            The unfitted local classifier whose parameters the twin takes; not fitted itself.
        client : distributed.Client
            The client of the cluster to train on.
        X : dask DataFrame
            Training rows.
        y : dask Series
            Class codes, partitioned like ``X``.
        weight : dask Series or None
            Row weights, partitioned like ``X``; None weighs every row alike.
        **fit_params : dict
            Further keyword arguments for the twin's ``fit`` (as ``eval_set``).

        Returns
        -------
        DaskLGBMClassifier or DaskXGBClassifier
            The trained twin.
        """
        raise NotImplementedError

    def to_local(self, twin: Any, estimator: Any) -> Any:
        """A trained Dask twin as ``estimator``'s local class.

        Parameters
        ----------
        twin : DaskLGBMClassifier or DaskXGBClassifier
            A twin :meth:`dask_train` trained.
        estimator : LGBMClassifier or XGBClassifier
            The local classifier the twin was made from.

        Returns
        -------
        LGBMClassifier or XGBClassifier
            A fitted local classifier holding the twin's booster.
        """
        raise NotImplementedError

    def dask_best_rounds(
        self, estimator: Any, client: Any, X: Any, y: Any, weight: Any, held: Any, patience: int
    ) -> int:
        """The best number of rounds, judged on the rows where the Dask Series ``held`` is True.

        Parameters
        ----------
        estimator : LGBMClassifier or XGBClassifier
            The unfitted local classifier; not fitted itself.
        client : distributed.Client
            The client of the cluster to train on.
        X : dask DataFrame
            All rows, those held out included.
        y : dask Series
            Class codes, partitioned like ``X``.
        weight : dask Series or None
            Row weights, partitioned like ``X``; None weighs every row alike.
        held : dask Series of bool
            Partitioned like ``X``; True marks the validation rows, the others train.
        patience : int
            Rounds without improvement of the validation metric before stopping.

        Returns
        -------
        int
            The number of rounds with the best validation metric.
        """
        raise NotImplementedError
