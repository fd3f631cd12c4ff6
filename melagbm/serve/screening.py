"""Screening requests' lesions -> the model's input rows -> what the service answers for each lesion."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import FieldError
from ..images.reading import ImageReadError, read_image
from ..lone_lesions import CONTEXT_FAMILY, NOT_AVAILABLE

__all__ = ["FieldError", "Screening", "lesion_outline"]

#: Why a lesion alone has no patient context (``not_available``).
LONE_LESION = f"{NOT_AVAILABLE}: no other lesion of the patient in the request to compare it with"

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
    return outline_of(np.asarray(read_image(image)))


def outline_of(rgb: np.ndarray) -> dict[str, Any]:
    """:func:`lesion_outline` of decoded RGB pixels."""
    import cv2

    from ..features.segmentation import segment_lesion

    mask = segment_lesion(rgb).astype(np.uint8)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    polygon: list[list[int]] = []
    if contours:
        largest = max(contours, key=cv2.contourArea)
        polygon = cv2.approxPolyDP(largest, 1.0, True).reshape(-1, 2).astype(int).tolist()
    return {"width": int(rgb.shape[1]), "height": int(rgb.shape[0]), "polygon": polygon}


def image_pixels(image: bytes, location: tuple, limit: int) -> int:
    """Width x height from the image's header (nothing decoded); FieldError at ``location`` when it is not an
    image or has more than ``limit`` pixels."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(image)) as opened:
            width, height = opened.size
    except Image.DecompressionBombError as exc:  # Pillow's own refusal, far above ``limit``
        raise FieldError(location, f"refused as a decompression bomb: {exc}") from exc
    except UnidentifiedImageError as exc:
        raise FieldError(location, "cannot read the image: not an image file Pillow can open (JPEG, PNG, ...)") \
            from exc
    except Exception as exc:  # Pillow raises many types for a corrupt header (EOFError, KeyError, struct.error)
        raise FieldError(location, f"cannot read the image: {exc or type(exc).__name__}") from exc
    if width * height > limit:
        raise FieldError(location, f"{width} x {height} pixels exceeds the service's limit of {limit} pixels")
    return width * height


class Screening:
    """A loaded model answering batches of screening requests (call it from one thread at a time: its
    encoders are not shared between threads).

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
        self.schema = model.input_schema_
        self._field_columns = {field: self.schema.fields[family] for field, family in FIELDS.items()
                               if family in self.schema.fields}

    def field_values(self) -> dict[str, list[str]]:
        """The values the model knows for each categorical request field (``sex``, ``site``; its unknown
        token left out: an empty field is unknown)."""
        return {field: list(self.schema.values[family]) for field, family in FIELDS.items()
                if family in self.schema.values and field in self._field_columns}

    @staticmethod
    def decode(lesions: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The lesions with each image decoded once to RGB pixels, and its outline (FieldError naming the first
        unreadable image). Runs on the request's own thread, beside the inference thread."""
        decoded = []
        for index, lesion in enumerate(lesions):
            try:
                pixels = np.asarray(read_image(lesion["image"]))
                outline = outline_of(pixels)
            except ImageReadError as exc:
                raise FieldError(("lesions", index, "image"), str(exc)) from exc
            except Exception as exc:  # an image that decodes but cannot be segmented (degenerate shapes)
                raise FieldError(("lesions", index, "image"), f"cannot segment the image: {exc}") from exc
            decoded.append({**lesion, "image": pixels, "outline": outline})
        return decoded

    def frame(self, requests: list[list[dict[str, Any]]]) -> pd.DataFrame:
        """The model's input rows for every lesion of ``requests`` (each lesion: image, age, sex, site,
        patient_id). Patient and lesion ids are scoped to their request: two clients' "patient 1" are two
        patients, and a lesion without a patient id is a patient of its own."""
        rows = []
        for number, lesions in enumerate(requests):
            for index, lesion in enumerate(lesions):
                row: dict[str, Any] = dict.fromkeys(self.schema.columns, np.nan)
                row[self.schema.image] = lesion["image"]
                for field, column in self._field_columns.items():
                    row[column] = np.nan if lesion.get(field) is None else lesion[field]
                own = f"request-{number}-lesion-{index}"
                if self.schema.patient is not None:
                    given = lesion.get("patient_id")
                    row[self.schema.patient] = own if given is None else f"request-{number}-patient-{given}"
                if self.schema.lesion is not None:
                    row[self.schema.lesion] = own
                rows.append(row)
        return pd.DataFrame(rows, index=pd.RangeIndex(len(rows), name="lesion"))

    def read_as(self, lesion: dict[str, Any]) -> dict[str, str]:
        """How the model read each categorical field sent for ``lesion``: the value it used, with what was sent where
        that differs ("torso (sent 'back')"), or why it is unknown ("unknown (not sent)", "unknown (sent 'x': not
        a value this model knows)").

        Parameters
        ----------
        lesion : dict
            One lesion of a request.

        Returns
        -------
        read : dict
            Field -> how it was read (``sex`` and ``site``, where the model uses them).
        """
        from ..features.metadata import UNKNOWN, normalise_sex, normalise_site

        known = self.field_values()
        normalise = {"sex": normalise_sex, "site": normalise_site}
        read = {}
        for field in known:
            sent = lesion.get(field)
            value = str(normalise[field](pd.Series([sent], dtype=object)).iloc[0]) if sent is not None else UNKNOWN
            if sent is None:
                read[field] = "unknown (not sent)"
            elif value == UNKNOWN:
                read[field] = f"unknown (sent {sent!r}: read as missing)"
            elif value not in known[field]:
                read[field] = f"unknown (sent {sent!r}: not a value this model knows)"
            else:
                read[field] = value if str(sent) == value else f"{value} (sent {sent!r})"
        return read

    def predict(self, requests: list[list[dict[str, Any]]]) -> list[list[dict[str, Any]]]:
        """For each lesion of each request (as :meth:`decode` gave it): probability, referral decision, SHAP
        contribution by family, outline and model id. All lesions go through the model as one batch; a lesion
        whose patient has no other lesion in the request is scored alone (``alone``, by the model's lone-lesion
        model, at its threshold; its patient context ``not_available``)."""
        frame = self.frame(requests)
        proba, explanation = self.model.predict_proba_explained(frame, grouped=True)
        alone = self.model.lone_lesions(frame)
        families = list(explanation.feature_names)
        base_values = np.ravel(explanation.base_values)
        answers, row = [], 0
        for lesions in requests:
            results = []
            for lesion in lesions:
                threshold = float(self.model.lone_lesion_model_.threshold_ if alone[row] else self.model.threshold_)
                contributions = {family: float(value) for family, value in zip(families, explanation.values[row])}
                missing = {family: LONE_LESION for family in families if alone[row] and family == CONTEXT_FAMILY}
                results.append({
                    "probability": float(proba[row, 1]),
                    "refer": bool(proba[row, 1] >= threshold),
                    "threshold": threshold,
                    "alone": bool(alone[row]),
                    "contributions": {family: value for family, value in contributions.items()
                                      if family not in missing},
                    "not_available": missing,
                    "base_value": float(base_values[row]),
                    "outline": lesion["outline"],
                    "read_as": self.read_as(lesion),
                    **self.version,
                })
                row += 1
            answers.append(results)
        return answers
