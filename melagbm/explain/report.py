"""Write a model's SHAP explanation as a folder: PNG plots, CSV tables and a short markdown report."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._atomic import atomic_write
from .plots import colour_by_value, plot_beeswarm, plot_dependence, plot_importance, plot_site_cohorts

__all__ = ["lesion_size_measure", "write_explanation_report"]

#: How the lesion-size measurement is named on the plots (mm when a pixel spacing is known).
_SIZE_LABELS = {"lesion_size__diameter_mm": "lesion diameter (mm)",
                "lesion_size__diameter_px": "lesion diameter (pixels; no pixel spacing given)"}


def lesion_size_measure(explanation: Any) -> str | None:
    """The lesion-size feature to draw lesion-size dependence against: mm when measured, else pixels.

    Parameters
    ----------
    explanation : shap.Explanation
        Per-feature explanation, as made by ``FusionClassifier.explain(X)``.

    Returns
    -------
    name : str or None
        ``lesion_size__diameter_mm`` or ``lesion_size__diameter_px``, the first with a
        value in some row; None when neither has.
    """
    names = list(explanation.feature_names)
    for name in ("lesion_size__diameter_mm", "lesion_size__diameter_px"):
        if name in names and not np.isnan(explanation.data[:, names.index(name)]).all():
            return name
    return None


def _save(draw: Any, path: Path, size: tuple[float, float]) -> str:
    import matplotlib.pyplot as plt

    figure, ax = plt.subplots(figsize=size, dpi=110)
    try:
        draw(ax)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", bbox_inches="tight")
    finally:
        plt.close(figure)
    with atomic_write(path) as out:
        out.write(buffer.getvalue())
    return path.name


def write_explanation_report(
    model: Any,
    X: pd.DataFrame,
    directory: str | os.PathLike,
    *,
    groups: Any = None,
    title: str = "melagbm explanation",
    notes: list[str] | None = None,
    n_bootstrap: int = 1000,
) -> Path:
    """Explain ``X`` with a fitted FusionClassifier and write the plots and tables; returns ``report.md``.

    Writes ``importance.png`` (mean |SHAP| per family with bootstrap intervals),
    ``beeswarm.png`` (families), ``dependence_age.png`` and ``dependence_lesion_size.png``
    when the model has those families, ``site_cohorts.png`` when it has a site,
    ``importance.csv``, ``shap_families.csv`` (per row) and ``report.md``.

    Parameters
    ----------
    model : FusionClassifier
        A fitted two-class model.
    X : DataFrame
        The rows to explain, with the columns fit saw; rows whose image is unreadable are left out.
    directory : str or path-like
        Folder to write to (created when missing; files in it are replaced).
    groups : array-like of shape (n_samples,), default=None
        Patient or lesion id per row, resampled whole by the bootstrap; None: ``model.groups_of(X)``,
        else single rows.
    title : str, default="melagbm explanation"
        Heading of ``report.md``.
    notes : list of str, default=None
        Lines listed under the heading, e.g. where ``X`` comes from.
    n_bootstrap : int, default=1000
        Bootstrap resamples behind the importance intervals.

    Returns
    -------
    report : Path
        The ``report.md`` written.
    """
    from .contributions import family_importance, group_explanation

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if len(model.classes_) != 2:
        raise ValueError(f"the explanation report is for two-class models; this one has {len(model.classes_)} classes")
    explanation = model.explain(X)
    explained = ~np.isnan(explanation.values).any(axis=1)  # rows with an unreadable image have no values
    if not explained.any():
        raise ValueError("no row could be explained: every image was unreadable")
    groups = model.groups_of(X) if groups is None else np.asarray(groups)
    explanation, X = explanation[explained], X[explained]
    groups = None if groups is None else groups[explained]
    grouped = group_explanation(explanation, model.feature_families_)
    importance = family_importance(grouped, groups, n_bootstrap=n_bootstrap)
    families = list(grouped.feature_names)

    size_feature = lesion_size_measure(explanation) if "lesion size" in families else None
    size = None
    if size_feature is not None:
        size = (_SIZE_LABELS[size_feature], explanation.data[:, list(explanation.feature_names).index(size_feature)])
    short = None if size is None else ("diameter" + (", mm" if size_feature.endswith("_mm") else ", px"), size[1])
    figures = [
        ("importance", _save(lambda ax: plot_importance(importance, ax=ax, show=False), directory / "importance.png",
                             (6.5, 0.45 * len(families) + 1.5))),
        ("beeswarm", _save(lambda ax: plot_beeswarm(colour_by_value(grouped, short), ax=ax, show=False),
                           directory / "beeswarm.png", (8.5, 0.45 * len(families) + 1.8))),
    ]
    if "age" in families:
        figures.append(("dependence on age", _save(
            lambda ax: plot_dependence(grouped, "age", ax=ax, show=False), directory / "dependence_age.png", (6, 4.5)
        )))
    if size is not None:
        figures.append(("dependence on lesion size", _save(
            lambda ax: plot_dependence(grouped, "lesion size", values=size[1], label=size[0], ax=ax, show=False),
            directory / "dependence_lesion_size.png", (6, 4.5),
        )))
    if "site" in families:
        sites = grouped.display_data[:, families.index("site")]
        figures.append(("families by anatomical site", _save(
            lambda ax: plot_site_cohorts(grouped, sites, groups=groups, ax=ax, show=False),
            directory / "site_cohorts.png",
            (8.0, min(18.0, 1.5 + 0.17 * len(families) * len(set(map(str, sites))))),
        )))

    per_row = pd.DataFrame(grouped.values, columns=families, index=X.index).assign(base_value=grouped.base_values)
    with atomic_write(directory / "shap_families.csv") as out:
        out.write(per_row.to_csv().encode())
    with atomic_write(directory / "importance.csv") as out:
        out.write(importance.to_csv().encode())

    unit = "groups" if groups is not None else "rows"
    unreadable = int((~explained).sum())
    skipped = f" ({unreadable} left out: unreadable image)" if unreadable else ""
    lines = [f"# {title}", "", *(f"- {note}" for note in notes or []),
             f"- {len(X)} rows explained{skipped}; exact tree SHAP of the booster's margin (log-odds); "
             f"95% intervals from {n_bootstrap} bootstrap resamples of {unit}.",
             "- How to read it: a family's SHAP value is how far it pushes one lesion's melanoma score (in log-odds) "
             "away from the average lesion; positive pushes towards melanoma. The importance is the average size "
             "of that push, in either direction.", "",
             "| family | average push on the melanoma odds (mean abs SHAP) [95% CI] | share |", "|---|---|---|"]
    lines += [
        f"| {family} | {row.mean_abs_shap:.3f} [{row.ci_low:.3f}, {row.ci_high:.3f}] | {row.share:.1%} |"
        for family, row in importance.iterrows()
    ]
    order = ", ".join(importance.index)
    lines += ["", f"Order of importance: {order}.", ""]
    lines += [f"## {caption}\n\n![{caption}]({name})\n" for caption, name in figures]
    report = directory / "report.md"
    with atomic_write(report) as out:
        out.write("\n".join(lines).encode())
    return report
