"""The steps a FusionClassifier's parameters make, and the fitted attributes its fit keeps from them."""

from __future__ import annotations

from typing import Any

from .._warnings import warn
from ..boosting import BoostingStep
from ..decision import OperatingPoint
from ..embedding.embedder import ImageEmbedder, check_on_bad_image
from ..exceptions import MelagbmDeprecationWarning
from ..features.image_features import ImageFeatures
from ..features.image_score import ImageSignal
from ..features.inputs import InputGate
from ..features.lesion import LesionFeatures
from ..features.patient import CONTEXT_COLUMNS, PatientContext
from ..pooling import LesionPooling
from .rows import Rows
from .steps import ContextStep, EmbeddingStep, FeatureStep, ImageStep, InputStep, LesionStep, MetadataStep

#: A FusionClassifier (or its Dask twin): what these functions read are its parameters and fitted attributes.
Model = Any

__all__ = ["DEPRECATED", "RENAMED_PARAMETERS", "boosting_step", "decision_step", "feature_steps_to_fit",
           "fitted_input_gate", "fitted_steps", "image_step", "input_gate", "keep_fitted_steps", "lesion_step",
           "make_steps", "renamed"]

#: The default of a renamed parameter's old name: "not given".
DEPRECATED = "deprecated"
#: (old name, new name, default) of the parameters renamed in this release.
RENAMED_PARAMETERS = (("image_features", "image_encoding", "probe"), ("image_signal", "backbone_signals", "joint"))


def keep_fitted_steps(model: Model, steps: dict[str, Any], feature_steps: list[FeatureStep],
                      rows: Rows) -> None:
    """Set ``model``'s fitted attributes from the steps its fit ran over ``rows`` (both classifiers' fits)."""
    model.patient_col_, model.lesion_col_ = rows.roles.patient_col_, rows.roles.lesion_col_
    model.image_features_, model.skipped_rows_ = steps["image"], rows.skipped
    model.metadata_encoder_ = next(step.encoder for step in feature_steps if isinstance(step, MetadataStep))
    model.lesion_features_ = steps["lesion"]
    model.patient_context_ = steps["context"] if model.patient_col_ is not None else None
    binary_images = model.image_features_ is not None and len(model.classes_) == 2
    model.lesion_pooling_ = steps["pooling"] if model.lesion_col_ is not None and binary_images else None
    model.feature_families_ = {}
    for step in feature_steps:
        model.feature_families_.update(step.feature_families_)
    model.feature_names_ = list(model.feature_families_)


def feature_steps_to_fit(steps: dict[str, Any], *, named_columns: bool = True) -> list[FeatureStep]:
    """The feature steps a fit runs, in order, around :func:`make_steps`' unfitted steps (their input gate
    fitted on X's columns: the patient context only where there is a patient column)."""
    gate = steps["inputs"]
    order: list[FeatureStep] = [InputStep(gate, named_columns=named_columns)]
    if steps["image"] is not None:
        order += [EmbeddingStep(steps["image"]), ImageStep(steps["image"])]
    order.append(MetadataStep())
    if steps["lesion"] is not None:
        order.append(LesionStep(steps["lesion"]))
    if steps["context"] is not None and gate.patient_col_ is not None:
        order.append(ContextStep(steps["context"]))
    return order


def fitted_steps(model: Model, gate: InputGate) -> list[FeatureStep]:
    """The fitted feature steps of ``model`` in the order its fit ran them (``gate``: its fitted input gate)."""
    steps: list[FeatureStep] = [InputStep(gate)]
    if model.image_features_ is not None:
        steps += [EmbeddingStep(model.image_features_), ImageStep(model.image_features_)]
    steps.append(MetadataStep(model.metadata_encoder_))
    if getattr(model, "lesion_features_", None) is not None:
        steps.append(LesionStep(model.lesion_features_))
    if getattr(model, "patient_context_", None) is not None:
        steps.append(ContextStep(model.patient_context_))
    return steps


