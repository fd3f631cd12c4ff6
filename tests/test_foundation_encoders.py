"""Foundation encoders through the backbone registry: open_clip image towers and timm hub models.

No internet here, so the models are tiny ones built in the test and saved where a real one would be:
an open_clip folder (``local-dir:``) and a pre-filled Hugging Face cache (``hf-hub:`` and a timm name),
loaded through exactly the code path a downloaded model takes.
"""

from __future__ import annotations

import json
import shutil
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

open_clip = pytest.importorskip("open_clip")
torch = pytest.importorskip("torch")

from huggingface_hub import constants as hub_constants  # noqa: E402

from melagbm import FusionClassifier, ImageEmbedder  # noqa: E402
from melagbm.backbones import _hub  # noqa: E402
from melagbm.backbones.registry import (  # noqa: E402
    BackboneUnavailableError,
    load_backbone,
    restricts_commercial_use,
    weights_digest,
)
from melagbm.exceptions import RestrictedLicenseWarning  # noqa: E402

TOWER_CFG = {
    "embed_dim": 24,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 32, "head_width": 16, "patch_size": 16},
    "text_cfg": {"context_length": 8, "vocab_size": 64, "width": 16, "heads": 2, "layers": 1},
}
PREPROCESS = {"mean": [0.5, 0.4, 0.3], "std": [0.2, 0.25, 0.3], "interpolation": "bicubic", "resize_mode": "shortest"}
CARD = "---\nlicense: cc-by-nc-4.0\ntags: [dermatology]\n---\n# A tiny test tower\n"
HUB_REPO, TIMM_NAME = "tinyorg/tiny-derm-clip", "test_vit.r160_in1k"


def _put_in_cache(cache: Path, repo: str, files: dict[str, Path]) -> None:
    """Lay ``files`` out as huggingface_hub caches a download of ``repo``'s main branch."""
    folder = cache / f"models--{repo.replace('/', '--')}"
    snapshot = folder / "snapshots" / ("a" * 40)
    snapshot.mkdir(parents=True)
    for name, source in files.items():
        shutil.copy(source, snapshot / name)
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text("a" * 40)


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    """(a saved open_clip folder, the open_clip model itself, a Hugging Face cache holding it and a timm model)."""
    from safetensors.torch import save_file

    root = tmp_path_factory.mktemp("foundation")
    torch.manual_seed(0)
    clip = open_clip.CLIP(**TOWER_CFG).eval()
    folder = root / "tiny-clip"
    folder.mkdir()
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": TOWER_CFG, "preprocess_cfg": PREPROCESS}))
    save_file({k: v.contiguous() for k, v in clip.state_dict().items()}, folder / "open_clip_model.safetensors")
    (folder / "README.md").write_text(CARD)
    import timm

    vit = timm.create_model(TIMM_NAME, pretrained=False)
    save_file(vit.state_dict(), root / "model.safetensors")
    cache = root / "hf-cache"
    _put_in_cache(cache, HUB_REPO, {name: folder / name for name in
                                    ("open_clip_config.json", "open_clip_model.safetensors", "README.md")})
    _put_in_cache(cache, f"timm/{TIMM_NAME}", {"model.safetensors": root / "model.safetensors"})
    return folder, clip, cache, vit


@pytest.fixture
def offline_cache(tiny_models, monkeypatch):
    """The pre-filled cache as the Hugging Face cache, with HF_HUB_OFFLINE=1."""
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tiny_models[2]))
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return tiny_models


