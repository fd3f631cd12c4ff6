"""Which head turns the frozen embeddings into the best image score (image only, no booster).

HAM10000, melanoma vs rest, 5-fold grouped by lesion, on the default embedding (melagbm.backbones.DEFAULT_BACKBONES,
4 levels, 5,304 dimensions, from the store; ``--backbones tf_efficientnet_lite0,tf_efficientnet_lite2`` for the
pair the user guide's tables of heads were measured on, 3,552 dimensions): out-of-fold ROC AUC of

- the logistic-regression probe at C = k x 2 / width (k = 0.25 ... 2; 1 is melagbm's rule),
- the probe learning every diagnosis (read: the melanoma probability),
- a small MLP head (torch; one hidden layer of 256, dropout, AdamW, 40 epochs, 3 seeds averaged),
  on the label and on the diagnoses,
- the label share among the k nearest training embeddings (cosine, 256 PCA components), alone and
  stacked with the probe (a logistic regression on both, itself out of fold).

    python benchmarks/image_heads.py                      # everything (about 25 min on 2 cores, warm store)
    python benchmarks/image_heads.py --only probe,C,knn   # the fast ones
    python benchmarks/image_heads.py --only probe --backbones tf_efficientnet_lite0 --images 80   # smoke run
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable

import numpy as np
from _common import add_data_argument  # benchmarks/_common.py
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold, cross_val_predict
from sklearn.preprocessing import StandardScaler

from melagbm import ImageEmbedder
from melagbm.backbones import DEFAULT_BACKBONES
from melagbm.datasets import load_ham10000
from melagbm.features.image_features import ImageFeatures
from melagbm.features.image_score import ImageSignal

Head = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def probe(C: float, diagnoses: bool = False) -> Head:
    """Logistic regression on standardised embeddings; the melanoma probability."""
    def head(train: np.ndarray, y: np.ndarray, dx: np.ndarray, test: np.ndarray) -> np.ndarray:
        scaler = StandardScaler().fit(train)
        model = LogisticRegression(C=C, max_iter=3000).fit(scaler.transform(train), dx if diagnoses else y)
        column = list(model.classes_).index("mel" if diagnoses else 1)
        return model.predict_proba(scaler.transform(test))[:, column]
    return head


def mlp(diagnoses: bool = False, hidden: int = 256, epochs: int = 40, seeds: int = 3) -> Head:
    """One hidden layer, dropout, AdamW with a one-cycle schedule; the mean melanoma log-probability over seeds."""
    import torch

    def head(train: np.ndarray, y: np.ndarray, dx: np.ndarray, test: np.ndarray) -> np.ndarray:
        scaler = StandardScaler().fit(train)
        a = torch.tensor(scaler.transform(train), dtype=torch.float32)
        b = torch.tensor(scaler.transform(test), dtype=torch.float32)
        classes, target = np.unique(dx if diagnoses else y, return_inverse=True)
        target = torch.tensor(target)
        column = list(classes).index("mel" if diagnoses else 1)
        out = np.zeros(len(test))
        for seed in range(seeds):
            torch.manual_seed(seed)
            net = torch.nn.Sequential(torch.nn.Dropout(0.2), torch.nn.Linear(a.shape[1], hidden), torch.nn.GELU(),
                                      torch.nn.Dropout(0.5), torch.nn.Linear(hidden, len(classes)))
            optimiser = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1e-3)
            steps = epochs * ((len(a) + 127) // 128)
            schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=1e-3, total_steps=steps)
            for _ in range(epochs):
                order = torch.randperm(len(a))
                for start in range(0, len(a), 128):
                    rows = order[start:start + 128]
                    optimiser.zero_grad()
                    torch.nn.functional.cross_entropy(net(a[rows]), target[rows]).backward()
                    optimiser.step()
                    schedule.step()
            net.eval()
            with torch.no_grad():
                out += np.log(np.clip(torch.softmax(net(b), 1)[:, column].numpy(), 1e-9, 1))
        return out / seeds
    return head


def neighbours(k: int) -> Head:
    """The melanoma share among the k most cosine-similar training embeddings (256 PCA components)."""
    def head(train: np.ndarray, y: np.ndarray, dx: np.ndarray, test: np.ndarray) -> np.ndarray:
        scaler = StandardScaler().fit(train)
        pca = PCA(256, random_state=0).fit(scaler.transform(train))
        a, b = pca.transform(scaler.transform(train)), pca.transform(scaler.transform(test))
        a /= np.linalg.norm(a, axis=1, keepdims=True)
        b /= np.linalg.norm(b, axis=1, keepdims=True)
        nearest = np.argpartition(-(b @ a.T), k, axis=1)[:, :k]
        return y[nearest].mean(axis=1)
    return head


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_argument(parser)
    parser.add_argument("--only", default="probe,C,diagnoses,knn,mlp")
    parser.add_argument("--backbones", default=",".join(DEFAULT_BACKBONES), help="comma-separated encoders")
    parser.add_argument("--images", type=int, default=None,
                        help="this many HAM10000 images drawn at random (default: all 10,015)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=UserWarning)
    X, y, groups = load_ham10000(args.data / "ham10000", diagnosis=True, n_samples=args.images)
    features = ImageFeatures(backbones=tuple(args.backbones.split(",")),
                             embedder=ImageEmbedder(layers=4, verbose=0), scorer=ImageSignal()).fit_embedders("cpu")
    embeddings, labels = features.embed(X["image"], on_bad_image="raise"), y.to_numpy()
    dx, group_ids, width = X["diagnosis"].astype(str).to_numpy(), groups.to_numpy(), embeddings.shape[1]
    folds = list(StratifiedGroupKFold(5, shuffle=True, random_state=0).split(embeddings, labels, group_ids))
    print(f"## HAM10000, image only, 5-fold grouped by lesion: {len(X)} images, {labels.sum()} melanomas, "
          f"{width}-d embeddings\n\n| head | out-of-fold ROC AUC | seconds |\n|---|---|---|", flush=True)
    scores: dict[str, np.ndarray] = {}

    def run(name: str, head: Head) -> None:
        started, oof = time.perf_counter(), np.zeros(len(labels))
        for train, test in folds:
            oof[test] = head(embeddings[train], labels[train], dx[train], embeddings[test])
        scores[name] = oof
        print(f"| {name} | {roc_auc_score(labels, oof):.4f} | {time.perf_counter() - started:.0f} |", flush=True)

    wanted = args.only.split(",")
    if "probe" in wanted or "knn" in wanted:
        run("probe, C = 2 / width (melagbm's rule)", probe(2 / width))
    if "C" in wanted:
        for k in (0.25, 0.5, 2.0):
            run(f"probe, C = {k} x 2 / width", probe(k * 2 / width))
    if "diagnoses" in wanted:
        run("probe learning every diagnosis", probe(2 / width, diagnoses=True))
    if "knn" in wanted:
        from scipy.special import logit

        base = scores["probe, C = 2 / width (melagbm's rule)"]
        for k in (25, 50):
            run(f"label share of the {k} nearest", neighbours(k))
            stacked = np.column_stack([logit(np.clip(base, 1e-6, 1 - 1e-6)),
                                       logit(np.clip(scores[f"label share of the {k} nearest"], 0.01, 0.99))])
            outer = StratifiedGroupKFold(5, shuffle=True, random_state=1)
            both = cross_val_predict(LogisticRegression(), stacked, labels, cv=outer, groups=group_ids,
                                     method="predict_proba")[:, 1]
            print(f"| probe + label share of the {k} nearest, stacked | {roc_auc_score(labels, both):.4f} | |")
    if "mlp" in wanted:
        run("MLP head on the label", mlp())
        run("MLP head on every diagnosis", mlp(diagnoses=True))


if __name__ == "__main__":
    main()
