"""Stage 1, images: reading an image given as a path, bytes, an array or a PIL image, and hashing its content.

``melagbm.images.decoding`` batches JPEG decoding with torchvision (nvJPEG on a GPU).
"""

from .reading import MAX_IMAGE_PIXELS, ImageLike, ImageReadError, as_image_list, content_hash, describe, read_image

__all__ = ["MAX_IMAGE_PIXELS", "ImageLike", "ImageReadError", "as_image_list", "content_hash", "describe",
           "read_image"]
