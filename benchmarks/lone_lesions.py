"""A lesion screened alone: how a model with patient context scores a lesion sent without its patient's others.

The clinic page and most service calls send one lesion per patient. On the SIIM-ISIC 2020 subset (2,701 images,
130 patients; 5-fold, grouped by patient) every held-out image is scored three ways: alone (one call per image, so
its patient context is that of a patient with one lesion), with its patient's other held-out lesions in the same
call (the context the model was trained with), and by a model fitted without patient context
(``patient_col=None``). Printed: each way's ROC AUC with a 95 % interval over patients, and each paired with
"alone" (melagbm.evaluation.compare_scores); alone must not be worse than no context.

    python benchmarks/lone_lesions.py                  # about 30 min on 2 cores with a warm store
    python benchmarks/lone_lesions.py --patients 40 --folds 2     # smoke run
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
from melagbm.datasets import load_isic2020  # noqa: E402
from melagbm.evaluation import compare_scores, metrics_table  # noqa: E402


def main() -> None:
    from sklearn.model_selection import StratifiedGroupKFold

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_argument(parser)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--patients", type=int, help="draw this many patients (default: all 130)")
    args = parser.parse_args()
    X, y, groups = load_isic2020(args.data / "isic2020")
    if args.patients:
        chosen = np.random.default_rng(0).choice(groups.unique(), args.patients, replace=False)
        keep = groups.isin(chosen).to_numpy()
        X, y, groups = X[keep], y[keep], groups[keep]
    ways = {way: pd.Series(np.nan, index=X.index) for way in ("alone", "with the patient's lesions", "no context")}
    splits = StratifiedGroupKFold(args.folds, shuffle=True, random_state=0).split(X, y, groups)
    for fold, (train, test) in enumerate(splits):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            context = FusionClassifier(verbose=0).fit(X.iloc[train], y.iloc[train], groups=groups.iloc[train])
            plain = FusionClassifier(patient_col=None, verbose=0).fit(X.iloc[train], y.iloc[train],
                                                                      groups=groups.iloc[train])
        held = X.iloc[test]
        ways["with the patient's lesions"].loc[held.index] = context.predict_proba(held)[:, 1]
        ways["no context"].loc[held.index] = plain.predict_proba(held)[:, 1]
        ways["alone"].loc[held.index] = [context.predict_proba(held.iloc[[row]])[0, 1] for row in range(len(held))]
        print(f"fold {fold}: {len(test)} held-out images, {int(y.iloc[test].sum())} melanomas", flush=True)
    print(f"\n{len(X)} images, {int(y.sum())} melanomas, {groups.nunique()} patients; {args.folds}-fold by patient")
    print(f"{'scored':<28} {'ROC AUC [95 % CI]':<26} minus alone [95 % CI], p")
    for way, score in ways.items():
        auc = metrics_table(y, score, groups=groups, top_k=None, n_bootstrap=1000).loc["roc_auc"]
        paired = ""
        if way != "alone":
            row = compare_scores(y, ways["alone"], score, groups=groups, n_bootstrap=1000).loc["roc_auc"]
            paired = f"{row['difference']:+.4f} [{row['ci_low']:+.3f}, {row['ci_high']:+.3f}], p {row['p_value']:.3f}"
        print(f"{way:<28} {auc['value']:.4f} [{auc['ci_low']:.3f}, {auc['ci_high']:.3f}]  {paired}")


if __name__ == "__main__":
    main()
