"""Warnings that point at the user's line, not at melagbm's or scikit-learn's internals."""

from __future__ import annotations

import os
import sys
import warnings

__all__ = ["user_stacklevel", "warn"]

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def _library_dirs() -> tuple[str, ...]:
    """Folders whose frames a warning skips: melagbm itself and the wrappers that call into it."""
    dirs = [_PACKAGE_DIR]
    for name in ("sklearn", "joblib", "dask", "distributed"):
        module = sys.modules.get(name)
        if module is not None and getattr(module, "__file__", None):
            dirs.append(os.path.dirname(os.path.abspath(module.__file__)))
    return tuple(d + os.sep for d in dirs)


def user_stacklevel() -> int:
    """The ``stacklevel`` of the first frame outside melagbm, scikit-learn and joblib (for ``warnings.warn``)."""
    skipped = _library_dirs()
    frame = sys._getframe(1)  # the caller of this function, who passes the level on to warnings.warn
    level = 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(skipped):
        frame = frame.f_back
        level += 1
    return level


def warn(message: str, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn`` attributed to the user's own line (the first frame outside the libraries)."""
    warnings.warn(message, category, stacklevel=user_stacklevel())
