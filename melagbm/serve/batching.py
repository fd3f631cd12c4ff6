"""Concurrent requests -> one inference thread that runs every request waiting as one batch.

The event loop only awaits: decoding, the model and the outlines run on threads. A pixel budget bounds the
decoded images held at once, so memory stays flat however many clients wait.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["MicroBatcher", "PixelBudget"]


@dataclass
class _Pending:
    """One request waiting for the inference thread, and the loop its answer goes back to."""

    lesions: list[Any]
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop = field(repr=False)

    def settle(self, result: Any = None, error: BaseException | None = None) -> None:
        def set_on_loop() -> None:
            if self.future.cancelled():  # the client went away
                return
            if error is None:
                self.future.set_result(result)
            else:
                self.future.set_exception(error)

        self.loop.call_soon_threadsafe(set_on_loop)


class MicroBatcher:
    """Runs requests through ``run`` on one thread, each turn taking every request already waiting (up to
    ``max_lesions`` lesions) as one batch: under load the embedder sees batches, and alone a request waits
    for nothing.

    Parameters
    ----------
    run : callable
        ``run(requests) -> answers``: a list of requests' lesion lists in, one answer per request out.
    max_lesions : int, default=32
        Lesions per batch (a larger request runs alone).
    """

    def __init__(self, run: Callable[[list[list[Any]]], list[Any]], max_lesions: int = 32) -> None:
        if max_lesions < 1:
            raise ValueError(f"max_lesions must be at least 1, got {max_lesions}")
        self.run, self.max_lesions = run, max_lesions
        self.batches = self.requests = self.lesions = 0
        self._queue: queue.Queue[_Pending | None] = queue.Queue()
        self._thread = threading.Thread(target=self._serve, name="melagbm-inference", daemon=True)
        self._thread.start()

    async def submit(self, lesions: list[Any]) -> Any:
        """The answer to one request (its lesions batched with whatever else is waiting)."""
        loop = asyncio.get_running_loop()
        pending = _Pending(lesions, loop.create_future(), loop)
        self._queue.put(pending)
        return await pending.future

    def close(self) -> None:
        """Stop the inference thread once the requests already queued are answered."""
        self._queue.put(None)
        self._thread.join()

    def stats(self) -> dict[str, int]:
        """Batches run, requests and lesions answered since start."""
        return {"batches": self.batches, "requests": self.requests, "lesions": self.lesions}

    def _next_batch(self) -> list[_Pending] | None:
        first = self._queue.get()
        if first is None:
            return None
        batch, size = [first], len(first.lesions)
        while size < self.max_lesions:
            try:
                waiting = self._queue.get_nowait()
            except queue.Empty:
                break
            if waiting is None:
                self._queue.put(None)  # stop after this batch
                break
            if size + len(waiting.lesions) > self.max_lesions:
                self._run([waiting])  # too large to join: its own turn, before the batch, so it is not lost
                continue
            batch.append(waiting)
            size += len(waiting.lesions)
        return batch

    def _serve(self) -> None:
        while (batch := self._next_batch()) is not None:
            self._run(batch)

    def _run(self, batch: list[_Pending]) -> None:
        try:
            answers = self.run([pending.lesions for pending in batch])
        except Exception as error:
            if len(batch) > 1:  # one request's failure must not fail the others: each again, alone
                for pending in batch:
                    self._run([pending])
                return
            batch[0].settle(error=error)
            return
        self.batches += 1
        self.requests += len(batch)
        self.lesions += sum(len(pending.lesions) for pending in batch)
        for pending, answer in zip(batch, answers):
            pending.settle(answer)


class PixelBudget:
    """At most ``capacity`` decoded pixels held by the requests in flight; the others wait their turn (one
    request larger than the whole budget still runs, alone).

    Parameters
    ----------
    capacity : int
        Pixels (width x height, summed over the images) decoded at once.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1 pixel, got {capacity}")
        self.capacity, self.used = capacity, 0
        self._changed = asyncio.Condition()

    async def acquire(self, pixels: int) -> None:
        """Wait until ``pixels`` fit in the budget, then hold them."""
        async with self._changed:
            await self._changed.wait_for(lambda: self.used == 0 or self.used + pixels <= self.capacity)
            self.used += pixels

    async def release(self, pixels: int) -> None:
        """Give ``pixels`` back to the budget."""
        async with self._changed:
            self.used -= pixels
            self._changed.notify_all()
