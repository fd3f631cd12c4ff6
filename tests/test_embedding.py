from __future__ import annotations

import pickle
import shutil

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from melagbm import EmbeddingStore, ImageEmbedder, ImageReadError


@pytest.fixture(scope="module")
def ham_paths(ham_root) -> list[str]:
    return sorted(str(p) for p in (ham_root / "images").glob("*.jpg"))[:12]


def test_paths_bytes_and_arrays_embed_alike(ham_paths, tmp_path) -> None:
    embedder = ImageEmbedder(cache=None).fit()
    from_paths = embedder.transform(ham_paths[:4])
    from_bytes = embedder.transform([open(p, "rb").read() for p in ham_paths[:4]])
    from_arrays = embedder.transform([np.asarray(Image.open(p).convert("RGB")) for p in ham_paths[:4]])
    assert from_paths.shape == (4, 1280) and from_paths.dtype == np.float32
    np.testing.assert_array_equal(from_paths, from_bytes)
    np.testing.assert_allclose(from_paths, from_arrays, rtol=1e-4, atol=1e-4)
    # different images give different vectors
    assert np.linalg.norm(from_paths[0] - from_paths[1]) > 1.0


def test_store_reuses_vectors_by_content(ham_paths, tmp_path) -> None:
    store = EmbeddingStore(tmp_path / "store")
    embedder = ImageEmbedder(cache=store).fit()
    first = embedder.transform(ham_paths[:6])
    assert (store.hits, store.misses) == (0, 6)
    renamed = tmp_path / "renamed.jpg"
    shutil.copy(ham_paths[0], renamed)
    second = embedder.transform([str(renamed)] + ham_paths[1:6])
    assert (store.hits, store.misses) == (6, 6)
    np.testing.assert_array_equal(first, second)
    # another encoder identity never sees these vectors
    ImageEmbedder(cache=store, tta="flip").fit().transform(ham_paths[:2])
    assert store.misses == 8


def test_duplicate_images_are_embedded_once(ham_paths, tmp_path, monkeypatch) -> None:
    embedder = ImageEmbedder(cache=None).fit()
    seen = []
    original = embedder._embed_batches

    def spy(items, rows, *options):
        seen.extend(items)
        yield from original(items, rows, *options)

    monkeypatch.setattr(embedder, "_embed_batches", spy)
    out = embedder.transform([ham_paths[0], ham_paths[1], ham_paths[0]])
    assert len(seen) == 2
    np.testing.assert_array_equal(out[0], out[2])


def test_layers_and_tta(ham_paths) -> None:
    plain = ImageEmbedder(cache=None).fit().transform(ham_paths[:3])
    multi = ImageEmbedder(cache=None, layers=4).fit()
    deep = multi.transform(ham_paths[:3])
    assert deep.shape == (3, 1280 + 320 + 112 + 40)
    np.testing.assert_allclose(deep[:, :1280], plain, rtol=1e-5, atol=1e-5)
    flipped = ImageEmbedder(cache=None, tta="flip").fit().transform(ham_paths[:3])
    assert not np.allclose(flipped, plain, atol=1e-3)
    assert ImageEmbedder(layers=4).fit().encoder_id_ != ImageEmbedder().fit().encoder_id_


def test_rotation_tta_is_invariant_to_quarter_turns(ham_paths) -> None:
    from PIL import Image

    image = np.asarray(Image.open(ham_paths[0]).convert("RGB"))
    side = min(image.shape[:2])
    square = image[:side, :side]
    turned, mirrored = np.rot90(square).copy(), square[:, ::-1].copy()

    def cosine(a: np.ndarray, b: np.ndarray) -> float:
        return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))

    plain = ImageEmbedder(cache=None).fit().transform([square, turned])
    rot4 = ImageEmbedder(cache=None, tta="rot4").fit().transform([square, turned, mirrored])
    d8 = ImageEmbedder(cache=None, tta="d8").fit().transform([square, turned, mirrored])
    assert cosine(*plain) < 0.98  # a quarter turn changes the plain embedding (0.93)...
    assert cosine(rot4[0], rot4[1]) > 0.9995  # ...but not the mean over the four turns (PIL rounding aside)
    assert cosine(rot4[0], rot4[2]) < 0.998  # a mirror image is not a rotation (0.996)
    assert cosine(d8[0], d8[1]) > 0.9995 and cosine(d8[0], d8[2]) > 0.9999
    assert len({ImageEmbedder(tta=mode).fit().encoder_id_ for mode in ("none", "flip", "rot4", "d8")}) == 4
    with pytest.raises(ValueError, match="square input"):
        ImageEmbedder(tta="rot4", preprocessing={"input_size": (3, 224, 256)}).fit()


