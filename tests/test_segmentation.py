"""The OpenCV segmentation and measurements agree with the scikit-image / scipy definitions they replace."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from melagbm.features import lesion, segmentation
from melagbm.features.segmentation import WORKING_SIDE, cie_lab, segment_lesion


@pytest.fixture(scope="module")
def images(ham_root, isic_root):
    """20 HAM10000 (200x150) and 20 SIIM-ISIC 2020 (256x256) images."""
    paths = sorted((ham_root / "images").glob("*.jpg"))[:20] + sorted((isic_root / "train").glob("*.jpg"))[:20]
    return [np.asarray(Image.open(path).convert("RGB")) for path in paths]


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * (a & b).sum() / max(a.sum() + b.sum(), 1))


def test_cie_lab_is_scikit_images(images) -> None:
    from skimage.color import rgb2lab

    for rgb in images[::5]:
        np.testing.assert_allclose(cie_lab(rgb), rgb2lab(rgb / 255.0), atol=2e-3)


def test_otsu_holes_and_components_are_scikit_images_and_scipys(images) -> None:
    from scipy import ndimage as ndi
    from skimage.filters import threshold_otsu

    for rgb in images[::4]:
        lightness = cie_lab(rgb)[..., 0]
        assert segmentation._otsu(lightness.ravel()) == pytest.approx(threshold_otsu(lightness.ravel()), abs=1e-3)
        dark = lightness < np.quantile(lightness, 0.3)
        np.testing.assert_array_equal(segmentation._fill_holes(dark), ndi.binary_fill_holes(dark))
        labels, count = segmentation._components(dark)
        assert count == ndi.label(dark)[1]
        np.testing.assert_array_equal(segmentation.dilate(dark, 6), ndi.binary_dilation(dark, segmentation._disk(6)))


def test_shape_measures_are_scikit_images(images) -> None:
    from skimage.measure import perimeter, regionprops

    for rgb in images[::3]:
        mask = segment_lesion(rgb)
        (region,) = regionprops(mask.astype(np.uint8))
        assert lesion._perimeter(mask) == pytest.approx(perimeter(mask), rel=1e-12)
        np.testing.assert_allclose(lesion._ellipse_axes(mask), (region.axis_major_length, region.axis_minor_length),
                                   rtol=1e-9)
        assert mask.sum() / lesion._convex_area(mask) == pytest.approx(region.solidity, abs=0.01)
        mirrored = lesion._asymmetry(mask)
        assert 0.0 <= mirrored <= 1.0


def test_a_large_image_is_segmented_at_the_working_size(images) -> None:
    rgb = images[25]  # a 256x256 ISIC image, enlarged 4x
    large = np.asarray(Image.fromarray(rgb).resize((1024, 1024), Image.BICUBIC))
    assert max(large.shape[:2]) > WORKING_SIDE
    mask = segment_lesion(large)
    assert mask.shape == large.shape[:2]
    small = np.asarray(Image.fromarray(mask).resize((256, 256), Image.NEAREST))
    assert _dice(small, segment_lesion(rgb)) > 0.9
    features = lesion.lesion_measurements(large, mask)
    original = lesion.lesion_measurements(rgb, segment_lesion(rgb))
    assert features["lesion_size__diameter_px"] == pytest.approx(4 * original["lesion_size__diameter_px"], rel=0.1)
    assert features["lesion_size__area_fraction"] == pytest.approx(original["lesion_size__area_fraction"], rel=0.1)
