"""FusionClassifier: dermoscopic images + patient metadata -> gradient boosting, as one pipeline of named steps."""

from __future__ import annotations

import os
from functools import partial
from time import perf_counter
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d

from ._device import resolve_device
from ._splits import SEED_MAX
from ._warnings import warn
from .backbones.registry import DEFAULT_BACKBONES, restricts_commercial_use
from .boosting import BoostingStep, n_rounds
from .boosting import margin as booster_margin
from .card.assembly import dataset_names, encoder_leaks, member_rounds, model_card
from .decision import Calibration, OperatingPoint
from .embedding.embedder import ImageEmbedder
from .exceptions import DuplicateImageWarning, MelagbmDeprecationWarning, UngroupedFitWarning
from .features.image_score import ImageSignal
from .features.inputs import (
    ID_COLUMNS,
    LESION_ID_COLUMN,
    PATIENT_ID_COLUMN,
    InputGate,
    InputSchema,
)
from .features.metadata import UNKNOWN
from .features.table import FeatureTable
from .images.reading import ImageReadError
from .legacy_state import state_of_0_1
from .lone_lesions import CONTEXT_FAMILY, NOT_AVAILABLE, LoneLesionModel, lone_rows
from .pipeline import DecisionHead, FeatureStep, Rows, StepOptions, run_steps
from .pipeline.making import (
    DEPRECATED,
    RENAMED_PARAMETERS,
    feature_steps_to_fit,
    fitted_input_gate,
    fitted_steps,
    keep_fitted_steps,
    make_steps,
)
from .referral import ReferralEstimate

__all__ = ["FITTED_ATTRIBUTES", "ID_COLUMNS", "LESION_ID_COLUMN", "PATIENT_ID_COLUMN", "FusionClassifier",
           "DuplicateImageWarning", "UngroupedFitWarning"]

#: The fitted state of a FusionClassifier (what a model file keeps); every other fitted attribute derives from it.
FITTED_ATTRIBUTES = (
    "classes_", "n_features_in_", "feature_names_in_", "device_", "patient_col_", "image_features_",
    "skipped_rows_", "metadata_encoder_", "lesion_features_", "patient_context_", "feature_names_",
    "feature_families_", "booster_", "operating_point_", "n_groups_", "lesion_col_", "lesion_pooling_",
    "model_card_", "lone_lesion_model_", "fit_seconds_",
)


class _Rows(NamedTuple):
    """Rows of X ready to score: the booster's table and what scoring it needs."""

    table: pd.DataFrame
    unreadable: np.ndarray  # the image could not be read
    lesions: np.ndarray | None  # lesion ids, when the model pools a lesion's images
    alone: np.ndarray  # lesions alone, scored by the lone-lesion model


