"""Grouped 5-fold CV quality of melagbm's models on real dermoscopy.

HAM10000 (melanoma vs. rest) is grouped by lesion, the SIIM-ISIC 2020 subset and the
full 33,126-row ISIC 2020 metadata (no images: metadata-only model) by patient.
Prints, from out-of-fold predictions (melagbm.evaluation.cross_validate), ROC AUC and
partial AUC above 80 % TPR (ISIC 2024 scoring, 0-0.2) with 95 % bootstrap intervals
over groups, sensitivity at 90 % specificity, and sensitivity / specificity at each
fold model's operating threshold (chosen for 90 % sensitivity on its training folds),
for metadata-only, image-only and fused models and each way the image can enter. Each row after the
first also gets its paired difference from the first row computed, the reference row (melagbm.evaluation.compare_scores: ROC AUC and
pAUC, the same groups drawn for both models, with a 95 % interval and a bootstrap p-value), so what a
choice earns is measured on the same patients, not read off two overlapping intervals.

    python benchmarks/quality.py                      # everything (about 50 min on 2 cores, warm store)
    python benchmarks/quality.py --datasets ham --only default,metadata
    python benchmarks/quality.py --datasets isic-meta --only metadata
    python benchmarks/quality.py --datasets isic --only default --report reports/   # + melagbm evaluate report
    python benchmarks/quality.py --datasets published --only default,image          # beside published probes

"published": the 1,503 HAM10000 test images of ``ham10000/reference_linear_probes.csv`` (melanoma
probabilities of linear probes on frozen foundation encoders, from the DermFM-Zero repository). melagbm is
fitted on the other images twice: without the 778 other images of the test lesions (lesion-grouped), and
with them (as an image split would be); its ROC AUC on the 1,503 images is printed beside theirs.

Embeddings come from (and go to) the embedding store, so the first run also embeds
every image once per backbone (HAM10000: about 10 min for Lite0, 20 for Lite2 on 2 cores).
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from _common import add_data_argument  # benchmarks/_common.py
from sklearn.metrics import roc_auc_score

from melagbm import FusionClassifier
from melagbm.backbones.derm_xception import TRAINED_ON
from melagbm.datasets import load_ham10000, load_isic2020
from melagbm.evaluation import compare_scores, cross_validate
from melagbm.evaluation.report import write_report

LITE0, LITE1, LITE2, DERM = "tf_efficientnet_lite0", "tf_efficientnet_lite1", "tf_efficientnet_lite2", "derm_xception"

#: The dataset behind each --datasets key, as melagbm.backbones.derm_xception.TRAINED_ON names them.
DATASET_IDS = {"ham": "ham10000", "isic": "isic2020", "isic-meta": "isic2020"}

#: The image and metadata alone, as melagbm fused them before lesion features, patient context and lesion pooling.
PLAIN = {"lesion_features": False, "patient_col": None, "lesion_col": None}

#: name -> (description, FusionClassifier parameters); image_col=None means metadata only.
#: ISIC frames carry ``patient_id`` (so the default adds patient context) unless patient_col is None.
CONFIGS: dict[str, tuple[str, dict]] = {
    "metadata": ("metadata only (age, sex, site)", {"image_col": None, "patient_col": None}),
    "image": ("image only (default image features)", {"metadata_cols": [], **PLAIN}),
    "default": ("fused, default: probe score of 3 views (Lite0 at 224 and 384 px, Lite2 at 320 px), lesion "
                "features, patient context (ISIC), lesion pooling (HAM)", {}),
    "pair": ("the default before issue 18's views: Lite0 + Lite2 at timm's sizes (224 / 260 px, centre crop)",
             {"backbone": (LITE0, LITE2)}),
    "plain": ("fused image + metadata only (no lesion features, no patient context)", PLAIN),
    "probe-cv": ("default, the probe's C chosen by grouped CV (probe_C='cv')", {"probe_C": "cv"}),
    "single-seed": ("default with one internal split (n_seeds=1, as in 0.1.0)", {"n_seeds": 1}),
    "no-lesion": ("default without lesion features (patient context only)", {"lesion_features": False}),
    "no-context": ("default without patient context (lesion features only)", {"patient_col": None}),
    "no-pooling": ("default without lesion pooling (lesion_col=None: each image scored alone)", {"lesion_col": None}),
    "dx-no-pooling": ("default + diagnosis_col, without lesion pooling",
                      {"diagnosis_col": "diagnosis", "lesion_col": None}),
    "subsample": ("default, LightGBM rows and columns subsampled (0.8 each round)",
                  {"booster_params": {"subsample": 0.8, "subsample_freq": 1, "colsample_bytree": 0.8}}),
    "pca": ("plain, image_features=pca (32 components)", {"image_features": "pca", **PLAIN}),
    "probe+pca": ("plain, image_features=probe+pca", {"image_features": "probe+pca", **PLAIN}),
    "lite0": ("plain, Lite0 only, 4 levels, probe", {"backbone": LITE0, **PLAIN}),
    "lite2": ("plain, Lite2 only, 4 levels, probe", {"backbone": LITE2, **PLAIN}),
    "lite0-flip": ("plain, Lite0 only, 4 levels, probe, flip TTA", {"backbone": LITE0, "tta": "flip", **PLAIN}),
    "lite0-rot4": ("plain, Lite0 only, 4 levels, probe, quarter-turn TTA", {"backbone": LITE0, "tta": "rot4", **PLAIN}),
    "lite0-last": ("plain, Lite0 only, last layer only, probe", {"backbone": LITE0, "layers": 1, **PLAIN}),
    "naive": (
        "naive: Lite0 last layer, raw embedding into LightGBM",
        {"backbone": LITE0, "layers": 1, "image_features": "embedding", **PLAIN},
    ),
    "xgboost": ("fused, default, XGBoost booster", {"booster": "xgboost"}),
    "dx-target": ("default, the probe learns every diagnosis (diagnosis_col)", {"diagnosis_col": "diagnosis"}),
    "lite012": ("default with all three packaged backbones (Lite0 + Lite1 + Lite2)",
                {"backbone": (LITE0, LITE1, LITE2)}),
    "flip": ("default, flip TTA on both backbones", {"tta": "flip"}),
    "leaves80": ("default, LightGBM min_child_samples=80", {"booster_params": {"min_child_samples": 80}}),
    "dx-lite012": ("default + diagnosis_col, Lite0 + Lite1 + Lite2",
                   {"diagnosis_col": "diagnosis", "backbone": (LITE0, LITE1, LITE2)}),
    "dx-plain": ("plain, the probe learns every diagnosis (diagnosis_col)", {"diagnosis_col": "diagnosis", **PLAIN}),
    "per-backbone": (
        "plain, the default views with a probe each (image_signal=per_backbone)", {"image_signal": "per_backbone", **PLAIN}
    ),
    "views2": ("default with two views: Lite0 at 384 px, Lite2 at 320 px, no margin cropped",
               {"backbone": (f"{LITE0}@384", f"{LITE2}@320")}),
    "derm": ("plain, derm_xception only (HAM10000-trained), 4 levels, probe", {"backbone": DERM, **PLAIN}),
    "lite0+derm": ("plain, Lite0 + derm_xception, probe", {"backbone": (LITE0, DERM), **PLAIN}),
    "lite0+lite2+derm": ("plain, Lite0 + Lite2 + derm_xception, probe", {"backbone": (LITE0, LITE2, DERM), **PLAIN}),
    "lite0+derm-flip": (
        "plain, Lite0 + derm_xception, probe, flip TTA", {"backbone": (LITE0, DERM), "tta": "flip", **PLAIN}
    ),
}


def published_split(data: Path, names: list[str], seed: int) -> None:
    """melagbm's ROC AUC on the 1,503 published test images, fitted lesion-grouped and with siblings, beside theirs."""
    reference = pd.read_csv(data / "ham10000" / "reference_linear_probes.csv").set_index("image_id")
    X, y, groups = load_ham10000(data / "ham10000", diagnosis=True)
    test = X.index.isin(reference.index)
    siblings = groups.isin(groups[test]).to_numpy() & ~test
    X_test, y_test = X[test], y[test]
    print(f"\n## HAM10000, the published test split: {test.sum()} images ({int(y_test.sum())} melanomas) from "
          f"{groups[test].nunique()} lesions; {siblings.sum()} other images of those lesions")
    print("| model | ROC AUC, fitted without the test lesions (grouped) | ROC AUC, fitted with their other images |")
    print("|---|---|---|")
    for encoder in reference.columns:
        auc = roc_auc_score(y_test, reference.loc[X_test.index, encoder])
        print(f"| {encoder}, linear probe (published, 7 classes; training split not stated) | {auc:.4f} | |")
    for name in names:
        description, params = CONFIGS[name]
        aucs = []
        for train in (~test & ~siblings, ~test):
            used = X if params.get("diagnosis_col") else X.drop(columns="diagnosis")  # a target only when named
            model = FusionClassifier(random_state=seed, verbose=0, **params)
            model.fit(used[train], y[train], groups=groups[train])
            aucs.append(roc_auc_score(y_test, model.predict_proba(used[test])[:, 1]))
        print(f"| melagbm: {description} | {aucs[0]:.4f} | {aucs[1]:.4f} |", flush=True)


