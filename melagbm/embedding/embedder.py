"""ImageEmbedder: a frozen pretrained CNN as a scikit-learn transformer."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from .._cores import free_cores
from .._device import resolve_device
from .._progress import progress
from .._warnings import warn
from ..backbones.registry import (
    BackboneUnavailableError,
    load_backbone,
    split_input_size,
    weights_digest,
    weights_license,
)
from ..exceptions import BadImageWarning
from ..images.colour import check_colour_constancy, eval_transform
from ..images.decoding import JPEG_DECODING, decode_jpeg_batch, plain_jpeg_bytes, tensor_transform
from ..images.reading import ImageReadError, as_image_list, content_hash, read_image
from ..store.cached import PARAMETER, CachedImageFeaturizer
from .runtime import (
    OpenVINOForward,
    exported_model_folder,
    network,
    openvino_version,
    resolve_runtime,
    runtime_identity,
)

__all__ = ["TTA_MODES", "BadImageWarning", "ImageEmbedder", "embedding_feature_names"]

_logger = logging.getLogger(__name__)

#: Test-time augmentations: the embedding is the mean over these views, each
#: (quarter turns counter-clockwise, then a horizontal flip or not). A vertical flip is a half
#: turn and a horizontal flip, so "flip4" = identity, both flips and their composition.
TTA_MODES: dict[str, tuple[tuple[int, bool], ...]] = {
    "none": ((0, False),),
    "flip": ((0, False), (0, True)),
    "flip4": ((0, False), (0, True), (2, True), (2, False)),
    "rot4": ((0, False), (1, False), (2, False), (3, False)),
    "d8": tuple((turns, flip) for flip in (False, True) for turns in range(4)),
}

_EMBEDDING_FORMAT = 1  # bump when the meaning of a stored vector changes
#: Images per forward pass on the CPU: on 2 cores, Lite0 runs 19 ms/image in channels_last at 4,
#: 27 ms at 32 and 34 ms one by one in NCHW (benchmarks/throughput.py).
_CPU_MICRO_BATCH = 4
_PREPROCESSING_KEYS = ("input_size", "interpolation", "mean", "std", "crop_pct", "crop_mode", "colour_constancy")


def embedding_feature_names(n: int) -> list[str]:
    """``image__emb_0000`` ... one name per embedding dimension."""
    width = max(4, len(str(n - 1)))
    return [f"image__emb_{i:0{width}d}" for i in range(n)]


def encoder_id_of(identity: dict[str, Any]) -> str:
    """The store's encoder id: a hash of everything that changes a vector."""
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:20]


def check_on_bad_image(value: Any) -> None:
    if value not in ("raise", "skip"):
        raise ValueError(f"on_bad_image must be 'raise' or 'skip', got {value!r}")


class _ImageDataset:
    """Decodes and preprocesses images in DataLoader workers.

    Each item is (tensor, error message): with ``skip`` an unreadable image gives a
    blank tensor and its message instead of raising. With ``raw_jpeg`` a plain JPEG
    is instead passed on as its compressed bytes, for decoding on the device.
    """

    def __init__(
        self, items: list[Any], rows: list[Any], transform: Any, skip: bool, size: tuple, raw_jpeg: bool = False
    ) -> None:
        self.items, self.rows, self.transform, self.skip, self.size = items, rows, transform, skip, size
        self.raw_jpeg = raw_jpeg

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> Any:
        if self.raw_jpeg:
            blob = plain_jpeg_bytes(self.items[index])
            if blob is not None:
                return blob, ""
        return self.decoded(index)

    def decoded(self, index: int) -> tuple[Any, str]:
        """The image decoded by PIL and preprocessed on the CPU."""
        try:
            return self.transform(read_image(self.items[index], row=self.rows[index])), ""
        except ImageReadError as exc:
            if not self.skip:
                raise
            import torch

            return torch.zeros(self.size), str(exc)


def _as_lists(batch: list[tuple[Any, str]]) -> tuple[list[Any], list[str]]:
    """Collate for the raw-JPEG mode: compressed bytes and tensors side by side."""
    return [entry for entry, _ in batch], [error for _, error in batch]


