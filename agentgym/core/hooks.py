"""How an environment's own code runs: async hooks awaited, sync ones off the event loop.

:class:`HookRunner` is the part of :class:`~agentgym.TextEnv` that calls subclass hooks.
From the async protocol a sync hook runs on an environment worker thread
(:mod:`agentgym.core.workers`) under the instance's lock, so a subclass that is not
thread-safe never runs two hooks at once; a step whose hooks are all sync runs whole in
one worker hop (:meth:`HookRunner._drive`), calling them directly. From the gymnasium API
everything runs inline in the caller's thread, with a private event loop only when a hook
is async.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import threading
from typing import Any

from agentgym.core.workers import off_loop

_IS_ASYNC: dict[Any, bool] = {}  # hook function -> whether it is ``async def`` (asked on every step)


def is_async(fn: Any) -> bool:
    """Whether ``fn`` (a function or bound method) is a coroutine function; cached per function."""
    func = getattr(fn, "__func__", fn)
    known = _IS_ASYNC.get(func)
    if known is None:
        known = _IS_ASYNC[func] = inspect.iscoroutinefunction(fn)
    return known


class HookRunner:
    """Calls an environment's hooks (see the module docstring); needs ``self._hook_lock``."""

    _hook_lock: threading.RLock
    #: The thread that runs this env's hooks inline right now (a worker in ``_drive``, or the
    #: caller of the gymnasium API), or None; ``_driving_sync``: and none of them is async.
    _driver: int | None = None
    _driving_sync: bool = False

    async def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run a hook: awaited if async, inline when this thread already runs this env's hooks,
        else on a worker thread under the instance's hook lock."""
        if is_async(fn):
            return await fn(*args, **kwargs)
        if self._driver == threading.get_ident():
            result = fn(*args, **kwargs)
        else:
            result = await off_loop(self._locked, fn, *args, **kwargs)
        if hasattr(result, "__await__"):  # a sync hook that hands back an awaitable
            result = await result
        return result

    def _locked(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        with self._hook_lock:
            return fn(*args, **kwargs)

    def _drive(self, coro: Any) -> Any:
        """Run a coroutine that never suspends to completion, its hooks inline in this thread."""
        with self._hook_lock:
            outer, self._driver = self._driver, threading.get_ident()
            outer_sync, self._driving_sync = self._driving_sync, True
            try:
                coro.send(None)
            except StopIteration as stop:
                return stop.value
            finally:
                self._driver, self._driving_sync = outer, outer_sync
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
                outer, self._driver = self._driver, threading.get_ident()
                try:
                    return asyncio.run(coro)
                finally:
                    self._driver = outer

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
