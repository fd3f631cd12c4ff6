"""Patient context: each lesion measured against the same patient's other lesions.

The ISIC 2024 winners gained most from "ugly duckling" features: a lesion that looks
unlike the patient's other lesions is suspicious even when it looks ordinary on its own.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from .image_score import is_score_column

__all__ = ["CONTEXT_COLUMNS", "PatientContext", "patient_context"]

#: The family of the columns, and the start of their names.
FAMILY, PREFIX = "patient context", "patient_context"

#: The site column compared within (image scores are also ranked among the patient's lesions at the same site).
SITE_COLUMN = "site__general"

#: ``|z|`` above this counts a feature as outlying in ``patient_context__n_outlying``.
OUTLYING_Z = 2.0

#: Features compared within a patient when present.
CONTEXT_COLUMNS = (
    "image__score",
    "lesion_size__diameter_px",
    "lesion_colour__contrast",
    "lesion_colour__L_inside",
    "lesion_colour__variegation",
    "lesion_shape__asymmetry",
)


def patient_context(
    table: pd.DataFrame, patients: np.ndarray, columns: tuple[str, ...] = CONTEXT_COLUMNS
) -> pd.DataFrame:
    """Images per patient, and each feature's z-score and rank within its patient (and site, for image scores).

    ``patient_context__n_images``; for each of ``columns`` in ``table``: ``patient_context__<col>_z``
    ((value - patient mean) / patient std; 0 for a patient's only lesion or equal values)
    and ``patient_context__<col>_rank`` (0 = the patient's lowest, 1 = highest, 0.5 when alone);
    ``patient_context__n_outlying``, how many of those z-scores exceed 2 in size. For image scores
    (``image...__score``) also ``_diff`` (value - patient mean) and, with a ``site__general`` column,
    ``_site_z`` and ``_site_rank`` among the patient's lesions at the same site (the ISIC 2024
    winners' patient-relative image features).
    Computed over the rows given: at predict time, the patient's lesions in the batch, so
    score a patient's lesions in one call (one row alone gets n_images 1, z 0, rank 0.5).

    Parameters
    ----------
    table : DataFrame
        The feature table, one row per lesion image.
    patients : ndarray of shape (n_rows,)
        The patient id of each row of ``table``; none may be missing.
    columns : tuple of str, default=CONTEXT_COLUMNS
        The features compared within a patient (those absent from ``table`` are left out).

    Returns
    -------
    context : DataFrame
        The context columns, indexed like ``table``.
    """
    patients = pd.Series(np.asarray(patients), index=table.index)
    if patients.isna().any():
        raise ValueError(f"patient ids are missing at rows {list(table.index[patients.isna()][:5])}")
    out = {f"{PREFIX}__n_images": patients.map(patients.value_counts()).astype(float)}
    sites = None
    if SITE_COLUMN in table.columns:
        sites = patients.astype(str) + "\x1f" + table[SITE_COLUMN].astype(str).fillna("?")
    outlying = pd.Series(0.0, index=table.index)
    compared = [c for c in columns if c in table.columns]
    for column in compared:
        values = table[column].astype(float)
        z, rank, diff = _within(values, patients)
        out[f"{PREFIX}__{column}_z"], out[f"{PREFIX}__{column}_rank"] = z, rank
        outlying += (z.abs() > OUTLYING_Z).astype(float)
        if is_score_column(column):
            out[f"{PREFIX}__{column}_diff"] = diff
            if sites is not None:
                out[f"{PREFIX}__{column}_site_z"], out[f"{PREFIX}__{column}_site_rank"], _ = _within(values, sites)
    if compared:
        out[f"{PREFIX}__n_outlying"] = outlying
    return pd.DataFrame(out, index=table.index)


def _within(values: pd.Series, groups: pd.Series) -> tuple[pd.Series, pd.Series, pd.Series]:
    """(z-score, rank in [0, 1], value - mean) of each value within its group; 0, 0.5, 0 for a group of one."""
    grouped = values.groupby(groups)
    counts = groups.map(groups.value_counts())
    mean, std = grouped.transform("mean"), grouped.transform("std", ddof=0)
    z = ((values - mean) / std.where(std > 0)).where(counts > 1, 0.0).fillna(0.0)
    measured = grouped.transform("count")  # rows with a value: a NaN does not take a rank
    rank = ((grouped.rank(method="average") - 1) / (measured - 1).where(measured > 1)).fillna(0.5)
    return z, rank, (values - mean).where(counts > 1, 0.0).fillna(0.0)


class PatientContext(BaseEstimator):
    """Feature table + patient ids -> each lesion against the same patient's others (family "patient context").

    Parameters
    ----------
    columns : tuple of str, default=CONTEXT_COLUMNS
        The features compared within a patient (those present in the table).

    Attributes
    ----------
    feature_families_ : dict
        Output column -> "patient context".
    """

    def __init__(self, *, columns: tuple[str, ...] = CONTEXT_COLUMNS) -> None:
        self.columns = columns

    def fit(self, table_columns: list[str], patients: np.ndarray | None = None) -> PatientContext:
        """Record the context columns of a table with ``table_columns`` (the patients do not change them).

        Parameters
        ----------
        table_columns : list of str
            The columns of the feature table the context is computed from.
        patients : ndarray of shape (n_samples,), default=None
            Ignored.

        Returns
        -------
        self : PatientContext
            With ``feature_families_`` set.
        """
        compared = [c for c in self.columns if c in table_columns]
        names = [f"{PREFIX}__n_images"]
        for column in compared:
            names += [f"{PREFIX}__{column}_z", f"{PREFIX}__{column}_rank"]
            if is_score_column(column):
                names += [f"{PREFIX}__{column}_diff"]
                names += [f"{PREFIX}__{column}_site_{kind}" for kind in ("z", "rank") if SITE_COLUMN in table_columns]
        self.feature_families_ = dict.fromkeys(names + [f"{PREFIX}__n_outlying"] * bool(compared), FAMILY)
        return self

    def transform(self, table: pd.DataFrame, patients: np.ndarray) -> pd.DataFrame:
        """The context columns of ``table``'s rows, computed among the rows given (see :func:`patient_context`).

        Parameters
        ----------
        table : DataFrame
            The feature table, one row per lesion image.
        patients : ndarray of shape (n_rows,)
            The patient id of each row of ``table``.

        Returns
        -------
        context : DataFrame
            The columns of ``feature_families_``, indexed like ``table``.
        """
        return patient_context(table, patients, tuple(self.columns))[list(self.feature_families_)]
