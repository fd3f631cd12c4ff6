"""Content-addressed embedding store on local disk: an image is never embedded twice.

One ``.npy`` file per (encoder, image content) pair, under
``<root>/<encoder_id>/<key[:2]>/<key>.npy``. Each file is written to a temporary
name and renamed into place, so a crash never leaves a half-written vector, and
concurrent writers of the same key write identical bytes.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from ._atomic import atomic_write

__all__ = ["EmbeddingStore", "default_store_path", "resolve_store"]


def default_store_path() -> Path:
    """``$MELAGBM_CACHE`` or ``$XDG_CACHE_HOME/melagbm`` (``~/.cache/melagbm``) + ``/embeddings``."""
    root = os.environ.get("MELAGBM_CACHE")
    if root is None:
        root = os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "melagbm")
    return Path(root) / "embeddings"


class EmbeddingStore:
    """Vectors keyed by ``(encoder_id, sha256 of the image)``.

    Parameters
    ----------
    root : path
        Directory of the store; created on first write.
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        self.hits = 0
        self.misses = 0

    def __repr__(self) -> str:
        return f"EmbeddingStore({str(self.root)!r})"

    def _path(self, encoder_id: str, key: str) -> Path:
        return self.root / encoder_id / key[:2] / f"{key}.npy"

    def get_many(self, encoder_id: str, keys: Sequence[str]) -> list[np.ndarray | None]:
        """Stored vectors for ``keys`` (None where absent or unreadable)."""
        found: list[np.ndarray | None] = []
        for key in keys:
            path = self._path(encoder_id, key)
            vector = None
            if path.is_file():
                try:
                    vector = np.load(path, allow_pickle=False)
                except (OSError, ValueError) as exc:
                    warnings.warn(f"Ignoring unreadable embedding {path}: {exc}", stacklevel=2)
            found.append(vector)
            if vector is None:
                self.misses += 1
            else:
                self.hits += 1
        return found

    def put_many(self, encoder_id: str, keys: Iterable[str], vectors: np.ndarray) -> None:
        """Store each row of ``vectors`` under its key, atomically."""
        for key, vector in zip(keys, vectors):
            with atomic_write(self._path(encoder_id, key)) as out:
                np.save(out, np.ascontiguousarray(vector, dtype=np.float32), allow_pickle=False)


def resolve_store(store: None | str | os.PathLike | EmbeddingStore) -> EmbeddingStore | None:
    """Turn the ``cache`` parameter into a store: "auto" -> default path, None -> no store."""
    if store is None or isinstance(store, EmbeddingStore):
        return store
    if isinstance(store, str) and store == "auto":
        return EmbeddingStore(default_store_path())
    if isinstance(store, (str, os.PathLike)):
        return EmbeddingStore(store)
    raise TypeError(f"cache must be 'auto', None, a path or an EmbeddingStore, got {store!r}")
