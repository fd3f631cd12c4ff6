"""Patient context: each lesion measured against the same patient's other lesions.

The ISIC 2024 winners gained most from "ugly duckling" features: a lesion that looks
unlike the patient's other lesions is suspicious even when it looks ordinary on its own.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["CONTEXT_COLUMNS", "patient_context"]

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
    """Images per patient, and each feature's z-score and rank within its patient.

    ``patient__n_images``; for each of ``columns`` in ``table``: ``patient__<col>_z``
    ((value - patient mean) / patient std; 0 for a patient's only lesion or equal values)
    and ``patient__<col>_rank`` (0 = the patient's lowest, 1 = highest, 0.5 when alone).
    Computed over the rows given: at predict time, the patient's lesions in the batch, so
    score a patient's lesions in one call (one row alone gets n_images 1, z 0, rank 0.5).
    """
    patients = pd.Series(np.asarray(patients), index=table.index)
    if patients.isna().any():
        raise ValueError(f"patient ids are missing at rows {list(table.index[patients.isna()][:5])}")
    counts = patients.map(patients.value_counts())
    out = {"patient__n_images": counts.astype(float)}
    for column in (c for c in columns if c in table.columns):
        values = table[column].astype(float)
        grouped = values.groupby(patients)
        mean, std = grouped.transform("mean"), grouped.transform("std", ddof=0)
        z = (values - mean) / std.where(std > 0)
        out[f"patient__{column}_z"] = z.where(counts > 1, 0.0).fillna(0.0)
        measured = grouped.transform("count")  # rows with a value: a NaN does not take a rank
        rank = (grouped.rank(method="average") - 1) / (measured - 1).where(measured > 1)
        out[f"patient__{column}_rank"] = rank.fillna(0.5)
    return pd.DataFrame(out, index=table.index)
