"""melagbm: melanoma detection that fuses dermoscopic images with patient metadata."""

from __future__ import annotations

import logging
from pathlib import Path

from . import _moved
from .backbones.registry import ENCODERS, BackboneUnavailableError, load_backbone
from .classifier import FusionClassifier
from .embedding.embedder import ImageEmbedder
from .exceptions import LabelLeakError, MelagbmError, MelagbmWarning
from .features.metadata import MetadataEncoder
from .images.reading import ImageReadError
from .persistence import ModelFileError, load
from .store.embedding_store import EmbeddingStore

__version__ = (Path(__file__).with_name("VERSION.txt")).read_text().strip()

logging.getLogger(__name__).addHandler(logging.NullHandler())
_moved.install()  # melagbm.lesion, melagbm.plotting, ... still import, with a DeprecationWarning

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
