"""Plots of clinical performance: ROC curve with the partial-AUC region, reliability diagram.

Each function draws on ``ax`` (a new figure when None), shows it when ``show`` is
true, and returns the Axes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._figures import axes, finish

__all__ = ["plot_calibration", "plot_roc"]


def plot_roc(
    y_true: Any,
    score: Any,
    *,
    predicted: Any = None,
    min_tpr: float = 0.8,
    label: str | None = None,
    ax: Any = None,
    show: bool = True,
) -> Any:
    """ROC curve, shading the partial-AUC region above ``min_tpr``.

    ``predicted`` (0/1 decisions, e.g. ``clf.predict(X)``) marks the operating point they reach.

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
    ax.fill_between(fpr, np.maximum(tpr, min_tpr), min_tpr, where=tpr >= min_tpr, alpha=0.2, step=None,
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
    for number, (x, y, n, positives) in enumerate(zip(predicted, observed, counts[used], melanomas)):
        ax.annotate(f"{int(positives)}/{n}", (x, y), textcoords="offset points", xytext=(3, 5 if number % 2 else -10),
                    fontsize=6.5, color="#444444")
    ax.plot(proba, np.full(len(proba), -0.02 * top), "|", color="black", alpha=0.2, ms=6)
    ax.set(xlabel="predicted melanoma probability", ylabel="observed melanoma frequency",
           xlim=(-0.01 * top, top), ylim=(-0.04 * top, top), title="Calibration (out of fold)")
    ax.legend(loc="upper left", fontsize=8)
    return finish(ax, show)
