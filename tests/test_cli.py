from __future__ import annotations

import shutil
from pathlib import Path

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
    assert "image__score, age__years, sex__category, site__general" in capsys.readouterr().out  # diagnosis never a feature
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
    assert (predictions["refer"].to_numpy() == decisions).all()  # the model's own rule
    assert predictions["refer"].dtype.kind == "i"  # written as 0 / 1, not 0.0 / 1.0
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


def _one_line_error(capsys, needle: str) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert needle in err, err
    return err


@pytest.fixture(scope="module")
def small_isic_model(tmp_path_factory, isic_root):
    """A CLI-fitted model on 40 ISIC subset images (Lite0, no lesion features) and its training CSV."""
    folder = tmp_path_factory.mktemp("cli-model")
    meta = pd.read_csv(isic_root / "subset_metadata.csv")
    rows = pd.concat([meta[meta.target == 1].head(8), meta[meta.target == 0].head(32)])
    rows.to_csv(folder / "train.csv", index=False)
    model = folder / "model.melagbm"
    assert main(["fit", "--metadata", str(folder / "train.csv"), "--images", str(isic_root / "train"),
                 "--model", str(model), "--backbone", "tf_efficientnet_lite0", "--no-lesion-features"]) == 0
    return model, rows, folder


def test_user_mistakes_are_one_line_with_exit_status_2(small_isic_model, isic_root, tmp_path, capsys) -> None:
    model, rows, _ = small_isic_model
    capsys.readouterr()
    images = str(isic_root / "train")
    assert main(["fit", "--metadata", str(tmp_path / "nope.csv"), "--images", images, "--model", "m"]) == 2
    _one_line_error(capsys, "no metadata CSV")
    new = rows.drop(columns=["target", "age_approx"]).head(4)
    new.to_csv(tmp_path / "new.csv", index=False)
    out = tmp_path / "pred.csv"
    assert main(["predict", "--metadata", str(tmp_path / "new.csv"), "--images", images, "--model", str(model),
                 "--out", str(out)]) == 2
    _one_line_error(capsys, "lacks column(s) ['age_approx'] that the model")
    assert not out.exists()
    assert main(["evaluate", "--metadata", str(tmp_path / "new.csv"), "--images", images, "--target", "sex",
                 "--out", str(tmp_path / "r")]) == 2  # a text column as the label
    _one_line_error(capsys, "y must be 0/1")
    rows.assign(target=0).to_csv(tmp_path / "benign.csv", index=False)
    assert main(["evaluate", "--metadata", str(tmp_path / "benign.csv"), "--images", images,
                 "--out", str(tmp_path / "r")]) == 2
    _one_line_error(capsys, "y holds one class only: every row is 0 (non-melanomas)")
    assert main(["evaluate", "--metadata", str(small_isic_model[2] / "train.csv"), "--images", images,
                 "--out", str(tmp_path / "r"), "--target-sensitivity", "1.5", "--no-lesion-features"]) == 2
    _one_line_error(capsys, "--target-sensitivity must be in (0, 1)")  # the option, in the command's words
    with pytest.raises(Exception, match="lacks column"):  # --debug: the traceback, for a bug report
        main(["predict", "--debug", "--metadata", str(tmp_path / "new.csv"), "--images", images,
              "--model", str(model), "--out", str(out)])


def test_cli_leaves_label_columns_out_and_says_so(small_isic_model, capsys) -> None:
    from melagbm import load

    model = load(small_isic_model[0])
    assert not {"diagnosis", "benign_malignant"} & set(model.feature_names_in_)
    assert model.patient_col_ == "patient_id" and model.n_groups_ is not None  # grouped without --group-col


def _one_unreadable(tmp_path: Path, isic_root: Path, melanomas: int, others: int) -> tuple[pd.DataFrame, Path]:
    """(rows of a train.csv written to tmp_path, the folder of their images), the last image not a JPEG."""
    meta = pd.read_csv(isic_root / "subset_metadata.csv")
    rows = pd.concat([meta[meta.target == 1].head(melanomas), meta[meta.target == 0].head(others)])
    rows.to_csv(tmp_path / "train.csv", index=False)
    folder = tmp_path / "images"
    folder.mkdir()
    for name in rows.image_name:
        shutil.copy(isic_root / "train" / f"{name}.jpg", folder)
    (folder / f"{rows.image_name.iloc[-1]}.jpg").write_bytes(b"not a jpeg")
    return rows, folder


