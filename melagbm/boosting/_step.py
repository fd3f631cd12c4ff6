"""The boosting step: a booster made from melagbm's parameters, fitted with early stopping on a grouped split."""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.utils.class_weight import compute_sample_weight

from .._progress import progress
from .._splits import stratified_group_splits
from ._average import BoosterAverage, averaged
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
        rounds. "auto": on when each class is in at least 10 rows (groups holding it).
    validation_fraction : float
        Share of groups held out for early stopping.
    n_iter_no_change : int
        Rounds without improvement before stopping.
    n_jobs : int or None
        Booster threads; None: one below 10,000 rows, else the booster's default.
    n_members : int, default=1
        Boosters averaged (:class:`BoosterAverage` for more than one): :meth:`fit` takes one table per
        member, and each member stops on its own validation split (the folds of grouped k-fold
        partitions, k = 1 / ``validation_fraction``: disjoint within a partition).
    verbose : int, default=0
        1: a progress line for the boosters once they last a few seconds.
    """

    def __init__(
        self, *, booster: Any, params: dict[str, Any] | None, class_weight: str | dict | None,
        early_stopping: bool | str, validation_fraction: float, n_iter_no_change: int, n_jobs: int | None,
        n_members: int = 1, verbose: int = 0,
    ) -> None:
        self.booster = booster
        self.params = params
        self.class_weight = class_weight
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.n_jobs = n_jobs
        self.n_members = n_members
        self.verbose = verbose

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
        if isinstance(self.n_members, bool) or not (isinstance(self.n_members, Integral) and self.n_members >= 1):
            raise ValueError(f"n_seeds must be a positive integer, got {self.n_members!r}")
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
        """One (train, validation) split per member for early stopping, or None when it is off.

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
            ``n_members`` splits: the folds of one grouped k-fold partition (k = 1 / ``validation_fraction``;
            disjoint validation sets), then of partitions seeded ``seed + 1``, ... when more are needed;
            None as for :meth:`validation_split`.
        """
        if self.early_stopping is False:
            return None
        if self.early_stopping == "auto" and class_units(y, groups).min() < 10:
            return None
        n_folds = max(2, round(1.0 / float(self.validation_fraction)))
        splits: list[tuple[np.ndarray, np.ndarray]] = []
        partition = 0
        while len(splits) < int(self.n_members):
            folds = stratified_group_splits(y, groups, n_folds, seed + partition)
            splits.extend(split for _, split in zip(range(int(self.n_members) - len(splits)), folds))
            partition += 1
        return splits

    def fit(
        self, tables: list[pd.DataFrame], y: np.ndarray, groups: np.ndarray | None, *, device: str, seed: int,
        sample_weight: np.ndarray | None = None,
    ) -> BoostingStep:
        """Fit ``booster_``: one booster per table, each on every row with the rounds its early stopping chose.

        Parameters
        ----------
        tables : list of DataFrame
            One feature table per member (``n_members`` of them), the same rows and columns; they
            differ in the columns made out of fold (image scores and what follows from them).
        y : ndarray of shape (n_samples,)
            Class codes.
        groups : ndarray of shape (n_samples,) or None
            Patient or lesion ids for the early-stopping splits (see :meth:`validation_splits`).
        device : str
            "cpu" or "cuda[:n]".
        seed : int
            Seed of the boosters (member k: ``seed + k``) and of the splits.
        sample_weight : ndarray of shape (n_samples,), default=None
            Row weights (as :meth:`sample_weight` gives); None weighs every row alike.

        Returns
        -------
        self : BoostingStep
            With ``estimators_`` (the unfitted boosters; ``estimator_`` the first), ``members_`` (fitted) and ``booster_``
            (the one booster, or a :class:`BoosterAverage` of several) set.
        """
        if len(tables) != int(self.n_members):
            raise ValueError(f"BoostingStep with n_members={self.n_members} got {len(tables)} tables")
        self.estimators_ = [self.estimator(device=device, seed=seed + index, n_rows=len(table))
                            for index, table in enumerate(tables)]
        self.estimator_ = self.estimators_[0]
        splits = self.validation_splits(y, groups, seed)
        members = progress(list(enumerate(zip(self.estimators_, tables))), unit="booster", verbose=self.verbose,
                           desc="boosting (early stopping, refit)")
        self.members_ = [
            fit_booster(estimator, table, y, sample_weight=sample_weight,
                        validation=None if splits is None else splits[index],
                        n_iter_no_change=int(self.n_iter_no_change))[0]
            for index, (estimator, table) in members
        ]
        self.booster_ = averaged(self.members_)
        return self

    def fixed_rounds(self) -> list[Any]:
        """Unfitted copies of the fitted members, each boosting the rounds it holds (for the folds after fit).

        Returns
        -------
        list of LGBMClassifier or XGBClassifier
            One per member, in order.
        """
        return [self.with_rounds(estimator, member) for estimator, member in zip(self.estimators_, self.members_)]

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


def class_units(y: np.ndarray, groups: np.ndarray | None) -> np.ndarray:
    """Per class code, the rows (no groups) or the groups holding at least one row of it.

    A patient with one melanoma among benign lesions counts for both classes, as the
    stratified group folds see it (once counted by the label of the patient's first row,
    which turned early stopping off on ISIC 2020, where most patients' first image is benign).
    """
    if groups is None:
        return np.bincount(y)
    pairs = np.unique(np.column_stack([pd.factorize(groups)[0], y]), axis=0)
    return np.bincount(pairs[:, 1], minlength=int(y.max()) + 1)


def n_rounds(booster: Any) -> int:
    """The boosting rounds a fitted booster holds (a :class:`BoosterAverage`: its members' together)."""
    if isinstance(booster, BoosterAverage):
        return sum(booster.rounds)
    return int(booster.get_params()["n_estimators"])
