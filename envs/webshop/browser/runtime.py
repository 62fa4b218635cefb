"""One browser and one shop server per process, on a private event loop thread.

Playwright's async objects belong to the event loop that made them, while a
:class:`~agentgym.core.TextEnv` steps from whatever thread calls it. So the runtime
owns a daemon thread running one event loop, which hosts the aiohttp
:class:`~envs.webshop.browser.server.ShopServer` and a headless Debian chromium
launched through Playwright (``executable_path``, never ``playwright install``);
environments hand it coroutines with :meth:`BrowserRuntime.call` and wait.

Clean-up on every exit path: each environment closes its own browser context; the
runtime closes the browser, Playwright's driver and the server at interpreter exit
(``atexit``), and if the process dies without running it (SIGKILL), Playwright's driver
sees its pipe close and takes the browser down with it (tested).
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import secrets
import threading
from collections.abc import Awaitable
from concurrent.futures import Future
from typing import TypeVar

from agentgym.browser import CHROMIUM_FLAGS, chromium_path
from agentgym.errors import require
from envs.webshop.browser.server import ShopServer

T = TypeVar("T")
DEFAULT_TIMEOUT_S = 30.0
log = logging.getLogger(__name__)


class BrowserRuntime:
    """The process-wide loop thread, Playwright, chromium and shop server."""

    def __init__(self) -> None:
        require("playwright.async_api", "browser", "the WebShop browser mode")
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run_loop, name="webshop-browser", daemon=True)
        self._thread.start()
        self.server = ShopServer()
        # An inert switch on chromium's command line, so its processes can be found (and checked gone).
        self.marker = f"--agentgym-webshop-runtime={os.getpid()}-{secrets.token_hex(4)}"
        self._playwright = None
        self.browser = None
        self.closed = False
        try:
            self.call(self._start(), timeout=60.0)
        except BaseException:
            self.close()
            raise

    def _run_loop(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    async def _start(self) -> None:
        from playwright.async_api import async_playwright

        await self.server.start()
        self._playwright = await async_playwright().start()
        self.browser = await self._playwright.chromium.launch(
            executable_path=chromium_path(), headless=True, args=[*CHROMIUM_FLAGS, self.marker]
        )

    def call(self, coro: Awaitable[T], timeout: float = DEFAULT_TIMEOUT_S) -> T:
        """Run ``coro`` on the runtime's loop and wait for its result (from any other thread)."""
        if self.closed:
            raise RuntimeError("the browser runtime is closed")
        future: Future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise

    def process_ids(self) -> list[int]:
        """The chromium processes this runtime launched (found by their marker switch)."""
        return processes_with(self.marker)

    async def _stop(self) -> None:
        for step in (
            lambda: self.browser.close() if self.browser else None,
            lambda: self._playwright.stop() if self._playwright else None,
            self.server.stop,
        ):
            try:
                result = step()
                if result is not None:
                    await asyncio.wait_for(result, 15)
            except Exception:  # closing must go on whatever one part says
                log.debug("a step of closing the browser runtime failed", exc_info=True)

    def close(self) -> None:
        """Close the browser, Playwright and the server, then stop the loop thread (idempotent)."""
        if self.closed:
            return
        if self._thread.is_alive():
            try:
                asyncio.run_coroutine_threadsafe(self._stop(), self.loop).result(30)
            except Exception:  # the loop may be wedged: stop it anyway
                log.debug("closing the browser runtime failed", exc_info=True)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
        self.closed = True


def processes_with(marker: str) -> list[int]:
    """Live processes whose command line contains ``marker`` (Linux /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if marker.encode() in f.read():
                    found.append(int(entry))
        except OSError:  # ended while we looked
            continue
    return found


_RUNTIME: BrowserRuntime | None = None
_LOCK = threading.Lock()


def shared_runtime() -> BrowserRuntime:
    """The process's :class:`BrowserRuntime`, started on first use and closed at exit."""
    global _RUNTIME
    with _LOCK:
        if _RUNTIME is None or _RUNTIME.closed:
            _RUNTIME = BrowserRuntime()
            atexit.register(_RUNTIME.close)
        return _RUNTIME


def close_runtime() -> None:
    """Close the shared runtime now (tests; a later environment starts a new one)."""
    global _RUNTIME
    with _LOCK:
        if _RUNTIME is not None:
            _RUNTIME.close()
            _RUNTIME = None
