"""save/load without pickle: exact round trips, and damaged or tampered files refused."""

from __future__ import annotations

import hashlib
import io
import json
import pickle
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import melagbm
from melagbm import FusionClassifier, ModelFileError
from melagbm.datasets import load_ham10000
from melagbm.persistence import _canonical


@pytest.fixture(scope="module")
def image_model(ham_model, ham_sample):
    return ham_model, ham_sample[0]


@pytest.fixture(scope="module")
def metadata_data(ham_root):
    X, y, groups = load_ham10000(ham_root, n_samples=1500, random_state=3)
    return X.drop(columns="image"), y, groups


def _assert_same_predictions(a, b, X) -> None:
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    np.testing.assert_array_equal(a.decision_function(X), b.decision_function(X))
    np.testing.assert_array_equal(a.predict(X), b.predict(X))


def test_a_fused_model_round_trips_exactly(image_model, tmp_path) -> None:
    model, X = image_model
    path = model.save(tmp_path / "model.melagbm")
    loaded = melagbm.load(path)
    assert type(loaded) is FusionClassifier and loaded is not model
    _assert_same_predictions(model, loaded, X)
    for attribute in ("feature_names_", "feature_families_", "family_to_columns_", "threshold_", "n_estimators_"):
        assert getattr(loaded, attribute) == getattr(model, attribute)
    assert list(loaded.feature_families_) == list(model.feature_families_)  # dict order survives too
    assert list(loaded.metadata_encoder_.columns_) == list(model.metadata_encoder_.columns_)
    assert loaded.calibration_ == model.calibration_
    assert [e.encoder_id_ for e in loaded.embedders_] == [e.encoder_id_ for e in model.embedders_]
    assert loaded.metadata_encoder_.categories_ == model.metadata_encoder_.categories_
    assert loaded.get_params()["backbone"] == tuple(model.get_params()["backbone"])


@pytest.mark.parametrize("booster", ["lightgbm", "xgboost"])
@pytest.mark.parametrize("calibration", ["sigmoid", "isotonic", None])
def test_metadata_models_round_trip_for_both_boosters(metadata_data, tmp_path, booster, calibration) -> None:
    X, y, groups = metadata_data
    model = FusionClassifier(image_col=None, booster=booster, calibration=calibration, class_weight="balanced",
                             random_state=0).fit(X, y, groups=groups)
    loaded = melagbm.load(model.save(tmp_path / "m.melagbm"))
    _assert_same_predictions(model, loaded, X)
    assert type(loaded.booster_) is type(model.booster_)


def test_the_file_holds_json_arrays_and_the_booster_never_a_pickle(image_model, tmp_path) -> None:
    model, _ = image_model
    path = model.save(tmp_path / "model.melagbm")
    with zipfile.ZipFile(path) as archive:
        boosters = ["booster.lgbm.txt"] + [f"booster.{index}.lgbm.txt" for index in range(1, model.n_seeds)]
        assert sorted(archive.namelist()) == sorted(["arrays.npz", "manifest.json", *boosters])
        manifest = json.loads(archive.read("manifest.json"))
        assert manifest["booster_files"] == boosters  # one member per averaged booster
        booster_text = archive.read("booster.lgbm.txt").decode()
        with np.load(io.BytesIO(archive.read("arrays.npz")), allow_pickle=False) as arrays:
            assert all(arrays[key].dtype != object for key in arrays.files)
    assert booster_text.startswith("tree\n") and "pandas_categorical" in booster_text
    assert manifest["format_version"] == 2 and manifest["libraries"]["lightgbm"]
    text = json.dumps(manifest)
    assert "tf_efficientnet_lite0" in text and model.embedders_[0].weights_digest_ in text


