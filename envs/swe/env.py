"""The SWE environment: fix a real bug in a real library inside a sandbox.

Tools: ``bash``, ``view``, ``edit``, ``submit``. ``submit`` restores the hidden tests,
runs FAIL_TO_PASS and PASS_TO_PASS, and ends the episode with reward 1 only when all of
them pass. :meth:`progress` is the fraction of FAIL_TO_PASS tests passing now (partial
credit for progress rewards); :meth:`hint` names the files the gold patch touches and
shows the failing output; :meth:`oracle_action` applies the gold patch and submits.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import shlex
from typing import Any, ClassVar

from agentgym.core.env import TextEnv, ToolError
from agentgym.core.hooks import run_sync
from agentgym.core.task import Task
from agentgym.core.tools import tool
from agentgym.errors import UserError
from agentgym.sandbox.base import Limits, Sandbox, truncate
from agentgym.sandbox.pool import SandboxPool
from envs.swe.grading import GradeResult, run_tests
from envs.swe.tasks import sandbox_spec, shipped_tasks, touched_files

SYSTEM_PROMPT = """You are a software engineer fixing a bug in a Python library.
The repository is checked out in /work (a git repository); there is no network.
Use the tools: bash(cmd) runs a shell command in /work, view(path, lines) shows a file
with line numbers, edit(path, old, new) replaces one exact occurrence of `old` with `new`,
and submit() ends the episode and runs the hidden tests. Fix the library source, not the tests."""

_POOLS: dict[tuple, SandboxPool] = {}
MAX_FILE_BYTES = 2_000_000
log = logging.getLogger(__name__)


def make_backend(name: str, limits: Limits):
    """``"docker"``, ``"bwrap"``, or ``"auto"`` (docker when a daemon answers, else bwrap)."""
    from agentgym.sandbox.base import SandboxError

    if name in ("docker", "auto"):
        try:
            from agentgym.sandbox.docker import DockerBackend

            return DockerBackend(limits=limits)
        except SandboxError as exc:
            if name == "docker":
                raise UserError(str(exc)) from exc
    if name in ("bwrap", "auto"):
        from agentgym.sandbox.bwrap import BwrapBackend

        try:
            return BwrapBackend(limits=limits)
        except SandboxError as exc:
            raise UserError(str(exc)) from exc
    raise UserError(f"unknown sandbox backend {name!r}; use docker, bwrap or auto.")


def shared_pool(backend: str, limits: Limits, size: int, reuse: bool) -> SandboxPool:
    """One pool per (backend, limits) in this process, shared by every env instance.

    The first one also removes sandboxes that crashed runs left behind, and all are
    closed when the process exits.
    """
    key = (backend, limits, size, reuse)
    if key not in _POOLS:
        impl = make_backend(backend, limits)
        if not _POOLS:
            _reap_dead(impl)
            atexit.register(_close_pools)
        _POOLS[key] = SandboxPool(impl, size=size, limits=limits, reuse=reuse)
    return _POOLS[key]


def _reap_dead(backend) -> None:
    from agentgym.sandbox.reaper import reap

    try:
        reap(docker=backend.name == "docker", bwrap=backend.name == "bwrap",
             client=getattr(backend, "client", None))
    except Exception as exc:  # best effort: never block an episode on cleanup
        log.debug("reaping leftovers failed: %s", exc)


def _close_pools() -> None:
    pools = list(_POOLS.values())
    _POOLS.clear()

    async def close_all() -> None:
        await asyncio.gather(*(p.close() for p in pools), return_exceptions=True)

    try:
        asyncio.run(close_all())
    except Exception as exc:  # at exit: the reaper handles anything left
        log.debug("closing sandbox pools at exit failed: %s", exc)


class SweEnv(TextEnv):
    """Repository-level bug fixing with hidden tests (see the module docstring).

    ``backend``: docker | bwrap | auto. ``reuse``: a finished episode's sandbox is reset in
    place and kept for the next episode of the same task (a GRPO group reuses one).
    ``pool_size``: sandboxes kept warm per task in the background; worth it only under a
    long-lived event loop (the rollout engine), not with the sync ``reset``/``step``.
    Pass ``pool=`` to share an explicit :class:`SandboxPool`.
    """

    system_prompt: ClassVar[str] = SYSTEM_PROMPT

    def __init__(self, *, backend: str = "auto", pool_size: int = 0, reuse: bool = True, cmd_timeout: float = 60.0,
                 test_timeout: float = 300.0, max_output: int = 8_000, memory_mb: int = 2048, cpus: float = 1.0,
                 pids: int = 512, pool: SandboxPool | None = None, max_turns: int = 30, **kwargs: Any):
        if kwargs.get("task") is None and kwargs.get("tasks") is None:
            kwargs["tasks"] = shipped_tasks()
        super().__init__(max_turns=max_turns, **kwargs)
        self.limits = Limits(memory_mb=memory_mb, cpus=cpus, pids=pids, timeout=cmd_timeout, max_output=max_output)
        self.backend_name = backend
        self.pool_size, self.reuse = pool_size, reuse
        self.cmd_timeout, self.test_timeout, self.max_output = cmd_timeout, test_timeout, max_output
        self._pool = pool
        self.sandbox: Sandbox | None = None
        self.graded: GradeResult | None = None
        self._progress: tuple[int, float, str] | None = None

    @property
    def pool(self) -> SandboxPool:
        if self._pool is None:
            self._pool = shared_pool(self.backend_name, self.limits, self.pool_size, self.reuse)
        return self._pool

    @property
    def workdir(self) -> str:
        return self.task.reference.get("workdir", "/work") if self.task else "/work"

    # ----------------------------------------------------------------- episode
    async def setup(self, task: Task) -> str:
        await self.aclose_sandbox()
        spec = await asyncio.to_thread(sandbox_spec, task)
        self.sandbox = await self.pool.acquire(spec)
        self.graded, self._progress = None, None
        return (f"{task.inputs['problem_statement']}\n\nThe repository ({task.inputs.get('repo', '')}) is in "
                f"{spec.workdir}. Fix the bug, then call submit().")

    async def aclose_sandbox(self) -> None:
        if self.sandbox is not None:
            sandbox, self.sandbox = self.sandbox, None
            await self.pool.release(sandbox)

    async def aclose(self) -> None:
        """The async protocol's close: the sandbox goes back to its pool on the caller's loop."""
        await self.aclose_sandbox()

    def close(self) -> None:
        if self.sandbox is not None:
            run_sync(self.aclose_sandbox())
        super().close()

    def _box(self) -> Sandbox:
        if self.sandbox is None:
            raise ToolError("the sandbox is gone; reset the environment.")
        return self.sandbox

    def _path(self, path: str) -> str:
        path = path.strip()
        if not path:
            raise ToolError("path is empty.")
        return path if path.startswith("/") else f"{self.workdir}/{path}"

    async def _read(self, p: str, shown: str) -> bytes:
        """A file's bytes, refusing files too large to be source code."""
        res = await self._box().exec(["bash", "-c", 'test -f "$1" && stat -c %s "$1"', "s", p], timeout=30)
        if res.exit_code != 0:
            raise ToolError(f"{shown} does not exist or is not a file.")
        if int(res.stdout.strip() or 0) > MAX_FILE_BYTES:
            raise ToolError(f"{shown} is larger than {MAX_FILE_BYTES} bytes; use bash (head, sed -n) to look at parts.")
        try:
            return await self._box().read_file(p)
        except OSError as exc:
            raise ToolError(f"cannot read {shown}: {exc}") from None

    # ----------------------------------------------------------------- tools
    @tool
    async def bash(self, cmd: str) -> str:
        """Run a bash command in the repository and return its exit code and output.

        Args:
            cmd: the command line, e.g. `python3 -m pytest tests/test_x.py -x -q`.
        """
        if not cmd.strip():
            raise ToolError("cmd is empty.")
        res = await self._box().exec(f"cd {shlex.quote(self.workdir)} && {cmd}", timeout=self.cmd_timeout)
        parts = [f"exit code: {res.exit_code}" + (" (timed out)" if res.timed_out else "")]
        if res.stdout:
            parts.append(res.stdout.rstrip("\n"))
        if res.stderr:
            parts.append("stderr:\n" + res.stderr.rstrip("\n"))
        return truncate("\n".join(parts), self.max_output)

    @tool
    async def view(self, path: str, lines: list[int] | None = None) -> str:
        """Show a file with line numbers (or list a directory).

        Args:
            path: file or directory, relative to the repository root or absolute.
            lines: optional [first, last] line numbers (1-based, inclusive).
        """
        p = self._path(path)
        box = self._box()
        res = await box.exec(["bash", "-c", 'if [ -d "$1" ]; then ls -la "$1"; exit 3; fi; test -f "$1"', "v", p],
                             timeout=30)
        if res.exit_code == 3:
            return truncate(res.stdout, self.max_output)
        if res.exit_code != 0:
            raise ToolError(f"{path} does not exist.")
        text = (await self._read(p, path)).decode("utf-8", "replace")
        all_lines = text.splitlines()
        first, last = 1, len(all_lines)
        if lines:
            if len(lines) != 2 or lines[0] < 1 or lines[1] < lines[0]:
                raise ToolError("lines must be [first, last] with 1 <= first <= last.")
            first, last = lines[0], min(lines[1], len(all_lines))
        body = "\n".join(f"{i:6d}\t{all_lines[i - 1]}" for i in range(first, last + 1))
        return truncate(body, self.max_output) if body else f"{path}: no lines in that range (the file has {len(all_lines)})."

    @tool
    async def edit(self, path: str, old: str, new: str) -> str:
        """Replace exactly one occurrence of `old` with `new` in a file (an empty `old` creates the file).

        Args:
            path: the file to change, relative to the repository root or absolute.
            old: the exact text to replace, with enough context to be unique.
            new: the replacement text.
        """
        p = self._path(path)
        box = self._box()
        try:
            text = (await self._read(p, path)).decode("utf-8")
        except UnicodeDecodeError:
            raise ToolError(f"{path} is not a UTF-8 text file.") from None
        except ToolError as exc:
            if "larger" in str(exc):
                raise
            text = None
        if old == "":
            if text:
                raise ToolError(f"{path} exists and is not empty; give the text to replace in `old`.")
            updated = new
        else:
            if text is None:
                raise ToolError(f"{path} does not exist or is not a text file.")
            count = text.count(old)
            if count != 1:
                raise ToolError(f"`old` occurs {count} times in {path}; it must occur exactly once.")
            updated = text.replace(old, new, 1)
        try:
            await box.write_file(p, updated)
        except OSError as exc:
            raise ToolError(f"cannot write {path}: {exc}") from None
        at = updated.find(new) if new else 0
        line = updated[:at].count("\n") + 1
        snippet = updated.splitlines()[max(0, line - 3): line + new.count("\n") + 3]
        listing = "\n".join(f"{i:6d}\t{s}" for i, s in enumerate(snippet, start=max(1, line - 2)))
        return truncate(f"Edited {path}.\n{listing}", self.max_output)

    @tool
    async def submit(self) -> str:
        """Finish: the hidden tests run and the episode ends with the reward."""
        result = await self.grade()
        f2p_ok = sum(v == "PASSED" for v in result.fail_to_pass.values())
        p2p_bad = [t for t, v in result.pass_to_pass.items() if v != "PASSED"]
        self.finish(result.reward, result.resolved, progress=result.progress, fail_to_pass=result.fail_to_pass,
                    pass_to_pass_failed=p2p_bad)
        verdict = "All tests pass: the bug is fixed." if result.resolved else "Not fixed."
        return (f"{verdict} FAIL_TO_PASS: {f2p_ok}/{len(result.fail_to_pass)} pass; "
                f"PASS_TO_PASS: {len(result.pass_to_pass) - len(p2p_bad)}/{len(result.pass_to_pass)} pass.")

    # ----------------------------------------------------------------- grading & guidance
    async def grade(self) -> GradeResult:
        """Restore the hidden tests and run FAIL_TO_PASS + PASS_TO_PASS in the sandbox."""
        ref = self.task.reference
        box = self._box()
        self.graded = await run_tests(box, ref["test_cmd"], ref["FAIL_TO_PASS"], ref["PASS_TO_PASS"],
                                      workdir=self.workdir, timeout=self.test_timeout, test_patch=ref.get("test_patch"))
        return self.graded

    async def aprogress(self) -> float | None:
        """Fraction of FAIL_TO_PASS tests that pass now (tests as the agent left them)."""
        if self.task is None or self.sandbox is None:
            return None
        if self.graded is not None:
            return self.graded.progress
        if self._progress and self._progress[0] == self.turn:
            return self._progress[1]
        ref = self.task.reference
        f2p = ref["FAIL_TO_PASS"]
        files = sorted({t.split("::")[0] for t in f2p})
        cmd = ref["test_cmd"].rsplit(" --color=no ", 1)[0] + " --color=no " + " ".join(files) \
            if " --color=no " in ref["test_cmd"] else ref["test_cmd"]
        result = await run_tests(self._box(), cmd, f2p, [], workdir=self.workdir, timeout=self.test_timeout,
                                 restore=False)
        self._progress = (self.turn, result.progress, result.output)
        return result.progress

    def progress(self) -> float | None:
        if self.task is None or self.sandbox is None:
            return None
        return run_sync(self.aprogress())

    def hint(self) -> str | None:
        if self.task is None:
            return None
        ref = self.task.reference
        files = touched_files(ref.get("gold_patch", ""))
        f2p = ref["FAIL_TO_PASS"]
        parts = [f"The bug is in {', '.join(files)}." if files else "",
                 "These tests must pass: " + ", ".join(f2p[:5]) + (" ..." if len(f2p) > 5 else "") + "."]
        output = self._progress[2] if self._progress else (self.graded.output if self.graded else "")
        if output:
            parts.append("Their last output:\n" + truncate(output, 2_000))
        return "\n".join(p for p in parts if p)

    def oracle_action(self) -> str:
        """Apply the gold patch, then submit."""
        patch = self.task.reference["gold_patch"]
        apply = f"git apply --whitespace=nowarn <<'AGENTGYM_GOLD_EOF'\n{patch}AGENTGYM_GOLD_EOF"
        calls = [{"name": "bash", "arguments": {"cmd": apply}}, {"name": "submit", "arguments": {}}]
        return "".join(f"<tool_call>{json.dumps(c)}</tool_call>" for c in calls)

    def render_text(self) -> str:
        return self._last_obs["content"] if self._last_obs else ""
