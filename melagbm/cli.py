"""Command line: melagbm demo | fit | predict | evaluate | explain | embed.

A user's mistake (a missing file or column, a bad value) prints one line saying what to
fix and exits with status 2; a traceback means a bug (or ``--debug`` asked for one).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ._atomic import atomic_write
from .embedding.embedder import TTA_MODES
from .exceptions import MelagbmError, UsageError

__all__ = ["UsageError", "main"]

DESCRIPTION = (
    "melagbm: melanoma detection fusing dermoscopic images with patient metadata.\n"
    "Commands: demo (synthetic data, runs anywhere), fit, predict, evaluate (grouped CV report), "
    "explain (SHAP report), embed (fill the embedding store), card (a saved model's model card),\n"
    "serve (the HTTP screening service).\n"
    "Run 'melagbm <command> --help' for a command's options."
)


#: Errors that come from the user's input, not from a bug: one line, no traceback.
USER_ERRORS = (MelagbmError, FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError, ValueError)


def _save_model(model: Any, path: Path) -> None:
    """melagbm's pickle-free format; joblib only when the name asks for it (.joblib/.pkl)."""
    if path.suffix in (".joblib", ".pkl", ".pickle"):
        import joblib

        with atomic_write(path) as out:
            joblib.dump(model, out)
    else:
        model.save(path)


def _load_model(path: Path, allow_pickle: bool = False) -> Any:
    """melagbm's safe format; a joblib/pickle file only when named so and explicitly allowed."""
    from .persistence import load

    if not path.is_file():
        raise UsageError(f"no model file {path} (write one with 'melagbm fit ... --model {path}')")
    if path.suffix in (".joblib", ".pkl", ".pickle"):
        if not allow_pickle:
            raise UsageError(
                f"{path} is a pickle: loading it runs code from it. Pass --allow-pickle if you made it "
                "yourself, or refit and save as .melagbm"
            )
        import joblib

        return joblib.load(path)
    return load(path)


