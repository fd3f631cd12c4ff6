"""derm_lite0: Lite0 adapted to dermoscopy, its trained tensors shipped in melagbm; the training script."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from melagbm import BackboneUnavailableError, ImageEmbedder
from melagbm.backbones import load_backbone, weights_license, weights_source
from melagbm.backbones.derm_lite0 import (
    DERM_LITE0,
    INPUT_SIZE,
    TRAINED_ON,
    TRAINED_PREFIXES,
    derm_lite0_path,
    trained_on,
    training_image_hashes,
)
from melagbm.backbones.registry import restricts_commercial_use
from melagbm.images.reading import content_hash
from melagbm.leakage import encoder_training_overlap

REPO = Path(__file__).resolve().parents[1]


def _exported(folder: Path, shift: float = 0.5, trained_on_keys=("ham",), hashes=()) -> Path:
    """A derm_lite0 weight file as the training script exports it: Lite0's last stages, changed, in half
    precision; with the run's encoder.json and training-image list beside it."""
    base = load_backbone("tf_efficientnet_lite0").state_dict()
    state = {key: (tensor + shift).half() if tensor.is_floating_point() else tensor
             for key, tensor in base.items() if key.startswith(TRAINED_PREFIXES)}
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(state, folder / "derm_lite0.pt")
    (folder / "encoder.json").write_text(json.dumps({"trained_on": list(trained_on_keys)}))
    np.save(folder / "training_image_sha256_prefixes.npy", np.sort(np.array(hashes, dtype=np.uint64)))
    return folder / "derm_lite0.pt"


def test_a_weight_file_replaces_only_the_last_stages(tmp_path) -> None:
    path = _exported(tmp_path)
    model = load_backbone(DERM_LITE0, checkpoint_path=path)
    imagenet = load_backbone("tf_efficientnet_lite0").state_dict()
    trained = torch.load(path, weights_only=True)
    for key, tensor in model.state_dict().items():
        expected = trained[key].to(tensor.dtype) if key in trained else imagenet[key]
        assert torch.equal(tensor, expected), key
    assert any(key.startswith("blocks.6.") for key in trained) and not any(k.startswith("blocks.4.") for k in trained)
    assert model.pretrained_cfg["input_size"] == (3, INPUT_SIZE, INPUT_SIZE) and model.pretrained_cfg["crop_pct"] == 1
    assert restricts_commercial_use(weights_license(model))


def test_a_foreign_or_torn_file_is_refused_by_name(tmp_path) -> None:
    path = _exported(tmp_path / "run")
    state = torch.load(path, weights_only=True)
    del state["conv_head.weight"]
    torch.save(state, tmp_path / "missing.pt")
    with pytest.raises(BackboneUnavailableError, match=r"missing\.pt is not a derm_lite0 weight file.*conv_head"):
        load_backbone(DERM_LITE0, checkpoint_path=tmp_path / "missing.pt")
    state = torch.load(path, weights_only=True)
    state["conv_head.weight"] = state["conv_head.weight"][:10]
    torch.save(state, tmp_path / "shape.pt")
    with pytest.raises(BackboneUnavailableError, match=r"conv_head\.weight is \(10, 320, 1, 1\)"):
        load_backbone(DERM_LITE0, checkpoint_path=tmp_path / "shape.pt")
    (tmp_path / "torn.pt").write_bytes(path.read_bytes()[:1000])
    with pytest.raises(BackboneUnavailableError, match=r"torn\.pt is not a readable derm_lite0 weight file"):
        load_backbone(DERM_LITE0, checkpoint_path=tmp_path / "torn.pt")
    with pytest.raises(BackboneUnavailableError, match="weight file is missing"):
        load_backbone(DERM_LITE0, checkpoint_path=tmp_path / "absent.pt")


