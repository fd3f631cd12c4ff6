"""Loaders for real dermoscopy datasets and a synthetic lesion generator.

Every loader returns ``X, y, groups`` in one schema: ``X`` has columns ``image``
(path), ``age`` (years, float), ``sex`` ("male"/"female"/NaN) and ``site`` (an
ISIC 2020 general anatomical site or NaN), and its id column: ``patient_id`` (ISIC
2020) or ``lesion_id`` (HAM10000, where patients are unknown); ``y`` is 1 for
melanoma; ``groups`` is that id column again. With the id column in ``X``,
:class:`~melagbm.FusionClassifier` groups its internal splits by it even when
``groups`` never reaches its ``fit`` (scikit-learn's ``cross_validate``), and a
``patient_id`` column adds the patient context. Neither is ever a feature.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from .features.metadata import UNKNOWN, normalise_sex, normalise_site

__all__ = ["frame_from_csv", "load_bcn20000", "load_ham10000", "load_isic2020", "make_synthetic", "sample_rows"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")


def _require(path: Path, what: str) -> Path:
    if not path.exists():
        raise FileNotFoundError(f"{what} not found: {path}")
    return path


def _site(values: pd.Series) -> pd.Series:
    """ISIC 2020 general sites (HAM10000 localizations mapped), NaN where unknown."""
    site = normalise_site(values)
    return site.where(site != UNKNOWN, np.nan)


def _sex(values: pd.Series) -> pd.Series:
    sex = normalise_sex(values)
    return sex.where(sex.isin(["male", "female"]), np.nan)


def sample_rows(
    X: pd.DataFrame, y: pd.Series, groups: pd.Series, n_samples: int, random_state: int = 0,
    positive_fraction: float | None = None,
) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    """A random sample of ``n_samples`` rows, with their group labels.

    ``positive_fraction`` (default: the data's own) sets the share of positive rows,
    to enrich a rare class in small samples. Rows keep their patient/lesion group, so
    grouped splits of the sample stay honest.

    Parameters
    ----------
    X : DataFrame
        Rows to draw from.
    y : Series
        Label of each row, 1 for positive.
    groups : Series
        Patient or lesion id of each row.
    n_samples : int
        Rows to draw (fewer when a class runs out).
    random_state : int, default=0
        Seed of the draw.
    positive_fraction : float, default=None
        Share of positive rows; None: ``y.mean()``.

    Returns
    -------
    X, y, groups : DataFrame, Series, Series
        The rows drawn, in their original order.
    """
    rng = np.random.default_rng(random_state)
    if positive_fraction is None:
        positive_fraction = float(y.mean())
    labels = y.to_numpy()
    n_positive = min(int(round(positive_fraction * n_samples)), int((labels == 1).sum()))
    n_negative = min(n_samples - n_positive, int((labels == 0).sum()))
    chosen = np.concatenate([
        rng.choice(np.flatnonzero(labels == 1), n_positive, replace=False),
        rng.choice(np.flatnonzero(labels == 0), n_negative, replace=False),
    ])
    chosen.sort()
    return X.iloc[chosen], y.iloc[chosen], groups.iloc[chosen]


def load_ham10000(
    root: str | os.PathLike, *, n_samples: int | None = None, random_state: int = 0, diagnosis: bool = False
) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    """HAM10000 (melanoma vs. rest), grouped by lesion.

    Parameters
    ----------
    root : path
        Folder with ``HAM10000_metadata.csv`` and ``images/``.
    n_samples : int, default=None
        Draw this many rows at random (all rows when None), see :func:`sample_rows`.
    random_state : int, default=0
        Seed of the draw.
    diagnosis : bool, default=False
        Also give the column ``diagnosis`` (HAM10000's ``dx``: ``mel``, ``nv``, ``bkl``, ...), a training
        target for ``FusionClassifier(diagnosis_col="diagnosis")``; it gives the label away, so never a feature.

    Returns
    -------
    X : DataFrame
        One row per image: ``image``, ``age``, ``sex``, ``site`` and ``lesion_id`` (and ``diagnosis``), indexed
        by ``image_id``.
    y : Series
        1 for melanoma, else 0 (name ``melanoma``).
    groups : Series
        The ``lesion_id`` of each row.
    """
    root = Path(root)
    meta = pd.read_csv(_require(root / "HAM10000_metadata.csv", "HAM10000 metadata"))
    return _by_lesion(meta, _require(root / "images", "HAM10000 image folder"), dataset="HAM10000",
                      columns={"image": "image_id", "age": "age", "site": "localization", "diagnosis": "dx"},
                      melanoma="mel", diagnosis=diagnosis, n_samples=n_samples, random_state=random_state)


def _by_lesion(
    meta: pd.DataFrame, images: Path, *, dataset: str, columns: dict[str, str], melanoma: str, diagnosis: bool,
    n_samples: int | None, random_state: int,
) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    """``X, y, groups`` of a dataset grouped by ``lesion_id``, from its metadata (``columns``: the metadata's names
    for image, age, site and diagnosis; ``sex`` and ``lesion_id`` as they are) and its image folder."""
    missing = [name for name in (*columns.values(), "sex", "lesion_id") if name not in meta.columns]
    if missing:
        raise ValueError(f"the {dataset} metadata lacks the columns {missing}")
    X = pd.DataFrame(
        {
            "image": [str(images / f"{name}.jpg") for name in meta[columns["image"]]],
            "age": pd.to_numeric(meta[columns["age"]], errors="coerce").to_numpy(dtype=float),
            "sex": _sex(meta["sex"]).to_numpy(),
            "site": _site(meta[columns["site"]]).to_numpy(),
            "lesion_id": meta["lesion_id"].to_numpy(),
            **({"diagnosis": meta[columns["diagnosis"]].to_numpy()} if diagnosis else {}),
        },
        index=pd.Index(meta[columns["image"]], name=columns["image"]),
    )
    X.attrs["dataset"] = dataset  # named in the model card of a model fitted on it
    y = pd.Series((meta[columns["diagnosis"]] == melanoma).astype(int).to_numpy(), index=X.index, name="melanoma")
    groups = pd.Series(meta["lesion_id"].to_numpy(), index=X.index, name="lesion_id")
    if n_samples is not None:
        return sample_rows(X, y, groups, n_samples, random_state)
    return X, y, groups


def load_bcn20000(
    root: str | os.PathLike, *, n_samples: int | None = None, random_state: int = 0, diagnosis: bool = False
) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    """BCN20000 (Hospital Clinic de Barcelona's dermoscopy, as released in ISIC 2019; melanoma vs. rest), grouped
    by lesion.

    Parameters
    ----------
    root : path
        Folder with ``bcn20000_metadata.csv`` (columns ``image``, ``diagnosis``, ``age_approx``,
        ``anatom_site_general``, ``lesion_id``, ``sex``) and ``images/``.
    n_samples : int, default=None
        Draw this many rows at random (all rows when None), see :func:`sample_rows`.
    random_state : int, default=0
        Seed of the draw.
    diagnosis : bool, default=False
        Also give the column ``diagnosis`` (ISIC 2019's classes: ``MEL``, ``NV``, ``BCC``, ...), a training
        target for ``FusionClassifier(diagnosis_col="diagnosis")``; it gives the label away, so never a feature.

    Returns
    -------
    X : DataFrame
        One row per image: ``image``, ``age``, ``sex``, ``site`` and ``lesion_id`` (and ``diagnosis``), indexed
        by the image name.
    y : Series
        1 for melanoma (``diagnosis == "MEL"``), else 0 (name ``melanoma``).
    groups : Series
        The ``lesion_id`` of each row.
    """
    root = Path(root)
    meta = pd.read_csv(_require(root / "bcn20000_metadata.csv", "BCN20000 metadata"))
    missing = [column for column in ("image", "diagnosis", "age_approx", "anatom_site_general", "lesion_id", "sex")
               if column not in meta.columns]
    if missing:
        raise ValueError(f"{root / 'bcn20000_metadata.csv'} lacks the columns {missing}")
    return _by_lesion(meta, _require(root / "images", "BCN20000 image folder"), dataset="BCN20000",
                      columns={"image": "image", "age": "age_approx", "site": "anatom_site_general",
                               "diagnosis": "diagnosis"},
                      melanoma="MEL", diagnosis=diagnosis, n_samples=n_samples, random_state=random_state)


def load_isic2020(
    root: str | os.PathLike,
    *,
    metadata: str = "subset_metadata.csv",
    image_dir: str | None = "train",
    n_samples: int | None = None,
    positive_fraction: float | None = None,
    random_state: int = 0,
    diagnosis: bool = False,
) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    """SIIM-ISIC 2020 training data, grouped by patient.

    Parameters
    ----------
    root : path
        Folder with the metadata CSV and the image folder.
    metadata : str, default="subset_metadata.csv"
        The ground-truth CSV (``ISIC_2020_Training_GroundTruth.csv`` for all rows).
    image_dir : str or None, default="train"
        Folder of ``<image_name>.jpg`` files; rows whose image is absent are dropped.
        None: metadata only (no ``image`` column), every row of the CSV.
    n_samples, positive_fraction : optional
        Draw ``n_samples`` rows, enriched in melanoma (see :func:`sample_rows`).
    random_state : int, default=0
        Seed of the draw.
    diagnosis : bool, default=False
        Also give the column ``diagnosis`` (``melanoma``, ``nevus``, ``unknown``, ...), a training target for
        ``FusionClassifier(diagnosis_col="diagnosis")``; it gives the label away, so never a feature.

    Returns
    -------
    X : DataFrame
        One row per image: ``image`` (unless ``image_dir`` is None), ``age``, ``sex``, ``site``
        and ``patient_id`` (and ``diagnosis``), indexed by ``image_name``.
    y : Series
        1 for melanoma, else 0 (name ``melanoma``).
    groups : Series
        The ``patient_id`` of each row.
    """
    root = Path(root)
    meta = pd.read_csv(_require(root / metadata, "ISIC 2020 metadata"))
    images: dict[str, list[str]] = {}
    if image_dir is not None:
        folder = _require(root / image_dir, "ISIC 2020 image folder")
        paths = [folder / f"{name}.jpg" for name in meta["image_name"]]
        present = np.asarray([path.is_file() for path in paths])
        meta = meta[present].reset_index(drop=True)
        images["image"] = [str(path) for path, keep in zip(paths, present) if keep]
    X = pd.DataFrame(
        {
            **images,
            "age": pd.to_numeric(meta["age_approx"], errors="coerce").to_numpy(dtype=float),
            "sex": _sex(meta["sex"]).to_numpy(),
            "site": _site(meta["anatom_site_general_challenge"]).to_numpy(),
            "patient_id": meta["patient_id"].to_numpy(),
            **({"diagnosis": meta["diagnosis"].to_numpy()} if diagnosis else {}),
        },
        index=pd.Index(meta["image_name"], name="image_name"),
    )
    X.attrs["dataset"] = "SIIM-ISIC 2020"
    y = pd.Series(meta["target"].astype(int).to_numpy(), index=X.index, name="melanoma")
    groups = pd.Series(meta["patient_id"].to_numpy(), index=X.index, name="patient_id")
    if n_samples is not None:
        return sample_rows(X, y, groups, n_samples, random_state, positive_fraction)
    return X, y, groups


def frame_from_csv(
    csv: str | os.PathLike, images: str | os.PathLike, *, image_col: str
) -> pd.DataFrame:
    """Read a metadata CSV and turn ``image_col`` (ids or file names) into image paths.

    An id without an extension is looked up with each of ``.jpg .jpeg .png .bmp .tif
    .tiff``. Raises FileNotFoundError naming the rows whose image is missing.

    Parameters
    ----------
    csv : str or path-like
        The metadata CSV.
    images : str or path-like
        Folder holding the images.
    image_col : str
        Column of ``csv`` with each row's image id or file name.

    Returns
    -------
    frame : DataFrame
        The CSV's columns with ``image`` holding the paths; ``image_col`` becomes the index
        (when it is ``"image"``, its values are replaced in place and the index is kept).
    """
    frame = pd.read_csv(csv)
    if image_col not in frame.columns:
        raise ValueError(f"{csv} has no column {image_col!r}; columns are {list(frame.columns)}")
    folder = Path(images)
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder not found: {folder}")
    available = {p.name: p for p in folder.iterdir() if p.is_file()}
    paths, missing = [], []
    for row, name in zip(frame.index, frame[image_col].astype(str)):
        candidates = [name] if Path(name).suffix.lower() in IMAGE_EXTENSIONS else [
            name + ext for ext in IMAGE_EXTENSIONS
        ]
        found = next((available[c] for c in candidates if c in available), None)
        if found is None:
            missing.append((row, name))
        paths.append(str(found) if found else None)
    if missing:
        shown = ", ".join(f"row {row}: {name!r}" for row, name in missing[:5])
        raise FileNotFoundError(f"{len(missing)} image(s) not found in {folder} ({shown})")
    frame["image"] = paths
    if image_col != "image":
        frame = frame.drop(columns=image_col).set_index(pd.Index(frame[image_col], name=image_col))
    return frame


# -- synthetic data ----------------------------------------------------------------------
def _lesion_image(rng: np.random.Generator, size: int, malignant: bool) -> np.ndarray:
    """One procedural dermoscopy-like image (uint8, size x size x 3)."""
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1) * 2 - 1
    skin = np.array([225, 180, 150]) * rng.uniform(0.8, 1.05) + rng.normal(0, 6, 3)
    image = np.broadcast_to(skin, (size, size, 3)).astype(float).copy()
    image += rng.normal(0, 5, (size, size, 1))  # skin texture
    image *= (1 - 0.35 * np.clip(np.hypot(xx, yy) - 0.9, 0, None))[..., None]  # vignette
    cx, cy = rng.normal(0, 0.12, 2)
    radius = rng.uniform(0.28, 0.6) if malignant else rng.uniform(0.2, 0.5)
    angle = np.arctan2(yy - cy, xx - cx)
    irregularity = rng.uniform(0.02, 0.14) if malignant else rng.uniform(0.0, 0.09)
    wobble = sum(
        rng.uniform(0, irregularity) * np.cos(k * angle + rng.uniform(0, 2 * np.pi)) for k in range(2, 7)
    )
    stretch = rng.uniform(1.0, 1.4)
    distance = np.hypot((xx - cx) * stretch, yy - cy) / (radius * (1 + wobble))
    inside = np.clip((1.0 - distance) * 8, 0, 1)[..., None]
    brown = np.array([120, 75, 50]) * rng.uniform(0.6, 1.15)
    lesion = np.broadcast_to(brown, (size, size, 3)).astype(float).copy()
    n_blotches = rng.binomial(3, 0.45 if malignant else 0.12)  # colour variegation
    for colour in rng.permutation(np.asarray([[70, 70, 100], [40, 25, 20], [150, 110, 90]]))[:n_blotches]:
        bx, by = rng.normal(cx, radius / 2, 2)
        blob = np.exp(-(((xx - bx) ** 2 + (yy - by) ** 2) / (2 * (radius / 4) ** 2)))[..., None]
        lesion = lesion * (1 - blob) + colour * blob
    lesion += rng.normal(0, 4, (size, size, 1))
    image = image * (1 - inside) + lesion * inside
    return np.clip(image, 0, 255).astype(np.uint8)


def make_synthetic(
    n_samples: int = 300,
    *,
    image_size: int = 96,
    positive_rate: float = 0.2,
    images_per_patient: float = 3.0,
    directory: str | os.PathLike | None = None,
    random_state: int | None = None,
) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    """Procedural lesion images with metadata: the demo and tests that run anywhere.

    SYNTHETIC DATA, not dermoscopy: melanomas are drawn larger, more irregular and
    more variegated, in older patients and more often on the torso, so that image and
    metadata both carry signal. Row ids start with ``SYNTH_`` and ``X.attrs["synthetic"]``
    is True.

    Parameters
    ----------
    n_samples : int, default=300
    image_size : int, default=96
        Side of each square image in pixels.
    positive_rate : float, default=0.2
        Share of melanomas.
    images_per_patient : float, default=3.0
        Mean lesions per patient (patients are the groups).
    directory : path, default=None
        When given, images are written there as PNG files and ``image`` holds paths;
        otherwise ``image`` holds uint8 arrays.
    random_state : int, default=None

    Returns
    -------
    X : DataFrame
        One row per image: ``image``, ``age``, ``sex`` and ``site``, indexed by ``image_id``.
    y : Series
        1 for melanoma, else 0 (name ``melanoma``).
    groups : Series
        The ``patient_id`` of each row.
    """
    rng = np.random.default_rng(random_state)
    n_patients = max(2, int(round(n_samples / images_per_patient)))
    patient = rng.integers(0, n_patients, n_samples)
    patient_age = rng.uniform(20, 85, n_patients)
    patient_sex = rng.choice(["female", "male"], n_patients)
    y = (rng.random(n_samples) < positive_rate).astype(int)
    y[:2] = [0, 1]  # both classes, always
    age = np.round(patient_age[patient] + 15 * y + rng.normal(0, 3, n_samples))
    age = np.clip(age, 18, 95)
    sites = np.asarray(["torso", "lower extremity", "upper extremity", "head/neck"])
    site = np.where(
        rng.random(n_samples) < 0.3 + 0.45 * y, "torso", sites[rng.integers(1, 4, n_samples)]
    )
    ids = [f"SYNTH_{i:06d}" for i in range(n_samples)]
    images = [_lesion_image(rng, image_size, bool(label)) for label in y]
    if directory is not None:
        from PIL import Image

        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        for name, array in zip(ids, images):
            Image.fromarray(array).save(folder / f"{name}.png")
        images = [str(folder / f"{name}.png") for name in ids]
    index = pd.Index(ids, name="image_id")
    X = pd.DataFrame(
        {"image": pd.Series(images, index=index, dtype=object), "age": age, "sex": patient_sex[patient], "site": site},
        index=index,
    )
    X.attrs["synthetic"] = True
    groups = pd.Series([f"SYNTH_P{p:05d}" for p in patient], index=index, name="patient_id")
    return X, pd.Series(y, index=index, name="melanoma"), groups
