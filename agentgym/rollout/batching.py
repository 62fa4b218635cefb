"""A batching queue in front of a policy.

Episodes run concurrently and each asks for one completion at a time. Sending those
requests one by one would waste a batched backend (transformers pads a batch and runs it
in one forward pass per token). :class:`BatchingPolicy` makes one ``policy.generate`` call
of up to ``max_batch`` requests: a full batch goes out the moment it is full, a partial one
once its oldest request has waited ``max_wait_s`` for company. With ``max_concurrency``
calls in flight at most, requests that arrive while the policy is busy wait and go out
together when a call ends; episodes whose environment is still stepping simply join a later
batch, so generation and environment time overlap.

The queue runs on callbacks, not on a task of its own: an arrival, a finished call or the
wait timer launches the next call at once. A dispatcher task would need several event-loop
iterations per batch, each behind every episode callback that became ready meanwhile (the
first batch of a rollout used to leave only when all episodes had reset).

A policy with ``start_generate(requests) -> asyncio.Future`` (the ``hf`` backend) gets each
batch by it: the call starts within the callback that launched it, not when the loop gets to a
task awaiting ``generate``. Such a policy runs the batches it is given one after another, so
while its calls in flight are at ``max_concurrency`` it is also handed the next batch once that
is full: it waits in the policy's queue and starts the moment the running one ends, with no trip
through the event loop in between.

A policy that batches by itself (``continuous_batching = True``: vLLM, an HTTP server)
gets every request on its own the moment it is made: collecting them here would make a
finished reply wait for the slowest one in its batch.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Sequence

from agentgym.policy.base import Completion, GenerationRequest, Policy


@dataclass
class BatchStats:
    """What the queue did: calls, batch sizes, time the policy was busy (a call that waited in the
    policy's queue behind another counts from when that one ended)."""

    calls: int = 0
    requests: int = 0
    busy_s: float = 0.0
    max_batch_seen: int = 0
    sizes: list[int] = field(default_factory=list)

    def record(self, size: int, elapsed: float) -> None:
        """One ``policy.generate`` call of ``size`` requests that took ``elapsed`` seconds."""
        self.calls += 1
        self.requests += size
        self.busy_s += elapsed
        self.max_batch_seen = max(self.max_batch_seen, size)
        self.sizes.append(size)

    @property
    def mean_batch(self) -> float:
        return self.requests / self.calls if self.calls else 0.0


def start_generate_of(policy: Policy) -> Any:
    """The policy's ``start_generate``, unless a subclass overrides ``generate`` below the class that
    defines it: such a subclass (one that records, filters or rewrites requests) must see every
    batch, so it gets them through ``generate``."""
    start = getattr(policy, "start_generate", None)
    if start is None:
        return None
    mro = type(policy).__mro__
    starter = next((c for c in mro if "start_generate" in c.__dict__), None)
    generator = next((c for c in mro if "generate" in c.__dict__), None)
    if starter is None or generator is None or not issubclass(starter, generator):
        return None
    return start


@dataclass
class _Pending:
    request: GenerationRequest
    future: asyncio.Future
    since: float  # loop time it was queued


class BatchingPolicy:
    """Wraps a :class:`Policy`; ``await generate_one(request)`` from many tasks at once."""

    def __init__(
        self,
        policy: Policy,
        *,
        max_batch: int = 64,
        max_wait_s: float = 0.005,
        max_concurrency: int = 1,
    ):
        if max_batch < 1 or max_concurrency < 1:
            raise ValueError("max_batch and max_concurrency must be at least 1")
        self.policy = policy
        self.name = getattr(policy, "name", type(policy).__name__)
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.max_concurrency = max_concurrency
        self.stats = BatchStats()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: deque[_Pending] = deque()
        self._in_flight = 0
        self._tasks: set[asyncio.Task] = set()  # calls in flight (held: the loop keeps weak references only)
        self._timer: asyncio.TimerHandle | None = None
        self._last_done = 0.0  # when the last call ended (perf_counter)
        self._start_generate = start_generate_of(policy)

    @property
    def passthrough(self) -> bool:
        """True when the policy schedules requests itself (continuous batching)."""
        return bool(getattr(self.policy, "continuous_batching", False))

    async def generate_one(self, request: GenerationRequest) -> list[Completion]:
        """Queue one request and wait for its completions."""
        if self.passthrough:
            return await self._direct(request)
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new event loop (asyncio.run again): what the old one held is gone
            self._loop, self._pending, self._in_flight, self._tasks, self._timer = loop, deque(), 0, set(), None
        future = loop.create_future()
        self._pending.append(_Pending(request, future, loop.time()))
        if len(self._pending) >= self.max_batch:
            self._launch()
        elif self._timer is None and self._in_flight < self.max_concurrency:
            # at the earliest in the next loop iteration: requests made in this one go together
            self._timer = loop.call_at(self._pending[0].since + self.max_wait_s, self._launch)
        return await future

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[list[Completion]]:
        """The :class:`Policy` interface: every request goes through the queue."""
        return list(await asyncio.gather(*(self.generate_one(r) for r in requests)))

    def _launch(self) -> None:
        """Start every call the queue allows now; arm the timer for a partial batch that must wait."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        pending = self._pending
        queues = self._start_generate is not None
        while True:
            while pending and pending[0].future.done():  # its episode timed out or was cancelled
                pending.popleft()
            if not pending:
                return
            full = len(pending) >= self.max_batch
            # at max_concurrency, a policy that queues calls still gets one more, full, batch: it starts
            # the moment one ends
            if self._in_flight >= self.max_concurrency and not (
                    queues and full and self._in_flight == self.max_concurrency):
                return
            due = pending[0].since + self.max_wait_s
            if not full and self._loop.time() < due:
                self._timer = self._loop.call_at(due, self._launch)
                return
            batch: list[_Pending] = []
            while pending and len(batch) < self.max_batch:
                p = pending.popleft()
                if not p.future.done():
                    batch.append(p)
            self._in_flight += 1
            self._start(batch)

    def _start(self, batch: list[_Pending]) -> None:
        """Hand ``batch`` to the policy: by ``start_generate`` when it has it (the call starts now), else
        by a task awaiting ``generate`` (it starts when the loop gets to the task)."""
        start_generate = self._start_generate
        if start_generate is None:
            task = self._loop.create_task(self._run(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        start = time.perf_counter()
        try:
            future = start_generate([p.request for p in batch])
        except Exception as exc:  # noqa: BLE001 - a request the policy refuses (empty prompt): its batch learns it
            self._deliver(batch, None, exc, start)
            return
        future.add_done_callback(lambda done: self._generated(batch, done, start))

    def _generated(self, batch: list[_Pending], done: asyncio.Future, start: float) -> None:
        if done.cancelled():
            self._deliver(batch, None, asyncio.CancelledError(), start)
        elif done.exception() is not None:
            self._deliver(batch, None, done.exception(), start)
        else:
            self._deliver(batch, done.result(), None, start)

    def _deliver(self, batch: list[_Pending], results: Sequence[list[Completion]] | None,
                 error: BaseException | None, start: float) -> None:
        """Answer every request of a finished call (its error to all of them), then start the next call
        at once: from a done callback it would cost the next batch a loop iteration."""
        if error is None and len(results) != len(batch):
            error = RuntimeError(f"{self.name} returned {len(results)} results for {len(batch)} requests")
        for i, p in enumerate(batch):
            if p.future.done():
                continue
            if isinstance(error, asyncio.CancelledError):
                p.future.cancel()
            elif error is not None:
                p.future.set_exception(error)
            else:
                p.future.set_result(results[i])
        now = time.perf_counter()  # busy from when it started or the call before it ended (a queued call waits)
        self.stats.record(len(batch), now - max(start, self._last_done))
        self._last_done = now
        self._in_flight -= 1
        self._launch()

    async def _direct(self, request: GenerationRequest) -> list[Completion]:
        start = time.perf_counter()
        try:
            (result,) = await self.policy.generate([request])
        finally:
            self.stats.record(1, time.perf_counter() - start)
        return result

    async def _run(self, batch: list[_Pending]) -> None:
        start = time.perf_counter()
        try:
            results = await self.policy.generate([p.request for p in batch])
        except BaseException as exc:  # cancelled too: the waiting episodes learn it, the queue goes on
            self._deliver(batch, None, exc, start)
            if not isinstance(exc, Exception):
                raise
        else:
            self._deliver(batch, results, None, start)

    async def aclose(self) -> None:
        """Stop waiting for company (calls in flight go on; the wrapped policy stays open)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    async def close(self) -> None:
        await self.aclose()
