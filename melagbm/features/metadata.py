"""MetadataEncoder: age, sex, anatomical site and other columns, vocabularies fixed at fit."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from .._warnings import warn
from ..exceptions import UnseenCategoryWarning
from ._names import current_name

__all__ = [
    "AGE_COLUMNS",
    "FIELD_COLUMNS",
    "HAM10000_TO_ISIC_SITE",
    "ISIC_SITES",
    "MetadataEncoder",
    "SEX_COLUMNS",
    "SITE_COLUMNS",
    "UNKNOWN",
    "UnseenCategoryWarning",
]

UNKNOWN = "unknown"

#: Each recognised field's output column (``family__feature``; the family is the field).
FIELD_COLUMNS = {"age": "age__years", "sex": "sex__category", "site": "site__general"}
#: Family of every other column passed through, and the start of its name (``metadata__<column>``).
OTHER_FAMILY = "metadata"

#: Column names recognised, in order, when a ``*_col`` parameter is "auto".
AGE_COLUMNS = ("age", "age_approx")
SEX_COLUMNS = ("sex",)
SITE_COLUMNS = ("site", "anatom_site_general_challenge", "anatom_site_general", "localization")

#: ISIC 2020's general anatomical sites.
ISIC_SITES = ("head/neck", "lower extremity", "oral/genital", "palms/soles", "torso", "upper extremity")

#: HAM10000 ``localization`` values onto the ISIC 2020 general sites.
HAM10000_TO_ISIC_SITE = {
    "abdomen": "torso",
    "back": "torso",
    "chest": "torso",
    "trunk": "torso",
    "anterior torso": "torso",
    "posterior torso": "torso",
    "lateral torso": "torso",
    "face": "head/neck",
    "scalp": "head/neck",
    "ear": "head/neck",
    "neck": "head/neck",
    "lower extremity": "lower extremity",
    "foot": "lower extremity",
    "upper extremity": "upper extremity",
    "hand": "upper extremity",
    "acral": "palms/soles",
    "genital": "oral/genital",
}

_KNOWN_VOCABULARY = {"sex": ("female", "male"), "site": ISIC_SITES}
_MISSING_STRINGS = {"", "nan", "none", "null", "na", "n/a", UNKNOWN}
MAX_AGE = 120


#: A categorical column is taken as recoded (an error) when this many known values are all unseen;
#: fewer (one patient's lesions at a new clinic) only warn.
_RECODED_MIN_ROWS = 20


def _clean_text(values: pd.Series) -> pd.Series:
    text = values.astype("string").str.strip().str.lower()
    return text.where(~text.isin(_MISSING_STRINGS) & text.notna(), UNKNOWN).astype(object)


def normalise_site(values: pd.Series) -> pd.Series:
    """Lower-case ISIC general sites; HAM10000 localizations mapped; missing -> "unknown"."""
    text = _clean_text(values)
    return text.map(lambda v: HAM10000_TO_ISIC_SITE.get(v, v))


def normalise_sex(values: pd.Series) -> pd.Series:
    """"male" / "female" (also from m/f); missing -> "unknown"."""
    aliases = {"m": "male", "f": "female", "man": "male", "woman": "female"}
    return _clean_text(values).map(lambda v: aliases.get(v, v))


def _pick(columns: pd.Index, requested: Any, candidates: tuple[str, ...], param: str) -> str | None:
    if requested is None:
        return None
    if requested == "auto":
        return next((c for c in candidates if c in columns), None)
    if requested not in columns:
        raise ValueError(f"{param}={requested!r} is not a column of X; columns are {list(columns)}")
    return requested


class MetadataEncoder(TransformerMixin, BaseEstimator):
    """Encode patient metadata for a gradient-boosted model.

    Age becomes a float (missing stays NaN; negative or > 120 is an error), sex and
    anatomical site become ``pd.Categorical`` whose categories are fixed at fit (the
    ISIC sites and both sexes are always in them, plus any other value seen) and
    always include ``"unknown"`` (missing values and, at predict time, unseen values
    with an :class:`UnseenCategoryWarning`). HAM10000 ``localization`` values are
    mapped onto ISIC 2020's general sites. Any other column passes through as
    ``metadata__<name>``: numeric as float, text as a categorical with a fixed vocabulary.

    Parameters
    ----------
    age_col, sex_col, site_col : str, "auto" or None, default="auto"
        Column holding each field. "auto" takes the first of :data:`AGE_COLUMNS`,
        :data:`SEX_COLUMNS` and :data:`SITE_COLUMNS` present; None ignores the field.
    other_cols : {"auto", "none"}, default="auto"
        "auto" passes every other column through; "none" drops them.

    Attributes
    ----------
    columns_ : dict
        Output feature -> input column.
    categories_ : dict
        Output feature -> list of categories (categorical features only).
    feature_families_ : dict
        Output feature -> family ("age", "sex", "site" or "metadata"). Outputs are named
        ``family__feature``: ``age__years``, ``sex__category``, ``site__general``, ``metadata__<column>``.

    Examples
    --------
    >>> import pandas as pd
    >>> X = pd.DataFrame({"age_approx": [45, None], "sex": ["male", None],
    ...                   "localization": ["back", "face"]})
    >>> MetadataEncoder().fit_transform(X)
       age__years sex__category site__general
    0        45.0          male         torso
    1         NaN       unknown     head/neck
    """

    def __init__(
        self,
        *,
        age_col: str | None = "auto",
        sex_col: str | None = "auto",
        site_col: str | None = "auto",
        other_cols: str = "auto",
    ) -> None:
        self.age_col = age_col
        self.sex_col = sex_col
        self.site_col = site_col
        self.other_cols = other_cols

    def fit(self, X: pd.DataFrame, y: Any = None) -> MetadataEncoder:
        """Resolve the columns and fix every categorical vocabulary.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            The training rows' metadata columns.
        y : None
            Ignored.

        Returns
        -------
        self : MetadataEncoder
            The fitted encoder.
        """
        X = _as_frame(X)
        validate_data(self, X, reset=True, skip_check_array=True)
        if self.other_cols not in ("auto", "none"):
            raise ValueError(f"other_cols must be 'auto' or 'none', got {self.other_cols!r}")
        columns: dict[str, str] = {}
        families: dict[str, str] = {}
        for field, requested, candidates, param in (
            ("age", self.age_col, AGE_COLUMNS, "age_col"),
            ("sex", self.sex_col, SEX_COLUMNS, "sex_col"),
            ("site", self.site_col, SITE_COLUMNS, "site_col"),
        ):
            column = _pick(X.columns, requested, candidates, param)
            if column is not None:
                columns[FIELD_COLUMNS[field]], families[FIELD_COLUMNS[field]] = column, field
        if self.other_cols == "auto":
            used = set(columns.values())
            for column in X.columns:
                if column not in used:
                    feature = f"{OTHER_FAMILY}__{column}"
                    columns[feature], families[feature] = column, OTHER_FAMILY
        self.columns_ = columns
        self.feature_families_ = families
        self.categories_ = {}
        for feature, column in columns.items():
            field = families[feature]
            numeric = _is_numeric_feature(field, X[column])
            values = self._convert(field, X[column], column, numeric)
            if not numeric:
                seen = sorted((set(values) | set(_KNOWN_VOCABULARY.get(field, ()))) - {UNKNOWN})
                self.categories_[feature] = seen + [UNKNOWN]
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        """Encode ``X`` with the vocabularies fixed at fit.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            Metadata with the columns fit saw.

        Returns
        -------
        encoded : DataFrame
            One column per output feature (float or categorical), indexed like ``X``.
        """
        check_is_fitted(self, "columns_")
        X = _as_frame(X)
        if not all(isinstance(c, str) for c in X.columns):  # numeric input: same width as at fit
            validate_data(self, X, reset=False, skip_check_array=True)
        missing = [column for column in self.columns_.values() if column not in X.columns]
        if missing:
            raise ValueError(f"X is missing metadata column(s) {missing} that were present at fit")
        out = {}
        for feature, column in self.columns_.items():
            categories = self.categories_.get(feature)
            values = self._convert(self.feature_families_[feature], X[column], column, numeric=categories is None)
            if categories is not None:
                _refuse_recoded(X[column], column, categories)
                unseen = sorted(set(values) - set(categories))
                known = values[values != UNKNOWN]
                if len(known) >= _RECODED_MIN_ROWS and not known.isin(categories).any():
                    raise ValueError(
                        f"Column {column!r}: none of its values {unseen[:5]} was seen at fit "
                        f"(vocabulary: {categories[:12]}); was the column recoded or renamed?"
                    )
                if unseen:
                    warn(
                        f"Column {column!r} has value(s) {unseen[:10]} not seen at fit; "
                        f"treated as {UNKNOWN!r}",
                        UnseenCategoryWarning,
                    )
                    values = values.where(values.isin(categories), UNKNOWN)
                values = pd.Categorical(values, categories=categories)
            out[feature] = values
        return pd.DataFrame(out, index=X.index)

    @staticmethod
    def _convert(field: str, values: pd.Series, column: str, numeric: bool) -> pd.Series:
        if field == "sex":
            return normalise_sex(values)
        if field == "site":
            return normalise_site(values)
        if not numeric:
            return _clean_text(values)
        numbers = pd.to_numeric(values, errors="coerce").astype(float)
        bad = values.notna() & numbers.isna()
        if bad.any():
            rows = list(values.index[bad][:5])
            raise ValueError(
                f"Column {column!r} must be numeric; rows {rows} hold {list(values[bad][:5])}"
            )
        if field == "age":
            absurd = (numbers < 0) | (numbers > MAX_AGE)
            if absurd.any():
                rows = list(values.index[absurd][:5])
                raise ValueError(
                    f"Column {column!r} holds ages outside 0-{MAX_AGE} at rows {rows}: "
                    f"{list(numbers[absurd][:5])}"
                )
        return pd.Series(np.asarray(numbers, dtype=float), index=values.index)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """The names of the output features, in column order.

        Parameters
        ----------
        input_features : array-like of str, default=None
            Ignored.

        Returns
        -------
        feature_names_out : ndarray of str objects
            The keys of ``columns_``.
        """
        check_is_fitted(self, "columns_")
        return np.asarray(list(self.columns_), dtype=object)

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        if "columns_" in state and any(current_name(name) != name for name in state["columns_"]):  # melagbm 0.1
            for attribute in ("columns_", "categories_", "feature_families_"):
                setattr(self, attribute, {current_name(k): v for k, v in state[attribute].items()})

    def __sklearn_tags__(self):  # type: ignore[no-untyped-def]
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.categorical = True
        tags.input_tags.string = True
        # the output is a DataFrame with one dtype per column (float or category)
        tags.transformer_tags.preserves_dtype = []
        return tags


def _is_number(value: Any) -> bool:
    return not pd.isna(pd.to_numeric(pd.Series([str(value).strip()]), errors="coerce").iloc[0])


def _refuse_recoded(raw: pd.Series, column: str, categories: list[str]) -> None:
    """Raise when a column that held text at fit holds only numbers now (sex recoded as 0/1, ...)."""
    present = raw.dropna()
    if len(present) == 0 or any(_is_number(c) for c in categories if c != UNKNOWN):
        return
    numbers = pd.to_numeric(present.astype(str).str.strip(), errors="coerce")
    if numbers.notna().all():
        raise ValueError(
            f"Column {column!r} holds numbers ({sorted(set(present.astype(str)))[:5]}) where fit saw "
            f"{[c for c in categories if c != UNKNOWN][:12]}; was the column recoded (e.g. sex as 0/1)? "
            "Give it the values it had at fit"
        )


def _is_numeric_feature(field: str, values: pd.Series) -> bool:
    if field == "age":
        return True
    if field in ("sex", "site"):
        return False
    return pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values)


def _as_frame(X: Any) -> pd.DataFrame:
    if isinstance(X, pd.DataFrame):
        if len(X) == 0:
            raise ValueError("Found array with 0 sample(s): metadata has no rows")
        return X
    array = check_array(X, dtype=None, ensure_all_finite="allow-nan")
    return pd.DataFrame(array, columns=range(array.shape[1]))
