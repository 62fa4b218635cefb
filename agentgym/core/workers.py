"""Worker threads for environment code that blocks: sync hooks never run on the event loop.

Every sync hook of a :class:`~agentgym.TextEnv` subclass (``setup``, tools, ``on_text``,
``hint``, ``progress``...) and every ``make`` of the local env factory runs here, in a pool
of its own: the event loop's default executor has ``cpu_count + 4`` threads, too few for
dozens of episodes that each wait on a sandbox or a subprocess. The threads are daemons,
so a hook that hangs (its step timed out and was abandoned) never keeps the process from
exiting, and they are started without waiting for them to run (``threading.Thread.start``
waits for the new thread to be scheduled, which on a loaded machine would stall the event
loop that submitted the work).
"""

from __future__ import annotations

import _thread
import asyncio
import concurrent.futures
import os
import queue
import threading
from typing import Any, Callable

MAX_WORKERS = int(os.environ.get("AGENTGYM_ENV_THREADS", "64"))


class DaemonPool:
    """A thread pool whose threads are daemons, started on demand up to ``max_workers``."""

    def __init__(self, max_workers: int = MAX_WORKERS, name: str = "agentgym-env"):
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        self.max_workers = max_workers
        self.name = name
        self._work: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._idle = 0

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> concurrent.futures.Future:
        """Run ``fn(*args, **kwargs)`` on a worker; the future holds its result or exception."""
        future: concurrent.futures.Future = concurrent.futures.Future()
        with self._lock:
            if self._idle == 0 and self._threads < self.max_workers:
                self._threads += 1
                _thread.start_new_thread(self._worker, (f"{self.name}-{self._threads}",))
            else:
                self._idle -= 1  # an idle worker takes this item; the count is restored when it waits again
        self._work.put((future, fn, args, kwargs))
        return future

    def _worker(self, name: str) -> None:
        threading.current_thread().name = name
        while True:
            future, fn, args, kwargs = self._work.get()
            if future.set_running_or_notify_cancel():
                try:
                    result = fn(*args, **kwargs)
                except BaseException as exc:  # the caller gets it, whatever it is
                    future.set_exception(exc)
                else:
                    future.set_result(result)
            del future, fn, args, kwargs
            with self._lock:
                self._idle += 1


_POOL = DaemonPool()


async def off_loop(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` on an environment worker thread, awaited from the event loop."""
    return await asyncio.wrap_future(_POOL.submit(fn, *args, **kwargs))
