"""Save and load fitted models without pickle.

A model file is a zip archive holding:

- ``manifest.json``: format version, library versions, every parameter and fitted
  attribute of the estimator as JSON (vocabularies, feature names, calibration, the
  backbones by name and weights hash), the SHA-256 of every other member, and a
  checksum of the manifest itself;
- ``arrays.npz``: numeric arrays (probe coefficients, PCA components, ...), read with
  ``allow_pickle=False``;
- ``booster.lgbm.txt`` or ``booster.xgb.json``: the booster in its library's own format; a model that
  averages boosters (``n_seeds`` > 1) holds one such member per booster (``booster.1.lgbm.txt``, ...).

Loading rebuilds objects only from an allow-list of classes, each with an allow-list
of fitted attributes, so a model file can carry numbers and names but never code.
Any damage (truncation, edits, a member added or missing, a zip bomb) is refused
with :class:`ModelFileError` before anything is parsed. The checksums detect damage,
not forgery: a file rebuilt with fresh checksums is parsed (the booster by its own
library's loader), so load models from sources you trust to be honest, even though
none can make melagbm run code. Store paths of the saving machine are not kept:
a loaded model uses the default store ("auto"), or none if it was saved with none.
Backbone weights are not stored: they are reloaded from their package and checked
against the saved weights hash on first use.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import io
import json
import os
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ._atomic import atomic_write
from ._versions import library_versions
from ._warnings import warn
from .boosting import ADAPTERS, BoosterAverage, adapter_for, averaged, members_of
from .exceptions import ModelFileError

__all__ = ["FORMAT_VERSION", "ModelFileError", "load", "save"]

FORMAT = "melagbm-model"
FORMAT_VERSION = 3  # 2: boosters averaged (a member file per booster); 3: a lone-lesion model's boosters
_MANIFEST = "manifest.json"
_ARRAYS = "arrays.npz"
_BOOSTER_FILES = {adapter.file_name for adapter in ADAPTERS.values()}
_MAX_BOOSTERS = 64
_LONE = "lone."  # the lone-lesion model's booster files start so
_MAX_TOTAL_BYTES = 2 << 30  # refuse archives unpacking to more than 2 GiB (a zip bomb, not a model)
_MAX_MANIFEST_BYTES = 64 << 20
_MAX_RATIO = 200  # deflate rarely beats 10:1 on model content; bombs reach 1000:1

#: The only fitted attributes a model file may set, per class (FusionClassifier's: ``classifier.FITTED_ATTRIBUTES``).
_STATE = {
    "FusionClassifier": {
        "classes_", "n_features_in_", "feature_names_in_", "device_", "patient_col_", "image_features_",
        "skipped_rows_", "metadata_encoder_", "lesion_features_", "patient_context_", "feature_names_",
        "feature_families_", "booster_", "operating_point_", "n_groups_", "lesion_col_", "lesion_pooling_",
        "model_card_", "lone_lesion_model_", "fit_seconds_",
    },
    "LoneLesionModel": {"feature_names_", "booster_", "operating_point_"},
    "ImageFeatures": {"embedders_", "signals_", "feature_families_"},
    "PatientContext": {"feature_families_"},
    "LesionPooling": set(),
    "OperatingPoint": {"calibration_", "chosen_threshold_", "oof_roc_auc_", "estimate_"},
    "LesionFeatures": {"feature_families_", "n_features_out_", "encoder_id_", "feature_version_"},
    "ImageEmbedder": {"device_", "data_config_", "n_features_out_", "weights_digest_", "encoder_identity_",
                      "encoder_id_", "layers_", "license_", "runtime_"},
    "ImageSignal": {"classes_", "positive_classes_", "probe_", "pca_", "n_features_in_", "C_"},
    "MetadataEncoder": {"columns_", "feature_families_", "categories_", "n_features_in_", "feature_names_in_"},
    "StandardScaler": {"mean_", "var_", "scale_", "n_samples_seen_", "n_features_in_", "feature_names_in_"},
    "LogisticRegression": {"classes_", "coef_", "intercept_", "n_iter_", "n_features_in_", "feature_names_in_"},
    "PCA": {"components_", "explained_variance_", "explained_variance_ratio_", "singular_values_", "mean_",
            "n_components_", "n_samples_", "noise_variance_", "n_features_in_", "feature_names_in_"},
    "Pipeline": set(),
    "LGBMClassifier": set(),
    "XGBClassifier": set(),
    "BoosterAverage": set(),
}
#: Attributes that files of melagbm 0.1 set and the class upgrades on loading (``legacy_state.state_of_0_1``).
_STATE_OF_0_1 = {
    "FusionClassifier": {"embedders_", "image_signal_", "family_to_columns_", "n_estimators_", "calibration_",
                         "threshold_", "threshold_log_odds_", "oof_roc_auc_"},
}


#: melagbm's classes a model file may name: the stable name the file stores -> where the class lives now.
#: A name never changes once written; when a class moves, only its location here does.
MODEL_FILE_CLASSES = {
    "melagbm.classifier.FusionClassifier": ("melagbm.classifier", "FusionClassifier"),
    "melagbm.embedding.ImageEmbedder": ("melagbm.embedding.embedder", "ImageEmbedder"),
    "melagbm.image_signal.ImageSignal": ("melagbm.features.image_score", "ImageSignal"),
    "melagbm.metadata.MetadataEncoder": ("melagbm.features.metadata", "MetadataEncoder"),
    "melagbm.lesion.LesionFeatures": ("melagbm.features.lesion", "LesionFeatures"),
    "melagbm.decision.Calibration": ("melagbm.decision", "Calibration"),
    "melagbm.decision.OperatingPoint": ("melagbm.decision", "OperatingPoint"),
    "melagbm.referral.ReferralEstimate": ("melagbm.referral", "ReferralEstimate"),
    "melagbm.features.image_features.ImageFeatures": ("melagbm.features.image_features", "ImageFeatures"),
    "melagbm.features.patient.PatientContext": ("melagbm.features.patient", "PatientContext"),
    "melagbm.pooling.LesionPooling": ("melagbm.pooling", "LesionPooling"),
    "melagbm.boosting.BoosterAverage": ("melagbm.boosting._average", "BoosterAverage"),
    "melagbm.lone_lesions.LoneLesionModel": ("melagbm.lone_lesions", "LoneLesionModel"),
}


def _allowed_classes() -> dict[str, type]:
    """Every class a model file may name; nothing else is ever instantiated."""
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    classes = {name: getattr(importlib.import_module(module), attribute)
               for name, (module, attribute) in MODEL_FILE_CLASSES.items()}
    for cls in (Pipeline, StandardScaler, LogisticRegression, PCA,
                *(adapter.estimator_class() for adapter in ADAPTERS.values())):
        classes[f"{cls.__module__}.{cls.__qualname__}"] = cls
    return classes


# -- encoding ------------------------------------------------------------------------
class _Encoder:
    """Objects -> JSON-able values, numeric arrays set aside for the npz member."""

    def __init__(self, allowed: dict[str, type]) -> None:
        self.allowed = {cls: name for name, cls in allowed.items()}
        self.arrays: dict[str, np.ndarray] = {}

    def __call__(self, value: Any, where: str) -> Any:
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, (int, np.integer)):
            return int(value)
        if isinstance(value, (float, np.floating)):
            return float(value)
        if isinstance(value, os.PathLike):
            return os.fspath(value)
        if isinstance(value, np.ndarray):
            return self._array(value, where)
        if isinstance(value, tuple):
            return {"__tuple__": [self(v, f"{where}.{i}") for i, v in enumerate(value)]}
        if isinstance(value, list):
            return [self(v, f"{where}.{i}") for i, v in enumerate(value)]
        if isinstance(value, dict):
            if not all(isinstance(k, str) for k in value):
                raise TypeError(f"cannot save {where}: dict keys must be strings")
            return {"__dict__": {k: self(v, f"{where}.{k}") for k, v in value.items()}}
        if type(value) in self.allowed:
            return self._object(value, where)
        from .store.embedding_store import EmbeddingStore

        if isinstance(value, EmbeddingStore):  # a store parameter is kept as its path
            return os.fspath(value.root)
        raise TypeError(f"cannot save {where}: {type(value).__name__} is not a type melagbm saves")

    def _array(self, array: np.ndarray, where: str) -> dict[str, Any]:
        as_object = array.dtype == object
        if as_object:
            if not all(isinstance(v, str) for v in array.ravel()):
                return {"__list_array__": [self(v, where) for v in array.tolist()]}
            array = array.astype(str)
        key = f"a{len(self.arrays):04d}"
        self.arrays[key] = array
        return {"__array__": key, "object": as_object}

    def _object(self, obj: Any, where: str) -> dict[str, Any]:
        name = self.allowed[type(obj)]
        if isinstance(obj, BoosterAverage):  # its members' parameters here, the fitted members in their own files
            return {"__object__": name, "params": self({"members": obj.members}, f"{where}.params"),
                    "state": self({}, where)}
        if dataclasses.is_dataclass(obj):
            fields = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
            return {"__object__": name, "fields": self(fields, where)}
        params = obj.get_params(deep=False)
        state = {
            key: value for key, value in vars(obj).items()
            if key.endswith("_") and not key.startswith("_") and key not in params
        }
        if any(adapter.owns(obj) for adapter in ADAPTERS.values()):
            state = {}  # the fitted booster travels in its own file
        return {"__object__": name, "params": self(params, f"{where}.params"), "state": self(state, where)}


class _Decoder:
    def __init__(self, allowed: dict[str, type], arrays: dict[str, np.ndarray]) -> None:
        self.allowed, self.arrays = allowed, arrays

    def __call__(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self(v) for v in value]
        if not isinstance(value, dict):
            return value
        if "__tuple__" in value:
            return tuple(self(v) for v in value["__tuple__"])
        if "__dict__" in value:
            return {k: self(v) for k, v in value["__dict__"].items()}
        if "__list_array__" in value:
            return np.asarray(self(value["__list_array__"]), dtype=object)
        if "__array__" in value:
            array = self.arrays[value["__array__"]]
            return array.astype(object) if value.get("object") else array
        if "__object__" in value:
            cls = self.allowed.get(value["__object__"])
            if cls is None:
                raise ModelFileError(f"the model file names a class melagbm does not load: {value['__object__']!r}")
            if dataclasses.is_dataclass(cls):
                return cls(**self(value["fields"]))
            state = self(value["state"])
            allowed_state = _STATE[cls.__name__] | (_STATE_OF_0_1.get(cls.__name__, set()) if "embedders_" in state
                                                    else set())  # the flat layout of 0.1, upgraded on loading
            unexpected = sorted(set(state) - allowed_state)
            if unexpected:
                raise ModelFileError(f"the model file sets attributes {cls.__name__} does not have: {unexpected[:5]}")
            obj = cls(**self(value["params"]))
            if cls.__module__.startswith("melagbm."):  # as unpickling does: melagbm classes upgrade older state there
                obj.__setstate__({**obj.__dict__, **state})
            else:
                for key, attribute in state.items():
                    setattr(obj, key, attribute)
            return obj
        raise ModelFileError(f"unexpected entry in the model file: {sorted(value)[:3]}")


# -- boosters --------------------------------------------------------------------------
def _booster_bytes(booster: Any, prefix: str = "") -> dict[str, bytes]:
    """Model-file member -> a booster in its library's own format: one, or one per averaged booster."""
    files = {}
    for index, member in enumerate(members_of(booster)):
        adapter = adapter_for(member)
        files[_member_file(adapter.file_name, index, prefix)] = adapter.to_bytes(member)
    return files