def make_steps(model: Model) -> dict[str, Any]:
    """The steps ``model.fit`` runs, made from its parameters and checked (``FusionClassifier.make_steps``)."""
    image = None if model.image_col is None else image_step(model).check_params()
    encoding = renamed(model, "image_features", "image_encoding")
    if model.diagnosis_col is not None and (image is None or "probe" not in encoding):
        raise ValueError("diagnosis_col is the target of the image probe: it needs images (image_col) and "
                         f"image_encoding 'probe' or 'probe+pca', got image_col={model.image_col!r}, "
                         f"image_encoding={encoding!r}")
    steps = {
        "inputs": input_gate(model, model.patient_col, model.lesion_col).check_params(),
        "image": image,
        "lesion": lesion_step(model),
        "context": None if model.patient_col is None else PatientContext(
            columns=CONTEXT_COLUMNS + (() if image is None else image.context_columns())),
        "boosting": boosting_step(model).check_params(),
        "pooling": None if image is None or model.lesion_col is None else LesionPooling(),
        "decision": decision_step(model).check_params(),
    }
    check_on_bad_image(model.on_bad_image)
    return steps


def renamed(model: Model, old: str, new: str) -> Any:
    """The value of parameter ``new``, or of its old name ``old`` when that was set (with a deprecation warning)."""
    value = getattr(model, old, DEPRECATED)
    if isinstance(value, str) and value == DEPRECATED:
        return getattr(model, new)
    warn(f"FusionClassifier's parameter {old!r} is renamed {new!r} (the fitted {old}_ is a step, not this "
         f"setting); {old!r} goes in the next release", MelagbmDeprecationWarning)
    return value


def input_gate(model: Model, patient_col: str | None, lesion_col: str | None) -> InputGate:
    """The input gate for ``model``'s column parameters and a patient and a lesion column."""
    return InputGate(image_col=model.image_col, group_col=model.group_col, patient_col=patient_col,
                     metadata_cols=model.metadata_cols, diagnosis_col=model.diagnosis_col, lesion_col=lesion_col)


def fitted_input_gate(model: Model) -> InputGate:
    """The input gate of a fitted ``model``: its patient and lesion columns already resolved."""
    return input_gate(model, model.patient_col_, getattr(model, "lesion_col_", None)).fit([])


def image_step(model: Model) -> ImageFeatures:
    return ImageFeatures(
        backbones=(model.backbone,) if isinstance(model.backbone, str) else tuple(model.backbone),
        embedder=ImageEmbedder(
            checkpoint_path=model.checkpoint_path, layers=model.layers, tta=model.tta,
            preprocessing=model.preprocessing, batch_size=model.batch_size, runtime=model.runtime, cache=model.cache,
            on_bad_image=model.on_bad_image, verbose=model.verbose,
        ),
        scorer=ImageSignal(mode=renamed(model, "image_features", "image_encoding"),
                           n_components=model.n_components, probe_C=model.probe_C,
                           n_repeats="auto" if model.n_seeds != 1 else 1, verbose=model.verbose),
        signal=renamed(model, "image_signal", "backbone_signals"),
    )


def lesion_step(model: Model) -> LesionFeatures | None:
    """The lesion measurer (its fit checks ``pixel_spacing_mm`` and reads no image), or None without one."""
    if model.lesion_features not in (True, False, "auto"):
        raise ValueError(f"lesion_features must be True, False or 'auto', got {model.lesion_features!r}")
    if model.lesion_features is True and model.image_col is None:
        raise ValueError("lesion_features=True needs images: set image_col")
    if model.image_col is None or model.lesion_features is False:
        return None
    return LesionFeatures(pixel_spacing_mm=model.pixel_spacing_mm, cache=model.cache, verbose=model.verbose).fit()


def boosting_step(model: Model) -> BoostingStep:
    return BoostingStep(
        booster=model.booster, params=model.booster_params, class_weight=model.class_weight,
        early_stopping=model.early_stopping, validation_fraction=model.validation_fraction,
        n_iter_no_change=model.n_iter_no_change, n_jobs=model.n_jobs, n_members=model.n_seeds, verbose=model.verbose,
    )


def decision_step(model: Model) -> OperatingPoint:
    return OperatingPoint(calibration=model.calibration, target_sensitivity=model.target_sensitivity,
                          calibration_folds=model.calibration_folds,
                          sensitivity_confidence=model.sensitivity_confidence)
