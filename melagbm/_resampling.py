"""Bootstrap resamples that draw whole groups (patients or lesions), as row weights."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

__all__ = ["bootstrap_weights"]


def bootstrap_weights(
    y: np.ndarray | None, group_codes: np.ndarray, n_bootstrap: int, rng: np.random.Generator
) -> Iterator[np.ndarray]:
    """Row weights of bootstrap resamples that draw whole groups with replacement.

    With labels, a resample without melanomas or without non-melanomas has no ROC curve: it is
    drawn and left out, so fewer than ``n_bootstrap`` weightings may come.

    Parameters
    ----------
    y : ndarray of shape (n_samples,) or None
        Labels, 1 = melanoma; None keeps every resample.
    group_codes : ndarray of shape (n_samples,)
        Each row's group as a code 0 .. n_groups - 1 (one group per row: rows drawn alone).
    n_bootstrap : int
        Resamples drawn.
    rng : numpy Generator
        The random draws.

    Yields
    ------
    ndarray of shape (n_samples,)
        How many times each row's group was drawn.
    """
    n_groups = int(group_codes.max()) + 1
    for _ in range(int(n_bootstrap)):
        weight = np.bincount(rng.integers(0, n_groups, n_groups), minlength=n_groups)[group_codes].astype(float)
        if y is None or (weight[y == 1].sum() > 0 and weight[y == 0].sum() > 0):
            yield weight
