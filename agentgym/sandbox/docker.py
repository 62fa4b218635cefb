"""Docker sandboxes: one long-lived container per sandbox, commands run with ``exec``.

Each container runs with no network, memory/CPU/pids limits, no-new-privileges, all
capabilities dropped but the few root needs for set-up, a read-only root filesystem
with tmpfs for ``/work``, ``/tmp`` and the snapshot (sized below the memory limit, so a
full disk is ``ENOSPC``, not an out-of-memory kill), and ``init`` (else stopping takes
seconds). The agent's commands run as the unprivileged ``agent`` user. The scripts run
as root inside it (set-up, kill, reset) are in :mod:`agentgym.sandbox.dockerscripts`.

Every call to the daemon has a deadline enforced from outside the sandbox: it runs in a
daemon thread that the caller stops waiting for (:mod:`agentgym.sandbox.dockerio`), so a
hung stream or an overloaded daemon can never hold a step (or the interpreter's exit). Commands stream over
the exec's raw socket, read in bounded chunks (output beyond the cap is dropped as it
arrives) with stdin written to the same socket. At a command's deadline a watchdog kills
every process of the ``agent`` user (``setsid`` children included) through a root exec
that has its own short deadline; if that fails (a fork bomb can fill the pids limit so
that no exec starts) the container is killed and started again from the snapshot, and
the result says so.
"""

from __future__ import annotations

import asyncio
import io
import logging
import shlex
import tarfile
import threading
from pathlib import Path

