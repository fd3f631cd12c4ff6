"""Lesion segmentation quality against HAM10000's ground-truth masks, and feature speed.

Prints the Dice of ``melagbm.features.lesion.segment_lesion`` against every mask in
``ham10000/masks`` (mean, median, 10th percentile) and the time per image of the
segmentation and of the full LesionFeatures row.

The masks are read as the data's README states (255 = lesion). Some look stored with the
opposite polarity (the white side is the brighter side of the image); the Dice with
those flipped is printed too, with how many that is.

    python benchmarks/lesion.py                 # all 10,015 images, about 8 min on 2 cores
    python benchmarks/lesion.py --n 500         # a random sample
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from _common import add_data_argument  # benchmarks/_common.py
from joblib import Parallel, delayed
from PIL import Image

from melagbm.features.lesion import lesion_measurements, segment_lesion


def score(image_path: Path, mask_path: Path) -> tuple[float, float, bool, float, float]:
    """(Dice, Dice against the mask as stored, flipped?, seconds to segment, seconds for the features)."""
    from skimage.color import rgb2lab

    rgb = np.asarray(Image.open(image_path).convert("RGB"))
    stored = np.asarray(Image.open(mask_path).convert("L")) > 127
    started = time.perf_counter()
    mask = segment_lesion(rgb)
    segmented = time.perf_counter()
    lesion_measurements(rgb, mask)
    measured = time.perf_counter()
    lightness = rgb2lab(rgb)[..., 0]
    flipped = bool(stored.any() and (~stored).any() and np.median(lightness[stored]) > np.median(lightness[~stored]))
    truth = ~stored if flipped else stored

    def dice(a: np.ndarray, b: np.ndarray) -> float:
        return float(2 * (a & b).sum() / max(a.sum() + b.sum(), 1))

    return dice(mask, truth), dice(mask, stored), flipped, segmented - started, measured - segmented


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_argument(parser)
    parser.add_argument("--n", type=int, default=None, help="random sample of this many images (default: all)")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()

    root = args.data / "ham10000"
    names = sorted(path.stem for path in (root / "images").glob("*.jpg"))
    if args.n:
        names = list(np.random.default_rng(0).choice(names, args.n, replace=False))
    started = time.perf_counter()
    results = Parallel(n_jobs=args.jobs, batch_size=64)(
        delayed(score)(root / "images" / f"{name}.jpg", root / "masks" / f"{name}_segmentation.png")
        for name in names
    )
    wall = time.perf_counter() - started
    dice, raw, flipped, seg_time, feat_time = (np.asarray(column) for column in zip(*results))
    print(f"HAM10000: {len(names)} images with ground-truth masks (255 = lesion, as published)")
    print(f"Dice: mean {raw.mean():.3f}, median {np.median(raw):.3f}, 10th percentile {np.quantile(raw, 0.1):.3f}")
    print(f"share of images with Dice >= 0.8: {np.mean(raw >= 0.8):.1%}; Dice < 0.2 (lesion missed): {np.mean(raw < 0.2):.1%}")
    print(f"with the {int(flipped.sum())} masks whose white side is the brighter side flipped: mean Dice {dice.mean():.3f}")
    print(
        f"time per image, one core: segmentation {1000 * seg_time.mean():.1f} ms, features {1000 * feat_time.mean():.1f} ms "
        f"({args.jobs} jobs: {len(names) / wall:.0f} images/s overall)"
    )


if __name__ == "__main__":
    main()
