"""A fit as a loop over named steps: the value they pass (``Rows``), the steps' contract, the decision head."""

from .head import DecisionHead, HeadFit, fold_of_rows, out_of_fold_margins
from .rows import Rows, StepOptions
from .steps import (
    ContextStep,
    EmbeddingStep,
    FeatureStep,
    ImageStep,
    InputStep,
    LesionStep,
    MetadataStep,
    run_steps,
    skip_unreadable,
)

__all__ = ["ContextStep", "DecisionHead", "EmbeddingStep", "FeatureStep", "HeadFit", "ImageStep", "InputStep",
           "LesionStep", "MetadataStep", "Rows", "StepOptions", "fold_of_rows", "out_of_fold_margins", "run_steps",
           "skip_unreadable"]
