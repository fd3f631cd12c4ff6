"""The ABCD-style features measured from a lesion's mask.

Dermoscopy datasets rarely record lesion size, so melagbm measures it from the image:
:func:`~melagbm.features.segmentation.segment_lesion` finds the lesion, and
:class:`LesionFeatures` turns image + mask into documented size, shape and colour features.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice
from typing import Any

import cv2
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from .._progress import progress
from ..embedding.embedder import encoder_id_of
from ..images.reading import as_image_list, content_hash, read_image
from ..store.cached import PARAMETER, CachedImageFeaturizer
from .segmentation import dilate, cie_lab, lesion_mask, segment_lesion, working_size

__all__ = ["LESION_FEATURES", "LesionFeatures", "draw_outline", "lesion_measurements", "segment_lesion"]


#: Images measured between two writes to the store (an interruption loses at most one batch).
_BATCH = 64

_FEATURES_VERSION = 2  # bump when segmentation or a feature's meaning changes: stored rows are then recomputed

#: Feature -> (family, description). Pixel measures are at the image's resolution.
LESION_FEATURES: dict[str, tuple[str, str]] = {
    "lesion_size__area_fraction": ("lesion size", "lesion area / image area"),
    "lesion_size__diameter_px": ("lesion size", "diameter of the circle of equal area, pixels"),
    "lesion_size__major_axis_px": ("lesion size", "major axis of the equivalent ellipse, pixels"),
    "lesion_size__minor_axis_px": ("lesion size", "minor axis of the equivalent ellipse, pixels"),
    "lesion_size__diameter_mm": ("lesion size", "equivalent diameter in mm (NaN without a pixel spacing)"),
    "lesion_shape__compactness": ("lesion shape", "perimeter^2 / (4 pi area): 1 for a disk, larger when irregular"),
    "lesion_shape__eccentricity": ("lesion shape", "eccentricity of the equivalent ellipse (0 = circle)"),
    "lesion_shape__solidity": ("lesion shape", "area / convex hull area (1 = convex)"),
    "lesion_shape__asymmetry": ("lesion shape", "mean area mismatch when mirrored about each principal axis (0-1)"),
    "lesion_colour__L_inside": ("lesion colour", "median CIE L* inside"),
    "lesion_colour__a_inside": ("lesion colour", "median CIE a* inside"),
    "lesion_colour__b_inside": ("lesion colour", "median CIE b* inside"),
    "lesion_colour__contrast": ("lesion colour", "CIE76 colour difference between lesion and surrounding skin medians"),
    "lesion_colour__variegation": ("lesion colour", "spread of colour inside: RMS standard deviation of L*, a*, b*"),
    "lesion_colour__L_range": ("lesion colour", "5-95th percentile range of L* inside"),
}


def _asymmetry(mask: np.ndarray) -> float:
    """Mirror the mask about each principal axis through its centroid; mean mismatched area share."""
    yy, xx = np.nonzero(mask)
    if len(yy) < 10:
        return np.nan
    coords = np.stack([yy, xx], axis=1).astype(float)
    centre = coords.mean(axis=0)
    _, vectors = np.linalg.eigh(np.cov((coords - centre).T))
    points = np.round((coords - centre) @ vectors).astype(int)  # principal-axis coordinates
    reach = np.abs(points).max(axis=0)
    occupied = np.zeros(2 * reach + 1, dtype=bool)  # the rotated pixels, centred on the centroid
    occupied[points[:, 0] + reach[0], points[:, 1] + reach[1]] = True
    mismatches = []
    for axis in (0, 1):
        mirrored = points.copy()
        mirrored[:, axis] = -mirrored[:, axis]
        overlap = occupied[mirrored[:, 0] + reach[0], mirrored[:, 1] + reach[1]].sum()
        mismatches.append(1.0 - overlap / len(points))
    return float(np.mean(mismatches))


def _ellipse_axes(mask: np.ndarray) -> tuple[float, float]:
    """(major, minor) axis of the ellipse with the mask's second moments (scikit-image's ``axis_major_length``)."""
    moments = cv2.moments(mask.astype(np.uint8), binaryImage=True)
    covariance = np.array([[moments["mu20"], moments["mu11"]], [moments["mu11"], moments["mu02"]]]) / moments["m00"]
    low, high = np.clip(np.linalg.eigvalsh(covariance), 0.0, None)
    return 4.0 * float(np.sqrt(high)), 4.0 * float(np.sqrt(low))


#: Weight of each 3x3 boundary pattern code in the 4-neighbourhood perimeter (Benkrid & Crookes, as scikit-image).
_PERIMETER_WEIGHTS = np.zeros(50)
_PERIMETER_WEIGHTS[[5, 7, 15, 17, 25, 27]] = 1.0
_PERIMETER_WEIGHTS[[21, 33]] = np.sqrt(2.0)
_PERIMETER_WEIGHTS[[13, 23]] = (1.0 + np.sqrt(2.0)) / 2.0
_CROSS = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], np.uint8)
_PATTERN = np.array([[10, 2, 10], [2, 1, 2], [10, 2, 10]], np.float32)


def _perimeter(mask: np.ndarray) -> float:
    """The mask's perimeter in pixels, its boundary pixels weighted by their pattern (scikit-image's ``perimeter``)."""
    image = mask.astype(np.uint8)
    border = image - cv2.erode(image, _CROSS, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    codes = cv2.filter2D(border.astype(np.float32), -1, _PATTERN, borderType=cv2.BORDER_CONSTANT)
    return float(np.bincount(codes.astype(np.int64).ravel(), minlength=50)[:50] @ _PERIMETER_WEIGHTS)


def _convex_area(mask: np.ndarray) -> int:
    """Pixels inside the convex hull of the mask's pixel centres (its outer contours' points suffice)."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    hull = cv2.convexHull(np.concatenate(contours))
    canvas = np.zeros(mask.shape, np.uint8)
    cv2.fillConvexPoly(canvas, hull, 1)
    return max(int(canvas.sum()), int(mask.sum()))


