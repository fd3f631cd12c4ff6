"""Which of image, lesion size, age and site drive melanoma scores? The study's importance analysis, redone.

For HAM10000 and the SIIM-ISIC 2020 subset: fit the default FusionClassifier on three
quarters of the patients (lesions for HAM10000), explain the held-out quarter with exact
tree SHAP, and write per dataset a folder with the importance bar chart (95 % intervals
over patients/lesions), a beeswarm of the families, the dependence on age and on lesion
size, the families by anatomical site, the tables and a markdown report. Then say in words
which families matter, in what order.

    python examples/importance_analysis.py --out importance/          # both datasets
    python examples/importance_analysis.py --datasets isic --out importance/

The images are embedded and measured once into the embedding store (HAM10000: about 40 min
on 2 cores the first time); reruns read the store.
"""

from __future__ import annotations

import argparse
import os
import warnings
from pathlib import Path

import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold

from melagbm import FusionClassifier
from melagbm.datasets import load_ham10000, load_isic2020
from melagbm.explain.report import write_explanation_report


def describe(name: str, importance: pd.DataFrame) -> str:
    """The importance table in words: the order, and which families carry most of the signal."""
    shares = importance["share"]
    ranked = ", ".join(f"{family} ({share:.0%})" for family, share in shares.items())
    top = shares.cumsum().searchsorted(0.75) + 1
    leaders = " and ".join(shares.index[:top]) if top > 1 else shares.index[0]
    overlapping = [
        f"{a} and {b}" for a, b in zip(importance.index[:-1], importance.index[1:])
        if importance.loc[b, "ci_high"] >= importance.loc[a, "ci_low"]
    ]
    ties = f" Intervals overlap for {'; '.join(overlapping)}, so those ranks are not settled." if overlapping else ""
    return (f"{name}: families by mean |SHAP| (share of the total): {ranked}. "
            f"{leaders} carry three quarters of the model's decisions.{ties}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_data = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("MELAGBM_DATA", default_data)))
    parser.add_argument("--datasets", default="ham,isic")
    parser.add_argument("--out", type=Path, default=Path("importance"))
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=UserWarning)

    loaders = {
        "ham": ("HAM10000", lambda: load_ham10000(args.data / "ham10000"), "lesions"),
        "isic": ("SIIM-ISIC 2020 subset", lambda: load_isic2020(args.data / "isic2020"), "patients"),
    }
    for key in args.datasets.split(","):
        name, load, unit = loaders[key]
        X, y, groups = load()  # ISIC's X keeps patient_id: the default model adds patient context
        train, test = next(StratifiedGroupKFold(4, shuffle=True, random_state=0).split(X, y, groups))
        model = FusionClassifier(random_state=0).fit(X.iloc[train], y.iloc[train], groups=groups.iloc[train])
        report = write_explanation_report(
            model, X.iloc[test], args.out / key, groups=groups.iloc[test].to_numpy(),
            title=f"What drives melagbm's melanoma score on {name}",
            notes=[f"default FusionClassifier fitted on {len(train)} images; {len(test)} held-out images "
                   f"({int(y.iloc[test].sum())} melanomas) of other {unit} explained"],
        )
        importance = pd.read_csv(report.parent / "importance.csv", index_col=0)
        print(importance.round(3).to_string())
        print(describe(name, importance))
        print(f"plots and report: {report.parent}\n", flush=True)


if __name__ == "__main__":
    main()
