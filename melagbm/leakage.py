"""Leakage a fit can see: metadata columns that give the label away, and encoders trained on the images.

A user who builds ``X`` from a ground-truth CSV and drops only ``target`` keeps the
label's siblings as features, and every score looks perfect. :func:`check_label_leakage`
stops that at fit, by a column's name and by how well it alone separates the classes.
:func:`encoder_training_overlap` finds an encoder whose weights were trained on the images being fitted
(``derm_xception`` on HAM10000, ``derm_lite0`` on HAM10000 and BCN20000), by the images' content hashes
or the dataset's name.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from .exceptions import LabelLeakError
from .images.reading import ImageReadError, content_hash

__all__ = ["KNOWN_LABEL_COLUMNS", "LabelLeakError", "MAX_SINGLE_COLUMN_AUC", "check_label_leakage",
           "encoder_training_overlap", "single_column_auc"]

#: Column names that hold the diagnosis itself or how it was reached (lower-cased): HAM10000's
#: ``dx``/``dx_type``, ISIC's ``diagnosis``/``benign_malignant``/``target``, and common label names.
KNOWN_LABEL_COLUMNS = {
    "target": "the label column of ISIC's metadata",
    "label": "a label column",
    "melanoma": "a label column",
    "is_melanoma": "a label column",
    "y": "a label column",
    "class": "a label column",
    "diagnosis": "the diagnosis (ISIC 2020)",
    "benign_malignant": "the diagnosis, benign or malignant (ISIC 2020)",
    "dx": "the diagnosis (HAM10000)",
    "dx_type": "how the diagnosis was confirmed (HAM10000): known only after the decision",
}

#: A column whose values alone reach this ROC AUC (either direction) on the training rows is refused.
MAX_SINGLE_COLUMN_AUC = 0.98

#: Rows of each class below which the separability test is not run (names are still checked).
_MIN_ROWS_PER_CLASS = 5


def single_column_auc(values: pd.Series, y: np.ndarray, random_state: int = 0) -> float:
    """How well one column alone separates the classes: ROC AUC in [0.5, 1], whichever direction.

    Numbers are ranked as they are (missing values tried at both ends); text is replaced
    by each value's melanoma rate in the *other* half of the rows, so an id column, whose
    values rarely recur, scores about 0.5 instead of memorising the label.

    Parameters
    ----------
    values : Series
        The column, one value per row.
    y : array-like of shape (n_samples,)
        Labels of the rows, 0 or 1.
    random_state : int, default=0
        Seed of the split of the rows into halves (text columns).

    Returns
    -------
    auc : float
        ROC AUC of the column alone, in [0.5, 1]; 0.5 for a numeric column that is all missing.
    """
    y = np.asarray(y).astype(int)
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        numbers = pd.to_numeric(values, errors="coerce").astype(float).to_numpy()
        if np.isnan(numbers).all():
            return 0.5
        low, high = np.nanmin(numbers) - 1.0, np.nanmax(numbers) + 1.0
        aucs = [roc_auc_score(y, np.where(np.isnan(numbers), fill, numbers)) for fill in (low, high)]
    else:
        text = values.astype("string").fillna("<missing>").to_numpy()
        half = np.random.default_rng(random_state).permutation(len(y)) % 2 == 0
        score = np.empty(len(y))
        for part in (half, ~half):
            rates = pd.Series(y[~part]).groupby(text[~part]).mean()
            score[part] = pd.Series(text[part]).map(rates).fillna(y[~part].mean()).to_numpy()
        aucs = [roc_auc_score(y, score)]
    return float(max(max(auc, 1.0 - auc) for auc in aucs))


def check_label_leakage(frame: pd.DataFrame, y: np.ndarray, *, allowed: Iterable[str] = ()) -> None:
    """Raise :class:`LabelLeakError` naming every column of ``frame`` that gives ``y`` away.

    A column is refused when its name is one of :data:`KNOWN_LABEL_COLUMNS` or when it
    alone separates the two classes of ``y`` with ROC AUC >= :data:`MAX_SINGLE_COLUMN_AUC`
    on these rows (tested with at least 5 rows of each class). Columns in ``allowed``
    (those the user named as features) are not checked.

    Parameters
    ----------
    frame : DataFrame
        The metadata columns, one row per training row.
    y : array-like of shape (n_samples,)
        Labels of the rows; the separability test runs for two classes only.
    allowed : iterable of str, default=()
        Columns not checked.

    Raises
    ------
    LabelLeakError
        When a column gives the label away; the message names each column and why.
    """
    allowed = set(allowed)
    y = np.asarray(y)
    two_classes = len(np.unique(y)) == 2
    if two_classes:
        y = (y == np.unique(y)[1]).astype(int)
    separable = two_classes and np.bincount(y).min() >= _MIN_ROWS_PER_CLASS
    reasons = {}
    for column in frame.columns:
        if column in allowed:
            continue
        known = KNOWN_LABEL_COLUMNS.get(str(column).strip().lower())
        if known is not None:
            reasons[column] = known
        elif separable:
            auc = single_column_auc(frame[column], y)
            if auc >= MAX_SINGLE_COLUMN_AUC:
                reasons[column] = f"alone it separates the classes with ROC AUC {auc:.3f} on the training rows"
    if reasons:
        listed = "; ".join(f"{column!r}: {why}" for column, why in reasons.items())
        raise LabelLeakError(
            f"metadata column(s) {list(reasons)} give the label away ({listed}). Drop them from X, or, if one "
            "is truly known before the diagnosis, name it in metadata_cols to use it anyway"
        )


def _seen_images(backbone: str, checkpoint_path: str | os.PathLike | None) -> tuple[tuple[str, ...], np.ndarray]:
    """(the data sets, the SHA-256 prefixes of the images) ``backbone``'s weights were trained on; empty when
    they are not dermoscopy-trained."""
    from .backbones.derm_lite0 import DERM_LITE0
    from .backbones.derm_lite0 import trained_on as derm_lite0_trained_on
    from .backbones.derm_lite0 import training_image_hashes as derm_lite0_hashes
    from .backbones.derm_xception import DERM_XCEPTION
    from .backbones.derm_xception import TRAINED_ON as DERM_XCEPTION_TRAINED_ON
    from .backbones.derm_xception import training_image_hashes as derm_xception_hashes
    from .backbones.registry import split_input_size

    encoder = split_input_size(backbone)[0]
    if encoder == DERM_XCEPTION:
        return DERM_XCEPTION_TRAINED_ON, derm_xception_hashes()
    if encoder == DERM_LITE0:
        return derm_lite0_trained_on(checkpoint_path), derm_lite0_hashes(checkpoint_path)
    return (), np.empty(0, dtype=np.uint64)


#: How the guard names the data sets (``X.attrs["dataset"]``, lower-cased, without "-").
_DATASET_TITLES = {"ham10000": "HAM10000", "bcn20000": "BCN20000", "isic2020": "ISIC 2020"}


def encoder_training_overlap(
    backbone: str, images: Iterable, datasets: Iterable[str], checkpoint_path: str | os.PathLike | None = None
) -> str | None:
    """Why ``backbone``'s weights were trained on (some of) these images, or None when they are not known to be.

    Parameters
    ----------
    backbone : str
        A backbone name.
    images : iterable
        The training images (paths, bytes, arrays or PIL images): their SHA-256 is looked up among the
        images the weights were trained on.
    datasets : iterable of str
        The names the data carries (``X.attrs["dataset"]``).
    checkpoint_path : path, default=None
        The backbone's own weight file, when it was given one (a ``derm_lite0`` file lists its training images).

    Returns
    -------
    reason : str or None
        A sentence naming the dataset and how the overlap was found.
    """
    trained_on, known = _seen_images(backbone, checkpoint_path)
    if not len(trained_on) and not len(known):
        return None
    named = [name for name in datasets if name.lower().replace("-", "").replace(" ", "") in trained_on]
    images = list(images)
    seen = 0
    for item in images:
        try:
            prefix = np.uint64(int(content_hash(item)[:16], 16))
        except ImageReadError:
            continue
        position = np.searchsorted(known, prefix)
        seen += bool(position < len(known) and known[position] == prefix)
    if not seen and not named:
        return None
    titles = " and ".join(_DATASET_TITLES.get(name, name) for name in trained_on) or "other images"
    found = [f"{seen} of the {len(images)} training images are among them (by content hash)"] if seen else []
    found += [f"the data is named {named[0]}"] if named else []
    return (f"{backbone}'s weights were trained on {titles}, and {' and '.join(found)}: its scores and every "
            "metric of this model are optimistic (leakage); evaluate it on images the encoder never saw")
