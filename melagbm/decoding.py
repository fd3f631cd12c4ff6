"""Deprecated: moved to :mod:`melagbm.images.decoding`; this path goes in the next release."""

from ._moved import moved_module

moved_module(__name__)