def test_missing_file_names_row_and_file(ham_paths) -> None:
    images = pd.Series([ham_paths[0], "/nowhere/ISIC_missing.jpg"], index=["a", "b"])
    with pytest.raises(ImageReadError, match=r"row 'b'.*ISIC_missing\.jpg"):
        ImageEmbedder(cache=None).fit().transform(images)


def test_corrupt_file_names_the_file(tmp_path) -> None:
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(ImageReadError, match="broken.jpg"):
        ImageEmbedder(cache=None, num_workers=0).fit().transform([str(bad)])


def test_pickle_drops_the_torch_module(ham_paths) -> None:
    embedder = ImageEmbedder(cache=None).fit()
    expected = embedder.transform(ham_paths[:2])
    payload = pickle.dumps(embedder)
    assert b"torch.nn" not in payload and len(payload) < 100_000
    np.testing.assert_array_equal(pickle.loads(payload).transform(ham_paths[:2]), expected)


def test_pandas_output_names_each_dimension(ham_paths) -> None:
    embedder = ImageEmbedder(cache=None).set_output(transform="pandas").fit()
    frame = embedder.transform(pd.Series(ham_paths[:2]))
    assert list(frame.columns[:2]) == ["image__emb_0000", "image__emb_0001"]
    assert frame.shape == (2, 1280)


def test_bad_parameters_are_reported_at_fit() -> None:
    with pytest.raises(ValueError, match="tta"):
        ImageEmbedder(tta="rotate").fit()
    with pytest.raises(ValueError, match="layers"):
        ImageEmbedder(layers=0).fit()
    with pytest.raises(ValueError, match="device"):
        ImageEmbedder(device="tpu").fit()


def test_unpickled_embedder_refuses_other_weights(ham_paths) -> None:
    embedder = pickle.loads(pickle.dumps(ImageEmbedder(cache=None).fit()))
    embedder.weights_digest_ = "0" * 16  # as if the weight package had changed under it
    from melagbm import BackboneUnavailableError

    with pytest.raises(BackboneUnavailableError, match="refit"):
        embedder.transform(ham_paths[:1])


def test_a_sized_backbone_is_the_same_encoder_fed_that_size(ham_paths, tmp_path) -> None:
    store = EmbeddingStore(tmp_path / "store")
    sized = ImageEmbedder(backbone="tf_efficientnet_lite0@320", cache=store).fit()
    assert sized.data_config_["input_size"] == (3, 320, 320) and sized.data_config_["crop_pct"] == 1.0
    vectors = sized.transform(ham_paths[:3])
    overridden = ImageEmbedder(preprocessing={"input_size": 320, "crop_pct": 1.0}, cache=None).fit()
    np.testing.assert_allclose(vectors, overridden.transform(ham_paths[:3]), rtol=1e-5, atol=1e-5)
    # the same vectors, so the same store key: the overridden encoder finds them stored
    assert overridden.encoder_id_ == sized.encoder_id_
    ImageEmbedder(preprocessing={"input_size": 320, "crop_pct": 1.0}, cache=store).fit().transform(ham_paths[:3])
    assert (store.hits, store.misses) == (3, 3)
    # and a different view of each image than the encoder at its own size
    native = ImageEmbedder(cache=None).fit().transform(ham_paths[:3])
    assert not np.allclose(vectors, native, atol=1e-2)


def test_colour_constancy_divides_out_the_lights_colour(ham_paths, tmp_path) -> None:
    """The same lesion under a warm and a cool light embeds alike with Shades of Gray, unlike without it."""
    original = Image.open(ham_paths[0]).convert("RGB")
    pixels = np.asarray(original, dtype=float)
    warm, cool = (Image.fromarray(np.clip(pixels * tint, 0, 255).astype(np.uint8))
                  for tint in ((1.0, 0.8, 0.65), (0.7, 0.85, 1.0)))
    cosine = lambda v: float(v[0] @ v[1] / np.linalg.norm(v[0]) / np.linalg.norm(v[1]))  # noqa: E731
    plain = ImageEmbedder(cache=None).fit()
    balanced = ImageEmbedder(preprocessing={"colour_constancy": "shades_of_gray"}, cache=None).fit()
    assert cosine(balanced.transform([warm, cool])) > cosine(plain.transform([warm, cool])) + 0.02
    assert cosine(balanced.transform([warm, cool])) > 0.97
    # another preprocessing is another encoder in the store; "none" is timm's own
    assert balanced.encoder_id_ != plain.encoder_id_
    assert ImageEmbedder(preprocessing={"colour_constancy": "none"}, cache=None).fit().encoder_id_ == plain.encoder_id_
    with pytest.raises(ValueError, match="colour_constancy must be one of .* got 'grey_world'"):
        ImageEmbedder(preprocessing={"colour_constancy": "grey_world"}, cache=None).fit()
