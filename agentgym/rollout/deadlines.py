"""Time limits for many concurrent awaits, kept with one timer.

Every environment call of the rollout engine (a reset, each step, each hook, the close) is
bounded by ``step_timeout_s``. ``asyncio.timeout`` gives each call a timer of its own: an
object, a handle pushed onto the loop's timer heap and cancelled again, ~8 us per call on the
path of every turn. :class:`Deadlines` keeps the calls in flight in a dict and arms one timer
for the earliest deadline; a call that ends in time only enters and leaves the dict. When the
timer fires, the calls past their deadline are cancelled (each raises
``asyncio.TimeoutError`` in its caller, exactly as ``asyncio.timeout`` would) and the timer is
armed again, at most once per ``resolution`` seconds: a call may overrun by that much before
it is stopped (the engine sets it to an eighth of the limit, at most a second).
"""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable


class _Call:
    __slots__ = ("cancelling", "deadline", "expired", "task")

    def __init__(self, task: asyncio.Task, deadline: float, cancelling: int):
        self.task, self.deadline, self.cancelling, self.expired = task, deadline, cancelling, False


class Deadlines:
    """``await deadlines.within(call, limit)``: ``await call``, or ``asyncio.TimeoutError`` after ``limit`` s."""

    def __init__(self, resolution: float = 1.0):
        if resolution <= 0:
            raise ValueError("resolution must be positive")
        self.resolution = resolution
        self._loop: asyncio.AbstractEventLoop | None = None
        self._calls: dict[int, _Call] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._due = 0.0

    async def within(self, call: Awaitable[Any], limit: float) -> Any:
        task = asyncio.current_task()
        if task is None or not hasattr(task, "uncancel"):  # Python < 3.11, or no task: asyncio's own way
            return await asyncio.wait_for(call, limit)
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new event loop: what the old one held is gone
            self._loop, self._calls, self._timer = loop, {}, None
        entry = _Call(task, loop.time() + limit, task.cancelling())
        self._calls[id(entry)] = entry
        if self._timer is None or entry.deadline < self._due:
            self._arm(entry.deadline)
        try:
            return await call
        except asyncio.CancelledError:
            if entry.expired:
                entry.expired = False
                if task.uncancel() <= entry.cancelling:  # ours, and nobody else cancelled the task meanwhile
                    raise asyncio.TimeoutError from None
            raise
        finally:
            del self._calls[id(entry)]
            if entry.expired:  # the call swallowed our cancellation: leave the task as it found it
                task.uncancel()

    def _arm(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._due = when
        self._timer = self._loop.call_at(when, self._expire)

    def _expire(self) -> None:
        self._timer = None
        now = self._loop.time()
        for entry in self._calls.values():
            if not entry.expired and entry.deadline <= now:
                entry.expired = True
                entry.task.cancel()
        pending = [entry.deadline for entry in self._calls.values() if not entry.expired]
        if pending:
            self._arm(max(min(pending), now + self.resolution))