def test_fit_counts_the_images_it_trained_on(tmp_path, isic_root, capsys) -> None:
    rows, folder = _one_unreadable(tmp_path, isic_root, 6, 24)
    assert main(["fit", "--metadata", str(tmp_path / "train.csv"), "--images", str(folder), "--model",
                 str(tmp_path / "m.melagbm"), "--backbone", "tf_efficientnet_lite0", "--no-lesion-features",
                 "--on-bad-image", "skip"]) == 0
    out = capsys.readouterr().out
    assert f"fitted on 29 images (1 unreadable image(s) skipped: ['{rows.image_name.iloc[-1]}'])" in out
    assert "fitted on 29 rows (1 unreadable skipped)" in out  # the classifier's own summary agrees


def test_an_unreadable_image_stops_fit_naming_the_option_that_skips_it(tmp_path, isic_root, capsys) -> None:
    rows, folder = _one_unreadable(tmp_path, isic_root, 4, 12)
    assert main(["fit", "--metadata", str(tmp_path / "train.csv"), "--images", str(folder), "--model",
                 str(tmp_path / "m.melagbm"), "--backbone", "tf_efficientnet_lite0", "--no-lesion-features"]) == 2
    error = capsys.readouterr().err
    assert "--on-bad-image skip leaves such rows out" in error and "on_bad_image" not in error
    assert rows.image_name.iloc[-1] in error


def test_errors_of_the_python_api_are_said_in_the_commands_words() -> None:
    import argparse

    from melagbm.cli import in_command_words

    args = argparse.Namespace(command="fit", metadata="lesions.csv", image_col="image_name", metadata_cols="age",
                              group_col="patient_id", on_bad_image="raise")
    said = in_command_words("metadata_cols ['agee'] are not columns of X; group_col or groups= names the patients; "
                            "column 'image' holds paths", args, ValueError())
    assert said == ("--metadata-cols ['agee'] are not columns of lesions.csv; --group-col or groups= names the "
                    "patients; column 'image_name' (--image-col) holds paths")
    assert in_command_words("y has 3 labels", args, ValueError()) == "y has 3 labels"
    for untouched in ("No such file or directory: 'X:/scans/X/a.png'", "/data/image_col/x.png is missing",
                      "columns are ['X', 'Y']"):  # paths and quoted names are the user's own
        assert in_command_words(untouched, args, ValueError()) == untouched
    odd = argparse.Namespace(command="fit", metadata="m\\1.csv")  # a name that is no regex template
    assert in_command_words("X has 2 rows", odd, ValueError()) == "m\\1.csv has 2 rows"


def test_help_gives_every_option_a_text_and_its_default() -> None:
    from melagbm.cli import _parser

    parser = _parser()
    assert "``" not in parser.description
    [subcommands] = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    for name, sub in subcommands.choices.items():
        assert "``" not in (sub.description or "")
        text = sub.format_help()
        for action in sub._actions:
            assert action.help, f"melagbm {name} {action.option_strings} has no help text"
            if action.default not in (None, False) and action.default != "==SUPPRESS==" and not action.required:
                assert f"(default: {action.default})" in " ".join(text.split()), (name, action.option_strings)
    from melagbm import FusionClassifier

    fit = subcommands.choices["fit"]
    defaults = {a.dest: a.default for a in fit._actions}
    api = FusionClassifier().get_params()
    assert defaults["metadata_cols"] == api["metadata_cols"] and defaults["booster"] == api["booster"]
    assert tuple(name.strip() for name in defaults["backbone"].split(",")) == tuple(api["backbone"])


def test_fit_learns_diagnoses_named_by_diagnosis_col(tmp_path, isic_root, capsys) -> None:
    from melagbm import load

    meta = pd.read_csv(isic_root / "subset_metadata.csv")
    rows = pd.concat([meta[meta.target == 1].head(8), meta[meta.diagnosis == "nevus"].head(22),
                      meta[meta.diagnosis == "unknown"].head(30)])
    rows.to_csv(tmp_path / "train.csv", index=False)
    folder = tmp_path / "images"
    folder.mkdir()
    for name in rows.image_name:
        shutil.copy(isic_root / "train" / f"{name}.jpg", folder)
    common = ["--metadata", str(tmp_path / "train.csv"), "--images", str(folder), "--backbone",
              "tf_efficientnet_lite0", "--no-lesion-features"]
    assert main(["fit", *common, "--model", str(tmp_path / "m.melagbm"), "--diagnosis-col", "diagnosis"]) == 0
    model = load(tmp_path / "m.melagbm")
    assert model.diagnosis_col == "diagnosis" and "diagnosis" not in model.feature_names_in_
    assert "image__diagnosis_unknown" in model.feature_names_ and "image__diagnosis_nevus" in model.feature_names_
    assert main(["fit", *common, "--model", str(tmp_path / "n.melagbm"), "--diagnosis-col", "dx"]) == 2
    assert "no diagnosis column 'dx'" in capsys.readouterr().err
