"""Command line: ``melagbm demo | fit | predict | evaluate | explain | embed``."""

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
from .embedding import TTA_MODES

__all__ = ["main"]


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
        raise SystemExit(f"error: no model file {path}")
    if path.suffix in (".joblib", ".pkl", ".pickle"):
        if not allow_pickle:
            raise SystemExit(
                f"error: {path} is a pickle: loading it runs code from it. Pass --allow-pickle if you made it "
                "yourself, or refit and save as .melagbm"
            )
        import joblib

        return joblib.load(path)
    return load(path)


def _model_options(args: argparse.Namespace) -> dict:
    options: dict = {"booster": args.booster, "random_state": args.seed}
    if args.backbone:
        names = tuple(name.strip() for name in args.backbone.split(",") if name.strip())
        options["backbone"] = names[0] if len(names) == 1 else names
    if args.no_lesion_features:
        options["lesion_features"] = False
    return options


def _demo(args: argparse.Namespace) -> int:
    from . import FusionClassifier
    from .datasets import make_synthetic
    from .evaluation import cross_validate

    started = time.perf_counter()
    X, y, groups = make_synthetic(args.n_samples, random_state=args.seed)
    print(
        f"melagbm demo on SYNTHETIC lesions: {len(X)} images, {groups.nunique()} patients, "
        f"{int(y.sum())} melanomas; backbone {FusionClassifier(**_model_options(args)).backbone}, "
        f"booster {args.booster}, "
        f"{args.folds}-fold CV grouped by patient"
    )
    with tempfile.TemporaryDirectory(prefix="melagbm-demo-") as store:
        common = dict(cache=store, **_model_options(args))
        models = {
            "fused (image + metadata)": lambda: FusionClassifier(**common),
            "image only": lambda: FusionClassifier(metadata_cols=[], **common),
            "metadata only": lambda: FusionClassifier(image_col=None, **common),
        }
        rows = {}
        for name, make in models.items():
            data = X.drop(columns="image") if name == "metadata only" else X
            result = cross_validate(make(), data, y, groups, n_splits=args.folds, n_bootstrap=0,
                                    random_state=args.seed)
            rows[name] = result.metrics["value"]
    table = pd.DataFrame(rows).T.rename_axis(columns=None)[["roc_auc", "pauc_80", "sens_at_spec90"]].rename(
        columns={"roc_auc": "ROC AUC", "pauc_80": "pAUC>80%TPR", "sens_at_spec90": "sens@90%spec"}
    )
    print(table.round(3).to_string())
    print(f"done in {time.perf_counter() - started:.0f} s (synthetic data: numbers show the plumbing, not clinical skill)")
    return 0


def _read_frame(args: argparse.Namespace) -> pd.DataFrame:
    from .datasets import frame_from_csv

    return frame_from_csv(args.metadata, args.images, image_col=args.image_col)


def _labelled_frame(args: argparse.Namespace) -> tuple[pd.DataFrame, pd.Series]:
    """The CSV's images, group and feature columns, and its target."""
    from .metadata import AGE_COLUMNS, SEX_COLUMNS, SITE_COLUMNS

    frame = _read_frame(args)
    if args.target not in frame.columns:
        raise SystemExit(f"error: {args.metadata} has no target column {args.target!r}")
    y = frame.pop(args.target)
    if args.metadata_cols:
        metadata = [c.strip() for c in args.metadata_cols.split(",") if c.strip()]
    else:  # only recognised fields: other columns (diagnosis, ...) may leak the label
        metadata = [
            next(c for c in candidates if c in frame.columns)
            for candidates in (AGE_COLUMNS, SEX_COLUMNS, SITE_COLUMNS)
            if any(c in frame.columns for c in candidates)
        ]
    keep = ["image"] + ([args.group_col] if args.group_col else []) + metadata
    missing = [c for c in keep if c not in frame.columns]
    if missing:
        raise SystemExit(f"error: {args.metadata} has no column(s) {missing}")
    return frame[keep], y


