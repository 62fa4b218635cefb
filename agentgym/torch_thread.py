"""One thread for the process's torch work (generation, learner steps, model loading).

On CPU every thread that runs a parallel torch operation gets its own OpenMP thread team,
kept until that thread exits. Once libgomp manages more threads than there are cores it
stops spinning between parallel regions and puts its workers to sleep after every
operation, for the rest of the process: each operation then pays a futex sleep and wake.
Two places made second teams. Async code sent blocking torch calls to asyncio's default
pool, a different worker thread each time: on a 2-core machine ``benchmarks/torch_thread.py``
measures a SmolLM2-135M batch at 3.86 s from pool threads and 2.88 s on one thread. And a
learner step called on the main thread while generation ran here: ``benchmarks/learner_step.py``
went from 46.8 to 70.0 s per step; a step on 16 completions made ~38,000 voluntary context
switches with two teams and ~200 with one. So the components that do heavy torch work (the
hf policy's loading and generation, the learner's step) send it here whichever thread calls
them: :func:`run_on_torch_thread` from async code, :func:`call_on_torch_thread` from blocking code.

torch keeps the intra-op thread count per thread, once a thread has used it: a
``torch.set_num_threads`` on the main thread after this thread started does not reach it.
Configure the count with :func:`set_num_threads`, or before the first torch work.

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


def call_on_torch_thread(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` run on the torch thread, waiting for it (inline if already there).

    Blocking: from async code use :func:`run_on_torch_thread`.
    """
    if on_torch_thread():
        return fn(*args, **kwargs)
    return torch_executor().submit(fn, *args, **kwargs).result()


def set_num_threads(threads: int) -> None:
    """Set torch's intra-op thread count on the torch thread and on the calling thread."""
    import torch

    if threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    torch.set_num_threads(threads)
    call_on_torch_thread(torch.set_num_threads, threads)
