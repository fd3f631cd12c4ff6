"""The Dask executor of a fit's feature steps: each step runs where its ``runs_on`` says.

"client" steps fit once on the client over every row's small columns (labels, groups, metadata); "partition"
steps fit what they need on the client, then transform one partition per task on the workers (each step
object sent to each worker once, so an encoder loads once per worker). What a later client step needs back
from the partitions (a step's ``gathered`` fields: the embeddings) comes to the client in row order. The
booster's table is then built partition by partition on the workers: the client steps' columns sent with each
partition's rows, the partition steps' ``transform`` run there, in the steps' order.
"""

from __future__ import annotations

from dataclasses import replace
from time import perf_counter
from typing import Any

import numpy as np
import pandas as pd

from .._device import resolve_device
from ..pipeline import FeatureStep, Rows, StepOptions
from ._frames import GROUP, LABEL, ROW

__all__ = ["DaskExecutor"]


class DaskExecutor:
    """Fit feature steps on a Dask cluster, and build the booster's table where the rows are.

    Parameters
    ----------
    dask_client : distributed.Client
    frame : dask.dataframe.DataFrame
        The rows, numbered in ``ROW`` (row order), each patient's rows in one partition, persisted.
    lengths : ndarray
        Rows per partition.
    options : StepOptions
        The fit's options (``worker_device``: where the workers embed).

    Attributes
    ----------
    kept_ : ndarray of bool
        After :meth:`fit`: the rows the fit kept (False where the image is unreadable).
    """

    def __init__(self, dask_client: Any, frame: Any, lengths: np.ndarray, options: StepOptions) -> None:
        self.client = dask_client
        self.frame = frame
        self.lengths = lengths
        self.options = options

    def fit(self, steps: list[FeatureStep], rows: Rows, seconds: dict[str, float] | None = None) -> Rows:
        """Fit ``steps`` in order over ``rows`` (the client's small columns of every row, in row order).

        Parameters
        ----------
        steps : list
            The feature steps, in order.
        rows : Rows
            Every row's small columns (the user's, without images), labels and groups.
        seconds : dict, default=None
            Filled with each step's seconds ("on the workers" where the workers transformed).

        Returns
        -------
        rows : Rows
            The client steps' columns for the rows kept (``kept_`` says which); a partition step's columns are
            NaN placeholders here (their names only: later steps read them), computed on the workers by
            :meth:`tables`.
        """
        self.steps, self._remote_steps, seconds = steps, None, {} if seconds is None else seconds
        self.kept_ = np.ones(len(rows), dtype=bool)
        for step in steps:
            started = perf_counter()
            if step.runs_on == "client":
                rows = step.fit_transform(rows, self.options)
            elif step.gathered:
                rows = self._gathered(step.fit(rows, self.options), rows)
                self.kept_ = ~rows.unreadable
                rows = step.settle(rows)
            else:
                step.fit(rows, self.options)
                rows.columns[step.name] = pd.DataFrame(np.nan, index=range(len(rows)),
                                                       columns=list(step.feature_families_))
            seconds[step.name + (" (workers)" if step.gathered else "")] = perf_counter() - started
        return rows

    def tables(self, rows: Rows, member: int, roles: pd.DataFrame) -> Any:
        """The booster's table of booster ``member`` as a Dask DataFrame, one partition per task on the workers.

        Parameters
        ----------
        rows : Rows
            From :meth:`fit`: the client steps' columns (``member_columns`` for members after the first).
        member : int
            Which booster's version of the client columns (its own out-of-fold image scores).
        roles : DataFrame
            Per kept row (indexed by row number): columns that travel with the table (labels, folds, weights).

        Returns
        -------
        table : dask.dataframe.DataFrame
            The booster's columns, then ``roles``' columns and ``ROW``, the unreadable rows left out.
        """
        import dask
        import dask.dataframe as dd

        overrides = rows.member_columns[member - 1] if member else {}
        kept = roles.index.to_numpy()
        shipped = {step.name: {**rows.columns, **overrides}[step.name].set_axis(kept)
                   for step in self.steps if step.runs_on == "client" and step.name in rows.columns}
        if self._remote_steps is None:  # sent to each worker once, for every booster's table
            [self._remote_steps] = self.client.scatter([self.steps], broadcast=True)
        tasks, start = [], 0
        for part, length in zip(self.frame.to_delayed(), self.lengths):
            stop = start + int(length)
            own = (kept >= start) & (kept < stop)
            if length:  # each task gets its own rows' client columns and roles
                columns = {name: frame[own] for name, frame in shipped.items()}
                tasks.append(dask.delayed(_table_part)(part, self._remote_steps, rows.roles, columns, roles[own],
                                                       self.options))
            start = stop
        futures = self.client.compute(tasks)
        meta = futures[0].result().iloc[:0]
        return dd.from_delayed(futures, meta=meta, verify_meta=False)

    def _gathered(self, step: FeatureStep, rows: Rows) -> Rows:
        """``rows`` with ``step.gathered`` fields from ``step.transform`` of every partition, in row order."""
        import dask

        [remote] = self.client.scatter([step], broadcast=True)
        parts = [part for part, length in zip(self.frame.to_delayed(), self.lengths) if length]
        tasks = [dask.delayed(_transformed_part)(part, remote, rows.roles, self.options) for part in parts]
        results = self.client.gather(self.client.compute(tasks))
        for field in step.gathered:
            setattr(rows, field, np.concatenate([getattr(result, field) for result in results]))
        return rows


def _user_rows(part: pd.DataFrame, roles: Any) -> Rows:
    """A partition's rows as the steps see them: the user's columns only."""
    return Rows(frame=part.drop(columns=[c for c in (ROW, LABEL, GROUP) if c in part.columns]), roles=roles)


def _on_this_worker(options: StepOptions) -> StepOptions:
    """``options`` with the device resolved on this worker (a GPU worker embeds on its GPU)."""
    return replace(options, device=resolve_device(options.worker_device or options.device or "auto"))


def _transformed_part(part: pd.DataFrame, step: FeatureStep, roles: Any, options: StepOptions) -> Rows:
    """``step.transform`` of one partition's rows (on a worker)."""
    return step.transform(_user_rows(part, roles), _on_this_worker(options))


def _table_part(
    part: pd.DataFrame, steps: list[FeatureStep], roles: Any, client_columns: dict[str, pd.DataFrame],
    row_roles: pd.DataFrame, options: StepOptions,
) -> pd.DataFrame:
    """One partition's booster table (its kept rows), with ``row_roles``' columns and the row numbers."""
    kept = part[ROW].isin(row_roles.index).to_numpy()
    rows = _user_rows(part[kept], roles)
    numbers = part[ROW].to_numpy()[kept]
    options = _on_this_worker(options)
    for step in steps:
        if step.name in client_columns:
            rows.columns[step.name] = client_columns[step.name].loc[numbers].reset_index(drop=True)
        elif step.runs_on == "partition" and not step.gathered:
            rows = step.transform(rows, options)
    table = rows.table()
    return pd.concat([table, row_roles.loc[numbers].reset_index(drop=True), pd.DataFrame({ROW: numbers})], axis=1)
