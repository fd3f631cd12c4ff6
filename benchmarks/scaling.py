"""How cost grows with the number of images, and the latency of one new image.

Fits the default FusionClassifier on the first N images of SIIM-ISIC 2020 (500, 1,000, all 2,701) and
on all 10,015 HAM10000 images, and predicts the same images, printing seconds and milliseconds per
image for each:

- warm: every image already in the store (the user's default store, filled first where it is not): what a
  refit costs;
- cold: an empty store (the smaller sizes): what a first fit costs.

Then the latency of ``predict_proba`` on one new image (cold store for that image, model warm in
memory): 30 SIIM-ISIC 2020 images, each predicted alone against an empty store, median and 95th percentile.

    python benchmarks/scaling.py                 # about 25 min on 2 cores (10,015 images embedded once)
    python benchmarks/scaling.py --no-ham        # ISIC sizes only (about 8 min)
    python benchmarks/scaling.py --latency-only  # the single-image latency alone (about 1 min, warm store)
    python benchmarks/scaling.py --sizes 80 --cold-sizes 80 --latency-images 3 --no-ham   # smoke run
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings

import numpy as np
from _common import add_data_argument, timed  # benchmarks/_common.py

from melagbm import EmbeddingStore, FusionClassifier
from melagbm.datasets import load_ham10000, load_isic2020
from melagbm.store import default_store_path

SIZES = (500, 1000, 2701)
COLD_SIZES = (500, 1000)
LATENCY_IMAGES = 30


def fit_and_predict(X, y, groups, store: EmbeddingStore) -> tuple[float, float, FusionClassifier]:
    """(fit seconds, predict seconds, model) of the default model on ``X`` with ``store``."""
    model = FusionClassifier(cache=store, random_state=0, verbose=0)
    fit_seconds, _ = timed(lambda: model.fit(X, y, groups=groups))
    predict_seconds, _ = timed(lambda: model.predict_proba(X))
    return fit_seconds, predict_seconds, model


def row(name: str, n: int, fit_seconds: float, predict_seconds: float) -> str:
    return (f"| {name} | {n} | {fit_seconds:.1f} | {1000 * fit_seconds / n:.1f} | {predict_seconds:.1f} | "
            f"{1000 * predict_seconds / n:.2f} |")


def single_image_latency(model: FusionClassifier, isic: tuple, folder: str, n_images: int = LATENCY_IMAGES) -> None:
    """Print the latency of ``predict_proba`` on one new image at a time (an empty store: every image is new)."""
    model.set_params(cache=EmbeddingStore(os.path.join(folder, "latency")))
    new = isic[0].sample(n_images, random_state=0)
    model.predict_proba(new.iloc[:1])  # the first call loads the encoders
    latencies = []
    for index in range(1, len(new)):
        started = time.perf_counter()
        model.predict_proba(new.iloc[index:index + 1])
        latencies.append(time.perf_counter() - started)
    median, p95 = np.percentile(latencies, [50, 95]) * 1000
    print(f"\npredict_proba on one new image (cold store, model warm; {len(latencies)} SIIM-ISIC 2020 images, one "
          f"call each): median {median:.0f} ms, 95th percentile {p95:.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_argument(parser)
    parser.add_argument("--no-ham", action="store_true", help="skip the 10,015 HAM10000 images")
    parser.add_argument("--latency-only", action="store_true", help="only the single-image latency")
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)),
                        help="SIIM-ISIC 2020 sizes fitted warm, first N images; the largest also fits the latency "
                             "model (default: %(default)s)")
    parser.add_argument("--cold-sizes", default=",".join(map(str, COLD_SIZES)),
                        help="sizes also fitted cold (default: %(default)s)")
    parser.add_argument("--latency-images", type=int, default=LATENCY_IMAGES,
                        help="images whose single-image latency is timed, the first not counted (default: %(default)s)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    warm_sizes, cold_sizes = (tuple(int(n) for n in text.split(",") if n) for text in (args.sizes, args.cold_sizes))
    isic = tuple(part.iloc[: max(warm_sizes)] for part in load_isic2020(args.data / "isic2020"))
    warm = EmbeddingStore(default_store_path())  # the user's store: filled once, reused by later benchmarks
    print(f"default FusionClassifier (Lite0 + Lite2, lesion features), {os.cpu_count()} cores\n")
    with tempfile.TemporaryDirectory(prefix="melagbm-scaling-") as folder:
        if not args.latency_only:
            sizes(isic, warm, folder, with_ham=not args.no_ham, data=args.data, warm_sizes=warm_sizes,
                  cold_sizes=cold_sizes)
        # the model fitted on the largest size (all 2,701 by default)
        single_image_latency(fit_and_predict(*isic, warm)[2], isic, folder, args.latency_images)


def sizes(isic: tuple, warm: EmbeddingStore, folder: str, *, with_ham: bool, data,  # noqa: ANN001
          warm_sizes: tuple[int, ...] = SIZES, cold_sizes: tuple[int, ...] = COLD_SIZES) -> None:
    """Print the fit and predict time of each size, cold and warm."""
    print("| store | images | fit s | fit ms/image | predict s | predict ms/image |")
    print("|---|---|---|---|---|---|", flush=True)
    for n in cold_sizes:
        X, y, groups = (part.iloc[:n] for part in isic)
        cold = EmbeddingStore(os.path.join(folder, f"cold-{n}"))
        print(row("cold (SIIM-ISIC 2020)", n, *fit_and_predict(X, y, groups, cold)[:2]), flush=True)
    fit_and_predict(*isic, warm)  # fills the store
    for n in warm_sizes:
        X, y, groups = (part.iloc[:n] for part in isic)
        print(row("warm (SIIM-ISIC 2020)", n, *fit_and_predict(X, y, groups, warm)[:2]), flush=True)
    if with_ham:
        ham = load_ham10000(data / "ham10000")
        fit_and_predict(*ham, warm)  # fills the store
        print(row("warm (HAM10000)", len(ham[0]), *fit_and_predict(*ham, warm)[:2]), flush=True)


if __name__ == "__main__":
    main()
