"""``Rows``: the one value every step of a fit or a prediction takes and returns."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from ..features.inputs import InputGate

__all__ = ["Rows", "StepOptions"]


@dataclass
class Rows:
    """Input rows and what the steps have made of them so far.

    Parameters
    ----------
    frame : DataFrame
        The input rows (those still in the fit: rows with an unreadable image leave it).
    roles : InputGate, default=None
        The column roles (image, patient, lesion, diagnosis, metadata), fitted by the input step; every later
        step reads them from here.
    y : ndarray, default=None
        Fit only: the label codes (0 .. n_classes - 1).
    groups : ndarray, default=None
        Fit only: the patient or lesion ids that keep the internal splits whole (as given, until the input
        step checks them).
    targets : ndarray, default=None
        Fit only: each row's diagnosis, when the image probe learns diagnoses.
    unreadable : ndarray of bool, default=None
        True where the row's image could not be read (all False when not given).
    embeddings : ndarray, default=None
        The backbones' embeddings side by side, from the embedding step until the image step scores them.
    columns : dict
        Step name -> the booster columns it made (index 0 .. n-1), in the order the steps ran.
    member_columns : list of dict
        Fit only: for each booster after the first, the steps' columns that differ from ``columns`` (its own
        out-of-fold image scores, and the patient context computed from them).
    skipped : list
        Fit only: the labels of the rows left out for an unreadable image.
    """

    frame: pd.DataFrame
    roles: InputGate | None = None
    y: np.ndarray | None = None
    groups: np.ndarray | None = None
    targets: np.ndarray | None = None
    unreadable: np.ndarray | None = None
    embeddings: np.ndarray | None = None
    columns: dict[str, pd.DataFrame] = field(default_factory=dict)
    member_columns: list[dict[str, pd.DataFrame]] = field(default_factory=list)
    skipped: list = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.unreadable is None:
            self.unreadable = np.zeros(len(self.frame), dtype=bool)

    def __len__(self) -> int:
        return len(self.frame)

    def table(self, overrides: dict[str, pd.DataFrame] | None = None, *, without: tuple[str, ...] = ()) -> pd.DataFrame:
        """The steps' columns side by side (``overrides`` replacing some steps' columns, ``without`` leaving some
        out).

        Parameters
        ----------
        overrides : dict, default=None
            Step name -> columns to use instead of that step's.
        without : tuple of str, default=()
            Steps whose columns are left out.

        Returns
        -------
        table : DataFrame
            One row per row of ``frame``, index 0 .. n-1.
        """
        parts = [part for name, part in {**self.columns, **(overrides or {})}.items() if name not in without]
        if not parts:
            return pd.DataFrame(index=pd.RangeIndex(len(self.frame)))
        return pd.concat(parts, axis=1)

    def member_tables(self, n_members: int) -> list[pd.DataFrame]:
        """One table per booster: the first from ``columns``, each other from its ``member_columns`` (the first's
        table where there are none: the boosters then differ in their splits only)."""
        tables = [self.table()]
        tables += [self.table(overrides) for overrides in self.member_columns[: n_members - 1]]
        return tables + [tables[0]] * (n_members - len(tables))

    def keep(self, kept: np.ndarray) -> Rows:
        """These rows without the others (``kept`` a boolean mask over the rows)."""
        def rows_of(values: Any) -> Any:
            return None if values is None else values[kept]

        def columns_of(parts: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
            return {name: part[kept].reset_index(drop=True) for name, part in parts.items()}

        return replace(self, frame=self.frame[kept], y=rows_of(self.y), groups=rows_of(self.groups),
                       targets=rows_of(self.targets), unreadable=self.unreadable[kept],
                       embeddings=rows_of(self.embeddings),
                       columns=columns_of(self.columns), member_columns=[columns_of(m) for m in self.member_columns])


@dataclass(frozen=True)
class StepOptions:
    """What a call gives every step besides the rows: options that are not fitted state.

    Parameters
    ----------
    cache : "auto", None, path or EmbeddingStore, default="auto"
        The store the image steps read first (and write).
    on_bad_image : {"raise", "skip"}, default="raise"
        What an unreadable image does.
    device : str, default=None
        A resolved device ("cpu", "cuda[:n]"): at fit, where the image encoders are loaded; when embedding,
        where they run (None: where they were loaded).
    seed : int, default=0
        Fit only: the seed of every internal split.
    n_members : int, default=1
        Fit only: boosters averaged; the image step makes that many versions of its out-of-fold columns.
    worker_device : str, default=None
        A distributed fit: where the workers embed ("cpu" or "cuda"); the client loads the encoders on ``device``
        for their identity only. None: a local fit.
    """

    cache: Any = "auto"
    on_bad_image: str = "raise"
    device: str | None = None
    seed: int = 0
    n_members: int = 1
    worker_device: str | None = None
