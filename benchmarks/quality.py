"""Quality of melagbm's models on real dermoscopy: grouped 5-fold CV on each data set, and across data sets.

HAM10000 and BCN20000 (melanoma vs. rest) are grouped by lesion, the SIIM-ISIC 2020 subset and the
full 33,126-row ISIC 2020 metadata (no images: metadata-only model) by patient. Across data sets
(``ham>bcn``: fitted on every HAM10000 image, scored on every BCN20000 image; ``bcn>ham`` the other way round;
both use the ISIC 2020 site vocabulary) the intervals are over the scored data set's lesions.
A default changes only when it wins on the mean of the data sets and loses on none beyond its interval
(docs/user_guide.md, "How a default is chosen").
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
    python benchmarks/quality.py --datasets ham,bcn,isic,ham>bcn,bcn>ham --only default,no-lesion   # the rule's five
    python benchmarks/quality.py --datasets isic-meta --only metadata
    python benchmarks/quality.py --datasets isic --only default --report reports/   # + melagbm evaluate report
    python benchmarks/quality.py --datasets published --only default,image          # beside published probes

"published": the 1,503 HAM10000 test images of ``ham10000/reference_linear_probes.csv`` (melanoma
probabilities of linear probes on frozen foundation encoders, from the DermFM-Zero repository). melagbm is
fitted on the other images twice: without the 778 other images of the test lesions (lesion-grouped), and
with them (as an image split would be); its ROC AUC on the 1,503 images is printed beside theirs.

Embeddings come from (and go to) the embedding store, so the first run also embeds
every image once per backbone (HAM10000: about 10 min for Lite0, 20 for Lite2 on 2 cores).

Each finished row is kept in ``--rows`` (benchmarks/results/quality_rows/ by default; one file per data set,
configuration, folds, seed, bootstrap and melagbm version, written atomically): a run stopped half-way and started
again prints the rows it has and computes only the rest (``--rows ''`` keeps nothing).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import pickle
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from _common import add_data_argument  # benchmarks/_common.py
from sklearn.metrics import roc_auc_score

import melagbm
from melagbm import FusionClassifier
from melagbm.datasets import load_bcn20000, load_ham10000, load_isic2020
from melagbm.evaluation import CVResult, compare_scores, cross_validate, metrics_table
from melagbm.evaluation.report import write_report

LITE0, LITE1, LITE2, DERM = "tf_efficientnet_lite0", "tf_efficientnet_lite1", "tf_efficientnet_lite2", "derm_xception"
DERM_LITE0 = "derm_lite0"

#: ``checkpoint_path=LEAVE_OUT`` gives derm_lite0 the weights trained without the scored data set
#: (training/derm_encoder.py's runs): HAM10000 is scored by the BCN20000-only encoder, BCN20000 by the
#: HAM10000-only one, the ISIC 2020 subset by the shipped encoder (trained on both).
LEAVE_OUT = "leave-one-data-set-out"
RUNS = Path(__file__).resolve().parents[1] / "training" / "runs"
LEFT_OUT_RUN = {"ham": RUNS / "bcn_only" / "derm_lite0.pt", "bcn": RUNS / "ham_only" / "derm_lite0.pt"}

#: The dataset behind each --datasets key, as melagbm.backbones.derm_xception.TRAINED_ON names them.
DATASET_IDS = {"ham": "ham10000", "bcn": "bcn20000", "isic": "isic2020", "isic-meta": "isic2020"}

#: The data sets a transfer setting fits on and scores.
TRANSFERS = {"ham>bcn": ("ham", "bcn"), "bcn>ham": ("bcn", "ham")}

#: BCN20000's diagnoses (ISIC 2019's) in HAM10000's words, so a diagnosis target means the same on both.
BCN_DIAGNOSIS_AS_HAM = {"MEL": "mel", "NV": "nv", "BCC": "bcc", "BKL": "bkl", "AK": "akiec", "SCC": "akiec",
                        "DF": "df", "VASC": "vasc"}

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
    "derm-lite0-image": ("image only, derm_lite0 trained without the scored data set (192 px)",
                         {"backbone": DERM_LITE0, "checkpoint_path": LEAVE_OUT, "metadata_cols": [], **PLAIN}),
    "derm-lite0": ("fused, default with derm_lite0 (trained without the scored data set) for the three views",
                   {"backbone": DERM_LITE0, "checkpoint_path": LEAVE_OUT}),
    "lite0-192-image": ("image only, ImageNet Lite0 at 192 px (derm_lite0's starting point)",
                        {"backbone": f"{LITE0}@192", "metadata_cols": [], **PLAIN}),
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


def transfer(model: FusionClassifier, source: tuple, target: tuple, n_bootstrap: int, seed: int) -> CVResult:
    """Fit ``model`` on every row of ``source`` (X, y, groups) and score every row of ``target``; the metrics
    resampled by the target's groups."""
    X_fit, y_fit, groups_fit = source
    X_test, y_test, groups_test = target
    model.fit(X_fit, y_fit, groups=groups_fit)
    proba = model.predict_proba(X_test)[:, 1]
    predicted = model.predict(X_test)
    oof = pd.DataFrame({"y": y_test.to_numpy(), "proba": proba, "predicted": predicted, "threshold": model.threshold_,
                        "fold": 0, "group": groups_test.to_numpy()}, index=X_test.index)
    metrics = metrics_table(oof["y"], oof["proba"], predicted=oof["predicted"], groups=oof["group"], top_k=None,
                            n_bootstrap=n_bootstrap, random_state=seed)
    return CVResult(oof=oof, metrics=metrics, n_splits=1, info={"grouped": True, "top_k": None})


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
    parser.add_argument("--rows", type=str, default=str(Path(__file__).parent / "results" / "quality_rows"),
                        help="folder keeping each finished row, so a stopped run resumes ('' keeps nothing)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=UserWarning)

    loaders = {
        "ham": ("HAM10000, melanoma vs rest, 5-fold grouped by lesion",
                lambda: load_ham10000(args.data / "ham10000", diagnosis=True)),
        "bcn": ("BCN20000, melanoma vs rest, 5-fold grouped by lesion",
                lambda: bcn_as_ham(load_bcn20000(args.data / "bcn20000", diagnosis=True))),
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
        names = args.only.split(",")
        if key in TRANSFERS:
            fit_on, scored = (loaders[part][1]() for part in TRANSFERS[key])
            title = (f"fitted on every {loaders[TRANSFERS[key][0]][0].split(',')[0]} image, scored on every "
                     f"{loaders[TRANSFERS[key][1]][0].split(',')[0]} image (intervals over its lesions)")
            measure_lesions(pd.concat([fit_on[0]["image"], scored[0]["image"]]), names)
            X, y, groups = scored
        else:
            title, load = loaders[key]
            X, y, groups = load()
            if "image" in X:
                measure_lesions(X["image"], names)
        print(f"\n## {key}: {title}: {len(X)} images, {int(y.sum())} melanomas, {groups.nunique()} groups", flush=True)
        print("| model | ROC AUC [95% CI] | pAUC >80% TPR [95% CI] | sens @ 90% spec | sens / spec at threshold | "
              "ROC AUC - reference row [95% CI], p | pAUC - reference row [95% CI] | seconds |")
        print("|---|---|---|---|---|---|---|---|", flush=True)
        first = None  # the out-of-fold predictions of the reference row (the first computed), the others' baseline
        for name in names:
            description, params = CONFIGS[name]
            if "image" not in X.columns and params.get("image_col", "image") is not None:
                continue  # an image model on a dataset without images
            params = left_out(params, TRANSFERS[key][1] if key in TRANSFERS else key)
            refusal = trained_on_scored(params, TRANSFERS[key] if key in TRANSFERS else (key,))
            if refusal:
                print(f"| {description} | refused: {refusal} | | | | | | |")
                continue
            prepare = lambda frame: model_input(frame, params)  # noqa: E731
            kept = row_file(args.rows, key, name, params, args)
            started = time.perf_counter()
            if kept is not None and kept.is_file():
                result, seconds = pickle.loads(kept.read_bytes())
            else:
                model = FusionClassifier(random_state=args.seed, verbose=0, **params)
                if key in TRANSFERS:
                    result = transfer(model, (prepare(fit_on[0]), *fit_on[1:]), (prepare(X), y, groups),
                                      args.bootstrap, args.seed)
                else:
                    result = cross_validate(
                        model, prepare(X), y, groups, n_splits=args.folds, n_bootstrap=args.bootstrap,
                        random_state=args.seed, top_k=1 if key == "isic" else None,  # groups are lesions elsewhere
                    )
                seconds = time.perf_counter() - started
                if kept is not None:
                    keep_row(kept, (result, seconds))
            m = result.metrics
            cell = lambda metric: (  # noqa: E731
                f"{m.loc[metric, 'value']:.4f} [{m.loc[metric, 'ci_low']:.3f}, {m.loc[metric, 'ci_high']:.3f}]"
            )
            first = result.oof if first is None else first
            print(
                f"| {description} | {cell('roc_auc')} | {cell('pauc_80')} | {m.loc['sens_at_spec90', 'value']:.3f} | "
                f"{m.loc['sensitivity', 'value']:.3f} / {m.loc['specificity', 'value']:.3f} | "
                f"{paired_cells(first, result.oof, args.bootstrap, args.seed)} | {seconds:.0f} |",
                flush=True,
            )
            if args.report:
                folder = args.report / f"{key.replace('>', '-to-')}-{name}"
                write_report(result, folder, title=f"{title}: {description}")


def row_file(folder: str, key: str, name: str, params: dict, args: argparse.Namespace) -> Path | None:
    """Where a finished row of this run is kept: named by everything its figures depend on (None: keep nothing)."""
    if not folder:
        return None
    identity = repr((key, name, sorted(params.items(), key=str), args.folds, args.seed, args.bootstrap,
                     str(args.data.resolve()), melagbm.__version__))
    digest = hashlib.sha256(identity.encode()).hexdigest()[:16]
    return Path(folder) / f"{key.replace('>', '-to-')}__{name}__{digest}.pkl"


def keep_row(path: Path, row: tuple) -> None:
    """Write a finished row atomically (a run stopped while writing leaves no half file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.partial")
    partial.write_bytes(pickle.dumps(row))
    os.replace(partial, path)


def bcn_as_ham(data: tuple) -> tuple:
    """BCN20000's ``X, y, groups`` with its diagnoses in HAM10000's words."""
    X, y, groups = data
    X = X.assign(diagnosis=X["diagnosis"].map(BCN_DIAGNOSIS_AS_HAM))
    X.attrs["dataset"] = "BCN20000"
    return X, y, groups


def measure_lesions(images: pd.Series, names: list[str]) -> None:
    """Measure every image's lesion once, on 2 processes, when a model asks for lesion features (the folds then
    read the store)."""
    wanted = [CONFIGS[name][1] for name in names]
    if not any(params.get("lesion_features", True) and params.get("image_col", "image") is not None
               for params in wanted):
        return
    from melagbm.features.lesion import LesionFeatures

    started = time.perf_counter()
    LesionFeatures(n_jobs=2).fit().transform(images)
    print(f"(lesion features for {len(images)} images: {time.perf_counter() - started:.0f} s on 2 processes)")


def left_out(params: dict, scored: str) -> dict:
    """``params`` with a ``LEAVE_OUT`` checkpoint replaced by the encoder trained without the ``scored`` data set."""
    if params.get("checkpoint_path") != LEAVE_OUT:
        return params
    path = LEFT_OUT_RUN.get(scored)
    if path is not None and not path.is_file():
        raise SystemExit(f"{path} is missing: train it first (python training/derm_encoder.py --datasets "
                         f"{'bcn' if scored == 'ham' else 'ham'} --out {path.parent})")
    return {**params, "checkpoint_path": None if path is None else str(path)}


def trained_on_scored(params: dict, keys: tuple[str, ...]) -> str | None:
    """Why a configuration's encoder may not be scored on these data sets (it was trained on the scored one)."""
    from melagbm.leakage import encoder_training_overlap

    scored = DATASET_IDS[keys[-1]]
    for backbone in np.atleast_1d(params.get("backbone", ())).tolist():
        if encoder_training_overlap(backbone, [], [scored], params.get("checkpoint_path")):
            return f"{backbone} was trained on {scored}; not a fair test"
    return None


def model_input(X: pd.DataFrame, params: dict) -> pd.DataFrame:
    """The columns a configuration is given: no image for metadata-only, the diagnosis only when it is the
    target."""
    data = X.drop(columns="image") if params.get("image_col", "image") is None and "image" in X else X
    if "diagnosis" in data and params.get("diagnosis_col") is None:  # a training target only when named
        data = data.drop(columns="diagnosis")
    return data


if __name__ == "__main__":
    main()
