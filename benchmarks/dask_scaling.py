"""Embedding and training time on Dask, 1 and 2 workers, beside the single-process path.

On the SIIM-ISIC 2020 subset (``--n`` rows: every melanoma, negatives drawn at random),
for each configuration, each with a fresh embedding store:

- embed: the images into the store (Lite0, 4 levels): ``ImageEmbedder.transform`` in one
  process, ``melagbm.dask.embed`` on the cluster;
- fit: the classifier, with the embeddings already stored, so this is lesion measurement,
  the out-of-fold image probe, the table and the booster: ``FusionClassifier.fit`` in one
  process, ``DaskFusionClassifier.fit`` on the cluster (xgboost.dask or lightgbm.dask).

Workers are processes with one thread each (a LocalCluster on this machine); the
single-process path uses every core. Ratios are printed beside the times.

    python benchmarks/dask_scaling.py                     # 1,000 images, about 15 min on 2 cores
    python benchmarks/dask_scaling.py --n 2701 --booster xgboost
    python benchmarks/dask_scaling.py --n 50 --workers 1 --n-seeds 1   # smoke run
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np
from _common import add_data_argument, timed  # benchmarks/_common.py


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_argument(parser)
    parser.add_argument("--n", type=int, default=1000, help="images of the ISIC 2020 subset")
    parser.add_argument("--booster", default="lightgbm", choices=["lightgbm", "xgboost"])
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument("--n-seeds", type=int, default=None,
                        help="boosters averaged per model, FusionClassifier's n_seeds (default: the library's)")
    args = parser.parse_args()

    import dask.dataframe as dd
    from distributed import Client, LocalCluster
    from sklearn.metrics import roc_auc_score

    from melagbm import FusionClassifier, ImageEmbedder
    from melagbm.dask import DaskFusionClassifier, embed
    from melagbm.datasets import load_isic2020

    X, y, patients = load_isic2020(args.data / "isic2020")
    if args.n < len(X):  # every melanoma, and negatives drawn at random
        X, y, patients = load_isic2020(args.data / "isic2020", n_samples=args.n,
                                       positive_fraction=int(y.sum()) / args.n, random_state=0)
    X = X.assign(patient_id=patients.to_numpy())
    params = {"backbone": "tf_efficientnet_lite0", "booster": args.booster, "random_state": 0,
              **({} if args.n_seeds is None else {"n_seeds": args.n_seeds})}
    print(f"{len(X)} SIIM-ISIC 2020 subset images ({int(y.sum())} melanomas, {X['patient_id'].nunique()} patients); "
          f"{os.cpu_count()} CPU cores; {args.booster}; Lite0, 4 levels, lesion features, patient context\n")
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        store = Path(folder) / "single"
        embed_s, _ = timed(lambda: ImageEmbedder(backbone="tf_efficientnet_lite0", layers=4, cache=store)
                            .fit().transform(X["image"]))
        fit_s, model = timed(lambda: FusionClassifier(cache=store, **params).fit(X, y))
        rows.append(("single process (FusionClassifier)", embed_s, fit_s, model))
        for n_workers in (int(n) for n in args.workers.split(",")):
            store = Path(folder) / f"workers-{n_workers}"
            with LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                              dashboard_address=None) as cluster, Client(cluster):
                frame = dd.from_pandas(X.assign(target=y.to_numpy()), npartitions=4 * n_workers)
                embed_s, _ = timed(lambda: embed(frame, "tf_efficientnet_lite0", layers=4, cache=store))
                fit_s, model = timed(lambda: DaskFusionClassifier(cache=store, **params).fit(
                    frame.drop(columns="target"), frame["target"]))
            rows.append((f"Dask, {n_workers} worker(s) x 1 thread (DaskFusionClassifier)", embed_s, fit_s, model))
        # scored while every store still exists (the vectors and lesion features come from it)
        scores = {name: model.predict_proba(X)[:, 1] for name, _, _, model in rows}

    single_embed = rows[0][1]
    one_worker = next((r for r in rows if r[0].startswith("Dask, 1 ")), rows[0])
    print("| path | embed, s | images/s | fit, s | embed vs single | embed vs 1 worker | fit vs 1 worker |")
    print("|---|---|---|---|---|---|---|")
    for name, embed_s, fit_s, _ in rows:
        print(f"| {name} | {embed_s:.1f} | {len(X) / embed_s:.1f} | {fit_s:.1f} | {single_embed / embed_s:.2f}x | "
              f"{one_worker[1] / embed_s:.2f}x | {one_worker[2] / fit_s:.2f}x |")
    print()
    reference = scores[rows[0][0]]
    for name, score in scores.items():
        print(f"{name}: training-set ROC AUC {roc_auc_score(y, score):.4f}, "
              f"max |p - single process| {np.max(np.abs(score - reference)):.4f}")


if __name__ == "__main__":
    main()
