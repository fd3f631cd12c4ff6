"""Shared fixtures: the real datasets in ../shared/data and a per-session embedding store."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

DATA = Path(os.environ.get("MELAGBM_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))


if os.environ.get("PYTEST_XDIST_WORKER"):
    # Two workers share the cores: one BLAS/OpenMP thread each, here and in the processes a test starts. Threads
    # that busy-wait for a core the other worker holds make an SVD 10x slower than one thread does.
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(variable, "1")
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)


@pytest.fixture(scope="session", autouse=True)
def _session_store(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep every embedding of the test session in one temporary store, not the user's: one store for all the
    session's pytest-xdist workers (writes are atomic and content-addressed, so none undoes another's)."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the run's folder, above each worker's own
    store = root / "melagbm-cache"
    store.mkdir(exist_ok=True)
    os.environ["MELAGBM_CACHE"] = str(store)


@pytest.fixture(autouse=True)
def _few_probe_partitions(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """At most 2 averaged probe partitions outside test_stability.py, to keep CI within its time budget.

    ``n_seeds`` averages up to 20 fold partitions of the image probe on small data (MAX_REPEATS): on the
    few hundred rows a test fits that is 100 probe fits per fit, minutes per module. test_stability.py
    tests the real cap; everywhere else 2 partitions exercise the same averaging code.
    """
    if request.module.__name__.endswith("test_stability"):
        return
    from melagbm.features import image_score

    monkeypatch.setattr(image_score, "MAX_REPEATS", 2)


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
def bcn_root() -> Path:
    return _dataset("bcn20000", "bcn20000_metadata.csv")


@pytest.fixture(scope="session")
def ham_sample(ham_root: Path):
    """About 300 HAM10000 images drawn as whole lesions (about 11 % melanoma)."""
    from melagbm.datasets import load_ham10000

    return load_ham10000(ham_root, n_samples=300, random_state=0)


@pytest.fixture(scope="session")
def isic_model_file(isic_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved model fitted on about 400 ISIC 2020 images (whole patients, so with patient context), or the
    model file ``$MELAGBM_ISIC_MODEL`` names (benchmarks/service.py saves one fitted on all 2,701)."""
    if os.environ.get("MELAGBM_ISIC_MODEL"):
        return Path(os.environ["MELAGBM_ISIC_MODEL"])
    from melagbm import FusionClassifier
    from melagbm.datasets import load_isic2020

    X, y, groups = load_isic2020(isic_root, n_samples=400, random_state=0)
    model = FusionClassifier(backbone="tf_efficientnet_lite0", n_seeds=1, verbose=0).fit(X, y, groups=groups)
    path = tmp_path_factory.mktemp("isic-model") / "isic.melagbm"
    model.save(path)
    return path


@pytest.fixture(scope="session")
def ham_model(ham_sample):
    """The default FusionClassifier fitted on ``ham_sample``, shared by the modules that test it as it is (a test
    that changes it puts it back)."""
    from melagbm import FusionClassifier

    X, y, groups = ham_sample
    return FusionClassifier(random_state=0).fit(X, y, groups=groups)


#: Fixtures that read ../shared/data: a test using one (directly or through another fixture) is marked
#: ``real_data``; ``-m "not real_data"`` runs the tier that needs no data.
REAL_DATA_FIXTURES = frozenset({"ham_root", "isic_root", "bcn_root"})
#: Session fixtures that cost a fit: every module using one runs on the same pytest-xdist worker, so it is fitted once.
SHARED_FIT_FIXTURES = ("ham_model", "isic_model_file")


#: The longest groups of modules (minutes on 2 cores), started first so that both pytest-xdist workers finish
#: together; the rest follow in collection order. Refresh from ``python -m pytest -n 0 --durations=0``.
LONGEST_FIRST = ("ham_model", "test_dask", "test_cli", "isic_model_file", "test_notebook")


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    group_of_module: dict[str, str] = {}
    for item in items:
        if REAL_DATA_FIXTURES.intersection(item.fixturenames):
            item.add_marker(pytest.mark.real_data)
        for fixture in SHARED_FIT_FIXTURES:
            if fixture in item.fixturenames:
                group_of_module[item.module.__name__] = fixture
    groups = {item: group_of_module.get(item.module.__name__, item.module.__name__) for item in items}
    for item, group in groups.items():  # a module's tests stay together (its module fixtures are made once)
        item.add_marker(pytest.mark.xdist_group(group))
    rank = {group: position for position, group in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(groups[item], len(rank)))  # stable: the rest keep their order
