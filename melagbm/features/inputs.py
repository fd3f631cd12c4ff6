"""The input gate: which columns of X are images, ids and metadata, the groups, and the checks made before any
image is read (missing columns, label columns, repeated images, ids that should group the splits)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.utils.validation import validate_data

from .._warnings import warn
from ..exceptions import DuplicateImageWarning, ImageReadError, UngroupedFitWarning
from ..images.reading import content_hash
from ..leakage import check_label_leakage
from .metadata import AGE_COLUMNS, SEX_COLUMNS, SITE_COLUMNS

__all__ = ["ID_COLUMNS", "LESION_ID_COLUMN", "PATIENT_ID_COLUMN", "InputGate", "InputSchema", "warn_duplicate_images"]

#: The patient column ``patient_col="auto"`` looks for (the name ISIC's metadata uses).
PATIENT_ID_COLUMN = "patient_id"
#: The lesion column fit groups by when nothing else names the groups (the name HAM10000 uses).
LESION_ID_COLUMN = "lesion_id"
#: Id columns: never features; fit groups its internal splits by them when nothing else names the groups.
ID_COLUMNS = (PATIENT_ID_COLUMN, LESION_ID_COLUMN)
#: Column names that look like patient or lesion ids (``UngroupedFitWarning``).
_ID_LIKE = re.compile(r"(^|[_\- ])ids?$|^(patient|subject|lesion|case|person)[_\- ]?(ids?|no|number)?$",
                      re.IGNORECASE)


@dataclass(frozen=True)
class InputSchema:
    """What a fitted model reads from X: the column of each role and the values it knows.

    Parameters
    ----------
    image : str or None
        The image column (None: a metadata-only model).
    patient, lesion : str or None
        The patient and lesion id columns (None where the model uses none).
    fields : dict
        ``"age"``, ``"sex"``, ``"site"`` -> the column the model reads it from (fields it does not use absent).
    values : dict
        ``"sex"``, ``"site"`` -> the values the model learned (its unknown token left out: a missing or unseen value
        is read as unknown).
    other_metadata : tuple of str
        Further metadata columns the model uses as they are.
    columns : tuple of str
        Every column of X at fit.
    """

    image: str | None
    patient: str | None
    lesion: str | None
    fields: dict[str, str]
    values: dict[str, list[str]]
    other_metadata: tuple[str, ...]
    columns: tuple[str, ...]


class InputGate:
    """The roles of X's columns, fixed at fit; every row that enters the model passes here first.

    Parameters
    ----------
    image_col : str or None
        The image column (None: metadata only, and X may be a numeric array).
    group_col : str or None
        The column of patient or lesion ids that groups the internal splits.
    patient_col : str, "auto" or None
        The patient column behind the patient context ("auto": ``patient_id`` when present).
    metadata_cols : "auto", "known" or list of str
        The metadata columns (see :class:`~melagbm.FusionClassifier`).
    diagnosis_col : str or None, default=None
        The column of diagnoses the image probe learns at fit: never metadata, not needed to predict.
    lesion_col : str, "auto" or None, default=None
        The lesion column behind the lesion pooling ("auto": ``lesion_id`` when present).

    Attributes
    ----------
    patient_col_ : str or None
        The patient column, resolved by :meth:`fit`.
    lesion_col_ : str or None
        The lesion column, resolved by :meth:`fit`.
    """

    def __init__(
        self, *, image_col: str | None, group_col: str | None, patient_col: str | None,
        metadata_cols: str | list[str], diagnosis_col: str | None = None, lesion_col: str | None = None,
    ) -> None:
        self.image_col = image_col
        self.group_col = group_col
        self.patient_col = patient_col
        self.metadata_cols = metadata_cols
        self.diagnosis_col = diagnosis_col
        self.lesion_col = lesion_col

    def check_params(self) -> InputGate:
        """Raise ValueError when ``metadata_cols`` is neither "auto", "known" nor a list of names; return self."""
        columns = self.metadata_cols
        if isinstance(columns, str):
            valid = columns in ("auto", "known")
        else:
            valid = hasattr(columns, "__iter__") and all(isinstance(c, str) for c in columns)
        if not valid:
            raise ValueError(f"metadata_cols must be 'auto', 'known' or a list of column names, got {columns!r}")
        return self

    def frame(self, X: Any, estimator: Any, *, reset: bool) -> pd.DataFrame:
        """X as a DataFrame holding the named columns (``estimator`` records or checks the input's names).

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            The input rows; a numeric array only when ``image_col`` is None (its columns become ``x0``, ``x1``, ...).
        estimator : estimator
            The estimator whose ``n_features_in_`` and ``feature_names_in_`` are recorded or checked.
        reset : bool
            True at fit (record the input's names and width), False afterwards (check them).

        Returns
        -------
        frame : DataFrame
            X itself when it is a DataFrame, else the validated array as a DataFrame.
        """
        if isinstance(X, pd.DataFrame):
            validate_data(estimator, self.model_inputs(X), reset=reset, skip_check_array=True)
            frame = X
        elif self.image_col is not None:
            raise TypeError(
                f"X must be a pandas DataFrame with an image column {self.image_col!r} "
                f"(or set image_col=None for metadata only), got {type(X).__name__}"
            )
        else:
            array = validate_data(estimator, X, reset=reset, ensure_all_finite="allow-nan", dtype="numeric")
            frame = pd.DataFrame(array, columns=[f"x{i}" for i in range(array.shape[1])])
        if len(frame) == 0:
            raise ValueError("X has no rows")
        self.check_columns(frame.columns, fitting=reset)
        return frame

    def model_inputs(self, X: pd.DataFrame) -> pd.DataFrame:
        """X without the diagnosis column: what the model's input is (``feature_names_in_``).

        Parameters
        ----------
        X : DataFrame
            Rows as given to fit or predict.

        Returns
        -------
        inputs : DataFrame
            X, less ``diagnosis_col`` (a training target only) when it is there.
        """
        return X.drop(columns=[self.diagnosis_col]) if self.diagnosis_col in X.columns else X

    def check_columns(self, columns: pd.Index, *, fitting: bool = True) -> None:
        """Raise ValueError naming the image, group, patient, lesion (or, fitting, diagnosis) column ``columns`` lacks.

        Parameters
        ----------
        columns : Index
            The column names of X.
        fitting : bool, default=True
            Whether X is training data (the diagnosis column is needed only then).
        """
        needed = [self.image_col, self.group_col] + [
            None if column == "auto" else column for column in (self.patient_col, self.lesion_col)]
        for column in needed + ([self.diagnosis_col] if fitting else []):
            if column is not None and column not in columns:
                raise ValueError(f"X has no column {column!r}; columns are {list(columns)}")

    def fit(self, columns: pd.Index) -> InputGate:
        """Resolve the patient and lesion columns among ``columns``.

        Parameters
        ----------
        columns : Index
            The column names of the training X.

        Returns
        -------
        self : InputGate
            With ``patient_col_`` and ``lesion_col_`` set.
        """
        self.patient_col_ = _resolve(self.patient_col, PATIENT_ID_COLUMN, columns)
        self.lesion_col_ = _resolve(self.lesion_col, LESION_ID_COLUMN, columns)
        return self

    def metadata(self, X: pd.DataFrame) -> pd.DataFrame:
        """The metadata columns of X: never the image, group or patient column, nor a ``patient_id``/``lesion_id``.

        Parameters
        ----------
        X : DataFrame
            The input rows (after :meth:`fit`).

        Returns
        -------
        metadata : DataFrame
            X's metadata columns, every row.
        """
        excluded = {self.image_col, self.group_col, self.patient_col_, self.lesion_col_, self.diagnosis_col,
                    *ID_COLUMNS}
        if isinstance(self.metadata_cols, str) and self.metadata_cols in ("auto", "known"):
            return X[[c for c in X.columns if c not in excluded]]
        columns = list(self.metadata_cols)
        missing = [c for c in columns if c not in X.columns]
        if missing:
            raise ValueError(f"metadata_cols {missing} are not columns of X")
        ids = [c for c in columns
               if c in {self.image_col, self.group_col, self.patient_col_, self.lesion_col_, self.diagnosis_col}]
        if ids:
            raise ValueError(
                f"metadata_cols names {ids}: the image, group, patient and diagnosis columns are never features")
        return X[columns]

    def other_metadata(self) -> str:
        """What the metadata encoder does with columns beyond age, sex and site: "auto" (keep) or "none"."""
        return "none" if self.metadata_cols == "known" else "auto"

    def check_no_label_leak(self, X: pd.DataFrame, y: np.ndarray) -> None:
        """Refuse metadata columns that give the label away, unless ``metadata_cols`` names them.

        Parameters
        ----------
        X : DataFrame
            The training rows.
        y : ndarray of shape (n_samples,)
            Their labels.
        """
        frame = self.metadata(X)
        if self.metadata_cols == "known":
            frame = frame[[c for c in frame.columns if c in AGE_COLUMNS + SEX_COLUMNS + SITE_COLUMNS]]
        named = [] if isinstance(self.metadata_cols, str) else list(self.metadata_cols)
        check_label_leakage(frame, y, allowed=named)

    def group_column(self, X: pd.DataFrame) -> str | None:
        """The column that groups X's rows without ``groups``: group_col, else the patient column, else an id.

        Parameters
        ----------
        X : DataFrame
            The input rows (after :meth:`fit`).

        Returns
        -------
        column : str or None
            The first of those columns that X has; None when it has none.
        """
        candidates = (self.group_col, self.patient_col_, self.lesion_col_, *ID_COLUMNS)
        return next((c for c in candidates if c is not None and c in X.columns), None)

    def groups(self, X: pd.DataFrame, groups: Any) -> np.ndarray | None:
        """The patient/lesion id of each row (``groups``, else the group column), checked; None: rows are free.

        Parameters
        ----------
        X : DataFrame
            The input rows (after :meth:`fit`).
        groups : array-like of shape (n_samples,) or None
            Ids given to fit; None takes them from :meth:`group_column` (warning when id-like columns go unused).

        Returns
        -------
        groups : ndarray of shape (n_samples,) or None
            One id per row, none missing; None when nothing groups the rows.
        """
        if groups is None:
            column = self.group_column(X)
            if column is None:
                _warn_id_like_columns(X)
                return None
            groups = X[column]
        groups = np.asarray(groups)
        if len(groups) != len(X):
            raise ValueError(f"groups has {len(groups)} entries but X has {len(X)} rows")
        if pd.isna(groups).any():
            raise ValueError(f"groups has missing values at rows {list(X.index[pd.isna(groups)][:5])}")
        return groups

    def diagnoses(self, X: pd.DataFrame) -> np.ndarray | None:
        """Each training row's diagnosis (None without ``diagnosis_col``); ValueError naming rows without one.

        Parameters
        ----------
        X : DataFrame
            Training rows.

        Returns
        -------
        diagnoses : ndarray or None
            One diagnosis per row.
        """
        if self.diagnosis_col is None:
            return None
        values = X[self.diagnosis_col]
        if values.isna().any():
            raise ValueError(f"column {self.diagnosis_col!r} (diagnoses, for the image probe) is missing at rows "
                             f"{list(values.index[values.isna()][:10])}; fill it, or set diagnosis_col=None")
        return values.to_numpy()

    def patients(self, X: pd.DataFrame) -> np.ndarray:
        """The patient id of each row, for the patient context; raises ValueError naming rows without one.

        Parameters
        ----------
        X : DataFrame
            The input rows, with the patient column ``patient_col_``.

        Returns
        -------
        patients : ndarray of shape (n_samples,)
            The patient id of each row.
        """
        return _ids(X, self.patient_col_, "patient ids, for the patient context", "patient_col")

    def lesions(self, X: pd.DataFrame) -> np.ndarray:
        """The lesion id of each row, for the lesion pooling; raises ValueError naming rows without one.

        Parameters
        ----------
        X : DataFrame
            The input rows, with the lesion column ``lesion_col_``.

        Returns
        -------
        lesions : ndarray of shape (n_samples,)
            The lesion id of each row.
        """
        return _ids(X, self.lesion_col_, "lesion ids, for the lesion pooling", "lesion_col")


def _resolve(column: str | None, auto: str, columns: pd.Index) -> str | None:
    """``column``, or for "auto" the column named ``auto`` when ``columns`` has it (else None)."""
    if column == "auto":
        return auto if auto in columns else None
    return column


def _ids(X: pd.DataFrame, column: str, what: str, parameter: str) -> np.ndarray:
    """``X[column]`` as an array; ValueError naming the rows where it is missing."""
    ids = X[column]
    if ids.isna().any():
        raise ValueError(f"column {column!r} ({what}) is missing at rows {list(ids.index[ids.isna()][:10])}; "
                         f"fill it, or set {parameter}=None")
    return ids.to_numpy()


def warn_duplicate_images(images: pd.Series, groups: np.ndarray | None) -> None:
    """Warn, naming the rows, when identical images recur (across groups they leak between folds)."""
    first: dict[str, Any] = {}
    pairs, across = [], 0
    for position, (row, item) in enumerate(images.items()):
        try:
            key = content_hash(item, row)
        except ImageReadError:
            continue  # reported by the embedder
        if key in first:
            earlier = first[key]
            pairs.append((images.index[earlier], row))
            across += groups is not None and groups[earlier] != groups[position]
        else:
            first[key] = position
    if pairs:
        shown = ", ".join(f"{a!r} = {b!r}" for a, b in pairs[:5])
        leak = f"; {across} pair(s) span two groups, so they can leak across folds" if across else ""
        warn(
            f"{len(pairs)} image(s) repeat an earlier row's image exactly ({shown}{' ...' if len(pairs) > 5 else ''})"
            f"{leak}",
            DuplicateImageWarning,
        )


def _warn_id_like_columns(X: pd.DataFrame) -> None:
    """Warn when fit has no groups but X has columns that look like patient or lesion ids."""
    id_like = [c for c in X.columns if isinstance(c, str) and _ID_LIKE.search(c)]
    if id_like:
        warn(
            f"fit has no groups, so its internal splits (early stopping, calibration, threshold) treat rows as "
            f"independent, but X has column(s) {id_like} that look like patient or lesion ids (and would become "
            f"features). Pass groups=, or group_col={id_like[0]!r}; in scikit-learn's cross_validate, route them: "
            "sklearn.set_config(enable_metadata_routing=True) and clf.set_fit_request(groups=True)",
            UngroupedFitWarning,
        )