class ImageEmbedder(CachedImageFeaturizer, TransformerMixin, BaseEstimator):
    """Embed images with a frozen, pretrained timm backbone.

    Images are decoded in DataLoader workers while the model computes, in
    ``eval()`` mode under ``torch.inference_mode``. Vectors are kept in a
    content-addressed :class:`~melagbm.store.EmbeddingStore`, keyed by the image's
    bytes and the encoder's identity (backbone, weights hash, preprocessing,
    ``layers``, ``tta``), so an image is never embedded twice.

    Parameters
    ----------
    backbone : str, default="tf_efficientnet_lite0"
        A packaged encoder (see :data:`melagbm.backbones.ENCODERS`), any timm name, either optionally with an
        input size (``"tf_efficientnet_lite0@384"``: fed 384 x 384 pixels, no margin cropped), or an
        open_clip image tower: ``"hf-hub:<org>/<repo>"`` or ``"local-dir:<folder>"``.
    checkpoint_path : path, default=None
        Local weights for the backbone.
    layers : int or "auto", default=1
        1: the pooled output of the network's head. k > 1: also the global-average
        pooled feature maps of the last k - 1 stages, concatenated (backbones with feature
        stages: timm CNNs and ViTs; an open_clip tower has one output). "auto": 4 where the
        backbone has 3 stages or more, else 1.
    tta : {"none", "flip", "flip4", "rot4", "d8"}, default="none"
        Test-time augmentation: average the embedding over views of each image. "flip":
        with its mirror image; "flip4": horizontal, vertical and both flips; "rot4": the four
        quarter turns; "d8": the quarter turns and their mirror images. Costs one forward
        pass per view; part of the store key.
    preprocessing : dict, default=None
        Overrides of timm's preprocessing for the backbone, among ``input_size`` (an int
        or ``(3, h, w)``), ``interpolation``, ``mean``, ``std``, ``crop_pct`` and ``crop_mode``; and
        ``colour_constancy``: ``"shades_of_gray"`` divides out the light's colour before normalising
        (:class:`melagbm.images.colour.ShadesOfGray`), ``"none"`` (the default) does not.
    batch_size : int, default=32
    num_workers : int or "auto", default="auto"
        DataLoader worker processes that decode images ("auto": 4 on a GPU; on the CPU none
        with 2 cores or fewer, where a worker only competes with torch's threads, else 1).
    jpeg_decoding : {"auto", "pil", "torchvision"}, default="auto"
        Where JPEGs are decoded. "auto": on a CUDA device by torchvision (nvJPEG, batched,
        the workers only read bytes), else by PIL in the workers. "torchvision" also on the
        CPU. Other formats, and JPEGs torchvision cannot decode, always go through PIL.
    device : {"auto", "cpu", "cuda"}, default="auto"
        "auto" takes CUDA when available (with bf16 autocast and channels_last).
    runtime : {"auto", "torch", "openvino"}, default="auto"
        What runs the network. "auto": OpenVINO on the CPU (2.7x PyTorch on Lite0, the same vectors to six
        decimals), PyTorch on a GPU. The network is exported to OpenVINO once per encoder and machine (into
        ``<melagbm cache>/runtimes/``). The runtime is part of the encoder's identity: "torch" reuses
        vectors stored by PyTorch.
    cache : "auto", None, path or EmbeddingStore, default="auto"
        Where vectors are kept; "auto" is the user cache directory, None disables it.
    on_bad_image : {"raise", "skip"}, default="raise"
        "raise": an unreadable image raises :class:`~melagbm.ImageReadError` naming its
        row and file. "skip": its vector is NaN and a :class:`BadImageWarning` lists
        every skipped row and why (for batch jobs).
    verbose : int, default=1
        > 0 shows a progress bar once embedding lasts 2 s; 0: silent.

    Attributes
    ----------
    device_ : str
        The device in use.
    weights_digest_ : str
        SHA-256 prefix of the loaded weights; checked again when a pickled embedder reloads them.
    encoder_id_ : str
        Hash of ``encoder_identity_``; with the image's SHA-256 it keys the store.
    encoder_identity_ : dict
        Backbone, weights digest, preprocessing, layers, tta and runtime: anything that changes a vector.
    runtime_ : {"torch", "openvino"}
        The runtime in use (``runtime`` with "auto" resolved).
    layers_ : int
        The levels in use (``layers`` with "auto" resolved).
    license_ : str
        The licence of the weights, as their source states it ("unknown" where none does).
    data_config_ : dict
        The preprocessing in use: timm's config for the backbone with ``preprocessing`` applied.
    n_features_out_ : int
        Length of each embedding.

    Examples
    --------
    >>> import numpy as np
    >>> from melagbm import ImageEmbedder
    >>> images = [np.full((64, 64, 3), 200, np.uint8), np.zeros((64, 64, 3), np.uint8)]
    >>> ImageEmbedder(cache=None).fit_transform(images).shape
    (2, 1280)
    """

    def __init__(
        self,
        *,
        backbone: str = "tf_efficientnet_lite0",
        checkpoint_path: str | os.PathLike | None = None,
        layers: int = 1,
        tta: str = "none",
        preprocessing: dict[str, Any] | None = None,
        batch_size: int = 32,
        num_workers: int | str = "auto",
        jpeg_decoding: str = "auto",
        device: str = "auto",
        runtime: str = "auto",
        cache: Any = "auto",
        on_bad_image: str = "raise",
        verbose: int = 1,
    ) -> None:
        self.backbone = backbone
        self.checkpoint_path = checkpoint_path
        self.layers = layers
        self.tta = tta
        self.preprocessing = preprocessing
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.jpeg_decoding = jpeg_decoding
        self.device = device
        self.runtime = runtime
        self.cache = cache
        self.on_bad_image = on_bad_image
        self.verbose = verbose

    # -- fitting ---------------------------------------------------------------------
    def fit(self, X: Any = None, y: Any = None) -> ImageEmbedder:
        """Load the backbone and resolve device and preprocessing; learns nothing from X.

        Parameters
        ----------
        X : object, default=None
            Ignored.
        y : None
            Ignored.

        Returns
        -------
        self : ImageEmbedder
            The fitted embedder.
        """
        import timm

        if self.jpeg_decoding not in JPEG_DECODING:
            raise ValueError(f"jpeg_decoding must be one of {JPEG_DECODING}, got {self.jpeg_decoding!r}")
        if self.tta not in TTA_MODES:
            raise ValueError(f"tta must be one of {sorted(TTA_MODES)}, got {self.tta!r}")
        if self.layers != "auto" and (not isinstance(self.layers, (int, np.integer)) or self.layers < 1):
            raise ValueError(f"layers must be a positive integer or 'auto', got {self.layers!r}")
        self.device_ = resolve_device(self.device)
        runtime = resolve_runtime(self.runtime, self.device_)
        model = load_backbone(self.backbone, checkpoint_path=self.checkpoint_path)
        self.data_config_ = _apply_preprocessing(dict(timm.data.resolve_model_data_config(model)), self.preprocessing)
        stage_channels = [info["num_chs"] for info in getattr(model, "feature_info", [])][::-1]
        self.layers_ = int(self.layers) if self.layers != "auto" else (4 if len(stage_channels) >= 3 else 1)
        if self.layers_ - 1 > len(stage_channels):
            raise ValueError(f"layers={self.layers} but {self.backbone} has {len(stage_channels)} feature stages "
                             "(an open_clip tower has none: layers=1 or 'auto')")
        height, width = self.data_config_["input_size"][1:]
        if height != width and any(turns % 2 for turns, _ in TTA_MODES[self.tta]):
            raise ValueError(
                f"tta={self.tta!r} turns images by quarter turns, which needs a square input; "
                f"the input size is {height} x {width}"
            )
        self.n_features_out_ = int(model.num_features) + int(sum(stage_channels[: self.layers_ - 1]))
        self.weights_digest_ = weights_digest(model)
        self.license_ = weights_license(model)
        self.encoder_identity_ = {  # "<encoder>@<size>" is its preprocessing: the vectors of the same encoder
            "backbone": split_input_size(self.backbone)[0],
            "weights": self.weights_digest_,
            "data_config": {k: list(v) if isinstance(v, tuple) else v for k, v in self.data_config_.items()},
            "layers": self.layers_,
            "tta": self.tta,
            "format": _EMBEDDING_FORMAT,
        }
        self._model = model
        self._openvino = None
        self._set_runtime(runtime)
        if self.runtime_ == "openvino":
            try:  # exported now (once per machine), so that a network OpenVINO cannot take is known at fit
                self._openvino_forward(model)
            except Exception as exc:
                if self.runtime != "auto":
                    raise
                warn(f"OpenVINO could not export {self.backbone!r} ({type(exc).__name__}: {exc}); "
                     "it runs on PyTorch")
                self._set_runtime("torch")
        return self

    def _set_runtime(self, runtime: str) -> None:
        """Set ``runtime_`` and the encoder identity and id that go with it."""
        self.runtime_ = runtime
        self.encoder_identity_.pop("runtime", None)
        if runtime_identity(runtime) is not None:  # PyTorch's vectors keep the ids they always had
            self.encoder_identity_["runtime"] = runtime_identity(runtime)
        self.encoder_id_ = encoder_id_of(self.encoder_identity_)

    def __sklearn_tags__(self):  # type: ignore[no-untyped-def]
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.requires_fit = True
        tags.non_deterministic = False
        return tags

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_model", None)  # never pickle a torch module; reloaded on demand
        state.pop("_openvino", None)
        return state

    def _loaded_model(self) -> Any:
        model = getattr(self, "_model", None)
        if model is None:  # after unpickling: reload, and insist on the very same weights
            model = load_backbone(self.backbone, checkpoint_path=self.checkpoint_path)
            digest = weights_digest(model)
            if digest != self.weights_digest_:
                raise BackboneUnavailableError(
                    f"The weights of {self.backbone!r} differ from those this embedder was fitted with "
                    f"(digest {digest} != {self.weights_digest_}); refit the model."
                )
            self._model = model
        return model

    # -- transforming ----------------------------------------------------------------
    def transform(
        self, X: Any, *, on_bad_image: str | None = None, cache: Any = PARAMETER, device: str | None = None
    ) -> np.ndarray:
        """Embed images (paths, bytes, arrays or PIL images) into an (n, d) float32 array.

        Parameters
        ----------
        X : Series, list or array of images
            Paths, bytes, arrays or PIL images (a one-column DataFrame too).
        on_bad_image : {"raise", "skip"}, default=None
            This call's rule for unreadable images (None: the ``on_bad_image`` parameter).
        cache : "auto", None, path or EmbeddingStore, default=PARAMETER
            This call's store (``PARAMETER``: the ``cache`` parameter); the embedder is not changed.
        device : str, default=None
            Where this call runs the encoder (a resolved device, "cpu" or "cuda[:n]"); None: ``device_``.

        Returns
        -------
        embeddings : ndarray of shape (n_images, n_features_out_)
            One float32 vector per image; NaN rows for images skipped as unreadable.
        """
        check_is_fitted(self, "encoder_id_")
        on_bad_image = self.on_bad_image if on_bad_image is None else on_bad_image
        check_on_bad_image(on_bad_image)
        items, rows = as_image_list(X)
        out = np.full((len(items), self.n_features_out_), np.nan, dtype=np.float32)
        bad: dict[int, str] = {}
        keys: list[str | None] = []
        for index, (item, row) in enumerate(zip(items, rows)):
            try:
                keys.append(content_hash(item, row))
            except ImageReadError as exc:
                if on_bad_image == "raise":
                    raise
                keys.append(None)
                bad[index] = str(exc)
        bad.update(self.cached_rows(items, rows, keys, out, cache=cache, skip=on_bad_image == "skip", device=device))
        if bad:
            listed = "; ".join(bad[i] for i in sorted(bad)[:10])
            more = f" (and {len(bad) - 10} more)" if len(bad) > 10 else ""
            warn(f"skipped {len(bad)} unreadable image(s), their vectors are NaN: {listed}{more}", BadImageWarning)
        return out

    def store_identity(self) -> dict[str, Any]:
        """The encoder's identity (backbone, weights hash, preprocessing, layers, TTA), recorded in the store.

        Returns
        -------
        identity : dict
            ``encoder_identity_``.
        """
        return self.encoder_identity_

    def compute_batches(
        self, items: list[Any], rows: list[Any], *, skip: bool = False, device: str | None = None
    ) -> Iterator[tuple[int, np.ndarray, list[str]]]:
        """Embed ``items`` batch by batch (the images the store did not have).

        Parameters
        ----------
        items : list
            The images, each given once.
        rows : list
            Their row labels, for messages.
        skip : bool, default=False
            An unreadable image's vector is left out and its error reported, instead of raised.
        device : str, default=None
            Where the encoder runs (None: ``device_``).

        Yields
        ------
        start : int
            Position of the batch's first image in ``items``.
        vectors : ndarray of shape (batch size, n_features_out_)
            float32 embeddings.
        errors : list of str
            Per image, why it could not be read ("" when it was).
        """
        return self._embed_batches(items, rows, skip, self.device_ if device is None else device)

    def _embed_batches(
        self, items: list[Any], rows: list[Any], skip: bool, device_name: str
    ) -> Iterator[tuple[int, np.ndarray, list[str]]]:
        """Yield (offset of the batch in ``items``, its float32 vectors, an error message per image or "")."""
        import torch
        from torch.utils.data import DataLoader

        model = self._loaded_model()
        device = torch.device("cpu" if self._runtime() == "openvino" else device_name)
        on_gpu = device.type == "cuda"
        model = model.to(device, memory_format=torch.channels_last)  # faster on CPU too (benchmarks/throughput.py)
        forward = self._openvino_forward(model) if self._runtime() == "openvino" else self._torch_forward(model)
        transform = eval_transform(self.data_config_)
        on_device = None  # timm's preprocessing for tensors decoded by torchvision, when that is the path
        if self.jpeg_decoding == "torchvision" or (self.jpeg_decoding == "auto" and on_gpu):
            on_device = tensor_transform(transform)
        workers = self.num_workers
        if workers == "auto":  # on 2 CPU cores a decode worker only competes with torch (benchmarks/throughput.py)
            workers = 4 if on_gpu else (0 if (os.cpu_count() or 1) <= 2 else 1)
        dataset = _ImageDataset(items, rows, transform, skip,
                                tuple(self.data_config_["input_size"]), raw_jpeg=on_device is not None)
        loader = DataLoader(
            dataset,
            batch_size=int(self.batch_size),
            num_workers=int(workers),
            pin_memory=on_gpu,
            persistent_workers=False,
            collate_fn=_as_lists if on_device is not None else None,
        )
        views = TTA_MODES[self.tta]
        batches = progress(loader, desc=f"embedding ({self.backbone})", unit="batch",
                           verbose=self.verbose and len(loader) > 1)
        start = 0
        with torch.inference_mode(), _torch_threads(None if on_gpu else self._runtime()) as adjust_threads:
            for batch, errors in batches:
                adjust_threads()
                if on_device is not None:
                    batch, errors = _decode_on_device(batch, errors, start, dataset, on_device, device)
                batch = batch.to(device, non_blocking=on_gpu).contiguous(memory_format=torch.channels_last)
                total = None
                for turns, flip in views:
                    view = batch.rot90(turns, dims=(-2, -1)) if turns else batch
                    if flip:
                        view = view.flip(-1)
                    view = view.contiguous(memory_format=torch.channels_last)
                    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=on_gpu):
                        chunks = (view,) if on_gpu else view.split(_CPU_MICRO_BATCH)  # cache-sized on the CPU
                        features = torch.cat([forward(chunk) for chunk in chunks]).float()
                    total = features if total is None else total + features
                vectors = (total / len(views)).cpu().numpy().astype(np.float32, copy=False)
                yield start, vectors, list(errors)
                start += len(vectors)

    def _runtime(self) -> str:
        return getattr(self, "runtime_", "torch")  # embedders saved without one ran on PyTorch

    def network(self) -> Any:
        """The fitted encoder as one PyTorch module: a preprocessed batch (N x 3 x H x W, ``data_config_``'s size)
        -> its embeddings (N x ``n_features_out_``), as :meth:`transform` computes them on PyTorch (for export,
        compilation and timing).

        Returns
        -------
        network : torch.nn.Module
            In evaluation mode, on the CPU.
        """
        check_is_fitted(self, "encoder_id_")
        return network(self._forward, self._loaded_model())

    def _torch_forward(self, model: Any) -> Any:
        return lambda batch: self._forward(model, batch)

    def _openvino_forward(self, model: Any) -> OpenVINOForward:
        """The network compiled by OpenVINO (exported once per encoder and machine; kept for later calls)."""
        import torch

        compiled = getattr(self, "_openvino", None)
        if compiled is None:
            fitted_with = self.encoder_identity_["runtime"]["version"]
            if openvino_version() is None:
                raise BackboneUnavailableError(
                    f"this embedder ran {self.backbone!r} on OpenVINO {fitted_with}, which is not installed here: "
                    "pip install openvino")
            if openvino_version() != fitted_with:
                warn(f"{self.backbone!r} was embedded with OpenVINO {fitted_with}, this is {openvino_version()}: "
                     "new images' vectors may differ from the training images' in the last decimals")
            compiled = OpenVINOForward(network(self._forward, model), tuple(self.data_config_["input_size"]),
                                       exported_model_folder(self.encoder_id_), threads=torch.get_num_threads())
            self._openvino = compiled
        return compiled

    def _forward(self, model: Any, batch: Any) -> Any:
        import torch

        layers = getattr(self, "layers_", self.layers)  # embedders fitted by 0.1.0 have no layers_
        if layers == 1:
            return model(batch)
        final, stages = model.forward_intermediates(batch, indices=layers - 1)
        pooled = [model.forward_head(final)] + [stage.mean(dim=(2, 3)) for stage in reversed(stages)]
        return torch.cat(pooled, dim=1)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """``image__emb_0000`` ... one name per embedding dimension.

        Parameters
        ----------
        input_features : array-like of str, default=None
            Ignored.

        Returns
        -------
        feature_names_out : ndarray of str objects
            ``n_features_out_`` names.
        """
        check_is_fitted(self, "n_features_out_")
        return np.asarray(embedding_feature_names(self.n_features_out_), dtype=object)