def lesion_measurements(image: Any, mask: np.ndarray, pixel_spacing_mm: float | None = None) -> dict[str, float]:
    """The :data:`LESION_FEATURES` of one image and its lesion mask.

    Parameters
    ----------
    image : path, bytes, ndarray or PIL image
        One image.
    mask : ndarray of shape (height, width)
        The lesion mask at the image's size (as :func:`segment_lesion` gives it).
    pixel_spacing_mm : float, default=None
        Millimetres per pixel; fills ``lesion_size__diameter_mm`` (NaN without it).

    Returns
    -------
    measurements : dict
        Feature -> value, every key of :data:`LESION_FEATURES`; NaN where nothing can be measured (a mask under
        10 pixels leaves all but ``lesion_size__area_fraction`` NaN).
    """
    return _measurements(cie_lab(np.asarray(read_image(image))), np.asarray(mask, dtype=bool), pixel_spacing_mm)


def _measurements(lab: np.ndarray, mask: np.ndarray, pixel_spacing_mm: float | None) -> dict[str, float]:
    """:func:`lesion_measurements` of an image given as CIE L*a*b*."""
    out = dict.fromkeys(LESION_FEATURES, np.nan)
    area = int(mask.sum())
    out["lesion_size__area_fraction"] = area / mask.size
    if area < 10:
        return out
    major, minor = _ellipse_axes(mask)
    diameter = float(np.sqrt(4 * area / np.pi))
    out["lesion_size__diameter_px"] = diameter
    out["lesion_size__major_axis_px"], out["lesion_size__minor_axis_px"] = major, minor
    if pixel_spacing_mm is not None and np.isfinite(pixel_spacing_mm):
        out["lesion_size__diameter_mm"] = diameter * float(pixel_spacing_mm)
    out["lesion_shape__compactness"] = float(_perimeter(mask) ** 2 / (4 * np.pi * area))
    out["lesion_shape__eccentricity"] = float(np.sqrt(1.0 - (minor / major) ** 2)) if major > 0 else 0.0
    out["lesion_shape__solidity"] = area / _convex_area(mask)
    out["lesion_shape__asymmetry"] = _asymmetry(mask)
    inside = lab[mask]
    ring = dilate(mask, 8) & ~mask
    outside = lab[ring] if ring.sum() >= 10 else lab[~mask]
    median_in = np.median(inside, axis=0)
    out["lesion_colour__L_inside"], out["lesion_colour__a_inside"], out["lesion_colour__b_inside"] = map(
        float, median_in
    )
    if len(outside):
        out["lesion_colour__contrast"] = float(np.linalg.norm(median_in - np.median(outside, axis=0)))
    out["lesion_colour__variegation"] = float(np.sqrt(np.mean(inside.astype(float).var(axis=0))))
    low, high = np.percentile(inside[:, 0], [5, 95])
    out["lesion_colour__L_range"] = float(high - low)
    return out