def test_a_local_open_clip_folder_gives_the_towers_own_embedding_of_real_images(tiny_models, ham_sample) -> None:
    folder, clip, _, _ = tiny_models
    tower = load_backbone(f"local-dir:{folder}")
    assert not any(p.requires_grad for p in tower.parameters()) and not tower.training
    batch = torch.rand(3, 3, 64, 64)
    with torch.inference_mode():
        np.testing.assert_allclose(tower(batch).numpy(), clip.encode_image(batch).numpy(), atol=1e-5)
    assert tower.pretrained_cfg["mean"] == tuple(PREPROCESS["mean"]) and tower.pretrained_cfg["input_size"] == (3, 64, 64)

    paths = list(ham_sample[0]["image"][:4])  # real dermoscopy, through open_clip's own preprocessing
    _, _, preprocess = open_clip.create_model_and_transforms(f"local-dir:{folder}")
    from PIL import Image

    with torch.inference_mode():
        direct = clip.encode_image(torch.stack([preprocess(Image.open(p)) for p in paths])).numpy()
    embedder = ImageEmbedder(backbone=f"local-dir:{folder}", cache=None, verbose=0).fit()
    assert embedder.n_features_out_ == 24 and embedder.layers_ == 1 and embedder.license_ == "cc-by-nc-4.0"
    np.testing.assert_allclose(embedder.transform(paths), direct, atol=2e-3)


def test_an_hf_hub_name_loads_from_a_filled_cache_offline(offline_cache) -> None:
    folder, _, _, vit = offline_cache
    from_hub = load_backbone(f"hf-hub:{HUB_REPO}")
    assert weights_digest(from_hub) == weights_digest(load_backbone(f"local-dir:{folder}"))
    assert from_hub.pretrained_cfg["license"] == "cc-by-nc-4.0"  # read from the model card in the cache
    timm_model = load_backbone(TIMM_NAME)
    expected = {k: v for k, v in vit.state_dict().items() if not k.startswith("head.")}
    assert {k: v.shape for k, v in timm_model.state_dict().items()} == {k: v.shape for k, v in expected.items()}
    assert all(torch.equal(timm_model.state_dict()[k], v) for k, v in expected.items())
    assert timm_model.pretrained_cfg["license"] == "apache-2.0"
    embedder = ImageEmbedder(backbone=TIMM_NAME, layers="auto", cache=None).fit()
    assert embedder.layers_ == 4 and embedder.n_features_out_ == 4 * timm_model.num_features


def test_missing_weights_are_an_error_naming_what_to_download(tiny_models, tmp_path, monkeypatch) -> None:
    folder = tiny_models[0]
    config_only = tmp_path / "config-only"
    config_only.mkdir()
    shutil.copy(folder / "open_clip_config.json", config_only)
    with pytest.raises(BackboneUnavailableError, match="open_clip_model.safetensors"):
        load_backbone(f"local-dir:{config_only}")  # open_clip itself would only warn and go on with random weights
    with pytest.raises(BackboneUnavailableError, match="no open_clip_config.json"):
        load_backbone(f"local-dir:{tmp_path / 'absent'}")

    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setattr(_hub, "_hub_reachable", lambda: False)  # no network, as on a clinic's locked-down machine
    started = time.perf_counter()
    with pytest.raises(BackboneUnavailableError) as caught:
        load_backbone("hf-hub:redlessone/DermLIP_ViT-B-16")
    message = str(caught.value)
    assert "cannot be reached" in message and "open_clip_config.json" in message
    assert "hf download redlessone/DermLIP_ViT-B-16" in message and "local-dir:" in message
    with pytest.raises(BackboneUnavailableError, match=r"hf download timm/test_vit2\.r160_in1k"):
        load_backbone("test_vit2.r160_in1k")
    assert time.perf_counter() - started < 10  # at once, not after retries


def test_unreachable_hub_falls_back_to_a_filled_cache(tiny_models, monkeypatch) -> None:
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tiny_models[2]))
    monkeypatch.setattr(_hub, "_hub_reachable", lambda: False)
    assert load_backbone(f"hf-hub:{HUB_REPO}").num_features == 24
    assert hub_constants.HF_HUB_OFFLINE is False  # offline mode only for that load


