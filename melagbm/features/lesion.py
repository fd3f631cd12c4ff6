"""Lesion segmentation and the ABCD-style features measured from it.

Dermoscopy datasets rarely record lesion size, so melagbm measures it from the image:
:func:`segment_lesion` finds the lesion (coping with hair, dark vignette corners and
uneven lighting), and :class:`LesionFeatures` turns image + mask into documented size,
shape and colour features.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice
from typing import Any

import numpy as np
import pandas as pd
from scipy import ndimage as ndi
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from .._progress import progress
from ..embedding.embedder import encoder_id_of
from ..images.reading import as_image_list, content_hash, read_image
from ..store.cached import CachedImageFeaturizer

__all__ = ["LESION_FEATURES", "LesionFeatures", "draw_outline", "lesion_measurements", "segment_lesion"]


def _disk(radius: int) -> np.ndarray:
    from skimage.morphology import disk

    return disk(radius).astype(bool)


def _lightness(rgb: np.ndarray) -> np.ndarray:
    from skimage.color import rgb2lab

    return rgb2lab(rgb)[..., 0]


def _candidate(channel: np.ndarray, valid: np.ndarray, border_fraction: float) -> np.ndarray:
    """The most central dark component below a threshold between lesion and skin levels."""
    from skimage.filters import threshold_otsu

    h, w = channel.shape
    values = channel[valid] if valid.sum() > 500 else channel.ravel()
    otsu = threshold_otsu(values)
    skin, lesion = np.median(values[values > otsu]), np.median(values[values <= otsu])
    mask = (channel < lesion + border_fraction * (skin - lesion)) & valid  # borders are gradual: lean to skin
    mask = ndi.binary_fill_holes(ndi.binary_opening(mask, _disk(2)))
    labels, n = ndi.label(mask)
    if n == 0:
        return np.zeros((h, w), bool)
    index = np.arange(1, n + 1)
    yy, xx = np.mgrid[0:h, 0:w]
    centrality = np.exp(-2.0 * (((yy - h / 2) / (h / 2)) ** 2 + ((xx - w / 2) / (w / 2)) ** 2))
    frame = np.zeros((h, w), bool)
    frame[:3], frame[-3:], frame[:, :3], frame[:, -3:] = True, True, True, True
    touches = ndi.sum(frame, labels, index) > 0
    area = ndi.sum(np.ones((h, w)), labels, index)
    score = ndi.sum(centrality, labels, index) * np.where(touches & (area < 0.5 * h * w), 0.25, 1.0)
    best = labels == index[int(np.argmax(score))]
    best |= ndi.binary_closing(np.pad(best, 5), _disk(3))[5:-5, 5:-5]
    return ndi.binary_fill_holes(best)


def _contrast(lightness: np.ndarray, mask: np.ndarray, valid: np.ndarray) -> float:
    """How much darker the mask is than the ring of skin around it (higher: a better boundary)."""
    if mask.sum() < 20 or (~mask & valid).sum() < 20:
        return -np.inf
    ring = ndi.binary_dilation(mask, _disk(6)) & ~mask & valid
    if ring.sum() < 10:
        ring = ~mask & valid
    return float(np.median(lightness[ring]) - np.median(lightness[mask]))


def segment_lesion(image: Any) -> np.ndarray:
    """Boolean lesion mask at the image's size.

    Steps: CIE L* lightness; thin dark hair removed by a grey closing; dark vignette
    corners (dark regions touching the border) excluded; a threshold between the
    Otsu-separated lesion and skin levels, on the image and on an illumination-flattened
    copy; in each, the most central component (border-touching small ones penalised);
    of the two, the mask whose boundary has the stronger contrast.

    Parameters
    ----------
    image : path, bytes, ndarray or PIL image
        One image; an array may be grey, RGB or RGBA.

    Returns
    -------
    mask : ndarray of shape (height, width)
        True on the lesion.
    """
    rgb = np.asarray(read_image(image))  # arrays too: grey or RGBA become 8-bit RGB
    lightness = _lightness(rgb.astype(float) / 255.0)
    closed = ndi.grey_closing(lightness, footprint=_disk(4))
    lightness = np.where(closed - lightness > 12, closed, lightness)  # hair: thin and much darker
    smooth = ndi.gaussian_filter(lightness, 2)
    dark, _ = ndi.label(smooth < 22)
    edge = np.unique(np.r_[dark[0], dark[-1], dark[:, 0], dark[:, -1]])
    valid = ~ndi.binary_dilation(np.isin(dark, edge[edge > 0]), _disk(4))
    if valid.sum() < 0.1 * valid.size:
        valid = np.ones_like(valid)
    raw = _candidate(smooth, valid, 0.7)
    sigma = max(smooth.shape) / 5
    background = ndi.gaussian_filter(np.where(valid, smooth, 0.0), sigma) / np.maximum(
        ndi.gaussian_filter(valid.astype(float), sigma), 1e-6
    )
    flat = _candidate(smooth - background + np.median(smooth[valid]), valid, 0.7)
    return raw if _contrast(smooth, raw, valid) >= _contrast(smooth, flat, valid) else flat


#: Images measured between two writes to the store (an interruption loses at most one batch).
_BATCH = 64

_FEATURES_VERSION = 1  # bump when segmentation or a feature's meaning changes: stored rows are then recomputed

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
    rotated = (coords - centre) @ vectors  # principal-axis coordinates
    points = np.round(rotated).astype(int)
    occupied = set(map(tuple, points))
    mismatches = []
    for axis in (0, 1):
        mirrored = points.copy()
        mirrored[:, axis] = -mirrored[:, axis]
        overlap = sum(tuple(p) in occupied for p in mirrored)
        mismatches.append(1.0 - overlap / len(points))
    return float(np.mean(mismatches))


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
    from skimage.color import rgb2lab
    from skimage.measure import perimeter, regionprops

    rgb = np.asarray(read_image(image))
    out = dict.fromkeys(LESION_FEATURES, np.nan)
    mask = np.asarray(mask, dtype=bool)
    area = int(mask.sum())
    out["lesion_size__area_fraction"] = area / mask.size
    if area < 10:
        return out
    (region,) = regionprops(mask.astype(np.uint8))
    diameter = float(np.sqrt(4 * area / np.pi))
    out["lesion_size__diameter_px"] = diameter
    out["lesion_size__major_axis_px"] = float(region.axis_major_length)
    out["lesion_size__minor_axis_px"] = float(region.axis_minor_length)
    if pixel_spacing_mm is not None and np.isfinite(pixel_spacing_mm):
        out["lesion_size__diameter_mm"] = diameter * float(pixel_spacing_mm)
    out["lesion_shape__compactness"] = float(perimeter(mask) ** 2 / (4 * np.pi * area))
    out["lesion_shape__eccentricity"] = float(region.eccentricity)
    out["lesion_shape__solidity"] = float(region.solidity)
    out["lesion_shape__asymmetry"] = _asymmetry(mask)
    lab = rgb2lab(rgb.astype(float) / 255.0)
    inside = lab[mask]
    ring = ndi.binary_dilation(mask, _disk(8)) & ~mask
    outside = lab[ring] if ring.sum() >= 10 else lab[~mask]
    median_in = np.median(inside, axis=0)
    out["lesion_colour__L_inside"], out["lesion_colour__a_inside"], out["lesion_colour__b_inside"] = map(
        float, median_in
    )
    if len(outside):
        out["lesion_colour__contrast"] = float(np.linalg.norm(median_in - np.median(outside, axis=0)))
    out["lesion_colour__variegation"] = float(np.sqrt(np.mean(inside.var(axis=0))))
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

    def transform(self, X: Any) -> pd.DataFrame:
        """One row of :data:`LESION_FEATURES` per image, indexed like ``X``.

        Parameters
        ----------
        X : Series, list or array of images
            Paths, bytes, arrays or PIL images (a one-column DataFrame too).

        Returns
        -------
        table : DataFrame of shape (n_images, n_features_out_)
            The features of each image; a Series' or DataFrame's index is kept.
        """
        check_is_fitted(self, "feature_families_")
        items, rows = as_image_list(X)
        keys = [content_hash(item, row) for item, row in zip(items, rows)]
        values = np.full((len(items), len(LESION_FEATURES)), np.nan, dtype=np.float32)
        self.cached_rows(items, rows, keys, values)  # an unreadable image raises while measuring
        index = X.index if isinstance(X, (pd.Series, pd.DataFrame)) else None
        return pd.DataFrame(values.astype(float), columns=list(LESION_FEATURES), index=index)

    def store_identity(self) -> dict[str, Any]:
        """What the store records about these features: their version, names and pixel spacing.

        Returns
        -------
        identity : dict
            The description ``encoder_id_`` hashes.
        """
        return {"features": "melagbm.lesion",  # a stable name of the store key, not the module path
                "version": _FEATURES_VERSION, "names": list(LESION_FEATURES), "pixel_spacing_mm": self.pixel_spacing_mm}

    def compute_batches(self, items: list[Any], rows: list[Any]) -> Iterator[tuple[int, np.ndarray, list[str]]]:
        """Segment and measure ``items`` (the images the store did not have), ``n_jobs`` processes at a time.

        Parameters
        ----------
        items : list
            The images, each given once.
        rows : list
            Their row labels, for messages.

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
            measured = parallel(delayed(_measure)(items[i], rows[i], self.pixel_spacing_mm) for i in batch)
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


def _measure(item: Any, row: Any, pixel_spacing_mm: float | None) -> list[float]:
    rgb = np.asarray(read_image(item, row=row))
    measures = lesion_measurements(rgb, segment_lesion(rgb), pixel_spacing_mm)
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
