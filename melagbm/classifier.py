"""FusionClassifier: dermoscopic images + patient metadata -> gradient boosting."""

from __future__ import annotations

import os
import re
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.metrics import roc_auc_score
from sklearn.utils import check_random_state
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from ._device import resolve_device
from ._splits import SEED_MAX, stratified_group_splits
from ._warnings import warn
from .boosting import adapter_for, fit_booster, make_booster
from .boosting import margin as booster_margin
from .decision import (
    CALIBRATION_METHODS,
    class_weight_shift,
    fit_calibration,
    logit,
    sigmoid,
    threshold_for_sensitivity,
)
from .embedding import BadImageWarning, ImageEmbedder, check_on_bad_image
from .exceptions import DuplicateImageWarning, UngroupedFitWarning
from .image_signal import IMAGE_FEATURE_MODES, ImageSignal
from .images import ImageReadError, content_hash
from .leakage import check_label_leakage
from .lesion import LESION_FEATURES, LesionFeatures
from .metadata import AGE_COLUMNS, SEX_COLUMNS, SITE_COLUMNS, MetadataEncoder
from .patient import CONTEXT_COLUMNS, patient_context

__all__ = ["FusionClassifier"]

# Below this many rows one booster thread is faster than several, and OpenMP threads
# spinning beside torch's and BLAS's can stall a notebook kernel on a small machine.
_SMALL_TABLE = 10_000
#: The patient column ``patient_col="auto"`` looks for (the name ISIC's metadata uses).
PATIENT_ID_COLUMN = "patient_id"
#: The lesion column fit groups by when nothing else names the groups (the name HAM10000 uses).
LESION_ID_COLUMN = "lesion_id"
#: Id columns: never features; fit groups its internal splits by them when nothing else names the groups.
ID_COLUMNS = (PATIENT_ID_COLUMN, LESION_ID_COLUMN)
#: Column names that look like patient or lesion ids (``UngroupedFitWarning``).
_ID_LIKE = re.compile(r"(^|[_\- ])ids?$|^(patient|subject|lesion|case|person)[_\- ]?(ids?|no|number)?$",
                      re.IGNORECASE)


