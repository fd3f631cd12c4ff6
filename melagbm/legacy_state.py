"""Model state saved or pickled by melagbm 0.1, brought to today's form when it is loaded."""

from __future__ import annotations

from typing import Any

from .decision import OperatingPoint
from .embedding.embedder import ImageEmbedder
from .features._names import current_name
from .features.image_features import ImageFeatures
from .features.image_score import ImageSignal
from .features.patient import CONTEXT_COLUMNS, PatientContext

__all__ = ["state_of_0_1"]


def state_of_0_1(state: dict[str, Any]) -> dict[str, Any]:
    """A FusionClassifier's state as melagbm 0.1 saved or pickled it (flat attributes, names before
    ``family__feature``), in today's form: the same model, its steps as objects, its columns renamed."""
    state = dict(state)
    if "patient_col_" not in state:  # pickled before patient context existed
        state["patient_col_"] = None if state.get("patient_col") in (None, "auto") else state["patient_col"]
    families = {current_name(name): family for name, family in state["feature_families_"].items()}
    state["feature_families_"] = families
    state["feature_names_"] = [current_name(name) for name in state["feature_names_"]]
    embedders, signal = state.pop("embedders_"), state.pop("image_signal_")
    state["image_features_"] = None
    if embedders:
        signals = signal if isinstance(signal, list) else [signal]
        image = ImageFeatures(
            backbones=tuple(embedder.backbone for embedder in embedders),
            embedder=ImageEmbedder(**{k: v for k, v in embedders[0].get_params().items() if k != "backbone"}),
            scorer=ImageSignal(mode=signals[0].mode, n_components=signals[0].n_components, probe_C=signals[0].probe_C),
            signal="per_backbone" if isinstance(signal, list) else "joint",
        )
        image.embedders_, image.signals_ = embedders, signals
        image.feature_families_ = {n: f for n, f in families.items() if f == "image" or f.startswith("image: ")}
        state["image_features_"] = image
    state["patient_context_"] = None
    if state["patient_col_"] is not None:
        context = PatientContext(columns=CONTEXT_COLUMNS + (image.context_columns() if embedders else ()))
        context.feature_families_ = {n: f for n, f in families.items() if f == "patient context"}
        state["patient_context_"] = context
    decision = OperatingPoint(calibration=state.get("calibration"), target_sensitivity=state.get("target_sensitivity"),
                              calibration_folds=state.get("calibration_folds", 5))
    decision.calibration_ = state.pop("calibration_", None)
    chosen = state.pop("threshold_log_odds_", None) is not None
    threshold = state.pop("threshold_", None)
    decision.chosen_threshold_ = threshold if chosen else None
    decision.oof_roc_auc_ = state.pop("oof_roc_auc_", None)
    decision.sensitivity_confidence, decision.estimate_ = None, None  # the plain rule of 0.1
    state["operating_point_"] = decision
    for derived in ("family_to_columns_", "n_estimators_"):
        state.pop(derived, None)
    booster = state.get("booster_")
    if booster is not None and hasattr(booster, "n_features_in_"):  # a pickled booster, fitted on the old names
        from .boosting import adapter_for

        adapter_for(booster).set_feature_names(booster, state["feature_names_"])
    return state
