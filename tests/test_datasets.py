from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from melagbm.datasets import frame_from_csv, load_ham10000, load_isic2020, make_synthetic
from melagbm.features.metadata import ISIC_SITES


def _check_schema(X, y, groups, id_column: str) -> None:
    assert list(X.columns) == ["image", "age", "sex", "site", id_column]
    assert (X[id_column] == groups).all()  # the id column in X: fit groups (and ISIC's adds patient context)
    assert len(X) == len(y) == len(groups)
    assert set(np.unique(y)) == {0, 1}
    assert set(X["site"].dropna()) <= set(ISIC_SITES)
    assert set(X["sex"].dropna()) <= {"male", "female"}


def test_load_ham10000(ham_root) -> None:
    X, y, groups = load_ham10000(ham_root)
    _check_schema(X, y, groups, "lesion_id")
    assert len(X) == 10015 and int(y.sum()) == 1113
    assert groups.nunique() == 7470
    assert groups[y == 1].nunique() == 614
    assert X["age"].isna().sum() == 57 and X["sex"].isna().sum() == 57
    assert X["site"].isna().sum() == 234 and (X["site"] == "torso").sum() == 2192 + 1404 + 1022 + 407
    assert X.loc["ISIC_0027419", "age"] == 80 and X.loc["ISIC_0027419", "site"] == "head/neck"
    assert all(path.endswith(".jpg") for path in X["image"].head())


def test_load_isic2020(isic_root) -> None:
    X, y, groups = load_isic2020(isic_root)
    _check_schema(X, y, groups, "patient_id")
    assert len(X) == 2701 and int(y.sum()) == 39
    assert groups.nunique() == 130 and groups[y == 1].nunique() == 28
    assert X["site"].isna().sum() == 17 and (X["site"] == "torso").sum() == 1147
    assert X.loc["ISIC_0125706", "age"] == 60 and X.loc["ISIC_0125706", "sex"] == "female"
    assert groups["ISIC_0125706"] == "IP_4096093"


def test_sample_keeps_group_labels_and_can_enrich(ham_root, isic_root) -> None:
    _, _, full = load_ham10000(ham_root)
    X, y, groups = load_ham10000(ham_root, n_samples=300, random_state=1)
    assert len(X) == 300 and 0.05 < y.mean() < 0.2
    assert (groups == full.loc[groups.index]).all()
    X2, y2, _ = load_isic2020(isic_root, n_samples=200, positive_fraction=0.15)
    assert len(X2) == 200 and int(y2.sum()) == 30


def test_make_synthetic_is_labelled_and_reproducible(tmp_path) -> None:
    X, y, groups = make_synthetic(40, image_size=48, random_state=3)
    assert X.attrs["synthetic"] and all(i.startswith("SYNTH_") for i in X.index)
    assert X.loc[X.index[0], "image"].shape == (48, 48, 3)
    assert set(y) == {0, 1} and groups.str.startswith("SYNTH_P").all()
    again, _, _ = make_synthetic(40, image_size=48, random_state=3)
    np.testing.assert_array_equal(np.stack(X["image"]), np.stack(again["image"]))
    on_disk, _, _ = make_synthetic(5, image_size=48, directory=tmp_path, random_state=3)
    assert all((tmp_path / f"{i}.png").is_file() for i in on_disk.index)


def test_frame_from_csv_resolves_ids_and_names_missing_rows(tmp_path, isic_root) -> None:
    meta = pd.read_csv(isic_root / "subset_metadata.csv").head(3)
    meta.to_csv(tmp_path / "ok.csv", index=False)
    frame = frame_from_csv(tmp_path / "ok.csv", isic_root / "train", image_col="image_name")
    assert frame["image"].str.endswith(".jpg").all() and "image_name" not in frame.columns
    meta.loc[1, "image_name"] = "ISIC_0000000"
    meta.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(FileNotFoundError, match="row 1: 'ISIC_0000000'"):
        frame_from_csv(tmp_path / "bad.csv", isic_root / "train", image_col="image_name")


def test_bcn20000_loads_every_image_grouped_by_lesion_with_isic_sites(bcn_root) -> None:
    from melagbm.datasets import load_bcn20000

    X, y, groups = load_bcn20000(bcn_root, diagnosis=True)
    assert len(X) == 12381 and int(y.sum()) == 2857 and groups.nunique() == 3574
    assert X.attrs["dataset"] == "BCN20000" and (X["lesion_id"] == groups).all()
    assert ((X["diagnosis"] == "MEL") == (y == 1)).all()
    assert set(X["site"].dropna()) <= {"torso", "head/neck", "lower extremity", "upper extremity", "palms/soles",
                                       "oral/genital"}
    assert int(X["site"].isna().sum()) == 173 and int(X["age"].isna().sum()) == 74
    assert Path(X["image"].iloc[0]).is_file()
    sample, _, sample_groups = load_bcn20000(bcn_root, n_samples=200, random_state=0)
    assert len(sample) == 200 and "diagnosis" not in sample.columns
    with pytest.raises(FileNotFoundError, match="BCN20000 metadata not found"):
        load_bcn20000(bcn_root / "nowhere")
