"""CPU runtimes for the image encoders, side by side: PyTorch eager, torch.compile, ONNX Runtime, OpenVINO (default).

The same SIIM-ISIC 2020 images, preprocessed once as melagbm preprocesses them, go through each
runtime's forward pass of the exact function melagbm embeds with (the pooled final features plus
the pooled intermediate stages, ``layers=4``), with the same number of threads. Printed per
runtime and backbone: images/s of the forward pass, the ratio to eager, the one-off export or
compile time, and the lowest cosine similarity between its embedding and eager's over the images
(melagbm's store keys mean "these exact vectors": a runtime that moves them is part of the encoder).

Then the roofline: what these cores sustain on a large float32 matrix product and on a depthwise
3x3 convolution (the layer EfficientNet-Lite spends its time in), and the images/s that Lite0's
multiply-adds would allow at each of those rates.

ONNX Runtime and OpenVINO are not melagbm dependencies: ``pip install onnxruntime openvino onnx`` first (a
runtime that does not load is reported and skipped). torch.compile takes minutes per backbone on 2 cores.

    python benchmarks/cpu_runtimes.py                   # Lite0 and Lite2, 128 images (about 15 min on 2 cores)
    python benchmarks/cpu_runtimes.py --images 64 --backbones tf_efficientnet_lite0
    python benchmarks/cpu_runtimes.py --backbones tf_efficientnet_lite2 --no-compile   # about 4 min
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _common import add_data_argument  # benchmarks/_common.py

from melagbm.embedding import ImageEmbedder

#: Images per forward call (melagbm's CPU micro-batch).
MICRO_BATCH = 4


def preprocessed(embedder: ImageEmbedder, paths: list[Path]) -> torch.Tensor:
    import timm
    from PIL import Image

    transform = timm.data.create_transform(**embedder.data_config_, is_training=False)
    return torch.stack([transform(Image.open(path).convert("RGB")) for path in paths])


def run(forward, images: torch.Tensor) -> tuple[float, np.ndarray]:  # noqa: ANN001
    """(images/s, vectors) of ``forward`` over ``images`` in micro-batches, after one warm-up call."""
    forward(images[:MICRO_BATCH])
    started = time.perf_counter()
    vectors = [np.asarray(forward(chunk)) for chunk in images.split(MICRO_BATCH)]
    return len(images) / (time.perf_counter() - started), np.concatenate(vectors)


def lowest_cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(np.float64), b.astype(np.float64)
    return float(np.min((a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))))


def runtimes(module: torch.nn.Module, input_size: tuple, threads: int, folder: Path,  # noqa: ANN201
             compile_too: bool = True):
    """name -> (export seconds, forward callable) for each runtime that loads here."""
    example = torch.zeros(MICRO_BATCH, *input_size)
    out = {}

    def eager(batch: torch.Tensor) -> np.ndarray:
        with torch.inference_mode():
            return module(batch.contiguous(memory_format=torch.channels_last)).numpy()

    out["PyTorch eager (runtime='torch')"] = (0.0, eager)

    if compile_too:
        out["torch.compile"] = _compiled(module, example)
    _other_runtimes(module, example, threads, folder, out)
    return out


def _compiled(module: torch.nn.Module, example: torch.Tensor):  # noqa: ANN202
    """(compile seconds, forward) of ``torch.compile(module)``."""
    started = time.perf_counter()
    compiled = torch.compile(module)
    with torch.inference_mode():
        compiled(example.contiguous(memory_format=torch.channels_last))

    def compiled_forward(batch: torch.Tensor) -> np.ndarray:
        with torch.inference_mode():
            return compiled(batch.contiguous(memory_format=torch.channels_last)).numpy()

    return time.perf_counter() - started, compiled_forward


def _other_runtimes(module: torch.nn.Module, example: torch.Tensor, threads: int, folder: Path, out: dict) -> None:
    """Add ONNX Runtime and OpenVINO to ``out``, each where it loads."""

    try:
        import onnxruntime

        started = time.perf_counter()
        path = folder / "model.onnx"
        torch.onnx.export(module, (example,), str(path), input_names=["images"], output_names=["embedding"],
                          dynamic_axes={"images": {0: "batch"}}, dynamo=False)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        out["ONNX Runtime"] = (time.perf_counter() - started,
                               lambda batch: session.run(None, {"images": batch.numpy()})[0])
    except Exception as error:  # noqa: BLE001 - a runtime that cannot load is reported, not fatal
        print(f"(ONNX Runtime unavailable: {type(error).__name__}: {error})")

    try:
        import openvino

        started = time.perf_counter()
        core = openvino.Core()
        converted = openvino.convert_model(module, example_input=example)
        network = core.compile_model(converted, "CPU", {"INFERENCE_NUM_THREADS": threads,
                                                        "INFERENCE_PRECISION_HINT": "f32"})
        out["OpenVINO (f32)"] = (time.perf_counter() - started,
                                 lambda batch: network(batch.numpy())[network.output(0)])
    except Exception as error:  # noqa: BLE001
        print(f"(OpenVINO unavailable: {type(error).__name__}: {error})")


def roofline(threads: int) -> tuple[float, float]:
    """(GFLOP/s of a 2048^2 float32 matrix product, GFLOP/s of a depthwise 3x3 convolution) on ``threads``."""
    torch.set_num_threads(threads)
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    a @ b
    started, repeats = time.perf_counter(), 10
    for _ in range(repeats):
        a @ b
    matmul = 2 * 2048**3 * repeats / (time.perf_counter() - started) / 1e9
    x = torch.randn(MICRO_BATCH, 144, 56, 56).contiguous(memory_format=torch.channels_last)
    conv = torch.nn.Conv2d(144, 144, 3, padding=1, groups=144, bias=False).eval()
    with torch.inference_mode():
        conv(x)
        started, repeats = time.perf_counter(), 50
        for _ in range(repeats):
            conv(x)
    depthwise = 2 * x.numel() * 9 * repeats / (time.perf_counter() - started) / 1e9
    return matmul, depthwise


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_argument(parser)
    parser.add_argument("--images", type=int, default=128)
    parser.add_argument("--backbones", default="tf_efficientnet_lite0,tf_efficientnet_lite2")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile (minutes per backbone)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    paths = sorted((args.data / "isic2020" / "train").glob("*.jpg"))[: args.images]
    print(f"{len(paths)} SIIM-ISIC 2020 images, {args.threads} threads, micro-batches of {MICRO_BATCH}, "
          f"torch {torch.__version__}\n")
    print("| backbone | runtime | images/s | vs eager | export / compile s | lowest cosine to eager |")
    print("|---|---|---|---|---|---|", flush=True)
    for backbone in args.backbones.split(","):
        embedder = ImageEmbedder(backbone=backbone, layers=4, cache=None, verbose=0).fit()
        module = embedder.network().to(memory_format=torch.channels_last)  # the 4-level embedding
        images = preprocessed(embedder, paths)
        with tempfile.TemporaryDirectory() as folder:
            baseline, reference = None, None
            for name, (export_seconds, forward) in runtimes(module, embedder.data_config_["input_size"],
                                                            args.threads, Path(folder), not args.no_compile).items():
                rate, vectors = run(forward, images)
                baseline = baseline or rate
                reference = vectors if reference is None else reference
                print(f"| {backbone} | {name} | {rate:.1f} | {rate / baseline:.2f}x | {export_seconds:.1f} | "
                      f"{lowest_cosine(vectors, reference):.6f} |", flush=True)
    matmul, depthwise = roofline(args.threads)
    macs = 0.40e9  # EfficientNet-Lite0 at 224 px, multiply-adds per image (timm's model card)
    print(f"\nroofline on {args.threads} threads: float32 matrix product {matmul:.0f} GFLOP/s, depthwise 3x3 "
          f"convolution {depthwise:.1f} GFLOP/s; Lite0's {macs / 1e9:.2f} G multiply-adds per image would allow "
          f"{matmul * 1e9 / (2 * macs):.0f} images/s at the matrix-product rate, "
          f"{depthwise * 1e9 / (2 * macs):.0f} at the depthwise rate")


if __name__ == "__main__":
    main()
