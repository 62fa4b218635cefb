"""A warm pool of ready sandboxes, per snapshot.

``acquire(spec)`` hands out a sandbox that is already started and set up (so an
environment's reset costs a queue pop), and refills the pool in the background.
``release`` either resets the sandbox in place and keeps it for the next caller
("reused") or closes it. Snapshots and warm-up are features of the pool, not of the
backends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict

from agentgym.sandbox.base import Backend, Limits, Sandbox, SandboxSpec

log = logging.getLogger(__name__)


class SandboxPool:
    """Keeps ``size`` ready sandboxes for every spec it has been asked for."""

    def __init__(self, backend: Backend, size: int = 2, limits: Limits | None = None, reuse: bool = True,
                 max_idle: int = 8):
        self.backend = backend
        self.size = size
        self.limits = limits
        self.reuse = reuse
        self.max_idle = max_idle
        self._ready: dict[str, asyncio.Queue[Sandbox]] = defaultdict(asyncio.Queue)
        self._fills: dict[str, set[asyncio.Task]] = defaultdict(set)
        self._out: set[Sandbox] = set()
        self._closed = False

    async def _make(self, spec: SandboxSpec) -> Sandbox:
        return await self.backend.create(spec, self.limits)

    def _filling(self, key: str) -> int:
        return sum(not t.done() for t in self._fills[key])

    def _refill(self, spec: SandboxSpec) -> None:
        if self._closed:
            return
        q = self._ready[spec.key]
        fills = self._fills[spec.key]
        fills.difference_update([t for t in fills if t.done()])
        for _ in range(max(self.size - q.qsize() - len(fills), 0)):
            fills.add(asyncio.create_task(self._fill(spec)))

    async def _fill(self, spec: SandboxSpec) -> None:
        try:
            # shielded: a cancelled warm-up still finishes, so its sandbox is closed, not leaked
            sandbox = await asyncio.shield(self._make(spec))
        except asyncio.CancelledError:
            return
        except Exception as exc:  # the next acquire creates one itself and raises the error
            log.warning("warming a sandbox for %s failed: %s", spec.key, exc)
            return
        if self._closed:
            await sandbox.close()
        else:
            self._ready[spec.key].put_nowait(sandbox)

    async def warm(self, spec: SandboxSpec) -> None:
        """Fill the pool for ``spec`` and wait until it is full."""
        await self.backend.prepare(spec)
        self._refill(spec)
        while self._ready[spec.key].qsize() < self.size and self._filling(spec.key) > 0:
            await asyncio.sleep(0.02)

    async def acquire(self, spec: SandboxSpec) -> Sandbox:
        """A ready sandbox for ``spec``: from the pool when one is warm, else a new one."""
        q = self._ready[spec.key]
        sandbox = None
        while not q.empty():
            candidate = q.get_nowait()
            if await candidate.is_alive():
                sandbox = candidate
                break
            await candidate.close()
        if sandbox is None:
            sandbox = await self._make(spec)
        self._out.add(sandbox)
        self._refill(spec)
        return sandbox

    async def release(self, sandbox: Sandbox, reuse: bool | None = None) -> None:
        """Give a sandbox back: reset it in place for reuse, or close it."""
        self._out.discard(sandbox)
        reuse = self.reuse if reuse is None else reuse
        q = self._ready[sandbox.spec.key]
        if reuse and not self._closed and q.qsize() < self.max_idle:
            try:
                await sandbox.reset()
                if await sandbox.is_alive():
                    q.put_nowait(sandbox)
                    return
            except Exception as exc:
                log.warning("reset of %s failed, closing it: %s", sandbox.id, exc)
        await sandbox.close()

    def discard(self, sandbox: Sandbox) -> None:
        """Drop a sandbox that stopped answering: it is removed in the background, never reused."""
        self._out.discard(sandbox)
        abandon = getattr(sandbox, "abandon", None)
        if abandon is not None:
            abandon()

    async def close(self) -> None:
        """Close every sandbox the pool made, handed out or not."""
        self._closed = True
        pending = [t for fills in self._fills.values() for t in fills]
        with contextlib.suppress(BaseException):
            await asyncio.gather(*pending, return_exceptions=True)  # each closes its own sandbox
        boxes = list(self._out)
        for q in self._ready.values():
            while not q.empty():
                boxes.append(q.get_nowait())
        self._out.clear()
        await asyncio.gather(*(b.close() for b in boxes), return_exceptions=True)

    async def __aenter__(self) -> "SandboxPool":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()
