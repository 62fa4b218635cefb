"""One thread for the process's torch work (generation, learner steps, model loading).

Async code runs blocking torch calls off the event loop. Sent to asyncio's default pool,
each call can land on a different worker thread, and on CPU each of those threads gets
its own OpenMP thread team. Once libgomp manages more threads than there are cores it
stops spinning between parallel regions and puts its workers to sleep after every
operation, for the rest of the process. On a 2-core machine ``benchmarks/torch_thread.py``
measures a SmolLM2-135M batch at 3.86 s from pool threads and 2.88 s on one thread. Running
all of it on one long-lived thread keeps a single team.

Only code that never waits on other work queued here may run on this thread (it is one
thread: a job that waits for a later job would wait forever).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import threading
from typing import Any, Callable, TypeVar

T = TypeVar("T")

_lock = threading.Lock()
_executor: concurrent.futures.ThreadPoolExecutor | None = None


def torch_executor() -> concurrent.futures.ThreadPoolExecutor:
    """The process-wide single-thread executor for torch work (created on first use)."""
    global _executor
    with _lock:
        if _executor is None:
            _executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="agentgym-torch")
        return _executor


def on_torch_thread() -> bool:
    """True when the caller already runs on the torch thread."""
    return threading.current_thread().name.startswith("agentgym-torch")


async def run_on_torch_thread(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """``await`` ``fn(*args, **kwargs)`` run on the torch thread (inline if already there)."""
    if on_torch_thread():
        return fn(*args, **kwargs)
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(torch_executor(), functools.partial(fn, *args, **kwargs))
