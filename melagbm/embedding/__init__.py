"""Stage 2, image -> embedding: a frozen pretrained CNN as a scikit-learn transformer, store first."""

from .embedder import (
    TTA_MODES,
    BadImageWarning,
    ImageEmbedder,
    check_on_bad_image,
    embedding_feature_names,
    encoder_id_of,
)

__all__ = ["TTA_MODES", "BadImageWarning", "ImageEmbedder", "check_on_bad_image", "embedding_feature_names",
           "encoder_id_of"]
