"""Docker sandboxes: one long-lived container per sandbox, commands run with ``exec``.

Each container runs with no network, memory/CPU/pids limits, no-new-privileges, all
capabilities dropped but the few root needs for set-up, a read-only root filesystem
with tmpfs for ``/work``, ``/tmp`` and the snapshot, and ``init`` (else stopping takes
seconds). The agent's commands run as the unprivileged ``agent`` user.

``exec_run`` has no timeout, and a ``timeout`` wrapper would miss children that called
``setsid``, so a watchdog enforces it: at the deadline it kills every process of the
``agent`` user, and if the command still does not finish it restarts the container and
rebuilds the snapshot. All SDK calls are blocking and run in ``asyncio.to_thread``.
"""

from __future__ import annotations

import asyncio
import base64
import io
import logging
import shlex
import tarfile
from pathlib import Path

from agentgym.sandbox import images
from agentgym.sandbox.base import (
    LABEL,
    SNAPSHOT_DIR,
    ExecResult,
    Limits,
    OutputBuffer,
    Owner,
    SandboxError,
    SandboxSpec,
    Stopwatch,
    new_id,
)

log = logging.getLogger(__name__)

SOURCE_DIR = "/var/lib/agentgym/src"
ENV = {"HOME": "/tmp", "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1", "USER": "agent",
       "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
#: Run as root once per container: copy the pristine source in, run the spec's set-up as
#: the agent, then keep a root-owned copy of the result as the snapshot.
INIT_SCRIPT = f"""set -e
if [ -d {SOURCE_DIR} ]; then cp -a {SOURCE_DIR}/. "$WORK"/; fi
chown -R agent:agent "$WORK"
cd "$WORK"
setpriv --reuid=agent --regid=agent --clear-groups --inh-caps=-all bash -ec "$1"
cp -a "$WORK"/. {SNAPSHOT_DIR}/
chown -R root:root {SNAPSHOT_DIR} && chmod 0755 {SNAPSHOT_DIR}
"""
#: Run as root: stop every agent process (so a fork bomb cannot refill), then kill them all,
#: until none is left. Bash builtins only: when a fork bomb has filled the container's pids
#: limit, pgrep and pkill cannot even start (the old script's pgrep failed, read as "none left").
KILL_SCRIPT = r"""
AU=; while IFS=: read -r n _ u _; do [ "$n" = agent ] && AU=$u; done < /etc/passwd
for ((round = 0; round < 100; round++)); do
  pids=()
  for d in /proc/[0-9]*; do
    u=; { while read -r k a _; do [ "$k" = Uid: ] && { u=$a; break; }; done < "$d/status"; } 2>/dev/null
    if [ -n "$AU" ] && [ "$u" = "$AU" ]; then pids+=("${d#/proc/}"); kill -STOP "${d#/proc/}" 2>/dev/null; fi
  done
  [ ${#pids[@]} -eq 0 ] && break
  kill -9 "${pids[@]}" 2>/dev/null
done
true
"""
#: Run as root to go back to the snapshot.
RESET_SCRIPT = KILL_SCRIPT + f"""
find "$WORK" /tmp /dev/shm -mindepth 1 -delete && cp -a {SNAPSHOT_DIR}/. "$WORK"/ && chown -R agent:agent "$WORK"
"""
CHUNK = 96_000  # base64 characters per exec argument (below the kernel's 128 KiB per-argument limit)


def docker_client():
    """A Docker client, or a :class:`SandboxError` saying how to start a daemon."""
    try:
        import docker
    except ImportError as exc:  # pragma: no cover
        from agentgym.errors import MissingExtraError

        raise MissingExtraError("docker", "swe", "the docker sandbox backend") from exc
    try:
        client = docker.from_env(timeout=900, max_pool_size=64)  # exec streams may be silent long
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

    async def create(self, spec: SandboxSpec, limits: Limits | None = None) -> "DockerSandbox":
        sandbox = DockerSandbox(self, spec, limits or self.limits)
        await sandbox.start()
        return sandbox


class DockerSandbox:
    """A container started from a :class:`SandboxSpec`."""

    def __init__(self, backend: DockerBackend, spec: SandboxSpec, limits: Limits):
        self.backend = backend
        self.client = backend.client
        self.spec = spec
        self.limits = limits
        self.id = new_id()
        self.container = None
        self.restarts = 0

    # --- life cycle -------------------------------------------------------------------------
    def _create_blocking(self):
        lim = self.limits
        image = self.backend._image_for(self.spec)
        labels = self.backend.owner.labels() | {f"{LABEL}.id": self.id, f"{LABEL}.key": self.spec.key[:200]}
        mb = f"{lim.memory_mb}m"
        return self.client.containers.run(
            image, ["sleep", "infinity"], name=self.id, detach=True, labels=labels, init=True,
            network_mode="none", mem_limit=mb, memswap_limit=mb, nano_cpus=int(lim.cpus * 1e9),
            pids_limit=lim.pids, security_opt=["no-new-privileges"], cap_drop=["ALL"],
            cap_add=["CHOWN", "DAC_OVERRIDE", "FOWNER", "KILL", "SETUID", "SETGID"], read_only=True,
            tmpfs={self.spec.workdir: "rw,exec,mode=0755,size=1g", "/tmp": "rw,exec,mode=1777,size=512m",
                   SNAPSHOT_DIR: "rw,mode=0755,size=1g"},
            user="root", working_dir=self.spec.workdir, hostname="sandbox", environment=ENV,
            ulimits=[], log_config={"type": "none"},
        )

    async def start(self) -> None:
        try:
            self.container = await asyncio.to_thread(self._create_blocking)
        except SandboxError:
            raise
        except Exception as exc:
            raise SandboxError(f"could not start a docker sandbox for {self.spec.key}: {exc}") from exc
        await self._init()

    async def _init(self) -> None:
        res = await self.exec(["bash", "-c", INIT_SCRIPT, "init", self.spec.setup or "true"],
                              timeout=max(self.limits.timeout, 120), user="root", limit=None)
        if not res.ok:
            await self.close()
            raise SandboxError(f"set-up of sandbox {self.spec.key} failed ({res.exit_code}): {res.stderr[-2000:]}")

    async def reset(self) -> None:
        res = await self.exec(["bash", "-c", RESET_SCRIPT], timeout=60, user="root")
        if not res.ok:
            await self._restart()

    async def _restart(self) -> None:
        """The heavy hammer: restart the container (tmpfs contents go) and set it up again."""
        self.restarts += 1
        if self.restarts > 3:
            await self.close()
            raise SandboxError(f"sandbox {self.id} keeps hanging; it was closed after 3 restarts.")
        log.warning("restarting sandbox %s", self.id)
        await asyncio.to_thread(self.container.restart, timeout=0)
        await self._init()

    async def kill_all(self) -> None:
        """Kill every process of the agent (background ones included)."""
        await self.exec(["bash", "-c", KILL_SCRIPT], timeout=30, user="root")

    async def is_alive(self) -> bool:
        if self.container is None:
            return False
        try:
            await asyncio.to_thread(self.container.reload)
        except Exception:
            return False
        return self.container.status == "running"

    async def close(self) -> None:
        if self.container is None:
            return
        container, self.container = self.container, None
        try:
            await asyncio.to_thread(container.remove, force=True)
        except Exception as exc:  # already gone
            log.debug("removing %s: %s", self.id, exc)

    # --- commands ---------------------------------------------------------------------------
    def _exec_blocking(self, argv: list[str], user: str, workdir: str, limit: int | None):
        api = self.client.api
        env = ENV | {"WORK": self.spec.workdir}
        eid = api.exec_create(self.container.id, argv, user=user, workdir=workdir, environment=env)["Id"]
        out, err = OutputBuffer(limit or 1 << 62), OutputBuffer(limit or 1 << 62)
        for o, e in api.exec_start(eid, stream=True, demux=True):
            if o:
                out.feed(o)
            if e:
                err.feed(e)
        code = api.exec_inspect(eid)["ExitCode"]
        return code, out, err

    async def exec(self, cmd: str | list[str], timeout: float | None = None, *, user: str = "agent",
                   workdir: str | None = None, limit: int | None | bool = True) -> ExecResult:
        """Run ``cmd``; ``limit`` is the output cap (True: the sandbox's, None: unlimited)."""
        if self.container is None:
            raise SandboxError(f"sandbox {self.id} is closed")
        argv = ["bash", "-c", cmd] if isinstance(cmd, str) else list(cmd)
        timeout = self.limits.timeout if timeout is None else timeout
        cap = self.limits.max_output if limit is True else limit
        clock = Stopwatch()
        task = asyncio.create_task(asyncio.to_thread(self._exec_blocking, argv, user, workdir or self.spec.workdir, cap))
        try:
            code, out, err = await asyncio.wait_for(asyncio.shield(task), timeout)
        except asyncio.TimeoutError:
            await self._watchdog(task)
            stdout = task.result()[1].text() if task.done() and not task.exception() else ""
            stderr = task.result()[2].text() if task.done() and not task.exception() else ""
            return ExecResult(124, stdout, stderr + f"\n[killed: timed out after {timeout:g} s]",
                              timed_out=True, duration=clock())
        except asyncio.CancelledError:
            await asyncio.shield(self._watchdog(task))
            raise
        return ExecResult(code if code is not None else -1, out.text(), err.text(), duration=clock(),
                          truncated=out.truncated or err.truncated)

    async def _watchdog(self, task: asyncio.Task) -> None:
        """Kill every agent process; restart the container if the command still hangs."""
        try:
            await asyncio.to_thread(self._exec_blocking, ["bash", "-c", KILL_SCRIPT], "root", "/", 4096)
            await asyncio.wait_for(asyncio.shield(task), 5)
        except Exception:
            await self._restart()
            try:
                await asyncio.wait_for(asyncio.shield(task), 10)
            except Exception:
                log.error("exec in %s did not end even after a restart", self.id)

    # --- files ------------------------------------------------------------------------------
    async def read_file(self, path: str) -> bytes:
        res = await self.exec(["base64", "-w0", "--", path], timeout=60, limit=None)
        if res.exit_code != 0:
            raise FileNotFoundError(res.stderr.strip() or path)
        return base64.b64decode(res.stdout)

    async def write_file(self, path: str, data: bytes | str, *, user: str = "agent") -> None:
        raw = data.encode() if isinstance(data, str) else data
        b64 = base64.b64encode(raw).decode()
        chunks = [b64[i:i + CHUNK] for i in range(0, len(b64), CHUNK)] or [""]
        for i, chunk in enumerate(chunks):
            redirect = ">" if i == 0 else ">>"
            script = f'mkdir -p -- "$(dirname -- "$1")" && printf %s "$2" | base64 -d {redirect} "$1"'
            res = await self.exec(["bash", "-c", script, "w", path, chunk], timeout=60, user=user)
            if res.exit_code != 0:
                raise OSError(f"cannot write {path}: {res.stderr.strip()}")

    async def copy_in(self, host_path: Path, path: str) -> None:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tf:
            tf.add(str(host_path), arcname=Path(path).name)
        tmp = f"/tmp/.copy-in-{new_id()}.tar"
        await self.write_file(tmp, buf.getvalue())
        parent = shlex.quote(str(Path(path).parent))
        res = await self.exec(f"mkdir -p {parent} && tar -xf {tmp} -C {parent} --no-same-owner; rc=$?; rm -f {tmp}; exit $rc",
                              timeout=120)
        if res.exit_code != 0:
            raise OSError(f"cannot copy into {path}: {res.stderr.strip()}")

    async def copy_out(self, path: str, host_path: Path) -> None:
        p = Path(path)
        res = await self.exec(f"tar -cf - -C {shlex.quote(str(p.parent))} {shlex.quote(p.name)} | base64 -w0",
                              timeout=120, limit=None)
        if res.exit_code != 0:
            raise FileNotFoundError(res.stderr.strip() or path)
        unpack_tar(base64.b64decode(res.stdout), p.name, Path(host_path))


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
