"""Does the model card's operating point hold on new patients? Stated figures against held-out ones.

Repeated patient/lesion-grouped 70/30 splits of three data sets: a 1,500-lesion sample of HAM10000 and of
BCN20000 (each split draws its own sample), and the SIIM-ISIC 2020 subset (all 130 patients). On each split the
default model is fitted on the 70 % and its card read: the sensitivity, specificity and share of lesions referred
that it states for its threshold, with their 95 % intervals. The threshold is then applied to the held-out 30 %.
Printed per data set and overall: how often the held-out value fell inside the card's interval ("inside"), how
often the two agreed once the held-out value's own sampling error is counted ("agree": the difference within
1.96 standard errors of both, each read off its 95 % interval), and the mean gap stated minus held-out.

"Before" is the card of another checkout of melagbm (``--code``: a folder holding the ``melagbm`` package, e.g.
a ``git worktree`` of an earlier commit), run with ``--label before``; its card read the figures off the
predictions that chose the threshold and stated no referral share. Each fit is written to
``benchmarks/results/coverage_<label>.jsonl`` (``--results``: another folder) as it ends: a rerun skips the splits
already there, and ``--summary`` prints the table from those files.

    git worktree add /tmp/melagbm-before 89bba42
    python benchmarks/card_coverage.py --label before --code /tmp/melagbm-before
    python benchmarks/card_coverage.py --label after
    python benchmarks/card_coverage.py --summary before,after
    python benchmarks/card_coverage.py --label tiny --datasets isic --splits 1 --patients 30   # smoke run
    python benchmarks/card_coverage.py --label tiny --datasets isic --splits 1 --patients 5 --results /tmp/cov
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import add_data_argument  # noqa: E402  (benchmarks/_common.py)

RESULTS = Path(__file__).resolve().parent / "results"
FIGURES = ("sensitivity", "specificity", "referral_rate")
N_LESIONS, TEST_SHARE = 1500, 0.3


def load(name: str, data: Path, seed: int, patients: int | None):  # noqa: ANN201
    """(X, y, groups) of one split's sample: 1,500 lesions drawn with ``seed`` (HAM10000, BCN20000), or the
    ISIC 2020 subset (``patients`` of its patients drawn with ``seed`` when given)."""
    from melagbm.datasets import load_ham10000, load_isic2020

    if name == "isic":
        X, y, groups = load_isic2020(data / "isic2020")
        count = patients
    elif name == "ham":
        X, y, groups = load_ham10000(data / "ham10000")
        count = N_LESIONS
    else:
        X, y, groups = load_bcn(data / "bcn20000")
        count = N_LESIONS
    if count is not None and count < groups.nunique():
        chosen = np.random.default_rng(seed).choice(groups.unique(), count, replace=False)
        keep = groups.isin(chosen).to_numpy()
        X, y, groups = X[keep], y[keep], groups[keep]
    return X, y, groups


def load_bcn(root: Path):  # noqa: ANN201
    """BCN20000 through melagbm's loader, or (a checkout from before the loader) through ``frame_from_csv``."""
    try:
        from melagbm.datasets import load_bcn20000
    except ImportError:
        from melagbm.datasets import frame_from_csv

        frame = frame_from_csv(root / "bcn20000_metadata.csv", root / "images", image_col="image")
        X = pd.DataFrame({"image": frame["image"], "age": frame["age_approx"], "sex": frame["sex"],
                          "site": frame["anatom_site_general"], "lesion_id": frame["lesion_id"]})
        return X, (frame["diagnosis"] == "MEL").astype(int), frame["lesion_id"]
    return load_bcn20000(root)


def stated(card: dict) -> dict:
    """The card's figures for its threshold: value, ci_low, ci_high per figure (None where it states none)."""
    estimate = (card.get("operating_point") or {}).get("estimate")
    if estimate is not None:  # cross-fitted (this melagbm)
        return {name: {key: estimate[name][key] for key in ("value", "ci_low", "ci_high")} for name in FIGURES}
    metrics = (card.get("performance") or {}).get("metrics") or {}  # read off the choosing predictions (0.1)
    return {name: ({key: metrics[name][key] for key in ("value", "ci_low", "ci_high")} if name in metrics else None)
            for name in FIGURES}


def held_out(y: np.ndarray, refer: np.ndarray, groups: np.ndarray, seed: int) -> dict:
    """Held-out sensitivity, specificity and share referred with 95 % intervals (bootstrap over groups)."""
    codes = pd.factorize(groups)[0]
    rng = np.random.default_rng(seed)

    def figures(weight: np.ndarray) -> np.ndarray:
        positive, negative = weight * (y == 1), weight * (y == 0)
        with np.errstate(invalid="ignore", divide="ignore"):  # a test split without melanomas has no sensitivity
            return np.array([np.sum(positive * refer) / np.sum(positive),
                             1 - np.sum(negative * refer) / np.sum(negative), np.sum(weight * refer) / np.sum(weight)])

    point = figures(np.ones(len(y)))
    draws = []
    n_groups = codes.max() + 1
    for _ in range(1000):
        weight = np.bincount(rng.integers(0, n_groups, n_groups), minlength=n_groups)[codes].astype(float)
        if weight[y == 1].sum() and weight[y == 0].sum():
            draws.append(figures(weight))
    low, high = (np.quantile(np.asarray(draws), [0.025, 0.975], axis=0) if draws
                 else (np.full(3, np.nan), np.full(3, np.nan)))
    return {name: {"value": float(point[i]), "ci_low": float(low[i]), "ci_high": float(high[i])}
            for i, name in enumerate(FIGURES)}


