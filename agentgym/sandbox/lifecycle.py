"""Nothing outlives its owner: every sandbox is closed on a clean exit, and reaped after a crash.

Three mechanisms, from the gentlest:

1. **Clean exit.** Every live sandbox is in a registry; a hook closes them all while the
   interpreter is still whole. It is registered with ``threading``'s exit hooks *after*
   ``concurrent.futures`` registered its own, so it runs first (they run in reverse
   order): the default thread pool still accepts work, and no worker thread blocked on a
   sandbox stream can hang the pool's final join. A plain ``atexit`` hook runs after that
   join, too late.
2. **Janitor.** The first sandbox a process makes starts a small watcher in its own session
   (``sh`` holding the read end of a pipe whose write end only the owner holds). When the
   owner dies by any means (``kill -9`` included) the pipe reaches end-of-file and the
   watcher runs ``python -m agentgym.sandbox.reaper --owner PID:START``, which removes that
   owner's containers, run dirs and cgroups. After a clean exit the owner says so first and
   the watcher exits without starting Python.
3. **Reaper on start.** The first sandbox pool of a process removes whatever dead owners
   left behind (:func:`agentgym.sandbox.reaper.reap`), e.g. when the janitor was killed too.

bwrap processes also die with their parent on their own (``--die-with-parent``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import threading
import weakref
from typing import Any

log = logging.getLogger(__name__)

_LIVE: weakref.WeakSet[Any] = weakref.WeakSet()
_LOCK = threading.Lock()
_HOOKED = False
_JANITOR: subprocess.Popen | None = None
#: Seconds the exit hook waits for all sandboxes to close.
EXIT_DEADLINE = 60.0
#: The watcher: wait for the owner's end; "clean" on the pipe means nothing is left to do.
_WATCH = 'read -r word; [ "$word" = clean ] && exit 0; exec "$@"'


def watch() -> None:
    """Install the exit hook and start the janitor, once per process: call it before the
    first sandbox is requested (a process killed mid-creation leaves one behind too)."""
    _install()


def register(sandbox: Any) -> None:
    """Track a started sandbox (call once it exists)."""
    _install()
    _LIVE.add(sandbox)


def unregister(sandbox: Any) -> None:
    """Forget a sandbox that was closed."""
    _LIVE.discard(sandbox)


def live() -> list[Any]:
    """The sandboxes of this process that are not closed yet."""
    return list(_LIVE)


def _install() -> None:
    global _HOOKED
    with _LOCK:
        if _HOOKED:
            return
        _HOOKED = True
        import concurrent.futures.thread  # noqa: F401  (its exit hook must be registered before ours)

        hook = getattr(threading, "_register_atexit", None)
        try:
            if hook is None:
                raise RuntimeError("no threading exit hooks")
            hook(close_all_at_exit)
        except RuntimeError:  # interpreter already shutting down, or an unusual Python
            import atexit

            atexit.register(close_all_at_exit)
        _start_janitor()


def close_all_at_exit() -> None:
    """Close every live sandbox now (the exit hook); then tell the janitor all is clean."""
    boxes = live()
    clean = True
    if boxes:
        async def close_all() -> None:
            await asyncio.gather(*(b.close() for b in boxes), return_exceptions=True)

        def run() -> None:
            asyncio.run(asyncio.wait_for(close_all(), EXIT_DEADLINE))

        try:  # in a thread of its own: the exiting thread may still own a (stopped) event loop
            worker = threading.Thread(target=run, name="agentgym-sandbox-exit", daemon=True)
            worker.start()
            worker.join(EXIT_DEADLINE + 5)
        except Exception as exc:  # the janitor removes what is left
            log.warning("closing sandboxes at exit failed: %s", exc)
        clean = not live()
    _stop_janitor(clean)


def _start_janitor() -> None:
    global _JANITOR
    if os.environ.get("AGENTGYM_NO_JANITOR") == "1":
        return
    from agentgym.sandbox.base import Owner

    me = Owner()
    argv = [sys.executable, "-m", "agentgym.sandbox.reaper", "--owner", f"{me.pid}:{me.start}", "--quiet"]
    try:
        _JANITOR = subprocess.Popen(["/bin/sh", "-c", _WATCH, "agentgym-janitor", *argv], stdin=subprocess.PIPE,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                                    close_fds=True, cwd="/", env={**os.environ, "PYTHONPATH": _pythonpath()})
    except OSError as exc:  # the reaper-on-start still covers this process
        log.warning("could not start the sandbox janitor: %s", exc)


def _pythonpath() -> str:
    """Where this agentgym is imported from, first, so the janitor runs the same code."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    rest = os.environ.get("PYTHONPATH", "")
    return root + (os.pathsep + rest if rest else "")


def _stop_janitor(clean: bool) -> None:
    global _JANITOR
    janitor, _JANITOR = _JANITOR, None
    if janitor is None or janitor.stdin is None:
        return
    try:
        janitor.stdin.write(b"clean\n" if clean else b"reap\n")
        janitor.stdin.close()
    except OSError:
        pass
