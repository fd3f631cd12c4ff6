"""The Axes every plot draws on, and showing it: what plotting and explain_plots share."""

from __future__ import annotations

from typing import Any

__all__ = ["axes", "finish"]


def axes(ax: Any, size: tuple[float, float] = (5.0, 5.0)) -> Any:
    """``ax``, or the Axes of a new figure of ``size`` inches."""
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=size)[1]


def finish(ax: Any, show: bool) -> Any:
    """Show the figure when ``show``; return ``ax``."""
    if show:
        import matplotlib.pyplot as plt

        plt.show()
    return ax
