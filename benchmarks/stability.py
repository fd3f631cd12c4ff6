"""How much a model moves with its own randomness, on the small data a clinic brings.

A 700-lesion HAM10000 sample (about 650 training images, 67 melanomas; a fixed lesion-grouped test set of
about 276 images): the default model is fitted with ``random_state`` 0-5 (groups passed, then no groups:
the lesion_id column dropped, so its internal splits treat rows as independent) and
three times with the default ``random_state``; the test ROC AUC of each fit, their mean and spread (max -
min) are printed per configuration. Each configuration after the first is compared with the first on the
same test lesions (melagbm.evaluation.compare_scores: its mean test ROC AUC over random_state 0-5 minus the
first's, with a paired 95 % bootstrap interval over test lesions), so a difference between two rows can be
told from the test set's own noise.

    python benchmarks/stability.py --only default          # the default model (about 5 min, warm store)
    python benchmarks/stability.py                         # every configuration below
    python benchmarks/stability.py --only default,single-seed
    python benchmarks/stability.py --only default,pair,per-view --grouped-only   # pair and per-view against default
    python benchmarks/stability.py --only default,lambda,slow,large-leaves --grouped-only
    python benchmarks/stability.py --only default,single-seed --grouped-only --lesions 100 --seeds 2   # smoke run
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from _common import add_data_argument  # benchmarks/_common.py
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GroupShuffleSplit

from melagbm import FusionClassifier
from melagbm.datasets import load_ham10000
from melagbm.evaluation import compare_scores

N_LESIONS, TEST_SHARE, SEEDS = 700, 0.3, range(6)

#: name -> (description, FusionClassifier parameters).
CONFIGS: dict[str, tuple[str, dict]] = {
    "default": ("the default model", {}),
    "pair": ("the default model with the encoders before views: Lite0 + Lite2 at timm's sizes",
             {"backbone": ("tf_efficientnet_lite0", "tf_efficientnet_lite2")}),
    "per-view": ("the default model, a probe per view, each view's score a feature (image_signal='per_backbone')",
                 {"image_signal": "per_backbone"}),
    "probe-C2": ("the default model, the probe's C twice the rule (4 / width)", {"probe_C": 4 / 5304}),
    "probe-cv": ("the default model, the probe's C chosen by grouped CV (probe_C='cv')", {"probe_C": "cv"}),
    "single-seed": ("one internal seed (n_seeds=1): one early-stopping split, one set of probe folds",
                    {"n_seeds": 1}),
    "lambda": ("the default model, LightGBM reg_lambda=10", {"booster_params": {"reg_lambda": 10.0}}),
    "slow": ("the default model, LightGBM learning_rate 0.01 (up to 6,000 rounds)",
             {"booster_params": {"learning_rate": 0.01, "n_estimators": 6000}}),
    "large-leaves": ("the default model, LightGBM min_child_samples=80", {"booster_params": {"min_child_samples": 80}}),
}


def small_sample(data, n_lesions: int = N_LESIONS):  # noqa: ANN001, ANN201
    """(training X, y, groups, test X, y): 700 lesions (``n_lesions``) drawn with seed 0, 30 % of them held out."""
    X, y, groups = load_ham10000(data / "ham10000")
    lesions = np.random.default_rng(0).choice(groups.unique(), n_lesions, replace=False)
    keep = groups.isin(lesions).to_numpy()
    X, y, groups = X[keep], y[keep], groups[keep]
    train, test = next(GroupShuffleSplit(1, test_size=TEST_SHARE, random_state=0).split(X, y, groups))
    return X.iloc[train], y.iloc[train], groups.iloc[train], X.iloc[test], y.iloc[test]


def paired_line(name: str, first: str, y_test, test_lesions, first_scores: np.ndarray,  # noqa: ANN001
                scores: np.ndarray, seeds: str = "random_state 0-5") -> str:
    """One line: the mean test ROC AUC over seeds of ``name`` minus ``first``'s, paired by test lesion."""
    table = compare_scores(y_test, first_scores, scores, groups=test_lesions, n_bootstrap=2000, random_state=0)
    low, difference, high, p_value = table.loc["roc_auc", ["ci_low", "difference", "ci_high", "p_value"]]
    return (f"- {name} - {first}, mean test ROC AUC over {seeds} with groups: {difference:+.4f} "
            f"[{low:+.3f}, {high:+.3f}] (paired bootstrap over the test lesions), p {p_value:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_argument(parser)
    parser.add_argument("--only", default=",".join(CONFIGS), help=f"comma-separated subset of {list(CONFIGS)}")
    parser.add_argument("--repeats", type=int, default=3, help="fits with the default random_state")
    parser.add_argument("--grouped-only", action="store_true",
                        help="only the random_state 0-5 fits with groups (the issue's target row)")
    parser.add_argument("--lesions", type=int, default=N_LESIONS, help="HAM10000 lesions drawn (default: 700)")
    parser.add_argument("--seeds", type=int, default=len(SEEDS),
                        help="fits with random_state 0, 1, ... (default: 6, random_state 0-5)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=UserWarning)
    seeds = f"random_state 0-{args.seeds - 1}"  # "random_state 0-5" by default
    X, y, groups, X_test, y_test = small_sample(args.data, args.lesions)
    print(f"HAM10000 sample: {groups.nunique()} training lesions ({len(X)} images, {int(y.sum())} melanomas); "
          f"test {len(X_test)} images ({int(y_test.sum())} melanomas), the same every fit\n")
    print("| model | fits | test ROC AUC per fit | mean | spread (max - min) | seconds per fit |")
    print("|---|---|---|---|---|---|", flush=True)

    def test_scores(params: dict, groups=None, ungrouped: bool = False) -> np.ndarray:  # noqa: ANN001
        """Test melanoma probabilities of one fit; ``ungrouped``: without the lesion_id column, so rows split freely."""
        data, test = (X.drop(columns="lesion_id"), X_test.drop(columns="lesion_id")) if ungrouped else (X, X_test)
        model = FusionClassifier(verbose=0, **params).fit(data, y, groups=groups)
        return model.predict_proba(test)[:, 1]

    seeded: dict[str, np.ndarray] = {}  # name -> test scores of random_state 0-5 with groups, a column per seed
    for name in args.only.split(","):
        description, params = CONFIGS[name]
        runs = {
            f"{seeds}, groups": lambda s: test_scores({**params, "random_state": s}, groups=groups),
            f"{seeds}, no groups": lambda s: test_scores({**params, "random_state": s}, ungrouped=True),
            "default random_state, groups": lambda s: test_scores(params, groups=groups),
        }
        if args.grouped_only:
            runs = {label: run for label, run in runs.items() if label == f"{seeds}, groups"}
        for label, run in runs.items():
            random_states = range(args.seeds) if label.startswith(seeds) else range(args.repeats)
            started = time.perf_counter()
            scores = np.column_stack([run(seed) for seed in random_states])
            per_fit = (time.perf_counter() - started) / len(random_states)
            aucs = np.array([roc_auc_score(y_test, column) for column in scores.T])
            if label == f"{seeds}, groups":
                seeded[name] = scores
            print(f"| {description} | {label} | {', '.join(f'{a:.3f}' for a in aucs)} | {aucs.mean():.4f} | "
                  f"{aucs.max() - aucs.min():.4f} | {per_fit:.0f} |", flush=True)
    first, *others = list(seeded)
    if others:
        print()
    for name in others:
        print(paired_line(name, first, y_test, X_test["lesion_id"], seeded[first], seeded[name], seeds), flush=True)


if __name__ == "__main__":
    main()
