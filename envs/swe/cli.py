"""``agentgym swe``: make SWE tasks from PyPI packages, build images, reap sandboxes."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from agentgym.errors import UserError


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="swe_command", metavar="SUBCOMMAND")
    parser.set_defaults(func=lambda args: parser.print_help() or 0)

    make = sub.add_parser("make-tasks", help="make tasks from PACKAGE==VERSION sdists (their own tests)",
                          description="Inject bugs into real libraries and keep those that break some tests.")
    make.add_argument("packages", nargs="+", metavar="PACKAGE==VERSION")
    make.add_argument("-o", "--out", type=Path, default=Path("swe_tasks.jsonl"), help="JSONL file to add tasks to")
    make.add_argument("-n", "--max-tasks", type=int, default=5, help="tasks per package (default 5)")
    make.add_argument("--candidates", type=int, default=40, help="mutations tried per package (default 40)")
    make.add_argument("--seed", type=int, default=0)
    make.add_argument("--backend", choices=["bwrap", "docker", "auto"], default="auto")
    make.add_argument("--workers", type=int, default=2, help="sandboxes testing mutations in parallel")
    make.set_defaults(func=_make_tasks)

    build = sub.add_parser("build", help="build the sandbox images (docker) and rootfs (bwrap)")
    build.add_argument("--backend", choices=["bwrap", "docker", "both"], default="both")
    build.set_defaults(func=_build)

    reap = sub.add_parser("reap", help="remove sandboxes left behind by crashed runs")
    reap.add_argument("--all", action="store_true", help="remove every sandbox, even of running processes")
    reap.add_argument("--backend", choices=["bwrap", "docker", "both"], default="both")
    reap.set_defaults(func=_reap)


def _make_tasks(args: argparse.Namespace) -> int:
    from agentgym.sandbox.base import Limits
    from envs.swe.backends import make_backend
    from envs.swe.generate import make_tasks, write_tasks

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.max_tasks < 1 or args.candidates < 1:
        raise UserError("--max-tasks and --candidates must be at least 1.")
    backend = make_backend(args.backend, Limits(timeout=300, memory_mb=2048, pids=512))

    async def run() -> int:
        total = 0
        for req in args.packages:
            tasks = await make_tasks(req, backend, max_tasks=args.max_tasks, candidates=args.candidates,
                                     seed=args.seed, workers=args.workers)
            added = write_tasks(tasks, args.out)
            print(f"{req}: {len(tasks)} tasks ({added} new) -> {args.out}")
            total += len(tasks)
        return 0 if total else 1

    return asyncio.run(run())


def _build(args: argparse.Namespace) -> int:
    from agentgym.sandbox import images
    from agentgym.sandbox.base import SandboxError

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        if args.backend in ("bwrap", "both"):
            print(f"bwrap rootfs: {images.ensure_rootfs()}")
        if args.backend in ("docker", "both"):
            from agentgym.sandbox.docker import docker_client

            print(f"docker image: {images.ensure_docker_toolchain(docker_client())}")
    except SandboxError as exc:
        raise UserError(str(exc)) from exc
    return 0


def _reap(args: argparse.Namespace) -> int:
    from agentgym.sandbox.base import SandboxError
    from agentgym.sandbox.reaper import reap

    docker = args.backend in ("docker", "both")
    try:
        report = reap(docker=docker, bwrap=args.backend in ("bwrap", "both"), everything=args.all)
    except SandboxError as exc:
        if args.backend == "docker":
            raise UserError(str(exc)) from exc
        print(f"docker: skipped ({exc})", file=sys.stderr)
        report = reap(docker=False, bwrap=True, everything=args.all)
    print(f"removed {len(report.containers)} containers, {len(report.bwrap)} bwrap sandboxes, "
          f"{len(report.cgroups)} cgroups")
    return 0
