"""Write an evaluation as a folder: markdown report, ROC and calibration PNGs, CSV tables."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import numpy as np

from .._atomic import atomic_write
from .metrics import CVResult
from .plots import plot_calibration, plot_roc

__all__ = ["write_report"]


def _save_png(draw: Any, path: Path) -> None:
    from matplotlib.figure import Figure  # no pyplot: no GUI backend, safe in any process

    figure = Figure(figsize=(5.5, 5.5), dpi=110)
    draw(figure.add_subplot())
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    with atomic_write(path) as out:
        out.write(buffer.getvalue())


def _write_text(path: Path, text: str) -> None:
    with atomic_write(path) as out:
        out.write(text.encode())


def write_report(
    result: CVResult, directory: str | os.PathLike, *, title: str, notes: list[str] | None = None
) -> Path:
    """Write ``report.md``, ``roc.png``, ``calibration.png``, ``metrics.csv`` and ``oof.csv``; returns the report.

    Parameters
    ----------
    result : CVResult
        A cross-validation, as :func:`~melagbm.evaluation.cross_validate` returns it.
    directory : str or os.PathLike
        Folder to write into, created (with its parents) when missing; files of the same names are replaced.
    title : str
        Heading of the report.
    notes : list of str, default=None
        Bullet points under the summary paragraph; None adds none.

    Returns
    -------
    report : Path
        The path of ``report.md`` in ``directory``.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    oof, metrics = result.oof, result.metrics
    thresholds = oof["threshold"].dropna().unique()
    _save_png(lambda ax: plot_roc(oof["y"], oof["proba"], predicted=oof["predicted"],
                                   groups=oof["group"] if oof.get("group") is not None and oof["group"].notna().all()
                                   else None, ax=ax, show=False),
              directory / "roc.png")
    _save_png(lambda ax: plot_calibration(oof["y"], oof["proba"], ax=ax, show=False), directory / "calibration.png")
    _write_text(directory / "metrics.csv", metrics.to_csv())
    _write_text(directory / "oof.csv", oof.to_csv())

    level = f"{result.confidence:.0%}"
    unit = "group" if result.info.get("grouped") else "image (no groups given: optimistic if patients repeat)"
    lines = [
        f"# {title}",
        "",
        f"{len(oof)} images, {int(oof['y'].sum())} melanomas ({oof['y'].mean():.1%}), "
        f"{oof['group'].nunique()} groups; {result.n_splits}-fold cross-validation stratified by label and "
        f"split by {unit}. Every number comes from out-of-fold predictions.",
        *([""] + [f"- {note}" for note in notes] if notes else []),
        "",
        f"## Metrics ({level} confidence intervals: bootstrap resampling whole groups)",
        "",
        f"| metric | value | {level} CI |",
        "|---|---|---|",
    ]
    for _, row in metrics.iterrows():
        interval = "n/a" if np.isnan(row["ci_low"]) else f"{row['ci_low']:.3f} - {row['ci_high']:.3f}"
        lines.append(f"| {row['label']} | {row['value']:.3f} | {interval} |")
    lines += ["", "## Decisions at the operating threshold", ""]
    if len(thresholds):
        lines.append(
            f"Each fold's model refers an image when its melanoma probability reaches the threshold it chose "
            f"on its own training folds (range {thresholds.min():.4f} - {thresholds.max():.4f})."
        )
    matrix = result.confusion_matrix()
    lines += ["", "| | " + " | ".join(matrix.columns) + " |", "|---|---|---|"]
    lines += [f"| {name} | " + " | ".join(str(int(v)) for v in row) + " |" for name, row in matrix.iterrows()]
    referred = int(matrix.iloc[:, 1].sum())
    lines += [
        "",
        f"{referred} of {len(oof)} images referred ({referred / len(oof):.1%}); "
        f"{int(matrix.iloc[1, 0])} melanomas missed.",
        "",
        "## Plots",
        "",
        "![ROC curve](roc.png)",
        "![Calibration](calibration.png)",
        "",
        "Out-of-fold predictions: `oof.csv`; metrics with intervals: `metrics.csv`.",
        "",
    ]
    report = directory / "report.md"
    _write_text(report, "\n".join(lines))
    return report
