"""The row queue that feeds the torch thread: batches, order, errors, and other torch work keeping its turn."""

from __future__ import annotations

import asyncio
import threading

from agentgym.policy.rowqueue import RowQueue
from agentgym.torch_thread import torch_executor


class Recorder:
    """A batch function that doubles each row and records batches, threads and what ran when."""

    def __init__(self, fail_on: int | None = None, hold: threading.Event | None = None):
        self.batches: list[list[int]] = []
        self.threads: set[str] = set()
        self.log: list[str] = []
        self.fail_on, self.hold = fail_on, hold

    def __call__(self, rows: list[int]) -> list[int]:
        if self.hold is not None:
            self.hold.wait(10)
        self.batches.append(list(rows))
        self.threads.add(threading.current_thread().name)
        self.log.append(f"batch {rows[0]}")
        if self.fail_on is not None and self.fail_on in rows:
            raise ValueError(f"row {self.fail_on} is bad")
        return [2 * r for r in rows]


async def test_calls_share_batches_in_order_on_the_torch_thread():
    run = Recorder(hold=threading.Event())
    queue = RowQueue(run, max_batch=4)
    first = queue.submit([0])  # the torch thread takes it and waits on the hold
    await asyncio.sleep(0.05)
    calls = [queue.submit([1, 2]), queue.submit([3, 4, 5]), queue.submit(list(range(6, 13)))]
    run.hold.set()
    assert await first == [0]
    assert await asyncio.gather(*calls) == [[2, 4], [6, 8, 10], [2 * r for r in range(6, 13)]]
    assert run.batches == [[0], [1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]]
    assert all(name.startswith("agentgym-torch") for name in run.threads)
    assert await queue.submit([]) == []


async def test_an_error_reaches_the_calls_of_its_batch_only():
    run = Recorder(fail_on=3, hold=threading.Event())
    queue = RowQueue(run, max_batch=2)
    calls = [queue.submit([1, 2]), queue.submit([3]), queue.submit([4, 5]), queue.submit([6])]
    run.hold.set()
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert run.batches == [[1, 2], [3, 4], [5, 6]]  # [4, 5] spans the failing batch: it fails too
    assert [type(r) for r in results] == [list, ValueError, ValueError, list] and results[3] == [12]
    assert await queue.submit([7]) == [14]  # the queue goes on


async def test_other_torch_work_keeps_its_turn_between_batches():
    run = Recorder(hold=threading.Event())
    queue = RowQueue(run, max_batch=1)
    calls = [queue.submit([i]) for i in range(3)]
    other = asyncio.get_running_loop().run_in_executor(torch_executor(), run.log.append, "weights")
    run.hold.set()
    await asyncio.gather(*calls, other)
    assert run.log == ["batch 0", "weights", "batch 1", "batch 2"]


async def test_wait_idle_waits_for_what_this_loop_asked():
    run = Recorder(hold=threading.Event())
    queue = RowQueue(run, max_batch=8)
    call = queue.submit([1, 2])
    waiter = asyncio.ensure_future(queue.wait_idle())
    await asyncio.sleep(0.02)
    assert not waiter.done()
    run.hold.set()
    await asyncio.wait_for(waiter, 5)
    assert call.done() and call.result() == [2, 4]


async def test_a_call_submitted_alone_is_never_merged():
    """The batching queue sizes its batches itself: two of them waiting together still run apart."""
    run = Recorder(hold=threading.Event())
    queue = RowQueue(run, max_batch=8)
    first = queue.submit([0], alone=True)
    await asyncio.sleep(0.05)  # the torch thread holds the first batch
    calls = [queue.submit([1, 2], alone=True), queue.submit([3, 4], alone=True), queue.submit([5]),
             queue.submit([6]), queue.submit([7, 8], alone=True), queue.submit([9])]
    run.hold.set()
    await asyncio.gather(first, *calls)
    assert run.batches == [[0], [1, 2], [3, 4], [5, 6], [7, 8], [9]]
