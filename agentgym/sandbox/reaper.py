"""Remove sandboxes left behind by crashed runs.

Every sandbox carries its owner (pid, process start time, boot id): docker containers as
labels, bwrap sandboxes in ``owner.json`` beside their work dir. A sandbox whose owner no
longer runs is a leftover. ``reap(all=True)`` removes every sandbox, live owner or not.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass, field

from agentgym.sandbox.base import LABEL, Owner

log = logging.getLogger(__name__)


@dataclass
class ReapReport:
    containers: list[str] = field(default_factory=list)
    bwrap: list[str] = field(default_factory=list)
    cgroups: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.containers) + len(self.bwrap) + len(self.cgroups)


def reap_docker(client=None, everything: bool = False) -> list[str]:
    """Remove labelled containers whose owner is gone; returns their names."""
    if client is None:
        from agentgym.sandbox.docker import docker_client

        client = docker_client()
    removed = []
    for c in client.containers.list(all=True, filters={"label": f"{LABEL}=1"}):
        if everything or not Owner.from_labels(c.labels).alive():
            try:
                c.remove(force=True)
                removed.append(c.name)
            except Exception as exc:  # removed concurrently
                log.debug("removing %s: %s", c.name, exc)
    return removed


def reap_bwrap(everything: bool = False) -> tuple[list[str], list[str]]:
    """Remove bwrap run dirs (and their cgroups) whose owner is gone."""
    from agentgym.sandbox import cgroups
    from agentgym.sandbox.bwrap import bwrap_home

    run = bwrap_home() / "run"
    removed, groups = [], []
    live = set()
    for d in run.iterdir():
        try:
            owner = Owner.from_labels(json.loads((d / "owner.json").read_text()))
        except (OSError, ValueError):
            owner = Owner(pid=0)
        if everything or not owner.alive():
            cgroups.remove_group(d.name)
            shutil.rmtree(d, ignore_errors=True)
            removed.append(d.name)
        else:
            live.add(d.name)
    for name in cgroups.leftover_groups():
        if name not in live:
            cgroups.remove_group(name)
            groups.append(name)
    return removed, groups


def reap(docker: bool = True, bwrap: bool = True, everything: bool = False, client=None) -> ReapReport:
    report = ReapReport()
    if docker:
        report.containers = reap_docker(client, everything)
    if bwrap:
        report.bwrap, report.cgroups = reap_bwrap(everything)
    return report
