"""Checking patient/lesion ids: what every step that resamples or splits by group needs."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["check_groups"]


def check_groups(groups: Any, index: Any) -> np.ndarray | None:
    """``groups`` as an array (None stays None); raises ValueError naming the rows (``index``) of missing ids."""
    if groups is None:
        return None
    groups = np.asarray(groups)
    missing = pd.isna(groups)
    if missing.any():
        rows = list(np.asarray(index)[missing][:5]) if index is not None else list(np.flatnonzero(missing)[:5])
        raise ValueError(f"groups has missing values at rows {rows}")
    return groups
