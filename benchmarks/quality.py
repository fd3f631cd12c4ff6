"""Grouped 5-fold CV quality of melagbm's models on real dermoscopy.

HAM10000 (melanoma vs. rest) is grouped by lesion, the SIIM-ISIC 2020 subset by
patient. Prints ROC AUC, partial AUC above 80 % TPR (ISIC 2024 scoring, 0-0.2) and
sensitivity at 90 % specificity from out-of-fold predictions, for metadata-only,
image-only and fused models and for each way the image can enter the booster.

    python benchmarks/quality.py                      # everything (about 40 min on 2 cores, warm store)
    python benchmarks/quality.py --datasets ham --only default,metadata

Embeddings come from (and go to) the embedding store, so the first run also embeds
every image once per backbone (HAM10000: about 10 min for Lite0, 20 for Lite2 on 2 cores).
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold

from melagbm import FusionClassifier
from melagbm.datasets import load_ham10000, load_isic2020
from melagbm.evaluation import summarize

LITE0, LITE2 = "tf_efficientnet_lite0", "tf_efficientnet_lite2"

#: name -> (description, FusionClassifier parameters); image_col=None means metadata only.
CONFIGS: dict[str, tuple[str, dict]] = {
    "metadata": ("metadata only (age, sex, site)", {"image_col": None}),
    "image": ("image only (default image features)", {"metadata_cols": []}),
    "default": ("fused, default: Lite0+Lite2, 4 levels, probe score", {}),
    "pca": ("fused, image_features=pca (32 components)", {"image_features": "pca"}),
    "probe+pca": ("fused, image_features=probe+pca", {"image_features": "probe+pca"}),
    "lite0": ("fused, Lite0 only, 4 levels, probe", {"backbone": LITE0}),
    "lite2": ("fused, Lite2 only, 4 levels, probe", {"backbone": LITE2}),
    "lite0-flip": ("fused, Lite0 only, 4 levels, probe, flip TTA", {"backbone": LITE0, "tta": "flip"}),
    "lite0-last": ("fused, Lite0 only, last layer only, probe", {"backbone": LITE0, "layers": 1}),
    "naive": (
        "naive: Lite0 last layer, raw embedding into LightGBM",
        {"backbone": LITE0, "layers": 1, "image_features": "embedding"},
    ),
    "xgboost": ("fused, default, XGBoost booster", {"booster": "xgboost"}),
}


def grouped_oof(params: dict, X: pd.DataFrame, y: pd.Series, groups: pd.Series, folds: int, seed: int) -> np.ndarray:
    """Out-of-fold melanoma probabilities from a lesion/patient-grouped stratified CV."""
    data = X.drop(columns="image") if params.get("image_col", "image") is None else X
    scores = np.zeros(len(y))
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train, test in splitter.split(data, y, groups):
        model = FusionClassifier(random_state=seed, **params)
        model.fit(data.iloc[train], y.iloc[train], groups=groups.iloc[train])
        scores[test] = model.predict_proba(data.iloc[test])[:, 1]
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_data = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("MELAGBM_DATA", default_data)))
    parser.add_argument("--datasets", default="ham,isic")
    parser.add_argument("--only", default=",".join(CONFIGS), help=f"comma-separated subset of {list(CONFIGS)}")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=UserWarning)

    loaders = {
        "ham": ("HAM10000, melanoma vs rest, 5-fold grouped by lesion", lambda: load_ham10000(args.data / "ham10000")),
        "isic": ("SIIM-ISIC 2020 subset, 5-fold grouped by patient", lambda: load_isic2020(args.data / "isic2020")),
    }
    for key in args.datasets.split(","):
        title, load = loaders[key]
        X, y, groups = load()
        print(f"\n## {title}: {len(X)} images, {int(y.sum())} melanomas, {groups.nunique()} groups", flush=True)
        print("| model | ROC AUC | pAUC >80% TPR | sens @ 90% spec | seconds |")
        print("|---|---|---|---|---|", flush=True)
        for name in args.only.split(","):
            description, params = CONFIGS[name]
            started = time.perf_counter()
            metrics = summarize(y.to_numpy(), grouped_oof(params, X, y, groups, args.folds, args.seed))
            print(
                f"| {description} | {metrics['roc_auc']:.4f} | {metrics['pauc_80']:.4f} | "
                f"{metrics['sens_at_spec90']:.3f} | {time.perf_counter() - started:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