def _member_file(file_name: str, index: int, prefix: str = "") -> str:
    """``booster.lgbm.txt`` for the first booster, ``booster.<index>.lgbm.txt`` for the others (each after
    ``prefix``: ``lone.`` for the lone-lesion model's)."""
    if index == 0:
        return prefix + file_name
    stem, _, suffix = file_name.partition(".")
    return f"{prefix}{stem}.{index}.{suffix}"


def _restore_boosters(
    template: Any, files: list[str], members: dict[str, bytes], classes: np.ndarray, features: list[str],
    prefix: str = "",
) -> Any:
    """The saved booster(s) inside unfitted copies of their sklearn wrappers (``template``: as the manifest
    describes them), their columns named ``features``."""
    templates = members_of(template)
    if len(files) != len(templates) or not 1 <= len(files) <= _MAX_BOOSTERS:
        raise ModelFileError(f"the manifest lists {len(files)} booster files for {len(templates)} boosters")
    restored = []
    for index, (member_template, member) in enumerate(zip(templates, files)):
        adapter = adapter_for(member_template)
        if member != _member_file(adapter.file_name, index, prefix) or member not in members:
            raise ModelFileError(f"no booster member {member!r} holding a {adapter.name} model")
        try:
            restored.append(adapter.from_bytes(member_template, members[member], len(classes), list(features)))
        except ValueError as exc:
            raise ModelFileError(str(exc)) from exc
    return averaged(restored)


