"""The feature steps of a fit, under one contract: ``fit_transform(rows, options)`` and ``transform(rows, options)``.

Each step wraps the fitted object a model keeps (``InputGate``, ``ImageFeatures``, ``MetadataEncoder``,
``LesionFeatures``, ``PatientContext``), adds its booster columns to ``rows.columns[name]``, reports their
families (``feature_families_``) and says where a distributed fit runs it (``runs_on``):

- "client": once, on every row's small columns (labels, groups, metadata, and what earlier steps sent back);
  ``fit_transform`` learns from all rows at once.
- "partition": one task per partition on the workers, for what reads images or compares a patient's rows
  (each patient's rows in one partition). Its ``fit(rows, options)`` learns what it needs on the client
  first (nothing from the images), then ``transform`` runs per partition; ``fit_transform`` is the two in
  turn, and :meth:`EmbeddingStep.settle` then leaves the unreadable images out. ``gathered`` names the
  ``Rows`` fields a later client step needs back from the partitions at fit (the embeddings).

Options that are not fitted state (the store, what an unreadable image does, the device) come with each call.
"""

from __future__ import annotations

from time import perf_counter
from typing import Any, Protocol

import numpy as np
import pandas as pd

from .._warnings import warn
from ..embedding.embedder import BadImageWarning
from ..features.image_features import ImageFeatures
from ..features.inputs import InputGate, warn_duplicate_images
from ..features.lesion import LESION_FEATURES, LesionFeatures
from ..features.metadata import MetadataEncoder
from ..features.patient import PatientContext
from ..images.reading import ImageReadError
from .rows import Rows, StepOptions

__all__ = ["ContextStep", "EmbeddingStep", "FeatureStep", "ImageStep", "InputStep", "LesionStep", "MetadataStep",
           "run_steps", "skip_unreadable"]


class FeatureStep(Protocol):
    """The contract of a feature step (see the module's docstring)."""

    name: str
    runs_on: str  # "client" or "partition"
    gathered: tuple[str, ...]  # partition steps: the Rows fields a later client step needs at fit

    def fit_transform(self, rows: Rows, options: StepOptions) -> Rows: ...

    def transform(self, rows: Rows, options: StepOptions) -> Rows: ...

    @property
    def feature_families_(self) -> dict[str, str]: ...


class InputStep:
    """The column roles: image, group, patient, lesion, diagnosis and metadata columns, fixed once at fit.

    Fit resolves the patient and lesion columns, refuses metadata that gives the label away (named columns only),
    checks the groups and reads the diagnoses; every later step reads the roles from ``rows.roles``.
    """

    name, runs_on, gathered = "inputs", "client", ()
    feature_families_: dict[str, str] = {}

    def __init__(self, gate: InputGate, *, named_columns: bool = True) -> None:
        self.gate = gate
        self.named_columns = named_columns

    def fit_transform(self, rows: Rows, options: StepOptions) -> Rows:
        gate = self.gate.fit(rows.frame.columns)
        if self.named_columns:  # a plain array's columns have no names to judge
            gate.check_no_label_leak(rows.frame, rows.y)
        rows.roles, rows.groups = gate, gate.groups(rows.frame, rows.groups)
        rows.targets = gate.diagnoses(rows.frame)
        return rows

    def transform(self, rows: Rows, options: StepOptions) -> Rows:
        rows.roles = self.gate
        return rows


class EmbeddingStep:
    """Images -> each backbone's embedding, side by side (store first); at fit, the backbones loaded and the rows
    whose image is unreadable left out (``on_bad_image="skip"``). Adds no booster column: the image step scores
    the embeddings."""

    name, runs_on, gathered = "embedding", "partition", ("embeddings", "unreadable")
    feature_families_: dict[str, str] = {}

    def __init__(self, features: ImageFeatures) -> None:
        self.features = features

    def fit(self, rows: Rows, options: StepOptions) -> EmbeddingStep:
        """Load each backbone (weights only; ``options.worker_device``: where a cluster's workers embed)."""
        if rows.roles.image_col in rows.frame:  # (a distributed fit's client holds no images)
            warn_duplicate_images(rows.frame[rows.roles.image_col], rows.groups)
        self.features.fit_embedders(options.device, runs_on=options.worker_device)
        if options.worker_device is not None:
            for embedder in self.features.embedders_:
                embedder.device = options.worker_device  # resolved on each worker
        return self

    def fit_transform(self, rows: Rows, options: StepOptions) -> Rows:
        return self.settle(self.fit(rows, options).transform(rows, options))

    @staticmethod
    def settle(rows: Rows) -> Rows:
        """At fit: the rows whose image is unreadable leave the fit (``skipped``, with a warning naming them)."""
        rows.skipped = skip_unreadable(rows.frame.index, rows.unreadable, rows.y, rows.roles.image_col)
        return rows.keep(~rows.unreadable) if rows.unreadable.any() else rows

    def transform(self, rows: Rows, options: StepOptions) -> Rows:
        rows.embeddings = self.features.embed(rows.frame[rows.roles.image_col], on_bad_image=options.on_bad_image,
                                              cache=options.cache, device=options.device)
        rows.unreadable = rows.unreadable | np.isnan(rows.embeddings).any(axis=1)
        return rows


