"""Plots of SHAP explanations: family importance, beeswarm, dependence and site cohorts.

Each function draws on ``ax`` (a new figure when None), shows the figure when
``show`` is true, and returns the Axes. Beeswarm and dependence plots are drawn by
shap's own plotting, so they look the way shap users expect; every plot says in
words what its axis means to a clinician ("push on the melanoma odds") and keeps the
technical name (SHAP value, log-odds) in its caption.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from .._figures import axes, finish
from .._resampling import bootstrap_weights

__all__ = ["PUSH_LABEL", "colour_by_value", "plot_beeswarm", "plot_dependence", "plot_importance",
           "plot_site_cohorts"]

#: What a SHAP value means to a reader; the technical name goes in the caption.
PUSH_LABEL = "average push on the melanoma odds"
_SHAP_CAPTION = "mean |SHAP value| of the booster's log-odds"
#: Axis labels of one-column families whose unit the data does not carry.
UNITS = {"age": "age (years)"}


def _caption(ax: Any, text: str) -> None:
    """A small caption under the plot."""
    ax.figure.text(0.01, 0.0, text, fontsize=7.5, color="#555555", ha="left", va="top", wrap=True)


def colour_by_value(grouped: Any, size: tuple[str, np.ndarray] | None = None) -> Any:
    """``grouped`` (a per-family Explanation) with data a beeswarm can colour and labels that say how.

    age keeps its years; sex becomes 1 = male, 0 = female; "lesion size" takes
    ``size`` = (label, one measurement per row), e.g. the diameter; other one-column
    numeric families keep their value. Site and other categories, and families of
    several columns, have no order to colour by: NaN (grey; categories say so in their label,
    :func:`plot_beeswarm`'s caption explains the rest).

    Parameters
    ----------
    grouped : shap.Explanation
        Per-family explanation, as made by ``FusionClassifier.explain(X, grouped=True)``.
    size : tuple of (str, array-like of shape (n,)), default=None
        Label and one measurement per row to colour "lesion size" by; None leaves it
        as its ``data`` (NaN, grey, for a family of several columns).

    Returns
    -------
    coloured : shap.Explanation
        ``grouped``'s values and base values, with ``data`` to colour by and
        ``feature_names`` that say what the colours mean.
    """
    import shap

    names = list(grouped.feature_names)
    data = np.full(np.shape(grouped.values), np.nan)
    display = grouped.display_data if grouped.display_data is not None else np.full(np.shape(grouped.values), None)
    labels = []
    for position, family in enumerate(names):
        shown = np.asarray(display, dtype=object)[:, position]
        values = np.asarray(grouped.data, dtype=float)[:, position]
        if family == "sex":
            data[:, position] = pd.Series(shown).map({"male": 1.0, "female": 0.0}).to_numpy(dtype=float)
            labels.append("sex (red male, blue female)")
        elif family == "lesion size" and size is not None:
            data[:, position] = np.asarray(size[1], dtype=float)
            labels.append(f"lesion size (colour: {size[0]})")
        elif np.isnan(values).all():
            labels.append(f"{family} (grey: several columns)")
        elif any(isinstance(v, str) for v in shown):
            labels.append(f"{family} (grey: categories)")
        else:
            data[:, position] = values
            labels.append(UNITS.get(family, family))
    return shap.Explanation(values=grouped.values, base_values=grouped.base_values, data=data,
                            feature_names=labels)


def _explained_rows(explanation: Any) -> Any:
    """The rows that have values (unreadable images have none); two-class explanations only."""
    if np.ndim(explanation.values) != 2:
        raise ValueError(
            f"this plot takes one output per row; the explanation has shape {np.shape(explanation.values)} "
            "(several classes): pass explanation[..., k] for class k"
        )
    return explanation[~np.isnan(explanation.values).any(axis=1)]


def _laid_out(ax: Any, show: bool) -> Any:
    ax.figure.tight_layout()  # shap's long labels need it
    return finish(ax, show)


def plot_importance(importance: pd.DataFrame, *, ax: Any = None, show: bool = True, title: str | None = None) -> Any:
    """Horizontal bars of mean |SHAP| per family with their bootstrap intervals.

    ``importance`` is the DataFrame of ``FusionClassifier.feature_importance``.

    Parameters
    ----------
    importance : DataFrame
        One row per family, most important first, with columns ``mean_abs_shap``,
        ``ci_low`` and ``ci_high`` (no error bars when any interval is NaN).
    ax : matplotlib Axes, default=None
        Where to draw; None draws on a new figure.
    show : bool, default=True
        Call ``plt.show()`` when done.
    title : str, default=None
        Title of the plot; None: "What drives the melanoma score".

    Returns
    -------
    ax : matplotlib Axes
        The Axes drawn on.
    """
    ax = axes(ax, (6.0, 0.45 * len(importance) + 1.2))
    table = importance.iloc[::-1]
    mean = table["mean_abs_shap"].to_numpy()
    error = None
    if table[["ci_low", "ci_high"]].notna().all().all():
        error = np.vstack([mean - table["ci_low"].to_numpy(), table["ci_high"].to_numpy() - mean])
    ax.barh(range(len(table)), mean, xerr=error, color="#1E88E5", capsize=3)
    ax.set_yticks(range(len(table)), [str(name) for name in table.index])
    ax.set_xlabel(PUSH_LABEL + (" (bars: 95% interval)" if error is not None else ""))
    ax.set_title(title or "What drives the melanoma score")
    ax.spines[["top", "right"]].set_visible(False)
    _caption(ax, f"Bar length: {_SHAP_CAPTION} over the rows explained (how far a family moves a lesion's "
                 "score, in either direction). Interval: bootstrap over patients/lesions.")
    return _laid_out(ax, show)


def plot_beeswarm(
    explanation: Any, *, max_display: int = 12, title: str | None = None, ax: Any = None, show: bool = True
) -> Any:
    """shap's beeswarm: one dot per row and feature (or family), coloured by its value.

    For families, pass :func:`colour_by_value` of the grouped explanation, so that sex,
    age and lesion size are coloured by something a reader can name.

    Parameters
    ----------
    explanation : shap.Explanation
        Per-feature or per-family explanation with one output per row (two classes; for
        more, pass ``explanation[..., k]``). Rows with NaN values (unreadable images) are left out.
    max_display : int, default=12
        Most features (or families) shown; shap sums the rest into one row.
    title : str, default=None
        Title of the plot; None: "How each family pushes each lesion's melanoma score".
    ax : matplotlib Axes, default=None
        Where to draw; None draws on a new figure.
    show : bool, default=True
        Call ``plt.show()`` when done.

    Returns
    -------
    ax : matplotlib Axes
        The Axes drawn on.
    """
    import shap

    explanation = _explained_rows(explanation)
    ax = axes(ax, (8.0, 0.4 * min(max_display, explanation.shape[1]) + 1.5))
    with warnings.catch_warnings():  # a grey row's values are NaN by design (the caption says why)
        warnings.filterwarnings("ignore", "All-NaN slice encountered", RuntimeWarning)
        shap.plots.beeswarm(explanation, max_display=max_display, ax=ax, show=False, plot_size=None,
                            color_bar_label="value (red high, blue low)")
    ax.set_xlabel("push on the melanoma odds (right: towards melanoma)")
    ax.set_title(title or "How each family pushes each lesion's melanoma score")
    _caption(ax, "One dot per lesion; x: its SHAP value (log-odds of the booster's margin). Grey dots: a family "
                 "of several columns (image embedding, shape, colour, patient context) or of categories (site) "
                 "has no single value to colour by.")
    return _laid_out(ax, show)


def plot_dependence(
    explanation: Any,
    feature: str,
    *,
    values: Any = None,
    label: str | None = None,
    title: str | None = None,
    ax: Any = None,
    show: bool = True,
) -> Any:
    """How one feature's (or family's) SHAP value moves with a measured quantity.

    ``values`` (one per row) sets the x axis; by default the column's own data. For a
    family of several columns (lesion size) pass a representative measurement, e.g.
    ``explain(X).data`` of ``lesion_size__diameter_mm``.

    Parameters
    ----------
    explanation : shap.Explanation
        Per-feature or per-family explanation with one output per row (two classes).
        Rows with NaN values (unreadable images) are left out.
    feature : str
        The feature (or family) whose SHAP values are plotted: one of ``explanation.feature_names``.
    values : array-like of shape (n,), default=None
        The x value of each row; None: the column's own ``data``.
    label : str, default=None
        Label of the x axis; None: ``feature`` (with its unit for age).
    title : str, default=None
        Title of the plot; None: "How <feature> moves the melanoma score".
    ax : matplotlib Axes, default=None
        Where to draw; None draws on a new figure.
    show : bool, default=True
        Call ``plt.show()`` when done.

    Returns
    -------
    ax : matplotlib Axes
        The Axes drawn on.
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
    ax = axes(ax, (6.0, 4.5))
    shap.plots.scatter(single, ax=ax, show=False, hist=False)
    _count_bars(ax, single.data)
    ax.set_ylabel(f"push of {feature} on the melanoma odds", fontsize=11)  # shap would name the x quantity here
    ax.set_xlabel(label or UNITS.get(feature, feature), fontsize=11)
    ax.axhline(0.0, color="grey", lw=0.8, ls=":")
    ax.set_title(title or f"How {feature} moves the melanoma score")
    _caption(ax, f"One dot per lesion; y: the SHAP value of the {feature} family (log-odds); above the dotted "
                 "line it raises the melanoma score, below it lowers it. Grey bars: how many lesions have each value "
                 "(right axis).")
    return _laid_out(ax, show)


