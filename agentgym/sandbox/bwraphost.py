"""The host side of bubblewrap sandboxes: who runs them, where they live, what bwrap is told.

Kept apart from the sandboxes themselves (:mod:`agentgym.sandbox.bwrap`) because the reaper
needs the same places without a backend: the dedicated unprivileged uid that bwrap runs as
when we are root, the home of run dirs and snapshots (on a tmpfs when we can mount one), the
private tmpfs of one sandbox, the arguments of ``sandboxes/bwrap/profile.args``, and host
commands (``cp``, ``chown``, ``sh``) run with a fixed environment.
"""

from __future__ import annotations

import asyncio
import os
import pwd
from pathlib import Path

from agentgym.sandbox import images
from agentgym.sandbox.base import Limits, SandboxError

SANDBOX_USER = "agentgym-sbx"
HOST_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}


def profile_args(**paths: str) -> list[str]:
    """The profile's bwrap arguments, with ``{rootfs}``, ``{work}`` and ``{snap}`` filled in."""
    text = (images.recipes_dir() / "bwrap" / "profile.args").read_text()
    args: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            args.extend(part.format(**paths) for part in line.split(" ", 2))
    return args


def sandbox_ids() -> tuple[int, int] | None:
    """The (uid, gid) bwrap runs as; None when we are already unprivileged."""
    if os.geteuid() != 0:
        return None
    try:
        pw = pwd.getpwnam(os.environ.get("AGENTGYM_SANDBOX_USER", SANDBOX_USER))
    except KeyError:
        raise SandboxError(
            f"user {SANDBOX_USER} does not exist: run scripts/setup/swe.sh (never run bubblewrap as root)."
        ) from None
    if pw.pw_uid == 0:
        raise SandboxError("the sandbox user must not be root.")
    return pw.pw_uid, pw.pw_gid


def bwrap_home() -> Path:
    """Where run dirs (``run/<id>``) and set-up snapshots (``snap/``) live; made on first use."""
    path = images.swe_home() / "bwrap"
    (path / "run").mkdir(parents=True, exist_ok=True)
    (path / "snap").mkdir(parents=True, exist_ok=True)
    _mount_run_tmpfs(path / "run")
    return path


def _mount_run_tmpfs(run: Path) -> None:
    """Keep work dirs on a tmpfs: copying a snapshot there is ~10x faster than on a busy disk,
    and what a sandbox writes is charged to its memory cgroup. Best effort (needs root)."""
    if os.geteuid() != 0 or os.path.ismount(run) or os.environ.get("AGENTGYM_BWRAP_TMPFS") == "0":
        return
    import subprocess

    size = os.environ.get("AGENTGYM_BWRAP_TMPFS_SIZE", "8g")
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "agentgym-bwrap", str(run)],
                   capture_output=True)


def mount_private_tmpfs(run: Path, limits: Limits) -> bool:
    """A tmpfs of its own for one sandbox (work dir + /tmp), half its memory limit in size."""
    if os.geteuid() != 0 or os.environ.get("AGENTGYM_BWRAP_TMPFS") == "0":
        return False
    import subprocess

    size = max(limits.memory_mb // 2, 64)
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}m,mode=0755", "agentgym-sbx", str(run)],
                          capture_output=True)
    return proc.returncode == 0


async def host_command(*argv: str) -> None:
    """Run a host command (outside any sandbox) that must succeed; its stderr is the error."""
    proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.DEVNULL,
                                                stderr=asyncio.subprocess.PIPE, env=HOST_ENV)
    _, err = await proc.communicate()
    if proc.returncode != 0:
        raise SandboxError(f"`{' '.join(argv[:3])}` failed: {err.decode(errors='replace').strip()}")
