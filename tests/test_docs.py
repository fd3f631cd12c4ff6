"""The README's quickstart and the docstring examples run as written."""

from __future__ import annotations

import doctest
import re
from pathlib import Path

import pytest

import melagbm.classifier
import melagbm.embedding.embedder
import melagbm.features.lesion
import melagbm.features.metadata
import melagbm.images.colour
import melagbm.store.embedding_store

ROOT = Path(__file__).resolve().parents[1]


def test_readme_quickstart_runs() -> None:
    readme = (ROOT / "README.md").read_text()
    blocks = [b for b in re.findall(r"```python\n(.*?)```", readme, flags=re.S) if "make_synthetic(" in b]
    assert blocks, "README lost its quickstart"
    namespace: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    assert namespace["clf"].predict_proba(namespace["X"].head()).shape == (5, 2)


@pytest.mark.parametrize("module", [melagbm.features.metadata, melagbm.embedding.embedder, melagbm.classifier,
                                    melagbm.images.colour,
                                    melagbm.store.embedding_store, melagbm.features.lesion])
def test_docstring_examples(module) -> None:
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
