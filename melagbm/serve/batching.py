"""Concurrent requests -> one inference thread that runs every request waiting as one batch.

Parsing, decoding, the outlines and the model run on threads; the event loop awaits them. Two budgets, in
request bytes and in decoded pixels, bound what the requests in flight hold, so memory stays flat however
many clients wait.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Budget", "MicroBatcher"]


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

        try:
            self.loop.call_soon_threadsafe(set_on_loop)
        except RuntimeError:  # the loop is closed: nobody waits for this answer any more
            pass


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
        self._carried: _Pending | None = None  # a request that did not fit the last batch: first of the next
        self._closed = False
        self._thread = threading.Thread(target=self._serve, name="melagbm-inference", daemon=True)
        self._thread.start()

    async def submit(self, lesions: list[Any]) -> Any:
        """The answer to one request (its lesions batched with whatever else is waiting)."""
        if self._closed:
            raise RuntimeError("the inference thread is stopped: the service is shutting down")
        loop = asyncio.get_running_loop()
        pending = _Pending(lesions, loop.create_future(), loop)
        self._queue.put(pending)
        return await pending.future

    def close(self) -> None:
        """Stop the inference thread once the requests already queued are answered."""
        self._closed = True
        self._queue.put(None)
        self._thread.join()

    def stats(self) -> dict[str, int]:
        """Batches run, requests and lesions answered since start (or since :meth:`reset_stats`)."""
        return {"batches": self.batches, "requests": self.requests, "lesions": self.lesions}

    def reset_stats(self) -> None:
        """Count from zero again (after the warm-up, which is nobody's request)."""
        self.batches = self.requests = self.lesions = 0

    def _next_batch(self) -> list[_Pending] | None:
        """The requests of the next turn, in arrival order (None: stop)."""
        first, self._carried = (self._carried, None) if self._carried is not None else (self._queue.get(), None)
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
                self._carried = waiting  # too large to join: it leads the next turn
                break
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


class Budget:
    """At most ``capacity`` units (decoded pixels, request bytes) held by the requests in flight; the others
    wait in arrival order, so none waits forever behind later, smaller ones. A request larger than the whole
    budget runs alone, when it is first in line and nothing is held.

    Parameters
    ----------
    capacity : int
        Units held at once.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.capacity, self.used = capacity, 0
        self._line: deque[object] = deque()
        self._changed = asyncio.Condition()

    async def acquire(self, amount: int) -> None:
        """Wait for ``amount`` units, first come first served, then hold them."""
        ticket = object()
        async with self._changed:
            self._line.append(ticket)
            try:
                await self._changed.wait_for(lambda: self._line[0] is ticket and (
                    self.used == 0 or self.used + amount <= self.capacity))
            except BaseException:  # cancelled while waiting (the client went away): leave the line
                self._line.remove(ticket)
                self._changed.notify_all()
                raise
            self._line.popleft()
            self.used += amount
            self._changed.notify_all()  # the next in line may fit too

    async def release(self, amount: int) -> None:
        """Give ``amount`` units back."""
        async with self._changed:
            self.used -= amount
            self._changed.notify_all()
