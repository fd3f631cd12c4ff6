"""The cached per-image featuriser: what the embedder and the lesion measurer share.

Each image's row is looked up in the store by the image's content hash first; only the images not
there are computed, each distinct image once, batch by batch, and every batch is stored as soon as it
is computed (an interruption loses one batch).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from .embedding_store import fill_from_store, positions_by_key, resolve_store

__all__ = ["CachedImageFeaturizer", "PARAMETER"]

#: ``cache=PARAMETER``: the featuriser's own ``cache`` parameter (a call may name another store, or None).
PARAMETER: Any = type("Parameter", (), {"__repr__": lambda self: "PARAMETER"})()


class CachedImageFeaturizer:
    """Mixin for a fitted per-image featuriser whose rows live in the store under ``encoder_id_``.

    A subclass has the parameter ``cache`` and the fitted ``encoder_id_``, and implements
    :meth:`compute_batches` and :meth:`store_identity`.
    """

    def store_identity(self) -> dict[str, Any] | None:
        """What the store records about the encoder beside its id (None: nothing).

        Returns
        -------
        identity : dict or None
            JSON-able description of what makes the rows (model, weights, parameters).
        """
        return None

    def compute_batches(
        self, items: list[Any], rows: list[Any], *, skip: bool = False
    ) -> Iterator[tuple[int, np.ndarray, list[str]]]:
        """Compute the rows of ``items`` (row labels ``rows``, for messages) in batches.

        Parameters
        ----------
        items : list
            The images, each given once.
        rows : list
            Their row labels.
        skip : bool, default=False
            Report an unreadable image in ``errors`` instead of raising (where the featuriser can).

        Yields
        ------
        start : int
            Position of the batch's first image in ``items``.
        values : ndarray of shape (batch size, width)
            The batch's rows.
        errors : list of str
            Per image, why it could not be read ("" when it was).
        """
        raise NotImplementedError

    def cached_rows(
        self, items: list[Any], rows: list[Any], keys: list[str | None], out: np.ndarray, *, cache: Any = PARAMETER,
        **compute_options: Any,
    ) -> dict[int, str]:
        """Fill ``out`` (one row per image) from the store, computing what is missing; the errors by position.

        Parameters
        ----------
        items : list
            The images.
        rows : list
            Their row labels.
        keys : list of str or None
            Each image's content hash (None: not hashed; its row is left as it is).
        out : ndarray of shape (n_images, width)
            Filled in place.
        cache : "auto", None, path or EmbeddingStore, default=PARAMETER
            The store this call reads and writes (``PARAMETER``: the ``cache`` parameter).
        **compute_options
            Passed to :meth:`compute_batches` (``skip``, and the embedder's ``device``).

        Returns
        -------
        errors : dict
            Position -> why the image could not be read, for images whose row stays unfilled.
        """
        store = resolve_store(self.cache if cache is PARAMETER else cache)
        todo = fill_from_store(store, self.encoder_id_, keys, out)
        errors: dict[int, str] = {}
        if not todo:
            return errors
        positions = positions_by_key(keys, todo)  # identical images are computed once
        unique = list(positions)
        order = [positions[key][0] for key in unique]
        for start, values, batch_errors in self.compute_batches([items[i] for i in order], [rows[i] for i in order],
                                                                 **compute_options):
            batch_keys = unique[start : start + len(values)]
            good = [i for i, error in enumerate(batch_errors) if not error]
            if store is not None and good:  # stored batch by batch
                store.put_many(self.encoder_id_, [batch_keys[i] for i in good], values[good],
                               identity=self.store_identity())
            for key, value, error in zip(batch_keys, values, batch_errors):
                for index in positions[key]:
                    if error:
                        errors[index] = error
                    else:
                        out[index] = value
        if store is not None:
            store.maybe_compact(self.encoder_id_)
        return errors
