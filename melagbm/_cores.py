"""How many CPU cores other processes leave free, for the thread count of PyTorch on the CPU.

PyTorch's threads wait for each other at every layer: with one of two cores taken by another process,
two threads embed 18x slower than alone, one thread barely slower (``benchmarks/sharing.py``). So
the CPU path runs as many threads as there are cores that other processes are not using, measured
from ``/proc/stat`` (all processes) less ``/proc/self/stat`` (this one) over a short sample.
"""

from __future__ import annotations

import os
import time

__all__ = ["free_cores", "usable_cores"]

_SAMPLE_SECONDS = 0.1
_REMEMBER_SECONDS = 10.0  # a measurement is reused this long (single-image predictions should not pay for it)
_last: tuple[float, int] | None = None


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask where the platform has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def free_cores() -> int:
    """Usable cores minus those other processes kept busy over the last sample (at least 1).

    Where ``/proc`` cannot be read (not Linux), every usable core counts as free.
    """
    global _last
    now = time.monotonic()
    if _last is not None and now - _last[0] < _REMEMBER_SECONDS:
        return _last[1]
    cores = usable_cores()
    try:
        busy_before, self_before = _busy_ticks(), _own_ticks()
        time.sleep(_SAMPLE_SECONDS)
        busy_after, self_after = _busy_ticks(), _own_ticks()
    except (OSError, ValueError, IndexError):
        return cores
    ticks = os.sysconf("SC_CLK_TCK") * _SAMPLE_SECONDS
    others = max(0.0, (busy_after - busy_before) - (self_after - self_before)) / ticks
    free = max(1, min(cores, round(cores - others)))
    _last = (now, free)
    return free


def _busy_ticks() -> int:
    """Clock ticks all cores spent busy since boot (``/proc/stat``: everything but idle and iowait)."""
    with open("/proc/stat") as stat:
        fields = [int(value) for value in stat.readline().split()[1:]]
    return sum(fields[:8]) - fields[3] - fields[4]


def _own_ticks() -> int:
    """Clock ticks this process (all its threads, and its finished children) spent on the CPU."""
    with open("/proc/self/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return sum(int(value) for value in fields[11:15])
