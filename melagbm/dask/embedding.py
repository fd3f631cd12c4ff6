"""Embedding on Dask workers: one task per partition, vectors written to the shared store."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from .._device import resolve_device
from ..embedding.embedder import ImageEmbedder
from ..images.reading import as_image_list, content_hash
from ..store.embedding_store import resolve_store
from ._frames import as_dask_frame, client

__all__ = ["embed", "embed_partition", "on_this_worker"]

_logger = logging.getLogger(__name__)

#: Embedders already loaded in this worker process, so each backbone loads once per worker.
_LOADED: dict[str, ImageEmbedder] = {}


def on_this_worker(embedder: ImageEmbedder) -> ImageEmbedder:
    """``embedder`` with its backbone loaded once per process and its device resolved here (a GPU worker uses it)."""
    key = f"{embedder.encoder_id_} {sorted(embedder.get_params().items())!r}"
    loaded = _LOADED.get(key)
    if loaded is None:
        loaded = _LOADED[key] = embedder
        loaded.device_ = resolve_device(embedder.device)
    return loaded


def embed_partition(part: pd.DataFrame, embedders: list[ImageEmbedder], image_col: str) -> np.ndarray:
    """The partition's embeddings (n, sum of widths; NaN rows for skipped images), stored as they are made."""
    images = part[image_col]
    return np.hstack([on_this_worker(embedder).transform(images) for embedder in embedders])


def _embedded_keys(part: pd.DataFrame, embedder: ImageEmbedder, image_col: str) -> pd.DataFrame:
    """Embed one partition; the store key of each image it embedded (None where unreadable)."""
    vectors = embed_partition(part, [embedder], image_col)
    items, rows = as_image_list(part[image_col])
    keys = [content_hash(item, row) if np.isfinite(vector).all() else None
            for item, row, vector in zip(items, rows, vectors)]
    return pd.DataFrame({"key": pd.Series(keys, index=part.index, dtype=object)})


def embed(
    ddf: Any,
    backbone: str = "tf_efficientnet_lite0",
    *,
    image_col: str = "image",
    cache: Any = "auto",
    **embedder_params: Any,
) -> Any:
    """Embed ``ddf[image_col]`` into the embedding store on the cluster; the store's table as a Dask DataFrame.

    One task per partition (``melagbm-embed-<encoder id>`` in the dashboard's task stream):
    each worker loads the backbone once, uses its GPU when it has one, looks every image up
    in the store first and stores vectors batch by batch. So a rerun, or Dask's retry of a
    partition whose worker died, computes only what is missing: a killed worker loses at
    most the batch in flight. ``cache`` must be a path every worker can write (a shared
    filesystem). Other parameters go to :class:`~melagbm.ImageEmbedder` (``layers``,
    ``tta``, ``batch_size``, ``on_bad_image``, ...).

    Parameters
    ----------
    ddf : Dask or pandas DataFrame
        One row per image.
    backbone : str, default="tf_efficientnet_lite0"
        The encoder (``melagbm.ENCODERS`` or a timm name).
    image_col : str, default="image"
        The column of images (paths, bytes or arrays).
    cache : "auto", path or EmbeddingStore, default="auto"
        The shared store the workers write to (not None).
    **embedder_params
        Further :class:`~melagbm.ImageEmbedder` parameters.

    Returns
    -------
    vectors : dask.dataframe.DataFrame
        ``dask.dataframe.read_parquet`` of the encoder's shards: columns ``key`` (the image's
        content hash, :func:`melagbm.images.content_hash`), ``encoder_id``, ``vector``,
        ``checksum`` and ``created_at``. A key can appear twice until the store is compacted;
        the vectors are equal.

    Raises
    ------
    RuntimeError
        When a vector the workers stored is not in the store as this client sees it
        (``cache`` is not shared).
    """
    import dask.dataframe as dd

    store = resolve_store(cache)
    if store is None:
        raise ValueError("embed writes to the embedding store: give cache a path the workers share, not None")
    ddf = as_dask_frame(ddf, n_partitions=len(client().nthreads()))
    if image_col not in ddf.columns:
        raise ValueError(f"the frame has no column {image_col!r}; columns are {list(ddf.columns)}")
    device = embedder_params.pop("device", "auto")
    embedder = ImageEmbedder(backbone=backbone, cache=str(store.root), device="cpu", **embedder_params).fit()
    embedder.device = device  # resolved on each worker
    meta = pd.DataFrame({"key": pd.Series([], dtype=object)})
    done = ddf.map_partitions(
        _embedded_keys, embedder, image_col, meta=meta, token=f"melagbm-embed-{embedder.encoder_id_}"
    )
    keys = set(done["key"].dropna().compute())
    directory = Path(store.root) / embedder.encoder_id_
    visible = set(pq.read_table(directory, columns=["key"])["key"].to_pylist()) if directory.exists() else set()
    if not keys <= visible:
        raise RuntimeError(
            f"the workers stored {len(keys)} vectors but {len(keys - visible)} are not in {directory} as this "
            f"machine sees it: give cache a path on a filesystem every worker and this client share"
        )
    _logger.info("%d images embedded with %s into %s", len(keys), embedder.encoder_id_, directory)
    return dd.read_parquet(str(directory))
