"""Embedding throughput (images/s) and boosting/SHAP speed, CPU against GPU, side by side.

On the same images:

(a) a naive loop: open one image, preprocess it, one forward pass, next image;
(b) melagbm's CPU path: ``ImageEmbedder(device="cpu")`` (OpenVINO, batches, DataLoader decoding,
    thread settings; no store, so every image is computed), and the same on PyTorch (``runtime="torch"``);
(c) melagbm's CUDA path, when torch sees a GPU: batched GPU JPEG decoding, bf16 autocast,
    channels_last, pinned memory;

then XGBoost training and exact SHAP contributions on a wide table (embedding + metadata)
with ``device="cpu"`` and, with a GPU, ``device="cuda"``. Ratios are printed beside the
figures, and the GPU rows name the card.

    python benchmarks/throughput.py                      # ISIC 2020 subset, 512 images
    python benchmarks/throughput.py --n 2701             # the whole subset
    python benchmarks/throughput.py --synthetic 2048     # generated images (no data needed)
    python benchmarks/throughput.py --n 8 --batch-size 4 --rounds 5 --forward-sizes 4   # smoke run

Finishes within 5 minutes on a GPU machine with the defaults.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _common import add_data_argument, timed  # benchmarks/_common.py


def naive_loop(paths: list[str], backbone: str) -> float:
    """Seconds for the textbook loop: PIL open, timm preprocessing, a batch of one per forward pass."""
    import timm
    import torch
    from PIL import Image

    from melagbm import load_backbone

    model = load_backbone(backbone).eval()
    transform = timm.data.create_transform(**timm.data.resolve_data_config({}, model=model), is_training=False)
    with torch.inference_mode():
        model(transform(Image.open(paths[0]).convert("RGB")).unsqueeze(0))  # warm-up
        started = time.perf_counter()
        for path in paths:
            model(transform(Image.open(path).convert("RGB")).unsqueeze(0))
    return time.perf_counter() - started


def melagbm_path(paths: list[str], backbone: str, device: str, batch_size: int, **options) -> float:
    """Seconds for ImageEmbedder on ``device`` (no store: every image is computed)."""
    from melagbm import ImageEmbedder

    embedder = ImageEmbedder(backbone=backbone, device=device, batch_size=batch_size, cache=None, **options).fit()
    embedder.transform(paths[:batch_size])  # warm-up: workers, kernels, cuDNN autotuning
    seconds, _ = timed(lambda: embedder.transform(paths))
    return seconds


def cuda_stages(paths: list[str], backbone: str, batch_size: int) -> dict[str, float]:
    """Seconds of each stage of the CUDA path over ``paths``, synchronised between stages: reading the JPEG
    bytes, nvJPEG decoding, preprocessing (resize, normalise) and the bf16 forward pass with the copy back."""
    import timm
    import torch

    from melagbm import ImageEmbedder
    from melagbm.images.decoding import decode_jpeg_batch, tensor_transform

    device = torch.device("cuda")
    embedder = ImageEmbedder(backbone=backbone, layers=4, device="cuda", cache=None).fit()
    model = embedder.network().to(device, memory_format=torch.channels_last)
    transform = tensor_transform(timm.data.create_transform(**embedder.data_config_, is_training=False))
    seconds = dict.fromkeys(("read bytes", "decode (nvJPEG)", "preprocess", "forward (bf16) and copy back"), 0.0)

    def clock(stage: str, work):  # noqa: ANN001, ANN202 - ``work`` runs at once, inside the loop
        torch.cuda.synchronize()
        started = time.perf_counter()
        result = work()
        torch.cuda.synchronize()
        seconds[stage] += time.perf_counter() - started
        return result

    with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16):
        for warm_up in (True, False):
            for start in range(0, batch_size if warm_up else len(paths), batch_size):
                chunk = paths[start:start + batch_size]
                blobs = clock("read bytes", lambda: [Path(path).read_bytes() for path in chunk])  # noqa: B023
                images = clock("decode (nvJPEG)", lambda: decode_jpeg_batch(blobs, device))  # noqa: B023
                batch = clock("preprocess", lambda: torch.stack([transform(image) for image in images])  # noqa: B023
                              .contiguous(memory_format=torch.channels_last))
                clock("forward (bf16) and copy back", lambda: model(batch).float().cpu())  # noqa: B023
            if warm_up:
                seconds.update(dict.fromkeys(seconds, 0.0))
    return seconds


def forward_only(backbone: str, batch_size: int, channels_last: bool) -> float:
    """Milliseconds per image of the forward pass alone on the CPU, in one memory layout."""
    import torch

    from melagbm import load_backbone

    layout = torch.channels_last if channels_last else torch.contiguous_format
    model = load_backbone(backbone).eval().to(memory_format=layout)
    batch = torch.randn(batch_size, 3, 224, 224).contiguous(memory_format=layout)
    repeats = max(3, 48 // batch_size)
    with torch.inference_mode():
        model(batch)
        seconds, _ = timed(lambda: [model(batch) for _ in range(repeats)])
    return 1000 * seconds / (repeats * batch_size)


def boosting(table: pd.DataFrame, y: np.ndarray, device: str, rounds: int) -> tuple[float, float]:
    """(seconds to train XGBoost for ``rounds`` rounds, seconds for exact SHAP contributions of every row)."""
    from xgboost import XGBClassifier

    from melagbm.explain import tree_contributions

    model = XGBClassifier(n_estimators=rounds, max_depth=6, learning_rate=0.05, tree_method="hist",
                          device=device, enable_categorical=True, random_state=0)
    fit_seconds, _ = timed(lambda: model.fit(table, y))
    tree_contributions(model, table.head(64))  # warm-up
    shap_seconds, _ = timed(lambda: tree_contributions(model, table))
    return fit_seconds, shap_seconds


def _images(args: argparse.Namespace, folder: Path) -> tuple[list[str], pd.DataFrame, np.ndarray, str]:
    if args.synthetic:
        from melagbm.datasets import make_synthetic

        X, y, _ = make_synthetic(args.synthetic, random_state=0)
        paths = []
        for index, image in enumerate(X["image"]):
            path = folder / f"synthetic_{index:05d}.jpg"
            from PIL import Image

            Image.fromarray(np.asarray(image)).save(path, quality=92)
            paths.append(str(path))
        return paths, X.drop(columns="image"), y.to_numpy(), f"{len(paths)} synthetic JPEGs"
    from melagbm.datasets import load_isic2020

    X, y, _ = load_isic2020(args.data / "isic2020")
    X, y = X.iloc[: args.n], y.iloc[: args.n]
    metadata = X.drop(columns=["image", "patient_id"])  # age, sex, site
    return list(X["image"]), metadata, y.to_numpy(), f"{len(X)} SIIM-ISIC 2020 subset JPEGs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_argument(parser)
    parser.add_argument("--n", type=int, default=512, help="images of the ISIC 2020 subset")
    parser.add_argument("--synthetic", type=int, default=0, help="use this many generated images instead")
    parser.add_argument("--backbone", default="tf_efficientnet_lite0")
    parser.add_argument("--batch-size", type=int, default=32, help="ImageEmbedder batch_size (CUDA path: 4x)")
    parser.add_argument("--rounds", type=int, default=300, help="XGBoost rounds for the boosting timing")
    parser.add_argument("--forward-sizes", default="1,4,16,32",
                        help="images per forward call timed in the CPU forward-pass table (default: %(default)s)")
    args = parser.parse_args()
    import torch

    from melagbm import ImageEmbedder, MetadataEncoder

    gpu = torch.cuda.is_available()
    card = torch.cuda.get_device_name(0) if gpu else None
    with tempfile.TemporaryDirectory() as folder:
        if not args.synthetic and not (args.data / "isic2020").exists():
            print(f"no data at {args.data / 'isic2020'}: using 1024 synthetic images")
            args.synthetic = 1024
        paths, metadata, y, what = _images(args, Path(folder))
        print(f"{what}; backbone {args.backbone}; {os.cpu_count()} CPU cores, torch {torch.__version__}; "
              f"GPU: {card or 'none'}")
        rows = []
        naive = naive_loop(paths, args.backbone)
        rows.append(("(a) naive loop, CPU, one image per forward", naive))
        cpu = melagbm_path(paths, args.backbone, "cpu", args.batch_size)
        rows.append((f"(b) melagbm CPU path, defaults (OpenVINO, batch {args.batch_size}, num_workers='auto')", cpu))
        rows.append(("(b) with runtime='torch' (channels_last, threads on the free cores)",
                     melagbm_path(paths, args.backbone, "cpu", args.batch_size, runtime="torch")))
        rows.append(("(b) with 1 decode worker", melagbm_path(paths, args.backbone, "cpu", args.batch_size,
                                                            num_workers=1)))
        threads = torch.get_num_threads()
        torch.set_num_threads(max(1, threads - 1))  # leave a core to the decode worker
        rows.append((f"(b) with 1 decode worker and {torch.get_num_threads()} torch thread(s)",
                     melagbm_path(paths, args.backbone, "cpu", args.batch_size, num_workers=1)))
        torch.set_num_threads(threads)
        if gpu:
            cuda = melagbm_path(paths, args.backbone, "cuda", args.batch_size * 4)
            rows.append((f"(c) melagbm CUDA path on {card} (batch {args.batch_size * 4})", cuda))
        print("\n| embedding | images/s | vs (a) |\n|---|---|---|")
        for name, seconds in rows:
            print(f"| {name} | {len(paths) / seconds:.1f} | {naive / seconds:.2f}x |")
        if gpu:
            stages = cuda_stages(paths, args.backbone, args.batch_size * 4)
            total = sum(stages.values())
            print(f"\nCUDA path stage by stage ({card}, batch {args.batch_size * 4}, synchronised between stages):\n"
                  "| stage | ms/image | share |\n|---|---|---|")
            for stage, seconds in stages.items():
                print(f"| {stage} | {1000 * seconds / len(paths):.3f} | {seconds / total:.0%} |")
            with tempfile.TemporaryDirectory() as store:  # JPEG files in, vectors in the store out
                embedder = ImageEmbedder(backbone=args.backbone, layers=4, device="cuda", batch_size=args.batch_size * 4,
                                         cache=store, verbose=0).fit()
                seconds, _ = timed(lambda: embedder.transform(paths))
            print(f"| end to end into an empty store (layers=4, as FusionClassifier) | "
                  f"{len(paths) / seconds:.0f} images/s | |")

        print(f"\nCPU forward pass alone, ms/image ({torch.get_num_threads()} torch threads):\n"
              "| images per forward | NCHW | channels_last |\n|---|---|---|")
        for size in (int(size) for size in args.forward_sizes.split(",")):
            contiguous, channels_last = (forward_only(args.backbone, size, layout) for layout in (False, True))
            print(f"| {size} | {contiguous:.1f} | {channels_last:.1f} |")

        embedder = ImageEmbedder(backbone=args.backbone, cache=None, device="cuda" if gpu else "cpu").fit()
        embedding = embedder.transform(paths)
        encoded = MetadataEncoder().fit_transform(metadata).reset_index(drop=True)  # age, sex, site
        table = pd.concat([pd.DataFrame(embedding, columns=[f"e{i}" for i in range(embedding.shape[1])]), encoded],
                          axis=1)
        repeats = max(1, 20_000 // len(table))  # a table of about 20,000 rows
        wide = pd.concat([table] * repeats, ignore_index=True)
        labels = np.tile(y, repeats)
        print(f"\n| XGBoost, {len(wide)} rows x {wide.shape[1]} features, {args.rounds} rounds | train | "
              "SHAP contributions |\n|---|---|---|")
        fit_cpu, shap_cpu = boosting(wide, labels, "cpu", args.rounds)
        print(f"| CPU ({os.cpu_count()} cores) | {fit_cpu:.1f} s | {shap_cpu:.1f} s |")
        if gpu:
            fit_gpu, shap_gpu = boosting(wide, labels, "cuda", args.rounds)
            print(f"| {card} | {fit_gpu:.1f} s ({fit_cpu / fit_gpu:.1f}x) | {shap_gpu:.1f} s ({shap_cpu / shap_gpu:.1f}x) |")
        else:
            print("| GPU | no CUDA device here: run this script on a GPU machine for the GPU rows | |")


if __name__ == "__main__":
    main()
