"""JPEG decoding with torchvision (nvJPEG on a GPU) and timm's preprocessing on decoded tensors.

On a GPU the DataLoader workers only read the compressed bytes; the batch is decoded by
``torchvision.io.decode_jpeg`` on the device and preprocessed there, so the host's cores do
not set the pace. Images that are not plain 8-bit RGB/greyscale JPEGs within the pixel limit,
or that torchvision cannot decode, go through :func:`melagbm.images.read_image` on the CPU.
"""

from __future__ import annotations

import io
import logging
import os
from pathlib import Path
from typing import Any

from PIL import Image

from . import reading

__all__ = ["JPEG_DECODING", "decode_jpeg_batch", "plain_jpeg_bytes", "tensor_transform"]

_logger = logging.getLogger(__name__)

#: Where JPEGs are decoded: "auto" (torchvision on a CUDA device, PIL on the CPU), "pil", "torchvision".
JPEG_DECODING = ("auto", "pil", "torchvision")

_JPEG_MAGIC, _JPEG_END = b"\xff\xd8\xff", b"\xff\xd9"
_ORIENTATION = 0x0112  # EXIF tag
_TO_TENSOR_STEPS = ("ToTensor", "MaybeToTensor", "PILToTensor", "MaybePILToTensor")


def plain_jpeg_bytes(item: Any) -> bytes | None:
    """The file's bytes when ``item`` (a path or bytes) is a complete, upright (no EXIF rotation) 8-bit RGB
    or greyscale JPEG within the pixel limit; None for anything else (decoded by PIL instead). Reads only
    the header to decide."""
    try:
        if isinstance(item, (bytes, bytearray, memoryview)):
            data = bytes(item)
        elif isinstance(item, (str, os.PathLike)):
            data = Path(item).read_bytes()
        else:
            return None
        if not data.startswith(_JPEG_MAGIC) or not data.rstrip(b"\x00\r\n ").endswith(_JPEG_END):
            return None  # not a JPEG, or truncated: PIL's path decides and names the row
        with Image.open(io.BytesIO(data)) as image:
            plain = image.format == "JPEG" and image.mode in ("RGB", "L")
            upright = image.getexif().get(_ORIENTATION, 1) == 1  # nvJPEG ignores EXIF orientation: PIL turns it
            return data if plain and upright and image.width * image.height <= reading.MAX_IMAGE_PIXELS else None
    except (OSError, ValueError, Image.DecompressionBombError):
        return None  # PIL's path reports it, naming the row


def _to_unit_float(tensor: Any) -> Any:
    return tensor.float().div_(255.0)


def tensor_transform(transform: Any) -> Any | None:
    """timm's eval transform rebuilt for uint8 CHW tensors on any device (resize and crop on uint8,
    then a /255 float conversion where PIL's ToTensor stood); None when a step only takes PIL images."""
    import torch
    from torchvision import transforms

    steps = [_to_unit_float if type(step).__name__ in _TO_TENSOR_STEPS else step for step in transform.transforms]
    rebuilt = transforms.Compose(steps)
    try:
        rebuilt(torch.zeros((3, 37, 53), dtype=torch.uint8))
    except (TypeError, AttributeError, ValueError):
        return None
    return rebuilt


def decode_jpeg_batch(blobs: list[bytes], device: Any) -> list[Any | None]:
    """Decode JPEG bytes to uint8 RGB CHW tensors on ``device``: in one call, else (when that fails, out
    of memory included) one by one. None for each image torchvision cannot decode (PIL's path takes it).

    Parameters
    ----------
    blobs : list of bytes
        Complete JPEG files (as ``plain_jpeg_bytes`` returns them).
    device : str or torch.device
        Where to decode ("cuda" uses nvJPEG).

    Returns
    -------
    images : list of torch.Tensor or None
        One uint8 tensor of shape (3, height, width) per blob, or None.
    """
    import torch
    from torchvision.io import ImageReadMode, decode_jpeg

    encoded = [torch.frombuffer(bytearray(blob), dtype=torch.uint8) for blob in blobs]
    try:
        return list(decode_jpeg(encoded, mode=ImageReadMode.RGB, device=device))
    except RuntimeError as exc:
        _logger.warning("torchvision could not decode a batch of %d JPEGs on %s (%s); retrying one by one",
                        len(blobs), device, str(exc).splitlines()[0][:200])
    decoded: list[Any | None] = []
    for one in encoded:
        try:
            decoded.append(decode_jpeg(one, mode=ImageReadMode.RGB, device=device))
        except RuntimeError:
            decoded.append(None)
    return decoded
