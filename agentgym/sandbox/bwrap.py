"""Bubblewrap sandboxes, for machines without Docker.

Each command is one ``bwrap`` process over the read-only toolchain rootfs, with the
sandbox's work dir and /tmp bound read-write (they persist between commands; processes
do not: when a command ends its PID namespace goes with it). bubblewrap is only a sandbox
when it runs unprivileged: run naively as root it keeps its capabilities and could
remount the host read-write, so we first drop to a dedicated uid with ``setpriv``. The
arguments are in ``sandboxes/bwrap/profile.args``: new user, PID, network, IPC and UTS
namespaces, ``--die-with-parent``, ``--new-session``, ``--clearenv``, tmpfs over /run,
/root and /home; a seccomp filter like Docker's default (:mod:`agentgym.sandbox.seccomp`).
Limits come from :mod:`agentgym.sandbox.cgroups`; the uid, the run dirs and the profile's
arguments from :mod:`agentgym.sandbox.bwraphost`. As root, each sandbox's work dir and /tmp
live on a tmpfs of their own sized to half the memory limit, so filling /tmp ends in
``ENOSPC`` rather than in every later command being killed for memory.

File transfer goes through commands run *inside* the sandbox (``head``/``cat``/``tar``,
data on stdin), never through host paths, so a symlink planted by the agent cannot point
the host at its own files; every transfer out is bounded in bytes.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import logging
import os
import shlex
import shutil
import signal
import tarfile
from pathlib import Path

from agentgym.sandbox import images, lifecycle, seccomp
from agentgym.sandbox.base import (
    READ_SCRIPT,
    ExecResult,
    FileTooLarge,
    Limits,
    OutputBuffer,
    Owner,
    SandboxError,
    SandboxSpec,
    Stopwatch,
    new_id,
    read_error,
    unpack_tar,
)
from agentgym.sandbox.bwraphost import (
    HOST_ENV,
    bwrap_home,
    host_command,
    mount_private_tmpfs,
    profile_args,
    sandbox_ids,
)
from agentgym.sandbox.cgroups import CgroupLimits

log = logging.getLogger(__name__)


class BwrapBackend:
    """Makes :class:`BwrapSandbox` es from a toolchain rootfs built by :mod:`images`."""

    name = "bwrap"

    def __init__(self, limits: Limits | None = None, owner: Owner | None = None):
        if not shutil.which("bwrap"):
            raise SandboxError("bubblewrap is not installed: run scripts/setup/swe.sh (or apt-get install bubblewrap).")
        self.limits = limits or Limits()
        self.owner = owner or Owner()
        self.ids = sandbox_ids()
        self.rootfs: Path | None = None
        self._snap_locks: dict[str, asyncio.Lock] = {}

    def _rootfs(self) -> Path:
        if self.rootfs is None:
            self.rootfs = images.ensure_rootfs()
        return self.rootfs

    def snapshot_dir(self, spec: SandboxSpec) -> Path:
        digest = hashlib.sha256(f"{spec.source}\0{spec.setup}".encode()).hexdigest()[:12]
        safe = "".join(c if c.isalnum() or c in "._-" else "-" for c in spec.key)[:80]
        return bwrap_home() / "snap" / f"{safe}-{digest}"

    async def prepare(self, spec: SandboxSpec) -> Path:
        """Build the post-set-up snapshot of ``spec`` once (shared by all its sandboxes)."""
        if spec.image:
            raise SandboxError("the bwrap backend cannot use docker images; use the docker backend for this task.")
        snap = self.snapshot_dir(spec)
        ready = snap.parent / f"{snap.name}.ready"  # beside the tree, so sandboxes never see it
        if ready.exists():
            return snap
        lock = self._snap_locks.setdefault(snap.name, asyncio.Lock())
        async with lock:
            if ready.exists():
                return snap
            rootfs = await asyncio.to_thread(self._rootfs)
            tmp = snap.parent / f".tmp-{new_id()}"
            work, empty = tmp / "work", tmp / "empty"
            try:
                empty.mkdir(parents=True)
                if spec.source is not None:
                    await host_command("cp", "-a", "--reflink=auto", f"{spec.source}/.", str(work))
                else:
                    work.mkdir()
                await self._chown(work)
                sandbox = BwrapSandbox(self, spec, self.limits, work=work, snap=empty, tmp=None, rootfs=rootfs)
                try:
                    res = await sandbox.exec(["bash", "-ec", spec.setup or "true"],
                                             timeout=max(self.limits.timeout, 120), limit=64_000)
                finally:
                    sandbox.cgroup.remove()
                if not res.ok:
                    raise SandboxError(f"set-up of {spec.key} failed ({res.exit_code}): {res.stderr[-2000:]}")
                os.chmod(work, 0o755)
                shutil.rmtree(snap, ignore_errors=True)
                work.rename(snap)
                ready.write_text("ok\n")
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        return snap

    async def _chown(self, path: Path) -> None:
        if self.ids:
            await host_command("chown", "-R", f"{self.ids[0]}:{self.ids[1]}", str(path))

    async def create(self, spec: SandboxSpec, limits: Limits | None = None) -> BwrapSandbox:
        snap = await self.prepare(spec)
        rootfs = await asyncio.to_thread(self._rootfs)
        sid = new_id()
        limits = limits or self.limits
        lifecycle.watch()  # before the run dir exists: a kill during creation is covered too
        run = bwrap_home() / "run" / sid
        run.mkdir(parents=True)
        (run / "owner.json").write_text(json.dumps(self.owner.labels()))  # before the mount: the reaper reads it
        if mount_private_tmpfs(run, limits):
            (run / "owner.json").write_text(json.dumps(self.owner.labels()))
        sandbox = BwrapSandbox(self, spec, limits, work=run / "work", snap=snap, tmp=run / "tmp",
                               rootfs=rootfs, sid=sid, run=run)
        lifecycle.register(sandbox)
        try:
            await sandbox.restore()
        except BaseException:
            await sandbox.close()
            raise
        return sandbox


class BwrapSandbox:
    """A work dir + tmp dir on the host, entered by one bwrap process per command."""

    def __init__(self, backend: BwrapBackend, spec: SandboxSpec, limits: Limits, *, work: Path, snap: Path,
                 tmp: Path | None, rootfs: Path, sid: str | None = None, run: Path | None = None):
        self.backend = backend
        self.spec = spec
        self.limits = limits
        self.id = sid or new_id()
        self.work, self.snap, self.tmp, self.run = work, snap, tmp, run
        self.cgroup = CgroupLimits(self.id, limits)
        paths = {"rootfs": str(rootfs), "work": str(work), "snap": str(snap)}
        self.args = profile_args(**paths)
        if tmp is not None:
            self.args += ["--bind", str(tmp), "/tmp"]
        self.closed = False
        self._removed = False

    # --- life cycle -------------------------------------------------------------------------
    async def restore(self) -> None:
        """Copy the snapshot to the work dir and empty /tmp (one shell, on a tmpfs: fast)."""
        await asyncio.to_thread(self.cgroup.kill)
        script = 'rm -rf --one-file-system -- "$1" && cp -a --reflink=auto -- "$2" "$1"'
        args = [str(self.work), str(self.snap)]
        if self.tmp is not None:
            owner = f"{self.backend.ids[0]}:{self.backend.ids[1]}" if self.backend.ids else ""
            script += ' && rm -rf --one-file-system -- "$3" && mkdir -m 0700 -- "$3"'
            script += ' && chown -- "$4" "$3"' if owner else ""
            args += [str(self.tmp), owner]
        await host_command("sh", "-c", script, "restore", *args)

    async def reset(self) -> None:
        await self.restore()

    async def kill_all(self) -> None:
        """Kill every process of this sandbox (none outlives its command here, but be sure)."""
        await asyncio.to_thread(self.cgroup.kill)

    async def is_alive(self) -> bool:
        return not self.closed and self.work.is_dir()

    async def close(self) -> None:
        """Kill everything and remove the run dir and cgroups (also what :meth:`abandon` started)."""
        if self._removed:
            return
        self.closed = True
        try:
            await asyncio.to_thread(self._remove)
        finally:
            lifecycle.unregister(self)

    def _remove(self) -> None:
        self.cgroup.remove()
        if self.run is not None:
            from agentgym.sandbox.reaper import remove_run_dir

            remove_run_dir(self.run)
        self._removed = True

    def abandon(self) -> None:
        """Close in the background, without waiting (a sandbox that stopped answering); a later
        :meth:`close` (the exit hook's) still finishes the job."""
        if self.closed:
            return
        self.closed = True

        def remove() -> None:
            try:
                self._remove()
            finally:
                lifecycle.unregister(self)

        import threading

        threading.Thread(target=remove, name="agentgym-bwrap-abandon", daemon=True).start()

    # --- commands ---------------------------------------------------------------------------
    def argv(self, inner: list[str], workdir: str | None, seccomp_fd: int | None = None) -> list[str]:
        drop: list[str] = []
        if self.backend.ids:
            uid, gid = self.backend.ids
            drop = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--inh-caps=-all", "--"]
        chdir = ["--chdir", workdir] if workdir else []
        filt = ["--seccomp", str(seccomp_fd)] if seccomp_fd is not None else []
        return self.cgroup.wrap([*drop, "bwrap", *self.args, *filt, *chdir, "--", *inner])

    async def _run(self, inner: list[str], timeout: float, workdir: str | None, limit: int,
                   stdin: bytes | None = None) -> ExecResult:
        return (await self._run_raw(inner, timeout, workdir, limit, stdin))[0]

    async def _run_raw(self, inner: list[str], timeout: float, workdir: str | None, limit: int,
                       stdin: bytes | None = None) -> tuple[ExecResult, OutputBuffer]:
        """One command in a fresh bwrap; the result and the raw bytes kept of its stdout."""
        if self.closed:
            raise SandboxError(f"sandbox {self.id} is closed")
        clock = Stopwatch()
        ooms = self.cgroup.oom_kills()
        fd = seccomp.program_fd()
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.argv(inner, workdir, fd), stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, start_new_session=True, env=HOST_ENV,
                pass_fds=(fd,) if fd is not None else ())
        except OSError as exc:  # the host could not fork (EAGAIN under load, no memory)
            raise SandboxError(f"could not start a command in sandbox {self.id}: {exc}") from exc
        finally:
            if fd is not None:
                os.close(fd)
        out, err = OutputBuffer(limit), OutputBuffer(limit)

        async def pump(stream: asyncio.StreamReader, buf: OutputBuffer) -> None:
            while chunk := await stream.read(65536):
                buf.feed(chunk)

        async def feed() -> None:
            if stdin is not None:
                try:
                    proc.stdin.write(stdin)
                    await proc.stdin.drain()
                except (BrokenPipeError, ConnectionResetError):
                    pass
                proc.stdin.close()

        work = asyncio.gather(pump(proc.stdout, out), pump(proc.stderr, err), feed(), proc.wait())
        timed_out = False
        try:
            await asyncio.wait_for(asyncio.shield(work), timeout)
        except asyncio.TimeoutError:
            timed_out = True
        finally:
            if timed_out or not work.done():
                self._kill(proc)
                await asyncio.to_thread(self.cgroup.kill)
                try:
                    await asyncio.wait_for(work, 10)
                except (asyncio.TimeoutError, asyncio.CancelledError):
                    log.error("bwrap command in %s did not end after SIGKILL", self.id)
        stderr = err.text()
        if timed_out:
            return ExecResult(124, out.text(), stderr + f"\n[killed: timed out after {timeout:g} s]",
                              timed_out=True, duration=clock(), note=f"killed: timed out after {timeout:g} s"), out
        code = proc.returncode if proc.returncode is not None else -1
        if code < 0:
            code = 128 - code
        note = ""
        if code == 137 and self.cgroup.oom_kills() > ooms:
            note = f"killed: out of memory (the sandbox has {self.limits.memory_mb} MB)"
            stderr += f"\n[{note}]"
        return ExecResult(code, out.text(), stderr, duration=clock(), truncated=out.truncated or err.truncated,
                          note=note), out

    @staticmethod
    def _kill(proc: asyncio.subprocess.Process) -> None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    async def exec(self, cmd: str | list[str], timeout: float | None = None, *, user: str = "agent",
                   workdir: str | None = None, limit: int | bool | None = True, stdin: bytes | None = None) -> ExecResult:
        """Run ``cmd``. ``user`` is accepted for protocol compatibility: bwrap has one uid."""
        argv = ["bash", "-c", cmd] if isinstance(cmd, str) else list(cmd)
        cap = self.limits.max_output if limit is True or limit is None or limit is False else int(limit)
        return await self._run(argv, self.limits.timeout if timeout is None else timeout, workdir, cap, stdin)

    # --- files ------------------------------------------------------------------------------
    async def _transfer(self, argv: list[str], stdin: bytes | None, limit: int, what: str) -> tuple[int, bytes, str]:
        res, out = await self._run_raw(argv, self.limits.timeout, None, limit, stdin)
        if res.timed_out:
            raise OSError(f"{what} in {self.id} timed out")
        return res.exit_code, out.data(), res.stderr

    async def read_file(self, path: str, max_bytes: int | None = None) -> bytes:
        cap = self.limits.max_read if max_bytes is None else max_bytes
        code, data, err = await self._transfer(["bash", "-c", READ_SCRIPT, "r", path, str(cap + 1)], None, cap + 1,
                                               f"reading {path}")
        problem = read_error(path, code, err, cap, len(data))
        if problem:
            raise problem
        return data

    async def write_file(self, path: str, data: bytes | str, *, user: str = "agent") -> None:
        raw = data.encode() if isinstance(data, str) else data
        code, _, err = await self._transfer(["bash", "-c", 'mkdir -p -- "$(dirname -- "$1")" && cat > "$1"', "w", path],
                                            raw, 4096, f"writing {path}")
        if code != 0:
            raise OSError(f"cannot write {path}: {err.strip()[-300:]}")

    async def copy_in(self, host_path: Path, path: str) -> None:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tf:
            tf.add(str(host_path), arcname=Path(path).name)
        parent = shlex.quote(str(Path(path).parent))
        script = f"mkdir -p {parent} && tar -xf - -C {parent} --no-same-owner"
        code, _, err = await self._transfer(["bash", "-c", script], buf.getvalue(), 4096, f"copying into {path}")
        if code != 0:
            raise OSError(f"cannot copy into {path}: {err.strip()[-300:]}")

    async def copy_out(self, path: str, host_path: Path) -> None:
        p = Path(path)
        cap = self.limits.max_archive
        code, data, err = await self._transfer(["tar", "-cf", "-", "-C", str(p.parent), p.name], None, cap + 1,
                                               f"copying {path} out")
        if code != 0:
            raise FileNotFoundError(err.strip()[-300:] or path)
        if len(data) > cap:
            raise FileTooLarge(f"{path} is larger than {cap} bytes as an archive")
        await asyncio.to_thread(unpack_tar, data, p.name, Path(host_path))