@contextmanager
def _torch_threads(runtime: str | None) -> Iterator[Callable[[], None]]:
    """While embedding on the CPU: a function that sets PyTorch's threads (called before each batch), restored after.

    ``runtime`` "torch": as many as the cores other processes leave free (PyTorch's threads wait on each
    other at every layer, so one busy neighbour on 2 cores made two threads 14x slower). "openvino": one
    (PyTorch only turns and flips the batch; its idle threads would spin beside OpenVINO's). None: unchanged.
    """
    import torch

    before = torch.get_num_threads()

    def adjust() -> None:
        if runtime == "torch":
            torch.set_num_threads(max(1, min(before, free_cores())))
        elif runtime == "openvino":
            torch.set_num_threads(1)

    try:
        yield adjust
    finally:
        torch.set_num_threads(before)


def _decode_on_device(
    entries: list[Any], errors: list[str], start: int, dataset: _ImageDataset, transform: Any, device: Any
) -> tuple[Any, list[str]]:
    """Stack a raw-JPEG batch on ``device``: JPEG bytes decoded there by torchvision and preprocessed
    there; tensors the workers made moved over. A JPEG torchvision cannot decode goes through PIL
    (which names an unreadable file's row)."""
    import torch

    entries, errors = list(entries), list(errors)
    positions = [i for i, entry in enumerate(entries) if isinstance(entry, bytes)]
    decoded = decode_jpeg_batch([entries[i] for i in positions], device) if positions else []
    for i, image in zip(positions, decoded):
        if image is None:  # torchvision failed on it: PIL decodes it, or names its row
            entries[i], errors[i] = dataset.decoded(start + i)
        else:
            entries[i] = transform(image)
    return torch.stack([entry.to(device, non_blocking=True) for entry in entries]), errors


def _apply_preprocessing(config: dict[str, Any], overrides: dict[str, Any] | None) -> dict[str, Any]:
    """timm's data config with the user's overrides, validated."""
    if overrides is None:
        return config
    if not isinstance(overrides, dict):
        raise TypeError(f"preprocessing must be a dict or None, got {overrides!r}")
    unknown = sorted(set(overrides) - set(_PREPROCESSING_KEYS))
    if unknown:
        raise ValueError(f"preprocessing keys {unknown} are not among {list(_PREPROCESSING_KEYS)}")
    config = {**config, **overrides}
    colour = config.pop("colour_constancy", "none")
    check_colour_constancy(colour)
    if colour != "none":  # "none" leaves the config (and the vectors' identity in the store) as timm's
        config["colour_constancy"] = colour
    if isinstance(config["input_size"], (int, np.integer)):
        config["input_size"] = (3, int(config["input_size"]), int(config["input_size"]))
    size = tuple(config["input_size"])
    if len(size) != 3 or size[0] != 3 or min(size) < 1:
        raise ValueError(f"preprocessing input_size must be an int or (3, height, width), got {size!r}")
    config["input_size"] = size
    return config
