"""Two models scored on the same rows: the difference of each metric, with a paired bootstrap interval.

Two models' intervals from :func:`~melagbm.evaluation.metrics_table` overlap even when one beats the
other on nearly every resample: both are scored on the same patients, so most of each interval's width
is the patients' and is shared. A paired bootstrap draws the patients once per resample and scores both
models on them, so what varies is the difference itself.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .._checks import check_binary_labels, check_groups
from .curves import WeightedCurves, bootstrap_weights

__all__ = ["COMPARED_METRICS", "compare_scores"]

#: The metrics :func:`compare_scores` reports, in order (labels as in ``METRIC_LABELS``).
COMPARED_METRICS = ("roc_auc", "pauc_80", "sens_at_spec90", "sens_at_spec95", "spec_at_sens95", "average_precision")


def compare_scores(
    y_true: Any,
    score_a: Any,
    score_b: Any,
    *,
    groups: Any = None,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    random_state: int | None = 0,
) -> pd.DataFrame:
    """How much model B's scores beat model A's on the same rows, with a paired bootstrap interval.

    Each resample draws whole groups (patients or lesions) with replacement and scores both models on
    the same draw, so the interval is that of the difference. Pass several fits of one model (seeds,
    repeats) as columns: each metric is then their mean, as a table of fits reports it.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Labels, 1 = melanoma.
    score_a, score_b : array-like of shape (n_samples,) or (n_samples, n_fits)
        Scores of the two models on the same rows in the same order (out-of-fold or test
        predictions), higher = more suspicious; a column per fit. The fit counts may differ.
    groups : array-like of shape (n_samples,), default=None
        Patient (or lesion) ids: the bootstrap draws whole groups. None draws rows.
    n_bootstrap : int, default=1000
        Resamples; 0 gives the differences without intervals.
    confidence : float, default=0.95
        Coverage of each interval (percentile bootstrap).
    random_state : int or None, default=0
        Seed of the bootstrap; None seeds it afresh.

    Returns
    -------
    table : DataFrame
        Indexed by metric (:data:`COMPARED_METRICS`), with columns ``a`` and ``b`` (each model's value),
        ``difference`` (b - a), ``ci_low`` and ``ci_high`` (its interval) and ``p_value``: twice the
        smaller count of resamples in which the difference is <= 0 or >= 0, plus one, over resamples
        plus one (capped at 1; so never below 2 / (resamples + 1)). A resample with no difference counts
        on both sides, which makes the step-wise metrics (sensitivity at a specificity) conservative.
        NaN without resamples.

    Raises
    ------
    ValueError
        Naming the argument (and the rows) at fault: scores whose rows or index do not match ``y_true``,
        scores that are not numbers or not finite, ``y_true`` not 0/1 with both classes, groups of
        another length or index or with missing ids, ``n_bootstrap`` < 0 or ``confidence`` outside (0, 1).
    """
    if int(n_bootstrap) < 0:
        raise ValueError(f"n_bootstrap must be >= 0, got {n_bootstrap}")
    if not 0.0 < float(confidence) < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence} (0.95 for 95 % intervals)")
    y = check_binary_labels(y_true, "y_true")
    index = getattr(y_true, "index", None)
    columns_a, columns_b = _score_columns(score_a, "score_a", y, index), _score_columns(score_b, "score_b", y, index)
    if groups is not None:
        _check_rows(groups, "groups", y, index)
    group_ids = check_groups(groups, index)
    curves_a = [WeightedCurves(y, column) for column in columns_a]
    curves_b = [WeightedCurves(y, column) for column in columns_b]

    point_a, point_b = _mean_metrics(curves_a, np.ones(len(y))), _mean_metrics(curves_b, np.ones(len(y)))
    group_codes = np.arange(len(y)) if group_ids is None else pd.factorize(group_ids)[0]
    resamples = bootstrap_weights(y, group_codes, n_bootstrap, np.random.default_rng(random_state))
    draws = np.array([_mean_metrics(curves_b, weight) - _mean_metrics(curves_a, weight) for weight in resamples])
    alpha = (1.0 - confidence) / 2.0
    if len(draws):
        low, high = np.quantile(draws, [alpha, 1.0 - alpha], axis=0)
        beyond = np.minimum((draws <= 0).sum(axis=0), (draws >= 0).sum(axis=0))  # resamples on the far side of 0
        p_value = np.minimum(1.0, 2.0 * (beyond + 1) / (len(draws) + 1))
    else:
        low = high = p_value = np.full(len(COMPARED_METRICS), np.nan)
    return pd.DataFrame(
        {"a": point_a, "b": point_b, "difference": point_b - point_a, "ci_low": low, "ci_high": high,
         "p_value": p_value},
        index=pd.Index(COMPARED_METRICS, name="metric"),
    )


def _mean_metrics(curves: list[WeightedCurves], weight: np.ndarray) -> np.ndarray:
    """Each of :data:`COMPARED_METRICS` under ``weight``, averaged over the fits."""
    return np.mean([[curve.metrics(weight)[name] for name in COMPARED_METRICS] for curve in curves], axis=0)


def _check_rows(values: Any, name: str, y: np.ndarray, index: Any) -> None:
    """Raise ValueError naming ``name`` unless it has a row per label, under the labels' index where both have one."""
    if len(values) != len(y):
        raise ValueError(f"{name} has {len(values)} rows but y_true has {len(y)}")
    own = getattr(values, "index", None)
    if index is not None and own is not None and not own.equals(index):
        differ = np.flatnonzero(np.asarray(own) != np.asarray(index))[:5]
        raise ValueError(f"{name}'s index does not match y_true's (first differing rows: {own[differ].tolist()} "
                         f"against {index[differ].tolist()}): pass them in the same order, e.g. .loc[y_true.index]")


def _score_columns(score: Any, name: str, y: np.ndarray, index: Any) -> list[np.ndarray]:
    """``score`` as float columns of len(y) rows; raises ValueError naming ``name`` and the rows at fault."""
    try:
        values = np.asarray(score, dtype=float)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must hold numbers (melanoma scores): {error}") from None
    if values.ndim == 1:
        values = values[:, None]
    if values.ndim != 2 or values.shape[0] != len(y) or values.shape[1] == 0:
        raise ValueError(f"{name} has shape {np.shape(score)}: expected ({len(y)},) or ({len(y)}, n_fits), "
                         "a row per label")
    _check_rows(score, name, y, index)
    bad = ~np.isfinite(values).all(axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)[:5]
        named = np.asarray(index)[rows].tolist() if index is not None else rows.tolist()
        raise ValueError(f"{name} has non-finite values at rows {named}")
    return [values[:, column] for column in range(values.shape[1])]