def test_a_direct_probe_is_skipped_behind_a_proxy(monkeypatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    assert _hub._hub_reachable()  # huggingface_hub goes through the proxy: no socket to the hub is tried


def test_per_backbone_columns_of_hub_names_are_valid_booster_names(offline_cache, ham_sample) -> None:
    X, y, groups = ham_sample
    model = FusionClassifier(backbone=(f"hf-hub:{HUB_REPO}", "tf_efficientnet_lite0"), backbone_signals="per_backbone",
                             lesion_features=False, verbose=0).fit(X[:160], y[:160], groups=groups[:160])
    assert "image_hf-hub_tinyorg_tiny-derm-clip__score" in model.feature_names_
    assert model.feature_families_["image_hf-hub_tinyorg_tiny-derm-clip__score"] == f"image: hf-hub:{HUB_REPO}"
    assert np.isfinite(model.predict_proba(X[160:200])).all()


def test_layers_beyond_a_towers_one_output_are_refused(tiny_models) -> None:
    with pytest.raises(ValueError, match="layers=1 or 'auto'"):
        ImageEmbedder(backbone=f"local-dir:{tiny_models[0]}", layers=4, cache=None).fit()
    with pytest.raises(ValueError, match="checkpoint_path"):
        load_backbone(f"local-dir:{tiny_models[0]}", checkpoint_path="weights.pth")


@pytest.mark.parametrize(("license", "restricted"), [
    ("cc-by-nc-4.0", True), ("cc-by-nc-nd-4.0", True), ("CC BY-NC 4.0", True), ("Research only", True),
    ("mit", False), ("apache-2.0", False), ("dinov3-license", False), ("unknown", False),
])
def test_non_commercial_licences_are_recognised(license, restricted) -> None:
    assert restricts_commercial_use(license) is restricted


def test_a_fusion_model_on_foundation_encoders_is_fitted_saved_loaded_and_predicts(
    offline_cache, ham_sample, tmp_path, capsys, monkeypatch
) -> None:
    from melagbm import load

    X, y, groups = ham_sample
    backbones = (f"hf-hub:{HUB_REPO}", TIMM_NAME)
    params = {"backbone": backbones, "lesion_features": False, "random_state": 0, "cache": tmp_path / "store"}
    with pytest.warns(RestrictedLicenseWarning, match="cc-by-nc-4.0"):
        model = FusionClassifier(**params).fit(X[:200], y[:200], groups=groups[:200])
    log = capsys.readouterr()
    assert "NON-COMMERCIAL" in log.out + log.err and f"hf-hub:{HUB_REPO}: cc-by-nc-4.0" in log.out + log.err
    assert model.weights_licenses_ == {backbones[0]: "cc-by-nc-4.0", backbones[1]: "apache-2.0"}
    assert [e.layers_ for e in model.embedders_] == [1, 4]  # layers="auto": the tower's one output, the ViT's 4
    expected = model.predict_proba(X[200:])[:, 1]
    assert np.isfinite(expected).all() and expected.std() > 0

    path = model.save(tmp_path / "foundation.melagbm")
    with zipfile.ZipFile(path) as archive:
        manifest = json.loads(archive.read("manifest.json"))
    assert manifest["weights_licenses"] == model.weights_licenses_
    loaded = load(path)
    assert loaded.weights_licenses_ == model.weights_licenses_
    np.testing.assert_allclose(loaded.predict_proba(X[200:])[:, 1], expected, rtol=1e-6)

    from melagbm.store import EmbeddingStore

    assert set(EmbeddingStore(tmp_path / "store").encoders()) == {e.encoder_id_ for e in model.embedders_}
    monkeypatch.setattr(ImageEmbedder, "compute_batches", lambda *args: pytest.fail("an image was embedded twice"))
    refit = FusionClassifier(**params, verbose=0).fit(X[:200], y[:200], groups=groups[:200])  # from the store
    np.testing.assert_allclose(refit.predict_proba(X[200:])[:, 1], expected, rtol=1e-6)
