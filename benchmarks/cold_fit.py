"""Where a cold fit's time goes, stage by stage, beside another revision's code in the same run.

A cold fit starts from an empty embedding store: every image is embedded by every backbone and every
lesion is measured once. Each revision (this checkout, and with ``--against REV`` that git revision,
checked out into a temporary worktree) fits the default FusionClassifier cold, in its own process, on
the same patient-grouped 80 % of the SIIM-ISIC 2020 subset, and scores the other 20 %. Printed: seconds
per stage as the fit times them (``FusionClassifier.fit_seconds_``: embedding, image probe, metadata, lesion
measuring, patient context, boosting, out-of-fold calibration and threshold, each also for the lone-lesion model,
the model card; "n/a" for a revision from before the stages were timed), the whole fit, the ratio between the
revisions, and both test ROC AUCs (the same model should score the same).

    python benchmarks/cold_fit.py                          # this checkout only (about 4 min on 2 cores)
    python benchmarks/cold_fit.py --against bd70fdc        # beside the code before issue 19 (about 12 min)
    python benchmarks/cold_fit.py --n-images 400           # a quick run
    python benchmarks/cold_fit.py --device cuda            # on a GPU machine
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

from _common import add_data_argument  # benchmarks/_common.py

REPO = Path(__file__).resolve().parents[1]

def worker(data: Path, n_images: int | None, store: Path, device: str) -> dict:
    """One cold fit in this process (whichever melagbm is importable); its stage times and test AUC."""
    import importlib

    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import GroupShuffleSplit

    warnings.filterwarnings("ignore")
    from melagbm import EmbeddingStore, FusionClassifier
    from melagbm.datasets import load_isic2020

    X, y, groups = load_isic2020(data / "isic2020")
    if n_images:
        X, y, groups = X.iloc[:n_images], y.iloc[:n_images], groups.iloc[:n_images]
    train, test = next(GroupShuffleSplit(1, test_size=0.2, random_state=0).split(X, y, groups))
    started = time.perf_counter()
    model = FusionClassifier(cache=EmbeddingStore(store), device=device, random_state=0, verbose=0)
    model.fit(X.iloc[train], y.iloc[train])
    total = time.perf_counter() - started
    fit_seconds = dict(getattr(model, "fit_seconds_", {}))  # each stage as the fit timed it (none before it did)
    auc = roc_auc_score(y.iloc[test], model.predict_proba(X.iloc[test])[:, 1])
    return {"seconds": fit_seconds, "total": total, "auc": float(auc), "rows": len(train),
            "melagbm": str(Path(importlib.import_module("melagbm").__file__).parent)}


def run_revision(source: Path, data: Path, n_images: int | None, device: str) -> dict:
    """A cold fit by the melagbm at ``source`` (a checkout), in a fresh process with an empty store."""
    with tempfile.TemporaryDirectory(prefix="melagbm-cold-") as store:
        command = [sys.executable, str(Path(__file__).resolve()), "--worker", "--store", store, "--data", str(data)]
        command += ["--device", device] + (["--n-images", str(n_images)] if n_images else [])
        environment = {**os.environ, "PYTHONPATH": str(source)}
        result = subprocess.run(command, env=environment, check=True, capture_output=True, text=True,
                                cwd=str(REPO / "benchmarks"))
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_argument(parser)
    parser.add_argument("--n-images", type=int, default=None, help="first N images only (default: all 2,701)")
    parser.add_argument("--against", default=None, help="a git revision to time beside this checkout")
    parser.add_argument("--device", default="auto", help="FusionClassifier's device (cuda: the GPU cold fit)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--store", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.data, args.n_images, args.store, args.device)))
        return

    runs = {}
    if args.against:
        with tempfile.TemporaryDirectory(prefix="melagbm-rev-") as folder:
            subprocess.run(["git", "worktree", "add", "--detach", folder, args.against], cwd=REPO, check=True,
                           capture_output=True)
            try:
                runs[f"git {args.against}"] = run_revision(Path(folder), args.data, args.n_images, args.device)
            finally:
                subprocess.run(["git", "worktree", "remove", "--force", folder], cwd=REPO, check=False)
    runs["this checkout"] = run_revision(REPO, args.data, args.n_images, args.device)
    first = next(iter(runs.values()))
    print(f"SIIM-ISIC 2020 subset: cold fit of the default model on {first['rows']} images (patient-grouped 80 %), "
          f"{os.cpu_count()} cores, an empty store each\n")
    names = list(runs)
    print("| stage | " + " | ".join(f"{name} (s)" for name in names) + (" | ratio |" if len(names) > 1 else " |"))
    print("|---" * (len(names) + 1 + (len(names) > 1)) + "|")
    stages = list(dict.fromkeys(stage for run in runs.values() for stage in run["seconds"]))
    rows = [(stage, [run["seconds"].get(stage) for run in runs.values()]) for stage in stages]
    rows.append(("the rest (checks, labels, ...)",
                 [run["total"] - sum(run["seconds"].values()) if run["seconds"] else None for run in runs.values()]))
    rows.append(("**whole cold fit**", [run["total"] for run in runs.values()]))
    for stage, values in rows:
        ratio = (f" | {values[0] / values[-1]:.1f}x" if len(values) > 1 and None not in values and values[-1] > 0
                 else " | " if len(values) > 1 else "")
        print(f"| {stage} | " + " | ".join("n/a" if value is None else f"{value:.1f}" for value in values)
              + ratio + " |")
    print("\nmelagbm imported from: " + ", ".join(f"{name} {run['melagbm']}" for name, run in runs.items()))
    print("test ROC AUC (the other 20 %): " + ", ".join(f"{name} {run['auc']:.4f}" for name, run in runs.items()))


if __name__ == "__main__":
    main()
