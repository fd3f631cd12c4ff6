"""Stage 1, the content-addressed store: what was computed from an image, kept by the image's content hash."""

from .cached import CachedImageFeaturizer
from .embedding_store import (
    SCHEMA,
    CorruptEntryWarning,
    EmbeddingStore,
    default_store_path,
    fill_from_store,
    positions_by_key,
    resolve_store,
    vector_checksum,
)

__all__ = ["SCHEMA", "CachedImageFeaturizer", "CorruptEntryWarning", "EmbeddingStore", "default_store_path",
           "fill_from_store", "positions_by_key", "resolve_store", "vector_checksum"]
