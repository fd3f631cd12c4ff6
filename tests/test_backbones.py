from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image

from melagbm import backbones
from melagbm.backbones import ENCODERS, BackboneUnavailableError, load_backbone, weights_digest
from melagbm.backbones.registry import split_input_size, weights_source

skimage_data = pytest.importorskip("skimage.data")


def _top5(model: torch.nn.Module, image: np.ndarray) -> list[int]:
    import timm

    config = timm.data.resolve_model_data_config(model)
    batch = timm.data.create_transform(**config)(Image.fromarray(image)).unsqueeze(0)
    with torch.inference_mode():
        return model(batch)[0].topk(5).indices.tolist()


@pytest.mark.parametrize("name", sorted(ENCODERS))
def test_packaged_weights_are_real_imagenet_weights(name: str) -> None:
    model = load_backbone(name, num_classes=1000)
    assert not model.training
    assert not any(p.requires_grad for p in model.parameters())
    cat = _top5(model, skimage_data.chelsea())
    espresso = _top5(model, skimage_data.coffee())
    assert 281 <= cat[0] <= 285, f"{name}: chelsea -> {cat}"
    assert espresso[0] == 967, f"{name}: coffee -> {espresso}"


def test_feature_backbone_drops_only_the_head() -> None:
    features = load_backbone("tf_efficientnet_lite0")
    full = load_backbone("tf_efficientnet_lite0", num_classes=1000)
    full_state = full.state_dict()
    for key, tensor in features.state_dict().items():
        assert torch.equal(tensor, full_state[key]), key
    assert features(torch.zeros(1, 3, 224, 224)).shape == (1, 1280)


def test_tensor_count_mismatch_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    wrong = dataclasses.replace(ENCODERS["tf_efficientnet_lite0"], n_tensors=246)
    monkeypatch.setitem(backbones.ENCODERS, "tf_efficientnet_lite0", wrong)
    with pytest.raises(BackboneUnavailableError, match="247 tensors"):
        load_backbone("tf_efficientnet_lite0")


def test_shape_mismatch_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # lite1's file loaded into lite0's architecture: shapes differ early on
    wrong = dataclasses.replace(ENCODERS["tf_efficientnet_lite1"], timm_name="tf_efficientnet_lite2")
    monkeypatch.setitem(backbones.ENCODERS, "tf_efficientnet_lite1", wrong)
    with pytest.raises(BackboneUnavailableError, match="does not fit"):
        load_backbone("tf_efficientnet_lite1")


def test_unknown_name_lists_packaged_encoders() -> None:
    with pytest.raises(ValueError, match="tf_efficientnet_lite0"):
        load_backbone("no_such_model_xyz")


def test_offline_timm_model_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(BackboneUnavailableError, match="internet") as info:
        load_backbone("resnet18", checkpoint_path=None)
    assert "tf_efficientnet_lite0" in str(info.value)


def test_checkpoint_path_loads_local_weights(tmp_path) -> None:
    reference = load_backbone("tf_efficientnet_lite0", num_classes=1000)
    path = tmp_path / "lite0.pth"
    torch.save(reference.state_dict(), path)
    loaded = load_backbone("tf_efficientnet_lite0", checkpoint_path=path)
    assert weights_digest(loaded) == weights_digest(load_backbone("tf_efficientnet_lite0"))


def test_bad_checkpoint_is_an_error(tmp_path) -> None:
    path = tmp_path / "wrong.pth"
    torch.save(load_backbone("tf_efficientnet_lite1").state_dict(), path)
    with pytest.raises(BackboneUnavailableError, match="does not fit"):
        load_backbone("tf_efficientnet_lite0", checkpoint_path=path)
    with pytest.raises(BackboneUnavailableError, match="does not exist"):
        load_backbone("tf_efficientnet_lite0", checkpoint_path=tmp_path / "absent.pth")


def test_a_size_suffix_feeds_the_same_weights_another_size() -> None:
    sized, plain = load_backbone("tf_efficientnet_lite2@320"), load_backbone("tf_efficientnet_lite2")
    assert weights_digest(sized) == weights_digest(plain)
    assert sized.pretrained_cfg["input_size"] == (3, 320, 320) and sized.pretrained_cfg["crop_pct"] == 1.0
    assert plain.pretrained_cfg["input_size"] == (3, 260, 260)  # the name alone keeps timm's preprocessing
    assert sized.pretrained_cfg["license"] == plain.pretrained_cfg["license"]
    assert weights_source("tf_efficientnet_lite2@320") == weights_source("tf_efficientnet_lite2")
    assert split_input_size("tf_efficientnet_lite0") == ("tf_efficientnet_lite0", None)


@pytest.mark.parametrize(("name", "message"), [
    ("derm_xception@300", "keeps the preprocessing it was trained with"),
    ("hf-hub:org/model@300", "keeps the preprocessing it was trained with"),
    ("tf_efficientnet_lite0@16", "at least 32 pixels"),
])
def test_a_size_suffix_where_it_cannot_apply_is_refused(name: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_backbone(name)
