"""Clinical evaluation for a rare positive class.

Metric functions on ``(y_true, score)`` (ROC AUC, the ISIC 2024 partial AUC,
sensitivity at a specificity and back, average precision, Brier score, top-k per
patient), a metrics table with confidence intervals from a bootstrap that resamples
whole patients (or lesions), and cross-validation grouped by patient and stratified by
label that returns the out-of-fold predictions with that table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.metrics import roc_auc_score, roc_curve

from .._checks import check_binary_labels, check_groups, check_scores
from .._progress import progress
from .._splits import stratified_group_splits
from ..decision import threshold_for_sensitivity
from ..features.inputs import ID_COLUMNS
from .curves import WeightedCurves, bootstrap_weights

__all__ = [
    "CVResult",
    "METRIC_LABELS",
    "cross_validate",
    "metrics_table",
    "partial_auc",
    "roc_auc",
    "sensitivity_at_specificity",
    "specificity_at_sensitivity",
    "summarize",
    "threshold_for_sensitivity",
    "top_k_sensitivity",
]

#: Row labels of :func:`metrics_table`, in order.
METRIC_LABELS = {
    "roc_auc": "ROC AUC",
    "pauc_80": "partial AUC above 80 % TPR (0-0.2)",
    "sens_at_spec90": "sensitivity at 90 % specificity",
    "sens_at_spec95": "sensitivity at 95 % specificity",
    "spec_at_sens95": "specificity at 95 % sensitivity",
    "average_precision": "average precision",
    "brier": "Brier score",
    "sensitivity": "sensitivity at the operating threshold",
    "specificity": "specificity at the operating threshold",
    "balanced_accuracy": "balanced accuracy at the operating threshold",
    "f1": "F1 at the operating threshold",
    "referral_rate": "lesions referred at the operating threshold",
    "top_k_sensitivity": "melanomas ranked top-k within their patient",
}


def roc_auc(y_true: Any, score: Any, sample_weight: Any = None) -> float:
    """Area under the ROC curve.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Labels, 1 = melanoma.
    score : array-like of shape (n_samples,)
        Scores, higher = more suspicious (e.g. melanoma probabilities).
    sample_weight : array-like of shape (n_samples,), default=None
        Row weights; None weighs every row 1.

    Returns
    -------
    auc : float
        0.5 for a random ranking, 1 when every melanoma scores above every other lesion.
    """
    y_true, score, sample_weight = check_scores(y_true, score, sample_weight)
    return float(roc_auc_score(y_true, score, sample_weight=sample_weight))


def partial_auc(y_true: Any, score: Any, min_tpr: float = 0.8, sample_weight: Any = None) -> float:
    """Area under the ROC curve above ``min_tpr`` TPR, as the ISIC 2024 challenge scored it.

    The area between the ROC curve and the line TPR = ``min_tpr``: 0 to
    ``1 - min_tpr`` (0.2 by default). Computed as the challenge did: scikit-learn's
    ``roc_auc_score`` with ``max_fpr = 1 - min_tpr`` on flipped labels and scores
    ``1 - score``, with the McClish standardisation undone.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Labels, 1 = melanoma.
    score : array-like of shape (n_samples,)
        Scores, higher = more suspicious (e.g. melanoma probabilities).
    min_tpr : float, default=0.8
        The TPR from which the area counts.
    sample_weight : array-like of shape (n_samples,), default=None
        Row weights; None weighs every row 1.

    Returns
    -------
    pauc : float
        The partial area, from 0 to ``1 - min_tpr``.
    """
    y_true, score, sample_weight = check_scores(y_true, score, sample_weight)
    max_fpr = abs(1.0 - min_tpr)
    flipped = (y_true == np.max(y_true)).astype(int) ^ 1
    scaled = roc_auc_score(flipped, 1.0 - score, max_fpr=max_fpr, sample_weight=sample_weight)
    return float(0.5 * max_fpr**2 + (max_fpr - 0.5 * max_fpr**2) / (1.0 - 0.5) * (scaled - 0.5))


def sensitivity_at_specificity(
    y_true: Any, score: Any, specificity: float = 0.9, sample_weight: Any = None
) -> float:
    """Highest sensitivity (TPR) reachable with specificity of at least ``specificity``.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Labels, 1 = melanoma.
    score : array-like of shape (n_samples,)
        Scores, higher = more suspicious (e.g. melanoma probabilities).
    specificity : float, default=0.9
        The least specificity (1 - FPR) to keep.
    sample_weight : array-like of shape (n_samples,), default=None
        Row weights; None weighs every row 1.

    Returns
    -------
    sensitivity : float
        Share of melanomas (weighted) at or above the threshold, in [0, 1].
    """
    y_true, score, sample_weight = check_scores(y_true, score, sample_weight)
    fpr, tpr, _ = roc_curve(y_true, score, sample_weight=sample_weight, drop_intermediate=False)
    return float(tpr[fpr <= 1.0 - specificity + 1e-12].max())


def specificity_at_sensitivity(
    y_true: Any, score: Any, sensitivity: float = 0.95, sample_weight: Any = None
) -> float:
    """Highest specificity reachable with sensitivity of at least ``sensitivity``.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Labels, 1 = melanoma.
    score : array-like of shape (n_samples,)
        Scores, higher = more suspicious (e.g. melanoma probabilities).
    sensitivity : float, default=0.95
        The least sensitivity (TPR) to keep.
    sample_weight : array-like of shape (n_samples,), default=None
        Row weights; None weighs every row 1.

    Returns
    -------
    specificity : float
        Share of non-melanomas (weighted) below the threshold, in [0, 1].
    """
    y_true, score, sample_weight = check_scores(y_true, score, sample_weight)
    fpr, tpr, _ = roc_curve(y_true, score, sample_weight=sample_weight, drop_intermediate=False)
    return float(1.0 - fpr[tpr >= sensitivity - 1e-12].min())


def top_k_sensitivity(y_true: Any, score: Any, groups: Any, k: int = 1, sample_weight: Any = None) -> float:
    """Share of melanomas scored among the top ``k`` lesions of their own patient.

    The "ugly duckling" view: a dermatologist who examines the k most suspicious lesions
    of each patient finds this share of the melanomas.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Labels, 1 = melanoma.
    score : array-like of shape (n_samples,)
        Scores, higher = more suspicious (e.g. melanoma probabilities).
    groups : array-like of shape (n_samples,)
        Patient ids; the ranking is within each patient.
    k : int, default=1
        Lesions examined per patient. Ties with the k-th score count as within the top k.
    sample_weight : array-like of shape (n_samples,), default=None
        Row weights; None weighs every row 1.

    Returns
    -------
    share : float
        Share of melanomas (weighted) in the top ``k`` of their patient, in [0, 1].
    """
    y_true, score, sample_weight = check_scores(y_true, score, sample_weight)
    hits = _top_k_hits(y_true, score, np.asarray(groups), k)
    positive = y_true == np.max(y_true)
    weight = np.ones(len(y_true)) if sample_weight is None else sample_weight
    return float(np.sum(weight * hits * positive) / np.sum(weight * positive))


def _top_k_hits(y_true: np.ndarray, score: np.ndarray, groups: np.ndarray, k: int) -> np.ndarray:
    """1 where a row's score ranks within the top k of its group (ties counted in its favour)."""
    frame = pd.DataFrame({"group": groups, "score": score})
    rank = frame.groupby("group")["score"].rank(method="min", ascending=False)
    return (rank.to_numpy() <= k).astype(float)


