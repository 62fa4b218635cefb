"""How an environment's own code runs: async hooks awaited, sync ones off the event loop.

:class:`HookRunner` is the part of :class:`~agentgym.TextEnv` that calls subclass hooks.
From the async protocol a sync hook runs on an environment worker thread
(:mod:`agentgym.core.workers`) under the instance's lock, so a subclass that is not
thread-safe never runs two hooks at once; a step whose hooks are all sync runs whole in
one worker hop (:meth:`HookRunner._drive`). From the gymnasium API everything runs inline
in the caller's thread, with a private event loop only when a hook is async.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import threading
from typing import Any

from agentgym.core.workers import off_loop

_local = threading.local()  # _local.env: the env whose hooks this thread runs inline


class HookRunner:
    """Calls an environment's hooks (see the module docstring); needs ``self._hook_lock``."""

    _hook_lock: threading.RLock

    async def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run a hook: awaited if async, inline when this thread already runs this env's hooks,
        else on a worker thread under the instance's hook lock."""
        if inspect.iscoroutinefunction(fn):
            return await fn(*args, **kwargs)
        if getattr(_local, "env", None) is self:
            result = fn(*args, **kwargs)
        else:
            result = await off_loop(self._locked, fn, *args, **kwargs)
        if inspect.isawaitable(result):
            result = await result
        return result

    def _locked(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        with self._hook_lock:
            return fn(*args, **kwargs)

    def _drive(self, coro: Any) -> Any:
        """Run a coroutine that never suspends to completion, its hooks inline in this thread."""
        with self._hook_lock:
            outer, _local.env = getattr(_local, "env", None), self
            try:
                coro.send(None)
            except StopIteration as stop:
                return stop.value
            finally:
                _local.env = outer
            coro.close()
            raise RuntimeError("an environment hook suspended although none of them is async")

    def _run_sync(self, coro: Any, suspends: bool) -> Any:
        """Run a coroutine from sync code (the gymnasium API), hooks inline in this thread.

        One that never suspends takes one ``send`` and no event loop (cheap); one that awaits
        an async hook gets a private loop, in a helper thread when a loop already runs here.
        """
        if not suspends:
            return self._drive(coro)

        def run() -> Any:
            with self._hook_lock:
                outer, _local.env = getattr(_local, "env", None), self
                try:
                    return asyncio.run(coro)
                finally:
                    _local.env = outer

        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return run()
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            return pool.submit(run).result()


def run_sync(coro: Any) -> Any:
    """Run a coroutine to completion from sync code: a private loop, in a helper thread when a
    loop already runs in this one (for an env's sync wrappers of its async methods)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()