def paired_cells(first: pd.DataFrame, oof: pd.DataFrame, n_bootstrap: int, seed: int) -> str:
    """Two table cells: this row's ROC AUC and pAUC minus the reference row's, paired by group."""
    if oof is first:
        return "(reference row) | "
    table = compare_scores(oof["y"], first["proba"], oof["proba"], groups=oof["group"], n_bootstrap=n_bootstrap,
                           random_state=seed)
    cell = lambda metric: (  # noqa: E731
        f"{table.loc[metric, 'difference']:+.4f} [{table.loc[metric, 'ci_low']:+.3f}, {table.loc[metric, 'ci_high']:+.3f}]"
    )
    return f"{cell('roc_auc')}, p {table.loc['roc_auc', 'p_value']:.3f} | {cell('pauc_80')}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_argument(parser)
    parser.add_argument("--datasets", default="ham,isic")
    parser.add_argument("--only", default=",".join(CONFIGS), help=f"comma-separated subset of {list(CONFIGS)}")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples (by group) for the CIs")
    parser.add_argument("--report", type=Path, default=None, help="also write a melagbm evaluate report per model")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=UserWarning)

    loaders = {
        "ham": ("HAM10000, melanoma vs rest, 5-fold grouped by lesion",
                lambda: load_ham10000(args.data / "ham10000", diagnosis=True)),
        "isic": ("SIIM-ISIC 2020 subset, 5-fold grouped by patient",
                 lambda: load_isic2020(args.data / "isic2020", diagnosis=True)),
        "isic-meta": (
            "full ISIC 2020 metadata (no images), 5-fold grouped by patient",
            lambda: load_isic2020(args.data / "isic2020", metadata="ISIC_2020_Training_GroundTruth.csv", image_dir=None),
        ),
    }
    for key in args.datasets.split(","):
        if key == "published":
            published_split(args.data, args.only.split(","), args.seed)
            continue
        title, load = loaders[key]
        X, y, groups = load()
        wanted = [CONFIGS[name][1] for name in args.only.split(",")]
        if "image" in X and any(
            params.get("lesion_features", True) and params.get("image_col", "image") is not None for params in wanted
        ):
            from melagbm.features.lesion import LesionFeatures

            started = time.perf_counter()  # measure every image once, in parallel; the folds then read the store
            LesionFeatures(n_jobs=2).fit().transform(X["image"])
            print(f"(lesion features for {len(X)} images: {time.perf_counter() - started:.0f} s on 2 processes)")
        print(f"\n## {title}: {len(X)} images, {int(y.sum())} melanomas, {groups.nunique()} groups", flush=True)
        print("| model | ROC AUC [95% CI] | pAUC >80% TPR [95% CI] | sens @ 90% spec | sens / spec at threshold | "
              "ROC AUC - reference row [95% CI], p | pAUC - reference row [95% CI] | seconds |")
        print("|---|---|---|---|---|---|---|---|", flush=True)
        first = None  # the out-of-fold predictions of the reference row (the first computed), the others' baseline
        for name in args.only.split(","):
            description, params = CONFIGS[name]
            if "image" not in X.columns and params.get("image_col", "image") is not None:
                continue  # an image model on a dataset without images
            backbones = np.atleast_1d(params.get("backbone", ())).tolist()
            if DERM in backbones and DATASET_IDS[key] in TRAINED_ON:  # never report training data as generalisation
                print(f"| {description} | refused: derm_xception was trained on {key}; not a fair test | | | | | | |")
                continue
            data = X.drop(columns="image") if params.get("image_col", "image") is None and "image" in X else X
            if "diagnosis" in data and params.get("diagnosis_col") is None:  # a training target only when named
                data = data.drop(columns="diagnosis")
            if key != "ham" and params.get("patient_col", "auto") is not None:  # HAM10000's groups are lesions
                data = data.assign(patient_id=groups.to_numpy())
            started = time.perf_counter()
            result = cross_validate(
                FusionClassifier(random_state=args.seed, **params), data, y, groups,
                n_splits=args.folds, n_bootstrap=args.bootstrap, random_state=args.seed,
                top_k=None if key == "ham" else 1,  # HAM10000 groups are lesions, not patients
            )
            m = result.metrics
            cell = lambda metric: (  # noqa: E731
                f"{m.loc[metric, 'value']:.4f} [{m.loc[metric, 'ci_low']:.3f}, {m.loc[metric, 'ci_high']:.3f}]"
            )
            seconds = time.perf_counter() - started
            first = result.oof if first is None else first
            print(
                f"| {description} | {cell('roc_auc')} | {cell('pauc_80')} | {m.loc['sens_at_spec90', 'value']:.3f} | "
                f"{m.loc['sensitivity', 'value']:.3f} / {m.loc['specificity', 'value']:.3f} | "
                f"{paired_cells(first, result.oof, args.bootstrap, args.seed)} | {seconds:.0f} |",
                flush=True,
            )
            if args.report:
                folder = args.report / f"{key}-{name}"
                write_report(result, folder, title=f"{title}: {description}")


if __name__ == "__main__":
    main()