class LesionFeatures(CachedImageFeaturizer, TransformerMixin, BaseEstimator):
    """Segment each lesion and measure its size, shape and colour.

    Parameters
    ----------
    pixel_spacing_mm : float, default=None
        Millimetres per pixel of the images as given; fills ``lesion_size__diameter_mm``.
    cache : "auto", None, path or EmbeddingStore, default="auto"
        Rows are kept in the embedding store, keyed by the image's bytes and this
        feature set's version and parameters, so an image is measured once.
    n_jobs : int, default=1
        Processes measuring images that are not in the store yet.
    verbose : int, default=1
        > 0 shows a progress bar once measuring lasts 2 s; 0: silent.

    Attributes
    ----------
    feature_families_ : dict
        Feature -> family ("lesion size", "lesion shape", "lesion colour").
    n_features_out_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from melagbm.features.lesion import LesionFeatures
    >>> skin = np.full((120, 160, 3), (215, 170, 150), np.uint8)
    >>> yy, xx = np.mgrid[:120, :160]
    >>> skin[(yy - 60) ** 2 + (xx - 80) ** 2 < 30 ** 2] = (90, 55, 40)
    >>> table = LesionFeatures().fit_transform([skin])  # a 60-pixel disk
    >>> round(float(table.loc[0, "lesion_size__diameter_px"]))  # the soft border counts as lesion
    62
    """

    def __init__(
        self, *, pixel_spacing_mm: float | None = None, cache: Any = "auto", n_jobs: int = 1, verbose: int = 1
    ) -> None:
        self.pixel_spacing_mm = pixel_spacing_mm
        self.cache = cache
        self.n_jobs = n_jobs
        self.verbose = verbose

    def fit(self, X: Any = None, y: Any = None) -> LesionFeatures:
        """Nothing to learn; records the feature families.

        Parameters
        ----------
        X : object, default=None
            Ignored.
        y : None
            Ignored.

        Returns
        -------
        self : LesionFeatures
            With ``feature_families_`` set.
        """
        if self.pixel_spacing_mm is not None and not (
            isinstance(self.pixel_spacing_mm, (int, float)) and self.pixel_spacing_mm > 0
        ):
            raise ValueError(f"pixel_spacing_mm must be a positive number or None, got {self.pixel_spacing_mm!r}")
        self.feature_families_ = {name: family for name, (family, _) in LESION_FEATURES.items()}
        self.n_features_out_ = len(LESION_FEATURES)
        self.feature_version_ = _FEATURES_VERSION
        self.encoder_id_ = "lesion-" + encoder_id_of(self.store_identity())
        return self

    def segment(self, X: Any) -> list[np.ndarray]:
        """The boolean lesion mask of each image, at the image's size.

        Parameters
        ----------
        X : Series, list or array of images
            Paths, bytes, arrays or PIL images (a one-column DataFrame too).

        Returns
        -------
        masks : list of ndarray
            One mask per image (see :func:`segment_lesion`).
        """
        items, rows = as_image_list(X)
        return [segment_lesion(np.asarray(read_image(item, row=row))) for item, row in zip(items, rows)]

    def transform(self, X: Any, *, cache: Any = PARAMETER) -> pd.DataFrame:
        """One row of :data:`LESION_FEATURES` per image, indexed like ``X``.

        Parameters
        ----------
        X : Series, list or array of images
            Paths, bytes, arrays or PIL images (a one-column DataFrame too).
        cache : "auto", None, path or EmbeddingStore, default=PARAMETER
            This call's store (``PARAMETER``: the ``cache`` parameter); the measurer is not changed.

        Returns
        -------
        table : DataFrame of shape (n_images, n_features_out_)
            The features of each image; a Series' or DataFrame's index is kept.
        """
        check_is_fitted(self, "feature_families_")
        items, rows = as_image_list(X)
        keys = [content_hash(item, row) for item, row in zip(items, rows)]
        values = np.full((len(items), len(LESION_FEATURES)), np.nan, dtype=np.float32)
        self.cached_rows(items, rows, keys, values, cache=cache)  # an unreadable image raises while measuring
        index = X.index if isinstance(X, (pd.Series, pd.DataFrame)) else None
        return pd.DataFrame(values.astype(float), columns=list(LESION_FEATURES), index=index)

    def store_identity(self, version: int | None = None) -> dict[str, Any]:
        """What the store records about these features: their version, names and pixel spacing.

        Parameters
        ----------
        version : int, default=None
            The feature version described; None: the one these features measure (``feature_version_``, the
            current version for a new fit; a model file fitted on version 1 keeps measuring version 1).

        Returns
        -------
        identity : dict
            The description ``encoder_id_`` hashes.
        """
        if version is None:
            version = self.measured_version()
        return {"features": "melagbm.lesion",  # a stable name of the store key, not the module path
                "version": version, "names": list(LESION_FEATURES), "pixel_spacing_mm": self.pixel_spacing_mm}

    def measured_version(self) -> int:
        """The feature version these features measure: ``feature_version_``, else (a model pickled before it was
        recorded) the version its ``encoder_id_`` names, else the current one."""
        version = getattr(self, "feature_version_", None)
        if version is None:
            version = self.earlier_encoder_ids().get(getattr(self, "encoder_id_", None), _FEATURES_VERSION)
        return int(version)

    def earlier_encoder_ids(self) -> dict[str, int]:
        """The ``encoder_id_`` these parameters had under each earlier feature version -> that version."""
        return {"lesion-" + encoder_id_of(self.store_identity(version)): version
                for version in range(1, _FEATURES_VERSION)}

    def compute_batches(
        self, items: list[Any], rows: list[Any], *, skip: bool = False
    ) -> Iterator[tuple[int, np.ndarray, list[str]]]:
        """Segment and measure ``items`` (the images the store did not have), ``n_jobs`` processes at a time.

        Parameters
        ----------
        items : list
            The images, each given once.
        rows : list
            Their row labels, for messages.
        skip : bool, default=False
            Ignored: an unreadable image raises (the image step reads every image before measuring it).

        Yields
        ------
        start : int
            Position of the batch's first image in ``items``.
        values : ndarray of shape (batch size, n_features_out_)
            float32 measurements.
        errors : list of str
            All "" (an unreadable image raises ImageReadError).
        """
        from joblib import Parallel, delayed

        pending = iter(progress(range(len(items)), desc="measuring lesions", total=len(items), unit="image",
                                verbose=self.verbose))
        parallel = Parallel(n_jobs=self.n_jobs)
        start = 0
        while batch := list(islice(pending, _BATCH)):
            version = self.measured_version()
            measured = parallel(delayed(_measure)(items[i], rows[i], self.pixel_spacing_mm, version) for i in batch)
            yield start, np.asarray(measured, dtype=np.float32), [""] * len(batch)
            start += len(batch)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """The names of the output columns: the keys of :data:`LESION_FEATURES`.

        Parameters
        ----------
        input_features : array-like of str, default=None
            Ignored.

        Returns
        -------
        feature_names_out : ndarray of str objects
            The output column names.
        """
        return np.asarray(list(LESION_FEATURES), dtype=object)

    def __sklearn_tags__(self):  # type: ignore[no-untyped-def]
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.requires_fit = True
        return tags


def _measure(item: Any, row: Any, pixel_spacing_mm: float | None, version: int = _FEATURES_VERSION) -> list[float]:
    """One image's features: decoded once, converted to CIE L*a*b* once for both segmentation and measuring
    (``version`` 1: as melagbm 0.1 measured them, for models fitted on those)."""
    rgb = np.asarray(read_image(item, row=row))
    if version == 1:
        from . import lesion_v1

        return lesion_v1.measure(rgb, pixel_spacing_mm)
    lab = cie_lab(rgb)
    mask = lesion_mask(lab[..., 0]) if working_size(rgb.shape) is None else segment_lesion(rgb)
    measures = _measurements(lab, mask, pixel_spacing_mm)
    return [measures[name] for name in LESION_FEATURES]


def draw_outline(image: Any, mask: np.ndarray, *, ax: Any = None, color: str = "lime", show: bool = True) -> Any:
    """Draw the image with the mask's outline over it; returns the Axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        ax = plt.subplots(figsize=(4, 3))[1]
    ax.imshow(np.asarray(read_image(image)))
    ax.contour(np.asarray(mask, dtype=float), levels=[0.5], colors=[color], linewidths=1.5)
    ax.set_axis_off()
    if show:
        plt.show()
    return ax