def _fit(args: argparse.Namespace) -> int:
    from . import FusionClassifier

    X, y = _labelled_frame(args)
    model = FusionClassifier(
        group_col=args.group_col, on_bad_image=args.on_bad_image, verbose=1, **_model_options(args)
    ).fit(X, y)
    _save_model(model, Path(args.model))
    print(f"fitted on {len(X)} images; features: {', '.join(model.feature_names_)}")
    print(f"model written to {args.model}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from . import FusionClassifier
    from .evaluation import cross_validate
    from .report import write_report

    X, y = _labelled_frame(args)
    groups = X[args.group_col] if args.group_col else None
    model = FusionClassifier(
        group_col=args.group_col, target_sensitivity=args.target_sensitivity, verbose=1, **_model_options(args)
    )
    if groups is None:
        print("warning: no --group-col: images of one patient may land in both training and test folds")
    started = time.perf_counter()
    result = cross_validate(model, X, y, groups, n_splits=args.folds, n_bootstrap=args.bootstrap,
                            random_state=args.seed)
    notes = [
        f"model: FusionClassifier, backbone {model.backbone}, booster {model.booster}, "
        f"target sensitivity {args.target_sensitivity:.0%}",
        f"data: {args.metadata} with images from {args.images}; {time.perf_counter() - started:.0f} s",
    ]
    report = write_report(result, args.out, title=f"melagbm evaluation: {Path(args.metadata).name}", notes=notes)
    table = result.metrics
    print(table[["value", "ci_low", "ci_high"]].round(3).to_string())
    print(f"report written to {report}")
    return 0


def _predict(args: argparse.Namespace) -> int:
    model = _load_model(Path(args.model), allow_pickle=args.allow_pickle)
    model.set_params(on_bad_image=args.on_bad_image)
    frame = _read_frame(args)[list(model.feature_names_in_)]
    scores = model.predict_proba(frame)[:, 1]
    out = pd.DataFrame({"melanoma_probability": scores}, index=frame.index)
    if len(model.classes_) == 2:  # the model's own decision: its probability reaches threshold_
        decision = model.decision_function(frame)
        out["refer"] = np.where(np.isnan(decision), np.nan, decision > 0)
    with atomic_write(Path(args.out)) as handle:
        handle.write(out.to_csv().encode())
    skipped = int(np.isnan(scores).sum())
    note = f" ({skipped} unreadable image(s) left blank)" if skipped else ""
    print(f"wrote {len(out)} predictions to {args.out}{note}")
    return 0


def _explain(args: argparse.Namespace) -> int:
    from .explain_report import write_explanation_report

    model = _load_model(Path(args.model), allow_pickle=args.allow_pickle)
    frame = _read_frame(args)
    groups = None
    if args.group_col:
        if args.group_col not in frame.columns:
            raise SystemExit(f"error: {args.metadata} has no column {args.group_col!r}")
        groups = frame[args.group_col].to_numpy()
    started = time.perf_counter()
    report = write_explanation_report(
        model, frame[list(model.feature_names_in_)], args.out, groups=groups, n_bootstrap=args.bootstrap,
        title=f"melagbm explanation: {Path(args.metadata).name}",
        notes=[f"model: {args.model}", f"data: {args.metadata} with images from {args.images}"],
    )
    importance = pd.read_csv(Path(args.out) / "importance.csv", index_col=0)
    print(importance.round(3).to_string())
    print(f"report written to {report} ({time.perf_counter() - started:.0f} s)")
    return 0


def _embed(args: argparse.Namespace) -> int:
    from . import FusionClassifier, ImageEmbedder
    from .datasets import IMAGE_EXTENSIONS, frame_from_csv
    from .store import EmbeddingStore, default_store_path

    if args.metadata:
        paths = list(frame_from_csv(args.metadata, args.images, image_col=args.image_col)["image"])
    else:
        folder = Path(args.images)
        if not folder.is_dir():
            raise SystemExit(f"error: image folder not found: {folder}")
        paths = sorted(str(p) for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    if not paths:
        raise SystemExit(f"error: no images ({', '.join(IMAGE_EXTENSIONS)}) in {args.images}")
    defaults = FusionClassifier().get_params()
    backbones = args.backbone.split(",") if args.backbone else list(np.atleast_1d(defaults["backbone"]))
    store = EmbeddingStore(args.store or default_store_path())
    print(f"{len(paths)} images -> {store.root}", flush=True)
    for name in (b.strip() for b in backbones if b.strip()):
        embedder = ImageEmbedder(
            backbone=name, layers=args.layers or defaults["layers"], tta=args.tta or defaults["tta"],
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


def _parser() -> argparse.ArgumentParser:
    from . import __version__
    from .backbones import ENCODERS

    parser = argparse.ArgumentParser(prog="melagbm", description=__doc__)
    parser.add_argument("--version", action="version", version=f"melagbm {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    def add_model_options(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--backbone", default=None,
            help=f"encoder name(s), comma-separated (default: FusionClassifier's); packaged: {', '.join(ENCODERS)}",
        )
        sub.add_argument("--booster", default="lightgbm", choices=["lightgbm", "xgboost"])
        sub.add_argument("--no-lesion-features", action="store_true",
                         help="leave out the lesion size/shape/colour features (faster: no segmentation)")
        sub.add_argument("--seed", type=int, default=0)

    demo = commands.add_parser("demo", help="fit and score on synthetic lesions (runs anywhere)")
    demo.add_argument("--n-samples", type=int, default=360)
    demo.add_argument("--folds", type=int, default=3)
    add_model_options(demo)
    demo.set_defaults(run=_demo)

    def add_pickle_option(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--allow-pickle", action="store_true",
                         help="allow a .joblib/.pkl model (unpickling runs code: only for files you made)")

    def add_data_options(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--metadata", required=True, help="CSV with one row per image")
        sub.add_argument("--images", required=True, help="folder holding the images")
        sub.add_argument("--image-col", default="image_name", help="CSV column naming each image file")

    fit = commands.add_parser("fit", help="fit a FusionClassifier on a CSV and an image folder")
    add_data_options(fit)
    fit.add_argument("--target", default="target", help="label column (1 = melanoma)")
    fit.add_argument("--group-col", default=None,
                     help="patient/lesion id column (never a feature; one named patient_id also adds patient context)")
    fit.add_argument("--metadata-cols", default=None,
                     help="comma-separated feature columns (default: the recognised age, sex and site columns)")
    fit.add_argument("--model", required=True,
                     help="where to write the fitted model (melagbm's safe format; .joblib for a pickle)")
    fit.add_argument("--on-bad-image", default="raise", choices=["raise", "skip"],
                     help="skip: train without rows whose image cannot be read")
    add_model_options(fit)
    fit.set_defaults(run=_fit)

    evaluate = commands.add_parser(
        "evaluate", help="grouped cross-validation with clinical metrics and CIs, written as a report"
    )
    add_data_options(evaluate)
    evaluate.add_argument("--target", default="target", help="label column (1 = melanoma)")
    evaluate.add_argument("--group-col", default=None,
                          help="patient/lesion id column: folds never split a group (patient_id adds patient context)")
    evaluate.add_argument("--metadata-cols", default=None,
                          help="comma-separated feature columns (default: the recognised age, sex and site columns)")
    evaluate.add_argument("--out", required=True, help="folder for report.md, roc.png, calibration.png, CSVs")
    evaluate.add_argument("--folds", type=int, default=5)
    evaluate.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for the CIs")
    evaluate.add_argument("--target-sensitivity", type=float, default=0.9,
                          help="sensitivity the operating threshold is chosen for")
    add_model_options(evaluate)
    evaluate.set_defaults(run=_evaluate)

    predict = commands.add_parser("predict", help="write melanoma probabilities for a CSV and images")
    add_data_options(predict)
    predict.add_argument("--model", required=True)
    predict.add_argument("--out", required=True, help="CSV to write")
    predict.add_argument("--on-bad-image", default="raise", choices=["raise", "skip"],
                         help="skip: leave the probability blank for images that cannot be read")
    add_pickle_option(predict)
    predict.set_defaults(run=_predict)

    explain = commands.add_parser(
        "explain", help="SHAP importance of a fitted model on a CSV and images: PNG plots and a markdown report"
    )
    add_data_options(explain)
    explain.add_argument("--model", required=True)
    explain.add_argument("--out", required=True, help="folder for report.md, the PNGs and CSVs")
    explain.add_argument("--group-col", default=None,
                         help="patient/lesion id column the importance intervals resample (default: the model's)")
    explain.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for the intervals")
    add_pickle_option(explain)
    explain.set_defaults(run=_explain)

    embed = commands.add_parser(
        "embed", help="precompute embeddings into the store (resumable: reruns embed only what is missing)"
    )
    embed.add_argument("--images", required=True, help="folder holding the images")
    embed.add_argument("--metadata", default=None, help="CSV naming the images to embed (default: every image)")
    embed.add_argument("--image-col", default="image_name", help="CSV column naming each image file")
    embed.add_argument("--backbone", default=None, help="encoder name(s), comma-separated (default: FusionClassifier's)")
    embed.add_argument("--layers", type=int, default=None, help="feature levels (default: FusionClassifier's)")
    embed.add_argument("--tta", default=None, choices=sorted(TTA_MODES))
    embed.add_argument("--store", default=None, help="store folder (default: the user cache, $MELAGBM_CACHE)")
    embed.add_argument("--batch-size", type=int, default=32)
    embed.add_argument("--device", default="auto")
    embed.add_argument("--quiet", action="store_true", help="no progress bar")
    embed.set_defaults(run=_embed)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``melagbm`` command."""
    args = _parser().parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
