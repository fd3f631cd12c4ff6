"""The architecture, enforced: lower stages never import higher ones, no import cycles, no private reaches.

Every ``import`` in melagbm counts, at module level or inside a function (a lazy import is still a
dependency). The layers follow the data: images -> features -> boosting and decision -> the model,
its evaluation and explanation -> plots and reports -> entry points (``docs/architecture.md``).
"""

from __future__ import annotations

import ast
from pathlib import Path

from melagbm._moved import MOVED_MODULES

PACKAGE = Path(__file__).resolve().parents[1] / "melagbm"

#: Lowest first. A module may import its own layer and the layers below, never above.
LAYERS = [
    ("shared helpers", {"melagbm._atomic", "melagbm._cores", "melagbm._versions", "melagbm._device", "melagbm._figures", "melagbm._checks",
                        "melagbm._progress", "melagbm._splits", "melagbm._warnings", "melagbm._resampling",
                        "melagbm.exceptions"}),
    ("images, stores and encoders", {"melagbm.images", "melagbm.store", "melagbm.backbones"}),
    ("features", {"melagbm.embedding", "melagbm.features", "melagbm.leakage"}),
    ("boosting and decision", {"melagbm.boosting", "melagbm.pooling", "melagbm.decision", "melagbm.referral",
                                 "melagbm.lone_lesions"}),
    ("model, evaluation, explanation", {"melagbm.classifier", "melagbm.pipeline", "melagbm.card",
                                        "melagbm.evaluation", "melagbm.explain",
                                        "melagbm.legacy_state", "melagbm.persistence"}),
    ("plots, reports, data", {"melagbm.evaluation.plots", "melagbm.evaluation.report", "melagbm.explain.plots",
                              "melagbm.explain.report", "melagbm.datasets"}),
    ("entry points and old paths", {"melagbm", "melagbm.cli", "melagbm.dask", "melagbm.serve", "melagbm.boosters",
                                    "melagbm._moved",
                                    *MOVED_MODULES}),
]


def _modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


MODULES = _modules()


def _layer(module: str) -> int:
    """The layer of a module, or of the package it belongs to (``melagbm.boosting._lightgbm``: boosting)."""
    candidates = [module] + [module.rsplit(".", depth)[0] for depth in range(1, module.count("."))]
    for name in candidates:
        for position, (_, members) in enumerate(LAYERS):
            if name in members:
                return position
    raise AssertionError(f"{module} is in no layer of tests/test_architecture.py: place it")


def _imports(module: str) -> list[tuple[str, list[str], int]]:
    """(imported melagbm module, imported names, line) for every import statement of ``module``."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                submodule = f"{target}.{alias.name}"
                found.append((submodule, [], node.lineno) if submodule in MODULES
                             else (target, [alias.name], node.lineno))
        elif isinstance(node, ast.Import):
            found += [(alias.name, [], node.lineno) for alias in node.names]
    return [(target, names, line) for target, names, line in found if target in MODULES and target != module]


GRAPH = {module: {target for target, _, _ in _imports(module)} for module in MODULES}


def test_every_module_has_a_layer() -> None:
    for module in MODULES:
        _layer(module)


def test_lower_stages_never_import_higher_ones() -> None:
    upward = [
        f"{module} ({LAYERS[_layer(module)][0]}) imports {target} ({LAYERS[_layer(target)][0]}), line {line}"
        for module in MODULES for target, _, line in _imports(module)
        if _layer(target) > _layer(module) and not target.startswith(module + ".")
    ]
    assert upward == []


def test_no_import_cycles() -> None:
    def reach(start: str) -> set[str]:
        seen, todo = set(), list(GRAPH[start])
        while todo:
            module = todo.pop()
            if module not in seen:
                seen.add(module)
                todo.extend(GRAPH[module])
        return seen

    packages = {module for module, path in MODULES.items() if path.name == "__init__.py"}
    cycles = sorted(
        f"{a} <-> {b}" for a in MODULES for b in reach(a)
        if a < b and a in reach(b) and not ({a, b} & packages and (b.startswith(a + ".") or a.startswith(b + ".")))
    )
    assert cycles == []


def test_no_private_name_is_used_across_modules() -> None:
    reaches = [
        f"{module} uses {target}.{name}, line {line}"
        for module in MODULES for target, names, line in _imports(module) for name in names
        if name.startswith("_") and not name.startswith("__")
    ]
    assert reaches == []