def _backbones(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    if not names:
        raise UsageError(f"--backbone {text!r} names no encoder")
    return names


def _layers(text: str) -> int | str:
    """--layers: a positive integer or "auto"."""
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'auto', got {text!r}") from None


def _model_options(args: argparse.Namespace) -> dict:
    names = _backbones(args.backbone)
    options: dict = {"booster": args.booster, "random_state": args.seed,
                     "backbone": names[0] if len(names) == 1 else names}
    if args.no_lesion_features:
        options["lesion_features"] = False
    if getattr(args, "pixel_spacing_mm", None) is not None:
        options["pixel_spacing_mm"] = args.pixel_spacing_mm
    return options


def _demo(args: argparse.Namespace) -> int:
    from . import FusionClassifier
    from .datasets import make_synthetic
    from .evaluation.metrics import cross_validate

    started = time.perf_counter()
    X, y, groups = make_synthetic(args.n_samples, random_state=args.seed)
    print(
        f"melagbm demo on SYNTHETIC lesions: {len(X)} images, {groups.nunique()} patients, "
        f"{int(y.sum())} melanomas; backbone {FusionClassifier(**_model_options(args)).backbone}, "
        f"booster {args.booster}, "
        f"{args.folds}-fold CV grouped by patient",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="melagbm-demo-") as store:
        common = dict(cache=store, **_model_options(args))
        models = {
            "fused (image + metadata)": lambda: FusionClassifier(**common),
            "image only": lambda: FusionClassifier(metadata_cols=[], **common),
            "metadata only": lambda: FusionClassifier(image_col=None, **common),
        }
        rows = {}
        for number, (name, make) in enumerate(models.items(), 1):
            first = " (its first fold embeds and measures every image)" if number == 1 else ""
            print(f"[{number}/{len(models)}] {name}: {args.folds}-fold CV{first}", flush=True)
            data = X.drop(columns="image") if name == "metadata only" else X
            result = cross_validate(make(), data, y, groups, n_splits=args.folds, n_bootstrap=0,
                                    random_state=args.seed)
            rows[name] = result.metrics["value"]
    table = pd.DataFrame(rows).T.rename_axis(columns=None)[["roc_auc", "pauc_80", "sens_at_spec90"]].rename(
        columns={"roc_auc": "ROC AUC", "pauc_80": "pAUC>80%TPR", "sens_at_spec90": "sens@90%spec"}
    )
    print(table.round(3).to_string())
    print(f"done in {time.perf_counter() - started:.0f} s "
          "(synthetic data: numbers show the plumbing, not clinical skill)")
    return 0


def _read_frame(args: argparse.Namespace) -> pd.DataFrame:
    from .datasets import frame_from_csv

    if not Path(args.metadata).is_file():
        raise UsageError(f"no metadata CSV {args.metadata} (--metadata)")
    return frame_from_csv(args.metadata, args.images, image_col=args.image_col)


def _metadata_cols(args: argparse.Namespace) -> str | list[str]:
    """``--metadata-cols`` as FusionClassifier's ``metadata_cols``: "auto", "known" or a list."""
    if args.metadata_cols in ("auto", "known"):
        return args.metadata_cols
    return [c.strip() for c in args.metadata_cols.split(",") if c.strip()]


def _labelled_frame(args: argparse.Namespace) -> tuple[pd.DataFrame, pd.Series]:
    """The CSV's images, group and feature columns, and its target.

    Under "auto"/"known", columns named like the label (diagnosis, benign_malignant, dx, ...:
    a ground-truth CSV always has them) are left out, with a note; fit refuses any other
    column that alone gives the label away.
    """
    from .classifier import ID_COLUMNS
    from .features.metadata import AGE_COLUMNS, SEX_COLUMNS, SITE_COLUMNS
    from .leakage import KNOWN_LABEL_COLUMNS

    frame = _read_frame(args)
    if args.target not in frame.columns:
        raise UsageError(f"{args.metadata} has no target column {args.target!r} (name it with --target); "
                         f"columns are {list(frame.columns)}")
    y = frame.pop(args.target)
    if y.isna().any():
        raise UsageError(f"{args.metadata}: target column {args.target!r} is empty at rows "
                         f"{list(y.index[y.isna()][:5])}")
    diagnosis = getattr(args, "diagnosis_col", None)
    if diagnosis is not None and diagnosis not in frame.columns:
        raise UsageError(f"{args.metadata} has no diagnosis column {diagnosis!r} (--diagnosis-col); "
                         f"columns are {list(frame.columns)}")
    metadata = _metadata_cols(args)
    ids = [c for c in dict.fromkeys([args.group_col, *ID_COLUMNS]) if c is not None and c in frame.columns]
    if isinstance(metadata, list):
        keep = metadata
    else:
        label_like = [c for c in frame.columns
                      if str(c).strip().lower() in KNOWN_LABEL_COLUMNS and c != diagnosis]
        if label_like:
            print(f"note: leaving out {label_like}: they give the label away "
                  "(name them in --metadata-cols to use them anyway)")
        known = set(AGE_COLUMNS + SEX_COLUMNS + SITE_COLUMNS)
        keep = [c for c in frame.columns if c not in label_like and (metadata == "auto" or c in known)]
    keep = list(dict.fromkeys(["image", *ids, *keep, *([diagnosis] if diagnosis else [])]))
    missing = [c for c in keep if c not in frame.columns]
    if missing:
        raise UsageError(f"{args.metadata} has no column(s) {missing} (--group-col/--metadata-cols); "
                         f"columns are {list(frame.columns)}")
    return frame[keep], y


def _fit(args: argparse.Namespace) -> int:
    from .card import attach_cross_validation

    X, y = _labelled_frame(args)
    model = _classifier(args, on_bad_image=args.on_bad_image)
    result = _cross_validated(args, model, X, y)[0] if args.evaluate else None
    model.fit(X, y)
    if result is not None:  # the card then states what 'melagbm evaluate' reports for the same data and seed
        attach_cross_validation(model, result, folds=args.folds, seed=args.seed)
    _save_model(model, Path(args.model))
    skipped = len(model.skipped_rows_)
    note = f" ({skipped} unreadable image(s) skipped: {model.skipped_rows_[:5]})" if skipped else ""
    print(f"fitted on {len(X) - skipped} images{note}; features: {', '.join(model.feature_names_)}")
    print(f"model written to {args.model}")
    return 0


def _classifier(args: argparse.Namespace, **extra: Any) -> Any:
    """The FusionClassifier that 'melagbm fit' and 'melagbm evaluate' build from the same options."""
    from . import FusionClassifier

    return FusionClassifier(group_col=args.group_col, metadata_cols=_metadata_cols(args),
                            target_sensitivity=args.target_sensitivity, diagnosis_col=args.diagnosis_col,
                            **_model_options(args), **extra)


def _cross_validated(args: argparse.Namespace, model: Any, X: pd.DataFrame, y: pd.Series) -> tuple[Any, float]:
    """(``cross_validate``'s result for ``model`` on the CSV's rows, seconds): the evaluation 'melagbm evaluate'
    reports and 'melagbm fit --evaluate' writes into the card, run the same way for both."""
    from sklearn.base import clone

    from .classifier import ID_COLUMNS, LESION_ID_COLUMN
    from .evaluation.metrics import cross_validate

    group_col = args.group_col or next((c for c in ID_COLUMNS if c in X.columns), None)
    groups = X[group_col] if group_col else None
    if groups is None:
        print("warning: no --group-col (and no patient_id/lesion_id column): images of one patient may land in "
              "both training and test folds")
    started = time.perf_counter()
    lesions = group_col == LESION_ID_COLUMN  # groups of one lesion's images: no "top-k within the patient"
    result = cross_validate(clone(model), X, y, groups, n_splits=args.folds, n_bootstrap=args.bootstrap,
                            top_k=None if lesions else 1, random_state=args.seed)
    return result, time.perf_counter() - started


def _evaluate(args: argparse.Namespace) -> int:
    from .evaluation.report import write_report

    X, y = _labelled_frame(args)
    model = _classifier(args)
    result, seconds = _cross_validated(args, model, X, y)
    notes = [
        f"model: FusionClassifier, backbone {model.backbone}, booster {model.booster}, "
        f"target sensitivity {args.target_sensitivity:.0%}",
        f"data: {args.metadata} with images from {args.images}; {seconds:.0f} s",
    ]
    report = write_report(result, args.out, title=f"melagbm evaluation: {Path(args.metadata).name}", notes=notes)
    table = result.metrics
    print(table[["value", "ci_low", "ci_high"]].round(3).to_string())
    print(f"report written to {report}")
    return 0


def _model_columns(model: Any, frame: pd.DataFrame, args: argparse.Namespace) -> pd.DataFrame:
    """The columns the model was fitted on, in order; a one-line error naming any the CSV lacks."""
    expected = list(model.feature_names_in_)
    missing = [c for c in expected if c not in frame.columns]
    if missing:
        shown = [args.image_col if c == "image" else c for c in missing]
        raise UsageError(
            f"{args.metadata} lacks column(s) {shown} that the model {args.model} was fitted with; add them "
            f"(cells may be left empty where a value is unknown). It has {list(frame.columns)}"
        )
    return frame[expected]


def _predict(args: argparse.Namespace) -> int:
    model = _load_model(Path(args.model), allow_pickle=args.allow_pickle)
    model.set_params(on_bad_image=args.on_bad_image)
    frame = _model_columns(model, _read_frame(args), args)
    scores = model.predict_proba(frame)[:, 1]
    out = pd.DataFrame({"melanoma_probability": scores}, index=frame.index)
    if len(model.classes_) == 2:  # the model's own decision: its probability reaches threshold_
        decision = model.decision_function(frame)
        out["refer"] = pd.array(np.where(np.isnan(decision), None, (decision > 0).astype(int)), dtype="Int64")
    with atomic_write(Path(args.out)) as handle:
        handle.write(out.to_csv().encode())
    skipped = int(np.isnan(scores).sum())
    note = f" ({skipped} unreadable image(s) left blank)" if skipped else ""
    print(f"wrote {len(out)} predictions to {args.out}{note}")
    return 0


def _explain(args: argparse.Namespace) -> int:
    from .explain.report import write_explanation_report

    model = _load_model(Path(args.model), allow_pickle=args.allow_pickle)
    frame = _read_frame(args)
    groups = None
    if args.group_col:
        if args.group_col not in frame.columns:
            raise UsageError(f"{args.metadata} has no column {args.group_col!r} (--group-col); "
                             f"columns are {list(frame.columns)}")
        groups = frame[args.group_col].to_numpy()
    started = time.perf_counter()
    report = write_explanation_report(
        model, _model_columns(model, frame, args), args.out, groups=groups, n_bootstrap=args.bootstrap,
        title=f"melagbm explanation: {Path(args.metadata).name}",
        notes=[f"model: {args.model}", f"data: {args.metadata} with images from {args.images}"],
    )
    importance = pd.read_csv(Path(args.out) / "importance.csv", index_col=0)
    print(importance.round(3).to_string())
    print(f"report written to {report} ({time.perf_counter() - started:.0f} s)")
    return 0


def _embed(args: argparse.Namespace) -> int:
    from . import ImageEmbedder
    from .datasets import IMAGE_EXTENSIONS, frame_from_csv
    from .store.embedding_store import EmbeddingStore, default_store_path

    if args.metadata:
        paths = list(frame_from_csv(args.metadata, args.images, image_col=args.image_col)["image"])
    else:
        folder = Path(args.images)
        if not folder.is_dir():
            raise UsageError(f"image folder not found: {folder} (--images)")
        paths = sorted(str(p) for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    if not paths:
        raise UsageError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in {args.images}")
    store = EmbeddingStore(args.store or default_store_path())
    print(f"{len(paths)} images -> {store.root}", flush=True)
    for name in _backbones(args.backbone):
        embedder = ImageEmbedder(
            backbone=name, layers=args.layers, tta=args.tta,
            batch_size=args.batch_size, device=args.device, cache=store, verbose=0 if args.quiet else 1,
        ).fit()
        hits, misses = store.hits, store.misses
        started = time.perf_counter()
        try:
            embedder.transform(paths)
        except KeyboardInterrupt:
            print("\ninterrupted: finished batches are stored; rerun the same command to embed the rest")
            return 130
        print(
            f"{name} ({embedder.n_features_out_}-d, encoder {embedder.encoder_id_}): "
            f"{store.hits - hits} already stored, {store.misses - misses} embedded "
            f"in {time.perf_counter() - started:.1f} s",
            flush=True,
        )
    stats = store.stats()
    print(f"store: {stats['entries']} entries, {stats['encoders']} encoders, {stats['bytes'] / 2**20:.1f} MiB")
    return 0


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Each option's help with its default (where it has one worth showing); the description as written."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default in (None, False, argparse.SUPPRESS) or action.required or "default" in (action.help or ""):
            return action.help or ""
        return super()._get_help_string(action)


def _card(args: argparse.Namespace) -> int:
    from .card import to_html, to_markdown

    model = _load_model(args.model)
    card = getattr(model, "model_card_", None)
    if card is None:
        raise UsageError(f"{args.model} was saved by a melagbm without model cards: refit it to get one")
    text = to_html(card) if args.html else to_markdown(card)
    if args.out is None:
        print(text)
    else:
        with atomic_write(args.out) as out:
            out.write(text.encode())
        print(f"model card written to {args.out}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    import os

    if not args.model.is_file():
        raise UsageError(f"no model file {args.model}")
    if args.token_file is not None and not args.token_file.is_file():
        raise UsageError(f"no token file {args.token_file} (--token-file)")
    try:
        import uvicorn
    except ImportError as exc:
        raise UsageError("the service needs FastAPI and uvicorn: pip install 'melagbm[serve]'") from exc
    settings = {"MODEL": args.model.resolve(), "TOKEN_FILE": args.token_file.resolve() if args.token_file else "",
                "MAX_LESIONS": args.max_lesions, "MAX_REQUEST_BYTES": int(args.max_request_mb * (1 << 20)),
                "CORS_ORIGINS": ",".join(args.cors_origin or []), "STORE": args.store or "",
                "MAX_BATCH": args.max_batch, "MAX_IMAGE_PIXELS": args.max_image_pixels,
                "PIXELS_IN_FLIGHT": args.pixels_in_flight, "BYTES_IN_FLIGHT": int(args.mb_in_flight * (1 << 20))}
    os.environ.update({f"MELAGBM_SERVE_{key}": str(value) for key, value in settings.items()})
    uvicorn.run("melagbm.serve:app_from_environment", factory=True, host=args.host, port=args.port,
                workers=args.workers)
    return 0


def _parser() -> argparse.ArgumentParser:
    from . import FusionClassifier, __version__
    from .backbones.registry import ENCODERS

    defaults = FusionClassifier().get_params()
    default_backbone = ", ".join(np.atleast_1d(defaults["backbone"]))  # with spaces, so help wraps between names
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,  # before or after the command
                        help="show the full traceback of an error (for reporting a bug)")
    parser = argparse.ArgumentParser(prog="melagbm", description=DESCRIPTION, formatter_class=_HelpFormatter,
                                     parents=[common])
    parser.add_argument("--version", action="version", version=f"melagbm {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=help, description=help, formatter_class=_HelpFormatter,
                                   parents=[common])

    def add_model_options(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--backbone", default=default_backbone,
                         help=f"image encoder(s), comma-separated; packaged (offline): {', '.join(ENCODERS)}; "
                              "<name>@<size> feeds it size x size pixels")
        sub.add_argument("--booster", default=defaults["booster"], choices=["lightgbm", "xgboost"],
                         help="gradient-boosting library")
        sub.add_argument("--no-lesion-features", action="store_true",
                         help="leave out the lesion size/shape/colour features (faster: no segmentation)")
        sub.add_argument("--seed", type=int, default=0,
                         help="random seed of the internal splits (the API's random_state, 0 there too, so "
                              "reruns agree)")

    def add_diagnosis_option(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--diagnosis-col", default=None,
                         help="column of diagnoses (e.g. diagnosis, dx) the image probe learns, reading the "
                              "melanoma one: a training target only, never a feature, not needed to predict")

    def add_lesion_options(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--pixel-spacing-mm", type=float, default=None,
                         help="millimetres per pixel of the images, when known: lesion size in mm instead of pixels")

    def add_metadata_cols(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--metadata-cols", default="auto",
            help="feature columns: 'auto' (every column but the image, target and id columns, as in the Python "
                 "API; columns named like the label, e.g. diagnosis, are left out, others that give it away are "
                 "refused), 'known' (only the recognised age, sex and site columns) or a comma-separated list",
        )

    demo = command("demo", "fit and score on synthetic lesions (runs anywhere, offline)")
    demo.add_argument("--n-samples", type=int, default=360, help="synthetic images to draw")
    demo.add_argument("--folds", type=int, default=3, help="cross-validation folds, grouped by patient")
    add_model_options(demo)
    demo.set_defaults(run=_demo)

    def add_pickle_option(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--allow-pickle", action="store_true",
                         help="allow a .joblib/.pkl model (unpickling runs code: only for files you made)")

    def add_data_options(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--metadata", required=True, help="CSV with one row per image")
        sub.add_argument("--images", required=True, help="folder holding the images")
        sub.add_argument("--image-col", default="image_name", help="CSV column naming each image file")

    def add_evaluation_options(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--folds", type=int, default=5, help="cross-validation folds")
        sub.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for the CIs")
        sub.add_argument("--target-sensitivity", type=float, default=defaults["target_sensitivity"],
                         help="sensitivity the operating threshold is chosen for")

    fit = command("fit", "fit a FusionClassifier on a CSV and an image folder, and save it")
    add_data_options(fit)
    fit.add_argument("--target", default="target", help="label column (1 = melanoma)")
    fit.add_argument("--group-col", default=None,
                     help="patient/lesion id column (never a feature); default: patient_id or lesion_id when "
                          "present. One named patient_id also adds patient context")
    add_metadata_cols(fit)
    add_diagnosis_option(fit)
    fit.add_argument("--model", required=True,
                     help="where to write the fitted model (melagbm's safe format; .joblib for a pickle)")
    fit.add_argument("--on-bad-image", default="raise", choices=["raise", "skip"],
                     help="skip: train without rows whose image cannot be read")
    fit.add_argument("--evaluate", action="store_true",
                     help="first cross-validate as 'melagbm evaluate' does (same --folds, --bootstrap, --seed) and "
                          "write its metrics into the model card")
    add_evaluation_options(fit)
    add_model_options(fit)
    add_lesion_options(fit)
    fit.set_defaults(run=_fit)

    evaluate = command("evaluate", "grouped cross-validation with clinical metrics and CIs, written as a report")
    add_data_options(evaluate)
    evaluate.add_argument("--target", default="target", help="label column (1 = melanoma)")
    evaluate.add_argument("--group-col", default=None,
                          help="patient/lesion id column: folds never split a group (patient_id adds patient "
                               "context); without it, images of one patient may land on both sides")
    add_metadata_cols(evaluate)
    add_diagnosis_option(evaluate)
    evaluate.add_argument("--out", required=True, help="folder for report.md, roc.png, calibration.png, CSVs")
    add_evaluation_options(evaluate)
    add_model_options(evaluate)
    add_lesion_options(evaluate)
    evaluate.set_defaults(run=_evaluate)

    predict = command("predict", "write melanoma probabilities and referral decisions for a CSV and images")
    add_data_options(predict)
    predict.add_argument("--model", required=True, help="a model written by 'melagbm fit'")
    predict.add_argument("--out", required=True, help="CSV to write")
    predict.add_argument("--on-bad-image", default="raise", choices=["raise", "skip"],
                         help="skip: leave the probability blank for images that cannot be read")
    add_pickle_option(predict)
    predict.set_defaults(run=_predict)

    explain = command("explain", "SHAP importance of a fitted model on a CSV and images: PNG plots and a report")
    add_data_options(explain)
    explain.add_argument("--model", required=True, help="a model written by 'melagbm fit'")
    explain.add_argument("--out", required=True, help="folder for report.md, the PNGs and CSVs")
    explain.add_argument("--group-col", default=None,
                         help="patient/lesion id column the importance intervals resample (default: the model's)")
    explain.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for the intervals")
    add_pickle_option(explain)
    explain.set_defaults(run=_explain)

    embed = command("embed", "precompute embeddings into the store (resumable: reruns embed only what is missing)")
    embed.add_argument("--images", required=True, help="folder holding the images")
    embed.add_argument("--metadata", default=None, help="CSV naming the images to embed (default: every image)")
    embed.add_argument("--image-col", default="image_name", help="CSV column naming each image file")
    embed.add_argument("--backbone", default=default_backbone, help="encoder name(s), comma-separated")
    embed.add_argument("--layers", type=_layers, default=defaults["layers"],
                       help="feature levels pooled from each backbone (an integer, or auto: 4 for CNNs, 1 for "
                            "open_clip towers)")
    embed.add_argument("--tta", default=defaults["tta"], choices=sorted(TTA_MODES),
                       help="test-time augmentation averaged into each vector")
    embed.add_argument("--store", default=None, help="store folder (default: $MELAGBM_CACHE/embeddings, else "
                                                     "~/.cache/melagbm/embeddings)")
    embed.add_argument("--batch-size", type=int, default=defaults["batch_size"], help="images per forward pass")
    embed.add_argument("--device", default=defaults["device"], help="auto, cpu or cuda")
    embed.add_argument("--quiet", action="store_true", help="no progress bar")
    embed.set_defaults(run=_embed)

    card = command("card", "print a saved model's model card (training data, out-of-fold metrics, limits)")
    card.add_argument("model", type=Path, help="a .melagbm model file")
    card.add_argument("--html", action="store_true", help="a self-contained HTML page instead of Markdown")
    card.add_argument("--out", type=Path, default=None, help="write it to this file instead of printing it")
    card.set_defaults(run=_card)

    from dataclasses import fields

    from .serve import ServiceSettings  # (no FastAPI import: the app is made when the service starts)

    service = {setting.name: setting.default for setting in fields(ServiceSettings)}
    serve = command("serve", "serve a saved model over HTTP: POST /v1/predict, GET /v1/model, /healthz, /readyz")
    serve.add_argument("model", type=Path, help="a .melagbm model file (two classes, with images)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on")
    serve.add_argument("--workers", type=int, default=1,
                       help="worker processes, each with its own copy of the model (about 1.3 GB each)")
    serve.add_argument("--token-file", type=Path, default=None,
                       help="file holding the bearer token every /v1 route then asks for")
    serve.add_argument("--cors-origin", action="append", default=None,
                       help="an origin allowed to call from a browser (repeat; default: CORS off)")
    serve.add_argument("--max-lesions", type=int, default=service["max_lesions"], help="lesions per request")
    serve.add_argument("--max-request-mb", type=float, default=service["max_request_bytes"] / (1 << 20),
                       help="request body size limit")
    serve.add_argument("--max-image-pixels", type=int, default=service["max_image_pixels"],
                       help="pixels (width x height) of one image, read from its header before decoding")
    serve.add_argument("--max-batch", type=int, default=service["max_batch"],
                       help="lesions of concurrent requests run through the model as one batch (1: no batching)")
    serve.add_argument("--pixels-in-flight", type=int, default=service["pixels_in_flight"],
                       help="decoded pixels the requests in flight hold at once; the others wait their turn")
    serve.add_argument("--mb-in-flight", type=float, default=service["bytes_in_flight"] / (1 << 20),
                       help="request bodies (by Content-Length) the requests in flight hold at once; the others "
                            "wait before their body is read")
    serve.add_argument("--store", default=None,
                       help="embedding store for the clients' images ('auto': the default store; default: none)")
    serve.set_defaults(run=_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``melagbm`` command: 0 on success, 2 for a mistake in the input (one line)."""
    args = _parser().parse_args(argv)
    try:
        return int(args.run(args))
    except USER_ERRORS as exc:
        if getattr(args, "debug", False):
            raise
        message = in_command_words(" ".join(str(exc).split()) or type(exc).__name__, args, exc)
        print(f"melagbm {args.command}: error: {message} (--debug shows the traceback)", file=sys.stderr)
        return 2


def in_command_words(message: str, args: argparse.Namespace, error: BaseException) -> str:
    """An error of the Python API said in the command's words: its parameters as this command's options
    (``metadata_cols`` -> ``--metadata-cols``), ``X`` as the metadata CSV, the internal image column as the CSV's
    (``--image-col``), and for an unreadable image the option that skips it.

    Parameters
    ----------
    message : str
        The error's message, on one line.
    args : argparse.Namespace
        The command's parsed options.
    error : BaseException
        The error itself.

    Returns
    -------
    message : str
    """
    import re

    outside = r"(?<![\w\-/\\.'\"\[:]){}(?![\w\-/\\.'\":\]])"  # a word of the text, not of a path or a quoted name
    for option in sorted(vars(args), key=len, reverse=True):
        if "_" in option and option not in ("command", "run"):
            flag = "--" + option.replace("_", "-")
            message = re.sub(outside.format(re.escape(option)), lambda _: flag, message)
    metadata = getattr(args, "metadata", None)
    if metadata is not None:
        message = re.sub(outside.format("X"), lambda _: Path(metadata).name, message)
    image_col = getattr(args, "image_col", None)
    if image_col and image_col != "image":
        message = message.replace("column 'image'", f"column {image_col!r} (--image-col)")
    from .images.reading import ImageReadError

    if isinstance(error, ImageReadError) and getattr(args, "on_bad_image", None) == "raise":
        message += "; --on-bad-image skip leaves such rows out"
    return message


if __name__ == "__main__":
    sys.exit(main())