def _count_bars(ax: Any, x: np.ndarray) -> Any:
    """Grey bars of how many rows have each value of ``x``, behind ``ax``'s dots, on a count axis of their own
    (right; the bars fill the lowest quarter)."""
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    counts = ax.twinx()
    if len(x):
        heights, _, _ = counts.hist(x, bins=min(30, max(1, len(np.unique(x)))), color="lightgrey", zorder=0)
        counts.set_ylim(0, 4 * max(heights.max(), 1))
    counts.set_ylabel("lesions (grey bars)", fontsize=9, color="grey")
    counts.tick_params(axis="y", colors="grey", labelsize=8)
    ax.set_zorder(counts.get_zorder() + 1)  # the dots in front of the bars
    ax.patch.set_visible(False)
    return counts


def plot_site_cohorts(
    explanation: Any, sites: Any, *, groups: Any = None, max_display: int = 10, min_rows: int = 10,
    n_bootstrap: int = 200, title: str | None = None, ax: Any = None, show: bool = True,
) -> Any:
    """Mean |SHAP| per feature (or family) within each anatomical-site cohort, side by side, with 95 % intervals.

    ``sites`` gives each row's site; sites with fewer than ``min_rows`` rows are pooled
    as "other" (their means would be noise), and the legend names the sites pooled; when even the pooled
    sites hold fewer than ``min_rows`` rows, they are left out and the caption says so. Each bar's interval
    comes from ``n_bootstrap`` resamples of the cohort's patients or lesions (``groups``; rows without them).

    Parameters
    ----------
    explanation : shap.Explanation
        Per-feature or per-family explanation with one output per row (two classes).
        Rows with NaN values (unreadable images) are left out.
    sites : array-like of shape (n,)
        Anatomical site of each row; missing sites count as "unknown".
    groups : array-like of shape (n,), default=None
        Patient (or lesion) ids: the intervals' resamples draw them whole.
    max_display : int, default=10
        Most features (or families) shown: those of largest mean |SHAP| over all rows.
    min_rows : int, default=10
        Sites with fewer rows explained than this are pooled as "other".
    n_bootstrap : int, default=200
        Resamples behind each bar's 95 % interval; 0 draws none.
    title : str, default=None
        Title of the plot; None: "What drives the melanoma score, by anatomical site".
    ax : matplotlib Axes, default=None
        Where to draw; None draws on a new figure.
    show : bool, default=True
        Call ``plt.show()`` when done.

    Returns
    -------
    ax : matplotlib Axes
        The Axes drawn on.
    """
    labels = pd.Series(np.asarray(sites, dtype=object)).fillna("unknown").astype(str)
    if len(labels) != len(explanation.values):
        raise ValueError(f"sites has {len(labels)} entries but the explanation has {len(explanation.values)} rows")
    keep = ~np.isnan(np.asarray(explanation.values, dtype=float)).reshape(len(labels), -1).any(axis=1)
    ids = (np.arange(len(labels)) if groups is None else np.asarray(groups, dtype=object))[keep]
    explained, labels = _explained_rows(explanation), labels[keep].reset_index(drop=True)
    counts = labels.value_counts()
    small = sorted(counts.index[counts < min_rows])
    pooled_rows = int(counts[small].sum()) if small else 0
    left_out = small if 0 < pooled_rows < min_rows and len(small) < len(counts) else []  # never every site
    cohorts = [site for site in counts.index if site not in small] + (["other"] if small and not left_out else [])
    labels = labels.where(~labels.isin(small), "other")
    magnitude = pd.DataFrame(np.abs(np.asarray(explained.values, dtype=float)), columns=list(explained.feature_names))
    order = magnitude.mean().sort_values(ascending=False).index[:max_display]
    means = magnitude[order].groupby(labels.to_numpy()).mean().reindex(cohorts)
    n_rows = labels.value_counts()
    rng = np.random.default_rng(0)
    errors = {}
    for cohort in cohorts if n_bootstrap else []:
        inside = (labels == cohort).to_numpy()
        values, codes = magnitude[order].to_numpy()[inside], pd.factorize(ids[inside])[0]
        draws = [weight @ values / weight.sum() for weight in bootstrap_weights(None, codes, n_bootstrap, rng)]
        low, high = np.quantile(np.asarray(draws), [0.025, 0.975], axis=0)
        mean = means.loc[cohort].to_numpy()
        errors[cohort] = np.vstack([np.maximum(mean - low, 0.0), np.maximum(high - mean, 0.0)])

    ax = axes(ax, (7.5, 0.35 * len(order) * max(1, len(cohorts)) ** 0.6 + 1.8))
    height = 0.8 / len(cohorts)
    colours = [f"C{i % 10}" for i in range(len(cohorts))]
    for position, cohort in enumerate(cohorts):
        offsets = np.arange(len(order)) + (position - (len(cohorts) - 1) / 2) * height
        name = f"other: {', '.join(small)}" if cohort == "other" else cohort
        bars = ax.barh(offsets, means.loc[cohort].to_numpy(), height=height * 0.95, color=colours[position],
                       xerr=errors.get(cohort), error_kw={"lw": 0.8, "capsize": 1.5, "ecolor": "#333333"},
                       label=f"{name} (n={n_rows[cohort]:,})")
        ax.bar_label(bars, fmt="%.2f", fontsize=6.5, padding=2)
    ax.set_yticks(np.arange(len(order)), list(order))
    ax.invert_yaxis()
    ax.set_xlabel(f"{PUSH_LABEL}, within each site")
    ax.set_title(title or "What drives the melanoma score, by anatomical site")
    ax.legend(fontsize=7, loc="lower right", title="site (lesions)", title_fontsize=7)
    ax.spines[["top", "right"]].set_visible(False)
    note = (f" Not shown: {', '.join(left_out)} ({pooled_rows} lesions together, too few even pooled)."
            if left_out else "")
    interval = (f" Lines: 95 % intervals from {n_bootstrap} resamples of "
                f"{'patients or lesions' if groups is not None else 'lesions'}." if n_bootstrap else "")
    _caption(ax, f"Bar length: {_SHAP_CAPTION} among the lesions of one site. Sites with fewer than {min_rows} "
                 f"lesions are pooled as 'other'.{interval}{note}")
    return _laid_out(ax, show)
