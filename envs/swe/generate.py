"""Make SWE tasks from a real library, SWE-smith style, offline.

For ``PACKAGE==VERSION``: unpack its sdist, run its test suite in a sandbox to find the
tests that pass, then try mutations of its functions (:mod:`envs.swe.mutate`) one by
one. A mutation becomes a task when some passing tests now fail (FAIL_TO_PASS, at most
``max_fail``) while every other test of the same files still passes (PASS_TO_PASS).
The problem statement is written from the failing tests' names and assertion lines.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from agentgym.core.task import Task
from agentgym.errors import UserError
from agentgym.sandbox.base import WORKDIR, Backend, Sandbox, SandboxSpec
from envs.swe.grading import failure_details, parse_pytest
from envs.swe.mutate import Mutation, sample_mutations
from envs.swe.repos import Repo, is_test_path, parse_requirement, prepare_repo
from envs.swe.tasks import make_task

log = logging.getLogger(__name__)

_NOT_LIBRARY = ("setup.py", "docs/", "doc/", "examples/", "example/", "benchmarks/", "bench/", "scripts/",
                "tools/", "versioneer.py", "_version.py")


def library_sources(repo: Repo) -> dict[str, str]:
    out = {}
    for p in sorted(repo.path.rglob("*.py")):
        rel = p.relative_to(repo.path).as_posix()
        if is_test_path(rel) or rel.startswith(_NOT_LIBRARY) or rel.endswith(_NOT_LIBRARY):
            continue
        out[rel] = p.read_text(encoding="utf-8")
    return out


def test_name(test_id: str) -> str:
    """``path::Class::test[x]`` -> ``Class.test[x]``, as pytest titles failure sections."""
    return ".".join(test_id.split("::")[1:])


def problem_statement(repo: Repo, failing: list[str], output: str) -> str:
    details = failure_details(output)
    files = sorted({t.split("::")[0] for t in failing})
    lines = [f"Some behaviour of `{repo.package}` (version {repo.version}) is broken: "
             f"{len(failing)} of its tests fail.", "", "Failing tests:"]
    for t in failing[:12]:
        lines.append(f"- {t}")
        for e in details.get(test_name(t), [])[:3]:
            lines.append(f"    {e[:200]}")
    if len(failing) > 12:
        lines.append(f"- ... and {len(failing) - 12} more")
    lines += ["", "Find the bug in the library source and fix it so these tests pass without breaking any other test.",
              "The tests are correct: changes to test files are discarded before grading.", "",
              f"Run them with: python3 -m pytest {' '.join(files)}"]
    return "\n".join(lines)


#: Bytes of test output kept per run (head and tail: the -rA summary is at the end).
MAX_OUTPUT = 8_000_000


async def _run(sandbox: Sandbox, cmd: str, timeout: float) -> tuple[dict[str, str], str]:
    """Run the suite and read outcomes from its -rA summary: fine here, where no model has
    touched the code (graded runs never read outcomes from test output)."""
    res = await sandbox.exec(f"cd {WORKDIR} && {cmd}", timeout=timeout, limit=MAX_OUTPUT)
    out = res.stdout + "\n" + res.stderr
    return ({} if res.timed_out else parse_pytest(out)), out


async def make_tasks(requirement: str, backend: Backend, *, max_tasks: int = 6, candidates: int = 40,
                     seed: int = 0, max_fail: int = 25, timeout: float = 120, workers: int = 2) -> list[Task]:
    """Tasks for one ``PACKAGE==VERSION``; see the module docstring."""
    package, version = parse_requirement(requirement)
    repo = await asyncio.to_thread(prepare_repo, package, version)
    spec = SandboxSpec(key=f"gen-{repo.name}", source=repo.path, setup="true")
    boxes = [await backend.create(spec) for _ in range(max(1, workers))]
    try:
        baseline, out = await _run(boxes[0], repo.test_cmd(), timeout)
        passing = [t for t, s in baseline.items() if s == "PASSED"]
        if not passing:
            raise UserError(f"no test of {requirement} passes in the sandbox; its suite may need extra packages. "
                            f"Last output: {out.strip()[-300:]}")
        log.info("%s: %d tests pass at baseline", requirement, len(passing))
        sources = library_sources(repo)
        muts = sample_mutations(sources, candidates, seed)
        queue: asyncio.Queue[Mutation] = asyncio.Queue()
        for m in muts:
            queue.put_nowait(m)
        kept: list[tuple[Mutation, list[str], list[str], str]] = []
        seen_functions: set[tuple[str, str]] = set()

        async def worker(box: Sandbox) -> None:
            while not queue.empty() and len(kept) < max_tasks:
                m = queue.get_nowait()
                if (m.path, m.function) in seen_functions:
                    continue
                target = f"{WORKDIR}/{m.path}"
                await box.write_file(target, m.mutated)
                try:
                    results, output = await _run(box, repo.test_cmd(), timeout)
                finally:
                    await box.write_file(target, m.original)
                if not results:
                    continue
                failing = [t for t in passing if results.get(t) != "PASSED"]
                if not 1 <= len(failing) <= max_fail or any(t not in results for t in failing):
                    continue
                files = sorted({t.split("::")[0] for t in failing})
                p2p = [t for t in passing if t.split("::")[0] in files and t not in failing]
                if (m.path, m.function) in seen_functions or len(kept) >= max_tasks:
                    continue
                seen_functions.add((m.path, m.function))
                kept.append((m, failing, p2p, output))
                log.info("%s: kept %s in %s (%s), %d failing", requirement, m.kind, m.function, m.path, len(failing))

        await asyncio.gather(*(worker(b) for b in boxes))
    finally:
        await asyncio.gather(*(b.close() for b in boxes), return_exceptions=True)
    tasks = []
    for m, failing, p2p, output in kept:
        files = sorted({t.split("::")[0] for t in failing})
        tasks.append(make_task(
            package=repo.package, version=repo.version, bug_patch=m.bug_patch(), gold_patch=m.gold_patch(),
            test_cmd=repo.test_cmd(files), fail_to_pass=failing, pass_to_pass=p2p,
            problem_statement=problem_statement(repo, failing, output),
            metadata={"source": "agentgym-mutation", "kind": m.kind, "file": m.path, "function": m.function,
                      "line": m.lineno, "mutation": m.description},
        ))
    return tasks


def write_tasks(tasks: list[Task], path: Path, append: bool = True) -> int:
    """Add tasks to a JSONL file, skipping ids already there."""
    existing: set[str] = set()
    if append and path.exists():
        existing = {Task.model_validate_json(line).id for line in path.read_text().splitlines() if line.strip()}
    new = [t for t in tasks if t.id not in existing]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a" if append else "w", encoding="utf-8") as fh:
        for t in new:
            fh.write(t.model_dump_json() + "\n")
    return len(new)
