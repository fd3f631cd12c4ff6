"""Reading images given as paths, bytes or arrays, and hashing their content."""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Sequence
from typing import Any, Union

import numpy as np
from PIL import Image, ImageOps

__all__ = ["ImageLike", "ImageReadError", "as_image_list", "content_hash", "describe", "read_image"]

ImageLike = Union[str, os.PathLike, bytes, np.ndarray, Image.Image]


class ImageReadError(ValueError):
    """An image could not be read; the message names the row and the file."""


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


def read_image(item: ImageLike, row: Any = None) -> Image.Image:
    """Decode one image to an RGB PIL image, honouring EXIF orientation.

    Raises
    ------
    ImageReadError
        Naming ``row`` and the file when the image is missing or cannot be decoded.
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
        image.load()
        image = ImageOps.exif_transpose(image)
        return image.convert("RGB")
    except ImageReadError:
        raise
    except Exception as exc:  # PIL raises many types for corrupt input
        raise _fail(item, row, str(exc) or type(exc).__name__) from exc


def content_hash(item: ImageLike, row: Any = None) -> str:
    """SHA-256 (hex) of an image's encoded bytes, or of an array's pixels and shape."""
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
