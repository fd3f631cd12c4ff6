"""Lesion segmentation against HAM10000's masks, and the size/shape/colour features."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from melagbm.features.lesion import LESION_FEATURES, LesionFeatures, draw_outline, lesion_measurements, segment_lesion


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * (a & b).sum() / max(a.sum() + b.sum(), 1))


@pytest.fixture(scope="module")
def ham_with_masks(ham_root):
    """150 random HAM10000 images with their ground-truth masks (255 = lesion)."""
    names = sorted(p.stem for p in (ham_root / "images").glob("*.jpg"))
    picked = np.random.default_rng(7).choice(names, 150, replace=False)
    out = []
    for name in picked:
        rgb = np.asarray(Image.open(ham_root / "images" / f"{name}.jpg").convert("RGB"))
        mask = np.asarray(Image.open(ham_root / "masks" / f"{name}_segmentation.png")) > 127
        out.append((str(ham_root / "images" / f"{name}.jpg"), rgb, mask))
    return out


def test_segmentation_matches_the_dermatologists_masks(ham_with_masks) -> None:
    dice = np.array([_dice(segment_lesion(rgb), mask) for _, rgb, mask in ham_with_masks])
    assert dice.mean() > 0.78 and np.median(dice) > 0.85, (dice.mean(), np.median(dice))


def test_masks_come_back_at_the_image_size(ham_with_masks) -> None:
    paths = pd.Series([path for path, _, _ in ham_with_masks[:3]], index=["a", "b", "c"])
    masks = LesionFeatures().fit().segment(paths)
    assert [m.shape for m in masks] == [rgb.shape[:2] for _, rgb, _ in ham_with_masks[:3]]
    assert all(m.dtype == bool and 0 < m.mean() < 1 for m in masks)


def _skin_with(shape_mask: np.ndarray) -> np.ndarray:
    rgb = np.empty(shape_mask.shape + (3,), np.uint8)
    rgb[:] = (214, 168, 148)
    rgb[shape_mask] = (96, 58, 44)
    return rgb


def test_hair_and_dark_corners_do_not_move_the_lesion() -> None:
    yy, xx = np.mgrid[:150, :200]
    lesion = ((yy - 75) / 30) ** 2 + ((xx - 100) / 40) ** 2 < 1
    clean = _skin_with(lesion)
    noisy = clean.copy()
    for offset in range(-150, 200, 23):  # dark hair lines crossing the image
        line = np.abs(yy - 0.7 * (xx - offset)) < 1.0
        noisy[line] = (30, 22, 20)
    vignette = ((yy - 75) / 95) ** 2 + ((xx - 100) / 125) ** 2 > 1  # dark corners of the dermatoscope
    noisy[vignette] = (12, 10, 10)
    assert _dice(segment_lesion(clean), lesion) > 0.95
    assert _dice(segment_lesion(noisy), lesion) > 0.9


def test_size_shape_and_colour_measure_what_they_say() -> None:
    yy, xx = np.mgrid[:200, :200]
    circle = (yy - 100) ** 2 + (xx - 100) ** 2 < 40**2
    ellipse = ((yy - 100) / 20) ** 2 + ((xx - 100) / 60) ** 2 < 1
    blob = circle | (((yy - 60) ** 2 + (xx - 140) ** 2) < 25**2)  # a lopsided lesion
    c = lesion_measurements(_skin_with(circle), circle, pixel_spacing_mm=0.05)
    e = lesion_measurements(_skin_with(ellipse), ellipse)
    b = lesion_measurements(_skin_with(blob), blob)
    assert c["lesion_size__diameter_px"] == pytest.approx(80, rel=0.02)
    assert c["lesion_size__diameter_mm"] == pytest.approx(4.0, rel=0.02) and np.isnan(e["lesion_size__diameter_mm"])
    assert e["lesion_size__major_axis_px"] == pytest.approx(120, rel=0.03)
    assert e["lesion_size__minor_axis_px"] == pytest.approx(40, rel=0.05)
    assert c["lesion_shape__compactness"] < 1.15 < b["lesion_shape__compactness"]
    assert c["lesion_shape__eccentricity"] < 0.1 < 0.9 < e["lesion_shape__eccentricity"]
    assert c["lesion_shape__asymmetry"] < 0.05 and e["lesion_shape__asymmetry"] < 0.05
    assert b["lesion_shape__asymmetry"] > 0.15 and b["lesion_shape__solidity"] < c["lesion_shape__solidity"]
    assert c["lesion_colour__contrast"] > 40 and c["lesion_colour__variegation"] < 1.0
    assert c["lesion_colour__L_inside"] < 35


def test_features_on_real_images_are_finite_and_documented(ham_with_masks) -> None:
    paths = pd.Series([path for path, _, _ in ham_with_masks[:10]])
    table = LesionFeatures(pixel_spacing_mm=0.1).fit_transform(paths)
    assert list(table.columns) == list(LESION_FEATURES) and list(table.index) == list(paths.index)
    assert np.isfinite(table.to_numpy()).all()
    families = LesionFeatures().fit().feature_families_
    assert set(families.values()) == {"lesion size", "lesion shape", "lesion colour"}
    with pytest.raises(ValueError, match="pixel_spacing_mm"):
        LesionFeatures(pixel_spacing_mm=-1).fit()


def test_outline_is_drawn_over_the_image(ham_with_masks) -> None:
    import matplotlib

    matplotlib.use("Agg")
    _, rgb, _ = ham_with_masks[0]
    ax = draw_outline(rgb, segment_lesion(rgb), show=False)
    assert ax.images and ax.collections  # the image and the contour


@pytest.fixture(scope="module")
def isic_patients(isic_root):
    from melagbm.datasets import load_isic2020

    X, y, groups = load_isic2020(isic_root)
    patients = groups[y == 1].unique()[:5].tolist() + groups[y == 0].unique()[:3].tolist()
    rows = groups.isin(patients).to_numpy()
    X = X[rows].assign(patient_id=groups[rows])
    return X, y[rows]


def test_fusion_with_lesion_features_and_patient_context(isic_patients, tmp_path) -> None:
    import melagbm
    from melagbm import FusionClassifier

    X, y = isic_patients
    model = FusionClassifier(backbone="tf_efficientnet_lite0", lesion_features=True, patient_col="patient_id",
                             random_state=0).fit(X, y)
    families = set(model.feature_families_.values())
    assert {"image", "lesion size", "lesion shape", "lesion colour", "patient context"} <= families
    assert "patient_id" not in model.feature_names_ and "metadata__patient_id" not in model.feature_names_
    table = model.transform_features(X)
    assert table["patient_context__n_images"].equals(X.groupby("patient_id")["image"].transform("size").astype(float))
    per_patient = table.groupby(X["patient_id"])["patient_context__image__score_z"]
    assert np.allclose(per_patient.mean(), 0, atol=1e-9)  # z-scores centre on each patient
    ranks = table["patient_context__lesion_size__diameter_px_rank"]
    assert ranks.between(0, 1).all()
    proba = model.predict_proba(X)[:, 1]
    loaded = melagbm.load(model.save(tmp_path / "m.melagbm"))
    np.testing.assert_array_equal(loaded.predict_proba(X)[:, 1], proba)


def test_lesion_rows_come_from_the_store_the_second_time(isic_patients, tmp_path) -> None:
    from melagbm import EmbeddingStore

    X, _ = isic_patients
    store = EmbeddingStore(tmp_path / "store")
    first = LesionFeatures(cache=store).fit().transform(X["image"].head(12))
    assert (store.hits, store.misses) == (0, 12)
    second = LesionFeatures(cache=store).fit().transform(X["image"].head(12))
    assert (store.hits, store.misses) == (12, 12)
    pd.testing.assert_frame_equal(first, second, check_exact=False, rtol=1e-6)
