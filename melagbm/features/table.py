"""The feature-table assembler: the booster's columns for rows of X, and the family of each column."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .image_features import ImageFeatures
from .inputs import InputGate
from .lesion import LESION_FEATURES, LesionFeatures
from .metadata import MetadataEncoder
from .patient import PatientContext

__all__ = ["FeatureTable"]


class FeatureTable:
    """Each fitted feature step's columns side by side: image, metadata, lesion, then patient context.

    The family of every column is the one the step that made it reports (``feature_families_``),
    never parsed back from its name.

    Parameters
    ----------
    inputs : InputGate
        The roles of X's columns (fitted).
    metadata : MetadataEncoder
        Fitted on the training rows' metadata.
    image : ImageFeatures or None
        With fitted embedders and signals; None for a metadata-only model.
    lesion : LesionFeatures or None
    context : PatientContext or None
        Fitted by :meth:`fit` on the columns the other steps make.
    """

    def __init__(
        self, *, inputs: InputGate, metadata: MetadataEncoder, image: ImageFeatures | None = None,
        lesion: LesionFeatures | None = None, context: PatientContext | None = None,
    ) -> None:
        self.inputs = inputs
        self.metadata = metadata
        self.image = image
        self.lesion = lesion
        self.context = context

    def fit(self) -> FeatureTable:
        """Fit the patient context on the columns the image, metadata and lesion steps make; return self."""
        if self.context is not None:
            self.context.fit(list(self._families(include_context=False)))
        return self

    def transform(
        self, frame: pd.DataFrame, image_part: pd.DataFrame | None = None, *, on_bad_image: str = "raise",
        drop_unreadable: bool = False,
    ) -> tuple[pd.DataFrame, np.ndarray]:
        """(the table of ``frame``'s rows, the mask of rows whose image could not be read).

        ``image_part``: image columns to use instead of embedding the images (NaN marks an
        unreadable image). ``drop_unreadable``: leave those rows out, before the patient context
        is computed among the rest.

        Parameters
        ----------
        frame : DataFrame
            The input rows (from :meth:`~melagbm.features.inputs.InputGate.frame`).
        image_part : DataFrame, default=None
            Image columns to use instead of embedding the images.
        on_bad_image : {"raise", "skip"}, default="raise"
            What an unreadable image does when the images are embedded.
        drop_unreadable : bool, default=False
            Leave out the rows whose image could not be read.

        Returns
        -------
        table : DataFrame
            The booster's columns, in the order of :meth:`families`; one row per row of ``frame`` (those kept).
        unreadable : ndarray of shape (n_rows,)
            True where the image could not be read, one entry per row of ``frame`` (dropped ones included).
        """
        table, bad = self._base(frame, image_part, on_bad_image=on_bad_image)
        if drop_unreadable and bad.any():
            table, frame = table[~bad].reset_index(drop=True), frame[~bad]
        return self._with_context(table, frame), bad

    def with_image_part(self, table: pd.DataFrame, frame: pd.DataFrame, image_part: pd.DataFrame) -> pd.DataFrame:
        """``table`` (from :meth:`transform` of ``frame``) with other image columns, and the patient context
        computed again from them; nothing is embedded or measured again.

        Parameters
        ----------
        table : DataFrame
            The table of ``frame``'s rows.
        frame : DataFrame
            The input rows behind it.
        image_part : DataFrame
            Image columns for the same rows (another version of the out-of-fold scores).

        Returns
        -------
        table : DataFrame
            The same columns in the same order.
        """
        context = [] if self.context is None else list(self.context.feature_families_)
        base = table.drop(columns=context)
        base[list(image_part.columns)] = image_part.to_numpy()
        return self._with_context(base, frame)[list(table.columns)]

    def families(self) -> dict[str, str]:
        """Column -> family, as each step reports it, in the table's column order (after :meth:`fit`)."""
        return self._families(include_context=True)

    def _families(self, *, include_context: bool) -> dict[str, str]:
        families: dict[str, str] = {}
        for step in (self.image, self.metadata, self.lesion, self.context if include_context else None):
            if step is not None:
                families.update(step.feature_families_)
        return families

    def _base(
        self, frame: pd.DataFrame, image_part: pd.DataFrame | None, *, on_bad_image: str = "raise"
    ) -> tuple[pd.DataFrame, np.ndarray]:
        parts, bad = [], np.zeros(len(frame), dtype=bool)
        if self.image is not None:
            if image_part is None:
                image_part, bad = self.image.transform(frame[self.inputs.image_col], on_bad_image=on_bad_image)
            else:
                bad = image_part.isna().any(axis=1).to_numpy()
            parts.append(image_part.reset_index(drop=True))
        parts.append(self.metadata.transform(self.inputs.metadata(frame)).reset_index(drop=True))
        if self.lesion is not None:
            lesion = pd.DataFrame(np.nan, index=range(len(frame)), columns=list(LESION_FEATURES))
            good = np.flatnonzero(~bad)
            if len(good):
                lesion.iloc[good] = self.lesion.transform(frame[self.inputs.image_col].iloc[good]).to_numpy()
            parts.append(lesion)
        return pd.concat(parts, axis=1), bad

    def _with_context(self, table: pd.DataFrame, frame: pd.DataFrame) -> pd.DataFrame:
        if self.context is None:
            return table
        return pd.concat([table, self.context.transform(table, self.inputs.patients(frame))], axis=1)