def run_split(name: str, data: Path, seed: int, patients: int | None, params: dict) -> dict:
    """Fit on 70 % of one split's groups; the card's stated figures and the held-out ones."""
    from sklearn.model_selection import GroupShuffleSplit

    from melagbm import FusionClassifier

    X, y, groups = load(name, data, seed, patients)
    train, test = next(GroupShuffleSplit(1, test_size=TEST_SHARE, random_state=seed).split(X, y, groups))
    started = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = FusionClassifier(verbose=0, **params).fit(X.iloc[train], y.iloc[train], groups=groups.iloc[train])
    seconds = time.perf_counter() - started
    refer = (np.asarray(model.predict(X.iloc[test])) == 1).astype(float)
    card = model.model_card_
    return {
        "dataset": name, "seed": seed, "train_rows": int(len(train)), "test_rows": int(len(test)),
        "train_melanomas": int(y.iloc[train].sum()), "test_melanomas": int(y.iloc[test].sum()),
        "test_groups": int(groups.iloc[test].nunique()), "threshold": float(model.threshold_),
        "stated": stated(card), "held_out": held_out(y.iloc[test].to_numpy(), refer, groups.iloc[test].to_numpy(),
                                                         seed),
        "warnings": [str(w.message) for w in caught if "Weak model" in str(w.message)],
        "card_warnings": card.get("warnings", []), "fit_seconds": round(seconds, 1),
    }


def agree(stated_figure: dict, held_figure: dict) -> bool:
    """The difference within 1.96 standard errors of both (each read off its 95 % interval as width / 3.92)."""
    se = lambda figure: (figure["ci_high"] - figure["ci_low"]) / 3.92  # noqa: E731
    return abs(stated_figure["value"] - held_figure["value"]) <= 1.96 * np.hypot(se(stated_figure), se(held_figure))


def summary(labels: list[str], results: Path = RESULTS) -> None:
    """The table: per label, data set and figure, how often the card's intervals held and the mean gap."""
    rows = []
    for label in labels:
        path = results / f"coverage_{label}.jsonl"
        if not path.exists():
            print(f"no results for {label!r} ({path})")
            continue
        for line in path.read_text().splitlines():
            result = json.loads(line)
            for figure in FIGURES:
                said, seen = result["stated"][figure], result["held_out"][figure]
                rows.append({"label": label, "dataset": result["dataset"], "figure": figure,
                             "stated": None if said is None else said["value"], "held_out": seen["value"],
                             "inside": np.nan if said is None
                             else float(said["ci_low"] <= seen["value"] <= said["ci_high"]),
                             "agree": np.nan if said is None else float(agree(said, seen)),
                             "gap": None if said is None else said["value"] - seen["value"]})
    if not rows:
        return
    table = pd.DataFrame(rows)
    for keys in (["label", "figure"], ["label", "dataset", "figure"]):
        grouped = table.groupby(keys, sort=False).agg(
            splits=("held_out", "size"), stated=("stated", "mean"), held_out=("held_out", "mean"),
            inside=("inside", lambda v: f"{int(v.sum())}/{v.notna().sum()}" if v.notna().any() else "n/a"),
            agree=("agree", lambda v: f"{int(v.sum())}/{v.notna().sum()}" if v.notna().any() else "n/a"),
            mean_gap=("gap", "mean"))
        print(grouped.round(3).to_string(), "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_argument(parser)
    parser.add_argument("--label", default="after", help="the results file's name: coverage_<label>.jsonl")
    parser.add_argument("--code", type=Path, help="a folder holding another melagbm package to measure")
    parser.add_argument("--datasets", default="isic,ham,bcn", help="comma-separated: isic, ham, bcn")
    parser.add_argument("--splits", type=int, default=4, help="repeated splits per data set (seeds 0, 1, ...)")
    parser.add_argument("--patients", type=int, help="ISIC: draw this many patients per split (default: all)")
    parser.add_argument("--confidence", default=None,
                        help="sensitivity_confidence for the fits ('none': the plain rule); default: the library's")
    parser.add_argument("--summary", help="print the table for these comma-separated labels, and fit nothing")
    parser.add_argument("--results", type=Path, default=RESULTS,
                        help="folder of the coverage_<label>.jsonl files (default: benchmarks/results)")
    args = parser.parse_args()
    if args.summary:
        summary(args.summary.split(","), args.results)
        return
    if args.code is not None:
        sys.path.insert(0, str(args.code.resolve()))
    import melagbm

    print(f"melagbm from {Path(melagbm.__file__).parent}", flush=True)
    params = {}
    if args.confidence is not None:
        params["sensitivity_confidence"] = None if args.confidence == "none" else float(args.confidence)
    args.results.mkdir(parents=True, exist_ok=True)
    path = args.results / f"coverage_{args.label}.jsonl"
    done = set()
    if path.exists():
        done = {(r["dataset"], r["seed"]) for r in map(json.loads, path.read_text().splitlines())}
    for name in args.datasets.split(","):
        for seed in range(args.splits):
            if (name, seed) in done:
                continue
            result = run_split(name, args.data, seed, args.patients, params)
            with path.open("a") as out:  # one line per finished fit: an interrupted run resumes after it
                out.write(json.dumps(result) + "\n")
            said, seen = result["stated"], result["held_out"]
            print(f"{name} split {seed}: {result['train_melanomas']} training melanomas, "
                  f"fit {result['fit_seconds']} s; "
                  + "; ".join(f"{figure} stated {said[figure]['value']:.3f} [{said[figure]['ci_low']:.3f}, "
                              f"{said[figure]['ci_high']:.3f}] held-out {seen[figure]['value']:.3f}"
                              if said[figure] else f"{figure} held-out {seen[figure]['value']:.3f}"
                              for figure in FIGURES), flush=True)
    summary([args.label], args.results)


if __name__ == "__main__":
    main()
