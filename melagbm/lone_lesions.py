"""A lesion screened alone: scored by a model fitted without patient context.

Patient context compares a lesion with the same patient's other lesions in the same call. A lesion sent alone
(the clinic page, most service calls) has none, a case a context model hardly saw in training, where nearly every
patient had several lesions: on the ISIC 2020 subset its images scored alone reached ROC AUC 0.53, where a model
fitted without patient context reached 0.65 (``benchmarks/lone_lesions.py``). So a model with patient context also
fits a :class:`LoneLesionModel` (the same rows, splits and boosters without the context columns, with its own
calibration and threshold), and every lesion whose patient has no other lesion in the call is scored by it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

__all__ = ["CONTEXT_FAMILY", "NOT_AVAILABLE", "LoneLesionModel", "lone_rows"]

#: The feature family a lesion alone cannot have, and what its explanation shows in its place.
CONTEXT_FAMILY = "patient context"
NOT_AVAILABLE = "not available (one lesion)"


def lone_rows(patients: np.ndarray, lesions: np.ndarray | None = None) -> np.ndarray:
    """Which rows are lesions alone: their patient has no other lesion among the rows given.

    Parameters
    ----------
    patients : ndarray of shape (n_rows,)
        The patient id of each row.
    lesions : ndarray of shape (n_rows,), default=None
        The lesion id of each row (several images of one lesion are still one lesion); None: each row is a lesion.

    Returns
    -------
    alone : ndarray of bool, shape (n_rows,)
        True where the row's patient has one lesion in the rows given.
    """
    patients = np.asarray(patients, dtype=object)
    units = pd.Series(np.arange(len(patients)) if lesions is None else np.asarray(lesions, dtype=object))
    if len(units) != len(patients):
        raise ValueError(f"{len(units)} lesion ids for {len(patients)} patient ids")
    return (units.groupby(patients).transform("nunique") == 1).to_numpy()


class LoneLesionModel(BaseEstimator):
    """What scores a lesion sent without its patient's other lesions: a booster fitted without the patient context
    columns, its calibration and its referral threshold (chosen and estimated out of fold, as the model's own).

    Made and fitted by :meth:`FusionClassifier.fit <melagbm.FusionClassifier.fit>` (``lone_lesion_model=True``).

    Attributes
    ----------
    feature_names_ : list of str
        The booster's columns: the model's, without the patient context.
    booster_ : LGBMClassifier, XGBClassifier or BoosterAverage
        Fitted on those columns.
    operating_point_ : OperatingPoint
        Its calibration, threshold and cross-fitted estimate (``estimate_``).
    """

    @property
    def threshold_(self) -> float:
        """``predict`` refers a lesion alone where its probability reaches this."""
        return self.operating_point_.threshold_

    @staticmethod
    def columns_without_context(feature_families: dict[str, str]) -> list[str]:
        """The columns of a model's table a lesion alone has: every family's but the patient context's.

        Parameters
        ----------
        feature_families : dict
            The model's column -> family, in its table's order.

        Returns
        -------
        columns : list of str
            Those columns, in that order, without the patient context's.
        """
        return [name for name, family in feature_families.items() if family != CONTEXT_FAMILY]
