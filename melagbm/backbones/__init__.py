"""Stage 1, encoders: a registry of named image encoders (source, preprocessing, licence, loader)."""

from .derm_xception import DERM_XCEPTION, TRAINED_ON, derm_xception_path, load_derm_xception
from .registry import ENCODERS, BackboneUnavailableError, EncoderSpec, load_backbone, weights_digest

__all__ = ["DERM_XCEPTION", "ENCODERS", "TRAINED_ON", "BackboneUnavailableError", "EncoderSpec",
           "derm_xception_path", "load_backbone", "load_derm_xception", "weights_digest"]