class ImageStep:
    """Embeddings -> the booster's image columns (the image signal: probe score, PCA, ...); at fit, the signal
    learnt on every row and each booster's out-of-fold columns. NaN where the image is unreadable."""

    name, runs_on, gathered = "image", "client", ()

    def __init__(self, features: ImageFeatures) -> None:
        self.features = features

    @property
    def feature_families_(self) -> dict[str, str]:
        return self.features.feature_families_

    def fit_transform(self, rows: Rows, options: StepOptions) -> Rows:
        versions = self.features.fit_scores(rows.embeddings, rows.y, rows.groups, options.seed, targets=rows.targets,
                                            n_tables=options.n_members)
        rows.columns[self.name] = versions[0]
        rows.member_columns = [{self.name: version} for version in versions[1:]]
        rows.embeddings = None  # scored: the widest array of the fit is not kept
        return rows

    def transform(self, rows: Rows, options: StepOptions) -> Rows:
        rows.columns[self.name] = self.features.score(rows.embeddings).reset_index(drop=True)
        rows.embeddings = None
        return rows


class MetadataStep:
    """Metadata -> age, sex, site and other columns, their vocabularies fixed on the training rows."""

    name, runs_on, gathered = "metadata", "client", ()

    def __init__(self, encoder: MetadataEncoder | None = None) -> None:
        self.encoder = encoder

    @property
    def feature_families_(self) -> dict[str, str]:
        return self.encoder.feature_families_

    def fit_transform(self, rows: Rows, options: StepOptions) -> Rows:
        metadata = rows.roles.metadata(rows.frame)
        self.encoder = MetadataEncoder(other_cols=rows.roles.other_metadata()).fit(metadata)
        rows.columns[self.name] = self.encoder.transform(metadata).reset_index(drop=True)
        return rows

    def transform(self, rows: Rows, options: StepOptions) -> Rows:
        rows.columns[self.name] = self.encoder.transform(rows.roles.metadata(rows.frame)).reset_index(drop=True)
        return rows


class LesionStep:
    """Image -> the lesion's size, shape and colour (store first); NaN where the image is unreadable."""

    name, runs_on, gathered = "lesion", "partition", ()

    def __init__(self, features: LesionFeatures) -> None:
        self.features = features

    @property
    def feature_families_(self) -> dict[str, str]:
        return self.features.feature_families_

    def fit(self, rows: Rows, options: StepOptions) -> LesionStep:
        """Nothing to learn: measuring a lesion reads its image only."""
        return self

    def fit_transform(self, rows: Rows, options: StepOptions) -> Rows:
        return self.fit(rows, options).transform(rows, options)

    def transform(self, rows: Rows, options: StepOptions) -> Rows:
        lesion = pd.DataFrame(np.nan, index=range(len(rows)), columns=list(LESION_FEATURES))
        readable = np.flatnonzero(~rows.unreadable)
        if len(readable):
            images = rows.frame[rows.roles.image_col].iloc[readable]
            lesion.iloc[readable] = self.features.transform(images, cache=options.cache).to_numpy()
        rows.columns[self.name] = lesion
        return rows


class ContextStep:
    """Each lesion against the same patient's others in the rows given (each booster's version too, at fit)."""

    name, runs_on, gathered = "context", "partition", ()

    def __init__(self, context: PatientContext) -> None:
        self.context = context

    @property
    def feature_families_(self) -> dict[str, str]:
        return self.context.feature_families_

    def fit(self, rows: Rows, options: StepOptions) -> ContextStep:
        """The columns compared within a patient: those of the earlier steps that the context knows."""
        self.context.fit(list(rows.table(without=(self.name,)).columns))
        return self

    def fit_transform(self, rows: Rows, options: StepOptions) -> Rows:
        rows = self.fit(rows, options).transform(rows, options)
        patients = rows.roles.patients(rows.frame)
        for overrides in rows.member_columns:
            overrides[self.name] = self.context.transform(rows.table(overrides, without=(self.name,)), patients)
        return rows

    def transform(self, rows: Rows, options: StepOptions) -> Rows:
        rows.columns[self.name] = self.context.transform(rows.table(without=(self.name,)),
                                                         rows.roles.patients(rows.frame))
        return rows


def skip_unreadable(rows: pd.Index, bad: np.ndarray, y_codes: np.ndarray, image_col: str) -> list:
    """The training rows left out for an unreadable image (with a warning naming them); raises when none is
    left, or only one class."""
    if bad.all():
        raise ImageReadError(f"none of the {len(bad)} images in column {image_col!r} could be read")
    skipped = list(rows[bad])
    if bad.any():
        warn(
            f"fit skipped {int(bad.sum())} row(s) whose image could not be read: "
            f"{skipped[:10]}{' ...' if bad.sum() > 10 else ''} (see skipped_rows_)",
            BadImageWarning,
        )
    if len(np.unique(y_codes[~bad])) < 2:
        raise ValueError("after skipping unreadable images, y holds one class only")
    return skipped


def run_steps(steps: list[Any], rows: Rows, options: StepOptions, *, fitting: bool,
              seconds: dict[str, float] | None = None) -> Rows:
    """``rows`` through ``steps`` in order (``fit_transform`` when ``fitting``), each step's time in ``seconds``."""
    for step in steps:
        started = perf_counter()
        rows = step.fit_transform(rows, options) if fitting else step.transform(rows, options)
        if seconds is not None:
            seconds[step.name] = perf_counter() - started
    return rows
