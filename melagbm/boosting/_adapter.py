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
        """Whether ``estimator`` is an instance from this adapter's library."""
        return type(estimator).__module__.split(".")[0] == self.name

    def device_params(self, device: str) -> dict[str, Any]:
        """Parameters that put training on ``device`` ("cpu" or "cuda[:n]")."""
        raise NotImplementedError

    # -- fitting -----------------------------------------------------------------------
    def best_rounds(
        self, estimator: Any, X: pd.DataFrame, y: np.ndarray, sample_weight: np.ndarray | None,
        X_val: pd.DataFrame, y_val: np.ndarray, patience: int,
    ) -> int:
        """Fit a copy of ``estimator`` with early stopping on (X_val, y_val); the best number of rounds."""
        raise NotImplementedError

    # -- predicting and explaining ------------------------------------------------------
    def margin(self, booster: Any, X: pd.DataFrame) -> np.ndarray:
        """The raw margin (log-odds): (n,) for two classes, (n, k) for k classes."""
        raise NotImplementedError

    def contributions(self, booster: Any, X: pd.DataFrame) -> np.ndarray:
        """Exact TreeSHAP from the library's own routine: (n, outputs, features + 1), bias last."""
        raise NotImplementedError

    # -- model files ---------------------------------------------------------------------
    def to_bytes(self, booster: Any) -> bytes:
        """The fitted booster in the library's own portable format."""
        raise NotImplementedError

    def from_bytes(self, template: Any, raw: bytes, n_classes: int, n_features: int) -> Any:
        """``template`` (an unfitted copy of the saved wrapper) holding the booster in ``raw``."""
        raise NotImplementedError

    # -- Dask ----------------------------------------------------------------------------
    def dask_train(self, estimator: Any, client: Any, X: Any, y: Any, weight: Any, **fit_params: Any) -> Any:
        """Train the library's Dask twin of ``estimator`` on Dask ``X``/``y``; the trained twin."""
        raise NotImplementedError

    def to_local(self, twin: Any, estimator: Any) -> Any:
        """A trained Dask twin as ``estimator``'s local class."""
        raise NotImplementedError

    def dask_best_rounds(
        self, estimator: Any, client: Any, X: Any, y: Any, weight: Any, held: Any, patience: int
    ) -> int:
        """The best number of rounds, judged on the rows where the Dask Series ``held`` is True."""
        raise NotImplementedError
