"""Lesion features version 1: the scipy / scikit-image segmentation and measurements of melagbm 0.1.

Frozen. Models fitted on version 1 lesion features (saved before issue 19's OpenCV version) keep
measuring new images exactly as they were trained; new fits use :mod:`melagbm.features.lesion`'s
current version.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage as ndi

from ..images.reading import read_image

__all__ = ["measure"]

#: The feature order of version 1 (the same names as today's ``LESION_FEATURES``).
NAMES = (
    "lesion_size__area_fraction", "lesion_size__diameter_px", "lesion_size__major_axis_px",
    "lesion_size__minor_axis_px", "lesion_size__diameter_mm", "lesion_shape__compactness",
    "lesion_shape__eccentricity", "lesion_shape__solidity", "lesion_shape__asymmetry", "lesion_colour__L_inside",
    "lesion_colour__a_inside", "lesion_colour__b_inside", "lesion_colour__contrast", "lesion_colour__variegation",
    "lesion_colour__L_range",
)


def measure(rgb: np.ndarray, pixel_spacing_mm: float | None) -> list[float]:
    """Version 1's features of one RGB image, in :data:`NAMES` order."""
    measures = lesion_measurements(rgb, segment_lesion(rgb), pixel_spacing_mm)
    return [measures[name] for name in NAMES]


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
    """Version 1's features of one image and its lesion mask.

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
        Feature -> value, every name of :data:`NAMES`; NaN where nothing can be measured (a mask under
        10 pixels leaves all but ``lesion_size__area_fraction`` NaN).
    """
    from skimage.color import rgb2lab
    from skimage.measure import perimeter, regionprops

    rgb = np.asarray(read_image(image))
    out = dict.fromkeys(NAMES, np.nan)
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


