from __future__ import annotations

import pandas as pd
import pytest

from melagbm.cli import main


def test_demo_runs_on_synthetic_data(capsys) -> None:
    assert main(["demo", "--n-samples", "90", "--folds", "2", "--backbone", "tf_efficientnet_lite0"]) == 0
    out = capsys.readouterr().out
    assert "SYNTHETIC" in out
    for model in ("fused (image + metadata)", "image only", "metadata only"):
        assert model in out
    assert "ROC AUC" in out and "pAUC>80%TPR" in out


def test_fit_then_predict_on_isic_csv(tmp_path, isic_root, capsys) -> None:
    meta = pd.read_csv(isic_root / "subset_metadata.csv")
    rows = pd.concat([meta[meta.target == 1].head(12), meta[meta.target == 0].head(48)])
    rows.to_csv(tmp_path / "train.csv", index=False)
    model = tmp_path / "model" / "melagbm.joblib"
    assert main([
        "fit", "--metadata", str(tmp_path / "train.csv"), "--images", str(isic_root / "train"),
        "--group-col", "patient_id", "--model", str(model), "--backbone", "tf_efficientnet_lite0",
    ]) == 0
    assert "image__score, age, sex, site" in capsys.readouterr().out  # diagnosis never a feature
    new = meta[meta.target == 0].tail(5).drop(columns=["target", "diagnosis", "benign_malignant"])
    new.to_csv(tmp_path / "new.csv", index=False)
    out = tmp_path / "pred.csv"
    assert main([
        "predict", "--metadata", str(tmp_path / "new.csv"), "--images", str(isic_root / "train"),
        "--model", str(model), "--out", str(out),
    ]) == 0
    predictions = pd.read_csv(out, index_col=0)
    assert list(predictions.index) == list(new.image_name)
    assert predictions["melanoma_probability"].between(0, 1).all()


def test_fit_names_a_missing_target_column(tmp_path, isic_root) -> None:
    meta = pd.read_csv(isic_root / "subset_metadata.csv").head(5).drop(columns="target")
    meta.to_csv(tmp_path / "x.csv", index=False)
    with pytest.raises(SystemExit, match="target"):
        main(["fit", "--metadata", str(tmp_path / "x.csv"), "--images", str(isic_root / "train"),
              "--model", str(tmp_path / "m.joblib")])