def test_the_guard_reads_a_runs_own_training_data(tmp_path) -> None:
    seen = tmp_path / "seen.jpg"
    from PIL import Image

    Image.new("RGB", (32, 32), (200, 120, 90)).save(seen)
    Image.new("RGB", (32, 32), (20, 120, 90)).save(tmp_path / "unseen.jpg")
    path = _exported(tmp_path / "run", hashes=[int(content_hash(seen)[:16], 16)])
    assert trained_on(path) == ("ham10000",)
    reason = encoder_training_overlap(DERM_LITE0, [seen, tmp_path / "unseen.jpg"], [], checkpoint_path=path)
    assert reason.startswith("derm_lite0's weights were trained on HAM10000, and 1 of the 2 training images")
    assert encoder_training_overlap(DERM_LITE0, [tmp_path / "unseen.jpg"], ["BCN20000"], checkpoint_path=path) is None
    assert "the data is named HAM10000" in encoder_training_overlap(f"{DERM_LITE0}@224", [], ["HAM10000"],
                                                                     checkpoint_path=path)


def test_the_shipped_encoder_says_what_it_is() -> None:
    try:
        derm_lite0_path()
    except BackboneUnavailableError:
        pytest.fail("derm_lite0.pt must ship inside the package (melagbm/backbones/derm_lite0.pt)")
    identity = json.loads((REPO / "training" / "runs" / "derm_lite0" / "encoder.json").read_text())
    import hashlib

    assert hashlib.sha256(derm_lite0_path().read_bytes()).hexdigest() == identity["sha256"]
    assert identity["license"] == "cc-by-nc-4.0" and set(identity["trained_on"]) == {"ham", "bcn"}
    assert TRAINED_ON == ("ham10000", "bcn20000") and len(training_image_hashes()) > 22_000
    embedder = ImageEmbedder(backbone=DERM_LITE0, layers=4, cache=None).fit()
    assert embedder.data_config_["input_size"] == (3, 192, 192) and embedder.license_ == "cc-by-nc-4.0"
    assert embedder.n_features_out_ == 1280 + 320 + 112 + 40
    assert "HAM10000 and BCN20000" in weights_source(DERM_LITE0)
    sized = ImageEmbedder(backbone=f"{DERM_LITE0}@224", layers=4, cache=None).fit()
    assert sized.data_config_["input_size"] == (3, 224, 224) and sized.weights_digest_ == embedder.weights_digest_


def test_the_guard_knows_the_shipped_encoders_images(ham_root, bcn_root) -> None:
    ham = sorted((ham_root / "images").glob("*.jpg"))[:3]
    bcn = sorted((bcn_root / "images").glob("*.jpg"))[:2]
    reason = encoder_training_overlap(DERM_LITE0, [*ham, *bcn], [])
    assert reason.startswith("derm_lite0's weights were trained on HAM10000 and BCN20000, and 5 of the 5")


def test_the_training_script_runs_resumes_and_exports(tmp_path, ham_root) -> None:
    """Two diagnosis classes' worth of images, one epoch: every stage runs, a rerun resumes, the export loads."""
    command = [sys.executable, str(REPO / "training" / "derm_encoder.py"), "--datasets", "ham", "--limit", "40",
               "--epochs", "1", "--variants", "1", "--out", str(tmp_path / "run"), "--cache", str(tmp_path / "cache"),
               "--data", str(ham_root.parent)]
    first = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-2000:]
    lines = (tmp_path / "run" / "log.jsonl").read_text().splitlines()
    assert len(lines) == 1 and {"train_loss", "monitor_loss", "monitor_melanoma_auc"} <= set(json.loads(lines[0]))
    again = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "resumed after epoch 1" in again.stdout
    assert len((tmp_path / "run" / "log.jsonl").read_text().splitlines()) == 1  # nothing trained twice
    identity = json.loads((tmp_path / "run" / "encoder.json").read_text())
    assert identity["trained_on"] == ["ham"] and identity["license"] == "cc-by-nc-4.0"
    model = load_backbone(DERM_LITE0, checkpoint_path=tmp_path / "run" / "derm_lite0.pt")
    assert model.pretrained_cfg["input_size"] == (3, 192, 192)
    assert trained_on(tmp_path / "run" / "derm_lite0.pt") == ("ham10000",)
    assert len(training_image_hashes(tmp_path / "run" / "derm_lite0.pt")) >= 10_000  # all HAM10000: it saw some
