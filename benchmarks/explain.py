"""Speed of grouped SHAP on 10,000 HAM10000 rows: melagbm's explain against shap's TreeExplainer.

Fits the default FusionClassifier (image score, lesion features, age, sex, site) on all of
HAM10000 for each booster, with one booster (``n_seeds=1``: shap's TreeExplainer takes one model; the
default averages five, and explaining them costs five times this), then times, on the same 10,000 rows:

- ``explain(rows, grouped=True)`` end to end (feature table from the warm store, exact SHAP
  from the booster's own contribution routine, grouping by family);
- the SHAP part alone (``tree_contributions`` + ``group_explanation`` on the feature table);
- ``shap.TreeExplainer(model.booster_)(features)`` on the same table (construction included)
  and the same grouping, with the largest difference between the two.

    python benchmarks/explain.py                          # both boosters
    python benchmarks/explain.py --boosters lightgbm --n 10000
    python benchmarks/explain.py --boosters lightgbm --n 20 --images 80   # smoke run: fitted on 80 images

The first run embeds and measures every HAM10000 image into the store (about 40 min on 2
cores); later runs read the store.
"""

from __future__ import annotations

import argparse
import os
import warnings

import numpy as np
from _common import add_data_argument, timed  # benchmarks/_common.py

from melagbm import FusionClassifier
from melagbm.datasets import load_ham10000
from melagbm.explain import group_explanation, make_explanation, tree_contributions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_argument(parser)
    parser.add_argument("--n", type=int, default=10_000, help="rows to explain")
    parser.add_argument("--boosters", default="lightgbm,xgboost")
    parser.add_argument("--images", type=int, default=None,
                        help="fit on this many HAM10000 images drawn at random (default: all 10,015)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=UserWarning)
    import shap

    X, y, groups = load_ham10000(args.data / "ham10000", n_samples=args.images)
    rows = X.sample(n=min(args.n, len(X)), random_state=0)
    print(f"HAM10000: {len(X)} images; explaining {len(rows)} rows on {os.cpu_count()} CPU cores")
    print("| booster | features | explain(grouped) end to end | SHAP + grouping | shap.TreeExplainer + grouping | "
          "melagbm's speed-up | max abs difference |")
    print("|---|---|---|---|---|---|---|")
    for booster in args.boosters.split(","):
        model = FusionClassifier(booster=booster, random_state=0, n_seeds=1).fit(X, y, groups=groups)
        model.explain(rows.head(50), grouped=True)  # warm-up: imports, first store read
        end_to_end, grouped = timed(lambda: model.explain(rows, grouped=True))
        features = model.transform_features(rows)

        def ours():  # type: ignore[no-untyped-def]
            per_feature = make_explanation(*tree_contributions(model.booster_, features), features)
            return per_feature, group_explanation(per_feature, model.feature_families_)

        def theirs():  # type: ignore[no-untyped-def]
            reference = shap.TreeExplainer(model.booster_)(features)
            return reference, group_explanation(reference, model.feature_families_)

        shap_only, (per_feature, again) = timed(ours)
        with_shap, (reference, _) = timed(theirs)
        difference = float(np.abs(per_feature.values - reference.values).max())
        assert np.allclose(again.values, grouped.values, atol=1e-9)
        print(f"| {booster} ({model.n_estimators_} trees) | {len(model.feature_names_)} | {end_to_end:.2f} s | "
              f"{shap_only:.2f} s | {with_shap:.2f} s | {with_shap / shap_only:.1f}x | {difference:.1e} |", flush=True)


if __name__ == "__main__":
    main()
