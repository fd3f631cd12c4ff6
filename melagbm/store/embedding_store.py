"""Content-addressed embedding store: a Parquet feature table on local disk.

Layout::

    <root>/<encoder_id>/part-<time_ns>-<random>.parquet   rows: key, encoder_id, vector, checksum, created_at
    <root>/<encoder_id>/_encoder.json                      what the encoder id stands for (backbone, weights, ...)

Every write is a new shard, written under a hidden temporary name, fsynced and renamed
into place (the directory fsynced too), so a process killed mid-write leaves only an
ignored ``.tmp`` file, and concurrent writers never touch each other's files. A shard is
deleted only after its rows are durably in another one (:meth:`EmbeddingStore.compact`),
so no interleaving of writers and compactions loses a vector; a damaged shard is moved
aside as ``.corrupt-<name>``, never deleted. Each row carries the SHA-256 of its vector, and Parquet pages carry CRCs:
a corrupted entry is reported with a warning and treated as missing, so it is recomputed.

The table is plain Parquet: ``pandas.read_parquet(root)``, ``pyarrow.dataset``, DuckDB and
Dask read it directly (they skip the ``.``/``_``-prefixed files). A key may appear in
several shards until the next compaction; readers should keep the newest row per
``(encoder_id, key)``, or read :meth:`EmbeddingStore.export`'s de-duplicated file.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .._atomic import atomic_write
from .._warnings import warn
from ..exceptions import CorruptEntryWarning

__all__ = ["EmbeddingStore", "CorruptEntryWarning", "default_store_path", "fill_from_store", "positions_by_key",
           "resolve_store", "vector_checksum"]

SCHEMA = pa.schema(
    [
        pa.field("key", pa.string(), nullable=False),
        pa.field("encoder_id", pa.string(), nullable=False),
        pa.field("vector", pa.list_(pa.float32()), nullable=False),
        pa.field("checksum", pa.string(), nullable=False),
        pa.field("created_at", pa.timestamp("ms", tz="UTC"), nullable=False),
    ]
)
_ENCODER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_SHARD = re.compile(r"^part-\d{20}-[0-9a-f]{12}\.parquet$")
_ROW_GROUP = 512  # rows per row group: a lookup reads only the groups holding its keys
_STALE_TMP_S = 3600.0  # compact() removes temporary files older than this (a crashed writer's)


def default_store_path() -> Path:
    """``$MELAGBM_CACHE`` or ``$XDG_CACHE_HOME/melagbm`` (``~/.cache/melagbm``) + ``/embeddings``."""
    root = os.environ.get("MELAGBM_CACHE")
    if root is None:
        root = os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "melagbm")
    return Path(root) / "embeddings"


def vector_checksum(vector: np.ndarray) -> str:
    """SHA-256 (hex) of a vector's little-endian float32 bytes."""
    return hashlib.sha256(np.ascontiguousarray(vector, dtype="<f4").tobytes()).hexdigest()


@dataclass
class _Shard:
    """Index of one shard file: its keys in row order and where each row group starts."""

    path: Path
    keys: list[str]
    group_starts: np.ndarray


