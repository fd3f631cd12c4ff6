"""Progress bars for work that lasts: tqdm's notebook-aware bar, shown only after a few seconds."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["PROGRESS_DELAY_S", "progress"]

#: A bar appears only once its work has run this long, so short calls print nothing.
PROGRESS_DELAY_S = 2.0


def progress(iterable: Iterable[Any], *, desc: str, total: int | None = None, unit: str = "it",
             verbose: int = 1) -> Iterable[Any]:
    """``iterable`` wrapped in a ``tqdm.auto`` bar when ``verbose`` (a notebook widget in Jupyter)."""
    if not verbose:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total, unit=unit, delay=PROGRESS_DELAY_S, dynamic_ncols=True)
