"""Stage 2, the booster's features: image score, lesion measurements, metadata and patient context.

Each step names the family of every column it makes (``feature_families_``); ``FeatureTable``
(``melagbm.features.table``) puts them side by side, after ``InputGate`` (``melagbm.features.inputs``)
fixed the roles of X's columns.
"""

from .image_features import IMAGE_SIGNALS, ImageFeatures
from .image_score import IMAGE_FEATURE_MODES, ImageSignal
from .lesion import LESION_FEATURES, LesionFeatures
from .metadata import MetadataEncoder
from .patient import CONTEXT_COLUMNS, PatientContext, patient_context

__all__ = ["CONTEXT_COLUMNS", "IMAGE_FEATURE_MODES", "IMAGE_SIGNALS", "LESION_FEATURES", "ImageFeatures",
           "ImageSignal", "LesionFeatures", "MetadataEncoder", "PatientContext", "patient_context"]
