"""Rows for the torch thread: queued from event loops, run in batches, answered on each caller's loop.

The ``hf`` backend samples on the process's one torch thread (:mod:`agentgym.torch_thread`).
:meth:`RowQueue.submit` queues a call's rows and hands the torch thread a job right away when it
has none: no task of its own on the event loop, whose iterations (each behind every episode
callback that became ready) would otherwise stand between a batch being asked for and its start.
A job takes up to ``max_batch`` queued rows when it starts, so calls that arrive before then
share its forward passes (except a call submitted ``alone``: the batching queue sized it
already), runs them, and posts the results to the loops that asked. One batch per job: while
rows remain the job queues its successor behind whatever else waits for the torch thread (a
weight update, a learner step), which keeps its turn.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from typing import Any, Callable, Generic, Sequence, TypeVar

from agentgym.torch_thread import torch_executor

Row = TypeVar("Row")


@dataclass(eq=False)
class _Call:
    """One ``submit``: its future, and its results as batches finish them (torch thread only)."""

    future: asyncio.Future
    results: list[Any]
    left: int
    shape: Callable[[list[Any]], Any] | None = None
    alone: bool = False
    error: BaseException | None = None


class RowQueue(Generic[Row]):
    """Runs ``run_batch(rows) -> results`` (one result per row, in order) on the torch thread."""

    def __init__(self, run_batch: Callable[[list[Row]], list[Any]], max_batch: int):
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.run_batch = run_batch
        self.max_batch = max_batch
        self._queue: list[tuple[Row, _Call, int]] = []
        self._lock = threading.Lock()
        self._scheduled = False  # a job is queued or running on the torch thread
        self._open: set[asyncio.Future] = set()

    def submit(self, rows: Sequence[Row], shape: Callable[[list[Any]], Any] | None = None, *,
               alone: bool = False) -> asyncio.Future:
        """A future (on the running loop) of ``rows``' results in order, or of ``shape(results)``;
        call from the event loop. ``alone``: these rows make batches of their own, never shared
        with another call's (a caller that sized its batch itself)."""
        loop = asyncio.get_running_loop()
        call = _Call(loop.create_future(), [None] * len(rows), len(rows), shape, alone)
        if not rows:
            call.future.set_result(shape([]) if shape is not None else [])
            return call.future
        self._open.add(call.future)
        call.future.add_done_callback(self._open.discard)
        with self._lock:
            self._queue.extend((row, call, i) for i, row in enumerate(rows))
            start, self._scheduled = not self._scheduled, True
        if start:
            torch_executor().submit(self._job)
        return call.future

    async def wait_idle(self) -> None:
        """Wait for the calls this loop submitted to finish (their errors are theirs to see)."""
        loop = asyncio.get_running_loop()
        mine = [f for f in self._open if f.get_loop() is loop]
        if mine:
            await asyncio.gather(*mine, return_exceptions=True)

    def _job(self) -> None:
        """One batch, on the torch thread."""
        with self._lock:
            head = self._queue[0][1]
            size = 0
            for _, call, _ in self._queue[: self.max_batch]:  # one alone call, or the shared rows before one
                if call is not head and (call.alone or head.alone):
                    break
                size += 1
            batch, self._queue = self._queue[:size], self._queue[size:]
        error: BaseException | None = None
        results: list[Any] = []
        try:
            results = self.run_batch([row for row, _, _ in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"a batch of {len(batch)} rows gave {len(results)} results")
        except BaseException as exc:  # noqa: BLE001 - the callers see it (and the queue goes on)
            error = exc
        with self._lock:  # queue the next job first: a caller woken below must not find none scheduled
            more = bool(self._queue)
            self._scheduled = more
        if more:
            torch_executor().submit(self._job)
        done: list[_Call] = []
        for k, (_, call, i) in enumerate(batch):
            if error is not None:
                call.error = call.error or error
            else:
                call.results[i] = results[k]
            call.left -= 1
            if call.left == 0:
                done.append(call)
        by_loop: dict[Any, list[_Call]] = {}
        for call in done:
            by_loop.setdefault(call.future.get_loop(), []).append(call)
        for loop, calls in by_loop.items():
            try:
                loop.call_soon_threadsafe(_resolve, calls)
            except RuntimeError:  # that loop is closed: nobody waits any more
                pass
        if error is not None and not isinstance(error, Exception):
            raise error  # KeyboardInterrupt and the like: told to the callers, not swallowed


def _resolve(calls: list[_Call]) -> None:
    for call in calls:
        if call.future.done():  # the caller gave up (cancelled)
            continue
        if call.error is not None:
            call.future.set_exception(call.error)
        else:
            call.future.set_result(call.shape(call.results) if call.shape is not None else call.results)
