from __future__ import annotations

import shutil

import numpy as np
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
    model = tmp_path / "model" / "lesions.melagbm"
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
    import zipfile

    import melagbm

    assert zipfile.is_zipfile(model)  # the safe format, not a pickle
    frame = new.set_index("image_name")
    frame["image"] = [str(isic_root / "train" / f"{name}.jpg") for name in frame.index]
    loaded = melagbm.load(model)
    decisions = loaded.predict(frame[list(loaded.feature_names_in_)])
    assert (predictions["refer"].astype(int).to_numpy() == decisions).all()  # the model's own rule
    (tmp_path / "pickled.joblib").write_bytes(b"not even a pickle")
    assert main(["predict", "--metadata", str(tmp_path / "new.csv"), "--images", str(isic_root / "train"),
                 "--model", str(tmp_path / "pickled.joblib"), "--out", str(out)]) == 2
    assert "is a pickle: loading it runs code" in capsys.readouterr().err
    broken = tmp_path / "broken"
    shutil.copytree(isic_root / "train", broken, ignore=lambda d, names: [n for n in names if n not in set(
        f"{i}.jpg" for i in new.image_name)])
    (broken / f"{new.image_name.iloc[0]}.jpg").write_bytes(b"corrupt")
    assert main([
        "predict", "--metadata", str(tmp_path / "new.csv"), "--images", str(broken),
        "--model", str(model), "--out", str(out), "--on-bad-image", "skip",
    ]) == 0
    skipped = pd.read_csv(out, index_col=0)
    assert np.isnan(skipped["melanoma_probability"].iloc[0]) and skipped["melanoma_probability"].iloc[1:].notna().all()
    assert "1 unreadable image(s) left blank" in capsys.readouterr().out


def test_fit_names_a_missing_target_column(tmp_path, isic_root, capsys) -> None:
    meta = pd.read_csv(isic_root / "subset_metadata.csv").head(5).drop(columns="target")
    meta.to_csv(tmp_path / "x.csv", index=False)
    assert main(["fit", "--metadata", str(tmp_path / "x.csv"), "--images", str(isic_root / "train"),
                 "--model", str(tmp_path / "m.joblib")]) == 2
    assert "has no target column 'target' (name it with --target)" in capsys.readouterr().err


def test_embed_resumes_after_a_kill_and_then_embeds_nothing(tmp_path, ham_root) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    from PIL import Image

    from melagbm import EmbeddingStore

    folder = tmp_path / "images"
    folder.mkdir()
    for path in sorted((ham_root / "images").glob("*.jpg"))[:24]:
        Image.open(path).resize((150, 112)).save(folder / path.name)
    store = tmp_path / "store"
    command = [sys.executable, "-m", "melagbm.cli", "embed", "--images", str(folder), "--store", str(store),
               "--backbone", "tf_efficientnet_lite0", "--layers", "1", "--batch-size", "4"]
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 120
    while not list(store.rglob("part-*.parquet")) and time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.05)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    stored = EmbeddingStore(store).stats()["entries"]
    assert 4 <= stored < 24, "the kill should land after the first batch and before the last"

    second = subprocess.run(command + ["--quiet"], capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr
    assert f"{stored} already stored, {24 - stored} embedded" in second.stdout
    third = subprocess.run(command + ["--quiet"], capture_output=True, text=True, timeout=300)
    assert "24 already stored, 0 embedded" in third.stdout
    assert EmbeddingStore(store).stats()["entries"] == 24


def test_embed_reads_a_csv_and_names_a_missing_image(tmp_path, isic_root, capsys) -> None:
    meta = pd.read_csv(isic_root / "subset_metadata.csv").head(3)
    meta.to_csv(tmp_path / "few.csv", index=False)
    args = ["embed", "--metadata", str(tmp_path / "few.csv"), "--images", str(isic_root / "train"),
            "--store", str(tmp_path / "store"), "--backbone", "tf_efficientnet_lite0", "--quiet"]
    assert main(args) == 0
    assert "0 already stored, 3 embedded" in capsys.readouterr().out
    meta.assign(image_name=["ISIC_missing"] + list(meta.image_name[1:])).to_csv(tmp_path / "bad.csv", index=False)
    assert main(args[:2] + [str(tmp_path / "bad.csv")] + args[3:]) == 2
    assert "row 0: 'ISIC_missing'" in capsys.readouterr().err


def test_evaluate_writes_a_report_with_plots(tmp_path, isic_root, capsys) -> None:
    from PIL import Image

    meta = pd.read_csv(isic_root / "subset_metadata.csv")
    patients = meta.loc[meta.target == 1, "patient_id"].unique()[:12]
    rows = pd.concat([meta[meta.patient_id.isin(patients)], meta[~meta.patient_id.isin(patients)].head(40)])
    rows.to_csv(tmp_path / "train.csv", index=False)
    out = tmp_path / "report"
    assert main([
        "evaluate", "--metadata", str(tmp_path / "train.csv"), "--images", str(isic_root / "train"),
        "--group-col", "patient_id", "--out", str(out), "--folds", "3", "--bootstrap", "100",
        "--backbone", "tf_efficientnet_lite0",
    ]) == 0
    assert "report written to" in capsys.readouterr().out
    report = (out / "report.md").read_text()
    for needle in ("| ROC AUC |", "partial AUC above 80 % TPR", "95% CI", "predicted melanoma", "![ROC curve](roc.png)"):
        assert needle in report
    for png in ("roc.png", "calibration.png"):
        with Image.open(out / png) as image:
            assert image.size[0] > 300 and len(np.unique(np.asarray(image.convert("L")))) > 10  # a drawn plot, not blank
    metrics = pd.read_csv(out / "metrics.csv", index_col=0)
    assert metrics.loc["roc_auc", "ci_low"] <= metrics.loc["roc_auc", "value"] <= metrics.loc["roc_auc", "ci_high"]
    oof = pd.read_csv(out / "oof.csv", index_col=0)
    assert len(oof) == len(rows) and oof.groupby("group")["fold"].nunique().max() == 1
