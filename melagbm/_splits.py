"""Label-stratified, group-aware splits used inside fit (never by image when groups exist)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

__all__ = ["SEED_MAX", "stratified_group_splits"]

#: Seeds drawn from random_state for the steps inside fit lie in [0, SEED_MAX).
SEED_MAX = 2**31 - 1


def stratified_group_splits(
    y: np.ndarray, groups: np.ndarray | None, n_splits: int, seed: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """K stratified folds, grouped when ``groups`` is given.

    ``n_splits`` is lowered to what the rarest class (counted in groups when given)
    allows; raises ValueError when fewer than two folds are possible.
    """
    labels, y_codes = np.unique(y, return_inverse=True)
    if groups is None:
        per_class = np.bincount(y_codes)
    else:
        per_class = np.asarray(
            [len(np.unique(groups[y_codes == code])) for code in range(len(labels))]
        )
    n_splits = int(min(n_splits, per_class.min()))
    if n_splits < 2:
        raise ValueError(
            f"cannot make two stratified folds: the rarest class has {per_class.min()} "
            f"{'group' if groups is not None else 'sample'}(s)"
        )
    if groups is None:
        splitter = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        return splitter.split(np.zeros(len(y)), y_codes)
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    return splitter.split(np.zeros(len(y)), y_codes, groups)
