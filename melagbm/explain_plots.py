"""Plots of SHAP explanations: family importance, beeswarm, dependence and site cohorts.

Each function draws on ``ax`` (a new figure when None), shows the figure when
``show`` is true, and returns the Axes. Beeswarm, dependence and cohort plots are
drawn by shap's own plotting, so they look the way shap users expect.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .plotting import _axes
from .plotting import _finish as _show

__all__ = ["plot_beeswarm", "plot_dependence", "plot_importance", "plot_site_cohorts"]


def _explained_rows(explanation: Any) -> Any:
    """The rows that have values (unreadable images have none); two-class explanations only."""
    if np.ndim(explanation.values) != 2:
        raise ValueError(
            f"this plot takes one output per row; the explanation has shape {np.shape(explanation.values)} "
            "(several classes): pass explanation[..., k] for class k"
        )
    return explanation[~np.isnan(explanation.values).any(axis=1)]


def _finish(ax: Any, show: bool) -> Any:
    ax.figure.tight_layout()  # shap's long labels need it
    return _show(ax, show)


def plot_importance(importance: pd.DataFrame, *, ax: Any = None, show: bool = True, title: str | None = None) -> Any:
    """Horizontal bars of mean |SHAP| per family with their bootstrap intervals.

    ``importance`` is the DataFrame of ``FusionClassifier.feature_importance``.
    """
    ax = _axes(ax, (6.0, 0.45 * len(importance) + 1.2))
    table = importance.iloc[::-1]
    mean = table["mean_abs_shap"].to_numpy()
    error = None
    if table[["ci_low", "ci_high"]].notna().all().all():
        error = np.vstack([mean - table["ci_low"].to_numpy(), table["ci_high"].to_numpy() - mean])
    ax.barh(range(len(table)), mean, xerr=error, color="#1E88E5", capsize=3)
    ax.set_yticks(range(len(table)), [str(name) for name in table.index])
    ax.set_xlabel("mean |SHAP value| (log-odds)" + (", 95% CI" if error is not None else ""))
    ax.set_title(title or "What drives the melanoma score")
    ax.spines[["top", "right"]].set_visible(False)
    return _finish(ax, show)


def plot_beeswarm(explanation: Any, *, max_display: int = 12, ax: Any = None, show: bool = True) -> Any:
    """shap's beeswarm: one dot per row and feature (or family), coloured by its value."""
    import shap

    explanation = _explained_rows(explanation)
    ax = _axes(ax, (7.0, 0.4 * min(max_display, explanation.shape[1]) + 1.5))
    shap.plots.beeswarm(explanation, max_display=max_display, ax=ax, show=False, plot_size=None)
    return _finish(ax, show)


def plot_dependence(
    explanation: Any,
    feature: str,
    *,
    values: Any = None,
    label: str | None = None,
    ax: Any = None,
    show: bool = True,
) -> Any:
    """How one feature's (or family's) SHAP value moves with a measured quantity.

    ``values`` (one per row) sets the x axis; by default the column's own data. For a
    family of several columns (lesion size) pass a representative measurement, e.g.
    ``explain(X).data`` of ``lesion_size__diameter_mm``.
    """
    import shap

    names = list(explanation.feature_names)
    if feature not in names:
        raise ValueError(f"{feature!r} is not a column of the explanation; it has {names}")
    column = names.index(feature)
    x = explanation.data[:, column] if values is None else np.asarray(values, dtype=float)
    if len(x) != len(explanation.values):
        raise ValueError(f"values has {len(x)} entries but the explanation has {len(explanation.values)} rows")
    pair = _explained_rows(shap.Explanation(  # the family's values against the chosen measurement
        values=explanation.values[:, [column]], base_values=explanation.base_values, data=x[:, None],
        feature_names=[label or feature],
    ))
    single = pair[:, 0]
    ax = _axes(ax, (6.0, 4.5))
    shap.plots.scatter(single, ax=ax, show=False)
    ax.set_ylabel(f"SHAP value of {feature} (log-odds)")  # shap would name the x quantity here
    ax.set_xlabel(label or feature)
    return _finish(ax, show)


def plot_site_cohorts(
    explanation: Any, sites: Any, *, max_display: int = 10, min_rows: int = 10, ax: Any = None, show: bool = True
) -> Any:
    """Mean |SHAP| per feature (or family) within each anatomical-site cohort, side by side.

    ``sites`` gives each row's site; sites with fewer than ``min_rows`` rows are pooled
    as "other" (their means would be noise).
    """
    import shap

    labels = pd.Series(np.asarray(sites, dtype=object)).fillna("unknown").astype(str)
    if len(labels) != len(explanation.values):
        raise ValueError(f"sites has {len(labels)} entries but the explanation has {len(explanation.values)} rows")
    counts = labels.value_counts()
    labels = labels.where(labels.map(counts) >= min_rows, "other")
    keep = ~np.isnan(np.asarray(explanation.values, dtype=float)).reshape(len(labels), -1).any(axis=1)
    cohorts = _explained_rows(explanation).cohorts(list(labels[keep]))
    ax = _axes(ax, (7.0, 0.5 * min(max_display, explanation.shape[1]) * max(1, len(set(labels))) ** 0.5 + 1.5))
    shap.plots.bar(cohorts.abs.mean(0), max_display=max_display, ax=ax, show=False)
    ax.set_xlabel("mean |SHAP value| (log-odds) per site")
    return _finish(ax, show)
