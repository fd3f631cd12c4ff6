"""Old module paths that keep working for one release, with a DeprecationWarning."""

from __future__ import annotations

import importlib
import sys
import warnings

__all__ = ["MOVED_MODULES", "moved_module"]

#: Old module path -> where the module lives now (the old paths go in the next release).
MOVED_MODULES = {
    "melagbm.decoding": "melagbm.images.decoding",
    "melagbm.derm_xception": "melagbm.backbones.derm_xception",
    "melagbm.image_signal": "melagbm.features.image_score",
    "melagbm.lesion": "melagbm.features.lesion",
    "melagbm.metadata": "melagbm.features.metadata",
    "melagbm.patient": "melagbm.features.patient",
    "melagbm.explain_plots": "melagbm.explain.plots",
    "melagbm.explain_report": "melagbm.explain.report",
    "melagbm.plotting": "melagbm.evaluation.plots",
    "melagbm.report": "melagbm.evaluation.report",
}


def moved_module(old: str) -> None:
    """Make module ``old`` (being imported) its new module, warning that the old path goes next release.

    Every name of the new module, private ones too, is reachable through ``old``, and an object pickled
    under the old path still finds its class.
    """
    new = MOVED_MODULES[old]
    warnings.warn(
        f"{old} moved to {new}; the old path goes in the next release: import from {new}",
        DeprecationWarning,
        stacklevel=3,  # this function, the old module's body, then (import machinery skipped) the importer
    )
    sys.modules[old] = importlib.import_module(new)
