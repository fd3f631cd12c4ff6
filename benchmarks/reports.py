"""Every report plot, regenerated through the command line on real data: ISIC 2020 subset and HAM10000.

For each dataset it writes a training and a held-out CSV (split by patient, or by lesion for
HAM10000), then runs what a user runs:

- ``melagbm evaluate`` on the whole CSV (grouped CV: report.md, roc.png, calibration.png, CSVs);
- ``melagbm fit`` on the training CSV and ``melagbm explain`` on the held-out one (importance,
  beeswarm, dependence on age and on lesion size, site cohorts, report.md).

Output: ``benchmarks/results/reports/<dataset>/{evaluate,explain}/`` (open the PNGs; ``--out``: another folder).

    python benchmarks/reports.py                            # ISIC subset (2,701) + 2,000 HAM10000 images
    python benchmarks/reports.py --datasets isic --ham-n 2000
    python benchmarks/reports.py --datasets ham --ham-n 80 --bootstrap 20 --out /tmp/reports   # smoke run

Cold, the ISIC subset takes about 10 min and 2,000 HAM10000 images about 12 min on 2 cores
(embedding and lesion measuring fill the store; later runs read it).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import pandas as pd
from _common import add_data_argument, timed  # benchmarks/_common.py
from sklearn.model_selection import GroupShuffleSplit

from melagbm.cli import main as melagbm

OUT = Path(__file__).resolve().parent / "results" / "reports"


def _isic(data: Path, _: int) -> tuple[pd.DataFrame, Path, str]:
    return pd.read_csv(data / "isic2020" / "subset_metadata.csv"), data / "isic2020" / "train", "patient_id"


def _ham(data: Path, n: int) -> tuple[pd.DataFrame, Path, str]:
    """``n`` HAM10000 images drawn as whole lesions, with a 0/1 target column beside the original ``dx``."""
    meta = pd.read_csv(data / "ham10000" / "HAM10000_metadata.csv")
    lesions = meta["lesion_id"].drop_duplicates().sample(frac=1.0, random_state=0)
    sizes = meta["lesion_id"].value_counts().reindex(lesions)
    chosen = meta[meta["lesion_id"].isin(lesions[(sizes.cumsum() <= n).to_numpy()])]
    return chosen.assign(target=(chosen["dx"] == "mel").astype(int)), data / "ham10000" / "images", "lesion_id"


def run(name: str, meta: pd.DataFrame, images: Path, group_col: str, bootstrap: int, out: Path = OUT) -> None:
    folder = out / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    image_col = "image_name" if "image_name" in meta.columns else "image_id"
    train, test = next(GroupShuffleSplit(test_size=0.3, random_state=0).split(meta, meta["target"], meta[group_col]))
    meta.to_csv(folder / "all.csv", index=False)
    meta.iloc[train].to_csv(folder / "train.csv", index=False)
    meta.iloc[test].drop(columns=["target"]).to_csv(folder / "test.csv", index=False)
    print(f"\n== {name}: {len(meta)} images ({int(meta['target'].sum())} melanomas, {meta[group_col].nunique()} "
          f"{group_col}s); held out {len(test)} images of {meta.iloc[test][group_col].nunique()} {group_col}s")
    common = ["--images", str(images), "--image-col", image_col]
    steps = {
        "evaluate": ["evaluate", "--metadata", str(folder / "all.csv"), *common, "--group-col", group_col,
                     "--out", str(folder / "evaluate"), "--bootstrap", str(bootstrap)],
        "fit": ["fit", "--metadata", str(folder / "train.csv"), *common, "--group-col", group_col,
                "--model", str(folder / "model.melagbm")],
        "explain": ["explain", "--metadata", str(folder / "test.csv"), *common, "--group-col", group_col,
                    "--model", str(folder / "model.melagbm"), "--out", str(folder / "explain"),
                    "--bootstrap", str(bootstrap)],
    }
    for step, argv in steps.items():
        print(f"\n$ melagbm {' '.join(argv)}", flush=True)
        seconds, status = timed(lambda: melagbm(argv))
        print(f"[{step}: exit {status}, {seconds:.0f} s]", flush=True)
        if status != 0:
            raise SystemExit(status)
    print(f"\n{name}: " + ", ".join(sorted(str(p.relative_to(folder)) for p in folder.rglob("*.png"))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_argument(parser)
    parser.add_argument("--datasets", default="isic,ham", help="comma-separated: isic, ham")
    parser.add_argument("--ham-n", type=int, default=2000, help="HAM10000 images (whole lesions)")
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for the intervals")
    parser.add_argument("--out", type=Path, default=OUT, help="output folder (default: benchmarks/results/reports)")
    args = parser.parse_args()
    loaders = {"isic": _isic, "ham": _ham}
    for name in (d.strip() for d in args.datasets.split(",")):
        meta, images, group_col = loaders[name](args.data, args.ham_n)
        run(name, meta, images, group_col, args.bootstrap, args.out)


if __name__ == "__main__":
    main()
