"""Every public name in the API reference has a numpydoc docstring that documents its parameters.

The names are those ``docs/api/index.rst`` lists, and for classes their public methods and properties
defined in melagbm; the checks are the ones ``docs/conf.py`` gives numpydoc (the docs build fails on them too).
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NAMES = re.findall(r"^   (melagbm[\w.]+)$", (ROOT / "docs" / "api" / "index.rst").read_text(), flags=re.M)


def _checks() -> set[str]:
    source = (ROOT / "docs" / "conf.py").read_text()
    return set(ast.literal_eval(source.split("numpydoc_validation_checks = ", 1)[1].split("\n", 1)[0]))


def _resolve(name: str):
    module, _, attribute = name.rpartition(".")
    try:
        return getattr(importlib.import_module(module), attribute)
    except ModuleNotFoundError:
        return getattr(_resolve(module), attribute)


def _documented() -> list[str]:
    names = []
    for name in NAMES:
        names.append(name)
        obj = _resolve(name)
        if inspect.isclass(obj):
            for member, value in vars(obj).items():
                if member.startswith("_") or not (inspect.isfunction(value) or isinstance(value, (property,
                                                                                                staticmethod,
                                                                                                classmethod))):
                    continue
                names.append(f"{name}.{member}")
    return names


@pytest.mark.parametrize("name", _documented())
def test_public_name_has_a_numpydoc_docstring(name) -> None:
    validate = pytest.importorskip("numpydoc.validate").validate
    errors = [f"{code}: {message}" for code, message in validate(name)["errors"] if code in _checks()]
    assert errors == []
