"""The benchmark scripts: each runs on a tiny input (marker ``benchmark``: ``python -m pytest -m benchmark``, CI
runs it), and every one reaches melagbm by its public names only (a static check, in the default run)."""

from __future__ import annotations

import ast
import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPTS = sorted(path.stem for path in BENCHMARKS.glob("*.py") if path.stem != "_common")
#: Seconds a tiny run may take before it is stopped (each takes well under a minute on 2 cores).
TIMEOUT_SECONDS = 240


@dataclass(frozen=True)
class TinyRun:
    """A script's tiny arguments (``{tmp}``: a temporary folder), the data sets it reads, the patterns its standard
    output must contain (regular expressions, multiline) and the modules it needs beyond melagbm's dependencies."""

    arguments: tuple[str, ...]
    expected: tuple[str, ...]
    datasets: tuple[str, ...] = ("isic",)
    needs: tuple[str, ...] = ()


def row(*cells: str) -> str:
    """A pattern for a markdown table row starting with these cells (escaped)."""
    return r"^\| " + r" \| ".join(re.escape(cell) for cell in cells) + r" \|"


#: script -> its tiny run, the longest first (so that two pytest-xdist workers finish together).
TINY_RUNS: dict[str, TinyRun] = {
    "scaling": TinyRun(("--sizes", "80", "--cold-sizes", "80", "--latency-images", "3", "--no-ham"),
                       (row("cold (SIIM-ISIC 2020)", "80"), row("warm (SIIM-ISIC 2020)", "80"),
                        r"predict_proba on one new image \(cold store, model warm; 2 SIIM-ISIC 2020 images")),
    "dask_scaling": TinyRun(("--n", "50", "--workers", "1", "--n-seeds", "1"),
                            (row("single process (FusionClassifier)"),
                             row("Dask, 1 worker(s) x 1 thread (DaskFusionClassifier)")),
                            needs=("distributed",)),
    "store": TinyRun(("--n-images", "80"),
                     (r"cold/warm ratio: .*\(same predictions: True\)", r"look-up of 80 vectors")),
    "throughput": TinyRun(("--n", "8", "--batch-size", "4", "--rounds", "5", "--forward-sizes", "4"),
                          (row("(a) naive loop, CPU, one image per forward"), r"^\| CPU \(\d+ cores\) \| [\d.]+ s \|",
                           r"^\| GPU \| no CUDA device here|CUDA path stage by stage")),
    "reports": TinyRun(("--datasets", "ham", "--ham-n", "80", "--bootstrap", "20", "--out", "{tmp}"),
                       (r"^\[evaluate: exit 0", r"^\[explain: exit 0", r"^ham: .*evaluate/roc\.png"),
                       datasets=("ham",)),
    "lone_lesions": TinyRun(("--patients", "5", "--melanoma-patients", "4", "--folds", "2"),
                            (r"^alone \(lone-lesion model, the default\) +\d\.\d{4} \[",
                             r"^no context +\d\.\d{4} \[")),
    "sharing": TinyRun(("--images", "8"),
                       (row("embedding, PyTorch on every core (before)"),
                        row("embedding, PyTorch on the free cores (runtime='torch')"), row("lesion measuring"))),
    "service": TinyRun(("--n-images", "80", "--model", "{tmp}/tiny.melagbm", "--results", "{tmp}", "--settings",
                        "batching", "--clients", "2", "--seconds", "3", "--latency-requests", "2"),
                       (r"^2 requests: median \d+ ms",
                        row("micro-batching (--max-batch 32)") + r" [\d.]+ \| \d+ \| \d+ \| \d+ \| 0 \|",
                        r"^## Bad requests"),
                       needs=("fastapi", "uvicorn")),
    "stability": TinyRun(("--only", "default,single-seed", "--grouped-only", "--lesions", "100", "--seeds", "2"),
                         (row("the default model", "random_state 0-1, groups"),
                          r"^- single-seed - default, mean test ROC AUC over random_state 0-1 with groups"),
                         datasets=("ham",)),
    "readme_real_data": TinyRun(("--n-samples", "80"),
                                (r"^>>> clf = FusionClassifier\(\)\.fit\(X, y, groups=groups\)",
                                 r"^\('patient_id', \d+\)$"),
                                datasets=("ham", "isic")),
    "card_coverage": TinyRun(("--label", "tiny", "--datasets", "isic", "--splits", "1", "--patients", "5",
                              "--results", "{tmp}"),
                             (r"^isic split 0: \d+ training melanomas", r"^tiny +isic +sensitivity +1 ")),
    "cold_fit": TinyRun(("--n-images", "100"),
                        (row("**whole cold fit**"), r"^test ROC AUC \(the other 20 %\): this checkout \d\.\d{4}")),
    "explain": TinyRun(("--boosters", "lightgbm", "--n", "20", "--images", "80"),
                       (r"^\| lightgbm \(\d+ trees\) \| \d+ \|",), datasets=("ham",)),
    "cpu_runtimes": TinyRun(("--images", "8", "--backbones", "tf_efficientnet_lite0", "--no-compile",
                             "--threads", "1"),
                            (row("tf_efficientnet_lite0", "PyTorch eager (runtime='torch')"),
                             r"^roofline on 1 threads: float32 matrix product")),
    "views": TinyRun(("--datasets", "ham", "--images", "80",
                      "--views", "tf_efficientnet_lite0,tf_efficientnet_lite0@224"),
                     (row("tf_efficientnet_lite0@224") + r" \d+ \| \d\.\d{4} \|",), datasets=("ham",)),
    "backbones": TinyRun(("--n", "4", "--backbones", "tf_efficientnet_lite0", "--tta", "none"),
                         (row("tf_efficientnet_lite0", "none") + r" \d+ \| [\d.]+ \| 1\.00x \|",)),
    "early_stopping": TinyRun(("--repeats", "1", "--patients", "30", "--only", "default,fixed-50"),
                              (r"^default +five boosters",
                               r"^fixed-50 +five boosters of 50 rounds.* \(50, 50, 50\)$")),
    "image_heads": TinyRun(("--only", "probe", "--backbones", "tf_efficientnet_lite0", "--images", "80"),
                           (row("probe, C = 2 / width (melagbm's rule)") + r" \d\.\d{4} \|",), datasets=("ham",)),
    # metadata twice: the second row is read back from --rows and paired with the first
    "quality": TinyRun(("--datasets", "isic", "--only", "metadata,metadata", "--folds", "2", "--bootstrap", "20",
                        "--rows", "{tmp}"),
                       (row("metadata only (age, sex, site)") + r" \d\.\d{4} \[.*\| \(reference row\) \|",
                        row("metadata only (age, sex, site)") + r" \d\.\d{4} \[.*\| \+0\.0000 \[")),
    "lesion": TinyRun(("--n", "8", "--timed", "4", "--jobs", "1"),
                      (r"^Dice: mean \d\.\d{3}", row("SIIM-ISIC 2020, 256x256 (4)", "this checkout")),
                      datasets=("ham", "isic")),
}


