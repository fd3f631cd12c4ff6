"""The CPU runtime: OpenVINO by default, its export kept once per machine, PyTorch's vectors and ids unchanged,
and PyTorch's threads limited to the cores other processes leave free."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import melagbm._cores as cores
from melagbm import EmbeddingStore, FusionClassifier, ImageEmbedder
from melagbm.embedding import runtime
from melagbm.embedding.runtime import exported_model_folder, resolve_runtime
from melagbm.features.image_features import ImageFeatures
from melagbm.features.image_score import ImageSignal

#: Lite0's encoder id on PyTorch (layers=4), as the store in tests/fixtures/models/embeddings holds it.
TORCH_LITE0_ID = "0dd9d30cb95e101d2350"


@pytest.fixture(scope="module")
def isic_paths(isic_root) -> list[str]:
    return sorted(str(p) for p in (isic_root / "train").glob("*.jpg"))[:10]


def lowest_cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(np.float64), b.astype(np.float64)
    return float(np.min((a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))))


def test_auto_is_openvino_on_the_cpu_and_torch_on_a_gpu() -> None:
    assert resolve_runtime("auto", "cpu") == "openvino"
    assert resolve_runtime("auto", "cuda") == "torch"
    assert resolve_runtime("torch", "cpu") == "torch"
    with pytest.raises(ValueError, match="runs on the CPU, but device is 'cuda'"):
        resolve_runtime("openvino", "cuda")
    with pytest.raises(ValueError, match="runtime must be one of"):
        ImageEmbedder(runtime="onnx", cache=None).fit()


def test_openvino_vectors_match_torch_under_their_own_encoder_id(isic_paths) -> None:
    on_torch = ImageEmbedder(runtime="torch", layers=4, cache=None, verbose=0).fit()
    on_openvino = ImageEmbedder(layers=4, cache=None, verbose=0).fit()
    assert on_openvino.runtime_ == "openvino" and on_torch.runtime_ == "torch"
    a, b = on_torch.transform(isic_paths), on_openvino.transform(isic_paths)
    assert lowest_cosine(a, b) >= 0.9999
    assert not np.array_equal(a, b)  # close, not equal: that is why the runtime is in the identity
    assert on_openvino.encoder_identity_["runtime"] == {"name": "openvino", "version": runtime.openvino_version()}
    assert "runtime" not in on_torch.encoder_identity_
    assert on_openvino.encoder_id_ != on_torch.encoder_id_
    # PyTorch keeps the id its stores and saved models have always used
    assert on_torch.encoder_id_ == TORCH_LITE0_ID


def test_a_store_never_serves_one_runtimes_vectors_as_the_others(isic_paths, tmp_path) -> None:
    store = EmbeddingStore(tmp_path / "store")
    ImageEmbedder(runtime="torch", cache=store, verbose=0).fit().transform(isic_paths[:3])
    ImageEmbedder(runtime="openvino", cache=store, verbose=0).fit().transform(isic_paths[:3])
    assert (store.hits, store.misses) == (0, 6)
    assert len(store.encoders()) == 2


def test_the_export_is_kept_once_per_machine_and_reused(isic_paths, monkeypatch) -> None:
    embedder = ImageEmbedder(tta="flip", cache=None, verbose=0).fit()
    folder = exported_model_folder(embedder.encoder_id_)
    assert folder == Path(os.environ["MELAGBM_CACHE"]) / "runtimes" / embedder.encoder_id_  # beside the store
    assert sorted(p.name for p in folder.iterdir()) == ["model.bin", "model.xml"]
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no staging folder left
    expected = embedder.transform(isic_paths[:2])

    runtime._COMPILED.clear()  # as a new process would: read from disk, never exported again
    monkeypatch.setattr(runtime, "_export", lambda *args: pytest.fail("exported a second time"))
    again = ImageEmbedder(tta="flip", cache=None, verbose=0).fit()
    np.testing.assert_array_equal(again.transform(isic_paths[:2]), expected)


def test_a_damaged_export_is_made_again_and_said_so(isic_paths) -> None:
    embedder = ImageEmbedder(tta="flip4", cache=None, verbose=0).fit()
    expected = embedder.transform(isic_paths[:2])
    folder = exported_model_folder(embedder.encoder_id_)
    (folder / "model.xml").write_text("<net>truncated")
    runtime._COMPILED.clear()
    with pytest.warns(UserWarning, match="cannot be read.*exporting again"):
        again = ImageEmbedder(tta="flip4", cache=None, verbose=0).fit()
    np.testing.assert_array_equal(again.transform(isic_paths[:2]), expected)
    assert "truncated" not in (folder / "model.xml").read_text()


def test_a_network_openvino_cannot_export_runs_on_torch_with_a_warning(isic_paths, monkeypatch) -> None:
    def refuse(*args):
        raise RuntimeError("unsupported operation")

    monkeypatch.setattr(runtime, "_export", refuse)
    runtime._COMPILED.clear()
    unexported = {"input_size": 208}  # an identity no other test has exported
    with pytest.warns(UserWarning, match="OpenVINO could not export .*unsupported operation.*runs on PyTorch"):
        embedder = ImageEmbedder(preprocessing=unexported, cache=None, verbose=0).fit()
    assert embedder.runtime_ == "torch" and "runtime" not in embedder.encoder_identity_
    assert np.isfinite(embedder.transform(isic_paths[:1])).all()
    with pytest.raises(RuntimeError, match="unsupported operation"):  # asked for by name: no fallback
        ImageEmbedder(preprocessing=unexported, runtime="openvino", cache=None, verbose=0).fit()


def test_a_pickled_openvino_embedder_embeds_alike(isic_paths) -> None:
    embedder = ImageEmbedder(cache=None, verbose=0).fit()
    expected = embedder.transform(isic_paths[:2])
    clone = pickle.loads(pickle.dumps(embedder))
    assert "_openvino" not in clone.__dict__ and "_model" not in clone.__dict__
    np.testing.assert_array_equal(clone.transform(isic_paths[:2]), expected)


def test_a_saved_model_keeps_its_runtime(ham_sample, tmp_path) -> None:
    X, y, groups = ham_sample
    X, y, groups = X.iloc[:120], y.iloc[:120], groups.iloc[:120]
    params = dict(backbone="tf_efficientnet_lite0", lesion_features=False, n_seeds=1, verbose=0)
    on_torch = FusionClassifier(runtime="torch", **params).fit(X, y, groups=groups)
    model = FusionClassifier(**params).fit(X, y, groups=groups)
    assert model.image_features_.embedders_[0].runtime_ == "openvino"
    assert on_torch.image_features_.embedders_[0].runtime_ == "torch"
    model.save(tmp_path / "model.melagbm")
    import melagbm

    loaded = melagbm.load(tmp_path / "model.melagbm")
    assert loaded.image_features_.embedders_[0].runtime_ == "openvino"
    loaded.cache = None  # new images: embedded again, on OpenVINO as at fit
    np.testing.assert_allclose(loaded.predict_proba(X.iloc[:20]), model.predict_proba(X.iloc[:20]), atol=1e-6)


def test_dask_identities_made_on_the_client_for_gpu_workers_are_torchs() -> None:
    features = ImageFeatures(backbones=("tf_efficientnet_lite0",), embedder=ImageEmbedder(cache=None, verbose=0),
                             scorer=ImageSignal())
    assert features.fit_embedders("cpu", runs_on="cuda").embedders_[0].runtime_ == "torch"
    assert features.fit_embedders("cpu", runs_on="cpu").embedders_[0].runtime_ == "openvino"


def test_free_cores_sees_a_busy_neighbour_and_not_this_process() -> None:
    usable = cores.usable_cores()
    if usable < 2:
        pytest.skip("needs 2 cores")
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        cores._last = None
        assert cores.free_cores() <= usable - 1
    finally:
        spinner.kill()
        spinner.wait()
    cores._last = None
    started = time.perf_counter()
    while time.perf_counter() - started < 0.3:  # this process busy: its own use is not counted against it
        cores._last = None
        assert cores.free_cores() >= 1
    cores._last = (time.monotonic(), 1)  # remembered: no new sample within 10 s
    assert cores.free_cores() == 1
    cores._last = None


def test_torch_threads_follow_the_free_cores_while_embedding_and_are_restored(isic_paths, monkeypatch) -> None:
    seen = []
    embedder = ImageEmbedder(runtime="torch", batch_size=2, cache=None, verbose=0).fit()
    original = embedder._forward

    def spy(model, batch):
        seen.append(torch.get_num_threads())
        return original(model, batch)

    monkeypatch.setattr(embedder, "_forward", spy)
    monkeypatch.setattr("melagbm.embedding.embedder.free_cores", lambda: 1)
    before = torch.get_num_threads()
    embedder.transform(isic_paths[:4])
    assert seen and set(seen) == {1}
    assert torch.get_num_threads() == before


def test_no_warning_from_the_export_reaches_the_user(isic_paths) -> None:
    runtime._COMPILED.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ImageEmbedder(tta="flip", layers=2, cache=None, verbose=0).fit().transform(isic_paths[:1])

