"""Dask DataFrame plumbing: the client, aligned labels, global row numbers, whole patients."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["GROUP", "LABEL", "ROW", "as_dask_frame", "check_patients_whole", "client", "is_dask", "number_rows"]

#: Helper columns melagbm adds to the user's frame while fitting (never features).
ROW, LABEL, GROUP = "__melagbm_row__", "__melagbm_label__", "__melagbm_group__"


def client() -> Any:
    """The current dask.distributed Client, or a clear error naming how to start one."""
    from distributed import get_client

    try:
        return get_client()
    except ValueError:
        raise RuntimeError(
            "melagbm.dask needs a dask.distributed Client: start one first, e.g. "
            "`from distributed import Client, LocalCluster; Client(LocalCluster())`, or "
            "`Client('tcp://scheduler:8786')` for a cluster"
        ) from None


def is_dask(X: Any) -> bool:
    import dask.dataframe as dd

    return isinstance(X, (dd.DataFrame, dd.Series))


def as_dask_frame(X: Any, n_partitions: int) -> Any:
    """``X`` as a Dask DataFrame (a pandas frame is split into ``n_partitions``)."""
    import dask.dataframe as dd

    if isinstance(X, dd.DataFrame):
        return X
    if isinstance(X, pd.DataFrame):
        return dd.from_pandas(X, npartitions=max(1, min(n_partitions, len(X))))
    raise TypeError(f"X must be a Dask or pandas DataFrame, got {type(X).__name__}")


def aligned(frame: Any, values: Any, what: str) -> Any:
    """``values`` (a Dask Series or array partitioned like ``frame``) as a Dask Series for ``frame.assign``."""
    import dask.array as da
    import dask.dataframe as dd

    if isinstance(values, dd.Series):
        if values.npartitions != frame.npartitions:
            raise ValueError(
                f"{what} has {values.npartitions} partitions but X has {frame.npartitions}: "
                f"take {what} from the same Dask DataFrame as X (e.g. ddf['target'])"
            )
        return values
    if isinstance(values, da.Array):
        return dd.from_dask_array(values, index=frame.index)
    raise TypeError(
        f"{what} must be a Dask Series or Array partitioned like X (e.g. ddf['target']), got {type(values).__name__}"
    )


def _numbered(part: pd.DataFrame, offsets: np.ndarray, partition_info: dict | None = None) -> pd.DataFrame:
    start = int(offsets[partition_info["number"]]) if partition_info else 0
    return part.assign(**{ROW: np.arange(start, start + len(part), dtype=np.int64)})


def number_rows(frame: Any) -> tuple[Any, np.ndarray]:
    """``frame`` with column ``ROW`` = each row's global position, and each partition's length."""
    lengths = np.asarray(frame.map_partitions(len).compute(), dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    meta = frame._meta.assign(**{ROW: np.array([], dtype=np.int64)})
    return frame.map_partitions(_numbered, offsets, meta=meta), lengths


def check_patients_whole(frame: Any, patient_col: str) -> None:
    """Raise ValueError naming a patient whose rows lie in more than one partition.

    Patient context compares a lesion with the same patient's others, so each patient's
    rows must be scored together: ``X.shuffle(on=patient_col)`` makes it so.
    """
    per_partition = frame[patient_col].map_partitions(lambda s: s.drop_duplicates()).compute()
    repeated = per_partition[per_partition.duplicated()]
    if len(repeated):
        raise ValueError(
            f"the rows of patient {repeated.iloc[0]!r} (column {patient_col!r}) lie in more than one partition "
            f"({repeated.nunique()} patients do): the patient context needs each patient's lesions together; "
            f"use X.shuffle(on={patient_col!r})"
        )
