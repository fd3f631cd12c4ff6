"""Reading images given as paths, bytes or arrays, and hashing their content."""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Sequence
from typing import Any, Union

import numpy as np
from PIL import Image, ImageOps

from ..exceptions import ImageReadError

__all__ = [
    "MAX_IMAGE_PIXELS", "ImageLike", "ImageReadError", "as_image_list", "content_hash", "describe", "read_image",
]

ImageLike = Union[str, os.PathLike, bytes, np.ndarray, Image.Image]


def describe(item: Any) -> str:
    """A short human name for an image item, for error messages."""
    if isinstance(item, (str, os.PathLike)):
        return f"file {os.fspath(item)!r}"
    if isinstance(item, (bytes, bytearray)):
        return f"{len(item)} bytes"
    if isinstance(item, np.ndarray):
        return f"array of shape {item.shape}"
    return type(item).__name__


def _fail(item: Any, row: Any, reason: str) -> ImageReadError:
    where = f"row {row!r}: " if row is not None else ""
    return ImageReadError(f"{where}cannot read image ({describe(item)}): {reason}")


def _array_to_pil(array: np.ndarray) -> Image.Image:
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise ValueError(f"expected an H x W (x 1|3|4) array, got shape {array.shape}")
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    if array.dtype != np.uint8:
        if np.issubdtype(array.dtype, np.floating) and array.size and float(np.nanmax(array)) <= 1.0:
            array = array * 255.0
        array = np.clip(array, 0, 255).astype(np.uint8)
    return Image.fromarray(np.ascontiguousarray(array[:, :, :3]))


#: Images with more pixels are refused as possible decompression bombs (Pillow's warning level).
MAX_IMAGE_PIXELS = int(Image.MAX_IMAGE_PIXELS or 89_478_485)


def _to_rgb(image: Image.Image) -> Image.Image:
    """RGB with 8 bits per channel: 16/32-bit and float grey are rescaled, not clipped."""
    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        values = np.asarray(image, dtype=np.float64)
        finite = values[np.isfinite(values)]
        top = float(finite.max()) if finite.size else 0.0
        if image.mode.startswith("I;16") or 255 < top <= 65535:
            values = values / 257.0
        elif top > 65535 or (image.mode == "F" and 0 < top <= 1.0):
            low = float(finite.min())
            values = (values - low) / max(top - low, 1e-12) * 255.0
        grey = np.clip(np.nan_to_num(values), 0, 255).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        return image.convert("RGBA").convert("RGB")
    return image.convert("RGB")


def read_image(item: ImageLike, row: Any = None) -> Image.Image:
    """Decode one image to an 8-bit RGB PIL image, honouring EXIF orientation.

    Grey, palette, CMYK, RGBA and 16-bit images are converted (16-bit rescaled);
    images above :data:`MAX_IMAGE_PIXELS` are refused before they are decoded.

    Parameters
    ----------
    item : path, bytes, ndarray or PIL image
        The image; an array is H x W (x 1, 3 or 4), floats at most 1 taken as the 0-1 scale.
    row : object, default=None
        The row label named in the error message.

    Returns
    -------
    image : PIL.Image.Image
        The image in mode "RGB".

    Raises
    ------
    ImageReadError
        Naming ``row`` and the file when the image is missing, not an image,
        truncated, corrupt or too large.
    """
    try:
        if isinstance(item, Image.Image):
            image = item
        elif isinstance(item, np.ndarray):
            return _array_to_pil(item)
        elif isinstance(item, (bytes, bytearray)):
            image = Image.open(io.BytesIO(item))
        elif isinstance(item, (str, os.PathLike)):
            if not os.path.isfile(item):
                raise _fail(item, row, "no such file")
            image = Image.open(item)
        else:
            raise _fail(item, row, "expected a path, bytes, a numpy array or a PIL image")
        width, height = image.size
        if width * height > MAX_IMAGE_PIXELS:
            raise _fail(
                item, row, f"{width} x {height} pixels exceeds the limit of {MAX_IMAGE_PIXELS} "
                "(a decompression bomb, or an image far larger than dermoscopy needs)",
            )
        if width == 0 or height == 0:
            raise _fail(item, row, "the image has no pixels")
        image.load()
        image = ImageOps.exif_transpose(image)
        return _to_rgb(image)
    except ImageReadError:
        raise
    except Exception as exc:  # PIL raises many types for corrupt input
        raise _fail(item, row, str(exc) or type(exc).__name__) from exc


def content_hash(item: ImageLike, row: Any = None) -> str:
    """SHA-256 (hex) of an image's encoded bytes, or of an array's pixels and shape.

    Parameters
    ----------
    item : path, bytes, ndarray or PIL image
        The image; a file is hashed as stored, not decoded.
    row : object, default=None
        The row label named in the error message.

    Returns
    -------
    digest : str
        64 hexadecimal characters.

    Raises
    ------
    ImageReadError
        Naming ``row`` and the file when a file cannot be read or ``item`` is of another type.
    """
    digest = hashlib.sha256()
    if isinstance(item, (str, os.PathLike)):
        try:
            with open(item, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
        except OSError as exc:
            raise _fail(item, row, exc.strerror or str(exc)) from exc
    elif isinstance(item, (bytes, bytearray)):
        digest.update(item)
    elif isinstance(item, (np.ndarray, Image.Image)):
        array = np.ascontiguousarray(np.asarray(item))
        digest.update(f"array:{array.dtype.str}:{array.shape}".encode())
        digest.update(array.tobytes())
    else:
        raise _fail(item, row, "expected a path, bytes, a numpy array or a PIL image")
    return digest.hexdigest()


def as_image_list(images: Any) -> tuple[list[Any], list[Any]]:
    """Turn a Series, one-column frame, list or array of images into (items, row labels)."""
    import pandas as pd

    if isinstance(images, pd.DataFrame):
        if images.shape[1] != 1:
            raise ValueError(
                f"expected a single column of images, got columns {list(images.columns)}"
            )
        images = images.iloc[:, 0]
    if isinstance(images, pd.Series):
        return list(images.to_numpy(dtype=object)), list(images.index)
    if isinstance(images, (str, bytes, os.PathLike)):
        raise TypeError("expected a sequence of images, got a single item; wrap it in a list")
    if isinstance(images, np.ndarray) and images.dtype != object and images.ndim in (3, 4):
        items = list(images)  # a stack of arrays
    elif isinstance(images, (Sequence, np.ndarray)):
        items = list(images)
    else:
        raise TypeError(f"expected a sequence of images, got {type(images).__name__}")
    return items, list(range(len(items)))
