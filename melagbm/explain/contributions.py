"""Exact tree SHAP from the boosters' own routines, per feature and per feature family.

LightGBM's ``pred_contrib`` and XGBoost's ``pred_contribs`` compute exact TreeSHAP
in compiled code (XGBoost on the GPU when the model is there), far faster than a
Python explainer. Values are in the booster's margin (log-odds) space: per row,
the values plus the base value equal the raw margin. Grouping sums a family's
signed values per row, so additivity survives grouping.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .._checks import check_groups
from ..boosting import contributions

__all__ = [
    "FAMILY_ORDER",
    "family_importance",
    "group_explanation",
    "make_explanation",
    "tree_contributions",
]

#: The order families are listed in (families a model lacks are left out; unknown ones go last).
FAMILY_ORDER = (
    "image", "lesion size", "lesion shape", "lesion colour", "age", "sex", "site", "patient context", "metadata",
)


def tree_contributions(booster: Any, features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Exact SHAP values and base values of a fitted LGBMClassifier / XGBClassifier (or several averaged).

    Returns ``(values, base_values)``: shapes ``(n, n_features)`` and ``(n,)`` for two
    classes, ``(n, n_features, k)`` and ``(n, k)`` for k > 2 classes, in margin space.

    Parameters
    ----------
    booster : LGBMClassifier, XGBClassifier or BoosterAverage
        The fitted booster.
    features : DataFrame of shape (n, n_features)
        The booster's input: one column per booster feature, in the order it was fitted on.

    Returns
    -------
    values : ndarray of shape (n, n_features) or (n, n_features, k)
        SHAP value of each feature per row, in log-odds (margin) space.
    base_values : ndarray of shape (n,) or (n, k)
        The expected margin per row; with ``values`` summed it gives the raw margin.
    """
    raw = contributions(booster, features)  # (n, outputs, features + 1)
    values, base = raw[..., :-1], raw[..., -1]
    if values.shape[1] == 1:
        return values[:, 0, :], base[:, 0]
    return values.transpose(0, 2, 1), base


