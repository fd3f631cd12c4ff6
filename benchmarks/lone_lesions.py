"""A lesion screened alone: what a model with patient context does with a lesion sent without its patient's others.

The clinic page and most service calls send one lesion per patient. On the SIIM-ISIC 2020 subset (2,701 images,
130 patients; 5-fold, grouped by patient) every held-out image is scored five ways:

- alone, the default: as if sent one per call, so the model's lone-lesion model (fitted without patient context, its
  own calibration and threshold) scores it;
- alone, context as for a patient of one lesion: the same model with its lone-lesion model left out
  (``lone_lesion_model=False``), so the image gets the context of a patient with one lesion;
- alone, context seen alone in training: a model fitted on every training image twice, once with its patient
  and once as a patient of its own (the same split group), so a patient of one lesion is seen in training;
- with its patient's other held-out lesions in the same call (the context the model was trained with);
- by a model fitted without patient context (``patient_col=None``).

Printed: each way's ROC AUC with a 95 % interval over patients, and each paired with the default
(melagbm.evaluation.compare_scores); alone must not be worse than no context.

    python benchmarks/lone_lesions.py                  # about an hour on 2 cores with a warm store
    python benchmarks/lone_lesions.py --patients 40 --folds 2     # smoke run
    python benchmarks/lone_lesions.py --patients 5 --melanoma-patients 4 --folds 2   # tiny run (76 images)
"""

from __future__ import annotations

import argparse
import copy
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import add_data_argument  # noqa: E402  (benchmarks/_common.py)

from melagbm import FusionClassifier  # noqa: E402
from melagbm.datasets import load_isic2020  # noqa: E402
from melagbm.evaluation import compare_scores, metrics_table  # noqa: E402


def main() -> None:
    from sklearn.model_selection import StratifiedGroupKFold

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_argument(parser)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--patients", type=int, help="draw this many patients (default: all 130)")
    parser.add_argument("--melanoma-patients", type=int,
                        help="with --patients: this many of them drawn among the patients with a melanoma, the "
                             "rest among the others (default: all drawn alike)")
    args = parser.parse_args()
    X, y, groups = load_isic2020(args.data / "isic2020")
    if args.patients:
        rng = np.random.default_rng(0)
        if args.melanoma_patients is None:
            chosen = rng.choice(groups.unique(), args.patients, replace=False)
        else:
            with_melanoma = groups[y == 1].unique()
            without = np.setdiff1d(groups.unique(), with_melanoma)
            chosen = np.concatenate([rng.choice(with_melanoma, args.melanoma_patients, replace=False),
                                     rng.choice(without, args.patients - args.melanoma_patients, replace=False)])
        keep = groups.isin(chosen).to_numpy()
        X, y, groups = X[keep], y[keep], groups[keep]
    default, as_one, seen_alone = ("alone (lone-lesion model, the default)", "alone, context of a patient of one",
                                   "alone, context seen alone in training")
    ways = {way: pd.Series(np.nan, index=X.index)
            for way in (default, as_one, seen_alone, "with the patient's lesions", "no context")}
    referred, stated = pd.Series(False, index=X.index), []
    splits = StratifiedGroupKFold(args.folds, shuffle=True, random_state=0).split(X, y, groups)
    for fold, (train, test) in enumerate(splits):
        X_train, y_train, g_train = X.iloc[train], y.iloc[train], groups.iloc[train]
        twice = pd.concat([X_train, X_train.assign(patient_id=[f"alone-{row}" for row in range(len(X_train))])],
                          ignore_index=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            context = FusionClassifier(verbose=0).fit(X_train, y_train, groups=g_train)
            plain = FusionClassifier(patient_col=None, verbose=0).fit(X_train, y_train, groups=g_train)
            augmented = FusionClassifier(lone_lesion_model=False, verbose=0).fit(
                twice, pd.concat([y_train, y_train], ignore_index=True),
                groups=pd.concat([g_train, g_train], ignore_index=True))
        without_lone = copy.copy(context)
        without_lone.lone_lesion_model_ = None  # the same fitted model, every lesion scored with its context
        held = X.iloc[test]
        # each image its own patient: every one scored as if sent alone, in one call (the context and the choice of
        # head come from the patient ids in the call, so this is the same as one call per image, and faster)
        one_by_one = held.assign(patient_id=[f"alone-{row}" for row in range(len(held))])
        ways["with the patient's lesions"].loc[held.index] = context.predict_proba(held)[:, 1]
        ways["no context"].loc[held.index] = plain.predict_proba(held)[:, 1]
        for way, model in ((default, context), (as_one, without_lone), (seen_alone, augmented)):
            ways[way].loc[held.index] = model.predict_proba(one_by_one)[:, 1]
        referred.loc[held.index] = ways[default].loc[held.index] >= context.lone_lesion_model_.threshold_
        stated.append(context.model_card_["lone_lesions"]["operating_point"]["estimate"])
        print(f"fold {fold}: {len(test)} held-out images, {int(y.iloc[test].sum())} melanomas", flush=True)
    print(f"\n{len(X)} images, {int(y.sum())} melanomas, {groups.nunique()} patients; {args.folds}-fold by patient")
    print(f"{'scored':<40} {'ROC AUC [95 % CI]':<26} minus the default [95 % CI], p")
    for way, score in ways.items():
        auc = metrics_table(y, score, groups=groups, top_k=None, n_bootstrap=1000).loc["roc_auc"]
        paired = ""
        if way != default:
            row = compare_scores(y, ways[default], score, groups=groups, n_bootstrap=1000).loc["roc_auc"]
            paired = f"{row['difference']:+.4f} [{row['ci_low']:+.3f}, {row['ci_high']:+.3f}], p {row['p_value']:.3f}"
        print(f"{way:<40} {auc['value']:.4f} [{auc['ci_low']:.3f}, {auc['ci_high']:.3f}]  {paired}")
    melanoma = y.to_numpy() == 1
    print("\nLesions alone at the lone-lesion model's threshold, held out: sensitivity "
          f"{referred[melanoma].mean():.3f}, specificity {1 - referred[~melanoma].mean():.3f}, referred "
          f"{referred.mean():.3f}; the cards stated (mean over folds): " + ", ".join(
              f"{name} {np.mean([figure[name]['value'] for figure in stated]):.3f}"
              for name in ("sensitivity", "specificity", "referral_rate")))


if __name__ == "__main__":
    main()