def summarize(y_true: Any, score: Any) -> dict[str, float]:
    """ROC AUC, partial AUC above 80 % TPR and sensitivity at 90 % specificity.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Labels, 1 = melanoma.
    score : array-like of shape (n_samples,)
        Scores, higher = more suspicious (e.g. melanoma probabilities).

    Returns
    -------
    dict of str to float
        ``roc_auc``, ``pauc_80`` and ``sens_at_spec90`` (names as in :data:`METRIC_LABELS`).
    """
    return {
        "roc_auc": roc_auc(y_true, score),
        "pauc_80": partial_auc(y_true, score, 0.8),
        "sens_at_spec90": sensitivity_at_specificity(y_true, score, 0.9),
    }


def _point_metrics(
    curves: WeightedCurves,
    y: np.ndarray,
    proba: np.ndarray,
    predicted: np.ndarray | None,
    top_hits: np.ndarray | None,
    w: np.ndarray,
) -> dict[str, float]:
    values = curves.metrics(w)
    values["brier"] = float(np.sum(w * (proba - y) ** 2) / np.sum(w))
    positive, negative = w * (y == 1), w * (y == 0)
    if predicted is not None:
        tp, fp = np.sum(positive * predicted), np.sum(negative * predicted)
        fn = np.sum(positive) - tp
        values["sensitivity"] = float(tp / np.sum(positive))
        values["specificity"] = float(1.0 - fp / np.sum(negative))
        values["balanced_accuracy"] = (values["sensitivity"] + values["specificity"]) / 2.0
        values["f1"] = float(2 * tp / (2 * tp + fp + fn)) if tp + fp + fn > 0 else 0.0
        values["referral_rate"] = float(np.sum(w * predicted) / np.sum(w))
    if top_hits is not None:
        values["top_k_sensitivity"] = float(np.sum(positive * top_hits) / np.sum(positive))
    return values