class FusionClassifier(ClassifierMixin, BaseEstimator):
    """Melanoma classifier fusing a frozen CNN's view of the image with metadata.

    Each image is embedded by a pretrained timm backbone (see
    :class:`~melagbm.ImageEmbedder`); the embedding becomes booster features as set
    by ``image_features``; age, sex, anatomical site and any other metadata columns
    are encoded by :class:`~melagbm.MetadataEncoder`; LightGBM or XGBoost learns
    from all of them, with early stopping on a group-aware validation split that
    fit makes itself.

    Parameters
    ----------
    image_col : str or None, default="image"
        Column of images (paths, bytes, arrays or PIL images). None: metadata only,
        and X may then be any numeric 2-D array.
    group_col : str or None, default=None
        Column of patient (or lesion) ids. Used for the internal splits and never as
        a feature. ``fit(..., groups=...)`` does the same without a column. With
        neither, fit groups by the patient column, else by a ``patient_id`` or ``lesion_id`` column
        (the loaders put them in X); ``n_groups_`` tells what it used. In
        scikit-learn's ``cross_validate``, route ``groups`` to fit with
        ``sklearn.set_config(enable_metadata_routing=True)`` and
        ``clf.set_fit_request(groups=True)``, or keep the id column in X.
    metadata_cols : "auto", "known" or list of str, default="auto"
        "auto": every column but ``image_col``, ``group_col``, the patient column and
        any ``patient_id`` or ``lesion_id``. "known": only the recognised age, sex and
        site columns. A list names them. Under "auto" and "known", a column that gives
        the label away (``diagnosis``, ``benign_malignant``, ``dx``, ``target``, ...,
        or any that alone separates the classes with ROC AUC >= 0.98) is refused with
        a :class:`~melagbm.leakage.LabelLeakError` naming it; name it in a list to use it anyway.
    backbone : str or tuple of str, default=("tf_efficientnet_lite0", "tf_efficientnet_lite2")
        Image encoder(s); packaged ones work offline (``melagbm.ENCODERS``). With
        several, their embeddings are concatenated (measured on HAM10000: Lite0 +
        Lite2 beats either alone, see benchmarks/quality.py).
    checkpoint_path : path, default=None
        Local weights for the backbone (a single backbone only).
    layers : int, default=4
        Feature levels pooled from the backbone (1: head output only).
    tta : {"none", "flip", "flip4", "rot4", "d8"}, default="none"
        Test-time augmentation of the embedding (see :class:`~melagbm.ImageEmbedder`).
    preprocessing : dict, default=None
        Overrides of the backbones' preprocessing; see :class:`~melagbm.ImageEmbedder`.
    lesion_features : bool or "auto", default="auto"
        Segment each lesion and add its size, shape and colour
        (:class:`~melagbm.lesion.LesionFeatures`; families "lesion size", "lesion shape",
        "lesion colour"). Measured rows are kept in the store like embeddings. "auto": on
        whenever there are images (they raised cross-validated AUC on HAM10000, and with
        patient context on the ISIC 2020 subset; see the user guide).
    patient_col : str, "auto" or None, default="auto"
        Column of patient ids. Never a feature; adds patient context (family "patient
        context": images per patient and each lesion's z-score and rank among the
        patient's lesions, see :func:`~melagbm.patient.patient_context`), and groups
        the internal splits when neither ``group_col`` nor ``groups`` is given. At predict
        time the context comes from the patient's lesions present in the same call.
        "auto": the column ``"patient_id"`` (ISIC's name) when X has one, else none
        (``patient_col_`` tells which). None: no patient context.
    pixel_spacing_mm : float, default=None
        Millimetres per pixel, for ``lesion_size__diameter_mm``.
    image_features : {"probe", "pca", "embedding", "probe+pca"}, default="probe"
        How the embedding enters the booster (see :class:`~melagbm.image_signal.ImageSignal`).
    image_signal : {"joint", "per_backbone"}, default="joint"
        With several backbones: "joint" turns their concatenated embeddings into one set of
        image features (family "image"); "per_backbone" gives each backbone its own
        (columns ``image_<backbone>__score``..., family ``"image: <backbone>"``), so the
        explanations show what each backbone contributes.
    n_components : int, default=32
        Principal components in the "pca" modes.
    probe_C : float or "auto", default="auto"
        Inverse regularisation of the image probe; "auto" is 2 / embedding width.
    booster : "lightgbm", "xgboost" or estimator, default="lightgbm"
        The gradient-boosting model. An ``LGBMClassifier``/``XGBClassifier`` instance
        is cloned, and its parameters are reachable as ``booster__<name>``.
    booster_params : dict, default=None
        Extra parameters for the booster (override melagbm's defaults).
    class_weight : None, "balanced" or dict, default=None
        "balanced" re-weights rows inversely to class frequency; a dict maps class
        label to weight.
    early_stopping : bool or "auto", default="auto"
        Stop boosting when the validation log-loss stalls, then refit on all rows with
        that many rounds. "auto": on when each class has at least 10 rows (groups).
    validation_fraction : float, default=0.15
        Share of groups held out for early stopping.
    n_iter_no_change : int, default=100
        Rounds without improvement before stopping.
    calibration : {"sigmoid", "isotonic"} or None, default="sigmoid"
        Two classes: map the booster's margin to a probability with a calibrator fitted
        on out-of-fold margins of a grouped, stratified internal cross-validation, so
        ``predict_proba`` is a real probability (and any ``class_weight`` is undone).
        "sigmoid" (Platt) keeps the ranking; "isotonic" is more flexible but ties
        scores. None: the booster's own probability, corrected for ``class_weight``.
    target_sensitivity : float or None, default=0.9
        Two classes: ``predict`` refers (predicts the positive class) at the highest
        probability threshold that reached this sensitivity on the out-of-fold
        predictions (``threshold_``). None: threshold 0.5.
    calibration_folds : int, default=5
        Folds of the internal cross-validation behind ``calibration`` and ``threshold_``.
    device : {"auto", "cpu", "cuda"}, default="auto"
        Where embedding and (XGBoost) boosting run.
    cache : "auto", None, path or EmbeddingStore, default="auto"
        Embedding store; see :class:`~melagbm.ImageEmbedder`.
    on_bad_image : {"raise", "skip"}, default="raise"
        "raise": an unreadable image stops fit or predict with an error naming its row
        and file. "skip" (batch jobs): fit trains without those rows (``skipped_rows_``),
        ``predict_proba`` and ``decision_function`` give NaN for them, each with a
        :class:`~melagbm.embedding.BadImageWarning` listing them; ``predict`` still raises.
    batch_size : int, default=32
        Images per forward pass.
    random_state : int, RandomState or None, default=None
    n_jobs : int or None, default=None
        Booster threads. None: one thread below 10,000 rows, else the booster's default.
    verbose : int, default=1
        1: progress bars for embedding and lesion measuring (shown once a step lasts
        2 s) and a one-line summary at the end of fit; 0: silent.

    Attributes
    ----------
    classes_ : ndarray
        Class labels.
    embedders_ : list of ImageEmbedder
        One per backbone; empty without images.
    image_signal_ : ImageSignal, list of ImageSignal (``image_signal="per_backbone"``) or None
    metadata_encoder_ : MetadataEncoder
    booster_ : LGBMClassifier or XGBClassifier
        Fitted on all rows.
    n_estimators_ : int
        Boosting rounds in ``booster_`` (after early stopping).
    calibration_ : Calibration or None
        Margin -> probability map for two classes (None: the booster's probability).
    threshold_ : float
        Two classes: ``predict`` gives the positive class where its probability is at
        least this (0.5 without ``target_sensitivity`` or when too few groups).
    lesion_features_ : LesionFeatures or None
        The lesion measurer (None when the model has no lesion features).
    patient_col_ : str or None
        The patient column behind the patient context (None: no context).
    n_groups_ : int or None
        Patients/lesions the internal splits kept whole (None: split by row).
    oof_roc_auc_ : float or None
        ROC AUC of the internal out-of-fold predictions behind ``calibration_`` and
        ``threshold_`` (None when there were none). Optimistic next to a held-out test.
    skipped_rows_ : list
        Row labels fit left out because their image was unreadable (``on_bad_image="skip"``).
    threshold_log_odds_ : float or None
        The same threshold on the log-odds scale, from which ``decision_function`` is
        measured; None when no threshold was chosen.
    feature_names_ : list of str
        Columns the booster sees, in order.
    feature_families_ : dict
        Booster column -> family ("image", "age", "sex", "site", "metadata", "lesion size",
        "lesion shape", "lesion colour", "patient context").
    family_to_columns_ : dict
        Family -> list of booster columns.
    device_ : str
    n_features_in_ : int
    feature_names_in_ : ndarray

    See Also
    --------
    ImageEmbedder, MetadataEncoder

    Examples
    --------
    >>> from melagbm import FusionClassifier
    >>> from melagbm.datasets import make_synthetic
    >>> X, y, groups = make_synthetic(n_samples=120, random_state=0)
    >>> clf = FusionClassifier(cache=None, random_state=0, verbose=0).fit(X, y, groups=groups)
    >>> clf.predict_proba(X.head(3)).shape
    (3, 2)
    >>> sorted(clf.family_to_columns_)
    ['age', 'image', 'lesion colour', 'lesion shape', 'lesion size', 'sex', 'site']
    >>> clf.explain(X.head(3), grouped=True).feature_names
    ['image', 'lesion size', 'lesion shape', 'lesion colour', 'age', 'sex', 'site']
    """

    def __init__(
        self,
        *,
        image_col: str | None = "image",
        group_col: str | None = None,
        metadata_cols: str | list[str] = "auto",
        backbone: str | tuple[str, ...] = ("tf_efficientnet_lite0", "tf_efficientnet_lite2"),
        checkpoint_path: str | os.PathLike | None = None,
        layers: int = 4,
        tta: str = "none",
        preprocessing: dict[str, Any] | None = None,
        lesion_features: bool | str = "auto",
        patient_col: str | None = "auto",
        pixel_spacing_mm: float | None = None,
        image_features: str = "probe",
        image_signal: str = "joint",
        n_components: int = 32,
        probe_C: float | str = "auto",
        booster: Any = "lightgbm",
        booster_params: dict[str, Any] | None = None,
        class_weight: str | dict | None = None,
        early_stopping: bool | str = "auto",
        validation_fraction: float = 0.15,
        n_iter_no_change: int = 100,
        calibration: str | None = "sigmoid",
        target_sensitivity: float | None = 0.9,
        calibration_folds: int = 5,
        device: str = "auto",
        cache: Any = "auto",
        on_bad_image: str = "raise",
        batch_size: int = 32,
        random_state: Any = None,
        n_jobs: int | None = None,
        verbose: int = 1,
    ) -> None:
        self.image_col = image_col
        self.group_col = group_col
        self.metadata_cols = metadata_cols
        self.backbone = backbone
        self.checkpoint_path = checkpoint_path
        self.layers = layers
        self.tta = tta
        self.preprocessing = preprocessing
        self.lesion_features = lesion_features
        self.patient_col = patient_col
        self.pixel_spacing_mm = pixel_spacing_mm
        self.image_features = image_features
        self.image_signal = image_signal
        self.n_components = n_components
        self.probe_C = probe_C
        self.booster = booster
        self.booster_params = booster_params
        self.class_weight = class_weight
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.calibration = calibration
        self.target_sensitivity = target_sensitivity
        self.calibration_folds = calibration_folds
        self.device = device
        self.cache = cache
        self.on_bad_image = on_bad_image
        self.batch_size = batch_size
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose

    # -- input handling --------------------------------------------------------------
    def _check_X(self, X: Any, *, reset: bool) -> pd.DataFrame:
        if isinstance(X, pd.DataFrame):
            validate_data(self, X, reset=reset, skip_check_array=True)
            frame = X
        elif self.image_col is not None:
            raise TypeError(
                f"X must be a pandas DataFrame with an image column {self.image_col!r} "
                f"(or set image_col=None for metadata only), got {type(X).__name__}"
            )
        else:
            array = validate_data(self, X, reset=reset, ensure_all_finite="allow-nan", dtype="numeric")
            frame = pd.DataFrame(array, columns=[f"x{i}" for i in range(array.shape[1])])
        if len(frame) == 0:
            raise ValueError("X has no rows")
        patient_col = self.patient_col if reset else self.patient_col_
        for column in (self.image_col, self.group_col, None if patient_col == "auto" else patient_col):
            if column is not None and column not in frame.columns:
                raise ValueError(f"X has no column {column!r}; columns are {list(frame.columns)}")
        return frame

    def _metadata_frame(self, X: pd.DataFrame) -> pd.DataFrame:
        excluded = {self.image_col, self.group_col, self.patient_col_, *ID_COLUMNS}  # ids are never features
        if isinstance(self.metadata_cols, str) and self.metadata_cols in ("auto", "known"):
            columns = [c for c in X.columns if c not in excluded]
        else:
            columns = list(self.metadata_cols)
            missing = [c for c in columns if c not in X.columns]
            if missing:
                raise ValueError(f"metadata_cols {missing} are not columns of X")
            ids = [c for c in columns if c in {self.image_col, self.group_col, self.patient_col_}]
            if ids:
                raise ValueError(f"metadata_cols names {ids}: the image, group and patient columns are never features")
        return X[columns]

    def _metadata_features(self, X: pd.DataFrame) -> pd.DataFrame:
        return self.metadata_encoder_.transform(self._metadata_frame(X)).reset_index(drop=True)

    def _metadata_inputs(self, X: pd.DataFrame) -> pd.DataFrame:
        """The columns of X that the metadata encoder turns into features."""
        frame = self._metadata_frame(X)
        if self.metadata_cols == "known":
            return frame[[c for c in frame.columns if c in AGE_COLUMNS + SEX_COLUMNS + SITE_COLUMNS]]
        return frame

    def _check_no_label_leak(self, X: pd.DataFrame, y: np.ndarray) -> None:
        """Refuse metadata columns that give the label away, unless the user named them in metadata_cols."""
        named = [] if isinstance(self.metadata_cols, str) else list(self.metadata_cols)
        check_label_leakage(self._metadata_inputs(X), y, allowed=named)

    def _group_column(self, X: pd.DataFrame) -> str | None:
        """The column fit groups by without ``groups``: group_col, else the patient column, else an id column."""
        return next((c for c in (self.group_col, self.patient_col_, *ID_COLUMNS) if c is not None and c in X.columns),
                    None)

    def _groups(self, X: pd.DataFrame, groups: Any) -> np.ndarray | None:
        if groups is None:
            column = self._group_column(X)
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

    # -- fitting ---------------------------------------------------------------------
    def fit(self, X: Any, y: Any, groups: Any = None) -> FusionClassifier:
        """Embed the images, encode the metadata and fit the booster.

        Parameters
        ----------
        X : DataFrame
            One row per image: ``image_col`` plus metadata columns.
        y : array-like of shape (n_samples,)
            Labels (1 = melanoma).
        groups : array-like, default=None
            Patient or lesion ids, so the internal splits never put one patient on
            both sides. Overrides ``group_col``.
        """
        if y is None:
            raise ValueError("requires y to be passed, but the target y is None")
        frame = self._check_X(X, reset=True)
        y = column_or_1d(y, warn=True)
        if len(y) != len(frame):
            raise ValueError(f"y has {len(y)} labels but X has {len(frame)} rows")
        check_classification_targets(y)
        self.patient_col_ = self._resolve_patient_col(frame)
        self.classes_, y_codes = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(
                f"y holds one class only ({self.classes_[0]}); fitting needs at least two"
            )
        self._check_fit_params()
        self.lesion_features_ = self._make_lesion_features()
        if isinstance(X, pd.DataFrame):  # named columns (a plain array's have no names to judge)
            self._check_no_label_leak(frame, y_codes)
        group_ids = self._groups(frame, groups)
        rng = check_random_state(self.random_state)
        seed = int(rng.randint(SEED_MAX))
        self.device_ = resolve_device(self.device)

        features = []
        self.embedders_, self.image_signal_, self.skipped_rows_ = [], None, []
        if self.image_col is not None:
            self.embedders_ = self._make_embedders(self.device_)
            _warn_duplicate_images(frame[self.image_col], group_ids)
            embeddings = self._embed(frame)
            bad = np.isnan(embeddings).any(axis=1)
            if bad.any():  # on_bad_image="skip": train without the rows whose image is unreadable
                self._skip_unreadable(frame.index, bad, y_codes)
                frame, y, y_codes, embeddings = frame[~bad], y[~bad], y_codes[~bad], embeddings[~bad]
                group_ids = None if group_ids is None else group_ids[~bad]
            features.append(self._fit_image_signal(embeddings, y_codes, group_ids, seed))
        self.metadata_encoder_ = MetadataEncoder(
            other_cols="none" if self.metadata_cols == "known" else "auto"
        ).fit(self._metadata_frame(frame))
        features.append(self._metadata_features(frame))
        if self.lesion_features_ is not None:
            features.append(self.lesion_features_.transform(frame[self.image_col]).reset_index(drop=True))
        table = self._with_context(pd.concat(features, axis=1), frame)
        self._set_feature_names(list(table.columns))
        weights = self._sample_weight(y)
        n_jobs = self.n_jobs
        if n_jobs is None and len(table) < _SMALL_TABLE:
            n_jobs = 1
        estimator = make_booster(
            self.booster, params=self.booster_params, device=self.device_, random_state=seed,
            n_jobs=n_jobs,
        )
        self.booster_, self.n_estimators_ = fit_booster(
            estimator, table, y_codes, sample_weight=weights,
            validation=self._validation_split(y_codes, group_ids, seed),
            n_iter_no_change=int(self.n_iter_no_change),
        )
        self.calibration_, self.threshold_, self.threshold_log_odds_, self.oof_roc_auc_ = None, 0.5, None, None
        if len(self.classes_) == 2:
            self._fit_decision(estimator, table, y_codes, weights, group_ids, seed)
        self.n_groups_ = None if group_ids is None else int(len(np.unique(group_ids)))
        self._report_fit(y_codes)
        return self

    def _report_fit(self, y_codes: np.ndarray) -> None:
        """The one-line summary of a fit (``verbose`` > 0)."""
        if not self.verbose:
            return
        from tqdm.auto import tqdm

        positives = f", {int((y_codes == 1).sum())} melanomas" if len(self.classes_) == 2 else ""
        groups = f"{self.n_groups_} groups" if self.n_groups_ is not None else "no groups (rows split freely)"
        context = f"patient context from {self.patient_col_!r}" if self.patient_col_ else "no patient context"
        skipped = f" ({len(self.skipped_rows_)} unreadable skipped)" if self.skipped_rows_ else ""
        auc = "" if self.oof_roc_auc_ is None else f", internal out-of-fold AUC {self.oof_roc_auc_:.3f}"
        tqdm.write(
            f"{type(self).__name__} fitted on {len(y_codes)} rows{skipped}{positives}, {groups}, {context}; "
            f"{len(self.feature_names_)} features, {self.n_estimators_} rounds, threshold {self.threshold_:.3g}{auc}"
        )

    def _skip_unreadable(self, rows: pd.Index, bad: np.ndarray, y_codes: np.ndarray) -> None:
        """Record the training rows left out for an unreadable image (``skipped_rows_``) and warn; raise when
        none is left, or only one class."""
        if bad.all():
            raise ImageReadError(f"none of the {len(bad)} images in column {self.image_col!r} could be read")
        self.skipped_rows_ = list(rows[bad])
        if bad.any():
            warn(
                f"fit skipped {int(bad.sum())} row(s) whose image could not be read: "
                f"{self.skipped_rows_[:10]}{' ...' if bad.sum() > 10 else ''} (see skipped_rows_)",
                BadImageWarning,
            )
        if len(np.unique(y_codes[~bad])) < 2:
            raise ValueError("after skipping unreadable images, y holds one class only")

    def _make_embedders(self, device: str) -> list[ImageEmbedder]:
        """One fitted embedder per backbone."""
        backbones = [self.backbone] if isinstance(self.backbone, str) else list(self.backbone)
        if not backbones or len(set(backbones)) < len(backbones) or (
            self.checkpoint_path is not None and len(backbones) > 1
        ):
            raise ValueError(
                f"backbone must name one or more distinct encoders (checkpoint_path needs exactly one), "
                f"got {self.backbone!r}"
            )
        return [
            ImageEmbedder(
                backbone=name, checkpoint_path=self.checkpoint_path, layers=self.layers, tta=self.tta,
                preprocessing=self.preprocessing, batch_size=self.batch_size, device=device,
                cache=self.cache, on_bad_image=self.on_bad_image, verbose=self.verbose,
            ).fit()
            for name in backbones
        ]

    def _fit_image_signal(
        self, embeddings: np.ndarray, y_codes: np.ndarray, groups: np.ndarray | None, seed: int
    ) -> pd.DataFrame:
        """Fit ``image_signal_`` on the training embeddings; their out-of-fold image features."""
        signals, parts = [], []
        for prefix, block in self._image_blocks(embeddings, per_backbone=self.image_signal == "per_backbone"):
            signals.append(ImageSignal(mode=self.image_features, n_components=self.n_components,
                                       probe_C=self.probe_C, random_state=seed, prefix=prefix))
            parts.append(signals[-1].fit_transform(block, y_codes, groups))
        self.image_signal_ = signals[0] if self.image_signal == "joint" else signals
        return pd.concat(parts, axis=1)

    def _set_feature_names(self, names: list[str]) -> None:
        """``feature_names_`` and the family of each: ``feature_families_``, ``family_to_columns_``."""
        families = {**self.metadata_encoder_.feature_families_,
                    **(self.lesion_features_.feature_families_ if self.lesion_features_ is not None else {})}
        self.feature_names_ = names
        self.feature_families_ = {name: families.get(name, _image_family(name)) for name in names}
        self.family_to_columns_: dict[str, list[str]] = {}
        for name, family in self.feature_families_.items():
            self.family_to_columns_.setdefault(family, []).append(name)

    def _sample_weight(self, y: np.ndarray) -> np.ndarray | None:
        if self.class_weight is None:
            return None
        return compute_sample_weight(self.class_weight, y)

    def _image_blocks(self, embeddings: np.ndarray, *, per_backbone: bool) -> list[tuple[str, np.ndarray]]:
        """(column prefix, embedding columns) per image signal: one joint block or one per backbone."""
        if not per_backbone:
            return [("image", embeddings)]
        edges = np.cumsum([0] + [embedder.n_features_out_ for embedder in self.embedders_])
        return [(f"image_{embedder.backbone}", embeddings[:, start:stop])
                for embedder, start, stop in zip(self.embedders_, edges[:-1], edges[1:])]

    def _resolve_patient_col(self, frame: pd.DataFrame) -> str | None:
        if self.patient_col == "auto":
            return PATIENT_ID_COLUMN if PATIENT_ID_COLUMN in frame.columns else None
        return self.patient_col

    def _uses_lesion_features(self) -> bool:
        if self.lesion_features not in (True, False, "auto"):
            raise ValueError(f"lesion_features must be True, False or 'auto', got {self.lesion_features!r}")
        if self.lesion_features is True and self.image_col is None:
            raise ValueError("lesion_features=True needs images: set image_col")
        return self.image_col is not None and self.lesion_features in (True, "auto")

    def _make_lesion_features(self) -> LesionFeatures | None:
        """The lesion measurer (its fit checks ``pixel_spacing_mm`` and reads no image), or None without one."""
        if not self._uses_lesion_features():
            return None
        return LesionFeatures(pixel_spacing_mm=self.pixel_spacing_mm, cache=self.cache, verbose=self.verbose).fit()

    def _check_fit_params(self) -> None:
        """Check every parameter fit reads, before any image is read."""
        self._check_decision_params()
        self._check_boosting_params()
        if self.image_col is not None:
            self._check_image_params()
        check_on_bad_image(self.on_bad_image)
        columns = self.metadata_cols
        if isinstance(columns, str):
            valid = columns in ("auto", "known")
        else:
            valid = hasattr(columns, "__iter__") and all(isinstance(c, str) for c in columns)
        if not valid:
            raise ValueError(f"metadata_cols must be 'auto', 'known' or a list of column names, got {columns!r}")

    def _check_image_params(self) -> None:
        if self.image_signal not in ("joint", "per_backbone"):
            raise ValueError(f"image_signal must be 'joint' or 'per_backbone', got {self.image_signal!r}")
        if self.image_features not in IMAGE_FEATURE_MODES:
            raise ValueError(f"image_features must be one of {IMAGE_FEATURE_MODES}, got {self.image_features!r}")
        if not _is_count(self.n_components):
            raise ValueError(f"n_components must be a positive integer, got {self.n_components!r}")
        if self.probe_C != "auto" and not (_is_number(self.probe_C) and self.probe_C > 0):
            raise ValueError(f"probe_C must be 'auto' or a positive number, got {self.probe_C!r}")
        if not _is_count(self.batch_size):
            raise ValueError(f"batch_size must be a positive integer, got {self.batch_size!r}")

    def _check_boosting_params(self) -> None:
        adapter_for(self.booster)  # a known name or an instance of a known library
        if self.booster_params is not None and not isinstance(self.booster_params, dict):
            raise ValueError(f"booster_params must be a dict or None, got {self.booster_params!r}")
        if not (self.class_weight is None or self.class_weight == "balanced" or isinstance(self.class_weight, dict)):
            raise ValueError(f"class_weight must be None, 'balanced' or a dict, got {self.class_weight!r}")
        if self.early_stopping not in (True, False, "auto"):
            raise ValueError(f"early_stopping must be True, False or 'auto', got {self.early_stopping!r}")
        if not (_is_number(self.validation_fraction) and 0.0 < self.validation_fraction < 1.0):
            raise ValueError(f"validation_fraction must be in (0, 1), got {self.validation_fraction!r}")
        if not (_is_count(self.n_iter_no_change) or self.n_iter_no_change == 0):
            raise ValueError(f"n_iter_no_change must be an integer >= 0, got {self.n_iter_no_change!r}")

    def _check_decision_params(self) -> None:
        if self.calibration is not None and self.calibration not in CALIBRATION_METHODS:
            raise ValueError(f"calibration must be one of {CALIBRATION_METHODS} or None, got {self.calibration!r}")
        target = self.target_sensitivity
        if target is not None and not (isinstance(target, (int, float)) and 0.0 < target < 1.0):
            raise ValueError(f"target_sensitivity must be in (0, 1) or None, got {target!r}")
        if not isinstance(self.calibration_folds, (int, np.integer)) or self.calibration_folds < 2:
            raise ValueError(f"calibration_folds must be an integer >= 2, got {self.calibration_folds!r}")

    def _fit_decision(
        self, estimator: Any, table: pd.DataFrame, y: np.ndarray, weights: np.ndarray | None,
        groups: np.ndarray | None, seed: int,
    ) -> None:
        """Calibrate on out-of-fold margins and choose ``threshold_`` for ``target_sensitivity``."""
        splits = self._decision_splits(y, weights, groups, seed)
        if splits is None:
            return
        margin = np.zeros(len(y))
        fixed_rounds = clone(estimator).set_params(n_estimators=self.n_estimators_)
        for train, test in splits:
            fold_model, _ = fit_booster(
                clone(fixed_rounds), table.iloc[train], y[train],
                sample_weight=None if weights is None else weights[train], validation=None, n_iter_no_change=0,
            )
            margin[test] = booster_margin(fold_model, table.iloc[test])
        self._decide(margin, y)

    def _decision_splits(
        self, y: np.ndarray, weights: np.ndarray | None, groups: np.ndarray | None, seed: int
    ) -> list[tuple[np.ndarray, np.ndarray]] | None:
        """The folds for the out-of-fold margins, or None when there is nothing to calibrate or choose."""
        if weights is not None:
            self.calibration_ = class_weight_shift(weights, y)
        if self.calibration is None and self.target_sensitivity is None:
            return None
        try:
            return list(stratified_group_splits(y, groups, int(self.calibration_folds), seed))
        except ValueError as exc:
            warn(
                f"No out-of-fold calibration or threshold ({exc}); predict_proba is the booster's "
                "probability and predict uses 0.5.",
                UserWarning,
            )
            return None

    def _decide(self, margin: np.ndarray, y: np.ndarray) -> None:
        """Fit the calibration and ``threshold_`` on out-of-fold booster margins of the training rows."""
        self.oof_roc_auc_ = float(roc_auc_score(y, margin)) if len(np.unique(y)) == 2 else None
        if self.calibration is not None:
            self.calibration_ = fit_calibration(self.calibration, margin, y)
        if self.target_sensitivity is not None:
            oof = self._positive_probability(margin)
            self.threshold_ = threshold_for_sensitivity(y, oof, float(self.target_sensitivity))
            self.threshold_log_odds_ = float(logit(self.threshold_))

    def _validation_split(
        self, y: np.ndarray, groups: np.ndarray | None, seed: int
    ) -> tuple[np.ndarray, np.ndarray] | None:
        if self.early_stopping is False:
            return None
        units = y if groups is None else np.asarray([y[groups == g][0] for g in np.unique(groups)])
        if self.early_stopping == "auto" and np.bincount(units).min() < 10:
            return None
        n_splits = max(2, round(1.0 / float(self.validation_fraction)))
        train, val = next(iter(stratified_group_splits(y, groups, n_splits, seed)))
        return train, val

    def _embed(self, frame: pd.DataFrame) -> np.ndarray:
        images = frame[self.image_col]
        for embedder in self.embedders_:  # set_params(on_bad_image=...) after fit reaches the embedders
            embedder.on_bad_image = self.on_bad_image
        return np.hstack([embedder.transform(images) for embedder in self.embedders_])

    # -- predicting ------------------------------------------------------------------
    def _features(self, X: Any) -> tuple[pd.DataFrame, np.ndarray]:
        """(the booster's table, a mask of rows whose image could not be read)."""
        check_is_fitted(self, "booster_")
        table, bad = self._feature_table(self._check_X(X, reset=False))
        return table[self.feature_names_], bad

    def _feature_table(
        self, frame: pd.DataFrame, image_parts: pd.DataFrame | None = None, *, drop_unreadable: bool = False
    ) -> tuple[pd.DataFrame, np.ndarray]:
        """The booster's columns for ``frame`` (fitted encoders), and the mask of unreadable images.

        ``image_parts``: image features to use instead of scoring the embeddings (the
        out-of-fold scores of training rows; NaN marks an unreadable image).
        ``drop_unreadable``: leave those rows out, before the patient context is computed.
        """
        parts = []
        bad = np.zeros(len(frame), dtype=bool)
        if self.embedders_ and image_parts is not None:
            bad = image_parts.isna().any(axis=1).to_numpy()
            parts.append(image_parts.reset_index(drop=True))
        elif self.embedders_:
            embeddings = self._embed(frame)
            bad = np.isnan(embeddings).any(axis=1)
            per_backbone = isinstance(self.image_signal_, list)  # fitted state (set_params may change the parameter)
            signals = self.image_signal_ if per_backbone else [self.image_signal_]
            blocks = self._image_blocks(np.where(bad[:, None], 0.0, embeddings), per_backbone=per_backbone)
            for signal, (_, block) in zip(signals, blocks):
                image_part = signal.transform(block)
                image_part.loc[bad, :] = np.nan  # never a made-up image score
                parts.append(image_part)
        parts.append(self._metadata_features(frame))
        if self.lesion_features_ is not None:
            lesion = pd.DataFrame(np.nan, index=range(len(frame)), columns=list(LESION_FEATURES))
            good = np.flatnonzero(~bad)
            if len(good):
                measured = self.lesion_features_.transform(frame[self.image_col].iloc[good])
                lesion.iloc[good] = measured.to_numpy()
            parts.append(lesion)
        table = pd.concat(parts, axis=1)
        if drop_unreadable and bad.any():
            table, frame = table[~bad].reset_index(drop=True), frame[~bad]
        return self._with_context(table, frame), bad

    def _with_context(self, table: pd.DataFrame, frame: pd.DataFrame) -> pd.DataFrame:
        """``table`` plus the patient-context columns when ``patient_col`` is set."""
        if self.patient_col_ is None:
            return table
        patients = frame[self.patient_col_]
        if patients.isna().any():
            raise ValueError(
                f"column {self.patient_col_!r} (patient ids, for the patient context) is missing at rows "
                f"{list(patients.index[patients.isna()][:10])}; fill it, or set patient_col=None"
            )
        per_backbone = self.image_signal_ if isinstance(self.image_signal_, list) else []
        columns = CONTEXT_COLUMNS + tuple(f"{signal.prefix}__score" for signal in per_backbone)
        return pd.concat([table, patient_context(table, patients.to_numpy(), columns)], axis=1)

    def transform_features(self, X: Any) -> pd.DataFrame:
        """The table the booster sees for ``X`` (columns ``feature_names_``)."""
        features, _ = self._features(X)
        features.index = X.index if isinstance(X, pd.DataFrame) else features.index
        return features

    def _calibrated_log_odds(self, margin: np.ndarray) -> np.ndarray:
        """Log-odds of the calibrated melanoma probability, from the booster's margin."""
        if self.calibration_ is None:
            return margin
        if self.calibration_.method == "isotonic":
            return logit(self.calibration_(margin))
        return self.calibration_.slope * margin + self.calibration_.intercept

    def _positive_probability(self, margin: np.ndarray) -> np.ndarray:
        """The (calibrated) melanoma probability for two classes, from the booster's margin."""
        return sigmoid(margin) if self.calibration_ is None else self.calibration_(margin)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, columns in the order of ``classes_`` (calibrated for two classes).

        Rows whose image was skipped as unreadable (``on_bad_image="skip"``) are NaN.
        """
        check_is_fitted(self, "booster_")
        features, bad = self._features(X)
        if len(self.classes_) != 2:
            proba = self.booster_.predict_proba(features)
        else:
            positive = self._positive_probability(booster_margin(self.booster_, features))
            proba = np.column_stack([1.0 - positive, positive])
        proba[bad] = np.nan
        return proba

    def decision_function(self, X: Any) -> np.ndarray:
        """Two classes: the calibrated log-odds measured from the threshold's, positive exactly where
        the probability reaches ``threshold_`` (where ``predict`` refers); raw margins for more classes.

        NaN for rows whose image was skipped as unreadable.
        """
        check_is_fitted(self, "booster_")
        features, bad = self._features(X)
        margin = booster_margin(self.booster_, features).astype(float)
        if len(self.classes_) == 2:
            positive = self._positive_probability(margin)
            if self.threshold_log_odds_ is None:  # no chosen threshold: argmax of predict_proba
                refer, origin = positive > 0.5, 0.0
            else:
                refer, origin = positive >= self.threshold_, self.threshold_log_odds_
            shifted = self._calibrated_log_odds(margin) - origin  # the sign follows the probability exactly:
            margin = np.where(refer, np.maximum(shifted, np.finfo(float).tiny), np.minimum(shifted, 0.0))
        margin[bad] = np.nan
        return margin

    def predict(self, X: Any) -> np.ndarray:
        """Two classes: the positive class where its probability reaches ``threshold_``; else the most probable.

        Raises ImageReadError for rows whose image is unreadable, even with
        ``on_bad_image="skip"`` (use ``predict_proba``, which gives them NaN).
        """
        check_is_fitted(self, "booster_")
        score = self.decision_function(X) if len(self.classes_) == 2 else self.predict_proba(X)
        missing = np.isnan(score).reshape(len(score), -1).any(axis=1)
        if missing.any():
            rows = list(X.index[missing][:10]) if isinstance(X, pd.DataFrame) else list(np.flatnonzero(missing)[:10])
            raise ImageReadError(
                f"cannot predict rows {rows}: their image is unreadable; predict_proba gives them NaN"
            )
        if len(self.classes_) == 2:
            return self.classes_[(score > 0).astype(int)]
        return self.classes_[np.argmax(score, axis=1)]

    def explain(self, X: Any, *, grouped: bool = False) -> Any:
        """Exact SHAP values of the booster's margin (log-odds) for each row of ``X``.

        Returns a ``shap.Explanation``: one column per booster feature, or with
        ``grouped=True`` one per feature family (image, lesion size, lesion shape,
        lesion colour, age, sex, site, patient context, ...), each the sum of its
        features' signed values. Per row, values plus ``base_values`` equal the
        booster's raw margin; calibration, a monotone map applied after, is not part
        of it. Categorical ``data`` holds category codes (labels in ``display_data``).
        Rows whose image was skipped as unreadable get NaN values.
        """
        from .explain import group_explanation, make_explanation, tree_contributions

        check_is_fitted(self, "booster_")
        features, bad = self._features(X)
        if isinstance(X, pd.DataFrame):
            features.index = X.index
        values, base_values = tree_contributions(self.booster_, features)
        values[bad], base_values[bad] = np.nan, np.nan
        explanation = make_explanation(values, base_values, features)
        return group_explanation(explanation, self.feature_families_) if grouped else explanation

    def groups_of(self, X: pd.DataFrame) -> np.ndarray | None:
        """The patient/lesion ids of ``X``'s rows: ``X[group_col]``, else ``X[patient_col_]``, else
        ``X["patient_id"]`` or ``X["lesion_id"]``, else None."""
        check_is_fitted(self, "booster_")
        column = self._group_column(X)
        return None if column is None else X[column].to_numpy()

    def feature_importance(
        self,
        X: Any,
        groups: Any = None,
        *,
        n_bootstrap: int = 1000,
        confidence: float = 0.95,
        random_state: int | None = 0,
    ) -> pd.DataFrame:
        """Mean |SHAP| per feature family over ``X``, most important first, with a bootstrap interval.

        The interval resamples whole patients/lesions: ``groups``, else ``X[group_col]``,
        else ``X[patient_col_]``, else single rows. Columns ``mean_abs_shap`` (log-odds),
        ``ci_low``, ``ci_high`` and ``share`` of the total. Explain held-out rows, not the
        training rows, for the importance the model shows on new patients.
        """
        from .explain import family_importance

        grouped = self.explain(X, grouped=True)
        if groups is None and isinstance(X, pd.DataFrame):
            groups = self.groups_of(X)
        return family_importance(
            grouped, groups, n_bootstrap=n_bootstrap, confidence=confidence, random_state=random_state
        )

    def save(self, path: str | os.PathLike) -> Any:
        """Write the fitted model to one file that :func:`melagbm.load` reads without pickle.

        The file holds JSON, numeric arrays and the booster's own model format, with
        checksums; backbones are referenced by name and weights hash, not stored.
        Returns the path.
        """
        from .persistence import save

        return save(self, path)

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        if "booster_" in state and "patient_col_" not in state:  # pickled by melagbm 0.1
            self.patient_col_ = None if state.get("patient_col") in (None, "auto") else state["patient_col"]

    def __sklearn_tags__(self):  # type: ignore[no-untyped-def]
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.string = self.image_col is not None
        tags.non_deterministic = False
        return tags


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _is_count(value: Any) -> bool:
    """A positive integer."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 1


def _image_family(name: str) -> str:
    """The family of a column that is neither metadata nor a lesion measurement."""
    if name.startswith("patient__"):
        return "patient context"
    prefix = name.split("__", 1)[0]
    return "image" if prefix == "image" else f"image: {prefix[len('image_'):]}"


def _warn_duplicate_images(images: pd.Series, groups: np.ndarray | None) -> None:
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
