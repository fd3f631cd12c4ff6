"""The accelerated paths: torchvision JPEG decoding (tested here on the CPU), and the GPU itself (marked gpu)."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

import melagbm.images.reading
from melagbm import FusionClassifier, ImageEmbedder, ImageReadError
from melagbm.boosting import margin as _margin
from melagbm.embedding import BadImageWarning
from melagbm.images.decoding import plain_jpeg_bytes

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def _jpeg(image: Image.Image, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", **options)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def isic_paths(isic_root) -> list[str]:
    return [str(p) for p in sorted((isic_root / "train").glob("*.jpg"))[:48]]


@pytest.fixture(scope="module")
def ham_paths(ham_root) -> list[str]:
    return [str(p) for p in sorted((ham_root / "images").glob("*.jpg"))[:48]]


def _embed(images, decoding: str, device: str = "cpu", **options) -> np.ndarray:
    embedder = ImageEmbedder(cache=None, device=device, jpeg_decoding=decoding, num_workers=0, **options)
    return embedder.fit().transform(images)


def test_torchvision_decoding_matches_pil(isic_paths, ham_paths) -> None:
    # 256 x 256 ISIC JPEGs: decoding is bit-identical and the 224 crop needs no resampling
    same = _cosines(_embed(isic_paths, "pil"), _embed(isic_paths, "torchvision"))
    assert same.min() > 0.99999
    # 200 x 150 HAM10000 JPEGs are upsampled: torch's antialiased bicubic is within one grey level of PIL's
    resampled = _cosines(_embed(ham_paths, "pil", layers=4), _embed(ham_paths, "torchvision", layers=4))
    assert resampled.min() > 0.995 and resampled.mean() > 0.998


def test_only_complete_plain_jpegs_take_the_torchvision_path(ham_paths, monkeypatch) -> None:
    lesion = Image.open(ham_paths[0]).convert("RGB")
    data = _jpeg(lesion, quality=95)
    assert plain_jpeg_bytes(data) == data and plain_jpeg_bytes(ham_paths[0]) is not None
    assert plain_jpeg_bytes(_jpeg(lesion.convert("L"))) is not None
    png = io.BytesIO()
    lesion.save(png, format="PNG")
    rejected = {
        "PNG": png.getvalue(),
        "CMYK JPEG": _jpeg(lesion.convert("CMYK")),
        "truncated": data[: len(data) // 2],
        "not an image": b"patient notes",
        "missing file": "/nonexistent/lesion.jpg",
        "array": np.asarray(lesion),
    }
    for name, item in rejected.items():
        assert plain_jpeg_bytes(item) is None, name
    monkeypatch.setattr(melagbm.images.reading, "MAX_IMAGE_PIXELS", 10_000)  # the pixel limit holds on this path too
    assert plain_jpeg_bytes(data) is None


def test_rotated_jpegs_take_pils_path(ham_paths) -> None:
    lesion = Image.open(ham_paths[0]).convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display": nvJPEG would ignore it
    rotated = _jpeg(lesion.transpose(Image.Transpose.ROTATE_90), exif=exif)
    assert plain_jpeg_bytes(rotated) is None
    by_pil, by_torchvision = _embed([rotated, lesion], "pil"), _embed([rotated, lesion], "torchvision")
    np.testing.assert_array_equal(by_pil[0], by_torchvision[0])
    assert _cosines(by_pil[:1], by_pil[1:]).min() > 0.99  # shown upright, as the lesion itself


def test_jpegs_torchvision_cannot_decode_fall_back_to_pil_in_order(ham_paths, monkeypatch) -> None:
    import melagbm.embedding.embedder

    paths = ham_paths[:5]
    expected = _embed(paths, "pil", batch_size=2)
    calls = []

    def refuse_some(blobs, device):  # torchvision fails on every other image of each batch
        calls.append(len(blobs))
        return [None if i % 2 else image for i, image in enumerate(real(blobs, device))]

    real = melagbm.embedding.embedder.decode_jpeg_batch
    monkeypatch.setattr(melagbm.embedding.embedder, "decode_jpeg_batch", refuse_some)
    mixed = _embed(paths, "torchvision", batch_size=2)
    assert calls == [2, 2, 1]
    assert _cosines(expected, mixed).min() > 0.995
    np.testing.assert_array_equal(mixed[[1, 3]], expected[[1, 3]])  # the refused ones: PIL's own vectors


def test_mixed_batches_decode_every_kind_in_order(ham_paths) -> None:
    lesion = Image.open(ham_paths[1]).convert("RGB")
    png = io.BytesIO()
    lesion.save(png, format="PNG")
    items = [ham_paths[0], png.getvalue(), _jpeg(lesion.convert("CMYK"), quality=98), np.asarray(lesion),
             ham_paths[2], lesion]
    by_pil, by_torchvision = _embed(items, "pil"), _embed(items, "torchvision")
    assert np.isfinite(by_torchvision).all()
    assert _cosines(by_pil, by_torchvision).min() > 0.995
    np.testing.assert_array_equal(by_pil[1:4], by_torchvision[1:4])  # PNG, CMYK and array: PIL's path in both


def test_unreadable_jpegs_are_named_or_skipped_on_the_torchvision_path(ham_paths, tmp_path) -> None:
    data = open(ham_paths[0], "rb").read()
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(data[: len(data) // 2])
    images = pd.Series([ham_paths[0], str(truncated), ham_paths[1]], index=["a", "b", "c"])
    with pytest.raises(ImageReadError, match="row 'b'.*truncated.jpg"):
        _embed(images, "torchvision")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        vectors = _embed(images, "torchvision", on_bad_image="skip")
    assert np.isnan(vectors[1]).all() and np.isfinite(vectors[[0, 2]]).all()
    assert any(issubclass(w.category, BadImageWarning) and "row 'b'" in str(w.message) for w in caught)


def test_jpeg_decoding_is_validated() -> None:
    with pytest.raises(ValueError, match="jpeg_decoding must be one of"):
        ImageEmbedder(cache=None, jpeg_decoding="nvjpeg").fit()


@pytest.mark.gpu
@needs_cuda
def test_cuda_embeddings_match_the_cpu(isic_paths, ham_paths) -> None:
    for paths in (isic_paths, ham_paths):
        on_gpu = _embed(paths, "auto", device="cuda", layers=4)
        on_cpu = _embed(paths, "pil", device="cpu", layers=4)
        assert _cosines(on_gpu, on_cpu).min() > 0.99  # bf16 autocast and nvJPEG against fp32 and PIL


@pytest.mark.gpu
@needs_cuda
def test_xgboost_trains_and_explains_on_the_gpu_and_predicts_on_the_cpu(ham_sample, tmp_path) -> None:
    X, y, groups = ham_sample
    model = FusionClassifier(booster="xgboost", device="cuda", random_state=0).fit(X, y, groups=groups)
    assert model.booster_.get_params()["device"] == "cuda"
    rows = X.iloc[:100]
    explanation = model.explain(rows)
    margin = _margin(model.booster_, model.transform_features(rows))
    np.testing.assert_allclose(explanation.values.sum(axis=1) + explanation.base_values, margin, atol=1e-3)
    expected = model.predict_proba(rows)
    from melagbm import load

    loaded = load(model.save(tmp_path / "gpu.melagbm"))
    loaded.set_params(device="cpu")
    np.testing.assert_allclose(loaded.predict_proba(rows), expected, atol=1e-3)
