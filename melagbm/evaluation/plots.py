"""Plots of clinical performance: ROC curve with the partial-AUC region, reliability diagram.

Each function draws on ``ax`` (a new figure when None), shows it when ``show`` is
true, and returns the Axes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._figures import axes, finish

__all__ = ["plot_calibration", "plot_roc", "roc_band"]


def plot_roc(
    y_true: Any,
    score: Any,
    *,
    predicted: Any = None,
    min_tpr: float = 0.8,
    label: str | None = None,
    groups: Any = None,
    n_bootstrap: int = 200,
    ax: Any = None,
    show: bool = True,
) -> Any:
    """ROC curve with its 95 % band, shading the partial-AUC region above ``min_tpr``.

    ``predicted`` (0/1 decisions, e.g. ``clf.predict(X)``) marks the operating point they reach. The band
    holds, at each false positive rate, the middle 95 % of the sensitivities of ``n_bootstrap`` resamples of
    whole ``groups`` (patients or lesions; rows without them).

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Labels, 1 = melanoma.
    score : array-like of shape (n_samples,)
        Scores, higher = more suspicious (e.g. melanoma probabilities).
    predicted : array-like of shape (n_samples,), default=None
        0/1 decisions, 1 = referred; None marks no operating point.
    min_tpr : float, default=0.8
        The TPR from which the partial AUC counts.
    label : str, default=None
        Name of the curve, put before its AUCs in the legend.
    groups : array-like of shape (n_samples,), default=None
        Patient (or lesion) ids: the band's resamples draw them whole.
    n_bootstrap : int, default=200
        Resamples behind the band; 0 draws none.
    ax : matplotlib Axes, default=None
        Axes to draw on; None draws on a new figure.
    show : bool, default=True
        Show the figure (``plt.show()``) once drawn.

    Returns
    -------
    ax : matplotlib Axes
        The Axes drawn on.
    """
    from sklearn.metrics import roc_curve

    from .metrics import partial_auc, roc_auc

    y_true, score = np.asarray(y_true), np.asarray(score, dtype=float)
    ax = axes(ax)
    fpr, tpr, _ = roc_curve(y_true, score)
    text = f"AUC {roc_auc(y_true, score):.3f}, pAUC>{min_tpr:.0%} TPR {partial_auc(y_true, score, min_tpr):.3f}"
    ax.plot(fpr, tpr, lw=2, label=f"{label}: {text}" if label else text)
    if n_bootstrap:
        grid = np.linspace(0.0, 1.0, 201)
        low, high = roc_band(y_true, score, groups, grid, n_bootstrap)
        ax.fill_between(grid, low, high, color="C0", alpha=0.15, lw=0,
                        label=f"95 % band ({n_bootstrap} resamples of {'groups' if groups is not None else 'rows'})")
    ax.fill_between(fpr, np.maximum(tpr, min_tpr), min_tpr, where=tpr >= min_tpr, color="C1", alpha=0.2, step=None,
                    label=f"partial AUC region (TPR >= {min_tpr:.0%})")
    ax.axhline(min_tpr, color="grey", lw=0.8, ls=":")
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
    if predicted is not None:
        predicted = np.asarray(predicted) == 1
        sensitivity = predicted[y_true == 1].mean()
        false_positive_rate = predicted[y_true == 0].mean()
        ax.plot([false_positive_rate], [sensitivity], "o", color="crimson", ms=8,
                label=f"operating point: sens {sensitivity:.2f}, spec {1 - false_positive_rate:.2f}")
    ax.set(xlabel="1 - specificity (false positive rate)", ylabel="sensitivity (true positive rate)",
           xlim=(0, 1), ylim=(0, 1.01), title="ROC curve")
    ax.legend(loc="lower right", fontsize=8)
    return finish(ax, show)


def roc_band(
    y_true: np.ndarray, score: np.ndarray, groups: Any, grid: np.ndarray, n_bootstrap: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """The 2.5 % and 97.5 % quantiles of the sensitivity at each false positive rate of ``grid`` over bootstrap
    resamples of whole groups (rows without ``groups``).

    Parameters
    ----------
    y_true : ndarray of shape (n_samples,)
        Labels, 1 = melanoma.
    score : ndarray of shape (n_samples,)
        Scores, higher = more suspicious.
    groups : array-like of shape (n_samples,) or None
        Patient (or lesion) ids, drawn whole; None draws rows.
    grid : ndarray
        False positive rates in [0, 1], increasing.
    n_bootstrap : int
        Resamples drawn (those without both classes are left out).
    seed : int, default=0
        Seed of the draws.

    Returns
    -------
    low, high : ndarray
        The band's lower and upper sensitivity at each rate of ``grid``.
    """
    import pandas as pd

    from .._resampling import bootstrap_weights
    from .curves import WeightedCurves

    y = (np.asarray(y_true) == 1).astype(int)
    codes = np.arange(len(y)) if groups is None else pd.factorize(np.asarray(groups))[0]
    curves = WeightedCurves(y, np.asarray(score, dtype=float))
    rows = []
    for weight in bootstrap_weights(y, codes, n_bootstrap, np.random.default_rng(seed)):
        tps, fps = curves.counts(weight)
        fpr, tpr = np.r_[0.0, fps / fps[-1]], np.r_[0.0, tps / tps[-1]]
        rows.append(tpr[np.searchsorted(fpr, grid, side="right") - 1])  # the highest sensitivity by that fpr
    low, high = np.quantile(np.asarray(rows), [0.025, 0.975], axis=0)
    return low, high


#: Where a bin's label may go, in points from its point, tried in this order until one overlaps no earlier label.
_LABEL_OFFSETS = [(dx, dy) for dy in (5, -11, 14, -20, 23, -29, 32, -38) for dx in (3, -26)]


def _label_bins(ax: Any, x: np.ndarray, y: np.ndarray, labels: list[str]) -> None:
    """Write each label beside its point, at the first offset where it overlaps no label already written."""
    ax.set(xlim=ax.get_xlim(), ylim=ax.get_ylim())  # fixed before measuring: labels must not move the axes
    canvas = ax.figure.canvas
    if not hasattr(canvas, "get_renderer"):  # a bare Figure (reports draw without pyplot): measure with Agg
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        canvas = FigureCanvasAgg(ax.figure)
    renderer = canvas.get_renderer()
    placed: list[Any] = []
    for x_value, y_value, label in zip(x, y, labels):
        for offset in _LABEL_OFFSETS:
            text = ax.annotate(label, (x_value, y_value), textcoords="offset points", xytext=offset, fontsize=6.5,
                               color="#444444")
            box = text.get_window_extent(renderer)
            if not any(box.overlaps(other) for other in placed) or offset == _LABEL_OFFSETS[-1]:
                placed.append(box)
                break
            text.remove()


def plot_calibration(
    y_true: Any, proba: Any, *, n_bins: int = 10, ax: Any = None, show: bool = True
) -> Any:
    """Observed melanoma frequency against predicted probability, in quantile bins, with a rug.

    Each bin's point is labelled with its melanomas and lesions (``4/250``): with a rare
    class, a bin of few melanomas is a noisy estimate.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Labels, 1 = melanoma.
    proba : array-like of shape (n_samples,)
        Predicted melanoma probabilities.
    n_bins : int, default=10
        Quantile bins of ``proba``; fewer when tied probabilities make quantiles coincide.
    ax : matplotlib Axes, default=None
        Axes to draw on; None draws on a new figure.
    show : bool, default=True
        Show the figure (``plt.show()``) once drawn.

    Returns
    -------
    ax : matplotlib Axes
        The Axes drawn on.
    """
    y_true, proba = np.asarray(y_true), np.asarray(proba, dtype=float)
    ax = axes(ax)
    edges = np.unique(np.quantile(proba, np.linspace(0.0, 1.0, n_bins + 1)))
    bins = np.clip(np.searchsorted(edges, proba, side="right") - 1, 0, max(len(edges) - 2, 0))
    counts = np.bincount(bins, minlength=len(edges) - 1)
    used = counts > 0
    melanomas = np.bincount(bins, weights=(y_true == 1).astype(float), minlength=len(counts))[used]
    predicted = np.bincount(bins, weights=proba, minlength=len(counts))[used] / counts[used]
    observed = melanomas / counts[used]
    top = float(max(observed.max(), predicted.max(), 0.05)) * 1.1
    ax.plot([0, top], [0, top], color="grey", lw=0.8, ls="--", label="perfect calibration")
    ax.plot(predicted, observed, "o-", lw=2,
            label=f"model ({int(used.sum())} quantile bins; labels: melanomas / lesions in the bin)")
    ax.plot(proba, np.full(len(proba), -0.02 * top), "|", color="black", alpha=0.2, ms=6)
    ax.set(xlabel="predicted melanoma probability", ylabel="observed melanoma frequency",
           xlim=(-0.01 * top, top), ylim=(-0.04 * top, top), title="Calibration (out of fold)")
    _label_bins(ax, predicted, observed, [f"{int(positives)}/{n}" for n, positives in zip(counts[used], melanomas)])
    ax.legend(loc="upper left", fontsize=8)
    return finish(ax, show)
