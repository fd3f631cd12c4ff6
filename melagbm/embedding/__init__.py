"""Stage 2, image -> embedding: a frozen pretrained CNN as a scikit-learn transformer, store first."""

from .embedder import TTA_MODES, BadImageWarning, ImageEmbedder, embedding_feature_names

__all__ = ["TTA_MODES", "BadImageWarning", "ImageEmbedder", "embedding_feature_names"]
