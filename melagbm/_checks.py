"""Input checks shared by the steps that score, split or resample: labels with scores, group ids."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["check_binary_labels", "check_groups", "check_scores"]


def check_scores(
    y_true: Any, score: Any, sample_weight: Any = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(labels, float scores, weights) as arrays; raises ValueError unless both are 1-D, equal length,
    the scores finite (positions named) and the labels of two classes."""
    y_true, score = np.asarray(y_true), np.asarray(score, dtype=float)
    if y_true.shape != score.shape or y_true.ndim != 1:
        raise ValueError(f"y_true {y_true.shape} and score {score.shape} must be 1-D and equal length")
    if not np.isfinite(score).all():
        raise ValueError(f"score has non-finite values at positions {list(np.flatnonzero(~np.isfinite(score))[:5])}")
    if len(np.unique(y_true)) != 2:
        raise ValueError("y_true must hold both classes")
    if sample_weight is not None:
        sample_weight = np.asarray(sample_weight, dtype=float)
    return y_true, score, sample_weight


def check_groups(groups: Any, index: Any) -> np.ndarray | None:
    """``groups`` as an array (None stays None); raises ValueError naming the rows (``index``) of missing ids."""
    if groups is None:
        return None
    groups = np.asarray(groups)
    missing = pd.isna(groups)
    if missing.any():
        rows = np.asarray(index)[missing][:5].tolist() if index is not None else np.flatnonzero(missing)[:5].tolist()
        raise ValueError(f"groups has missing values at rows {rows}")
    return groups


def check_binary_labels(y: Any, name: str) -> np.ndarray:
    """``y`` as 0/1 integers; raises ValueError naming ``name`` when it holds one class or other values."""
    values = np.unique(np.asarray(y))
    if len(values) == 1 and values[0] in (0, 1):
        kind = "melanomas" if values[0] == 1 else "non-melanomas"
        raise ValueError(
            f"{name} holds one class only: every row is {values[0]} ({kind}); evaluating needs both "
            "melanomas (1) and non-melanomas (0)"
        )
    if set(values.tolist()) != {0, 1}:
        bad = np.flatnonzero(~np.isin(np.asarray(y), [0, 1]))[:5]
        index = getattr(y, "index", None)
        rows = (np.asarray(index)[bad] if index is not None else bad).tolist()
        raise ValueError(f"{name} must be 0/1 (1 = melanoma), got values {values[:5].tolist()} (rows {rows})")
    return np.asarray(y).astype(int)
