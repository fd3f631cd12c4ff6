"""The service's request and response bodies (pydantic models: the OpenAPI schema is made from them)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["LesionFields", "LesionJSON", "LesionResult", "Outline", "PredictRequest", "PredictResponse"]


class LesionFields(BaseModel):
    """What is known of a lesion beside its image (each optional)."""

    model_config = ConfigDict(extra="forbid")
    age: float | None = Field(None, ge=0, le=120, allow_inf_nan=False, description="the patient's age in years")
    sex: str | None = Field(None, max_length=32, description="male, female, ...")
    site: str | None = Field(None, max_length=64, description="anatomical site (back, face, lower extremity, ...)")
    patient_id: str | None = Field(None, max_length=128,
                                   description="lesions of one request with the same id are one patient's")

    @field_validator("age", "sex", "site", "patient_id", mode="before")
    @classmethod
    def blank_is_unknown(cls, value: Any) -> Any:
        """An empty or blank value is unknown, as in a form field left empty (JSON and multipart alike)."""
        if isinstance(value, str):
            value = value.strip()
            return value or None
        return value


class LesionJSON(LesionFields):
    """A lesion sent as JSON: the image base64-encoded."""

    image: str = Field(description="the image file (JPEG, PNG, ...), base64-encoded")


class PredictRequest(BaseModel):
    """One or several lesions."""

    model_config = ConfigDict(extra="forbid")
    lesions: list[LesionJSON] = Field(min_length=1)


class Outline(BaseModel):
    """The lesion's outline as the segmentation found it, in the image's pixels."""

    width: int
    height: int
    polygon: list[list[int]]


class LesionResult(BaseModel):
    """What the model says of one lesion."""

    probability: float = Field(description="calibrated melanoma probability")
    refer: bool = Field(description="the probability reaches the model's operating threshold")
    threshold: float = Field(description="the operating threshold, chosen to keep the card's sensitivity for new "
                                         "patients")
    alone: bool = Field(False, description="scored as a lesion alone: no other lesion of its patient in the request, "
                                           "so no patient context (a model fitted without it scored the lesion)")
    contributions: dict[str, float] = Field(description="SHAP contribution of each feature family (log-odds)")
    not_available: dict[str, str] = Field(default_factory=dict,
                                          description="feature families the model could not use for this lesion, "
                                                      "and why")
    base_value: float = Field(description="the log-odds the contributions add to")
    outline: Outline
    read_as: dict[str, str] = Field(description="how the model read each categorical field sent: the value it used "
                                                "(with what was sent where that differs), or why it is unknown")
    model_id: str
    fitted: str | None
    melagbm: str | None


class PredictResponse(BaseModel):
    """One result per lesion, in the request's order."""

    lesions: list[LesionResult]
