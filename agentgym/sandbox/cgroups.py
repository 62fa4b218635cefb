"""Resource limits for bubblewrap sandboxes: cgroup v2, cgroup v1, or rlimits.

Which one is used depends on what this machine lets us write, found once:

- ``v2``: a writable unified hierarchy (``/sys/fs/cgroup/cgroup.controllers``) with the
  pids, memory and cpu controllers enabled below it: ``pids.max``, ``memory.max``,
  ``cpu.max``; ``cgroup.kill`` ends every process at once;
- ``v1``: writable ``pids``, ``memory`` and ``cpu`` hierarchies (e.g. a hybrid layout):
  ``pids.max``, ``memory.limit_in_bytes``, ``cpu.cfs_quota_us``; processes are killed from
  ``cgroup.procs`` until none is left;
- ``rlimit``: no cgroup access: ``prlimit`` sets RLIMIT_NPROC (per uid, so the sandbox
  uid should serve one sandbox at a time) and RLIMIT_AS (address space, not resident
  memory); there is no CPU limit. :func:`mode` says which is in force.
"""

from __future__ import annotations

import functools
import os
import signal
import time
from pathlib import Path

from agentgym.sandbox.base import Limits

ROOT = Path(os.environ.get("AGENTGYM_CGROUP_ROOT", "/sys/fs/cgroup"))
GROUP = "agentgym"
V1_CONTROLLERS = ("pids", "memory", "cpu")


def _try_mkdir(path: Path) -> bool:
    try:
        path.mkdir(parents=True, exist_ok=True)
        return os.access(path / "cgroup.procs", os.W_OK)
    except OSError:
        return False


@functools.cache
def mode() -> str:
    """``"v2"``, ``"v1"`` or ``"rlimit"``: the strongest mechanism available here."""
    if os.environ.get("AGENTGYM_CGROUPS") in ("v2", "v1", "rlimit"):
        return os.environ["AGENTGYM_CGROUPS"]
    if (ROOT / "cgroup.controllers").exists():
        base = ROOT / GROUP
        if _try_mkdir(base):
            try:
                wanted = {"pids", "memory", "cpu"}
                if wanted <= set((ROOT / "cgroup.subtree_control").read_text().split()):
                    (base / "cgroup.subtree_control").write_text("+pids +memory +cpu")
                    if wanted <= set((base / "cgroup.subtree_control").read_text().split()):
                        return "v2"
            except OSError:
                pass
    if all(_try_mkdir(ROOT / c / GROUP) for c in V1_CONTROLLERS):
        return "v1"
    return "rlimit"


class CgroupLimits:
    """The limits of one sandbox, applied to every process started through :meth:`wrap`."""

    def __init__(self, name: str, limits: Limits):
        self.name = name
        self.limits = limits
        self.mode = mode()
        self.dirs: list[Path] = []
        if self.mode == "v2":
            d = ROOT / GROUP / name
            d.mkdir(exist_ok=True)
            (d / "pids.max").write_text(str(limits.pids))
            (d / "memory.max").write_text(str(limits.memory_mb << 20))
            (d / "memory.swap.max").exists() and (d / "memory.swap.max").write_text("0")
            (d / "cpu.max").write_text(f"{int(limits.cpus * 100_000)} 100000")
            self.dirs = [d]
        elif self.mode == "v1":
            for c in V1_CONTROLLERS:
                d = ROOT / c / GROUP / name
                d.mkdir(exist_ok=True)
                self.dirs.append(d)
            (self.dirs[0] / "pids.max").write_text(str(limits.pids))
            (self.dirs[1] / "memory.limit_in_bytes").write_text(str(limits.memory_mb << 20))
            (self.dirs[2] / "cpu.cfs_period_us").write_text("100000")
            (self.dirs[2] / "cpu.cfs_quota_us").write_text(str(int(limits.cpus * 100_000)))

    def wrap(self, argv: list[str]) -> list[str]:
        """``argv`` started inside this sandbox's cgroups (or under its rlimits)."""
        if self.mode == "rlimit":
            return ["prlimit", f"--nproc={self.limits.pids}", f"--as={self.limits.memory_mb << 20}", "--", *argv]
        joins = " && ".join(f"echo $$ > {d}/cgroup.procs" for d in self.dirs)
        return ["/bin/sh", "-c", f'{joins} && exec "$@"', "sh", *argv]

    def pids(self) -> list[int]:
        if not self.dirs:
            return []
        try:
            return [int(x) for x in (self.dirs[0] / "cgroup.procs").read_text().split()]
        except OSError:
            return []

    def kill(self, deadline: float = 5.0) -> None:
        """SIGKILL every process in the cgroup, including ones that called ``setsid``."""
        if self.mode == "v2" and (self.dirs[0] / "cgroup.kill").exists():
            try:
                (self.dirs[0] / "cgroup.kill").write_text("1")
            except OSError:
                pass
        end = time.monotonic() + deadline
        while (pids := self.pids()) and time.monotonic() < end:
            if self.mode == "v1":  # freeze the fork loop before killing it
                for pid in pids:
                    try:
                        os.kill(pid, signal.SIGSTOP)
                    except ProcessLookupError:
                        pass
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.01)

    def oom_kills(self) -> int:
        """How many processes the memory limit has killed in this sandbox so far (0 when unknown)."""
        try:
            if self.mode == "v2":
                text = (self.dirs[0] / "memory.events").read_text()
            elif self.mode == "v1":
                text = (self.dirs[1] / "memory.oom_control").read_text()
            else:
                return 0
        except OSError:
            return 0
        for line in text.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == "oom_kill" and parts[1].isdigit():
                return int(parts[1])
        return 0

    def oom_killed(self) -> bool:
        """True when the memory limit has killed something in this sandbox."""
        return self.oom_kills() > 0

    def remove(self) -> None:
        self.kill()
        for d in self.dirs:
            try:
                d.rmdir()
            except OSError:
                pass


def leftover_groups() -> list[str]:
    """Names of sandbox cgroups that exist now (for the reaper)."""
    m = mode()
    base = ROOT / GROUP if m == "v2" else ROOT / "pids" / GROUP
    if m == "rlimit" or not base.is_dir():
        return []
    return [p.name for p in base.iterdir() if p.is_dir() and p.name.startswith("ag-")]


def remove_group(name: str) -> None:
    cg = CgroupLimits.__new__(CgroupLimits)
    cg.name, cg.mode = name, mode()
    cg.dirs = [ROOT / GROUP / name] if cg.mode == "v2" else [ROOT / c / GROUP / name for c in V1_CONTROLLERS]
    cg.dirs = [d for d in cg.dirs if d.exists()] if cg.mode == "v1" else cg.dirs
    if cg.dirs:
        cg.remove()
