"""Embedding time per image for each backbone and test-time augmentation, side by side.

The same SIIM-ISIC 2020 subset JPEGs through ``ImageEmbedder`` (no store, so every image is
computed; 4 feature levels as FusionClassifier uses them), after a warm-up batch. Prints
milliseconds per image and the ratio to Lite0 without TTA; ``derm_xception`` is timed when
``sklesion`` is installed (``pip install --no-deps sklesion==0.2.2``).

    python benchmarks/backbones.py                  # 64 images, about 4 min on 2 cores
    python benchmarks/backbones.py --n 256 --tta none,flip,rot4,d8
"""

from __future__ import annotations

import argparse
import os
import time

from _common import add_data_argument  # benchmarks/_common.py


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_argument(parser)
    parser.add_argument("--n", type=int, default=64, help="images of the ISIC 2020 subset")
    parser.add_argument("--backbones", default="tf_efficientnet_lite0,tf_efficientnet_lite1,tf_efficientnet_lite2,"
                                               "derm_xception")
    parser.add_argument("--tta", default="none,flip,rot4", help="comma-separated TTA modes")
    parser.add_argument("--layers", type=int, default=4)
    args = parser.parse_args()
    import torch

    from melagbm import BackboneUnavailableError, ImageEmbedder
    from melagbm.datasets import load_isic2020

    X, _, _ = load_isic2020(args.data / "isic2020")
    paths = list(X["image"].iloc[: args.n])
    print(f"{len(paths)} SIIM-ISIC 2020 subset JPEGs; {os.cpu_count()} CPU cores, {torch.get_num_threads()} torch "
          f"threads; GPU: {torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none'}; "
          f"{args.layers} feature levels\n")
    print("| backbone | TTA | width | ms/image | vs Lite0, no TTA |\n|---|---|---|---|---|")
    reference = None
    for backbone in args.backbones.split(","):
        for tta in args.tta.split(","):
            try:
                embedder = ImageEmbedder(backbone=backbone, tta=tta, layers=args.layers, cache=None).fit()
            except BackboneUnavailableError as exc:
                print(f"| {backbone} | {tta} | not available here: {str(exc).splitlines()[0][:80]} | | |")
                break
            embedder.transform(paths[:8])  # warm-up
            started = time.perf_counter()
            embedder.transform(paths)
            ms = 1000 * (time.perf_counter() - started) / len(paths)
            if backbone == "tf_efficientnet_lite0" and tta == "none":
                reference = ms
            ratio = f"{ms / reference:.2f}x" if reference else ""
            print(f"| {backbone} | {tta} | {embedder.n_features_out_} | {ms:.1f} | {ratio} |")


if __name__ == "__main__":
    main()
