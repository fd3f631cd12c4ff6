"""One screening request's lesions -> the model's input rows -> what the service answers for each lesion."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import FieldError
from ..images.reading import ImageReadError, read_image

__all__ = ["FieldError", "Screening", "lesion_outline"]

#: The request fields of a lesion beside its image, and the metadata family each one fills.
FIELDS = {"age": "age", "sex": "sex", "site": "site"}


def lesion_outline(image: Any) -> dict[str, Any]:
    """The lesion's outline in the image's pixels: the largest contour of the segmentation mask as a polygon.

    Parameters
    ----------
    image : bytes, path, array or PIL image

    Returns
    -------
    outline : dict
        ``{"width", "height", "polygon": [[x, y], ...]}``; an empty polygon where no lesion was found.
    """
    import cv2

    from ..features.segmentation import segment_lesion

    rgb = np.asarray(read_image(image))
    mask = segment_lesion(rgb).astype(np.uint8)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    polygon: list[list[int]] = []
    if contours:
        largest = max(contours, key=cv2.contourArea)
        polygon = cv2.approxPolyDP(largest, 1.0, True).reshape(-1, 2).astype(int).tolist()
    return {"width": int(rgb.shape[1]), "height": int(rgb.shape[0]), "polygon": polygon}


class Screening:
    """A loaded model answering screening requests, one request at a time (its encoders are not shared
    between threads).

    Parameters
    ----------
    model : FusionClassifier
        A fitted two-class model with images.
    model_file : path
        The file it was loaded from (its SHA-256 prefix is the model id).
    """

    def __init__(self, model: Any, model_file: str | Path) -> None:
        if getattr(model, "image_col", None) is None or len(model.classes_) != 2:
            raise ValueError(f"{model_file}: the service screens images: it needs a two-class model fitted on images")
        self.model = model
        self.model_id = hashlib.sha256(Path(model_file).read_bytes()).hexdigest()[:16]
        card = getattr(model, "model_card_", None) or {}
        self.version = {"model_id": self.model_id, "fitted": card.get("created"),
                        "melagbm": (card.get("model") or {}).get("melagbm")}
        self._lock = threading.Lock()
        columns = model.metadata_encoder_.columns_
        families = model.metadata_encoder_.feature_families_
        self._field_columns = {field: columns[feature] for feature, family in families.items()
                               for field in FIELDS if family == FIELDS[field]}

    def frame(self, lesions: list[dict[str, Any]]) -> pd.DataFrame:
        """The model's input rows for ``lesions`` (each: image bytes, age, sex, site, patient_id)."""
        model = self.model
        rows = []
        for index, lesion in enumerate(lesions):
            row: dict[str, Any] = dict.fromkeys(getattr(model, "feature_names_in_", []), np.nan)
            row[model.image_col] = lesion["image"]
            for field, column in self._field_columns.items():
                row[column] = np.nan if lesion.get(field) is None else lesion[field]
            if model.patient_col_ is not None:  # a lesion without a patient id is its own patient
                row[model.patient_col_] = lesion.get("patient_id") or f"request-lesion-{index}"
            if getattr(model, "lesion_col_", None) is not None:  # each lesion of a request is a lesion of its own
                row[model.lesion_col_] = f"request-lesion-{index}"
            rows.append(row)
        return pd.DataFrame(rows, index=pd.RangeIndex(len(rows), name="lesion"))

    def check_images(self, lesions: list[dict[str, Any]]) -> None:
        """Raise FieldError naming the first lesion whose image cannot be read."""
        for index, lesion in enumerate(lesions):
            try:
                read_image(lesion["image"], row=index)
            except ImageReadError as exc:
                raise FieldError(("lesions", index, "image"), str(exc)) from exc

    def predict(self, lesions: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """For each lesion: probability, referral decision, SHAP contribution by family, outline, model id."""
        self.check_images(lesions)
        frame = self.frame(lesions)
        with self._lock:
            probability = self.model.predict_proba(frame)[:, 1]
            explanation = self.model.explain(frame, grouped=True)
        threshold = float(self.model.threshold_)
        families = list(explanation.feature_names)
        results = []
        for index, lesion in enumerate(lesions):
            results.append({
                "probability": float(probability[index]),
                "refer": bool(probability[index] >= threshold),
                "threshold": threshold,
                "contributions": {family: float(value) for family, value in zip(families, explanation.values[index])},
                "base_value": float(np.ravel(explanation.base_values)[index]),
                "outline": lesion_outline(lesion["image"]),
                **self.version,
            })
        return results