class FusionClassifier(ClassifierMixin, BaseEstimator):
    """Melanoma classifier fusing a frozen CNN's view of the image with metadata.

    Each image is embedded by a pretrained timm backbone (see
    :class:`~melagbm.ImageEmbedder`); the embedding becomes booster features as set
    by ``image_encoding``; age, sex, anatomical site and any other metadata columns
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
    diagnosis_col : str or None, default=None
        Column of diagnoses (HAM10000's ``dx``, ISIC 2020's ``diagnosis``; the loaders give it as
        ``diagnosis`` with ``diagnosis=True``): the image probe then learns every diagnosis, and the booster
        gets the melanoma score (``image__score``) and each other diagnosis's (``image__diagnosis_<name>``),
        all family "image". A training target only: never a feature, not needed (and ignored) to predict.
        Needs images and a probe (``image_encoding`` "probe" or "probe+pca"), and two classes whose
        label each diagnosis decides.
    metadata_cols : "auto", "known" or list of str, default="auto"
        "auto": every column but ``image_col``, ``group_col``, the patient column and
        any ``patient_id`` or ``lesion_id``. "known": only the recognised age, sex and
        site columns. A list names them. Under "auto" and "known", a column that gives
        the label away (``diagnosis``, ``benign_malignant``, ``dx``, ``target``, ...,
        or any that alone separates the classes with ROC AUC >= 0.98) is refused with
        a :class:`~melagbm.leakage.LabelLeakError` naming it; name it in a list to use it anyway.
    backbone : str or tuple of str, default=DEFAULT_BACKBONES
        Image encoder(s); packaged ones work offline (``melagbm.ENCODERS``). With
        several, their embeddings are concatenated. A name may end in ``@<size>``: the encoder fed
        that many pixels a side, no margin cropped. The default, three views of two packaged
        encoders (Lite0 at 224 and 384 px, Lite2 at 320 px), scored 0.912 on HAM10000 against
        0.906 for Lite0 + Lite2 at timm's sizes (``benchmarks/quality.py --only default,pair``).
    checkpoint_path : path, default=None
        Local weights for the backbone (a single backbone only).
    layers : int or "auto", default="auto"
        Feature levels pooled from the backbone (1: head output only). "auto": 4 for a backbone
        with feature stages (the packaged CNNs, timm ViTs), 1 for an open_clip image tower.
    tta : {"none", "flip", "flip4", "rot4", "d8"}, default="none"
        Test-time augmentation of the embedding (see :class:`~melagbm.ImageEmbedder`).
    preprocessing : dict, default=None
        Overrides of the backbones' preprocessing; see :class:`~melagbm.ImageEmbedder`.
    lesion_features : bool or "auto", default="auto"
        Segment each lesion and add its size, shape and colour
        (:class:`~melagbm.features.lesion.LesionFeatures`; families "lesion size", "lesion shape",
        "lesion colour"). Measured rows are kept in the store like embeddings. "auto": on
        whenever there are images (they raised cross-validated AUC on HAM10000, and with
        patient context on the ISIC 2020 subset; see the user guide).
    patient_col : str, "auto" or None, default="auto"
        Column of patient ids. Never a feature; adds patient context (family "patient
        context": images per patient, each lesion's z-score and rank among the patient's
        lesions, and for image scores also among the patient's lesions at the same site and
        the difference from the patient's mean; the count of ``|z| > 2``; see
        :func:`~melagbm.features.patient.patient_context`), and groups
        the internal splits when neither ``group_col`` nor ``groups`` is given. At predict
        time the context comes from the patient's lesions present in the same call.
        "auto": the column ``"patient_id"`` (ISIC's name) when X has one, else none
        (``patient_col_`` tells which). None: no patient context.
    lone_lesion_model : bool, default=True
        With patient context and two classes, also fit a model without it (the same rows, splits and
        boosters, its own calibration and threshold: ``lone_lesion_model_``) and score with it every
        lesion whose patient has no other lesion in the call (the clinic page, most service calls): a
        lesion alone has no patient context, a case the context model hardly saw in training. Its
        explanation gives the patient context nothing (``lone_lesions`` tells which rows); the card
        states how it scores (``model_card_["lone_lesions"]``). False: a lesion alone gets the
        context of a patient with one lesion.
    lesion_col : str, "auto" or None, default="auto"
        Column of lesion ids, for lesions imaged more than once. Never a feature; pools each
        lesion's images into one reading (two classes, with images): every image of a lesion
        gets the mean of their booster margins, out of fold at fit (so calibration and
        threshold see lesions as predict does) and among the lesion's images present in the
        same call at predict; see :mod:`melagbm.pooling`. Also groups the internal splits when
        nothing above names the groups. "auto": the column ``"lesion_id"`` (HAM10000's name)
        when X has one, else none (``lesion_col_`` tells which). None: each image scored alone.
    pixel_spacing_mm : float, default=None
        Millimetres per pixel, for ``lesion_size__diameter_mm``.
    image_encoding : {"probe", "pca", "embedding", "probe+pca"}, default="probe"
        How the embedding becomes the booster's image columns (see
        :class:`~melagbm.features.image_score.ImageSignal`). Named ``image_features`` before: that name
        still works for this release, with a DeprecationWarning.
    backbone_signals : {"joint", "per_backbone"}, default="joint"
        With several backbones: "joint" turns their concatenated embeddings into one set of
        image columns (family "image"); "per_backbone" gives each backbone its own
        (columns ``image_<backbone>__score``..., family ``"image: <backbone>"``), so the
        explanations show what each backbone contributes. Named ``image_signal`` before (still accepted
        for this release, with a MelagbmDeprecationWarning).
    n_components : int, default=32
        Principal components in the "pca" modes.
    probe_C : float, "auto" or "cv", default="auto"
        Inverse regularisation of the image probe; "auto" is 2 / embedding width (the optimum
        measured on HAM10000 for the packaged encoders); "cv" picks among 0.25-4 times that by
        grouped out-of-fold log-loss (for other encoders; 5 times the probe fits).
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
        that many rounds. "auto": on when each class is in at least 10 rows (groups holding it).
    validation_fraction : float, default=0.15
        Share of groups held out for early stopping.
    n_iter_no_change : int, default=100
        Rounds without improvement before stopping.
    n_seeds : int, default=5
        Boosters averaged, so that a model rests less on one draw of its internal splits: each is
        fitted on its own out-of-fold image scores (the probe's fold partitions averaged, more on
        small data: 10,000 // rows, 1 to 20; see ``ImageSignal(n_repeats="auto")``) and stopped
        early on its own validation split (disjoint groups); ``booster_`` is their
        :class:`~melagbm.boosting.BoosterAverage`, its SHAP values the mean of theirs. 1: one
        booster, one split, one partition (the behaviour of 0.1.0). On a 700-lesion HAM10000 sample
        five boosters narrowed the test ROC AUC over ``random_state`` 0-5 from a spread of 0.039
        to 0.013 (``benchmarks/stability.py``).
    calibration : {"sigmoid", "isotonic"} or None, default="sigmoid"
        Two classes: map the booster's margin to a probability with a calibrator fitted
        on out-of-fold margins of a grouped, stratified internal cross-validation, so
        ``predict_proba`` is a real probability (and any ``class_weight`` is undone).
        "sigmoid" (Platt) keeps the ranking; "isotonic" is more flexible but ties
        scores. None: the booster's own probability, corrected for ``class_weight``.
    target_sensitivity : float or None, default=0.9
        Two classes: ``predict`` refers (predicts the positive class) at the probability
        threshold (``threshold_``) chosen on the out-of-fold predictions to keep this sensitivity
        on new patients with ``sensitivity_confidence``. None: threshold 0.5.
    sensitivity_confidence : float or None, default=0.95
        The confidence that the threshold keeps ``target_sensitivity`` on new patients: the highest
        threshold whose exact binomial lower confidence bound on sensitivity reaches the target,
        each patient (lesion) with a melanoma counted once (:func:`melagbm.referral.confident_threshold`).
        With few melanomas it refers more: ``referral_estimate_`` says what it costs in specificity.
        None: the highest threshold that reached the target out of fold (melagbm 0.1's rule, which
        promised more than new patients got).
    calibration_folds : int, default=5
        Folds of the internal cross-validation behind ``calibration`` and ``threshold_``.
    device : {"auto", "cpu", "cuda"}, default="auto"
        Where embedding and (XGBoost) boosting run.
    runtime : {"auto", "torch", "openvino"}, default="auto"
        What runs the image encoders; see :class:`~melagbm.ImageEmbedder` ("auto": OpenVINO on the CPU).
    cache : "auto", None, path or EmbeddingStore, default="auto"
        Embedding store; see :class:`~melagbm.ImageEmbedder`.
    on_bad_image : {"raise", "skip"}, default="raise"
        "raise": an unreadable image stops fit or predict with an error naming its row
        and file. "skip" (batch jobs): fit trains without those rows (``skipped_rows_``),
        ``predict_proba`` and ``decision_function`` give NaN for them, each with a
        :class:`~melagbm.embedding.BadImageWarning` listing them; ``predict`` still raises.
    batch_size : int, default=32
        Images per forward pass.
    random_state : int, RandomState or None, default=0
        Seed of every internal split (probe folds, early stopping, calibration). The default
        0 makes the same data give the same model on every run; None draws a new seed each fit.
    n_jobs : int or None, default=None
        Booster threads. None: one thread below 10,000 rows, else the booster's default.
    verbose : int, default=1
        1: progress bars for embedding and lesion measuring (shown once a step lasts
        2 s) and a one-line summary at the end of fit; 2: also a line with each stage's seconds
        (``fit_seconds_``); 0: silent.
    image_features : str, default="deprecated"
        Deprecated name of ``image_encoding`` (set: used, with a warning); goes in the next release.
    image_signal : str, default="deprecated"
        Deprecated name of ``backbone_signals`` (set: used, with a warning); goes in the next release.

    Attributes
    ----------
    classes_ : ndarray
        Class labels.
    image_features_ : ImageFeatures or None
        The image step: embedders and image signal(s); None without images.
    embedders_ : list of ImageEmbedder
        One per backbone; empty without images (``image_features_.embedders_``).
    image_signal_ : ImageSignal, list of ImageSignal (``backbone_signals="per_backbone"``) or None
    metadata_encoder_ : MetadataEncoder
    booster_ : LGBMClassifier, XGBClassifier or BoosterAverage
        Fitted on all rows; with ``n_seeds`` > 1 the average of that many (``booster_.members``).
    n_estimators_ : int
        Boosting rounds in ``booster_`` (after early stopping; summed over averaged boosters,
        ``booster_.rounds`` gives each).
    operating_point_ : OperatingPoint
        The decision step: calibration and threshold, fitted out of fold.
    calibration_ : Calibration or None
        Margin -> probability map for two classes (None: the booster's probability).
    threshold_ : float
        Two classes: ``predict`` gives the positive class where its probability is at
        least this (0.5 without ``target_sensitivity`` or when too few groups).
    lesion_features_ : LesionFeatures or None
        The lesion measurer (None when the model has no lesion features).
    patient_col_ : str or None
        The patient column behind the patient context (None: no context).
    patient_context_ : PatientContext or None
        The patient-context step (None: no context).
    lone_lesion_model_ : LoneLesionModel or None
        What scores a lesion whose patient has no other lesion in the call (booster, calibration,
        threshold, fitted without patient context); None without patient context or with
        ``lone_lesion_model=False``.
    lesion_col_ : str or None
        The lesion column (never metadata; behind the lesion pooling when the model pools).
    lesion_pooling_ : LesionPooling or None
        The lesion-pooling step (None: each image scored alone).
    n_groups_ : int or None
        Patients/lesions the internal splits kept whole (None: split by row).
    oof_roc_auc_ : float or None
        ROC AUC of the internal out-of-fold predictions behind ``calibration_`` and
        ``threshold_`` (None when there were none). Optimistic next to a held-out test.
    referral_estimate_ : ReferralEstimate or None
        What ``threshold_``'s rule does on patients that did not choose it: sensitivity, specificity
        and the share of lesions referred, cross-fitted over the internal folds, with 95 % intervals
        (:class:`~melagbm.referral.ReferralEstimate`); the figures the card, the fit log and the
        service give. None without a threshold.
    skipped_rows_ : list
        Row labels fit left out because their image was unreadable (``on_bad_image="skip"``).
    threshold_log_odds_ : float or None
        The same threshold on the log-odds scale, from which ``decision_function`` is
        measured; None when no threshold was chosen.
    feature_names_ : list of str
        Columns the booster sees, in order.
    feature_families_ : dict
        Booster column -> family ("image", "age", "sex", "site", "metadata", "lesion size",
        "lesion shape", "lesion colour", "patient context"), as the step that made it reports it.
        Columns are named ``family__feature`` (``age__years``, ``site__general``, ``image__score``,
        ``lesion_size__diameter_px``, ``patient_context__n_images``, ...).
    family_to_columns_ : dict
        Family -> list of booster columns.
    fit_seconds_ : dict
        Seconds each stage of the last fit took, in the order they ran: the feature steps ("inputs", "embedding",
        "image", "metadata", "lesion", "context"), "leakage check", "boosting", "decision (out of fold)" (and the
        same two for the lone-lesion model), "model card". Empty for models saved before it was recorded.
    model_card_ : dict
        The model card computed at fit (training data, out-of-fold metrics with 95 % CIs, operating point,
        encoders and their licences, limits); saved in the model file. See :mod:`melagbm.card`.
    device_ : str
    n_features_in_ : int
    feature_names_in_ : ndarray

    See Also
    --------
    ImageEmbedder : The image -> embedding step, usable alone.
    MetadataEncoder : The metadata step, usable alone.
    melagbm.dask.DaskFusionClassifier : The same model fitted on a Dask cluster.

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
        diagnosis_col: str | None = None,
        metadata_cols: str | list[str] = "auto",
        backbone: str | tuple[str, ...] = DEFAULT_BACKBONES,
        checkpoint_path: str | os.PathLike | None = None,
        layers: int | str = "auto",
        tta: str = "none",
        preprocessing: dict[str, Any] | None = None,
        lesion_features: bool | str = "auto",
        patient_col: str | None = "auto",
        lone_lesion_model: bool = True,
        lesion_col: str | None = "auto",
        pixel_spacing_mm: float | None = None,
        image_encoding: str = "probe",
        backbone_signals: str = "joint",
        n_components: int = 32,
        probe_C: float | str = "auto",
        booster: Any = "lightgbm",
        booster_params: dict[str, Any] | None = None,
        class_weight: str | dict | None = None,
        early_stopping: bool | str = "auto",
        validation_fraction: float = 0.15,
        n_iter_no_change: int = 100,
        n_seeds: int = 5,
        calibration: str | None = "sigmoid",
        target_sensitivity: float | None = 0.9,
        sensitivity_confidence: float | None = 0.95,
        calibration_folds: int = 5,
        device: str = "auto",
        runtime: str = "auto",
        cache: Any = "auto",
        on_bad_image: str = "raise",
        batch_size: int = 32,
        random_state: Any = 0,
        n_jobs: int | None = None,
        verbose: int = 1,
        image_features: str = DEPRECATED,
        image_signal: str = DEPRECATED,
    ) -> None:
        self.image_col = image_col
        self.group_col = group_col
        self.diagnosis_col = diagnosis_col
        self.metadata_cols = metadata_cols
        self.backbone = backbone
        self.checkpoint_path = checkpoint_path
        self.layers = layers
        self.tta = tta
        self.preprocessing = preprocessing
        self.lesion_features = lesion_features
        self.patient_col = patient_col
        self.lone_lesion_model = lone_lesion_model
        self.lesion_col = lesion_col
        self.pixel_spacing_mm = pixel_spacing_mm
        self.image_encoding = image_encoding
        self.backbone_signals = backbone_signals
        self.n_components = n_components
        self.probe_C = probe_C
        self.booster = booster
        self.booster_params = booster_params
        self.class_weight = class_weight
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.n_seeds = n_seeds
        self.calibration = calibration
        self.target_sensitivity = target_sensitivity
        self.sensitivity_confidence = sensitivity_confidence
        self.calibration_folds = calibration_folds
        self.device = device
        self.runtime = runtime
        self.cache = cache
        self.on_bad_image = on_bad_image
        self.batch_size = batch_size
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.image_features = image_features
        self.image_signal = image_signal

    def make_steps(self) -> dict[str, Any]:
        """Every step fit runs, made (unfitted) from the parameters and checked, before any image is read.

        Returns
        -------
        steps : dict
            Step name -> the unfitted step object (see below).

        Notes
        -----

        Keys, in the order fit runs them: "inputs" (:class:`~melagbm.features.inputs.InputGate`),
        "image" (:class:`~melagbm.features.image_features.ImageFeatures`, None without images),
        "lesion" (:class:`~melagbm.features.lesion.LesionFeatures` or None), "context"
        (:class:`~melagbm.features.patient.PatientContext`, None with ``patient_col=None``; fit drops
        it when "auto" finds no patient column), "boosting" (:class:`~melagbm.boosting.BoostingStep`),
        "pooling" (:class:`~melagbm.pooling.LesionPooling`, None without images or with ``lesion_col=None``;
        fit drops it when "auto" finds no lesion column, and for more than two classes),
        "decision" (:class:`~melagbm.decision.OperatingPoint`).
        """
        return make_steps(self)

    def fit_steps(self) -> dict[str, Any]:
        """Deprecated name of :meth:`make_steps` (it fits nothing); removed in the next release.

        Returns
        -------
        steps : dict
            As :meth:`make_steps`.
        """
        warn("FusionClassifier.fit_steps() is renamed make_steps() (it makes the steps, fitting none); "
             "fit_steps() goes in the next release", MelagbmDeprecationWarning)
        return self.make_steps()

    # -- fitting ---------------------------------------------------------------------
    def fit(self, X: Any, y: Any, groups: Any = None) -> FusionClassifier:
        """Check the input, embed and score the images, encode the metadata, measure the lesions, add the
        patient context, boost, then calibrate and choose the threshold out of fold.

        Parameters
        ----------
        X : DataFrame
            One row per image: ``image_col`` plus metadata columns.
        y : array-like of shape (n_samples,)
            Labels (1 = melanoma).
        groups : array-like, default=None
            Patient or lesion ids, so the internal splits never put one patient on
            both sides. Overrides ``group_col``.

        Returns
        -------
        self : FusionClassifier
            The fitted model.
        """
        if y is None:
            raise ValueError("requires y to be passed, but the target y is None")
        steps = self.make_steps()
        frame = steps["inputs"].frame(X, self, reset=True)
        self.classes_, _, y_codes = encode_labels(y, len(frame))
        seed = int(check_random_state(self.random_state).randint(SEED_MAX))
        self.device_ = resolve_device(self.device)
        boosting: BoostingStep = steps["boosting"]
        options = StepOptions(cache=self.cache, on_bad_image=self.on_bad_image, device=self.device_, seed=seed,
                              n_members=boosting.n_members)
        steps["inputs"].fit(frame.columns)  # the column roles decide which steps run
        feature_steps = feature_steps_to_fit(steps, named_columns=isinstance(X, pd.DataFrame))
        seconds: dict[str, float] = {}
        rows = run_steps(feature_steps, Rows(frame=frame, y=y_codes, groups=groups), options, fitting=True,
                         seconds=seconds)
        keep_fitted_steps(self, steps, feature_steps, rows)
        started = perf_counter()
        leaks = encoder_leaks(self, rows.frame, dataset_names(X))
        seconds["leakage check"] = perf_counter() - started

        head = DecisionHead(boosting, steps["decision"], self.lesion_pooling_, verbose=self.verbose)
        weights = boosting.sample_weight(self.classes_[rows.y])
        fit_head = partial(head.fit, y=rows.y, groups=rows.groups, weights=weights,
                           lesions=None if self.lesion_pooling_ is None else rows.roles.lesions(rows.frame),
                           n_classes=len(self.classes_), device=self.device_, seed=seed, seconds=seconds)
        tables = rows.member_tables(boosting.n_members)
        main = fit_head(tables)
        self.booster_, self.operating_point_ = main.booster, main.operating_point
        self.lone_lesion_model_, lone = None, None
        if self.lone_lesion_model and self.patient_context_ is not None and len(self.classes_) == 2:
            self.lone_lesion_model_ = alone = LoneLesionModel()
            alone.feature_names_ = LoneLesionModel.columns_without_context(self.feature_families_)
            lone = fit_head([table[alone.feature_names_] for table in tables],
                            what=" without patient context (lesions alone)")
            alone.booster_, alone.operating_point_ = lone.booster, lone.operating_point
        self.n_groups_ = None if rows.groups is None else int(len(np.unique(rows.groups)))
        started = perf_counter()
        self.model_card_ = model_card(self, rows.frame, tables[0], rows.y, rows.groups, main.margin,
                                      len(main.splits or []), seed, datasets=dataset_names(X), warnings=leaks,
                                      lone_margin=None if lone is None else lone.margin)
        self.fit_seconds_ = {**seconds, "model card": perf_counter() - started}
        self.report_fit(len(rows.y), int((rows.y == 1).sum()))
        return self

    def report_fit(self, n_rows: int, n_melanomas: int) -> None:
        """Print the one-line summary of a fit (``verbose`` > 0).

        Parameters
        ----------
        n_rows : int
            Rows the model was fitted on (unreadable ones skipped).
        n_melanomas : int
            Positive rows among them.
        """
        if not self.verbose:
            return
        from tqdm.auto import tqdm

        from .card import describe_rounds

        positives = f", {n_melanomas} melanomas" if len(self.classes_) == 2 else ""
        groups = f"{self.n_groups_} groups" if self.n_groups_ is not None else "no groups (rows split freely)"
        context = f"patient context from {self.patient_col_!r}" if self.patient_col_ else "no patient context"
        if self.lesion_pooling_ is not None:
            context += f", lesions pooled by {self.lesion_col_!r}"
        skipped = f" ({len(self.skipped_rows_)} unreadable skipped)" if self.skipped_rows_ else ""
        auc = "" if self.oof_roc_auc_ is None else f", internal out-of-fold AUC {self.oof_roc_auc_:.3f}"
        estimate = self.referral_estimate_
        held = "" if estimate is None else (
            " (on patients that did not choose it: "
            + ", ".join(f"{name} {value:.2f} [{low:.2f}, {high:.2f}]" for name, (value, low, high) in
                        (("sensitivity", estimate.sensitivity), ("specificity", estimate.specificity),
                         ("referred", estimate.referral_rate))) + ")")
        if self.verbose > 1:
            stages = getattr(self, "fit_seconds_", {}).items()
            tqdm.write("fit stages: " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in stages))
        tqdm.write(
            f"{type(self).__name__} fitted on {n_rows} rows{skipped}{positives}, {groups}, {context}; "
            f"{len(self.feature_names_)} features, {describe_rounds(member_rounds(self.booster_))}, "
            f"threshold {self.threshold_:.3g}{held}{auc}"
            f"{license_note(self.weights_licenses_)}"
        )

    # -- fitted state ------------------------------------------------------------------
    def steps_use_cache(self) -> None:
        """Point the fitted steps that read the store (embedders, lesion measurer) at ``cache`` as it is now."""
        for embedder in self.embedders_:
            embedder.cache = self.cache
        if self.image_features_ is not None:  # the options new backbones' embedders would be made with
            self.image_features_.embedder.cache = self.cache
        if getattr(self, "lesion_features_", None) is not None:
            self.lesion_features_.cache = self.cache

    @property
    def feature_steps_(self) -> FeatureTable:
        """Deprecated: the fitted feature steps as one assembler (made anew on each read); use
        :meth:`fitted_feature_steps`, the steps ``predict`` runs. Goes in the next release."""
        warn("feature_steps_ is deprecated: fitted_feature_steps() gives the steps predict runs, in order; "
             "feature_steps_ goes in the next release", MelagbmDeprecationWarning)
        return FeatureTable(inputs=fitted_input_gate(self), metadata=self.metadata_encoder_,
                            image=self.image_features_, lesion=self.lesion_features_, context=self.patient_context_)

    @property
    def embedders_(self) -> list[ImageEmbedder]:
        """One fitted embedder per backbone; empty without images."""
        return [] if self.image_features_ is None else self.image_features_.embedders_

    @property
    def image_signal_(self) -> ImageSignal | list[ImageSignal] | None:
        """The fitted image signal, a list of them (``backbone_signals="per_backbone"``), or None without images."""
        if self.image_features_ is None:
            return None
        signals = self.image_features_.signals_
        return signals if self.image_features_.signal == "per_backbone" else signals[0]

    @property
    def n_estimators_(self) -> int:
        """Boosting rounds in ``booster_`` (after early stopping)."""
        return n_rounds(self.booster_)

    @property
    def calibration_(self) -> Calibration | None:
        """Margin -> probability map for two classes (None: the booster's probability)."""
        return self.operating_point_.calibration_

    @property
    def threshold_(self) -> float:
        """Two classes: ``predict`` refers where the probability reaches this."""
        return self.operating_point_.threshold_

    @property
    def threshold_log_odds_(self) -> float | None:
        """The threshold on the log-odds scale (the origin of ``decision_function``); None when none was chosen."""
        return self.operating_point_.threshold_log_odds_

    @property
    def oof_roc_auc_(self) -> float | None:
        """ROC AUC of the internal out-of-fold margins (None when there were none)."""
        return self.operating_point_.oof_roc_auc_

    @property
    def referral_estimate_(self) -> ReferralEstimate | None:
        """What the referral threshold does on rows that did not choose it (cross-fitted sensitivity, specificity
        and share referred, with 95 % intervals); None without a threshold or out-of-fold predictions."""
        return getattr(self.operating_point_, "estimate_", None)

    @property
    def weights_licenses_(self) -> dict[str, str]:
        """Backbone -> the licence of its weights (empty without images); a model inherits the most restrictive."""
        return {} if self.image_features_ is None else self.image_features_.licenses()

    @property
    def input_schema_(self) -> InputSchema:
        """What this model reads from X: the column of each role and the sex and site values it knows."""
        check_is_fitted(self, "booster_")
        encoder = self.metadata_encoder_
        fields, values, others = {}, {}, []
        for feature, family in encoder.feature_families_.items():
            if family in ("age", "sex", "site"):
                fields[family] = encoder.columns_[feature]
                if feature in encoder.categories_:
                    values[family] = [str(value) for value in encoder.categories_[feature] if value != UNKNOWN]
            else:
                others.append(encoder.columns_[feature])
        return InputSchema(
            image=self.image_col if self.image_features_ is not None else None, patient=self.patient_col_,
            lesion=getattr(self, "lesion_col_", None), fields=fields, values=values, other_metadata=tuple(others),
            columns=tuple(str(column) for column in getattr(self, "feature_names_in_", ())),
        )

    @property
    def family_to_columns_(self) -> dict[str, list[str]]:
        """Family -> its booster columns, in order."""
        families: dict[str, list[str]] = {}
        for name, family in self.feature_families_.items():
            families.setdefault(family, []).append(name)
        return families

    # -- predicting ------------------------------------------------------------------
    def _features(self, X: Any) -> tuple[pd.DataFrame, np.ndarray]:
        """(the booster's table, a mask of rows whose image could not be read)."""
        rows = self._rows(X)
        return rows.table, rows.unreadable

    def _rows(self, X: Any) -> _Rows:
        """The booster's table of ``X`` with what scoring it needs: unreadable images, lesion ids, lesions alone."""
        check_is_fitted(self, "booster_")
        gate = fitted_input_gate(self)
        frame = gate.frame(X, self, reset=False)
        options = StepOptions(cache=self.cache, on_bad_image=self.on_bad_image)
        rows = run_steps(self.fitted_feature_steps(gate), Rows(frame=frame), options, fitting=False)
        lesions = None if getattr(self, "lesion_pooling_", None) is None else gate.lesions(frame)
        return _Rows(rows.table()[self.feature_names_], rows.unreadable, lesions, self._alone(gate, frame))

    def fitted_feature_steps(self, gate: InputGate | None = None) -> list[FeatureStep]:
        """The fitted feature steps in the order ``fit`` ran them; ``predict`` runs their ``transform`` in turn.

        Parameters
        ----------
        gate : InputGate, default=None
            The fitted input gate (None: made from the fitted column roles).

        Returns
        -------
        steps : list
            The "inputs", "embedding" and "image" (with images), "metadata", "lesion" (with lesion features) and
            "context" (with patient context) steps, each with ``fit_transform``, ``transform``,
            ``feature_families_`` and ``runs_on`` (see :mod:`melagbm.pipeline.steps`).
        """
        check_is_fitted(self, "booster_")
        return fitted_steps(self, fitted_input_gate(self) if gate is None else gate)

    def lone_lesions(self, X: Any) -> np.ndarray:
        """Which rows of ``X`` are scored as lesions alone: their patient has no other lesion in ``X``, so they
        have no patient context and ``lone_lesion_model_`` scores them (all False for a model without it).

        Parameters
        ----------
        X : DataFrame
            One row per image, with the columns fit saw.

        Returns
        -------
        alone : ndarray of bool, shape (n_samples,)
            True where the row's patient has one lesion in ``X``.
        """
        check_is_fitted(self, "booster_")
        gate = fitted_input_gate(self)
        return self._alone(gate, gate.frame(X, self, reset=False))

    def _alone(self, gate: InputGate, frame: pd.DataFrame) -> np.ndarray:
        """:meth:`lone_lesions` of the input rows ``frame`` (from ``gate.frame``)."""
        if getattr(self, "lone_lesion_model_", None) is None:
            return np.zeros(len(frame), dtype=bool)
        return lone_rows(gate.patients(frame), None if self.lesion_col_ is None else gate.lesions(frame))

    def _heads(self, rows: _Rows) -> list[tuple[np.ndarray, Any, pd.DataFrame, OperatingPoint]]:
        """(rows scored, booster, their table, operating point) of each head that scores some of ``rows``: the
        model's own for lesions with their patient's others, the lone-lesion model's for lesions alone."""
        heads = [(~rows.alone, self.booster_, rows.table, self.operating_point_)]
        if rows.alone.any():
            lone = self.lone_lesion_model_
            heads.append((rows.alone, lone.booster_, rows.table[lone.feature_names_], lone.operating_point_))
        return [(scored, booster, table[scored], point) for scored, booster, table, point in heads if scored.any()]

    def _pooled(self, values: np.ndarray, rows: _Rows, scored: np.ndarray) -> np.ndarray:
        """Per-image ``values`` of the ``scored`` rows pooled over each lesion's images (when the model pools)."""
        if rows.lesions is None:
            return values
        values = values.copy()
        values[rows.unreadable[scored]] = np.nan  # an unreadable image's placeholder row joins no lesion mean
        return self.lesion_pooling_.pool(values, rows.lesions[scored])

    def _decided(self, rows: _Rows) -> tuple[np.ndarray, np.ndarray]:
        """Two classes: (each row's calibrated melanoma probability, its log-odds from the threshold), each row
        scored by its head; NaN where the image is unreadable."""
        probability, score = np.full(len(rows.table), np.nan), np.full(len(rows.table), np.nan)
        for scored, booster, table, point in self._heads(rows):
            margin = np.nan_to_num(self._pooled(booster_margin(booster, table).astype(float), rows, scored))
            probability[scored], score[scored] = point.probability(margin), point.decision_function(margin)
        probability[rows.unreadable], score[rows.unreadable] = np.nan, np.nan
        return probability, score

    def transform_features(self, X: Any) -> pd.DataFrame:
        """The table the booster sees for ``X`` (columns ``feature_names_``).

        Parameters
        ----------
        X : DataFrame
            One row per image, with the columns fit saw (a numeric array for ``image_col=None``).

        Returns
        -------
        table : DataFrame
            One row per row of ``X`` (same index), columns ``feature_names_``.
        """
        features, _ = self._features(X)
        features.index = X.index if isinstance(X, pd.DataFrame) else features.index
        return features

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, columns in the order of ``classes_`` (calibrated for two classes).

        Rows whose image was skipped as unreadable (``on_bad_image="skip"``) are NaN.

        Parameters
        ----------
        X : DataFrame
            One row per image, with the columns fit saw (a numeric array for ``image_col=None``).

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Column 1 is the melanoma probability for two classes.
        """
        return self._proba(self._rows(X))

    def _proba(self, rows: _Rows) -> np.ndarray:
        """predict_proba from the booster's table (see ``_rows``)."""
        if len(self.classes_) != 2:
            proba = self.booster_.predict_proba(rows.table)
            proba[rows.unreadable] = np.nan
            return proba
        positive, _ = self._decided(rows)
        return np.column_stack([1.0 - positive, positive])

    def decision_function(self, X: Any) -> np.ndarray:
        """Two classes: the calibrated log-odds measured from the threshold's, positive exactly where
        the probability reaches ``threshold_`` (where ``predict`` refers); raw margins for more classes.

        NaN for rows whose image was skipped as unreadable.

        Parameters
        ----------
        X : DataFrame
            One row per image, with the columns fit saw (a numeric array for ``image_col=None``).

        Returns
        -------
        score : ndarray of shape (n_samples,) or (n_samples, n_classes)
            Log-odds from the threshold (two classes), else the booster's margins.
        """
        rows = self._rows(X)
        if len(self.classes_) == 2:
            return self._decided(rows)[1]
        margin = booster_margin(self.booster_, rows.table).astype(float)
        margin[rows.unreadable] = np.nan
        return margin

    def predict(self, X: Any) -> np.ndarray:
        """Two classes: the positive class where its probability reaches ``threshold_``; else the most probable.

        Raises ImageReadError for rows whose image is unreadable, even with
        ``on_bad_image="skip"`` (use ``predict_proba``, which gives them NaN).

        Parameters
        ----------
        X : DataFrame
            One row per image, with the columns fit saw (a numeric array for ``image_col=None``).

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            Predicted classes (values of ``classes_``).
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

    # -- explaining and saving ------------------------------------------------------------
    def explain(self, X: Any, *, grouped: bool = False) -> Any:
        """Exact SHAP values of the booster's margin (log-odds) for each row of ``X``.

        Returns a ``shap.Explanation``: one column per booster feature, or with
        ``grouped=True`` one per feature family (image, lesion size, lesion shape,
        lesion colour, age, sex, site, patient context, ...), each the sum of its
        features' signed values. Per row, values plus ``base_values`` equal the
        booster's raw margin (pooled over the lesion's images in ``X`` when the model
        pools lesions: each image then shows its lesion's mean values; see ``lesion_col``);
        calibration, a monotone map applied after, is not part of it. A lesion alone
        (see :meth:`lone_lesions`) is explained by the lone-lesion model that scores it: its
        patient context columns get 0, NaN ``data`` and the ``display_data`` "not available
        (one lesion)". Categorical
        ``data`` holds category codes (labels in ``display_data``). Rows whose image
        was skipped as unreadable get NaN values.

        Parameters
        ----------
        X : DataFrame
            One row per image, with the columns fit saw (a numeric array for ``image_col=None``).
        grouped : bool, default=False
            One column per feature family instead of per booster feature.

        Returns
        -------
        explanation : shap.Explanation
            ``values`` of shape (n_samples, n_columns) in log-odds.
        """
        return self._explanation(X, self._rows(X), grouped=grouped)

    def predict_proba_explained(self, X: Any, *, grouped: bool = False) -> tuple[np.ndarray, Any]:
        """``predict_proba(X)`` and ``explain(X, grouped=grouped)`` from one pass over the images (each image
        embedded and measured once, where calling both would do it twice without a store).

        Parameters
        ----------
        X : DataFrame
            One row per image, with the columns fit saw (a numeric array for ``image_col=None``).
        grouped : bool, default=False
            One column per feature family instead of per booster feature.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            As ``predict_proba`` gives it.
        explanation : shap.Explanation
            As ``explain`` gives it.
        """
        rows = self._rows(X)
        return self._proba(rows), self._explanation(X, rows, grouped=grouped)

    def _explanation(self, X: Any, rows: _Rows, *, grouped: bool) -> Any:
        """explain from the booster's table (see ``_rows``): each row by the head that scores it; a lesion alone
        gives its patient context columns nothing, their data NaN (not available)."""
        from .explain.contributions import group_explanation, make_explanation, tree_contributions

        features = rows.table.copy()
        if isinstance(X, pd.DataFrame):
            features.index = X.index
        if len(self.classes_) != 2:
            values, base_values = tree_contributions(self.booster_, features)
        else:
            values, base_values = np.zeros(features.shape), np.zeros(len(features))
            for scored, booster, table, _ in self._heads(rows):
                columns = features.columns.get_indexer(table.columns)
                head_values, head_base = tree_contributions(booster, table)
                # the lesion's mean margin is the mean of its images' values (plus the same base)
                values[np.ix_(scored, columns)] = self._pooled(head_values, rows, scored)
                base_values[scored] = head_base
            if rows.alone.any():
                lone_columns = set(self.lone_lesion_model_.feature_names_)
                context = [column for column in features.columns if column not in lone_columns]
                features.loc[rows.alone, context] = np.nan
        values[rows.unreadable], base_values[rows.unreadable] = np.nan, np.nan
        explanation = make_explanation(values, base_values, features)
        if grouped:
            explanation = group_explanation(explanation, self.feature_families_)
        if rows.alone.any():  # shown in its place (shap's waterfall and force plots print display_data)
            families = [name if grouped else self.feature_families_[name] for name in explanation.feature_names]
            context = [position for position, family in enumerate(families) if family == CONTEXT_FAMILY]
            explanation.display_data[np.ix_(rows.alone, context)] = NOT_AVAILABLE
        return explanation

    def groups_of(self, X: pd.DataFrame) -> np.ndarray | None:
        """The patient/lesion ids of ``X``'s rows: ``X[group_col]``, else ``X[patient_col_]``, else
        ``X["patient_id"]`` or ``X["lesion_id"]``, else None.

        Parameters
        ----------
        X : DataFrame
            Rows of the model's input.

        Returns
        -------
        groups : ndarray or None
            One id per row, or None when ``X`` has no id column.
        """
        check_is_fitted(self, "booster_")
        column = fitted_input_gate(self).group_column(X)
        return None if column is None else X[column].to_numpy()

    def feature_importance(
        self, X: Any, groups: Any = None, *, n_bootstrap: int = 1000, confidence: float = 0.95,
        random_state: int | None = 0,
    ) -> pd.DataFrame:
        """Mean |SHAP| per feature family over ``X``, most important first, with a bootstrap interval.

        The interval resamples whole patients/lesions: ``groups``, else ``X[group_col]``,
        else ``X[patient_col_]``, else single rows. Columns ``mean_abs_shap`` (log-odds),
        ``ci_low``, ``ci_high`` and ``share`` of the total. Explain held-out rows, not the
        training rows, for the importance the model shows on new patients.

        Parameters
        ----------
        X : DataFrame
            One row per image, with the columns fit saw (a numeric array for ``image_col=None``).
        groups : array-like, default=None
            Patient or lesion id per row (resampled whole).
        n_bootstrap : int, default=1000
            Bootstrap resamples behind the interval.
        confidence : float, default=0.95
            Coverage of the interval.
        random_state : int or None, default=0
            Seed of the resampling.

        Returns
        -------
        importance : DataFrame
            One row per family: ``mean_abs_shap``, ``ci_low``, ``ci_high``, ``share``.
        """
        from .explain.contributions import family_importance

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

        Parameters
        ----------
        path : str or path-like
            Where to write (atomically; an existing file is replaced).

        Returns
        -------
        path : Path
            The file written.
        """
        from .persistence import save

        return save(self, path)

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = state_of_0_1(state) if "embedders_" in state else state
        for old_name, new_name, default in RENAMED_PARAMETERS:  # saved under the old names: kept as the new
            value = state.get(old_name, DEPRECATED)
            if not (isinstance(value, str) and value == DEPRECATED):
                state = {**state, new_name: value, old_name: DEPRECATED}
            state.setdefault(new_name, default)
            state.setdefault(old_name, DEPRECATED)
        if "booster_" in state and "lone_lesion_model_" not in state:  # fitted before lesions alone had a model
            state = {**state, "lone_lesion_model_": None, "lone_lesion_model": False}
        if "booster_" in state and "fit_seconds_" not in state:  # saved before the stages were timed
            state = {**state, "fit_seconds_": {}}
        point = state.get("operating_point_")
        if point is not None and getattr(point, "sensitivity_confidence", None) is None:
            state = {**state, "sensitivity_confidence": None}  # fitted before the rule had a confidence
        super().__setstate__(state)

    def __sklearn_tags__(self):  # type: ignore[no-untyped-def]
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.string = self.image_col is not None
        tags.non_deterministic = False
        return tags


def license_note(licenses: dict[str, str]) -> str:
    """The fit log's licence clause: every backbone's licence when one is non-commercial or unknown, else ""."""
    restricted = any(restricts_commercial_use(license) for license in licenses.values())
    if not restricted and not any(license.startswith("unknown") for license in licenses.values()):
        return ""
    listed = ", ".join(f"{name}: {license}" for name, license in licenses.items())
    return f"; weights licences {listed}" + (" (NON-COMMERCIAL use only)" if restricted else "")


def encode_labels(y: Any, n_rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(the classes, the labels as a 1-d array, their codes 0..k-1); ValueError unless two or more classes."""
    y = column_or_1d(y, warn=True)
    if len(y) != n_rows:
        raise ValueError(f"y has {len(y)} labels but X has {n_rows} rows")
    check_classification_targets(y)
    classes, y_codes = np.unique(y, return_inverse=True)
    if len(classes) < 2:
        raise ValueError(f"y holds one class only ({classes[0]}); fitting needs at least two")
    return classes, y, y_codes
