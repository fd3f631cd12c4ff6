"""Lesion segmentation quality against HAM10000's ground-truth masks, feature speed, and what a change moved.

1. Dice of ``melagbm.features.segmentation.segment_lesion`` against every mask in ``ham10000/masks``
   (mean, median, 10th percentile), on ``--jobs`` processes.
2. Time per image on one core (one process, one OpenCV thread) of segmentation and of the features on the
   256x256 SIIM-ISIC 2020 images and the 200x150 HAM10000 images, decoding excluded.
3. With ``--against REV``: the same images measured by the lesion code of git revision REV (its
   ``melagbm/features/lesion.py`` run from a temporary copy), side by side: time per image, the ratio, how
   far each feature moved (median, 95th percentile and largest absolute difference) and the Dice between
   the two versions' masks.

The masks are read as the data's README states (255 = lesion). Some look stored with the
opposite polarity (the white side is the brighter side of the image); the Dice with
those flipped is printed too, with how many that is.

    python benchmarks/lesion.py                              # all 10,015 HAM10000 masks, 300 images timed
    python benchmarks/lesion.py --n 500 --timed 100          # a sample
    python benchmarks/lesion.py --against 73c34dc --n 0      # speed and values beside melagbm 0.1's scipy version
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from _common import add_data_argument  # benchmarks/_common.py
from joblib import Parallel, delayed
from PIL import Image

from melagbm.features.lesion import LESION_FEATURES, lesion_measurements
from melagbm.features.segmentation import cie_lab, segment_lesion

REPO = Path(__file__).resolve().parents[1]


def score(image_path: Path, mask_path: Path) -> tuple[float, float, bool]:
    """(Dice, Dice against the mask as stored, flipped?)."""
    rgb = np.asarray(Image.open(image_path).convert("RGB"))
    stored = np.asarray(Image.open(mask_path).convert("L")) > 127
    mask = segment_lesion(rgb)
    lightness = cie_lab(rgb)[..., 0]
    flipped = bool(stored.any() and (~stored).any() and np.median(lightness[stored]) > np.median(lightness[~stored]))
    truth = ~stored if flipped else stored
    return dice(mask, truth), dice(mask, stored), flipped


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * (a & b).sum() / max(a.sum() + b.sum(), 1))


def per_image_ms(segment, measure, images: list[np.ndarray]) -> tuple[float, float, list, list]:  # noqa: ANN001
    """(ms to segment, ms to measure, masks, feature rows) per image, in this process."""
    started = time.perf_counter()
    masks = [segment(rgb) for rgb in images]
    segmented = time.perf_counter()
    rows = [measure(rgb, mask) for rgb, mask in zip(images, masks)]
    measured = time.perf_counter()
    return 1000 * (segmented - started) / len(images), 1000 * (measured - segmented) / len(images), masks, rows


def old_lesion_module(revision: str):  # noqa: ANN201
    """melagbm/features/lesion.py of ``revision``, imported from a temporary copy (its relative imports made absolute)."""
    source = subprocess.run(["git", "show", f"{revision}:melagbm/features/lesion.py"], cwd=REPO, check=True,
                            capture_output=True, text=True).stdout
    for package in ("_progress", "embedding", "images", "store", "features"):
        source = source.replace(f"from ..{package}", f"from melagbm.{package}").replace(
            f"from .{package}", f"from melagbm.features.{package}")
    path = Path(tempfile.mkdtemp()) / f"lesion_{revision}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_argument(parser)
    parser.add_argument("--n", type=int, default=None, help="HAM10000 masks for the Dice (default: all; 0: none)")
    parser.add_argument("--timed", type=int, default=300, help="images per dataset timed on one core")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--against", default=None, help="a git revision whose lesion code to compare with")
    args = parser.parse_args()

    root = args.data / "ham10000"
    names = sorted(path.stem for path in (root / "images").glob("*.jpg"))
    if args.n != 0:
        sample = names if args.n is None else list(np.random.default_rng(0).choice(names, args.n, replace=False))
        started = time.perf_counter()
        results = Parallel(n_jobs=args.jobs, batch_size=64)(
            delayed(score)(root / "images" / f"{name}.jpg", root / "masks" / f"{name}_segmentation.png")
            for name in sample
        )
        wall = time.perf_counter() - started
        flipped_dice, raw, flipped = (np.asarray(column) for column in zip(*results))
        print(f"HAM10000: {len(sample)} images with ground-truth masks (255 = lesion, as published), "
              f"{wall:.0f} s on {args.jobs} processes")
        print(f"Dice: mean {raw.mean():.3f}, median {np.median(raw):.3f}, 10th percentile {np.quantile(raw, 0.1):.3f}")
        print(f"share of images with Dice >= 0.8: {np.mean(raw >= 0.8):.1%}; "
              f"Dice < 0.2 (lesion missed): {np.mean(raw < 0.2):.1%}")
        print(f"with the {int(flipped.sum())} masks whose white side is the brighter side flipped: "
              f"mean Dice {flipped_dice.mean():.3f}")

    cv2.setNumThreads(1)  # one core: per-core figures
    sets = {
        "SIIM-ISIC 2020, 256x256": sorted((args.data / "isic2020" / "train").glob("*.jpg"))[: args.timed],
        "HAM10000, 200x150": [root / "images" / f"{name}.jpg" for name in names[: args.timed]],
    }
    old = old_lesion_module(args.against) if args.against else None
    print("\n| images | version | segmentation ms/image | features ms/image | total ms/image | speed-up |")
    print("|---|---|---|---|---|---|")
    moved = []
    for title, paths in sets.items():
        images = [np.asarray(Image.open(path).convert("RGB")) for path in paths]
        new = per_image_ms(segment_lesion, lesion_measurements, images)
        rows = [("this checkout", new)]
        if old is not None:
            rows.insert(0, (f"git {args.against}", per_image_ms(old.segment_lesion, old.lesion_measurements, images)))
        reference = rows[0][1][0] + rows[0][1][1]
        for version, (seg, feat, _, _) in rows:
            print(f"| {title} ({len(images)}) | {version} | {seg:.1f} | {feat:.1f} | {seg + feat:.1f} | "
                  f"{reference / (seg + feat):.1f}x |", flush=True)
        if old is not None:
            before, after = (pd.DataFrame(result[3])[list(LESION_FEATURES)] for _, result in rows)
            agreement = np.mean([dice(a, b) for a, b in zip(rows[0][1][2], rows[1][1][2])])
            moved.append((title, before, after, agreement))
    for title, before, after, agreement in moved:
        difference = (after - before).abs()
        print(f"\n{title}: Dice between the two versions' masks {agreement:.4f}; feature values, old vs new")
        table = pd.DataFrame({"old median": before.median(), "new median": after.median(),
                              "median abs diff": difference.median(), "95th pct abs diff": difference.quantile(0.95),
                              "max abs diff": difference.max()}).dropna(how="all")
        print("| feature | " + " | ".join(table.columns) + " |")
        print("|---" * (len(table.columns) + 1) + "|")
        for name, values in table.iterrows():
            print(f"| {name} | " + " | ".join(f"{value:.4f}" for value in values) + " |")


if __name__ == "__main__":
    sys.exit(main())
