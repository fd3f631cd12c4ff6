"""Deprecated: moved to :mod:`melagbm.explain.plots`; this path goes in the next release."""

from ._moved import moved_module

moved_module(__name__)
