"""The versions of melagbm and the libraries a model depends on, as model files and model cards record them."""

from __future__ import annotations

from importlib import metadata as importlib_metadata

__all__ = ["library_versions"]

_LIBRARIES = ("melagbm", "lightgbm", "xgboost", "scikit-learn", "numpy", "pandas", "timm", "torch", "openvino")


def library_versions() -> dict[str, str | None]:
    """The installed versions of melagbm and the libraries a model depends on (None: not installed)."""
    versions: dict[str, str | None] = {}
    for name in _LIBRARIES:
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            versions[name] = None
    return versions