class EmbeddingStore:
    """Vectors keyed by ``(encoder_id, sha256 of the image)``, kept as a Parquet table.

    Parameters
    ----------
    root : path
        Directory of the store (``~`` is expanded); created on first write.

    Attributes
    ----------
    hits, misses : int
        Look-ups answered and not answered by this object since it was created.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> store = EmbeddingStore(tempfile.mkdtemp())
    >>> store.put_many("demo", ["a" * 64], np.ones((1, 3), dtype=np.float32))
    >>> store.get_many("demo", ["a" * 64, "b" * 64])[1] is None
    True
    >>> store.stats()["entries"]
    1
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root).expanduser()
        self.hits = 0
        self.misses = 0
        self._shards: dict[str, dict[str, _Shard]] = {}
        self._bad_groups: set[tuple[Path, int]] = set()
        self._legacy_checked: set[str] = set()  # encoders whose 0.1 ``.npy`` files were looked for

    def __repr__(self) -> str:
        return f"EmbeddingStore({str(self.root)!r})"

    # -- reading ---------------------------------------------------------------------
    def get_many(self, encoder_id: str, keys: Sequence[str]) -> list[np.ndarray | None]:
        """Stored vectors for ``keys``; None where absent or corrupt (with a warning).

        Parameters
        ----------
        encoder_id : str
            The encoder the vectors belong to.
        keys : sequence of str
            SHA-256 hex digests of the images (see :func:`~melagbm.images.content_hash`).

        Returns
        -------
        vectors : list of ndarray or None
            One float32 vector or None per key, in the order of ``keys``.
        """
        _check_encoder_id(encoder_id)
        for _attempt in range(3):  # a concurrent compaction may delete a shard we indexed
            try:
                found = self._lookup(encoder_id, keys)
                break
            except FileNotFoundError:
                self._shards.pop(encoder_id, None)
        else:  # pragma: no cover - needs three compactions racing one lookup
            found = self._lookup(encoder_id, keys)
        hits = sum(vector is not None for vector in found)
        self.hits += hits
        self.misses += len(found) - hits
        return found

    def _lookup(self, encoder_id: str, keys: Sequence[str]) -> list[np.ndarray | None]:
        shards = self._refresh(encoder_id)
        newest_first = sorted(shards, reverse=True)
        where: dict[str, list[tuple[str, int]]] = {}
        wanted = set(keys)
        for name in newest_first:
            for row, key in enumerate(shards[name].keys):
                if key in wanted:
                    where.setdefault(key, []).append((name, row))
        found: dict[str, np.ndarray] = {}
        pending = {key: iter(places) for key, places in where.items()}
        while pending:  # each round tries every key's next-newest copy
            wanted_rows: dict[str, list[tuple[str, int]]] = {}
            for key, places in list(pending.items()):
                place = next(places, None)
                if place is None:
                    del pending[key]
                else:
                    wanted_rows.setdefault(place[0], []).append((key, place[1]))
            for name, requests in wanted_rows.items():
                for key, vector in self._read_rows(shards[name], requests).items():
                    found[key] = vector
                    pending.pop(key, None)
        return [found.get(key) for key in keys]

    def _read_rows(self, shard: _Shard, requests: list[tuple[str, int]]) -> dict[str, np.ndarray]:
        """Verified vectors for (key, row) requests in one shard; corrupt ones are left out."""
        by_group: dict[int, list[tuple[str, int]]] = {}
        for key, row in requests:
            group = int(np.searchsorted(shard.group_starts, row, side="right")) - 1
            by_group.setdefault(group, []).append((key, row - int(shard.group_starts[group])))
        out: dict[str, np.ndarray] = {}
        try:
            parquet = pq.ParquetFile(shard.path, page_checksum_verification=True)
        except FileNotFoundError:
            raise
        except Exception as exc:  # noqa: BLE001 - any decoding failure means corruption
            self._report(shard.path, None, exc)
            return out
        with parquet:
            for group, rows in by_group.items():
                if (shard.path, group) in self._bad_groups:
                    continue
                try:
                    table = parquet.read_row_group(group, columns=["key", "vector", "checksum"])
                    vectors = _vectors_of(table.column("vector"))
                except FileNotFoundError:
                    raise
                except Exception as exc:  # noqa: BLE001
                    self._bad_groups.add((shard.path, group))
                    self._report(shard.path, group, exc)
                    continue
                stored_keys = table.column("key").to_pylist()
                checksums = table.column("checksum").to_pylist()
                for key, row in rows:
                    vector = vectors[row]
                    if vector is None or stored_keys[row] != key or vector_checksum(vector) != checksums[row]:
                        warn(
                            f"Embedding store {self.root}: entry {key[:12]}... in {shard.path.name} fails its "
                            "checksum; it will be recomputed.",
                            CorruptEntryWarning,
                        )
                        continue
                    out[key] = vector
        return out

    def _report(self, path: Path, group: int | None, exc: BaseException) -> None:
        part = "" if group is None else f" (row group {group})"
        warn(
            f"Embedding store {self.root}: cannot read {path.name}{part}: {exc}; "
            "its entries are treated as missing and will be recomputed.",
            CorruptEntryWarning,
        )

    def _refresh(self, encoder_id: str) -> dict[str, _Shard]:
        """Bring the in-memory index of one encoder's shards up to date with the disk."""
        directory = self.root / encoder_id
        if encoder_id not in self._legacy_checked:  # once per encoder and store object, not per look-up
            _import_legacy_npy(self, directory, encoder_id)
            self._legacy_checked.add(encoder_id)
        names = set(_shard_names(directory))
        known = self._shards.setdefault(encoder_id, {})
        for name in list(known):
            if name not in names:
                del known[name]
        for name in names - set(known):
            path = directory / name
            try:
                metadata = pq.read_metadata(path)
                keys = pq.read_table(path, columns=["key"]).column("key").to_pylist()
            except FileNotFoundError:
                continue  # compacted away between listing and reading
            except Exception as exc:  # noqa: BLE001
                self._report(path, None, exc)
                continue
            sizes = [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]
            known[name] = _Shard(path, keys, np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64))
        return known

    # -- writing ---------------------------------------------------------------------
    def put_many(
        self,
        encoder_id: str,
        keys: Iterable[str],
        vectors: np.ndarray,
        identity: dict[str, Any] | None = None,
    ) -> None:
        """Store each row of ``vectors`` under its key, as one new shard written atomically.

        ``identity`` (what the encoder id stands for) is recorded once in ``_encoder.json``.

        Parameters
        ----------
        encoder_id : str
            The encoder the vectors belong to: letters, digits, ``_``, ``.`` and ``-``.
        keys : iterable of str
            SHA-256 hex digests of the images, one per row of ``vectors``.
        vectors : ndarray of shape (n_keys, n_dims)
            The vectors, stored as float32.
        identity : dict, default=None
            What the encoder id stands for (backbone, weights, preprocessing, ...).
        """
        _check_encoder_id(encoder_id)
        keys = list(keys)
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(keys) != len(vectors):
            raise ValueError(f"expected {len(keys)} vectors as a 2-D array, got shape {vectors.shape}")
        if not keys:
            return
        directory = self.root / encoder_id
        if identity is not None and not (directory / "_encoder.json").exists():
            with atomic_write(directory / "_encoder.json") as out:
                out.write(json.dumps({"encoder_id": encoder_id, **identity}, indent=1, sort_keys=True).encode())
        _write_shard(directory, _table(encoder_id, keys, vectors, [vector_checksum(v) for v in vectors]))

    # -- maintenance -----------------------------------------------------------------
    def encoders(self) -> list[str]:
        """Encoder ids that have a directory in the store."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and _ENCODER_ID.match(p.name))

    def describe(self) -> "Any":
        """A DataFrame with one row per encoder: entries, shards, bytes and what the id stands for."""
        import pandas as pd

        rows = []
        for encoder_id in self.encoders():
            shards = self._refresh(encoder_id)
            info = _read_identity(self.root / encoder_id)
            rows.append(
                {
                    "encoder_id": encoder_id,
                    "backbone": info.get("backbone"),
                    "entries": len({key for shard in shards.values() for key in shard.keys}),
                    "shards": len(shards),
                    "bytes": sum(_size(shard.path) for shard in shards.values()),
                }
            )
        columns = ["encoder_id", "backbone", "entries", "shards", "bytes"]
        return pd.DataFrame(rows, columns=columns).set_index("encoder_id")

    def stats(self) -> dict[str, int]:
        """Entries (distinct encoder/key pairs), shards, bytes on disk, and this object's hits/misses."""
        table = self.describe()
        return {
            "entries": int(table["entries"].sum()),
            "encoders": len(table),
            "shards": int(table["shards"].sum()),
            "bytes": int(table["bytes"].sum()),
            "hits": self.hits,
            "misses": self.misses,
        }

    def read(self, encoder: str | Sequence[str] | None = None) -> pa.Table:
        """The de-duplicated table of verified rows (newest per encoder and key), as Arrow.

        Parameters
        ----------
        encoder : str, list of str or None, default=None
            Encoder ids or backbone names; None: every encoder in the store.

        Returns
        -------
        table : pyarrow.Table
            Columns ``key``, ``encoder_id``, ``vector``, ``checksum`` and ``created_at``.
        """
        tables = [self._verified_rows(encoder_id)[0] for encoder_id in self._matching(encoder)]
        return pa.concat_tables(tables) if tables else SCHEMA.empty_table()

    def export(self, path: str | os.PathLike, encoder: str | Sequence[str] | None = None) -> Path:
        """Write the de-duplicated, verified table to one Parquet file, atomically; returns its path.

        Parameters
        ----------
        path : path
            The Parquet file to write (replaced if it exists).
        encoder : str, list of str or None, default=None
            Encoder ids or backbone names; None: every encoder in the store.

        Returns
        -------
        path : Path
            The file written.
        """
        path = Path(path)
        table = self.read(encoder)
        with atomic_write(path) as out:
            pq.write_table(table, out, row_group_size=_ROW_GROUP, write_page_checksum=True)
        return path

    def compact(self, encoder: str | Sequence[str] | None = None) -> dict[str, int]:
        """Merge each encoder's shards into one, dropping duplicates, corrupt rows and stale temp files.

        Safe while other processes read and write: new shards written meanwhile are kept,
        and a shard is deleted only after its rows are in the merged file.

        Parameters
        ----------
        encoder : str, list of str or None, default=None
            Encoder ids or backbone names; None: every encoder in the store.

        Returns
        -------
        report : dict
            Counts summed over the encoders: ``shards_before``, ``shards_after``, ``rows_dropped``, ``tmp_removed``.
        """
        report = {"shards_before": 0, "shards_after": 0, "rows_dropped": 0, "tmp_removed": 0}
        for encoder_id in self._matching(encoder):
            directory = self.root / encoder_id
            report["tmp_removed"] += _remove_stale_tmp(directory)
            table, names, total_rows = self._verified_rows(encoder_id)
            report["shards_before"] += len(names)
            report["rows_dropped"] += total_rows - table.num_rows
            if len(names) <= 1 and total_rows == table.num_rows:
                report["shards_after"] += len(names)
                continue
            if table.num_rows:
                _write_shard(directory, table)
                report["shards_after"] += 1
            for name in names:
                (directory / name).unlink(missing_ok=True)
            self._shards.pop(encoder_id, None)
        return report

    def maybe_compact(self, encoder_id: str, max_shards: int = 64) -> None:
        """Compact one encoder when it has more than ``max_shards`` shards (keeps look-ups fast).

        Parameters
        ----------
        encoder_id : str
            The encoder to compact.
        max_shards : int, default=64
            The most shards left uncompacted.
        """
        if len(_shard_names(self.root / encoder_id)) > max_shards:
            self.compact(encoder_id)

    def prune(self, encoder: str | Sequence[str]) -> int:
        """Delete every entry of the named encoders (ids or backbone names); returns entries removed.

        Parameters
        ----------
        encoder : str or list of str
            Encoder ids or backbone names; one the store does not hold raises ValueError.

        Returns
        -------
        removed : int
            Distinct keys deleted.
        """
        removed = 0
        for encoder_id in self._matching(encoder, required=True):
            shards = self._refresh(encoder_id)
            removed += len({key for shard in shards.values() for key in shard.keys})
            shutil.rmtree(self.root / encoder_id, ignore_errors=True)
            self._shards.pop(encoder_id, None)
        return removed

    def _matching(self, encoder: str | Sequence[str] | None, required: bool = False) -> list[str]:
        """Encoder ids named by id or by backbone (None: all)."""
        available = self.encoders()
        if encoder is None:
            if required:
                raise ValueError("name the encoder(s) to prune: an encoder id or a backbone name")
            return available
        wanted = [encoder] if isinstance(encoder, str) else list(encoder)
        chosen = []
        for name in wanted:
            matches = [e for e in available if e == name or _read_identity(self.root / e).get("backbone") == name]
            if not matches:
                known = ", ".join(f"{e} ({_read_identity(self.root / e).get('backbone', '?')})" for e in available)
                raise ValueError(f"no encoder {name!r} in {self}; it holds: {known or 'nothing'}")
            chosen.extend(m for m in matches if m not in chosen)
        return chosen

    def _verified_rows(self, encoder_id: str) -> tuple[pa.Table, list[str], int]:
        """(newest verified row per key, shard names fully accounted for, rows read) for one encoder.

        A shard that cannot be opened, or has a row group that fails its page checksums,
        is moved aside as ``.corrupt-<name>`` (kept, hidden from readers) rather than
        deleted; its readable rows still join the merged table.
        """
        shards = self._refresh(encoder_id)
        seen: set[str] = set()
        kept: list[pa.Table] = []
        total = 0
        read: list[str] = []
        for name in sorted(shards, reverse=True):
            path = shards[name].path
            try:
                parquet = pq.ParquetFile(path, page_checksum_verification=True)
            except FileNotFoundError:
                continue  # another compaction merged it already; its rows are in that shard
            except Exception as exc:  # noqa: BLE001
                self._report(path, None, exc)
                _quarantine(path)
                continue
            damaged = False
            with parquet:
                for group in range(parquet.num_row_groups):
                    try:
                        table = parquet.read_row_group(group)
                        vectors = _vectors_of(table.column("vector"))
                    except FileNotFoundError:
                        damaged = True  # vanished mid-read: leave everything of it alone
                        break
                    except Exception as exc:  # noqa: BLE001
                        self._report(path, group, exc)
                        damaged = True
                        continue
                    total += table.num_rows
                    keys = table.column("key").to_pylist()
                    checksums = table.column("checksum").to_pylist()
                    keep = []
                    for row, (key, vector, checksum) in enumerate(zip(keys, vectors, checksums)):
                        if key in seen or vector is None or vector_checksum(vector) != checksum:
                            continue
                        seen.add(key)
                        keep.append(row)
                    kept.append(table.take(pa.array(keep, pa.int64())).cast(SCHEMA))
            if damaged:
                _quarantine(path)
            else:
                read.append(name)
        table = pa.concat_tables(kept) if kept else SCHEMA.empty_table()
        return table, read, total


