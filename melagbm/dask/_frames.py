"""Dask DataFrame plumbing: the client, aligned labels, global row numbers, whole patients."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["GROUP", "LABEL", "ROW", "as_dask_frame", "attach", "check_ids_whole", "client", "is_dask",
           "number_rows"]

#: Helper columns melagbm adds to the user's frame while fitting (never features).
ROW, LABEL, GROUP = "__melagbm_row__", "__melagbm_label__", "__melagbm_group__"


def client() -> Any:
    """The current dask.distributed Client, or a clear error naming how to start one."""
    from distributed import get_client

    try:
        found = get_client()
    except ValueError:
        raise RuntimeError(
            "melagbm.dask needs a dask.distributed Client: start one first, e.g. "
            "`from distributed import Client, LocalCluster; Client(LocalCluster())`, or "
            "`Client('tcp://scheduler:8786')` for a cluster"
        ) from None
    try:
        found.wait_for_workers(1, timeout=120)
    except TimeoutError:
        raise RuntimeError(f"the Dask cluster at {found.scheduler.address} has no worker after 2 minutes") from None
    return found


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


def _attached(part: pd.DataFrame, values: pd.Series, column: str, what: str,
              partition_info: dict | None = None) -> pd.DataFrame:
    number = partition_info["number"] if partition_info else 0
    if len(values) != len(part) or not values.index.equals(part.index):
        raise ValueError(
            f"{what} does not line up with X in partition {number} ({len(values)} vs {len(part)} rows, "
            f"or other row labels): take {what} from the same Dask DataFrame as X (e.g. ddf['target'])"
        )
    return part.assign(**{column: values.to_numpy()})


def attach(frame: Any, values: Any, column: str, what: str) -> Any:
    """``frame`` plus ``values`` (a Dask Series with the same partitions and row labels) as ``column``."""
    import dask.dataframe as dd

    if not isinstance(values, dd.Series):
        raise TypeError(
            f"with a Dask X, {what} must be a Dask Series from the same frame (e.g. ddf['target']), "
            f"got {type(values).__name__}"
        )
    if values.npartitions != frame.npartitions:
        raise ValueError(
            f"{what} has {values.npartitions} partitions but X has {frame.npartitions}: "
            f"take {what} from the same Dask DataFrame as X (e.g. ddf['target'])"
        )
    meta = frame._meta.assign(**{column: values._meta.to_numpy()})
    return dd.map_partitions(_attached, frame, values, column, what, meta=meta, align_dataframes=False)


def _numbered(part: pd.DataFrame, offsets: np.ndarray, partition_info: dict | None = None) -> pd.DataFrame:
    start = int(offsets[partition_info["number"]]) if partition_info else 0
    return part.assign(**{ROW: np.arange(start, start + len(part), dtype=np.int64)})


def number_rows(frame: Any) -> tuple[Any, np.ndarray]:
    """``frame`` with column ``ROW`` = each row's global position, and each partition's length."""
    lengths = np.asarray(frame.map_partitions(len).compute(), dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    meta = frame._meta.assign(**{ROW: np.array([], dtype=np.int64)})
    return frame.map_partitions(_numbered, offsets, meta=meta), lengths


def check_ids_whole(frame: Any, column: str, kind: str) -> None:
    """Raise ValueError naming a patient (or lesion) whose rows lie in more than one partition.

    Patient context compares a lesion with the same patient's others, and lesion pooling
    averages a lesion's images, so each patient's (lesion's) rows must be scored together:
    ``X.shuffle(on=column)`` makes it so.

    Parameters
    ----------
    frame : dask DataFrame
        The rows to score.
    column : str
        The patient or lesion column.
    kind : {"patient", "lesion"}
        What the column identifies.
    """
    step, parameter = {"patient": ("the patient context", "patient_col"),
                       "lesion": ("the lesion pooling", "lesion_col")}[kind]
    if column not in frame.columns:
        raise ValueError(f"X has no column {column!r} ({kind} ids); columns are {list(frame.columns)}")
    per_partition = frame[column].map_partitions(lambda s: s.drop_duplicates()).compute()
    if per_partition.isna().any():
        raise ValueError(f"column {column!r} ({kind} ids, for {step}) has missing values; "
                         f"fill them, or fit with {parameter}=None")
    repeated = per_partition[per_partition.duplicated()]
    if len(repeated):
        raise ValueError(
            f"the rows of {kind} {repeated.iloc[0]!r} (column {column!r}) lie in more than one partition "
            f"({repeated.nunique()} {kind}s do): {step} needs each {kind}'s images together; "
            f"use X.shuffle(on={column!r})"
        )
