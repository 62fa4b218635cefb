"""The sandbox protocol that every backend (docker, bwrap) implements.

A sandbox starts from a :class:`SandboxSpec` snapshot: a toolchain root filesystem, a
source tree copied to the work dir, and a set-up script run once as the snapshot is made.
Everything a model writes runs inside one. Every byte that comes back to the host is
bounded where it is read, whatever a file claims its size is: command output is cut in the
middle (:class:`OutputBuffer`), file reads and archives stop at a byte limit and raise
:class:`FileTooLarge` beyond it.
"""

from __future__ import annotations

import io
import os
import tarfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

#: Label (docker) / directory-name prefix (bwrap) that marks everything we create, so a
#: reaper can find the leftovers of a crashed run.
LABEL = "agentgym.sandbox"
WORKDIR = "/work"
#: Where, inside a sandbox, the post-set-up snapshot of the work dir lives (read-only to
#: the agent). Grading restores protected files from here.
SNAPSHOT_DIR = "/var/lib/agentgym/snap"


@dataclass(frozen=True)
class Limits:
    """Resource limits of one sandbox."""

    memory_mb: int = 1024
    cpus: float = 1.0
    pids: int = 256
    #: Default wall-clock timeout of one exec, in seconds.
    timeout: float = 60.0
    #: Bytes of stdout (and, separately, stderr) kept from one exec; the rest is cut out
    #: of the middle and replaced by a marker.
    max_output: int = 16_000
    #: Largest file ``read_file`` returns and largest archive ``copy_out`` accepts, in bytes.
    max_read: int = 8_000_000
    max_archive: int = 256_000_000


@dataclass(frozen=True)
class SandboxSpec:
    """What a sandbox is started from.

    ``source`` is a host directory copied to the work dir (readable by root only inside
    the sandbox while ``setup`` runs, then gone); ``setup`` is a shell script run once in
    the work dir to turn the pristine source into the snapshot (e.g. commit it to git and
    inject a bug). ``key`` names the snapshot: sandboxes with the same key are
    interchangeable, which is what a warm pool relies on.
    """

    key: str
    source: Path | None = None
    setup: str = ""
    image: str | None = None  # docker: a ready image to use instead of building one from `source`
    workdir: str = WORKDIR


@dataclass
class ExecResult:
    """The outcome of one command."""

    exit_code: int
    stdout: str
    stderr: str
    timed_out: bool = False
    duration: float = 0.0
    truncated: bool = False
    #: What the sandbox itself did to end or recover from this command, in one sentence
    #: ("killed: out of memory", "the sandbox was restarted ..."); empty when nothing.
    note: str = ""
    #: True when the sandbox had to be restarted: its processes and work dir are gone.
    restarted: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out


class SandboxError(RuntimeError):
    """A sandbox could not be started, built or reached."""


class FileTooLarge(OSError):
    """A file or archive in a sandbox is larger than the byte limit of the read."""


class NotARegularFile(OSError):
    """The path is a directory, device, FIFO, socket or a kernel pseudo-file (/proc, /sys, /dev)."""


#: Run inside a sandbox to read one file, bounded: exit 2 if it does not exist, 3 if it is
#: not a regular file (pseudo-files under /proc, /sys and /dev claim size 0 but are
#: endless, so they are refused by path), else at most ``$2`` bytes on stdout.
READ_SCRIPT = r"""p=$(realpath -e -- "$1" 2>/dev/null) || exit 2
case "$p" in /proc|/proc/*|/sys|/sys/*|/dev|/dev/*) exit 3;; esac
[ -f "$p" ] || exit 3
exec head -c "$2" -- "$p"
"""


def read_error(path: str, code: int, stderr: str, max_bytes: int, got: int) -> OSError | None:
    """The error for a bounded read that exited with ``code`` and produced ``got`` bytes."""
    if code == 2:
        return FileNotFoundError(f"{path} does not exist")
    if code == 3:
        return NotARegularFile(f"{path} is not a regular file")
    if code != 0:
        return OSError(stderr.strip()[-300:] or f"cannot read {path} (exit code {code})")
    if got > max_bytes:
        return FileTooLarge(f"{path} is larger than {max_bytes} bytes")
    return None