def _quarantine(path: Path) -> None:
    """Move a damaged shard out of readers' sight without destroying it."""
    try:
        os.replace(path, path.with_name(f".corrupt-{path.name}"))
    except FileNotFoundError:
        pass


def _check_encoder_id(encoder_id: str) -> None:
    if not isinstance(encoder_id, str) or not _ENCODER_ID.match(encoder_id):
        raise ValueError(f"encoder_id must be letters, digits, '_', '.' or '-' (a directory name), got {encoder_id!r}")


def _shard_names(directory: Path) -> list[str]:
    try:
        return [name for name in os.listdir(directory) if _SHARD.match(name)]
    except FileNotFoundError:
        return []


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _read_identity(directory: Path) -> dict[str, Any]:
    try:
        return json.loads((directory / "_encoder.json").read_text())
    except (OSError, ValueError):
        return {}


def _table(encoder_id: str, keys: list[str], vectors: np.ndarray, checksums: list[str]) -> pa.Table:
    n, width = vectors.shape
    offsets = pa.array(np.arange(0, (n + 1) * width, width, dtype=np.int32))
    now = np.datetime64(time.time_ns() // 1_000_000, "ms")
    return pa.table(
        {
            "key": pa.array(keys, pa.string()),
            "encoder_id": pa.array([encoder_id] * n, pa.string()),
            "vector": pa.ListArray.from_arrays(offsets, pa.array(vectors.reshape(-1), pa.float32())),
            "checksum": pa.array(checksums, pa.string()),
            "created_at": pa.array(np.full(n, now), pa.timestamp("ms", tz="UTC")),
        },
        schema=SCHEMA,
    )


def _write_shard(directory: Path, table: pa.Table) -> Path:
    path = directory / f"part-{time.time_ns():020d}-{uuid.uuid4().hex[:12]}.parquet"
    with atomic_write(path) as out:
        pq.write_table(table, out, row_group_size=_ROW_GROUP, write_page_checksum=True, compression="zstd")
    return path


def _vectors_of(column: pa.ChunkedArray) -> list[np.ndarray | None]:
    """Rows of a list<float32> column as float32 arrays (None for null rows)."""
    out: list[np.ndarray | None] = []
    for chunk in column.chunks:
        values = chunk.values.to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
        offsets = chunk.offsets.to_numpy()
        valid = chunk.is_valid().to_numpy(zero_copy_only=False)
        for row in range(len(chunk)):
            out.append(values[offsets[row] : offsets[row + 1]].copy() if valid[row] else None)
    return out


def _remove_stale_tmp(directory: Path) -> int:
    removed = 0
    now = time.time()
    for path in directory.glob(".*.tmp"):
        try:
            if now - path.stat().st_mtime > _STALE_TMP_S:
                path.unlink()
                removed += 1
        except FileNotFoundError:
            continue
    return removed


def _import_legacy_npy(store: EmbeddingStore, directory: Path, encoder_id: str) -> None:
    """Move vectors of melagbm 0.1's one-``.npy``-per-key layout into Parquet shards.

    A file is deleted only once its vector is in a shard; unreadable or oddly shaped
    files are left where they are (and ignored).
    """
    legacy = sorted(directory.glob("[0-9a-f][0-9a-f]/*.npy")) if directory.is_dir() else []
    by_width: dict[int, list[tuple[Path, np.ndarray]]] = {}
    for path in legacy:
        try:
            vector = np.load(path, allow_pickle=False)
        except (OSError, ValueError):
            continue
        if vector.ndim == 1 and vector.size and np.issubdtype(vector.dtype, np.number):
            by_width.setdefault(vector.size, []).append((path, vector.astype(np.float32)))
    for entries in by_width.values():
        store.put_many(encoder_id, [path.stem for path, _ in entries], np.stack([v for _, v in entries]))
        for path, _ in entries:
            path.unlink(missing_ok=True)
    for sub in {path.parent for path in legacy}:
        try:
            sub.rmdir()
        except OSError:
            pass


#: One store object per folder and thread, so its shard index and hit counts survive between calls (per
#: thread: an EmbeddingStore's in-memory index is not guarded for threads, e.g. a Dask worker's).
_OPEN = threading.local()


def resolve_store(store: None | str | os.PathLike | EmbeddingStore) -> EmbeddingStore | None:
    """Turn the ``cache`` parameter into a store: "auto" -> default path, None -> no store.

    A path gives the same :class:`EmbeddingStore` object on every call from one thread (it reads
    new shards from disk at each look-up, so other writers' vectors are still seen).
    """
    if store is None or isinstance(store, EmbeddingStore):
        return store
    if isinstance(store, str) and store == "auto":
        store = default_store_path()
    if not isinstance(store, (str, os.PathLike)):
        raise TypeError(f"cache must be 'auto', None, a path or an EmbeddingStore, got {store!r}")
    root = Path(store).expanduser().absolute()
    stores = _OPEN.__dict__.setdefault("stores", {})
    if root not in stores:
        stores[root] = EmbeddingStore(root)
    return stores[root]


def fill_from_store(
    store: EmbeddingStore | None, encoder_id: str, keys: Sequence[str | None], out: np.ndarray
) -> list[int]:
    """Copy the stored row of each key into ``out`` (rows of the right width only); the positions still missing.

    A None key (an image that could not even be hashed) is neither looked up nor reported missing.
    """
    wanted = [i for i, key in enumerate(keys) if key is not None]
    if store is None or not wanted:
        return wanted
    missing = []
    for index, vector in zip(wanted, store.get_many(encoder_id, [keys[i] for i in wanted])):
        if vector is not None and vector.shape == out.shape[1:]:
            out[index] = vector
        else:
            missing.append(index)
    return missing


def positions_by_key(keys: Sequence[str | None], indices: Iterable[int]) -> dict[str, list[int]]:
    """Key -> the positions (among ``indices``) that hold it: identical images are computed once."""
    positions: dict[str, list[int]] = {}
    for index in indices:
        positions.setdefault(keys[index], []).append(index)  # type: ignore[arg-type]
    return positions
