"""Lesion pooling: a lesion imaged more than once gets one reading, the mean of its images' margins.

Dermoscopy often takes several images of one lesion (HAM10000: 1,956 of its 7,470 lesions have
more than one). They share one diagnosis, so the mean of their booster margins (log-odds) is a
steadier reading of the lesion than any one image's; every image of the lesion then gets it.
The mean is linear, so the SHAP values of the images pool the same way and still add up.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

__all__ = ["LesionPooling", "pool_by_lesion"]


def pool_by_lesion(values: np.ndarray, lesions: np.ndarray) -> np.ndarray:
    """Each row's ``values`` replaced by their mean over the rows of the same lesion.

    NaN rows (unreadable images) stay NaN and do not enter their lesion's mean.

    Parameters
    ----------
    values : ndarray of shape (n_rows,) or (n_rows, n_columns)
        Margins, or per-feature SHAP values, one row per image.
    lesions : ndarray of shape (n_rows,)
        The lesion id of each row; none may be missing.

    Returns
    -------
    pooled : ndarray, the shape of ``values``
        The lesion means (a lesion's only image keeps its own values).
    """
    lesions = pd.Series(np.asarray(lesions, dtype=object))
    if len(lesions) != len(values):
        raise ValueError(f"{len(lesions)} lesion ids for {len(values)} rows")
    if lesions.isna().any():
        raise ValueError(f"lesion ids are missing at positions {np.flatnonzero(lesions.isna())[:10].tolist()}")
    frame = pd.DataFrame(np.asarray(values, dtype=float).reshape(len(values), -1))
    pooled = frame.groupby(lesions.to_numpy()).transform("mean").to_numpy(copy=True)  # NaN skipped in the mean
    pooled[frame.isna().to_numpy()] = np.nan
    return pooled.reshape(np.shape(values))


class LesionPooling(BaseEstimator):
    """Per-image margins + lesion ids -> each image's lesion mean (the step between the booster and the decision).

    Computed over the rows given: at predict time the lesion's images in the same call, so score
    a lesion's images together (one image alone keeps its own margin).
    """

    def pool(self, values: np.ndarray, lesions: np.ndarray) -> np.ndarray:
        """``values`` pooled by lesion (see :func:`pool_by_lesion`).

        Parameters
        ----------
        values : ndarray of shape (n_rows,) or (n_rows, n_columns)
            Margins, or per-feature SHAP values, one row per image.
        lesions : ndarray of shape (n_rows,)
            The lesion id of each row.

        Returns
        -------
        pooled : ndarray, the shape of ``values``
            The lesion means.
        """
        return pool_by_lesion(values, lesions)