def metrics_table(
    y_true: Any,
    proba: Any,
    *,
    predicted: Any = None,
    groups: Any = None,
    top_k: int | None = 1,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    random_state: int | None = 0,
) -> pd.DataFrame:
    """Every clinical metric with a bootstrap confidence interval resampled by group.

    Parameters
    ----------
    y_true : array-like of 0/1
        1 = melanoma.
    proba : array-like
        Melanoma probabilities (or any score; the Brier score needs probabilities).
    predicted : array-like of 0/1, default=None
        Decisions at the operating threshold; adds sensitivity, specificity, balanced
        accuracy, F1 and the share of rows referred there.
    groups : array-like, default=None
        Patient (or lesion) ids. The bootstrap draws whole groups with replacement;
        without groups it draws rows.
    top_k : int or None, default=1
        With ``groups``, adds the share of melanomas ranked in the top k of their group;
        meaningful when groups are patients, so pass None when they are lesions.
    n_bootstrap : int, default=1000
        0 gives point estimates only.
    confidence : float, default=0.95
        Coverage of each interval: the ``(1 - confidence) / 2`` and ``(1 + confidence) / 2``
        quantiles of the bootstrap values.
    random_state : int or None, default=0
        Seed of the bootstrap; None seeds it afresh.

    Returns
    -------
    table : DataFrame
        Indexed by metric (see :data:`METRIC_LABELS`) with columns ``value``,
        ``ci_low``, ``ci_high`` and ``label``. The bounds are NaN without bootstrap draws.
    """
    y, proba, _ = check_scores(y_true, proba)
    y = check_binary_labels(y, "y_true")
    groups = check_groups(groups, getattr(y_true, "index", None))
    predicted = None if predicted is None else np.asarray(predicted).astype(int)
    group_codes = np.arange(len(y)) if groups is None else pd.factorize(np.asarray(groups))[0]
    top_hits = None if groups is None or top_k is None else _top_k_hits(y, proba, np.asarray(groups), top_k)
    curves = WeightedCurves(y, proba)
    point = _point_metrics(curves, y, proba, predicted, top_hits, np.ones(len(y)))

    draws: dict[str, list[float]] = {name: [] for name in point}
    for weight in bootstrap_weights(y, group_codes, n_bootstrap, np.random.default_rng(random_state)):
        for name, value in _point_metrics(curves, y, proba, predicted, top_hits, weight).items():
            draws[name].append(value)
    alpha = (1.0 - confidence) / 2.0
    rows = []
    for name, value in point.items():
        sample = np.asarray(draws[name])
        low, high = (np.quantile(sample, [alpha, 1.0 - alpha]) if len(sample) else (np.nan, np.nan))
        label = METRIC_LABELS[name].replace("top-k", f"top-{top_k}")
        rows.append({"metric": name, "value": value, "ci_low": low, "ci_high": high, "label": label})
    return pd.DataFrame(rows).set_index("metric")


@dataclass
class CVResult:
    """Out-of-fold predictions and the metrics table of a grouped cross-validation.

    Parameters
    ----------
    oof : DataFrame
        Indexed like X: ``y``, ``proba`` (out-of-fold melanoma probability),
        ``predicted`` (at each fold model's operating threshold), ``threshold``,
        ``fold`` and ``group``.
    metrics : DataFrame
        :func:`metrics_table` of the out-of-fold predictions.
    n_splits : int
        Folds used (fewer than asked when the rarest class allows fewer).
    confidence : float, default=0.95
        Coverage of the intervals in ``metrics``.
    info : dict, default={}
        Run details: ``grouped`` (whether groups were given) and ``top_k``.
    """

    oof: pd.DataFrame
    metrics: pd.DataFrame
    n_splits: int
    confidence: float = 0.95
    info: dict[str, Any] = field(default_factory=dict)

    def confusion_matrix(self) -> pd.DataFrame:
        """Counts of true class (rows) by decision (columns) at the operating thresholds."""
        table = pd.crosstab(self.oof["y"], self.oof["predicted"]).reindex(index=[0, 1], columns=[0, 1], fill_value=0)
        table.index = ["benign (true)", "melanoma (true)"]
        table.columns = ["predicted benign", "predicted melanoma"]
        return table


