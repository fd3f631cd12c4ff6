"""Which views of the packaged encoders give the best image score: each encoder at several input sizes.

A view is an encoder fed one input size (``"tf_efficientnet_lite0@384"``: 384 x 384 pixels, no margin
cropped; the bare name: timm's own size and centre crop). For each view alone and for combinations
(embeddings concatenated), this prints the out-of-fold ROC AUC and pAUC above 80 % TPR of melagbm's
image probe (``ImageSignal``: standardised embeddings, L2 logistic regression at C = 2 / width, 5 folds
grouped by lesion / patient), image only, no booster; and each view's embedding time on the CPU
(64 images, no store, after one warm-up pass). A combination costs the sum of its views.

    python benchmarks/views.py                      # HAM10000 (10,015 images) and the ISIC 2020 subset
    python benchmarks/views.py --datasets ham       # about 20 min on 2 cores with an empty store, 2 min warm
    python benchmarks/views.py --datasets ham --images 80 \\
        --views tf_efficientnet_lite0,tf_efficientnet_lite0@224   # smoke run

The default of FusionClassifier (melagbm.backbones.DEFAULT_BACKBONES) is the combination chosen here.
"""

from __future__ import annotations

import argparse

import numpy as np
from _common import add_data_argument, timed  # benchmarks/_common.py

from melagbm import ImageEmbedder
from melagbm.backbones import DEFAULT_BACKBONES
from melagbm.datasets import load_ham10000, load_isic2020
from melagbm.evaluation import partial_auc, roc_auc
from melagbm.features.image_score import ImageSignal

LITE0, LITE2 = "tf_efficientnet_lite0", "tf_efficientnet_lite2"

#: Views measured alone, then the combinations below.
VIEWS = (LITE0, f"{LITE0}@224", f"{LITE0}@288", f"{LITE0}@320", f"{LITE0}@384",
         LITE2, f"{LITE2}@320", f"{LITE2}@384")
COMBINATIONS = (
    (LITE0, LITE2),  # the default pair before views
    (f"{LITE0}@288", f"{LITE2}@320"),
    (f"{LITE0}@384", f"{LITE2}@320"),
    (f"{LITE0}@384", f"{LITE2}@384"),
    (f"{LITE0}@224", f"{LITE0}@384"),
    (f"{LITE0}@224", f"{LITE2}@320"),
    (f"{LITE0}@224", f"{LITE0}@320", f"{LITE2}@320"),
    (f"{LITE0}@288", f"{LITE0}@384", f"{LITE2}@320"),
    (f"{LITE0}@224", f"{LITE0}@384", f"{LITE2}@384"),
    DEFAULT_BACKBONES,
    (f"{LITE0}@224", f"{LITE0}@320", f"{LITE0}@384", f"{LITE2}@384"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_argument(parser)
    parser.add_argument("--datasets", default="ham,isic", help="comma-separated: ham, isic")
    parser.add_argument("--images", type=int, default=None,
                        help="this many images of each data set, drawn at random (default: all)")
    parser.add_argument("--views", default=",".join(VIEWS),
                        help="comma-separated views measured; only the combinations of these follow (default: all)")
    args = parser.parse_args()
    views_measured = tuple(args.views.split(","))
    combinations = [views for views in COMBINATIONS if set(views) <= set(views_measured)]
    loaders = {"ham": lambda: load_ham10000(args.data / "ham10000", n_samples=args.images),
               "isic": lambda: load_isic2020(args.data / "isic2020", n_samples=args.images)}
    timing = None
    for key in args.datasets.split(","):
        X, y, groups = loaders[key]()
        images = X["image"].tolist()
        if timing is None:
            timing = {view: milliseconds_per_image(view, images[:64]) for view in views_measured}
        embeddings = {view: ImageEmbedder(backbone=view, layers=4, verbose=0).fit().transform(images)
                      for view in views_measured}
        print(f"\n## {key}: {len(y)} images, {int(y.sum())} melanomas, {groups.nunique()} groups; image probe only, "
              "out of fold, 5-fold grouped")
        print("| views | dimensions | ROC AUC | pAUC >80% TPR | embedding, ms/image |")
        print("|---|---|---|---|---|")
        for views in [(view,) for view in views_measured] + combinations:
            stacked = np.hstack([embeddings[view] for view in views])
            score = ImageSignal().fit_transform(stacked, y.to_numpy(), groups.to_numpy())["image__score"].to_numpy()
            marker = " (default)" if tuple(views) == DEFAULT_BACKBONES else ""
            print(f"| {' + '.join(views)}{marker} | {stacked.shape[1]} | {roc_auc(y, score):.4f} | "
                  f"{partial_auc(y, score):.4f} | {sum(timing[view] for view in views):.1f} |", flush=True)


def milliseconds_per_image(view: str, images: list[str]) -> float:
    """Embedding time of ``view`` on ``images`` (no store), after a warm-up pass on a few of them."""
    embedder = ImageEmbedder(backbone=view, layers=4, cache=None, verbose=0).fit()
    embedder.transform(images[:8])
    seconds, _ = timed(lambda: embedder.transform(images))
    return 1000 * seconds / len(images)


if __name__ == "__main__":
    main()
