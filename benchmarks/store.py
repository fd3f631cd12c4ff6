"""Cold vs. warm fit of the default FusionClassifier on the SIIM-ISIC 2020 subset.

The cold fit starts from an empty embedding store (every image embedded by every
backbone); the warm fit of a fresh, identical model finds them all stored. Then a
look-up of every image's vector, straight from a new store object. Prints the times
and the cold/warm ratio.

    python benchmarks/store.py                    # about 6 min on 2 cores
    python benchmarks/store.py --n-images 300     # a quick run

The store is a temporary directory, removed at the end (``--keep`` to keep it).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
from _common import add_data_argument, timed  # benchmarks/_common.py

from melagbm import EmbeddingStore, FusionClassifier
from melagbm.datasets import load_isic2020
from melagbm.images import content_hash


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_argument(parser)
    parser.add_argument("--n-images", type=int, default=None, help="first N images only (default: all)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary store")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=UserWarning)

    X, y, groups = load_isic2020(args.data / "isic2020")
    if args.n_images:
        X, y, groups = X.iloc[: args.n_images], y.iloc[: args.n_images], groups.iloc[: args.n_images]
    root = Path(tempfile.mkdtemp(prefix="melagbm-store-bench-"))
    try:
        def fit():
            return FusionClassifier(cache=EmbeddingStore(root), random_state=0).fit(X, y, groups=groups)

        print(f"SIIM-ISIC 2020 subset: {len(X)} images, {int(y.sum())} melanomas, {groups.nunique()} patients")
        cold, cold_model = timed(fit)
        print(f"backbones: {', '.join(e.backbone for e in cold_model.embedders_)}; store {root}")
        print(f"cold fit (empty store):   {cold:8.1f} s", flush=True)
        warm, warm_model = timed(fit)
        print(f"warm fit (all stored):    {warm:8.1f} s", flush=True)
        same = np.allclose(cold_model.predict_proba(X), warm_model.predict_proba(X), atol=1e-6)
        print(f"cold/warm ratio:          {cold / warm:8.1f}x   (same predictions: {same})")

        hash_time, keys = timed(lambda: [content_hash(path) for path in X["image"]])
        print(f"hashing {len(keys)} images:     {hash_time:8.2f} s")
        for embedder in warm_model.embedders_:
            store = EmbeddingStore(root)  # a new object: its index is read from disk
            first, vectors = timed(lambda: store.get_many(embedder.encoder_id_, keys))
            again, _ = timed(lambda: store.get_many(embedder.encoder_id_, keys))
            assert all(v is not None for v in vectors)
            print(
                f"look-up of {len(keys)} vectors ({embedder.backbone}, {embedder.n_features_out_}-d): "
                f"{first:.2f} s from a new store object, {again:.2f} s again"
            )
        stats = EmbeddingStore(root).stats()
        print(f"store: {stats['entries']} entries in {stats['shards']} shards, {stats['bytes'] / 2**20:.1f} MiB")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