def test_every_benchmark_script_has_a_tiny_run() -> None:
    assert sorted(TINY_RUNS) == SCRIPTS


@pytest.mark.benchmark
@pytest.mark.real_data
@pytest.mark.parametrize("script", [pytest.param(name, marks=pytest.mark.xdist_group(f"benchmark-{name}"))
                                    for name in TINY_RUNS])
def test_benchmark_runs_on_a_tiny_input(script: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    tiny = TINY_RUNS[script]
    for module in tiny.needs:
        pytest.importorskip(module)
    data = [request.getfixturevalue(f"{dataset}_root") for dataset in tiny.datasets][0].parent
    arguments = [argument.replace("{tmp}", str(tmp_path)) for argument in tiny.arguments]
    command = [sys.executable, f"{script}.py", "--data", str(data), *arguments]
    # The script inherits $MELAGBM_CACHE (conftest: the session's temporary store, shared by the tiny runs) and, under
    # pytest-xdist, one BLAS/OpenMP thread. Its own session: a run past the timeout is stopped with every process it
    # started (servers, Dask workers).
    with subprocess.Popen(command, cwd=BENCHMARKS, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env={**os.environ, "MPLBACKEND": "Agg"}, start_new_session=True) as process:
        try:
            out, err = process.communicate(timeout=TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            out, err = process.communicate()
            pytest.fail(f"{' '.join(command)} ran past {TIMEOUT_SECONDS} s\n{out[-3000:]}\n{err[-3000:]}")
    shown = f"$ {' '.join(command)}\n--- stdout\n{out[-4000:]}\n--- stderr\n{err[-4000:]}"
    assert process.returncode == 0, shown
    for pattern in tiny.expected:
        assert re.search(pattern, out, flags=re.MULTILINE), f"{pattern!r} not in the output\n{shown}"


# -- public names only -------------------------------------------------------------------------------------------
def is_private(name: str) -> bool:
    """``_name`` (not a dunder such as ``__file__``)."""
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def is_private_melagbm_path(dotted: str) -> bool:
    """``melagbm.<...>._<...>``: a dotted path into melagbm with a private part."""
    first, *rest = dotted.split(".")
    return first == "melagbm" and any(is_private(part) for part in rest)


def private_uses(source: str) -> list[str]:
    """Where ``source`` reaches a private name: an attribute ``x._name`` (or ``getattr(x, "_name")``), an import of
    ``melagbm.<...>._<...>`` or of ``_name`` from melagbm, a string ``"melagbm.<...>._<...>"`` passed to a call (what
    ``mock.patch`` and ``importlib.import_module`` take)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        where = f"line {getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Attribute) and is_private(node.attr):
            found.append(f"{where}: .{node.attr}")
        elif isinstance(node, ast.Import):
            found += [f"{where}: import {alias.name}" for alias in node.names if is_private_melagbm_path(alias.name)]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "melagbm":
            names = [alias.name for alias in node.names if is_private(alias.name)]
            if is_private_melagbm_path(node.module) or names:
                found.append(f"{where}: from {node.module} import {', '.join(names) or '...'}")
        elif isinstance(node, ast.Call):
            strings = [argument.value for argument in [*node.args, *(keyword.value for keyword in node.keywords)]
                       if isinstance(argument, ast.Constant) and isinstance(argument.value, str)]
            found += [f"{where}: {text!r}" for text in strings if is_private_melagbm_path(text)]
            if (isinstance(node.func, ast.Name) and node.func.id in {"getattr", "setattr", "hasattr", "delattr"}
                    and len(node.args) > 1 and isinstance(node.args[1], ast.Constant)
                    and isinstance(node.args[1].value, str) and is_private(node.args[1].value)):
                found.append(f"{where}: {node.func.id}(..., {node.args[1].value!r})")
    return found


@pytest.mark.parametrize("script", [*SCRIPTS, "_common"])
def test_benchmark_uses_public_names_only(script: str) -> None:
    """A refactor of melagbm's internals must not break a benchmark: the scripts reach melagbm by public names."""
    assert private_uses((BENCHMARKS / f"{script}.py").read_text()) == []


@pytest.mark.parametrize("source", [
    "import melagbm._cores",
    "from melagbm._cores import usable_cores",
    "from melagbm.embedding import _torch_threads",
    "melagbm._cores._last = None",
    "embedder._openvino.compile()",
    'mock.patch("melagbm._cores.free_cores", lambda: 1)',
    'mock.patch(target="melagbm.embedding._runtime.network")',
    'getattr(embedder, "_runtime")()',
])
def test_public_names_check_finds_a_private_use(source: str) -> None:
    assert private_uses(source)


@pytest.mark.parametrize("source", [
    "from _common import timed",
    "import melagbm\nprint(__file__, melagbm.__version__)",
    "model.fit_seconds_['embedding']",
    'mock.patch("melagbm.embedding.ImageEmbedder.fit")',
    'getattr(model, "fit_seconds_", {})',
])
def test_public_names_check_passes_public_uses(source: str) -> None:
    assert private_uses(source) == []
