"""The image step: each backbone's embedding of the image (store first), turned into the booster's image columns."""

from __future__ import annotations

import re
from numbers import Integral, Real
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone

from .._warnings import warn
from ..backbones.registry import ENCODERS, restricts_commercial_use
from ..embedding.embedder import ImageEmbedder, check_on_bad_image
from ..exceptions import RestrictedLicenseWarning
from ..store.cached import PARAMETER
from .image_score import IMAGE_FEATURE_MODES, ImageSignal

__all__ = ["IMAGE_SIGNALS", "ImageFeatures"]

#: "joint": one set of image columns from the backbones' concatenated embeddings (family "image");
#: "per_backbone": one per backbone (columns ``image_<backbone>__...``, family ``"image: <backbone>"``).
IMAGE_SIGNALS = ("joint", "per_backbone")


class ImageFeatures(BaseEstimator):
    """Images -> embeddings (one :class:`~melagbm.ImageEmbedder` per backbone) -> image columns
    (:class:`~melagbm.features.ImageSignal`, out of fold on the training rows).

    Parameters
    ----------
    backbones : tuple of str
        The encoders, in order; their embeddings are concatenated.
    embedder : ImageEmbedder
        Every embedding option (layers, TTA, batch size, device, store, ...); each backbone's
        embedder is a copy with its ``backbone`` set.
    scorer : ImageSignal
        How an embedding becomes columns (probe score, PCA, raw); copied per signal.
    signal : {"joint", "per_backbone"}, default="joint"
        One signal from all backbones, or one per backbone (see :data:`IMAGE_SIGNALS`).

    Attributes
    ----------
    embedders_ : list of ImageEmbedder
        One fitted embedder per backbone.
    signals_ : list of ImageSignal
        The fitted signal(s): one ("joint") or one per backbone.
    feature_families_ : dict
        Output column -> family ("image", or ``"image: <backbone>"``).
    """

    def __init__(
        self, *, backbones: tuple[str, ...], embedder: ImageEmbedder, scorer: ImageSignal, signal: str = "joint"
    ) -> None:
        self.backbones = backbones
        self.embedder = embedder
        self.scorer = scorer
        self.signal = signal

    def check_params(self) -> ImageFeatures:
        """Raise ValueError naming the first invalid parameter, before any weight or image is read; return self."""
        backbones = list(self.backbones)
        if not backbones or len(set(backbones)) < len(backbones) or (
            self.embedder.checkpoint_path is not None and len(backbones) > 1
        ):
            raise ValueError(
                f"backbone must name one or more distinct encoders (checkpoint_path needs exactly one), "
                f"got {self.backbones!r}"
            )
        if self.signal not in IMAGE_SIGNALS:
            raise ValueError(f"backbone_signals must be 'joint' or 'per_backbone', got {self.signal!r}")
        if self.scorer.mode not in IMAGE_FEATURE_MODES:
            raise ValueError(f"image_encoding must be one of {IMAGE_FEATURE_MODES}, got {self.scorer.mode!r}")
        if not _is_count(self.scorer.n_components):
            raise ValueError(f"n_components must be a positive integer, got {self.scorer.n_components!r}")
        probe_C = self.scorer.probe_C
        if probe_C not in ("auto", "cv") and not (
            isinstance(probe_C, Real) and not isinstance(probe_C, bool) and probe_C > 0
        ):
            raise ValueError(f"probe_C must be 'auto', 'cv' or a positive number, got {probe_C!r}")
        if not _is_count(self.embedder.batch_size):
            raise ValueError(f"batch_size must be a positive integer, got {self.embedder.batch_size!r}")
        check_on_bad_image(self.embedder.on_bad_image)
        return self

    def fit_embedders(self, device: str, runs_on: str | None = None) -> ImageFeatures:
        """Load each backbone (its weights, not yet any image) onto ``device``.

        Parameters
        ----------
        device : str
            The device the embedders run on ("auto", "cpu", "cuda", ...).
        runs_on : str, default=None
            Where they will embed when that is not ``device`` (Dask: identities are made on the client,
            vectors on the workers' ``runs_on``); it decides the runtime "auto" picks.

        Returns
        -------
        self : ImageFeatures
            With ``embedders_`` set.
        """
        options = self.embedder.get_params(deep=False)  # the store object itself, not a copy
        if options["runtime"] == "auto" and runs_on not in (None, "cpu"):
            options["runtime"] = "torch"  # OpenVINO is a CPU runtime
        self.embedders_ = [ImageEmbedder(**{**options, "backbone": name, "device": device}).fit()
                           for name in self.backbones]
        restricted = {name: license for name, license in self.licenses().items() if restricts_commercial_use(license)}
        if restricted:
            warn(f"weights under a non-commercial licence: {restricted}; the model inherits it "
                 "(stated in its fit log and its saved file)", RestrictedLicenseWarning)
        return self

    def licenses(self) -> dict[str, str]:
        """Backbone -> the licence of its weights ("unknown" where their source states none)."""
        return {embedder.backbone: getattr(embedder, "license_", None) or _license_of_0_1(embedder.backbone)
                for embedder in self.embedders_}

    def embed(
        self, images: pd.Series, *, on_bad_image: str, cache: Any = PARAMETER, device: str | None = None
    ) -> np.ndarray:
        """The concatenated embeddings of ``images`` (store first); NaN rows for unreadable images when skipping.

        Parameters
        ----------
        images : Series
            One image (path, bytes, array or PIL image) per row.
        on_bad_image : {"raise", "skip"}
            What an unreadable image does (see :class:`~melagbm.ImageEmbedder`).
        cache : "auto", None, path or EmbeddingStore, default=PARAMETER
            The store this call reads first (``PARAMETER``: the embedders' own); nothing fitted changes.
        device : str, default=None
            Where this call runs the encoders (a resolved device); None: each embedder's ``device_``.

        Returns
        -------
        embeddings : ndarray of shape (n_images, n_dims)
            The backbones' embeddings side by side, in the order of ``backbones``.
        """
        return np.hstack([embedder.transform(images, on_bad_image=on_bad_image, cache=cache, device=device)
                          for embedder in self.embedders_])

    def fit_scores(
        self, embeddings: np.ndarray, y: np.ndarray, groups: np.ndarray | None, seed: int,
        targets: np.ndarray | None = None, n_tables: int = 1,
    ) -> list[pd.DataFrame]:
        """Fit the signal(s) on the training embeddings; the training rows' out-of-fold image columns.

        Parameters
        ----------
        embeddings : ndarray of shape (n_samples, n_dims)
            The training rows' embeddings (from :meth:`embed`).
        y : ndarray of shape (n_samples,)
            Their labels.
        groups : ndarray of shape (n_samples,) or None
            Patient or lesion ids, so no out-of-fold score comes from a probe that saw its group.
        seed : int
            The ``random_state`` of every signal.
        targets : ndarray of shape (n_samples,), default=None
            Each row's diagnosis: the probes learn the diagnoses (see :class:`~melagbm.features.ImageSignal`).
        n_tables : int, default=1
            Versions of the columns, one per booster, each from its own fold partitions
            (:meth:`~melagbm.features.ImageSignal.fit_transform_tables`).

        Returns
        -------
        tables : list of DataFrame
            ``n_tables`` versions of the training rows' image columns, one block per signal.
        """
        self.signals_, blocks, self.feature_families_ = [], [], {}
        for prefix, family, block in self._blocks(embeddings):
            signal = clone(self.scorer).set_params(random_state=seed, prefix=prefix)
            blocks.append(signal.fit_transform_tables(block, y, groups, targets, n_tables=n_tables))
            self.signals_.append(signal)
            self.feature_families_.update(dict.fromkeys(blocks[-1][0].columns, family))
        return [pd.concat([versions[table] for versions in blocks], axis=1) for table in range(n_tables)]

    def score(self, embeddings: np.ndarray) -> pd.DataFrame:
        """The image columns of new embeddings; NaN for a row whose embedding is NaN (never a made-up score).

        Parameters
        ----------
        embeddings : ndarray of shape (n_samples, n_dims)
            Embeddings from :meth:`embed`.

        Returns
        -------
        columns : DataFrame
            One row per embedding, the columns of :meth:`fit_scores`.
        """
        bad = np.isnan(embeddings).any(axis=1)
        blocks = self._blocks(np.where(bad[:, None], 0.0, embeddings))
        parts = [signal.transform(block) for signal, (_, _, block) in zip(self.signals_, blocks)]
        table = pd.concat(parts, axis=1)
        table.loc[bad, :] = np.nan
        return table

    def transform(
        self, images: pd.Series, *, on_bad_image: str = "raise", cache: Any = PARAMETER
    ) -> tuple[pd.DataFrame, np.ndarray]:
        """(the image columns of ``images``, the mask of unreadable images).

        Parameters
        ----------
        images : Series
            One image (path, bytes, array or PIL image) per row.
        on_bad_image : {"raise", "skip"}, default="raise"
            What an unreadable image does (see :class:`~melagbm.ImageEmbedder`).
        cache : "auto", None, path or EmbeddingStore, default=PARAMETER
            The store this call reads first (``PARAMETER``: the embedders' own).

        Returns
        -------
        columns : DataFrame
            The image columns (see :meth:`score`); NaN rows for unreadable images.
        unreadable : ndarray of shape (n_images,)
            True where the image could not be read.
        """
        embeddings = self.embed(images, on_bad_image=on_bad_image, cache=cache)
        return self.score(embeddings), np.isnan(embeddings).any(axis=1)

    def context_columns(self) -> tuple[str, ...]:
        """Each backbone's score column, which the patient context compares too ("per_backbone" only)."""
        if self.signal != "per_backbone":
            return ()
        return tuple(f"{self._prefix(name)}__score" for name in self.backbones)

    @staticmethod
    def _prefix(backbone: str) -> str:
        """``image_<backbone>``, characters a booster's column names cannot hold (``:`` of ``hf-hub:``) as ``_``."""
        return "image_" + re.sub(r"[^A-Za-z0-9_.-]+", "_", backbone)

    def _blocks(self, embeddings: np.ndarray) -> list[tuple[str, str, np.ndarray]]:
        """(column prefix, family, embedding columns) per signal: one joint block, or one per backbone."""
        if self.signal != "per_backbone":
            return [("image", "image", embeddings)]
        edges = np.cumsum([0] + [embedder.n_features_out_ for embedder in self.embedders_])
        return [(self._prefix(embedder.backbone), f"image: {embedder.backbone}", embeddings[:, start:stop])
                for embedder, start, stop in zip(self.embedders_, edges[:-1], edges[1:])]


def _license_of_0_1(backbone: str) -> str:
    """The licence of an embedder fitted before licences were recorded: known for packaged encoders only."""
    spec = ENCODERS.get(backbone)
    return spec.license if spec is not None else "unknown (not recorded)"


def _is_count(value: Any) -> bool:
    """A positive integer."""
    return isinstance(value, Integral) and not isinstance(value, bool) and value >= 1
