"""The decision head: the feature table -> boosters -> out-of-fold margins -> lesion pooling -> calibration and
threshold."""

from __future__ import annotations

from time import perf_counter
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone

from .._progress import progress
from ..boosting import BoostingStep, fit_booster
from ..boosting import margin as booster_margin
from ..decision import OperatingPoint
from ..pooling import LesionPooling

__all__ = ["DecisionHead", "HeadFit", "fold_of_rows", "out_of_fold_margins"]


class HeadFit:
    """What fitting a head gives: the booster, its operating point, the out-of-fold margins it was fitted on and
    the folds (None where there were none)."""

    def __init__(self, booster: Any, operating_point: OperatingPoint, margin: np.ndarray | None,
                 splits: list[tuple[np.ndarray, np.ndarray]] | None) -> None:
        self.booster, self.operating_point, self.margin, self.splits = booster, operating_point, margin, splits


class DecisionHead:
    """Boost on the table, then calibrate and choose the threshold on out-of-fold margins (two classes), each
    lesion's images pooled as predict pools them.

    Parameters
    ----------
    boosting : BoostingStep
        The boosters (early stopping on grouped splits, refit on all rows; ``n_members`` averaged).
    decision : OperatingPoint
        The unfitted decision step; each :meth:`fit` fits a copy.
    pooling : LesionPooling or None, default=None
        Pools each lesion's out-of-fold margins (None: each image alone).
    verbose : int, default=0
        Progress of the out-of-fold boosters.
    """

    def __init__(self, boosting: BoostingStep, decision: OperatingPoint, pooling: LesionPooling | None = None,
                 verbose: int = 0) -> None:
        self.boosting = boosting
        self.decision = decision
        self.pooling = pooling
        self.verbose = verbose

    def fit(
        self, tables: list[pd.DataFrame], y: np.ndarray, groups: np.ndarray | None, weights: np.ndarray | None,
        lesions: np.ndarray | None, *, n_classes: int, device: str, seed: int, what: str = "",
        seconds: dict[str, float] | None = None,
    ) -> HeadFit:
        """Fit one booster per table (averaged), then the operating point out of fold.

        Parameters
        ----------
        tables : list of DataFrame
            One table per booster (``boosting.n_members``), the same rows and columns.
        y : ndarray of shape (n_samples,)
            Label codes.
        groups : ndarray or None
            Patient or lesion ids that keep the internal splits whole.
        weights : ndarray or None
            Row weights (``class_weight``), from :meth:`BoostingStep.sample_weight`.
        lesions : ndarray or None
            Lesion ids, when lesions are pooled.
        n_classes : int
            Classes in ``y``; the operating point is fitted out of fold for two.
        device : str
            Where the boosters train.
        seed : int
            The seed of every internal split.
        what : str, default=""
            Words for the progress bar (which head).
        seconds : dict, default=None
            Filled with the time spent boosting and in the out-of-fold decision.

        Returns
        -------
        fitted : HeadFit
        """
        seconds = {} if seconds is None else seconds
        started = perf_counter()
        booster = self.boosting.fit(tables, y, groups, device=device, seed=seed, sample_weight=weights).booster_
        seconds["boosting" + what] = perf_counter() - started
        started = perf_counter()
        point = clone(self.decision).start(y, weights if n_classes == 2 else None)
        margin, splits = None, None
        if n_classes == 2:
            splits = point.splits(y, groups, seed)
            if splits is not None:
                members = progress(list(zip(self.boosting.fixed_rounds(), tables)), unit="booster",
                                   verbose=self.verbose, desc=f"out-of-fold boosters{what} (calibration, threshold)")
                margin = self.decide(point, [out_of_fold_margins(fixed, member_table, y, weights, splits)
                                             for fixed, member_table in members], y, groups, splits, lesions, seed)
        seconds["decision (out of fold)" + what] = perf_counter() - started
        return HeadFit(booster, point, margin, splits)

    def decide(
        self, point: OperatingPoint, member_margins: list[np.ndarray], y: np.ndarray, groups: np.ndarray | None,
        splits: list[tuple[np.ndarray, np.ndarray]], lesions: np.ndarray | None, seed: int,
    ) -> np.ndarray:
        """Fit ``point`` (calibration, threshold) on the boosters' mean out-of-fold margins, each lesion's images
        pooled as predict pools them; return those margins.

        Parameters
        ----------
        point : OperatingPoint
            Started (:meth:`OperatingPoint.start`) on the same rows.
        member_margins : list of ndarray
            Each booster's out-of-fold margins, in row order.
        y, groups, lesions : ndarray
            Label codes, group ids (or None), lesion ids (or None: no pooling).
        splits : list of (train, test)
            The folds behind the margins.
        seed : int
            The seed of the referral estimate's resampling.

        Returns
        -------
        margin : ndarray of shape (n_samples,)
            The margins the operating point was fitted on.
        """
        margin = np.mean(member_margins, axis=0)
        if lesions is not None and self.pooling is not None:  # calibrated as predict reads lesions
            margin = self.pooling.pool(margin, lesions)
        point.fit(margin, y, groups, fold_of_rows(splits, len(y)), seed=seed)
        return margin


def out_of_fold_margins(
    fixed_rounds: Any, table: pd.DataFrame, y: np.ndarray, weights: np.ndarray | None,
    splits: list[tuple[np.ndarray, np.ndarray]],
) -> np.ndarray:
    """Each row's booster margin from a copy of ``fixed_rounds`` fitted on the other folds."""
    margin = np.zeros(len(y))
    for train, test in splits:
        fold_model, _ = fit_booster(
            clone(fixed_rounds), table.iloc[train], y[train],
            sample_weight=None if weights is None else weights[train], validation=None, n_iter_no_change=0,
        )
        margin[test] = booster_margin(fold_model, table.iloc[test])
    return margin


def fold_of_rows(splits: list[tuple[np.ndarray, np.ndarray]], n_rows: int) -> np.ndarray:
    """Each row's fold: the index of the split whose test side holds it."""
    folds = np.full(n_rows, -1)
    for index, (_, test) in enumerate(splits):
        folds[test] = index
    return folds
