"""EmbeddingStore: durability under SIGKILL and concurrent writers, checksums, keys, maintenance."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from PIL import Image

from melagbm import EmbeddingStore, ImageEmbedder
from melagbm.backbones import load_backbone
from melagbm.store import CorruptEntryWarning, vector_checksum

sys.path.insert(0, str(Path(__file__).parent / "helpers"))
from store_writer import ENCODER, expected_vector, key_of  # noqa: E402

WRITER = Path(__file__).parent / "helpers" / "store_writer.py"


def start_writer(root: Path, *args: str | int) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, str(WRITER), str(root), *map(str, args)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout.readline().strip() == "started"
    return process


def assert_every_row_is_whole(root: Path, width: int) -> int:
    """Every row any reader sees has a full vector matching its checksum and its key; returns rows."""
    if not list(root.glob("*/part-*.parquet")):
        return 0  # killed before its first shard (a slow start on a loaded machine): nothing to check yet
    table = pd.read_parquet(root)  # pandas/pyarrow skip the hidden temporary files
    index = {key_of(i): i for i in range(5000)}
    for key, vector, checksum in zip(table["key"], table["vector"], table["checksum"]):
        assert len(vector) == width and vector_checksum(vector) == checksum
        np.testing.assert_array_equal(vector, expected_vector(index[key], width))
    return len(table)


@pytest.fixture(scope="module")
def ham_paths(ham_root) -> list[str]:
    return sorted(str(p) for p in (ham_root / "images").glob("*.jpg"))[20:24]


def test_vectors_round_trip_through_an_open_parquet_table(tmp_path) -> None:
    store = EmbeddingStore(tmp_path)
    vectors = np.stack([expected_vector(i, 64) for i in range(10)])
    store.put_many("enc-a", [key_of(i) for i in range(10)], vectors, identity={"backbone": "demo"})
    found = store.get_many("enc-a", [key_of(3), key_of(99), key_of(0)])
    np.testing.assert_array_equal(found[0], vectors[3])
    assert found[1] is None
    np.testing.assert_array_equal(found[2], vectors[0])
    assert (store.hits, store.misses) == (2, 1)
    table = ds.dataset(tmp_path, format="parquet").to_table().to_pandas()
    assert list(table.columns) == ["key", "encoder_id", "vector", "checksum", "created_at"]
    assert set(table["encoder_id"]) == {"enc-a"} and len(table) == 10
    assert str(table["created_at"].dtype) == "datetime64[ms, UTC]"
    assert store.describe().loc["enc-a", "backbone"] == "demo"
    umask = os.umask(0o022)
    os.umask(umask)
    for path in tmp_path.rglob("*"):  # other users and processes may read the store, as with open()
        if path.is_file():
            assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_bad_encoder_ids_and_shapes_are_refused(tmp_path) -> None:
    store = EmbeddingStore(tmp_path)
    with pytest.raises(ValueError, match="encoder_id"):
        store.put_many("../escape", ["a"], np.zeros((1, 3)))
    with pytest.raises(ValueError, match="2-D"):
        store.put_many("enc", ["a", "b"], np.zeros((3, 3)))


def test_sigkill_mid_write_leaves_only_whole_correct_vectors(tmp_path) -> None:
    root, width = tmp_path / "store", 512
    killed_mid_write = 0
    for attempt in range(30):
        writer = start_writer(root, 0, 3000, 1500, width, attempt, "--forever")
        time.sleep(0.3 + 0.1 * (attempt % 5))
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        killed_mid_write = len(list((root / ENCODER).glob(".*.tmp")))  # temp files of killed writes
        rows = assert_every_row_is_whole(root, width)
        if killed_mid_write >= 2 and attempt >= 3:
            break
    assert killed_mid_write >= 2, "no kill landed inside a write; the test proved nothing"
    assert rows > 0
    store = EmbeddingStore(root)
    keys = [key_of(i) for i in range(3000)]
    found = store.get_many(ENCODER, keys)
    assert sum(v is not None for v in found) > 0
    for i, vector in enumerate(found):
        if vector is not None:
            np.testing.assert_array_equal(vector, expected_vector(i, width))
    report = store.compact()
    assert report["shards_after"] == 1 and report["tmp_removed"] == 0  # young temp files may be live writes
    assert assert_every_row_is_whole(root, width) == sum(v is not None for v in found)


def test_concurrent_writers_and_compactions_lose_nothing(tmp_path) -> None:
    root, width, go = tmp_path / "store", 128, tmp_path / "go"
    writers = [
        start_writer(root, 0, 600, 20, width, 1, "--go", go),
        start_writer(root, 200, 800, 20, width, 2, "--go", go, "--compact-every", 4),
        start_writer(root, 400, 1000, 20, width, 3, "--go", go, "--compact-every", 7),
        start_writer(root, 0, 1000, 50, width, 4, "--go", go),
    ]
    go.touch()
    for writer in writers:
        assert writer.wait(timeout=300) == 0
    store = EmbeddingStore(root)
    found = store.get_many(ENCODER, [key_of(i) for i in range(1000)])
    for i, vector in enumerate(found):
        assert vector is not None, f"key {i} was lost"
        np.testing.assert_array_equal(vector, expected_vector(i, width))
    store.compact()
    stats = store.stats()
    assert (stats["entries"], stats["shards"]) == (1000, 1)
    assert assert_every_row_is_whole(root, width) == 1000


def test_a_reader_survives_a_compaction_by_another_process(tmp_path) -> None:
    reader = EmbeddingStore(tmp_path)
    for i in range(0, 40, 10):
        reader.put_many("enc", [key_of(j) for j in range(i, i + 10)], np.stack([expected_vector(j, 8) for j in range(i, i + 10)]))
    assert all(v is not None for v in reader.get_many("enc", [key_of(0)]))  # indexes four shards
    EmbeddingStore(tmp_path).compact()  # deletes them
    found = reader.get_many("enc", [key_of(j) for j in range(40)])
    np.testing.assert_array_equal(np.stack(found), np.stack([expected_vector(j, 8) for j in range(40)]))


def _shard(store_root: Path, encoder_id: str) -> Path:
    (shard,) = (store_root / encoder_id).glob("part-*.parquet")
    return shard


def test_a_silently_corrupted_vector_warns_and_is_recomputed(ham_paths, tmp_path) -> None:
    store = EmbeddingStore(tmp_path)
    embedder = ImageEmbedder(cache=store).fit()
    original = embedder.transform(ham_paths)
    shard = _shard(tmp_path, embedder.encoder_id_)
    table = pq.read_table(shard).to_pandas()
    table.at[1, "vector"] = table.at[1, "vector"] + np.float32(0.5)  # bit rot the page CRC cannot see
    pq.write_table(pq.read_table(shard).from_pandas(table, schema=pq.read_schema(shard)), shard)
    with pytest.warns(CorruptEntryWarning, match="fails its checksum"):
        again = embedder.transform(ham_paths)
    np.testing.assert_allclose(again, original, rtol=1e-5, atol=1e-5)
    assert store.misses == len(ham_paths) + 1
    assert not any(issubclass(w.category, CorruptEntryWarning) for w in _warnings_of(embedder, ham_paths))


def test_flipped_bytes_in_a_shard_warn_and_are_recomputed(ham_paths, tmp_path) -> None:
    store = EmbeddingStore(tmp_path)
    embedder = ImageEmbedder(cache=store).fit()
    original = embedder.transform(ham_paths)
    shard = _shard(tmp_path, embedder.encoder_id_)
    data = bytearray(shard.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 16] = bytes(b ^ 0xFF for b in data[middle : middle + 16])
    shard.write_bytes(bytes(data))
    with pytest.warns(CorruptEntryWarning, match="cannot read"):
        again = embedder.transform(ham_paths)
    np.testing.assert_allclose(again, original, rtol=1e-5, atol=1e-5)
    report = EmbeddingStore(tmp_path).compact()
    assert report["shards_after"] == 1
    assert len(pd.read_parquet(tmp_path)) == len(ham_paths)


def test_compaction_moves_a_damaged_shard_aside_and_keeps_every_readable_vector(tmp_path) -> None:
    store = EmbeddingStore(tmp_path)
    for start in range(0, 60, 20):
        ids = range(start, start + 20)
        store.put_many("enc", [key_of(i) for i in ids], np.stack([expected_vector(i, 256) for i in ids]))
    first = sorted((tmp_path / "enc").glob("part-*.parquet"))[0]
    data = bytearray(first.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 16] = bytes(16)
    first.write_bytes(bytes(data))
    with pytest.warns(CorruptEntryWarning, match=first.name):
        report = store.compact()
    assert report["shards_after"] == 1
    assert (tmp_path / "enc" / f".corrupt-{first.name}").exists()  # kept for inspection, hidden from readers
    found = store.get_many("enc", [key_of(i) for i in range(60)])
    assert [v is not None for v in found] == [False] * 20 + [True] * 40
    for i in range(20, 60):
        np.testing.assert_array_equal(found[i], expected_vector(i, 256))


def _warnings_of(embedder: ImageEmbedder, paths: list[str]) -> list:
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        embedder.transform(paths)
    return caught


def test_the_key_follows_content_weights_and_preprocessing(ham_paths, tmp_path) -> None:
    store = EmbeddingStore(tmp_path / "store")
    image = np.asarray(Image.open(ham_paths[0]).convert("RGB").resize((160, 120)))
    one_pixel = image.copy()
    one_pixel[60, 80, 0] ^= 1
    Image.fromarray(image).save(tmp_path / "a.png")
    Image.fromarray(one_pixel).save(tmp_path / "b.png")
    shutil.copy(tmp_path / "a.png", tmp_path / "a-moved.png")
    embedder = ImageEmbedder(cache=store).fit()
    embedder.transform([str(tmp_path / "a.png")])
    assert (store.hits, store.misses) == (0, 1)
    embedder.transform([str(tmp_path / "a-moved.png")])
    assert (store.hits, store.misses) == (1, 1), "the same bytes under another name must hit"
    embedder.transform([str(tmp_path / "b.png")])
    assert (store.hits, store.misses) == (1, 2), "one changed pixel must miss"

    for preprocessing in ({"input_size": 256}, {"crop_pct": 1.0}, {"interpolation": "bilinear"}):
        other = ImageEmbedder(cache=store, preprocessing=preprocessing).fit()
        assert other.encoder_id_ != embedder.encoder_id_
        before = store.misses
        other.transform([str(tmp_path / "a.png")])
        assert store.misses == before + 1, f"changed preprocessing {preprocessing} must miss"

    state = load_backbone("tf_efficientnet_lite0").state_dict()
    torch = pytest.importorskip("torch")
    torch.save(state, tmp_path / "same.pth")
    state["conv_stem.weight"] = state["conv_stem.weight"] * 1.01
    torch.save(state, tmp_path / "changed.pth")
    same = ImageEmbedder(cache=store, checkpoint_path=tmp_path / "same.pth").fit()
    changed = ImageEmbedder(cache=store, checkpoint_path=tmp_path / "changed.pth").fit()
    assert same.encoder_id_ == embedder.encoder_id_ and changed.encoder_id_ != embedder.encoder_id_
    hits, misses = store.hits, store.misses
    same.transform([str(tmp_path / "a.png")])
    changed.transform([str(tmp_path / "a.png")])
    assert (store.hits, store.misses) == (hits + 1, misses + 1), "identical weights hit, changed weights miss"


def test_preprocessing_overrides_are_validated(ham_paths) -> None:
    with pytest.raises(ValueError, match="not among"):
        ImageEmbedder(cache=None, preprocessing={"size": 256}).fit()
    with pytest.raises(ValueError, match="input_size"):
        ImageEmbedder(cache=None, preprocessing={"input_size": (256, 256)}).fit()
    vectors = ImageEmbedder(cache=None, preprocessing={"input_size": 192}).fit().transform(ham_paths[:1])
    assert vectors.shape == (1, 1280) and np.isfinite(vectors).all()


def test_stats_export_compact_and_prune(tmp_path) -> None:
    store = EmbeddingStore(tmp_path / "store")
    for start in (0, 5, 10):  # overlapping writes: 20 distinct keys in 3 shards of 10 rows
        keys = [key_of(i) for i in range(start, start + 10)]
        store.put_many("enc-a", keys, np.stack([expected_vector(i, 16) for i in range(start, start + 10)]),
                       identity={"backbone": "alpha"})
    store.put_many("enc-b", [key_of(0)], expected_vector(0, 32)[None], identity={"backbone": "beta"})
    stats = store.stats()
    assert (stats["entries"], stats["encoders"], stats["shards"]) == (21, 2, 4)
    assert stats["bytes"] == sum(p.stat().st_size for p in (tmp_path / "store").rglob("part-*.parquet"))

    exported = pd.read_parquet(store.export(tmp_path / "export.parquet"))
    assert len(exported) == 21 and not exported.duplicated(["encoder_id", "key"]).any()
    assert len(pd.read_parquet(store.export(tmp_path / "a.parquet", encoder="alpha"))) == 20

    report = store.compact()
    assert report == {"shards_before": 4, "shards_after": 2, "rows_dropped": 10, "tmp_removed": 0}
    assert store.stats()["entries"] == 21
    found = store.get_many("enc-a", [key_of(i) for i in range(20)])
    np.testing.assert_array_equal(np.stack(found), np.stack([expected_vector(i, 16) for i in range(20)]))

    assert store.prune(encoder="beta") == 1
    assert store.encoders() == ["enc-a"]
    with pytest.raises(ValueError, match="no encoder 'gamma'.*enc-a \\(alpha\\)"):
        store.prune(encoder="gamma")
    with pytest.raises(ValueError, match="name the encoder"):
        store.prune(encoder=None)


def test_the_old_npy_layout_is_imported(tmp_path) -> None:
    legacy = tmp_path / "enc" / "ab"
    legacy.mkdir(parents=True)
    np.save(legacy / f"ab{'0' * 62}.npy", np.arange(4, dtype=np.float32))
    np.save(legacy / f"ab{'1' * 62}.npy", np.arange(6, dtype=np.float32))  # another width: its own shard
    np.save(legacy / f"ab{'2' * 62}.npy", np.float32(3.0))  # a 0-d array: left alone, ignored
    store = EmbeddingStore(tmp_path)
    found = store.get_many("enc", [f"ab{'0' * 62}", f"ab{'1' * 62}", f"ab{'2' * 62}"])
    np.testing.assert_array_equal(found[0], np.arange(4, dtype=np.float32))
    np.testing.assert_array_equal(found[1], np.arange(6, dtype=np.float32))
    assert found[2] is None and [p.name for p in legacy.iterdir()] == [f"ab{'2' * 62}.npy"]
    assert store.stats()["entries"] == 2


def test_one_store_object_per_folder_keeps_its_index_and_counts(tmp_path, ham_root) -> None:
    import threading

    from melagbm.features.lesion import LesionFeatures
    from melagbm.store import resolve_store

    store = resolve_store(tmp_path / "store")
    assert resolve_store(str(tmp_path / "store")) is store and resolve_store(tmp_path / "other") is not store
    elsewhere = []
    thread = threading.Thread(target=lambda: elsewhere.append(resolve_store(tmp_path / "store")))
    thread.start()
    thread.join()
    assert elsewhere[0] is not store  # another thread has its own object: the index is not shared unguarded
    images = sorted(str(p) for p in (ham_root / "images").glob("*.jpg"))[:6]
    measurer = LesionFeatures(cache=tmp_path / "store", verbose=0).fit()
    first = measurer.transform(images)
    assert (store.hits, store.misses) == (0, 6)
    np.testing.assert_array_equal(measurer.transform(images), first)
    assert (store.hits, store.misses) == (6, 6)  # the second call found them in the same object


def test_fill_from_store_takes_only_rows_of_the_right_width(tmp_path) -> None:
    from melagbm.store import fill_from_store, positions_by_key

    store = EmbeddingStore(tmp_path)
    store.put_many("enc-a", ["k1", "k2"], np.ones((2, 3), np.float32))
    store.put_many("enc-a", ["k3"], np.ones((1, 5), np.float32))  # another width under the same id
    out = np.full((4, 3), np.nan, np.float32)
    assert fill_from_store(store, "enc-a", ["k1", None, "k3", "k4"], out) == [2, 3]
    np.testing.assert_array_equal(out[0], 1.0)
    assert np.isnan(out[1:]).all()
    assert fill_from_store(None, "enc-a", ["k1", None], out) == [0]
    assert positions_by_key(["a", "b", "a", None], [0, 1, 2]) == {"a": [0, 2], "b": [1]}


def test_the_lesion_measurer_stores_batch_by_batch_and_measures_each_image_once(tmp_path, ham_root, monkeypatch) -> None:
    """One cached per-image featuriser behind ImageEmbedder and LesionFeatures: an interrupted measuring keeps
    the batches it finished, and a repeated image is measured once."""
    import melagbm.features.lesion as lesion_module
    from melagbm import ImageEmbedder
    from melagbm.features.lesion import LesionFeatures
    from melagbm.store import CachedImageFeaturizer

    assert issubclass(LesionFeatures, CachedImageFeaturizer) and issubclass(ImageEmbedder, CachedImageFeaturizer)
    monkeypatch.setattr(lesion_module, "_BATCH", 4)
    images = sorted(str(p) for p in (ham_root / "images").glob("*.jpg"))[:10]
    measured: list = []
    real = lesion_module._measure

    def measure_until_the_seventh(item, row, spacing, version):
        if len(measured) == 6:
            raise KeyboardInterrupt  # the user stops the job while the second batch is measured
        measured.append(item)
        return real(item, row, spacing, version)

    monkeypatch.setattr(lesion_module, "_measure", measure_until_the_seventh)
    measurer = LesionFeatures(cache=tmp_path / "store", verbose=0).fit()
    with pytest.raises(KeyboardInterrupt):
        measurer.transform(images + images[:2])
    assert EmbeddingStore(tmp_path / "store").stats()["entries"] == 4  # the first batch survived
    measured.clear()
    monkeypatch.setattr(lesion_module, "_measure", lambda item, row, spacing, version: measured.append(item) or real(
        item, row, spacing, version))
    table = measurer.transform(images + images[:2])
    assert sorted(measured) == sorted(images[4:])  # the stored four are read back, the repeats measured once
    np.testing.assert_array_equal(table.iloc[10:].to_numpy(), table.iloc[:2].to_numpy())
