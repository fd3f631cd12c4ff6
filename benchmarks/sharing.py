"""Sharing the machine: embedding and lesion measuring beside one busy single-threaded process.

Each workload runs on the same SIIM-ISIC 2020 images twice in one run: on an idle machine, then with
one other process spinning on a core (``while True: pass``), and the busy figure is printed as a share
of the idle one. Workloads: embedding with PyTorch on every core (the path before the free-cores rule),
PyTorch on the cores other processes leave free (``runtime="torch"`` now), OpenVINO (the CPU default),
and lesion measuring. Images are decoded and embedded end to end (``ImageEmbedder(cache=None)``), with
the 4-level embedding FusionClassifier uses.

    python benchmarks/sharing.py                 # 128 images (about 3 min on 2 cores)
    python benchmarks/sharing.py --images 64
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from contextlib import contextmanager
from unittest import mock

from _common import add_data_argument  # benchmarks/_common.py

import melagbm._cores
from melagbm.embedding import ImageEmbedder
from melagbm.features.lesion import LesionFeatures


@contextmanager
def busy_neighbour(on: bool):
    """One other process spinning on a core while the block runs (none when ``on`` is False)."""
    process = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if on else None
    time.sleep(1.0 if on else 0.0)
    try:
        yield
    finally:
        if process is not None:
            process.kill()
            process.wait()


def rate(workload, images: list[str]) -> float:
    """Images per second of ``workload(images)``, after a warm-up call on four of them."""
    workload(images[:4])
    melagbm._cores._last = None  # measure the cores now, not 10 s ago
    started = time.perf_counter()
    workload(images)
    return len(images) / (time.perf_counter() - started)


def workloads() -> dict:
    """name -> a function of a list of image paths."""
    torch_embedder = ImageEmbedder(runtime="torch", layers=4, cache=None, verbose=0).fit()
    openvino_embedder = ImageEmbedder(runtime="openvino", layers=4, cache=None, verbose=0).fit()
    lesions = LesionFeatures(cache=None, verbose=0).fit()

    def every_core(images: list[str]) -> object:
        with mock.patch("melagbm.embedding.embedder.free_cores", melagbm._cores.usable_cores):
            return torch_embedder.transform(images)

    return {
        "embedding, PyTorch on every core (before)": every_core,
        "embedding, PyTorch on the free cores (runtime='torch')": torch_embedder.transform,
        "embedding, OpenVINO (the CPU default)": openvino_embedder.transform,
        "lesion measuring": lesions.transform,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_argument(parser)
    parser.add_argument("--images", type=int, default=128)
    args = parser.parse_args()
    images = [str(path) for path in sorted((args.data / "isic2020" / "train").glob("*.jpg"))[: args.images]]
    print(f"{len(images)} SIIM-ISIC 2020 images (256x256 JPEG), Lite0, {melagbm._cores.usable_cores()} cores; "
          "busy: one other process spinning on a core\n")
    print("| workload | idle images/s | busy neighbour images/s | busy / idle |")
    print("|---|---|---|---|", flush=True)
    for name, workload in workloads().items():
        idle = rate(workload, images)
        with busy_neighbour(True):
            busy = rate(workload, images)
        print(f"| {name} | {idle:.1f} | {busy:.1f} | {busy / idle:.0%} |", flush=True)


if __name__ == "__main__":
    main()
