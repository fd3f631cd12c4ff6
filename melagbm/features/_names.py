"""Column names of melagbm 0.1 (before every column was ``family__feature``), and their names now."""

from __future__ import annotations

__all__ = ["current_name"]

_RENAMED = {"age": "age__years", "sex": "sex__category", "site": "site__general"}
_RENAMED_PREFIXES = {"meta__": "metadata__", "patient__": "patient_context__"}


def current_name(name: str) -> str:
    """The name today of a booster column that melagbm 0.1 called ``name`` (unchanged when it kept its name)."""
    if name in _RENAMED:
        return _RENAMED[name]
    for old, new in _RENAMED_PREFIXES.items():
        if name.startswith(old):
            return new + name[len(old):]
    return name
