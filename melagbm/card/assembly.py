"""A fitted model's card assembled from the model itself: its data, out-of-fold performance, operating points,
encoders and warnings (``FusionClassifier`` and its Dask twin call :func:`model_card` at the end of fit)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .._warnings import warn
from ..backbones.registry import restricts_commercial_use, weights_source
from ..boosting import members_of, n_rounds
from ..decision import OperatingPoint
from ..exceptions import EncoderLeakageWarning, WeakModelWarning
from ..leakage import encoder_training_overlap
from . import facts as card_facts
from .facts import build_card

__all__ = ["dataset_names", "encoder_leaks", "member_rounds", "model_card"]


def encoder_leaks(model: Any, frame: pd.DataFrame, datasets: list[str]) -> list[str]:
    """Each encoder of ``model`` whose weights were trained on these training images, said loudly (a warning)
    and returned for the model card."""
    if model.image_features_ is None:
        return []
    reasons = [encoder_training_overlap(embedder.backbone, frame[model.image_col], datasets, embedder.checkpoint_path)
               for embedder in model.embedders_]
    for reason in filter(None, reasons):
        warn(reason, EncoderLeakageWarning)
    return [reason for reason in reasons if reason]


def dataset_names(X: Any) -> list[str]:
    """The dataset names ``X`` carries (``X.attrs["dataset"]``, set by melagbm's loaders; a name or a list)."""
    names = getattr(X, "attrs", {}).get("dataset")
    return [] if names is None else [str(names)] if isinstance(names, str) else [str(name) for name in names]


def model_card(
    model: Any, frame: pd.DataFrame, table: pd.DataFrame, y: np.ndarray, groups: np.ndarray | None,
    margin: np.ndarray | None, folds: int, seed: int, *, datasets: list[str], warnings: list[str],
    lone_margin: np.ndarray | None = None,
) -> dict[str, Any]:
    """The model card of ``model``, just fitted on ``frame`` (its readable rows; ``table``: their booster
    features, the metadata already encoded) and ``y``.

    ``margin``: the out-of-fold margins the operating point was fitted on (None: there were none);
    ``lone_margin``: the lone-lesion model's (None: it has none).
    """
    from .._versions import library_versions

    metadata = table[list(model.metadata_encoder_.feature_families_)]
    ids = {kind: frame[column] for kind, column in (("patients", model.patient_col_), ("lesions", model.lesion_col_))
           if column is not None and column in frame.columns}
    has_images = model.image_features_ is not None and model.image_col in frame.columns
    images = list(frame[model.image_col]) if has_images else None  # (a Dask fit sends paths only)
    data = card_facts.training_data(y, metadata, model.metadata_encoder_.feature_families_, ids=ids,
                                    split_groups=groups, images=images, skipped=len(model.skipped_rows_),
                                    datasets=datasets)

    def facts(point: OperatingPoint, margin: np.ndarray | None) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        performance = None
        if margin is not None:
            performance = card_facts.performance(y, point.probability(margin), None, groups, folds=folds,
                                                 pooled_by_lesion=model.lesion_pooling_ is not None, seed=seed)
        return performance, card_facts.operating_point(
            point.threshold_, target_sensitivity=None if point.chosen_threshold_ is None else model.target_sensitivity,
            sensitivity_confidence=point.sensitivity_confidence, calibration=model.calibration if margin is not None
            else None, estimate=point.estimate_)

    performance, operating_point = facts(model.operating_point_, margin)
    weak = [card_facts.weakness(performance, operating_point, int(np.sum(y == 1)))]
    lone_lesions = None
    if model.lone_lesion_model_ is not None:
        lone_lesions = card_facts.lone_lesions(*facts(model.lone_lesion_model_.operating_point_, lone_margin))
        weak.append(card_facts.weakness(lone_lesions["performance"], lone_lesions["operating_point"],
                                        int(np.sum(y == 1)), scoring="lesions sent alone"))
    for line in filter(None, weak):
        warn(line, WeakModelWarning)
    warnings = [line for line in weak if line] + warnings
    encoders = []
    for embedder in model.embedders_:
        license = getattr(embedder, "license_", None) or "unknown"
        runtime = embedder.encoder_identity_.get("runtime")
        encoders.append({
            "backbone": embedder.backbone, "weights": embedder.weights_digest_,
            "source": weights_source(embedder.backbone, embedder.checkpoint_path), "license": license,
            "non_commercial": restricts_commercial_use(license),
            "runtime": "PyTorch" if runtime is None else f"{runtime['name']} {runtime['version']}",
        })
    families: dict[str, int] = {}
    for family in model.feature_families_.values():
        families[family] = families.get(family, 0) + 1
    booster = model.booster if isinstance(model.booster, str) else type(model.booster).__name__
    versions = library_versions()
    return build_card(
        model={"class": type(model).__name__, "melagbm": versions.get("melagbm"), "booster": booster,
               "rounds": int(model.n_estimators_), "member_rounds": member_rounds(model.booster_),
               "features": len(model.feature_names_), "families": families},
        data=data, performance_facts=performance, operating_point=operating_point, encoders=encoders,
        warnings=warnings, versions=versions, lone_lesions=lone_lesions,
    )


def member_rounds(booster: Any) -> list[int]:
    """The boosting rounds of each booster the model averages (one entry for a single booster)."""
    return [n_rounds(member) for member in members_of(booster)]
