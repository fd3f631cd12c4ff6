"""open_clip image towers as frozen encoders: ``"hf-hub:<org>/<name>"`` or ``"local-dir:<folder>"``.

Only the image tower is kept; its projected output is the embedding, and the model's own
preprocessing (size, mean, std, resize mode) is carried as a timm-style ``pretrained_cfg``.
Weights come from the Hugging Face hub (or its cache, so ``HF_HUB_OFFLINE=1`` works) or from a
local folder holding ``open_clip_config.json`` and the weights; a model whose weights cannot be
found is an error, never a randomly initialised tower.
"""

from __future__ import annotations

import re
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..exceptions import BackboneUnavailableError
from ._hub import hub_access

if TYPE_CHECKING:
    import torch

__all__ = ["HUB_PREFIX", "KNOWN_LICENSES", "LOCAL_PREFIX", "is_open_clip_name", "load_open_clip_tower"]

HUB_PREFIX, LOCAL_PREFIX = "hf-hub:", "local-dir:"

#: Weight files open_clip reads from a hub repository or a local folder, preferred first.
_WEIGHT_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
_CONFIG_FILE = "open_clip_config.json"

#: Licences of well-known open_clip repositories, from their model cards: used when the card
#: itself (README.md front matter) is not at hand, for example in an offline cache without it.
KNOWN_LICENSES = {
    "redlessone/DermLIP_PanDerm-base-w-PubMed-256": "cc-by-nc-nd-4.0",
    "redlessone/DermLIP_ViT-B-16": "cc-by-nc-4.0",
    "microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224": "mit",
    "laion/CLIP-ViT-L-14-laion2B-s32B-b82K": "mit",
}

#: open_clip resize modes -> timm crop modes (both then crop or squash to the input size).
_CROP_MODES = {"shortest": "center", "squash": "squash", "longest": "border"}


def is_open_clip_name(name: str) -> bool:
    """True for ``"hf-hub:..."`` and ``"local-dir:..."`` backbone names."""
    return isinstance(name, str) and name.startswith((HUB_PREFIX, LOCAL_PREFIX))


def load_open_clip_tower(name: str) -> torch.nn.Module:
    """The frozen-ready image tower of the open_clip model ``name``, with its preprocessing and licence.

    Parameters
    ----------
    name : str
        ``"hf-hub:<org>/<repo>"`` (the hub, or its cache when offline) or ``"local-dir:<folder>"``.

    Returns
    -------
    tower : torch.nn.Module
        ``forward`` gives the projected image embedding; ``num_features`` its width;
        ``pretrained_cfg`` timm-style preprocessing plus ``license``.

    Raises
    ------
    BackboneUnavailableError
        When open_clip is not installed, or the configuration or weights cannot be found.
    """
    try:
        import open_clip
    except ModuleNotFoundError as exc:
        raise BackboneUnavailableError(
            f"backbone {name!r} is an open_clip model: pip install open-clip-torch"
        ) from exc
    import torch

    from ._tower import OpenClipImageTower

    if name.startswith(LOCAL_PREFIX):
        _check_local_folder(Path(name[len(LOCAL_PREFIX):]).expanduser(), name)
        access = nullcontext()
    else:
        access = hub_access(name[len(HUB_PREFIX):], [(_CONFIG_FILE,), _WEIGHT_FILES], _download_advice(name))
    with access:
        try:  # require_pretrained: open_clip raises instead of returning random weights
            model = open_clip.create_model(name, require_pretrained=True, device="cpu")
        except Exception as exc:
            raise BackboneUnavailableError(_unavailable_message(name, exc)) from exc
        license = _license(name)
    visual = model.visual
    with torch.inference_mode():
        width = int(visual(_blank_input(visual)).shape[-1])
    return OpenClipImageTower(visual, width, {**_preprocessing(visual), "license": license, "architecture": name})


def _check_local_folder(folder: Path, name: str) -> None:
    """A local open_clip folder needs its config and one weight file (open_clip only warns without weights)."""
    if not (folder / _CONFIG_FILE).is_file():
        raise BackboneUnavailableError(f"{name}: no {_CONFIG_FILE} in {folder}")
    if not any((folder / file).is_file() for file in _WEIGHT_FILES):
        raise BackboneUnavailableError(
            f"{name}: no weights in {folder}; it needs one of {', '.join(_WEIGHT_FILES)} beside {_CONFIG_FILE}"
        )


def _unavailable_message(name: str, exc: Exception) -> str:
    if name.startswith(LOCAL_PREFIX):
        return f"Could not load the open_clip model in {name[len(LOCAL_PREFIX):]}: {exc}"
    return f"Could not load the open_clip model {name!r} ({type(exc).__name__}: {exc}). {_download_advice(name)}"


def _download_advice(name: str) -> str:
    repo = name[len(HUB_PREFIX):]
    return (
        f"It needs internet access or the files in the Hugging Face cache. On a connected machine run: "
        f"hf download {repo} {_CONFIG_FILE} {_WEIGHT_FILES[0]} README.md "
        f"(or {_WEIGHT_FILES[1]} where the repository has no safetensors file); then either copy the cache "
        f"(~/.cache/huggingface/hub, or $HF_HUB_CACHE) to this machine and set HF_HUB_OFFLINE=1, or put those "
        f"files in one folder and pass backbone='local-dir:/path/to/that/folder'."
    )


def _blank_input(visual: Any) -> torch.Tensor:
    import torch

    size = visual.image_size if isinstance(visual.image_size, (tuple, list)) else (visual.image_size,) * 2
    return torch.zeros(1, 3, int(size[0]), int(size[1]))


def _preprocessing(visual: Any) -> dict[str, Any]:
    """open_clip's preprocessing of ``visual`` as timm's data config."""
    cfg = dict(getattr(visual, "preprocess_cfg", {}) or {})
    size = cfg.get("size", visual.image_size)
    height, width = (size, size) if isinstance(size, int) else tuple(size)
    return {
        "input_size": (3, int(height), int(width)),
        "interpolation": cfg.get("interpolation", "bicubic"),
        "mean": tuple(float(m) for m in cfg.get("mean", (0.48145466, 0.4578275, 0.40821073))),
        "std": tuple(float(s) for s in cfg.get("std", (0.26862954, 0.26130258, 0.27577711))),
        "crop_pct": 1.0,
        "crop_mode": _CROP_MODES.get(cfg.get("resize_mode", "shortest"), "center"),
    }


def _license(name: str) -> str:
    """The licence in the model card's front matter, else :data:`KNOWN_LICENSES`, else ``"unknown"``."""
    card = _model_card(name)
    if card is not None:
        match = re.search(r"\A---\s*\n(.*?)\n---", card, flags=re.S)
        found = re.search(r"^license:\s*['\"]?([^'\"\n]+)", match.group(1), flags=re.M) if match else None
        if found:
            return found.group(1).strip().lower()
    repo = name[len(HUB_PREFIX):] if name.startswith(HUB_PREFIX) else None
    return KNOWN_LICENSES.get(repo, "unknown")


def _model_card(name: str) -> str | None:
    """README.md of the local folder, or of the hub repository (the cache first when offline); None when absent."""
    if name.startswith(LOCAL_PREFIX):
        card = Path(name[len(LOCAL_PREFIX):]).expanduser() / "README.md"
        return card.read_text(encoding="utf-8", errors="replace") if card.is_file() else None
    try:
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(name[len(HUB_PREFIX):], "README.md")).read_text(encoding="utf-8",
                                                                                     errors="replace")
    except Exception:  # no card in the cache, offline, or no such file: the licence is looked up elsewhere
        return None