@runtime_checkable
class Sandbox(Protocol):
    """One isolated machine-like place to run commands in."""

    id: str
    spec: SandboxSpec
    limits: Limits

    async def exec(
        self, cmd: str | list[str], timeout: float | None = None, *, user: str = "agent", workdir: str | None = None,
        limit: int | bool = True, stdin: bytes | None = None,
    ) -> ExecResult:
        """Run ``cmd`` (a shell string, or an argv list); kill it and all it spawned at ``timeout``.

        ``limit`` caps the bytes kept of stdout and of stderr (True: ``limits.max_output``);
        ``stdin`` is fed to the command. The call returns by ``timeout`` plus a few seconds
        whatever the command does: the deadline is enforced from outside the sandbox.
        """
        ...

    async def read_file(self, path: str, max_bytes: int | None = None) -> bytes:
        """The bytes of a regular file; :class:`FileTooLarge` past ``max_bytes`` (``limits.max_read``)."""
        ...

    async def write_file(self, path: str, data: bytes | str) -> None: ...

    async def copy_in(self, host_path: Path, path: str) -> None:
        """Copy a host file or directory into the sandbox at ``path``."""
        ...

    async def copy_out(self, path: str, host_path: Path) -> None:
        """Copy a file or directory out of the sandbox to ``host_path`` (at most ``limits.max_archive`` bytes)."""
        ...

    async def reset(self) -> None:
        """Return to the snapshot: kill every process; restore the work dir; empty /tmp, /dev/shm,
        SysV IPC and POSIX message queues."""
        ...

    async def kill_all(self) -> None:
        """Kill every process in the sandbox (e.g. before grading)."""
        ...

    async def is_alive(self) -> bool: ...

    async def close(self) -> None: ...


@runtime_checkable
class Backend(Protocol):
    """Makes sandboxes of one kind."""

    name: str

    async def create(self, spec: SandboxSpec, limits: Limits | None = None) -> Sandbox: ...

    async def prepare(self, spec: SandboxSpec) -> None:
        """Build whatever ``spec`` needs (images, snapshots) ahead of time."""
        ...


@dataclass
class Owner:
    """Who owns a sandbox: lets the reaper tell leftovers of dead processes from live ones."""

    pid: int = field(default_factory=os.getpid)
    start: str = field(default_factory=lambda: process_start_time(os.getpid()) or "")
    boot: str = field(default_factory=lambda: boot_id())

    def labels(self) -> dict[str, str]:
        return {LABEL: "1", f"{LABEL}.owner_pid": str(self.pid), f"{LABEL}.owner_start": self.start,
                f"{LABEL}.boot": self.boot}

    @classmethod
    def from_labels(cls, labels: dict[str, str]) -> Owner:
        return cls(pid=int(labels.get(f"{LABEL}.owner_pid", "0") or 0),
                   start=labels.get(f"{LABEL}.owner_start", ""), boot=labels.get(f"{LABEL}.boot", ""))

    def alive(self) -> bool:
        """True when the owning process still runs (same boot, same pid, same start time)."""
        if self.boot != boot_id() or self.pid <= 0:
            return False
        return process_start_time(self.pid) == self.start


def boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:  # pragma: no cover - non-Linux
        return ""


def process_start_time(pid: int) -> str | None:
    """The start time of ``pid`` in clock ticks since boot (field 22 of /proc/PID/stat)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def new_id() -> str:
    return f"ag-{uuid.uuid4().hex[:12]}"


class OutputBuffer:
    """Keeps the head and the tail of a stream, at most ``limit`` bytes in all.

    The middle is dropped as it streams (so a command printing gigabytes costs no
    memory) and replaced by a marker saying how much was cut.
    """

    def __init__(self, limit: int):
        self.limit = max(limit, 64)
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def feed(self, chunk: bytes) -> None:
        self.total += len(chunk)
        half = self.limit // 2
        room = half - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if chunk:
            self.tail += chunk
            if len(self.tail) > self.limit - half:
                del self.tail[: len(self.tail) - (self.limit - half)]

    @property
    def truncated(self) -> bool:
        return self.total > len(self.head) + len(self.tail)

    def data(self) -> bytes:
        """The bytes kept (all of them when nothing was cut)."""
        return bytes(self.head + self.tail)

    def text(self) -> str:
        head = self.head.decode("utf-8", "replace")
        tail = self.tail.decode("utf-8", "replace")
        if not self.truncated:
            return head + tail
        cut = self.total - len(self.head) - len(self.tail)
        return f"{head}\n[... {cut} bytes truncated ...]\n{tail}"


_CONTROL = {c: f"\\x{c:02x}" for c in [*range(0x09), *range(0x0B, 0x20), 0x7F, *range(0x80, 0xA0)]}


def printable(text: str) -> str:
    """``text`` with control characters shown as ``\\xNN`` (newline and tab kept): raw terminal
    escapes and NUL bytes from a sandbox never reach a prompt, a log or a terminal."""
    return text.translate(_CONTROL)


def truncate(text: str, limit: int) -> str:
    """Cut ``text`` to about ``limit`` bytes, keeping its head and tail, with a marker."""
    buf = OutputBuffer(limit)
    buf.feed(text.encode("utf-8", "replace"))
    return buf.text()


class Stopwatch:
    def __init__(self) -> None:
        self.start = time.perf_counter()

    def __call__(self) -> float:
        return time.perf_counter() - self.start


def unpack_tar(data: bytes, name: str, host_path: Path) -> None:
    """Extract the tar of one file or directory ``name`` to ``host_path``."""
    import shutil
    import tempfile

    host_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=host_path.parent) as tmp:
        with tarfile.open(fileobj=io.BytesIO(data)) as tf:
            tf.extractall(tmp, filter="data")
        if host_path.exists() and host_path.is_dir():
            shutil.rmtree(host_path)
        shutil.move(str(Path(tmp) / name), host_path)
