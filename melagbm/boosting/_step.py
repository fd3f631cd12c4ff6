"""The boosting step: a booster made from melagbm's parameters, fitted with early stopping on a grouped split."""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.utils.class_weight import compute_sample_weight

from .._splits import stratified_group_splits
from ._registry import adapter_for
from ._training import fit_booster, make_booster

__all__ = ["BoostingStep"]

#: Below this many rows one booster thread is faster than several, and OpenMP threads
#: spinning beside torch's and BLAS's can stall a notebook kernel on a small machine.
SMALL_TABLE = 10_000


class BoostingStep:
    """Feature table + labels -> a fitted booster (LightGBM or XGBoost through its adapter).

    Parameters
    ----------
    booster : "lightgbm", "xgboost" or estimator
        A name (with melagbm's defaults) or an ``LGBMClassifier``/``XGBClassifier`` to clone.
    params : dict or None
        Parameters that override the defaults.
    class_weight : None, "balanced" or dict
        Row weights by class.
    early_stopping : bool or "auto"
        Stop on a held-out share of the groups, then refit on all rows with that many
        rounds. "auto": on when each class has at least 10 rows (groups).
    validation_fraction : float
        Share of groups held out for early stopping.
    n_iter_no_change : int
        Rounds without improvement before stopping.
    n_jobs : int or None
        Booster threads; None: one below 10,000 rows, else the booster's default.
    n_splits : int, default=1
        Early-stopping splits: the rounds are where their mean validation log-loss is lowest (each
        holds out a different ``validation_fraction`` of the groups, so at most 1 / that many).
    """

    def __init__(
        self, *, booster: Any, params: dict[str, Any] | None, class_weight: str | dict | None,
        early_stopping: bool | str, validation_fraction: float, n_iter_no_change: int, n_jobs: int | None,
        n_splits: int = 1,
    ) -> None:
        self.booster = booster
        self.params = params
        self.class_weight = class_weight
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.n_jobs = n_jobs
        self.n_splits = n_splits

    def check_params(self) -> BoostingStep:
        """Raise (naming the parameter) for the first invalid one; return self."""
        adapter_for(self.booster)  # a known name or an instance of a known library
        if self.params is not None and not isinstance(self.params, dict):
            raise ValueError(f"booster_params must be a dict or None, got {self.params!r}")
        if not (self.class_weight is None or self.class_weight == "balanced" or isinstance(self.class_weight, dict)):
            raise ValueError(f"class_weight must be None, 'balanced' or a dict, got {self.class_weight!r}")
        if self.early_stopping not in (True, False, "auto"):
            raise ValueError(f"early_stopping must be True, False or 'auto', got {self.early_stopping!r}")
        fraction = self.validation_fraction
        if isinstance(fraction, bool) or not (isinstance(fraction, Real) and 0.0 < fraction < 1.0):
            raise ValueError(f"validation_fraction must be in (0, 1), got {fraction!r}")
        patience = self.n_iter_no_change
        if isinstance(patience, bool) or not (isinstance(patience, Integral) and patience >= 0):
            raise ValueError(f"n_iter_no_change must be an integer >= 0, got {patience!r}")
        if isinstance(self.n_splits, bool) or not (isinstance(self.n_splits, Integral) and self.n_splits >= 1):
            raise ValueError(f"n_seeds must be a positive integer, got {self.n_splits!r}")
        return self

    def estimator(self, *, device: str, seed: int, n_rows: int | None = None, n_jobs: int | None = None) -> Any:
        """The unfitted booster; threads from ``n_jobs``, else this step's, else one thread for a small table.

        Parameters
        ----------
        device : str
            "cpu" or "cuda[:n]".
        seed : int
            The booster's ``random_state``, unless ``params`` or the instance sets one.
        n_rows : int, default=None
            Rows it will be fitted on; below 10,000, one thread when no ``n_jobs`` is set.
        n_jobs : int, default=None
            Booster threads, overriding this step's ``n_jobs``.

        Returns
        -------
        LGBMClassifier or XGBClassifier
            The unfitted classifier, from :func:`make_booster`.
        """
        threads = n_jobs if n_jobs is not None else self.n_jobs
        if threads is None and n_rows is not None and n_rows < SMALL_TABLE:
            threads = 1
        return make_booster(self.booster, params=self.params, device=device, random_state=seed, n_jobs=threads)

    def sample_weight(self, y: np.ndarray) -> np.ndarray | None:
        """Row weights for ``class_weight`` (None without).

        Parameters
        ----------
        y : ndarray of shape (n_samples,)
            Class labels.

        Returns
        -------
        ndarray of shape (n_samples,) or None
            ``sklearn.utils.class_weight.compute_sample_weight``'s weights; None when ``class_weight`` is None.
        """
        return None if self.class_weight is None else compute_sample_weight(self.class_weight, y)

    def validation_split(
        self, y: np.ndarray, groups: np.ndarray | None, seed: int
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """(train, validation) row positions for early stopping, or None when it is off.

        Parameters
        ----------
        y : ndarray of shape (n_samples,)
            Class codes (0, 1, ...).
        groups : ndarray of shape (n_samples,) or None
            Patient or lesion ids: a group's rows fall on one side; None: each row is its own group.
        seed : int
            Seed of the split.

        Returns
        -------
        tuple of (ndarray, ndarray) or None
            Positions of the training and validation rows, about ``validation_fraction`` of the groups
            held out; None when ``early_stopping`` is False, or "auto" and a class has fewer than 10 groups.
        """
        splits = self.validation_splits(y, groups, seed)
        return None if splits is None else splits[0]

    def validation_splits(
        self, y: np.ndarray, groups: np.ndarray | None, seed: int
    ) -> list[tuple[np.ndarray, np.ndarray]] | None:
        """``n_splits`` (train, validation) splits for early stopping, or None when it is off.

        Parameters
        ----------
        y : ndarray of shape (n_samples,)
            Class codes (0, 1, ...).
        groups : ndarray of shape (n_samples,) or None
            Patient or lesion ids: a group's rows fall on one side; None: each row is its own group.
        seed : int
            Seed of the splits.

        Returns
        -------
        list of (ndarray, ndarray) or None
            Folds of one grouped k-fold partition (k = 1 / ``validation_fraction``; disjoint validation
            sets), as many as ``n_splits`` and k allow; None as for :meth:`validation_split`.
        """
        if self.early_stopping is False:
            return None
        units = y if groups is None else np.asarray([y[groups == g][0] for g in np.unique(groups)])
        if self.early_stopping == "auto" and np.bincount(units).min() < 10:
            return None
        n_folds = max(2, round(1.0 / float(self.validation_fraction)))
        folds = stratified_group_splits(y, groups, n_folds, seed)
        return [split for _, split in zip(range(int(self.n_splits)), folds)]

    def fit(
        self, table: pd.DataFrame, y: np.ndarray, groups: np.ndarray | None, *, device: str, seed: int,
        sample_weight: np.ndarray | None = None,
    ) -> BoostingStep:
        """Fit ``booster_`` on every row of ``table``, with the rounds early stopping chose; return self.

        Parameters
        ----------
        table : DataFrame
            Feature table.
        y : ndarray of shape (n_samples,)
            Class codes.
        groups : ndarray of shape (n_samples,) or None
            Patient or lesion ids for the early-stopping split (see :meth:`validation_split`).
        device : str
            "cpu" or "cuda[:n]".
        seed : int
            Seed of the booster and of the split.
        sample_weight : ndarray of shape (n_samples,), default=None
            Row weights (as :meth:`sample_weight` gives); None weighs every row alike.

        Returns
        -------
        self : BoostingStep
            With ``estimator_`` (the unfitted booster) and ``booster_`` (fitted) set.
        """
        self.estimator_ = self.estimator(device=device, seed=seed, n_rows=len(table))
        self.booster_, _ = fit_booster(
            self.estimator_, table, y, sample_weight=sample_weight,
            validation=self.validation_splits(y, groups, seed), n_iter_no_change=int(self.n_iter_no_change),
        )
        return self

    @staticmethod
    def with_rounds(estimator: Any, booster: Any) -> Any:
        """An unfitted copy of ``estimator`` that boosts as many rounds as the fitted ``booster`` holds.

        For the folds after it: a copy of the booster itself could carry what fitting estimated, as XGBoost's
        base score.

        Parameters
        ----------
        estimator : LGBMClassifier or XGBClassifier
            The unfitted classifier to copy.
        booster : LGBMClassifier or XGBClassifier
            A fitted classifier; the copy takes its number of rounds.

        Returns
        -------
        LGBMClassifier or XGBClassifier
            The unfitted copy, its ``n_estimators`` set.
        """
        return clone(estimator).set_params(n_estimators=n_rounds(booster))


def n_rounds(booster: Any) -> int:
    """The boosting rounds a fitted booster holds."""
    return int(booster.get_params()["n_estimators"])
