"""A batching queue in front of a policy.

Episodes run concurrently and each asks for one completion at a time. Sending those
requests one by one would waste a batched backend (transformers pads a batch and runs it
in one forward pass per token). :class:`BatchingPolicy` collects requests for a few
milliseconds, or until ``max_batch`` are waiting, then makes one ``policy.generate``
call. With ``max_concurrency`` calls in flight at most, requests that arrive while the
policy is busy wait and go out together in the next call; episodes whose environment is
still stepping simply join a later batch, so generation and environment time overlap.

A policy that batches by itself (``continuous_batching = True``: vLLM, an HTTP server)
gets every request on its own the moment it is made: collecting them here would make a
finished reply wait for the slowest one in its batch.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Sequence

from agentgym.policy.base import Completion, GenerationRequest, Policy


@dataclass
class BatchStats:
    """What the queue did: calls, batch sizes, time the policy was busy."""

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


@dataclass
class _Pending:
    request: GenerationRequest
    future: asyncio.Future


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
        self._dispatcher: asyncio.Task | None = None

    def _ensure_started(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is loop and self._dispatcher is not None and not self._dispatcher.done():
            return
        self._loop = loop
        self._pending: list[_Pending] = []
        self._arrived = asyncio.Event()
        self._slots = asyncio.Semaphore(self.max_concurrency)
        self._inflight: set[asyncio.Task] = set()
        self._dispatcher: asyncio.Task | None = loop.create_task(self._dispatch(), name="agentgym-batcher")

    @property
    def passthrough(self) -> bool:
        """True when the policy schedules requests itself (continuous batching)."""
        return bool(getattr(self.policy, "continuous_batching", False))

    async def generate_one(self, request: GenerationRequest) -> list[Completion]:
        """Queue one request and wait for its completions."""
        if self.passthrough:
            return await self._direct(request)
        self._ensure_started()
        future = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(request, future))
        self._arrived.set()
        return await future

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[list[Completion]]:
        """The :class:`Policy` interface: every request goes through the queue."""
        return list(await asyncio.gather(*(self.generate_one(r) for r in requests)))

    async def _dispatch(self) -> None:
        while True:
            await self._arrived.wait()
            await self._slots.acquire()
            deadline = time.monotonic() + self.max_wait_s
            while len(self._live()) < self.max_batch:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._arrived.clear()
                try:
                    await asyncio.wait_for(self._arrived.wait(), left)
                except asyncio.TimeoutError:
                    break
            batch = self._live()[: self.max_batch]
            taken = {id(p) for p in batch}
            self._pending = [p for p in self._live() if id(p) not in taken]
            if not self._pending:
                self._arrived.clear()
            if not batch:
                self._slots.release()
                continue
            task = asyncio.get_running_loop().create_task(self._run(batch))
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)

    async def _direct(self, request: GenerationRequest) -> list[Completion]:
        start = time.perf_counter()
        try:
            (result,) = await self.policy.generate([request])
        finally:
            self.stats.record(1, time.perf_counter() - start)
        return result

    def _live(self) -> list[_Pending]:
        """Pending requests whose caller still waits (timed-out episodes drop out)."""
        return [p for p in self._pending if not p.future.done()]

    async def _run(self, batch: list[_Pending]) -> None:
        start = time.perf_counter()
        try:
            results = await self.policy.generate([p.request for p in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"{self.name} returned {len(results)} results for {len(batch)} requests")
        except Exception as exc:  # every waiting episode learns about it
            for p in batch:
                if not p.future.done():
                    p.future.set_exception(exc)
        else:
            for p, result in zip(batch, results):
                if not p.future.done():
                    p.future.set_result(result)
        finally:
            self.stats.record(len(batch), time.perf_counter() - start)
            self._slots.release()

    async def aclose(self) -> None:
        """Stop the dispatcher (the wrapped policy stays open)."""
        dispatcher = getattr(self, "_dispatcher", None)
        if dispatcher is not None and not dispatcher.done():
            dispatcher.cancel()
            try:
                await dispatcher
            except (asyncio.CancelledError, RuntimeError):
                pass
        self._dispatcher = None

    async def close(self) -> None:
        await self.aclose()
