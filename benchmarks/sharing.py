"""Sharing the machine: embedding and lesion measuring beside one busy single-threaded process.

Each workload runs on the same SIIM-ISIC 2020 images twice in one run: on an idle machine, then with
one other process spinning on a core (``while True: pass``), and the busy figure is printed as a share
of the idle one. Images are decoded and embedded end to end with the 4-level Lite0 embedding
FusionClassifier uses; no store (every image is computed). The workloads:

- embedding, PyTorch on every core (the path before the free-cores rule): each image decoded and
  preprocessed (timm's evaluation transform) in this process, then ``ImageEmbedder.network()`` (the encoder
  as one PyTorch module) in batches of 4 with ``torch.set_num_threads`` at every usable core, busy or not;
- embedding, PyTorch on the cores other processes leave free: ``ImageEmbedder(runtime="torch").transform``
  (DataLoader decoding; melagbm measures the free cores before each batch and reuses a measurement for 10 s,
  so the busy run waits past that window first: it sees the neighbour, not the idle run's figure);
- embedding, OpenVINO (the CPU default): ``ImageEmbedder(runtime="openvino").transform``;
- lesion measuring: ``LesionFeatures.transform`` (segmentation and features).

    python benchmarks/sharing.py                 # 128 images (about 3 min on 2 cores)
    python benchmarks/sharing.py --images 64
    python benchmarks/sharing.py --images 8      # smoke run (about 30 s)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from _common import add_data_argument  # benchmarks/_common.py

from melagbm.embedding import ImageEmbedder
from melagbm.features.lesion import LesionFeatures

#: Images per forward call of the every-core workload (melagbm's CPU micro-batch).
MICRO_BATCH = 4
#: melagbm reuses a measurement of the free cores this long; a run after a change of load waits past it.
CORE_MEASUREMENT_REUSED_SECONDS = 10.0

Workload = Callable[[list[str]], Any]


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask where the platform has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


@contextmanager
def busy_neighbour(on: bool) -> Iterator[None]:
    """One other process spinning on a core while the block runs (none when ``on`` is False)."""
    process = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if on else None
    time.sleep(1.0 if on else 0.0)
    try:
        yield
    finally:
        if process is not None:
            process.kill()
            process.wait()


def rate(workload: Workload, images: list[str], settle: float = 0.0) -> float:
    """Images per second of ``workload(images)``, after ``settle`` seconds and a warm-up call on four of them."""
    time.sleep(settle)
    workload(images[:4])
    started = time.perf_counter()
    workload(images)
    return len(images) / (time.perf_counter() - started)


def every_core(embedder: ImageEmbedder) -> Workload:
    """Decode, preprocess and embed with PyTorch on every usable core, whatever else runs (the rule before)."""
    import numpy as np
    import timm
    import torch
    from PIL import Image

    network = embedder.network().to(memory_format=torch.channels_last)
    transform = timm.data.create_transform(**embedder.data_config_, is_training=False)

    def embed(images: list[str]) -> np.ndarray:
        threads = torch.get_num_threads()
        torch.set_num_threads(usable_cores())
        try:
            batch = torch.stack([transform(Image.open(path).convert("RGB")) for path in images])
            with torch.inference_mode():
                return np.concatenate([network(chunk.contiguous(memory_format=torch.channels_last)).numpy()
                                       for chunk in batch.split(MICRO_BATCH)])
        finally:
            torch.set_num_threads(threads)

    return embed


def workloads() -> dict[str, tuple[Workload, bool]]:
    """name -> (a function of a list of image paths, whether it measures the free cores)."""
    torch_embedder = ImageEmbedder(runtime="torch", layers=4, cache=None, verbose=0).fit()
    openvino_embedder = ImageEmbedder(runtime="openvino", layers=4, cache=None, verbose=0).fit()
    lesions = LesionFeatures(cache=None, verbose=0).fit()
    return {
        "embedding, PyTorch on every core (before)": (every_core(torch_embedder), False),
        "embedding, PyTorch on the free cores (runtime='torch')": (torch_embedder.transform, True),
        "embedding, OpenVINO (the CPU default)": (openvino_embedder.transform, False),
        "lesion measuring": (lesions.transform, False),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_argument(parser)
    parser.add_argument("--images", type=int, default=128)
    args = parser.parse_args()
    images = [str(path) for path in sorted((args.data / "isic2020" / "train").glob("*.jpg"))[: args.images]]
    print(f"{len(images)} SIIM-ISIC 2020 images (256x256 JPEG), Lite0, {usable_cores()} cores; "
          "busy: one other process spinning on a core\n")
    print("| workload | idle images/s | busy neighbour images/s | busy / idle |")
    print("|---|---|---|---|", flush=True)
    for name, (workload, measures_free_cores) in workloads().items():
        idle = rate(workload, images)
        with busy_neighbour(True):
            busy = rate(workload, images, settle=CORE_MEASUREMENT_REUSED_SECONDS + 0.5 if measures_free_cores else 0)
        print(f"| {name} | {idle:.1f} | {busy:.1f} | {busy / idle:.0%} |", flush=True)


if __name__ == "__main__":
    main()
