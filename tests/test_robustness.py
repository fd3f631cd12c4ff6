"""Bad input gets a clear answer: odd images, corrupt files, renamed columns, recoded values."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

import melagbm.images.reading
from melagbm import FusionClassifier, ImageEmbedder, ImageReadError, MetadataEncoder
from melagbm.classifier import DuplicateImageWarning
from melagbm.embedding import BadImageWarning
from melagbm.features.metadata import UnseenCategoryWarning
from melagbm.images import read_image


@pytest.fixture(scope="module")
def lesion(ham_root) -> Image.Image:
    path = sorted((ham_root / "images").glob("*.jpg"))[7]
    return Image.open(path).convert("RGB").resize((200, 150))


@pytest.fixture(scope="module")
def embedder() -> ImageEmbedder:
    return ImageEmbedder(cache=None, num_workers=0).fit()


def _png_48bit(rgb: np.ndarray) -> bytes:
    """A 16-bit-per-channel RGB PNG (Pillow cannot write one), built chunk by chunk."""
    high = rgb.astype(np.uint16) * 257
    raw = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in high)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", rgb.shape[1], rgb.shape[0], 16, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def _encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def test_colour_modes_and_bit_depths_are_converted_not_rejected(lesion, embedder) -> None:
    rgb = np.asarray(lesion)
    grey = lesion.convert("L")
    variants = {
        "RGB": _encoded(lesion, "PNG"),
        "RGBA": _encoded(lesion.convert("RGBA"), "PNG"),
        "L": _encoded(grey, "PNG"),
        "I;16": _encoded(Image.fromarray(np.asarray(grey).astype(np.uint16) * 257), "PNG"),
        "P": _encoded(lesion.quantize(256), "PNG"),
        "CMYK": _encoded(lesion.convert("CMYK"), "JPEG", quality=98),
        "RGB;16": _png_48bit(rgb),
    }
    modes = {name: Image.open(io.BytesIO(data)).mode for name, data in variants.items()}
    assert modes["I;16"].startswith("I;16") and modes["CMYK"] == "CMYK" and modes["P"] == "P"
    vectors = dict(zip(variants, embedder.transform(list(variants.values()))))
    assert all(np.isfinite(v).all() for v in vectors.values())
    np.testing.assert_array_equal(vectors["RGBA"], vectors["RGB"])
    assert _cosine(vectors["RGB;16"], vectors["RGB"]) > 0.999
    assert _cosine(vectors["I;16"], vectors["L"]) > 0.999  # rescaled, not clipped to white
    assert _cosine(vectors["CMYK"], vectors["RGB"]) > 0.98
    palette_as_rgb = Image.open(io.BytesIO(variants["P"])).convert("RGB")  # quantising itself changes colours
    np.testing.assert_allclose(vectors["P"], embedder.transform([_encoded(palette_as_rgb, "PNG")])[0], atol=1e-6)


def test_exif_orientation_is_honoured(lesion, embedder) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    stored_sideways = _encoded(lesion.transpose(Image.Transpose.ROTATE_90), "PNG", exif=exif)
    shown = read_image(stored_sideways)
    assert shown.size == lesion.size
    np.testing.assert_array_equal(np.asarray(shown), np.asarray(lesion))


def test_decompression_bombs_are_refused_before_decoding(tmp_path) -> None:
    bomb = tmp_path / "bomb.png"
    Image.new("1", (20_000, 20_000)).save(bomb)  # 400 megapixels in a few kilobytes
    assert bomb.stat().st_size < 200_000
    with pytest.raises(ImageReadError, match="row 'x'.*bomb.png"):
        read_image(str(bomb), row="x")


def test_the_pixel_limit_is_ours(lesion, monkeypatch) -> None:
    monkeypatch.setattr(melagbm.images.reading, "MAX_IMAGE_PIXELS", 10_000)
    with pytest.raises(ImageReadError, match="200 x 150 pixels exceeds the limit of 10000"):
        read_image(_encoded(lesion, "PNG"))


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "no such file"),
        (b"patient notes, not an image", "cannot identify image file"),
        ("truncated", "truncated"),
        (b"", "cannot identify image file"),
    ],
)
def test_unreadable_files_are_named(tmp_path, lesion, content, message) -> None:
    path = tmp_path / "bad.jpg"
    if content == "truncated":
        data = _encoded(lesion, "JPEG", quality=90)
        path.write_bytes(data[: len(data) // 2])
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(ImageReadError, match=f"(?i)row 'ISIC_7': cannot read image \\(file '{path}'\\): .*{message}"):
        ImageEmbedder(cache=None, num_workers=0).fit().transform(pd.Series([str(path)], index=["ISIC_7"]))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_corrupted_image_bytes_read_or_raise_image_read_error(lesion, data) -> None:
    original = _encoded(lesion.resize((64, 48)), data.draw(st.sampled_from(["JPEG", "PNG"]), label="format"))
    corrupted = bytearray(original[: data.draw(st.integers(0, len(original)), label="keep")])
    for _ in range(data.draw(st.integers(0, 8), label="flips")):
        if corrupted:
            at = data.draw(st.integers(0, len(corrupted) - 1))
            corrupted[at] = data.draw(st.integers(0, 255))
    try:
        image = read_image(bytes(corrupted), row=3)
    except ImageReadError as exc:
        assert str(exc).startswith("row 3: cannot read image")
    else:
        assert image.mode == "RGB" and image.size[0] * image.size[1] > 0


@pytest.fixture(scope="module")
def small_ham(ham_sample):
    X, y, groups = ham_sample
    rows = np.r_[np.flatnonzero(y == 1)[:15], np.flatnonzero(y == 0)[:45]]
    return X.iloc[rows], y.iloc[rows], groups.iloc[rows]


def test_skip_bad_images_in_a_batch_job(small_ham, tmp_path) -> None:
    X, y, groups = small_ham
    broken = X.copy()
    (tmp_path / "cut.jpg").write_bytes(open(X["image"].iloc[1], "rb").read()[:2000])
    broken.iloc[0, broken.columns.get_loc("image")] = str(tmp_path / "gone.jpg")
    broken.iloc[1, broken.columns.get_loc("image")] = str(tmp_path / "cut.jpg")
    with pytest.raises(ImageReadError, match=f"row '{X.index[0]}'"):
        FusionClassifier(backbone="tf_efficientnet_lite0", random_state=0).fit(broken, y, groups=groups)

    model = FusionClassifier(backbone="tf_efficientnet_lite0", on_bad_image="skip", random_state=0)
    with pytest.warns(BadImageWarning, match="fit skipped 2 row"):
        model.fit(broken, y, groups=groups)
    assert model.skipped_rows_ == list(X.index[:2])
    with pytest.warns(BadImageWarning, match="gone.jpg.*cut.jpg"):
        proba = model.predict_proba(broken)
    assert np.isnan(proba[:2]).all() and np.isfinite(proba[2:]).all()
    np.testing.assert_allclose(proba[2:], model.predict_proba(X.iloc[2:]))
    with pytest.raises(ImageReadError, match="cannot predict rows"), pytest.warns(BadImageWarning):
        model.predict(broken)


def test_duplicate_images_are_reported(small_ham) -> None:
    X, y, groups = small_ham
    X, groups = X.copy(), groups.copy()
    X.iloc[5, X.columns.get_loc("image")] = X["image"].iloc[4]
    groups.iloc[5] = "another patient"
    with pytest.warns(DuplicateImageWarning, match=f"'{X.index[4]}' = '{X.index[5]}'.*span two groups"):
        FusionClassifier(backbone="tf_efficientnet_lite0", random_state=0).fit(X, y, groups=groups)


@pytest.fixture(scope="module")
def metadata_model(ham_root):
    from melagbm.datasets import load_ham10000

    X, y, groups = load_ham10000(ham_root, n_samples=800, random_state=2)
    X = X.drop(columns="image")
    return FusionClassifier(image_col=None, random_state=0).fit(X, y, groups=groups), X


def test_schema_changes_at_predict_are_named(metadata_model) -> None:
    model, X = metadata_model
    with pytest.raises(ValueError, match="(?s)missing.*\\bsite\\b"):
        model.predict_proba(X.drop(columns="site"))
    with pytest.raises(ValueError, match="(?s)unseen at fit time.*localisation"):
        model.predict_proba(X.rename(columns={"site": "localisation"}))
    with pytest.raises(ValueError, match="(?s)unseen at fit time.*\\bbmi\\b"):
        model.predict_proba(X.assign(bmi=22.0))
    with pytest.raises(ValueError, match="Column 'age' must be numeric; rows \\['.*'\\] hold \\['forty'\\]"):
        model.predict_proba(X.assign(age=X["age"].astype(object).where(np.arange(len(X)) != 3, "forty")))
    with pytest.raises(ValueError, match="Column 'sex' holds numbers.*recoded"):
        model.predict_proba(X.assign(sex=np.where(X["sex"] == "male", 1, 0)))
    with pytest.warns(UnseenCategoryWarning, match="'sex' has value"):  # a few rows: a warning, not an error
        model.predict_proba(X.head(3).assign(sex=["x", "y", "x"]))
    with pytest.raises(ValueError, match="ages outside 0-120"):
        model.predict_proba(X.assign(age=-X["age"].fillna(40)))
    with pytest.warns(UnseenCategoryWarning, match="'site' has value\\(s\\) \\['elbow pit'\\]"):
        model.predict_proba(X.assign(site=np.where(np.arange(len(X)) == 0, "elbow pit", X["site"])))
    with pytest.raises(ValueError, match="no rows"):
        model.predict_proba(X.iloc[:0])


_cells = st.one_of(
    st.none(), st.floats(allow_nan=True, allow_infinity=True), st.integers(-1000, 1000),
    st.sampled_from(["male", "female", "F", "m", "", "unknown", "back", "lower extremity", "forty", "45"]),
)


@settings(max_examples=150, deadline=None)
@given(
    train=st.lists(st.tuples(_cells, _cells, _cells), min_size=1, max_size=12),
    test=st.lists(st.tuples(_cells, _cells, _cells), min_size=1, max_size=6),
)
def test_any_metadata_frame_encodes_or_raises_naming_a_column(train, test) -> None:
    columns = ["age_approx", "sex", "anatom_site_general_challenge"]
    try:
        encoder = MetadataEncoder().fit(pd.DataFrame(train, columns=columns))
        out = encoder.transform(pd.DataFrame(test, columns=columns))
    except ValueError as exc:
        assert any(f"'{c}'" in str(exc) for c in columns), str(exc)
    else:
        assert list(out.columns) == ["age__years", "sex__category", "site__general"] and len(out) == len(test)
        assert out["age__years"].dropna().between(0, 120).all()


def test_recoded_sex_is_refused_even_for_a_few_rows(metadata_model) -> None:
    model, X = metadata_model
    with pytest.raises(ValueError, match="Column 'sex' holds numbers.*was the column recoded"):
        model.predict_proba(X.head(3).assign(sex=[0, 1, 0]))
    with pytest.raises(ValueError, match="Column 'sex' holds numbers"):
        model.predict_proba(X.head(2).assign(sex=["1", "0"]))  # as read from a CSV of strings


def test_warnings_point_at_the_users_line(metadata_model) -> None:
    model, X = metadata_model
    with pytest.warns(UnseenCategoryWarning) as record:
        model.predict_proba(X.head(3).assign(site=["elbow pit", "torso", "torso"]))
    assert {w.filename for w in record} == {__file__}
    encoder = MetadataEncoder().fit(X)
    with pytest.warns(UnseenCategoryWarning) as record:
        encoder.transform(X.head(3).assign(site="elbow pit"))  # through scikit-learn's set_output wrapper
    assert record[0].filename == __file__


def test_skipping_every_image_or_a_whole_class_is_refused(ham_sample, tmp_path) -> None:
    X, y, groups = ham_sample
    rows = pd.concat([X[y == 1].head(3), X[y == 0].head(12)])
    labels, ids = y.loc[rows.index], groups.loc[rows.index]
    model = FusionClassifier(on_bad_image="skip", backbone="tf_efficientnet_lite0", lesion_features=False,
                             cache=None, verbose=0)
    gone = rows.assign(image=[str(tmp_path / f"gone{i}.jpg") for i in range(len(rows))])
    with pytest.warns(BadImageWarning), pytest.raises(ImageReadError, match="none of the 15 images in column 'image'"):
        model.fit(gone, labels, groups=ids)
    no_melanoma = rows.assign(image=np.where(labels == 1, str(tmp_path / "gone.jpg"), rows["image"]))
    with pytest.warns(BadImageWarning), pytest.raises(ValueError, match="after skipping unreadable images, y holds"):
        model.fit(no_melanoma, labels, groups=ids)