def _numeric(features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(numbers for colouring: category codes with NaN for missing, values to display)."""
    data = np.empty(features.shape, dtype=float)
    display = np.empty(features.shape, dtype=object)
    for position, column in enumerate(features.columns):
        values = features[column]
        if isinstance(values.dtype, pd.CategoricalDtype):
            codes = values.cat.codes.to_numpy().astype(float)
            data[:, position] = np.where(codes < 0, np.nan, codes)
        else:
            data[:, position] = values.to_numpy(dtype=float, na_value=np.nan)
        display[:, position] = values.astype(object).to_numpy()
    return data, display


def make_explanation(values: np.ndarray, base_values: np.ndarray, features: pd.DataFrame) -> Any:
    """A ``shap.Explanation`` with one column per feature of ``features``.

    Parameters
    ----------
    values : ndarray of shape (n, n_features) or (n, n_features, k)
        SHAP values, as from :func:`tree_contributions`.
    base_values : ndarray of shape (n,) or (n, k)
        Base values, as from :func:`tree_contributions`.
    features : DataFrame of shape (n, n_features)
        The rows explained; categorical columns become category codes in ``data``
        (NaN when missing), their labels go to ``display_data``.

    Returns
    -------
    explanation : shap.Explanation
        ``values``, ``base_values``, ``data``, ``display_data`` and ``feature_names``
        (the columns of ``features``).
    """
    import shap

    data, display = _numeric(features)
    return shap.Explanation(  # no instance_names: shap walks such lists element by element (slow at 10k rows)
        values=values, base_values=base_values, data=data, display_data=display, feature_names=list(features.columns),
    )


def _ordered_families(feature_families: dict[str, str]) -> list[str]:
    present = list(dict.fromkeys(feature_families.values()))
    rank = {family: position for position, family in enumerate(FAMILY_ORDER)}

    def position(family: str) -> int:  # "image: <backbone>" families sit with the image
        return rank["image"] if family.startswith("image: ") else rank.get(family, len(rank))

    return sorted(present, key=lambda family: (position(family), present.index(family)))


def group_explanation(explanation: Any, feature_families: dict[str, str]) -> Any:
    """One column per family: the sum of its features' signed SHAP values, per row.

    A one-column family keeps its feature's value as ``data`` (so beeswarm colours
    mean something); a family of several columns has NaN ``data`` (a sum of
    embedding components or lesion measurements is no quantity).

    Parameters
    ----------
    explanation : shap.Explanation
        Per-feature explanation, as made by ``FusionClassifier.explain(X)``: values
        of shape (n, n_features), or (n, n_features, k) for k > 2 classes.
    feature_families : dict of str to str
        Family of each feature name (``FusionClassifier.feature_families_``); every
        feature of ``explanation`` must be in it.

    Returns
    -------
    grouped : shap.Explanation
        Values of shape (n, n_families) (or (n, n_families, k)), families in :data:`FAMILY_ORDER`
        (unknown ones last); ``base_values`` as in ``explanation``.
    """
    import shap

    names = list(explanation.feature_names)
    families = _ordered_families({name: feature_families[name] for name in names})
    shown = explanation.display_data if explanation.display_data is not None else explanation.data
    values, data, display = [], [], []
    for family in families:
        columns = [position for position, name in enumerate(names) if feature_families[name] == family]
        values.append(explanation.values[:, columns].sum(axis=1))
        if len(columns) == 1:
            data.append(explanation.data[:, columns[0]])
            display.append(np.asarray(shown)[:, columns[0]])
        else:
            data.append(np.full(len(explanation.values), np.nan))
            display.append(np.full(len(explanation.values), np.nan, dtype=object))
    return shap.Explanation(
        values=np.stack(values, axis=1), base_values=explanation.base_values,
        data=np.stack(data, axis=1), display_data=np.stack(display, axis=1), feature_names=families,
    )


def family_importance(
    grouped: Any,
    groups: np.ndarray | None = None,
    *,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    random_state: int | None = 0,
) -> pd.DataFrame:
    """Mean |SHAP| per family, with a bootstrap interval that resamples whole groups.

    Returns a DataFrame indexed by family, most important first: ``mean_abs_shap``,
    ``ci_low``, ``ci_high`` (percentile interval over ``n_bootstrap`` resamples of the
    patients/lesions in ``groups``; of rows when None) and ``share`` (of the total).

    Parameters
    ----------
    grouped : shap.Explanation
        Per-family explanation, as made by ``FusionClassifier.explain(X, grouped=True)``.
        Rows with NaN values (unreadable images) are left out; with several classes,
        |SHAP| is summed over the classes' margins.
    groups : array-like of shape (n,), default=None
        Patient or lesion id per row (resampled whole); None resamples single rows.
    n_bootstrap : int, default=1000
        Bootstrap resamples behind the interval; 0 gives NaN ``ci_low`` and ``ci_high``.
    confidence : float, default=0.95
        Coverage of the interval.
    random_state : int or None, default=0
        Seed of the resampling.

    Returns
    -------
    importance : DataFrame
        One row per family, most important first: ``mean_abs_shap`` (log-odds),
        ``ci_low``, ``ci_high`` and ``share``.
    """
    magnitude = np.abs(np.asarray(grouped.values, dtype=float))
    if magnitude.ndim == 3:  # several classes: summed over the classes' margins
        magnitude = magnitude.sum(axis=2)
    families = list(grouped.feature_names)
    explained = ~np.isnan(magnitude).any(axis=1)  # rows with an unreadable image have no values
    groups = check_groups(groups, None)
    if groups is not None:
        if len(groups) != len(magnitude):
            raise ValueError(f"groups has {len(groups)} entries but the explanation has {len(magnitude)} rows")
        groups = groups[explained]
    magnitude = magnitude[explained]
    if len(magnitude) == 0:
        raise ValueError("no row could be explained (every image was unreadable)")
    mean = magnitude.mean(axis=0)
    low = high = np.full(len(families), np.nan)
    if n_bootstrap:
        ids = np.arange(len(magnitude)) if groups is None else pd.factorize(groups)[0]
        n_groups = ids.max() + 1
        sums = np.zeros((n_groups, len(families)))
        np.add.at(sums, ids, magnitude)
        counts = np.bincount(ids, minlength=n_groups).astype(float)
        rng = np.random.default_rng(random_state)
        draws = rng.multinomial(n_groups, np.full(n_groups, 1.0 / n_groups), size=n_bootstrap).astype(float)
        resampled = (draws @ sums) / (draws @ counts)[:, None]
        tail = (1.0 - confidence) / 2.0
        low, high = np.quantile(resampled, [tail, 1.0 - tail], axis=0)
    table = pd.DataFrame(
        {"mean_abs_shap": mean, "ci_low": low, "ci_high": high, "share": mean / mean.sum()},
        index=pd.Index(families, name="family"),
    )
    return table.sort_values("mean_abs_shap", ascending=False)
