"""Early stopping with few melanomas: does a booster stopped after a round or two on a noisy split hurt?

``--dataset isic`` (the default): each repeat draws 120 patients of the full ISIC 2020 metadata (about 2,000 images
and 20-40 melanomas: each booster's validation split holds a handful) and scores every image out of fold (5-fold,
patient-grouped) with a metadata-only model (age, sex, site, patient context) under each rule below.
``--dataset ham`` / ``bcn``: each repeat draws ``--images`` images of HAM10000 / BCN20000 as whole lesions (400:
about 45 / 90 melanomas) and fits the default model with its images, lesion-grouped. Printed per rule: the mean ROC
AUC over the repeats, its paired difference from the default with a 95 % bootstrap interval over patients (lesions;
all repeats pooled), and the spread of the boosters' rounds.

    python benchmarks/early_stopping.py                  # 4 repeats, every rule (about 6 min on 2 cores)
    python benchmarks/early_stopping.py --dataset ham --repeats 2 --only default,single,fixed-150   # with images
    python benchmarks/early_stopping.py --repeats 1 --only default,fixed-50   # smoke run
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import add_data_argument  # noqa: E402  (benchmarks/_common.py)

from melagbm import FusionClassifier  # noqa: E402
from melagbm.evaluation import compare_scores  # noqa: E402

#: name -> (what it is, FusionClassifier parameters).
RULES: dict[str, tuple[str, dict]] = {
    "default": ("five boosters, each stopped early on its own grouped split, averaged", {}),
    "single": ("one booster stopped early on one split (n_seeds=1)", {"n_seeds": 1}),
    "fixed-50": ("five boosters of 50 rounds, no early stopping",
                 {"early_stopping": False, "booster_params": {"n_estimators": 50}}),
    "fixed-150": ("five boosters of 150 rounds, no early stopping",
                  {"early_stopping": False, "booster_params": {"n_estimators": 150}}),
    "fixed-400": ("five boosters of 400 rounds, no early stopping",
                  {"early_stopping": False, "booster_params": {"n_estimators": 400}}),
}


def main() -> None:
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedGroupKFold

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_argument(parser)
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--patients", type=int, default=120)
    parser.add_argument("--only", default=",".join(RULES), help="comma-separated rules; the first is the reference")
    parser.add_argument("--dataset", choices=("isic", "ham", "bcn"), default="isic",
                        help="isic: metadata of 120 patients; ham, bcn: --images images with the default model")
    parser.add_argument("--images", type=int, default=400, help="images drawn per repeat (ham, bcn)")
    args = parser.parse_args()
    names = args.only.split(",")
    scores: dict[str, list[pd.Series]] = {name: [] for name in names}
    rounds: dict[str, list[int]] = {name: [] for name in names}
    labels, patients = [], []
    for repeat in range(args.repeats):
        X, y, groups, with_images = sample(args, repeat)
        index = [f"{repeat}:{name}" for name in X.index]
        labels.append(pd.Series(y, index=index))
        patients.append(pd.Series([f"{repeat}:{p}" for p in groups], index=index))
        aucs = {}
        for name in names:
            oof = np.zeros(len(y))
            for train, test in StratifiedGroupKFold(5, shuffle=True, random_state=repeat).split(X, y, groups):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    model = FusionClassifier(image_col="image" if with_images else None, calibration=None,
                                             target_sensitivity=None, verbose=0,
                                             **RULES[name][1]).fit(X.iloc[train], y[train], groups=groups[train])
                oof[test] = model.decision_function(X.iloc[test])
                members = getattr(model.booster_, "rounds", None) or [model.n_estimators_]
                rounds[name] += list(members)
            scores[name].append(pd.Series(oof, index=index))
            aucs[name] = roc_auc_score(y, oof)
        print(f"repeat {repeat}: {int(y.sum())} melanomas; "
              + ", ".join(f"{name} {auc:.4f}" for name, auc in aucs.items()), flush=True)
    y_all, groups_all = pd.concat(labels), pd.concat(patients)
    reference = pd.concat(scores[names[0]])
    print(f"\n{'rule':<10} {'what':<70} {'mean AUC':>8}  {'minus ' + names[0]:<32} rounds (min, median, max)")
    for name in names:
        score = pd.concat(scores[name])
        mean_auc = np.mean([roc_auc_score(labels[r], scores[name][r]) for r in range(args.repeats)])
        paired = ""
        if name != names[0]:
            row = compare_scores(y_all, reference, score, groups=groups_all, n_bootstrap=500).loc["roc_auc"]
            paired = f"{row['difference']:+.4f} [{row['ci_low']:+.3f}, {row['ci_high']:+.3f}] p {row['p_value']:.3f}"
        low, middle, high = (int(value) for value in np.percentile(rounds[name], [0, 50, 100]))
        print(f"{name:<10} {RULES[name][0]:<70} {mean_auc:8.4f}  {paired:<32} ({low}, {middle}, {high})")


def sample(args: argparse.Namespace, repeat: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, bool]:
    """(X indexed by image name, y, patient or lesion ids, whether X has images) of one repeat."""
    if args.dataset == "isic":
        meta = pd.read_csv(args.data / "isic2020" / "ISIC_2020_Training_GroundTruth.csv")
        chosen = np.random.default_rng(repeat).choice(meta["patient_id"].unique(), args.patients, replace=False)
        rows = meta[meta["patient_id"].isin(chosen)].set_index("image_name")
        X = rows[["age_approx", "sex", "anatom_site_general_challenge", "patient_id"]]
        return X, rows["target"].to_numpy(), rows["patient_id"].to_numpy(), False
    from melagbm.datasets import load_bcn20000, load_ham10000

    load, folder = (load_ham10000, "ham10000") if args.dataset == "ham" else (load_bcn20000, "bcn20000")
    X, y, groups = load(args.data / folder, n_samples=args.images, random_state=repeat)
    X = X.set_axis([f"{folder}-{row}" for row in X.index])  # unique within a repeat
    return X, y.to_numpy(), groups.to_numpy(), True


if __name__ == "__main__":
    main()
