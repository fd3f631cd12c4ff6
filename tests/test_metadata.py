from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from melagbm import MetadataEncoder
from melagbm.features.metadata import UNKNOWN, UnseenCategoryWarning


def test_ham10000_columns_map_onto_isic_sites(ham_root) -> None:
    raw = pd.read_csv(ham_root / "HAM10000_metadata.csv")
    encoded = MetadataEncoder(other_cols="none").fit_transform(raw)
    assert list(encoded.columns) == ["age__years", "sex__category", "site__general"]
    assert set(encoded["site__general"].cat.categories) >= {"torso", "head/neck", "palms/soles", UNKNOWN}
    back = raw["localization"] == "back"
    assert (encoded.loc[back, "site__general"] == "torso").all()
    assert (encoded.loc[raw["localization"] == "face", "site__general"] == "head/neck").all()
    assert (encoded.loc[raw["localization"] == "unknown", "site__general"] == UNKNOWN).sum() == 234
    assert encoded["age__years"].isna().sum() == raw["age"].isna().sum() == 57
    assert (encoded["sex__category"] == UNKNOWN).sum() == 57


def test_isic2020_columns_are_recognised(isic_root) -> None:
    raw = pd.read_csv(isic_root / "ISIC_2020_Training_GroundTruth.csv")
    encoder = MetadataEncoder(other_cols="none").fit(raw)
    assert encoder.columns_ == {"age__years": "age_approx", "sex__category": "sex",
                               "site__general": "anatom_site_general_challenge"}
    encoded = encoder.transform(raw)
    assert (encoded["site__general"] == UNKNOWN).sum() == raw["anatom_site_general_challenge"].isna().sum() == 527
    assert (encoded["sex__category"] == UNKNOWN).sum() == 65


def test_vocabulary_is_fixed_at_fit_and_unseen_values_warn() -> None:
    train = pd.DataFrame({"age": [30, 40], "sex": ["male", "female"], "site": ["torso", "head/neck"],
                          "clinic": ["A", "B"]})
    encoder = MetadataEncoder().fit(train)
    new = pd.DataFrame({"age": [50], "sex": ["female"], "site": ["moon"], "clinic": ["C"]})
    with pytest.warns(UnseenCategoryWarning, match="'site'.*moon"):
        out = encoder.transform(new)
    assert out.loc[0, "site__general"] == UNKNOWN and out.loc[0, "metadata__clinic"] == UNKNOWN
    assert list(out["site__general"].cat.categories) == list(encoder.transform(train)["site__general"].cat.categories)


def test_user_named_columns() -> None:
    frame = pd.DataFrame({"years": [33.0, np.nan], "gender": ["F", "m"], "where": ["back", None]})
    out = MetadataEncoder(age_col="years", sex_col="gender", site_col="where").fit_transform(frame)
    assert list(out["sex__category"]) == ["female", "male"]
    assert list(out["site__general"]) == ["torso", UNKNOWN]
    with pytest.raises(ValueError, match="age_col='yrs'"):
        MetadataEncoder(age_col="yrs").fit(frame)


def test_bad_values_name_column_and_row() -> None:
    frame = pd.DataFrame({"age": [30, -4, 50]}, index=["r1", "r2", "r3"])
    with pytest.raises(ValueError, match=r"'age'.*'r2'"):
        MetadataEncoder().fit(frame)
    frame = pd.DataFrame({"age": ["30", "old"]})
    with pytest.raises(ValueError, match=r"'age' must be numeric.*\[1\]"):
        MetadataEncoder().fit(frame)


def test_missing_column_at_transform() -> None:
    encoder = MetadataEncoder().fit(pd.DataFrame({"age": [1.0], "sex": ["male"]}))
    with pytest.raises(ValueError, match=r"missing metadata column\(s\) \['sex'\]"):
        encoder.transform(pd.DataFrame({"age": [2.0]}))
