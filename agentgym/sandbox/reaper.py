"""Remove sandboxes left behind by crashed runs.

Every sandbox carries its owner (pid, process start time, boot id): docker containers as
labels, bwrap sandboxes in ``owner.json`` beside their work dir. A sandbox whose owner no
longer runs is a leftover. ``reap(all=True)`` removes every sandbox, live owner or not;
``reap(owner=...)`` only those of one owner (what the janitor of
:mod:`agentgym.sandbox.lifecycle` runs once its owner is gone).

    python -m agentgym.sandbox.reaper [--owner PID:START] [--all] [--quiet]
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from agentgym.sandbox.base import LABEL, Owner

log = logging.getLogger(__name__)
#: Seconds between the janitor's two passes.
SECOND_PASS_DELAY = 3.0


@dataclass
class ReapReport:
    containers: list[str] = field(default_factory=list)
    bwrap: list[str] = field(default_factory=list)
    cgroups: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.containers) + len(self.bwrap) + len(self.cgroups)


def _doomed(owner: Owner, everything: bool, only: Owner | None) -> bool:
    if only is not None:
        return owner.pid == only.pid and owner.start == only.start and owner.boot == only.boot
    return everything or not owner.alive()


def reap_docker(client=None, everything: bool = False, only: Owner | None = None) -> list[str]:
    """Remove labelled containers whose owner is gone; returns their names."""
    if client is None:
        from agentgym.sandbox.docker import docker_client

        client = docker_client()
    removed = []
    filters = {"label": [f"{LABEL}=1"] + ([f"{LABEL}.owner_pid={only.pid}"] if only else [])}
    # the low-level listing: the high-level one inspects each container again and fails on
    # one removed in between (by its owner's exit hook, a janitor, another reaper)
    for c in client.api.containers(all=True, filters=filters):
        name = (c.get("Names") or ["?"])[0].lstrip("/")
        if _doomed(Owner.from_labels(c.get("Labels") or {}), everything, only):
            try:
                client.api.remove_container(c["Id"], force=True)
                removed.append(name)
            except Exception as exc:  # removed concurrently
                log.debug("removing %s: %s", name, exc)
    return removed


def remove_run_dir(path: Path) -> None:
    """Delete a bwrap run dir, unmounting its private tmpfs first when it has one."""
    if os.path.ismount(path):
        subprocess.run(["umount", "-l", str(path)], capture_output=True)
    shutil.rmtree(path, ignore_errors=True)


def reap_bwrap(everything: bool = False, only: Owner | None = None) -> tuple[list[str], list[str]]:
    """Remove bwrap run dirs (and their cgroups) whose owner is gone."""
    from agentgym.sandbox import cgroups
    from agentgym.sandbox.bwraphost import bwrap_home

    run = bwrap_home() / "run"
    removed, groups = [], []
    live = set()
    for d in run.iterdir():
        try:
            owner = Owner.from_labels(json.loads((d / "owner.json").read_text()))
        except (OSError, ValueError):
            owner = Owner(pid=0)
        if _doomed(owner, everything, only):
            cgroups.remove_group(d.name)
            remove_run_dir(d)
            removed.append(d.name)
        else:
            live.add(d.name)
    if only is None:  # a group without a run dir belongs to nobody (its sandbox died mid-create)
        for name in cgroups.leftover_groups():
            if name not in live:
                cgroups.remove_group(name)
                groups.append(name)
    return removed, groups


def reap(docker: bool = True, bwrap: bool = True, everything: bool = False, client=None,
         only: Owner | None = None) -> ReapReport:
    """Remove leftovers of dead owners (``everything``: all sandboxes; ``only``: one owner's)."""
    report = ReapReport()
    if docker:
        report.containers = reap_docker(client, everything, only)
    if bwrap:
        report.bwrap, report.cgroups = reap_bwrap(everything, only)
    return report


def _wait_until_dead(owner: Owner, deadline_s: float) -> None:
    end = time.monotonic() + deadline_s
    while owner.alive() and time.monotonic() < end:
        time.sleep(0.05)


def main(argv: list[str] | None = None) -> int:
    """Reap leftovers; with ``--owner``, wait for that process to end, then reap what it left."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m agentgym.sandbox.reaper", description=main.__doc__)
    p.add_argument("--owner", help="PID:START of the owner whose sandboxes to remove once it has ended")
    p.add_argument("--all", action="store_true", help="remove every sandbox, even of running processes")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    only = None
    passes = 1
    if args.owner:
        pid, _, start = args.owner.partition(":")
        only = Owner(pid=int(pid), start=start)
        _wait_until_dead(only, 600)
        passes = 2  # the second one catches containers the daemon was still creating for the dead owner
    report = ReapReport()
    for n in range(passes):
        if n:
            time.sleep(SECOND_PASS_DELAY)
        try:
            report.containers += _docker_part(args.all, only)
        except Exception as exc:  # no daemon, no SDK: nothing of docker to reap
            log.debug("docker: %s", exc)
        try:
            bwrap, groups = reap_bwrap(args.all, only)
            report.bwrap += bwrap
            report.cgroups += groups
        except Exception as exc:
            log.debug("bwrap: %s", exc)
    if not args.quiet:
        print(f"removed {len(report.containers)} containers, {len(report.bwrap)} bwrap sandboxes, "
              f"{len(report.cgroups)} cgroups")
    return 0


def _docker_part(everything: bool, only: Owner | None) -> list[str]:
    if only is not None and not _has_docker_sandboxes():
        return []
    return reap_docker(None, everything, only)


def _has_docker_sandboxes() -> bool:
    """Cheap check before importing the docker SDK: is there a daemon socket at all?"""
    host = os.environ.get("DOCKER_HOST", "")
    return bool(host) or Path("/var/run/docker.sock").exists()


if __name__ == "__main__":
    sys.exit(main())