def cross_validate(
    estimator: Any,
    X: Any,
    y: Any,
    groups: Any = None,
    *,
    n_splits: int = 5,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    top_k: int | None = 1,
    random_state: int = 0,
    verbose: int = 1,
    allow_ungrouped: bool = False,
) -> CVResult:
    """Cross-validate a melanoma classifier by patient (or lesion), stratified by label.

    Each fold fits a clone of ``estimator`` on the other folds' groups (passing
    ``groups`` to ``fit`` when it accepts them) and predicts the held-out groups.
    Decisions are each fold model's ``predict`` (for FusionClassifier: its own
    operating threshold, chosen inside its fit for a target sensitivity).

    Parameters
    ----------
    estimator : classifier
        Binary: ``y`` holds 0/1 with 1 = melanoma.
    X : DataFrame or array-like of shape (n_samples, n_features)
        What ``estimator.fit`` takes, one row per image.
    y : array-like of shape (n_samples,)
        Labels, 1 = melanoma.
    groups : array-like, default=None
        Patient (or lesion) ids. Strongly recommended: without them, images of one
        patient land on both sides and the estimate is optimistic.
    n_splits : int, default=5
        Folds; lowered to what the rarest class (counted in groups) allows.
    n_bootstrap, confidence, top_k :
        See :func:`metrics_table`.
    random_state : int, default=0
        Seed of the folds and of the bootstrap.
    verbose : int, default=1
        1: a progress bar over the folds (shown once they last 2 s); 0: none.
    allow_ungrouped : bool, default=False
        Without ``groups``, a DataFrame ``X`` with a ``patient_id`` or ``lesion_id`` column is refused
        (ValueError naming the column): its images would land on both sides of the split. True runs it anyway.

    Returns
    -------
    CVResult
        The out-of-fold predictions and their metrics table.
    """
    y = pd.Series(check_binary_labels(y, "y"), index=getattr(X, "index", None))
    id_columns = [column for column in ID_COLUMNS if column in getattr(X, "columns", ())]
    if groups is None and id_columns and not allow_ungrouped:
        raise ValueError(
            f"X has a {id_columns[0]!r} column but no groups were given: ungrouped folds put images of one "
            f"{id_columns[0].split('_')[0]} on both sides and the estimate is optimistic. Pass "
            f"groups=X[{id_columns[0]!r}], or allow_ungrouped=True to split images freely anyway."
        )
    group_ids = check_groups(groups, getattr(X, "index", None))
    if group_ids is not None and len(group_ids) != len(y):
        raise ValueError(f"groups has {len(group_ids)} entries but y has {len(y)}")
    rows = np.arange(len(y))
    proba = np.full(len(y), np.nan)
    predicted = np.zeros(len(y), dtype=int)
    thresholds = np.full(len(y), np.nan)
    folds = np.full(len(y), -1)
    splits = list(stratified_group_splits(y.to_numpy(), group_ids, n_splits, random_state))
    for fold, (train, test) in enumerate(progress(splits, desc="cross-validation folds", unit="fold",
                                                  verbose=verbose)):
        model = clone(estimator)
        fit_kwargs = {"groups": group_ids[train]} if group_ids is not None and _accepts_groups(model) else {}
        model.fit(_take(X, train), y.iloc[train].to_numpy(), **fit_kwargs)
        held_out = _take(X, test)
        proba[test] = model.predict_proba(held_out)[:, list(model.classes_).index(1)]
        predicted[test] = (np.asarray(model.predict(held_out)) == 1).astype(int)  # the model's own decision rule
        thresholds[test] = getattr(model, "threshold_", np.nan)
        folds[test] = fold
    oof = pd.DataFrame(
        {"y": y.to_numpy(), "proba": proba, "predicted": predicted, "threshold": thresholds, "fold": folds,
         "group": group_ids if group_ids is not None else rows},
        index=y.index,
    )
    metrics = metrics_table(
        oof["y"], oof["proba"], predicted=oof["predicted"], groups=group_ids, top_k=top_k,
        n_bootstrap=n_bootstrap, confidence=confidence, random_state=random_state,
    )
    return CVResult(oof=oof, metrics=metrics, n_splits=len(splits), confidence=confidence,
                    info={"grouped": group_ids is not None, "top_k": top_k})


def _take(X: Any, rows: np.ndarray) -> Any:
    return X.iloc[rows] if hasattr(X, "iloc") else np.asarray(X)[rows]


def _accepts_groups(estimator: Any) -> bool:
    import inspect

    return "groups" in inspect.signature(estimator.fit).parameters