from agentgym.sandbox import images, lifecycle
from agentgym.sandbox.base import (
    LABEL,
    READ_SCRIPT,
    SNAPSHOT_DIR,
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
from agentgym.sandbox.dockerio import blocking, exec_stream
from agentgym.sandbox.dockerscripts import ENV, INIT_SCRIPT, KILL_SCRIPT, RESET_SCRIPT

log = logging.getLogger(__name__)

#: Seconds the watchdog's kill gets before the container is restarted instead.
KILL_DEADLINE = 2.5
#: Seconds any other control call to the daemon (inspect, restart, remove) may take.
CONTROL_DEADLINE = 20.0


def docker_client():
    """A Docker client, or a :class:`SandboxError` saying how to start a daemon."""
    try:
        import docker
    except ImportError as exc:  # pragma: no cover
        from agentgym.errors import MissingExtraError

        raise MissingExtraError("docker", "swe", "the docker sandbox backend") from exc
    try:
        client = docker.from_env(timeout=900, max_pool_size=64)  # image builds can be silent long
        client.ping()
    except Exception as exc:
        raise SandboxError(
            "no Docker daemon answers; start one (`scripts/setup/swe.sh` does) or use the bwrap backend."
        ) from exc
    return client


class DockerBackend:
    """Makes :class:`DockerSandbox` es. ``client`` defaults to ``docker.from_env()``."""

    name = "docker"

    def __init__(self, client=None, limits: Limits | None = None, owner: Owner | None = None):
        self.client = client or docker_client()
        self.limits = limits or Limits()
        self.owner = owner or Owner()

    def _image_for(self, spec: SandboxSpec) -> str:
        if spec.image:
            return spec.image
        if spec.source is None:
            return images.ensure_docker_toolchain(self.client)
        return images.ensure_docker_repo(self.client, Path(spec.source).name, Path(spec.source))

    async def prepare(self, spec: SandboxSpec) -> None:
        await asyncio.to_thread(self._image_for, spec)

    async def create(self, spec: SandboxSpec, limits: Limits | None = None) -> DockerSandbox:
        sandbox = DockerSandbox(self, spec, limits or self.limits)
        await sandbox.start()
        return sandbox


def _tmpfs_sizes(memory_mb: int) -> tuple[int, int, int]:
    """MB for /work, /tmp and /dev/shm: each full one gives ENOSPC before the memory limit."""
    return min(1024, max(memory_mb // 2, 32)), min(512, max(memory_mb // 4, 16)), min(64, max(memory_mb // 8, 8))


class DockerSandbox:
    """A container started from a :class:`SandboxSpec`."""

    def __init__(self, backend: DockerBackend, spec: SandboxSpec, limits: Limits):
        self.backend = backend
        self.client = backend.client
        self.spec = spec
        self.limits = limits
        self.id = new_id()
        self.container = None
        self._abandoned = None  # a container being removed in the background
        self.restarts = 0

    # --- life cycle -------------------------------------------------------------------------
    def _create_blocking(self):
        lim = self.limits
        image = self.backend._image_for(self.spec)
        labels = self.backend.owner.labels() | {f"{LABEL}.id": self.id, f"{LABEL}.key": self.spec.key[:200]}
        mb = f"{lim.memory_mb}m"
        work, tmp, shm = _tmpfs_sizes(lim.memory_mb)
        return self.client.containers.run(
            image, ["sleep", "infinity"], name=self.id, detach=True, labels=labels, init=True,
            network_mode="none", mem_limit=mb, memswap_limit=mb, nano_cpus=int(lim.cpus * 1e9),
            pids_limit=lim.pids, security_opt=["no-new-privileges"], cap_drop=["ALL"],
            cap_add=["CHOWN", "DAC_OVERRIDE", "FOWNER", "KILL", "SETUID", "SETGID"], read_only=True,
            tmpfs={self.spec.workdir: f"rw,exec,mode=0755,size={work}m", "/tmp": f"rw,exec,mode=1777,size={tmp}m",
                   SNAPSHOT_DIR: "rw,mode=0755,size=1g"},
            shm_size=f"{shm}m", user="root", working_dir=self.spec.workdir, hostname="sandbox", environment=ENV,
            ulimits=[], log_config={"type": "none"},
        )

    async def start(self) -> None:
        def late(container) -> None:  # created after we stopped waiting: nobody will use it
            container.remove(force=True)

        lifecycle.watch()  # before the container exists: a kill during creation is covered too
        try:
            self.container = await blocking(self._create_blocking, timeout=max(self.limits.timeout, 120), on_late=late)
        except SandboxError:
            raise
        except asyncio.TimeoutError:
            raise SandboxError(f"starting a docker sandbox for {self.spec.key} timed out") from None
        except Exception as exc:
            raise SandboxError(f"could not start a docker sandbox for {self.spec.key}: {exc}") from exc
        lifecycle.register(self)
        await self._init()

    async def _init(self) -> None:
        res = await self.exec(["bash", "-c", INIT_SCRIPT, "init", self.spec.setup or "true"],
                              timeout=max(self.limits.timeout, 120), user="root", limit=64_000, recover=False)
        if not res.ok:
            await self.close()
            raise SandboxError(f"set-up of sandbox {self.spec.key} failed ({res.exit_code}): {res.stderr[-2000:]}")

    async def reset(self) -> None:
        res = await self.exec(["bash", "-c", RESET_SCRIPT], timeout=60, user="root", recover=False)
        if not res.ok:
            await self._restart()

    async def _restart(self) -> None:
        """The heavy hammer: kill the container and start it again (tmpfs contents go), set it up again."""
        self.restarts += 1
        if self.restarts > 3:
            await self.close()
            raise SandboxError(f"sandbox {self.id} keeps hanging; it was closed after 3 restarts.")
        if self.container is None:
            raise SandboxError(f"sandbox {self.id} is closed")
        log.warning("restarting sandbox %s", self.id)
        cid = self.container.id
        try:
            await blocking(self.client.api.restart, cid, 0, timeout=CONTROL_DEADLINE)
        except Exception as exc:
            await self.close()
            raise SandboxError(f"sandbox {self.id} could not be restarted ({exc}); it was closed.") from exc
        await self._init()

    async def kill_all(self) -> None:
        """Kill every process of the agent (background ones included); restart if that fails."""
        res = await self.exec(["bash", "-c", KILL_SCRIPT], timeout=KILL_DEADLINE * 4, user="root", recover=False)
        if not res.ok:
            await self._restart()

    async def is_alive(self) -> bool:
        if self.container is None:
            return False
        try:
            await blocking(self.container.reload, timeout=CONTROL_DEADLINE)
        except Exception:
            return False
        return self.container.status == "running"

    async def close(self) -> None:
        """Remove the container (also one that :meth:`abandon` is still removing)."""
        container = self.container or self._abandoned
        if container is None:
            return
        self.container = self._abandoned = None
        try:
            await blocking(lambda: container.remove(force=True), timeout=CONTROL_DEADLINE)
        except asyncio.TimeoutError:  # still being removed in its thread; the janitor backs it up
            log.warning("removing %s is taking long", self.id)
        except Exception as exc:  # already gone
            log.debug("removing %s: %s", self.id, exc)
        finally:
            lifecycle.unregister(self)

    def abandon(self) -> None:
        """Remove the container in the background, without waiting (a sandbox that stopped
        answering); a later :meth:`close` (the exit hook's) still finishes the job."""
        container, self.container = self.container, None
        if container is None:
            return
        self._abandoned = container

        def remove() -> None:
            try:
                container.remove(force=True)
                self._abandoned = None
            except Exception as exc:
                log.debug("removing abandoned %s: %s", self.id, exc)
            else:
                lifecycle.unregister(self)

        threading.Thread(target=remove, name="agentgym-docker-abandon", daemon=True).start()

    # --- commands ---------------------------------------------------------------------------
    def _exec_blocking(self, argv: list[str], user: str, workdir: str, limit: int, stdin: bytes | None,
                       seconds: float, stop: threading.Event) -> tuple[int | None, OutputBuffer, OutputBuffer]:
        """One exec in this container (:func:`~agentgym.sandbox.dockerio.exec_stream`)."""
        return exec_stream(self.client.api, self.container.id, argv, user=user, workdir=workdir,
                           env=ENV | {"WORK": self.spec.workdir}, limit=limit, stdin=stdin, seconds=seconds, stop=stop)

    async def exec(self, cmd: str | list[str], timeout: float | None = None, *, user: str = "agent",
                   workdir: str | None = None, limit: int | bool | None = True, stdin: bytes | None = None,
                   recover: bool = True) -> ExecResult:
        """Run ``cmd``; ``limit`` is the output cap (True: the sandbox's). At the deadline every
        agent process is killed; with ``recover`` a container that does not recover is restarted."""
        if self.container is None:
            raise SandboxError(f"sandbox {self.id} is closed")
        argv = ["bash", "-c", cmd] if isinstance(cmd, str) else list(cmd)
        timeout = self.limits.timeout if timeout is None else timeout
        cap = self.limits.max_output if limit is True or limit is None or limit is False else int(limit)
        clock = Stopwatch()
        stop = threading.Event()
        code, out, err = None, OutputBuffer(cap), OutputBuffer(cap)
        try:
            code, out, err = await blocking(self._exec_blocking, argv, user, workdir or self.spec.workdir, cap, stdin,
                                            timeout, stop, timeout=timeout + 2)
        except asyncio.TimeoutError:
            pass  # the daemon did not even answer in time
        except asyncio.CancelledError:
            stop.set()
            raise
        except Exception as exc:
            if not recover:
                return ExecResult(125, "", f"[docker exec failed: {exc}]", duration=clock(), note="docker exec failed")
            code = None
        finally:
            stop.set()
        if code is not None:
            return ExecResult(code, out.text(), err.text(), duration=clock(), truncated=out.truncated or err.truncated)
        note = f"killed: timed out after {timeout:g} s"
        restarted = False
        if recover:
            restarted = not await self._kill_quickly()
            if restarted:
                await self._restart()
                note += "; the sandbox did not respond, so it was restarted from the task's initial state " \
                        "(every process and every change to the files is gone)"
        return ExecResult(124, out.text(), err.text() + f"\n[{note}]", timed_out=True, duration=clock(), note=note,
                          restarted=restarted)

    async def _kill_quickly(self) -> bool:
        """Kill every agent process within :data:`KILL_DEADLINE`; False when that did not work."""
        stop = threading.Event()
        try:
            code, _, _ = await blocking(self._exec_blocking, ["bash", "-c", KILL_SCRIPT], "root", "/", 4096, None,
                                        KILL_DEADLINE, stop, timeout=KILL_DEADLINE + 0.5)
            return code == 0
        except Exception:
            return False
        finally:
            stop.set()

    # --- files ------------------------------------------------------------------------------
    async def _transfer(self, argv: list[str], stdin: bytes | None, limit: int, what: str,
                        user: str = "agent") -> tuple[int, OutputBuffer, str]:
        if self.container is None:
            raise SandboxError(f"sandbox {self.id} is closed")
        seconds = self.limits.timeout
        stop = threading.Event()
        try:
            code, out, err = await blocking(self._exec_blocking, argv, user, self.spec.workdir, limit, stdin, seconds,
                                            stop, timeout=seconds + 2)
        except asyncio.TimeoutError:
            code, out, err = None, OutputBuffer(1), OutputBuffer(1)
        except Exception as exc:
            raise OSError(f"{what} failed: {exc}") from None
        finally:
            stop.set()
        if code is None:
            await self._kill_quickly()
            raise OSError(f"{what} in {self.id} timed out")
        return code, out, err.text()

    async def read_file(self, path: str, max_bytes: int | None = None) -> bytes:
        cap = self.limits.max_read if max_bytes is None else max_bytes
        code, out, err = await self._transfer(["bash", "-c", READ_SCRIPT, "r", path, str(cap + 1)], None, cap + 1,
                                              f"reading {path}")
        problem = read_error(path, code, err, cap, out.total)
        if problem:
            raise problem
        return out.data()

    async def write_file(self, path: str, data: bytes | str, *, user: str = "agent") -> None:
        raw = data.encode() if isinstance(data, str) else data
        script = 'mkdir -p -- "$(dirname -- "$1")" && cat > "$1"'
        code, _, err = await self._transfer(["bash", "-c", script, "w", path], raw, 4096, f"writing {path}", user)
        if code != 0:
            raise OSError(f"cannot write {path}: {err.strip()[-300:]}")

    async def copy_in(self, host_path: Path, path: str) -> None:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tf:
            tf.add(str(host_path), arcname=Path(path).name)
        parent = shlex.quote(str(Path(path).parent))
        code, _, err = await self._transfer(["bash", "-c", f"mkdir -p {parent} && tar -xf - -C {parent} --no-same-owner"],
                                            buf.getvalue(), 4096, f"copying into {path}")
        if code != 0:
            raise OSError(f"cannot copy into {path}: {err.strip()[-300:]}")

    async def copy_out(self, path: str, host_path: Path) -> None:
        p = Path(path)
        cap = self.limits.max_archive
        code, out, err = await self._transfer(["tar", "-cf", "-", "-C", str(p.parent), p.name], None, cap + 1,
                                              f"copying {path} out")
        if code != 0:
            raise FileNotFoundError(err.strip()[-300:] or path)
        if out.total > cap:
            raise FileTooLarge(f"{path} is larger than {cap} bytes as an archive")
        await asyncio.to_thread(unpack_tar, out.data(), p.name, Path(host_path))
