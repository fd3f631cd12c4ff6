"""Old module paths that keep working for one release, with a DeprecationWarning (no file at the old path)."""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
import warnings

__all__ = ["MOVED_MODULES", "MovedModuleFinder", "install"]

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
    "melagbm.serve.load": "melagbm.serve.load_testing",  # a load-test client, not melagbm.load (which loads models)
}


class MovedModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds each old module path of :data:`MOVED_MODULES` and gives the module at its new path, warning.

    Every name of the new module, private ones too, is reachable through the old path, and an object
    pickled under the old path still finds its class.
    """

    def find_spec(
        self, fullname: str, path: object = None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        """The spec of an old path (None for every other module)."""
        return importlib.util.spec_from_loader(fullname, self) if fullname in MOVED_MODULES else None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        """The module at the new path, after a DeprecationWarning at the importer's line."""
        new = MOVED_MODULES[spec.name]
        warnings.warn(
            f"{spec.name} moved to {new}; the old path goes in the next release: import from {new}",
            DeprecationWarning,
            stacklevel=2,  # the import machinery's frames are skipped: the importer's line
        )
        module = importlib.import_module(new)
        self._own_specs = {**getattr(self, "_own_specs", {}), new: module.__spec__}
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        """Nothing to run (the new module ran when it was imported); give it back its own spec, which the import
        machinery replaced with the old path's."""
        module.__spec__ = self._own_specs[module.__name__]


def install() -> None:
    """Put the finder on ``sys.meta_path`` once."""
    if not any(isinstance(finder, MovedModuleFinder) for finder in sys.meta_path):
        sys.meta_path.append(MovedModuleFinder())
