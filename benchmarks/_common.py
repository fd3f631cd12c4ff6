"""What the benchmark scripts share: where the data is, and timing a call."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any, Callable

#: ../shared/data beside the repository, unless $MELAGBM_DATA says otherwise.
DEFAULT_DATA = Path(os.environ.get("MELAGBM_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))


def add_data_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared data folder")


def timed(work: Callable[[], Any]) -> tuple[float, Any]:
    """(seconds, result) of calling ``work``."""
    started = time.perf_counter()
    result = work()
    return time.perf_counter() - started, result
