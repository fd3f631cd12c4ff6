"""Stage 1, encoders: a registry of named image encoders (source, preprocessing, licence, loader)."""

from .derm_lite0 import DERM_LITE0
from .derm_xception import DERM_XCEPTION, TRAINED_ON, derm_xception_path, load_derm_xception
from .open_clip_tower import KNOWN_LICENSES, load_open_clip_tower
from .registry import (
    DEFAULT_BACKBONES,
    ENCODERS,
    BackboneUnavailableError,
    EncoderSpec,
    load_backbone,
    restricts_commercial_use,
    split_input_size,
    weights_digest,
    weights_license,
    weights_source,
)

__all__ = ["DEFAULT_BACKBONES", "DERM_LITE0", "DERM_XCEPTION", "ENCODERS", "KNOWN_LICENSES", "TRAINED_ON",
           "BackboneUnavailableError", "EncoderSpec", "derm_xception_path", "load_backbone", "load_derm_xception",
           "load_open_clip_tower",
           "restricts_commercial_use", "split_input_size", "weights_digest", "weights_license", "weights_source"]
