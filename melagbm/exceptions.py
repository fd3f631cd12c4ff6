"""Every error and warning melagbm raises, under one base each: ``except MelagbmError`` catches them all.

Each also keeps the built-in base it always had (``ImageReadError`` is a ``ValueError``, ...), so
existing ``except ValueError`` code keeps working. The classes are re-exported where they are raised
(``melagbm.images.ImageReadError``, ...) and the common ones from ``melagbm`` itself.
"""

from __future__ import annotations

__all__ = [
    "BackboneUnavailableError",
    "BadImageWarning",
    "CorruptEntryWarning",
    "DuplicateImageWarning",
    "FieldError",
    "EncoderLeakageWarning",
    "ImageReadError",
    "LabelLeakError",
    "MelagbmDeprecationWarning",
    "MelagbmError",
    "MelagbmWarning",
    "ModelFileError",
    "RequestTooLargeError",
    "RestrictedLicenseWarning",
    "UngroupedFitWarning",
    "UnseenCategoryWarning",
    "UsageError",
    "WeakModelWarning",
]


class MelagbmError(Exception):
    """Base of every error melagbm raises on purpose (its message names the row, column, field or file)."""


class MelagbmWarning(UserWarning):
    """Base of every warning melagbm gives (attributed to the user's line, not melagbm's)."""


# -- errors -------------------------------------------------------------------------------
class ImageReadError(MelagbmError, ValueError):
    """An image could not be read; the message names the row and the file."""


class BackboneUnavailableError(MelagbmError, RuntimeError):
    """Pretrained weights for a backbone could not be found or loaded."""


class LabelLeakError(MelagbmError, ValueError):
    """A metadata column gives the label away; it would make every score look perfect."""


class ModelFileError(MelagbmError, ValueError):
    """A model file is damaged, tampered with, or from an unsupported version."""


class FieldError(MelagbmError, ValueError):
    """A field of a service request that cannot be used; ``location`` names it (``("lesions", 2, "image")``)."""

    def __init__(self, location: tuple, message: str) -> None:
        super().__init__(message)
        self.location = location


class RequestTooLargeError(MelagbmError):
    """A service request's body grew past the size limit while it was read (answered with 413)."""


class UsageError(MelagbmError):
    """A mistake in a command's input that the user can fix (the command line prints it as one line, exit 2)."""


# -- warnings -----------------------------------------------------------------------------
class MelagbmDeprecationWarning(MelagbmWarning, DeprecationWarning, FutureWarning):
    """A name melagbm renamed: the old one works for one more release. A ``FutureWarning`` too, so tools that
    read every fitted attribute (scikit-learn's HTML display) can silence it as they do scikit-learn's own."""


class BadImageWarning(MelagbmWarning):
    """Images that could not be read were skipped (``on_bad_image="skip"``); the message lists them."""


class DuplicateImageWarning(MelagbmWarning):
    """The same image (identical bytes) appears in more than one row of the training data."""


class UngroupedFitWarning(MelagbmWarning):
    """fit had no groups, so its internal splits treat rows as independent, but X has an id-like column."""


class UnseenCategoryWarning(MelagbmWarning):
    """A categorical value at predict time was not seen at fit; it is treated as unknown."""


class EncoderLeakageWarning(MelagbmWarning):
    """An encoder's weights were trained on the images a model is fitted on: its scores are not a fair estimate."""


class RestrictedLicenseWarning(MelagbmWarning):
    """A backbone's weights are under a non-commercial licence (the fit log and the saved model say so too)."""


class WeakModelWarning(MelagbmWarning):
    """A fitted model barely separates the classes, or its threshold would refer most lesions (the model card and
    the clinic page show the same line first)."""


class CorruptEntryWarning(MelagbmWarning):
    """A stored vector failed its checksum or could not be decoded; it will be recomputed."""
