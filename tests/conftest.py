"""Shared fixtures: the real datasets in ../shared/data and a per-session embedding store."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

DATA = Path(os.environ.get("MELAGBM_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))


@pytest.fixture(scope="session", autouse=True)
def _session_store(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep every embedding of the test session in one temporary store, not the user's."""
    os.environ["MELAGBM_CACHE"] = str(tmp_path_factory.mktemp("melagbm-cache"))


def _dataset(name: str, marker: str) -> Path:
    root = DATA / name
    if not (root / marker).exists():
        pytest.skip(f"real data not found: {root / marker} (set MELAGBM_DATA to the shared data folder)")
    return root


@pytest.fixture(scope="session")
def ham_root() -> Path:
    return _dataset("ham10000", "HAM10000_metadata.csv")


@pytest.fixture(scope="session")
def isic_root() -> Path:
    return _dataset("isic2020", "subset_metadata.csv")


@pytest.fixture(scope="session")
def ham_sample(ham_root: Path):
    """About 300 HAM10000 images drawn as whole lesions (about 11 % melanoma)."""
    from melagbm.datasets import load_ham10000

    return load_ham10000(ham_root, n_samples=300, random_state=0)
