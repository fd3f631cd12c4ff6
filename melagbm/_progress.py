"""Progress for work that lasts: tqdm's bar in a terminal or a notebook, plain lines in a log; shown only after a
few seconds."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any

__all__ = ["PLAIN_INTERVAL_S", "PROGRESS_DELAY_S", "progress"]

#: A bar appears only once its work has run this long, so short calls print nothing.
PROGRESS_DELAY_S = 2.0
#: Where output goes to a file or a pipe (a log), one plain line at most this often, and one at the end.
PLAIN_INTERVAL_S = 30.0


def _interactive() -> bool:
    """A terminal or a Jupyter kernel: where a bar redraws itself in place."""
    return _in_jupyter_kernel() or bool(getattr(sys.stderr, "isatty", lambda: False)())


def _in_jupyter_kernel() -> bool:
    """This process is a Jupyter kernel's (its IPython shell talks to a front end), not merely one that imported
    ipykernel (a notebook runner, a test session)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None
    return type(shell).__name__ == "ZMQInteractiveShell"


def progress(iterable: Iterable[Any], *, desc: str, total: int | None = None, unit: str = "it",
             verbose: int = 1) -> Iterable[Any]:
    """``iterable`` wrapped in a ``tqdm.auto`` bar when ``verbose`` (a notebook widget in Jupyter); where stderr is
    a file or a pipe, plain lines instead of a bar's redraws."""
    if not verbose:
        return iterable
    if not _interactive():
        return _plain_lines(iterable, desc=desc, total=total if total is not None else _length(iterable), unit=unit)
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total, unit=unit, delay=PROGRESS_DELAY_S, dynamic_ncols=True)


def _length(iterable: Iterable[Any]) -> int | None:
    try:
        return len(iterable)  # type: ignore[arg-type]
    except TypeError:
        return None


def _plain_lines(iterable: Iterable[Any], *, desc: str, total: int | None, unit: str) -> Iterator[Any]:
    """The items of ``iterable``, with a line "desc: 40% (4/10 batches, 12 s)" every ``PLAIN_INTERVAL_S`` once the
    work has lasted ``PROGRESS_DELAY_S``, and one when it ends."""
    started = time.monotonic()
    said_at, done = None, 0

    units = unit + ("es" if unit.endswith(("ch", "sh", "s", "x")) else "s")

    def say(now: float) -> None:
        share = f"{100 * done // total}% ({done}/{total} {units}" if total else f"{done} {units} ("
        print(f"{desc}: {share}{', ' if total else ''}{now - started:.0f} s)", file=sys.stderr, flush=True)

    for item in iterable:
        yield item
        done += 1
        now = time.monotonic()
        if now - started >= PROGRESS_DELAY_S and (said_at is None or now - said_at >= PLAIN_INTERVAL_S):
            if total is None or done < total:
                say(now)
                said_at = now
    now = time.monotonic()
    if now - started >= PROGRESS_DELAY_S:
        say(now)
