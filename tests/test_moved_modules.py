"""Modules moved into the subpackages keep their old import paths for one release, with a DeprecationWarning."""

from __future__ import annotations

import importlib
import pickle
import sys

import pytest

from melagbm._moved import MOVED_MODULES


@pytest.mark.parametrize("old", sorted(MOVED_MODULES))
def test_old_path_warns_at_the_importers_line_and_is_the_new_module(old, monkeypatch) -> None:
    monkeypatch.delitem(sys.modules, old, raising=False)  # as on a first import
    namespace: dict = {}
    with pytest.warns(DeprecationWarning, match=f"{old} moved to {MOVED_MODULES[old]}") as caught:
        exec(compile(f"import {old} as module", __file__, "exec"), namespace)  # a user's import statement
    assert namespace["module"] is importlib.import_module(MOVED_MODULES[old])
    assert caught[0].filename == __file__


def test_names_and_pickles_under_an_old_path_resolve() -> None:
    from melagbm.features.lesion import LesionFeatures

    with pytest.warns(DeprecationWarning):
        sys.modules.pop("melagbm.lesion", None)
        from melagbm.lesion import LesionFeatures as old  # private names too
        from melagbm.lesion import _measure

    assert old is LesionFeatures and callable(_measure)
    written_by_0_1 = pickle.dumps(LesionFeatures(pixel_spacing_mm=0.05), protocol=0).replace(
        b"melagbm.features.lesion", b"melagbm.lesion")
    assert b"cmelagbm.lesion\nLesionFeatures" in written_by_0_1
    assert pickle.loads(written_by_0_1).pixel_spacing_mm == 0.05


def test_the_new_module_keeps_its_own_spec_after_an_old_import() -> None:
    import importlib

    import melagbm.evaluation.plots as plots

    with pytest.warns(DeprecationWarning):
        sys.modules.pop("melagbm.plotting", None)
        importlib.import_module("melagbm.plotting")
    assert plots.__spec__.name == "melagbm.evaluation.plots"
    assert importlib.reload(plots) is plots and plots.__name__ == "melagbm.evaluation.plots"
