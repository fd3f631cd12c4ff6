"""One hierarchy: every error and warning melagbm defines lives in melagbm.exceptions, under one base each."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import melagbm
from melagbm import exceptions
from melagbm._moved import MOVED_MODULES


def _melagbm_modules():
    for info in pkgutil.walk_packages(melagbm.__path__, "melagbm."):
        if info.name != "melagbm.boosters" and info.name not in MOVED_MODULES:  # old paths warn on import
            yield importlib.import_module(info.name)


def test_every_error_and_warning_is_defined_in_one_place() -> None:
    defined = {
        f"{module.__name__}.{name}" for module in _melagbm_modules()
        for name, obj in vars(module).items()
        if inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__ == module.__name__
    }
    assert defined == {f"melagbm.exceptions.{name}" for name in exceptions.__all__}


@pytest.mark.parametrize("name", exceptions.__all__)
def test_each_has_the_common_base_and_keeps_its_builtin_one(name) -> None:
    cls = getattr(exceptions, name)
    base = exceptions.MelagbmWarning if issubclass(cls, Warning) else exceptions.MelagbmError
    assert issubclass(cls, base)
    builtin = {"ImageReadError": ValueError, "LabelLeakError": ValueError, "ModelFileError": ValueError,
               "BackboneUnavailableError": RuntimeError}
    if name in builtin:  # ``except ValueError`` written before the hierarchy still catches them
        assert issubclass(cls, builtin[name])


def test_old_import_paths_give_the_same_classes() -> None:
    from melagbm.classifier import DuplicateImageWarning, UngroupedFitWarning
    from melagbm.embedding import BadImageWarning
    from melagbm.features.metadata import UnseenCategoryWarning
    from melagbm.images import ImageReadError
    from melagbm.store import CorruptEntryWarning

    assert (ImageReadError, BadImageWarning, UnseenCategoryWarning, CorruptEntryWarning, DuplicateImageWarning,
            UngroupedFitWarning, melagbm.ModelFileError) == (
        exceptions.ImageReadError, exceptions.BadImageWarning, exceptions.UnseenCategoryWarning,
        exceptions.CorruptEntryWarning, exceptions.DuplicateImageWarning, exceptions.UngroupedFitWarning,
        exceptions.ModelFileError)