def _rewrite(path, edit) -> None:
    """Change the manifest with ``edit`` and recompute every checksum, as a careful forger would."""
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    manifest = json.loads(members["manifest.json"])
    edit(manifest, members)
    manifest["files"] = {n: hashlib.sha256(d).hexdigest() for n, d in members.items() if n != "manifest.json"}
    manifest["manifest_sha256"] = hashlib.sha256(_canonical(manifest)).hexdigest()
    members["manifest.json"] = json.dumps(manifest).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


@pytest.fixture
def saved(metadata_data, tmp_path):
    X, y, groups = metadata_data
    model = FusionClassifier(image_col=None, random_state=0).fit(X, y, groups=groups)
    return model, model.save(tmp_path / "model.melagbm"), X


def test_edits_truncation_and_foreign_files_are_refused(saved, tmp_path) -> None:
    model, path, _ = saved
    data = path.read_bytes()
    (tmp_path / "short.melagbm").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="damaged"):
        melagbm.load(tmp_path / "short.melagbm")

    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    text = members["manifest.json"].decode().replace(repr(model.threshold_), repr(model.threshold_ / 2), 1)
    assert text != members["manifest.json"].decode()
    with zipfile.ZipFile(tmp_path / "edited.melagbm", "w") as archive:
        for name, content in members.items():
            archive.writestr(name, text if name == "manifest.json" else content)
    with pytest.raises(ModelFileError, match="manifest fails its checksum"):
        melagbm.load(tmp_path / "edited.melagbm")

    with zipfile.ZipFile(tmp_path / "swapped.melagbm", "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content.replace(b"tree", b"tred", 1) if name.startswith("booster") else content)
    with pytest.raises(ModelFileError, match="booster.lgbm.txt fails its checksum"):
        melagbm.load(tmp_path / "swapped.melagbm")

    with zipfile.ZipFile(tmp_path / "extra.melagbm", "w") as archive:
        for name, content in {**members, "payload.pkl": pickle.dumps(print)}.items():
            archive.writestr(name, content)
    with pytest.raises(ModelFileError, match="members"):
        melagbm.load(tmp_path / "extra.melagbm")

    (tmp_path / "pickle.melagbm").write_bytes(pickle.dumps(model))
    with pytest.raises(ModelFileError, match="not a melagbm model file|damaged"):
        melagbm.load(tmp_path / "pickle.melagbm")


def test_a_forged_manifest_cannot_name_other_classes(saved) -> None:
    _, path, _ = saved

    def name_os_system(manifest, members) -> None:
        manifest["model"]["params"]["__dict__"]["booster"] = {"__object__": "os.system", "params": {}, "state": {}}

    _rewrite(path, name_os_system)
    with pytest.raises(ModelFileError, match="class melagbm does not load: 'os.system'"):
        melagbm.load(path)


def test_a_forged_manifest_cannot_set_other_attributes_or_ids(saved, image_model, tmp_path) -> None:
    _, path, _ = saved

    def add_attribute(manifest, members) -> None:
        manifest["model"]["state"]["__dict__"]["__class__"] = "os"

    _rewrite(path, add_attribute)
    with pytest.raises(ModelFileError, match="sets attributes FusionClassifier does not have: \\['__class__'\\]"):
        melagbm.load(path)

    model, _ = image_model
    fused = model.set_params(cache=str(tmp_path / "my-store")).save(tmp_path / "fused.melagbm")
    model.set_params(cache="auto")
    assert melagbm.load(fused).cache == "auto"  # the saving machine's store path is not kept

    def retarget_encoder(manifest, members) -> None:
        image_step = manifest["model"]["state"]["__dict__"]["image_features_"]
        embedder = image_step["state"]["__dict__"]["embedders_"][0]
        embedder["state"]["__dict__"]["encoder_id_"] = "../../elsewhere"

    _rewrite(fused, retarget_encoder)
    with pytest.raises(ModelFileError, match="id does not match its identity"):
        melagbm.load(fused)


def test_zip_bombs_are_refused_before_unpacking(saved, tmp_path) -> None:
    _, path, _ = saved
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    bomb = tmp_path / "bomb.melagbm"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("manifest.json", members["manifest.json"])
        archive.writestr("arrays.npz", b"\0" * (64 << 20))
    with pytest.raises(ModelFileError, match="arrays.npz unpacks to 67108864 bytes; refused"):
        melagbm.load(bomb)


def test_newer_formats_are_refused_and_other_library_versions_warn(saved) -> None:
    _, path, X = saved
    _rewrite(path, lambda manifest, members: manifest["libraries"].update(lightgbm="0.0.1"))
    with pytest.warns(UserWarning, match="saved with lightgbm 0.0.1"):
        melagbm.load(path)
    _rewrite(path, lambda manifest, members: manifest.update(format_version=99))
    with pytest.raises(ModelFileError, match="format 99.*upgrade melagbm"):
        melagbm.load(path)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzzed_model_files_load_identically_or_are_refused(saved, tmp_path, data) -> None:
    model, path, X = saved
    original = path.read_bytes()
    mutated = bytearray(original[: data.draw(st.integers(0, len(original)), label="keep")])
    for _ in range(data.draw(st.integers(0, 6), label="flips")):
        if mutated:
            at = data.draw(st.integers(0, len(mutated) - 1))
            mutated[at] = data.draw(st.integers(0, 255))
    target = tmp_path / "fuzzed.melagbm"
    target.write_bytes(bytes(mutated))
    try:
        loaded = melagbm.load(target)
    except ModelFileError:
        return
    _assert_same_predictions(model, loaded, X.head(200))  # a flip in zip padding or timestamps is harmless


def test_a_model_trained_on_a_gpu_predicts_on_this_cpu(saved) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    model, path, X = saved

    def as_if_trained_on_cuda(manifest, members) -> None:
        manifest["model"]["state"]["__dict__"]["device_"] = "cuda"

    _rewrite(path, as_if_trained_on_cuda)
    loaded = melagbm.load(path)
    assert loaded.device_ == "cpu"
    _assert_same_predictions(model, loaded, X)


def test_pickle_and_joblib_still_work(saved, tmp_path) -> None:
    import joblib

    model, _, X = saved
    joblib.dump(model, tmp_path / "m.joblib")
    _assert_same_predictions(model, joblib.load(tmp_path / "m.joblib"), X)


def test_a_file_of_the_steps_layout_cannot_set_the_flat_attributes_of_0_1(saved) -> None:
    """Only a file in 0.1's flat layout may carry ``threshold_``, ``calibration_``, ...: it is upgraded; in a file
    of today's layout they would be shadowed by the steps' properties, so they are refused."""
    _, path, _ = saved

    def add_flat_threshold(manifest, members) -> None:
        manifest["model"]["state"]["__dict__"]["threshold_"] = 0.01

    _rewrite(path, add_flat_threshold)
    with pytest.raises(ModelFileError, match=r"sets attributes FusionClassifier does not have: \['threshold_'\]"):
        melagbm.load(path)


def test_averaged_boosters_travel_one_member_each_and_a_missing_one_is_refused(saved, tmp_path) -> None:
    model, path, _ = saved
    assert len(model.booster_) == 5
    _rewrite(path, lambda manifest, members: (members.pop("booster.2.lgbm.txt"),
                                              manifest["booster_files"].remove("booster.2.lgbm.txt")))
    with pytest.raises(ModelFileError, match="4 booster files for 5 boosters"):
        melagbm.load(path)


def test_a_format_1_file_with_one_booster_still_loads(metadata_data, tmp_path) -> None:
    X, y, groups = metadata_data
    model = FusionClassifier(image_col=None, random_state=0, n_seeds=1).fit(X, y, groups=groups)
    path = model.save(tmp_path / "single.melagbm")

    def as_format_1(manifest, members) -> None:  # what melagbm wrote before boosters were averaged
        manifest.pop("booster_files")
        manifest["format_version"] = 1

    _rewrite(path, as_format_1)
    _assert_same_predictions(model, melagbm.load(path), X)
