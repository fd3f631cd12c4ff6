"""melagbm: melanoma detection that fuses dermoscopic images with patient metadata."""

from __future__ import annotations

import logging
from pathlib import Path

from .backbones import ENCODERS, BackboneUnavailableError, load_backbone
from .classifier import FusionClassifier
from .embedding import ImageEmbedder
from .exceptions import LabelLeakError, MelagbmError, MelagbmWarning
from .images import ImageReadError
from .metadata import MetadataEncoder
from .persistence import ModelFileError, load
from .store import EmbeddingStore

__version__ = (Path(__file__).with_name("VERSION.txt")).read_text().strip()

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "ENCODERS",
    "BackboneUnavailableError",
    "EmbeddingStore",
    "FusionClassifier",
    "ImageEmbedder",
    "ImageReadError",
    "LabelLeakError",
    "MelagbmError",
    "MelagbmWarning",
    "MetadataEncoder",
    "ModelFileError",
    "load",
    "load_backbone",
    "__version__",
]