# -- saving and loading ----------------------------------------------------------------
def _canonical(manifest: dict[str, Any]) -> bytes:
    body = {k: v for k, v in manifest.items() if k != "manifest_sha256"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=True).encode()


def save(model: Any, path: str | os.PathLike) -> Path:
    """Write a fitted FusionClassifier to ``path`` (one zip file), atomically; returns the path.

    Parameters
    ----------
    model : FusionClassifier
        The fitted model.
    path : str or path-like
        Where to write (an existing file is replaced).

    Returns
    -------
    path : Path
        The file written.
    """
    from sklearn.utils.validation import check_is_fitted

    allowed = _allowed_classes()
    if not isinstance(model, allowed["melagbm.classifier.FusionClassifier"]):
        raise TypeError(f"save writes a FusionClassifier, got {type(model).__name__}")
    check_is_fitted(model, "booster_")
    encoder = _Encoder(allowed)
    encoded = encoder(model, "model")
    booster_files = _booster_bytes(model.booster_)
    lone = getattr(model, "lone_lesion_model_", None)
    lone_files = {} if lone is None else _booster_bytes(lone.booster_, _LONE)
    buffer = io.BytesIO()
    np.savez(buffer, **encoder.arrays)
    members = {_ARRAYS: buffer.getvalue(), **booster_files, **lone_files}
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION if lone_files else 2,  # what older melagbm reads, where it can
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "libraries": library_versions(),
        "booster_file": next(iter(booster_files)),
        "booster_files": list(booster_files),
        "lone_booster_files": list(lone_files),
        "weights_licenses": model.weights_licenses_,
        "model": encoded,
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in members.items()},
    }
    manifest["manifest_sha256"] = hashlib.sha256(_canonical(manifest)).hexdigest()
    path = Path(path)
    with atomic_write(path) as out:
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(_MANIFEST, json.dumps(manifest, indent=1))  # key order kept: dicts are ordered
            for name, data in members.items():
                archive.writestr(name, data)
    return path


