"""Talking to the Docker daemon with deadlines: no call can hold a step or the exit.

:func:`blocking` runs one SDK call in a daemon thread and stops waiting for it at a
deadline (a daemon thread never holds up the interpreter's exit, unlike a thread pool's
workers, which are joined). A command's output is read from the exec's raw socket in
bounded chunks (:func:`demux`), so a flood costs the host nothing and the reader can stop
at any time; stdin goes down the same socket (:func:`feed`); :func:`exec_stream` runs one
command that way.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from agentgym.sandbox.base import OutputBuffer, SandboxError

log = logging.getLogger(__name__)


async def blocking(fn: Callable[..., Any], *args: Any, timeout: float,
                   on_late: Callable[[Any], None] | None = None) -> Any:
    """``fn(*args)`` in a daemon thread, awaited for at most ``timeout`` seconds.

    On timeout :class:`asyncio.TimeoutError` is raised and the thread is left to finish
    on its own (a daemon thread never holds up the interpreter's exit); ``on_late`` then
    receives its result, to undo what it made (e.g. remove a container created too late).
    """
    loop = asyncio.get_running_loop()
    fut: asyncio.Future = loop.create_future()
    abandoned = threading.Event()

    def settle(value: Any, exc: BaseException | None) -> None:
        if fut.done():
            return
        if exc is not None:
            fut.set_exception(exc)
        else:
            fut.set_result(value)

    def run() -> None:
        try:
            value, exc = fn(*args), None
        except BaseException as error:  # handed to the awaiting side
            value, exc = None, error
        if abandoned.is_set():
            if on_late is not None and exc is None:
                try:
                    on_late(value)
                except Exception as error:
                    log.debug("cleaning up after a late docker call: %s", error)
            return
        try:
            loop.call_soon_threadsafe(settle, value, exc)
        except RuntimeError:  # the loop is closed: nobody waits any more
            if on_late is not None and exc is None:
                on_late(value)

    try:
        threading.Thread(target=run, name="agentgym-docker", daemon=True).start()
    except RuntimeError as exc:  # no thread could be started (the host is out of them)
        raise SandboxError(f"could not reach the docker daemon: {exc}") from exc
    try:
        return await asyncio.wait_for(fut, timeout)
    except (asyncio.TimeoutError, asyncio.CancelledError):
        abandoned.set()
        raise


def feed(raw: socket.socket, data: bytes) -> None:
    """Write stdin from a thread of its own (the command may not read it all), then half-close."""

    def write() -> None:
        try:
            raw.settimeout(30)
            raw.sendall(data)
            raw.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    if len(data) <= 16_384:  # fits the socket buffer: no thread needed
        write()
    else:
        threading.Thread(target=write, name="agentgym-docker-stdin", daemon=True).start()


def demux(raw: socket.socket, out: OutputBuffer, err: OutputBuffer, stop: Callable[[], bool]) -> bool:
    """Read docker's multiplexed stream (8-byte frame headers: stream id, 3 zero bytes, a
    big-endian length) into the two buffers; True at end of stream, False when ``stop()``."""
    header = bytearray()
    remaining, target = 0, out
    while True:
        if stop():
            return False
        try:
            chunk = raw.recv(65536)
        except TimeoutError:
            continue
        except OSError:
            return True
        if not chunk:
            return True
        view = memoryview(chunk)
        while view:
            if remaining == 0:
                need = 8 - len(header)
                header += view[:need]
                view = view[need:]
                if len(header) < 8:
                    break
                target = err if header[0] == 2 else out
                remaining = int.from_bytes(header[4:8], "big")
                header.clear()
                continue
            piece = view[:remaining]
            target.feed(bytes(piece))
            remaining -= len(piece)
            view = view[len(piece):]


def exec_stream(api: Any, container_id: str, argv: list[str], *, user: str, workdir: str, env: dict[str, str],
                limit: int, stdin: bytes | None, seconds: float,
                stop: threading.Event) -> tuple[int | None, OutputBuffer, OutputBuffer]:
    """Run one exec, streaming its output into bounded buffers until it ends, ``seconds``
    pass or ``stop`` is set; the exit code is None when it did not end. Blocking: run it
    through :func:`blocking`."""
    eid = api.exec_create(container_id, argv, user=user, workdir=workdir, environment=env,
                          stdin=stdin is not None)["Id"]
    sock = api.exec_start(eid, socket=True)
    raw: socket.socket = getattr(sock, "_sock", sock)
    out, err = OutputBuffer(limit), OutputBuffer(limit)
    end = time.monotonic() + seconds
    try:
        if stdin is not None:
            feed(raw, stdin)
        raw.settimeout(0.25)
        ended = demux(raw, out, err, lambda: stop.is_set() or time.monotonic() > end)
    finally:  # shut the connection itself (as docker-py's CancellableStream does): closing the
        try:  # wrapper leaves it open, and a daemon that cannot deliver a flood to us stalls
            raw.shutdown(socket.SHUT_RDWR)  # every later exec of the container
        except OSError:
            pass
        raw.close()
    if not ended:
        return None, out, err
    code = None
    for _ in range(20):  # the stream ends a moment before the daemon records the exit code
        info = api.exec_inspect(eid)
        code = info.get("ExitCode")
        if not info.get("Running"):
            break
        time.sleep(0.01)
    return (-1 if code is None else code), out, err  # -1: the output closed, the command lives on