def _read_members(path: Path) -> dict[str, bytes]:
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            names = [info.filename for info in infos]
            if _MANIFEST not in names or len(names) != len(set(names)) or len(names) > 2 + 2 * _MAX_BOOSTERS:
                raise ModelFileError(f"{path} is not a melagbm model file (members: {names[:5]})")
            total = sum(info.file_size for info in infos)
            for info in infos:
                limit = _MAX_MANIFEST_BYTES if info.filename == _MANIFEST else _MAX_TOTAL_BYTES
                if info.file_size > limit or total > _MAX_TOTAL_BYTES or (
                    info.file_size > 1 << 20 and info.file_size > _MAX_RATIO * max(info.compress_size, 1)
                ):
                    raise ModelFileError(f"{path}: member {info.filename} unpacks to {info.file_size} bytes; refused")
            return {name: archive.read(name) for name in names}
    except ModelFileError:
        raise
    except FileNotFoundError:
        raise
    except Exception as exc:  # noqa: BLE001 - zipfile raises BadZipFile, zlib.error, EOFError, ...
        raise ModelFileError(f"{path} is damaged or not a melagbm model file: {exc}") from exc


def load(path: str | os.PathLike) -> Any:
    """Read a model written by :func:`save` (or ``FusionClassifier.save``).

    Parameters
    ----------
    path : str or path-like
        The model file.

    Returns
    -------
    model : FusionClassifier
        The fitted model, ready to predict (on the CPU when the saved one ran on a GPU
        and this machine has none).

    Raises
    ------
    ModelFileError
        When the file is truncated, edited, from a newer format, or names anything
        but melagbm's own classes. No code from the file is ever run.
    """
    path = Path(path)
    members = _read_members(path)
    try:
        manifest = json.loads(members[_MANIFEST])
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ModelFileError(f"{path}: the manifest is not valid JSON ({type(exc).__name__})") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ModelFileError(f"{path} is not a melagbm model file")
    if manifest.get("manifest_sha256") != hashlib.sha256(_canonical(manifest)).hexdigest():
        raise ModelFileError(f"{path}: the manifest fails its checksum (edited or damaged)")
    version = manifest.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ModelFileError(
            f"{path} has model format {version!r}; this melagbm reads up to {FORMAT_VERSION}: upgrade melagbm"
        )
    files = manifest.get("files", {})
    if set(files) | {_MANIFEST} != set(members):
        raise ModelFileError(f"{path}: members {sorted(members)} do not match the manifest's {sorted(files)}")
    for name, digest in files.items():
        if hashlib.sha256(members[name]).hexdigest() != digest:
            raise ModelFileError(f"{path}: {name} fails its checksum (edited or damaged)")
    _check_versions(path, manifest.get("libraries", {}))
    try:
        with np.load(io.BytesIO(members[_ARRAYS]), allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
        allowed = _allowed_classes()
        model = _Decoder(allowed, arrays)(manifest["model"])
        files = manifest.get("booster_files", [manifest["booster_file"]])  # format 1: one booster
        if not isinstance(files, list) or not files or files[0] not in _BOOSTER_FILES:
            raise ModelFileError(f"{path}: no booster member {files!r}")
        try:
            model.booster_ = _restore_boosters(model.booster_, files, members, model.classes_, model.feature_names_)
            lone, lone_files = getattr(model, "lone_lesion_model_", None), manifest.get("lone_booster_files") or []
            if (lone is None) != (not lone_files):
                raise ModelFileError(f"the manifest lists {len(lone_files)} lone-lesion booster files for "
                                     f"{'no' if lone is None else 'a'} lone-lesion model")
            if lone is not None:
                lone.booster_ = _restore_boosters(lone.booster_, lone_files, members, model.classes_,
                                                  lone.feature_names_, _LONE)
        except ModelFileError as exc:
            raise ModelFileError(f"{path}: {exc}") from exc
    except ModelFileError:
        raise
    except Exception as exc:  # noqa: BLE001 - anything else means the content is inconsistent
        raise ModelFileError(f"{path}: cannot rebuild the model ({type(exc).__name__}: {exc})") from exc
    _check_encoders(path, model)
    _use_available_device(model)
    return model


def _check_encoders(path: Path, model: Any) -> None:
    """Encoder ids must follow from what they claim to encode; store paths of the saving machine are dropped."""
    from .embedding.embedder import encoder_id_of

    if not isinstance(model.cache, str) or model.cache != "auto":
        model.cache = None if model.cache is None else "auto"
    for embedder in model.embedders_:
        if embedder.encoder_id_ != encoder_id_of(embedder.encoder_identity_):
            raise ModelFileError(f"{path}: an embedder's id does not match its identity (edited)")
    model.steps_use_cache()
    lesion = getattr(model, "lesion_features_", None)
    if lesion is not None:
        from .features.lesion import LesionFeatures

        current = LesionFeatures(pixel_spacing_mm=lesion.pixel_spacing_mm).fit()
        earlier = current.earlier_encoder_ids()
        if lesion.encoder_id_ in earlier:  # fitted on an earlier version: it keeps measuring that one
            lesion.feature_version_ = earlier[lesion.encoder_id_]
        elif current.encoder_id_ == lesion.encoder_id_:
            lesion.feature_version_ = current.feature_version_
        else:
            raise ModelFileError(f"{path}: the lesion features' id does not match their parameters (edited)")


def _use_available_device(model: Any) -> None:
    """A model trained on a GPU predicts on a CPU-only machine: move what ran on CUDA to the CPU."""
    if not str(getattr(model, "device_", "cpu")).startswith("cuda"):
        return
    import torch

    if torch.cuda.is_available():
        return
    model.device_ = "cpu"
    for embedder in model.embedders_:
        embedder.device_ = "cpu"
    if "device" in model.booster_.get_params():
        model.booster_.set_params(device="cpu")


def _check_versions(path: Path, saved: dict[str, Any]) -> None:
    installed = library_versions()
    for name in ("lightgbm", "xgboost", "scikit-learn", "melagbm"):
        if saved.get(name) and installed.get(name) and saved[name] != installed[name]:
            warn(
                f"{path} was saved with {name} {saved[name]}; {installed[name]} is installed. "
                "Predictions may differ slightly; refit to be sure.",
                UserWarning,
            )
