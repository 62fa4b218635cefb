"""The SWE environment: fix a real bug in a real library inside a sandbox.

Tools: ``bash``, ``view``, ``edit``, ``submit``. ``submit`` grades the agent's changes the
way SWE-bench does (:mod:`envs.swe.grading`: only library changes, on a freshly restored
tree, with the task's tests, through a runner the code under test cannot fool) and ends
the episode with reward 1 only when every FAIL_TO_PASS and PASS_TO_PASS test passes.
:meth:`progress` is the fraction of FAIL_TO_PASS tests passing on the agent's changes now
(graded the same way, in a second sandbox, so the agent's own stays as it is);
:meth:`hint` names the files the gold patch touches and shows the failing output;
:meth:`oracle_action` applies the gold patch and submits.

Every tool call has a deadline enforced from outside the sandbox: a sandbox that does not
answer in time is discarded and the next call gets a fresh one, and the observation says
so. Observations never carry raw control characters (terminal escapes, NUL bytes).
"""

from __future__ import annotations

import asyncio
import json
import logging
import shlex
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

from agentgym.core import TextEnv, ToolError
from agentgym.core.hooks import run_sync
from agentgym.core.task import Task
from agentgym.core.tools import tool
from agentgym.sandbox.base import (
    FileTooLarge,
    Limits,
    NotARegularFile,
    Sandbox,
    SandboxError,
    printable,
    truncate,
)
from agentgym.sandbox.pool import SandboxPool
from envs.swe.backends import shared_pool
from envs.swe.grading import GradeResult, grade
from envs.swe.tasks import sandbox_spec, shipped_tasks, touched_files

SYSTEM_PROMPT = """You are a software engineer fixing a bug in a Python library.
The repository is checked out in /work (a git repository); there is no network.
Use the tools: bash(cmd) runs a shell command in /work, view(path, lines) shows a file
with line numbers, edit(path, old, new) replaces one exact occurrence of `old` with `new`,
and submit() ends the episode and runs the hidden tests. Fix the library source, not the tests."""

MAX_FILE_BYTES = 2_000_000
log = logging.getLogger(__name__)

#: Seconds a tool call may take beyond its own timeout before the sandbox is given up.
GRACE = 4.5
LOST = ("[the sandbox {why}, so it was discarded; the next tool call starts a fresh one from the task's "
        "initial state: every change is lost]")


class SweEnv(TextEnv):
    """Repository-level bug fixing with hidden tests (see the module docstring).

    ``backend``: docker | bwrap | auto (:mod:`envs.swe.backends`). ``reuse``: a finished episode's sandbox is reset in
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
        self._grader: Sandbox | None = None  # where progress() grades, beside the agent's sandbox
        self._spec = None
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
        self._spec = spec = await asyncio.to_thread(sandbox_spec, task)
        self.sandbox = await self.pool.acquire(spec)
        self.graded, self._progress = None, None
        return (f"{task.inputs['problem_statement']}\n\nThe repository ({task.inputs.get('repo', '')}) is in "
                f"{spec.workdir}. Fix the bug, then call submit().")

    async def aclose_sandbox(self) -> None:
        """Give this episode's sandboxes back to the pool (reset for reuse)."""
        boxes = [b for b in (self.sandbox, self._grader) if b is not None]
        self.sandbox = self._grader = None
        for box in boxes:
            await self.pool.release(box)

    async def aclose(self) -> None:
        """Async ``close``: release the sandboxes without blocking the event loop."""
        await self.aclose_sandbox()
        super().close()

    def close(self) -> None:
        if self.sandbox is not None or self._grader is not None:
            run_sync(self.aclose_sandbox())
        super().close()

    async def _box(self) -> Sandbox:
        """The agent's sandbox; a fresh one when the last one was discarded mid-episode."""
        if self.sandbox is None:
            if self._spec is None or self.done:
                raise ToolError("the sandbox is gone; reset the environment.")
            self.sandbox = await self.pool.acquire(self._spec)
        return self.sandbox

    def _discard(self, box: Sandbox) -> None:
        if self.sandbox is box:
            self.sandbox = None
        if self._grader is box:
            self._grader = None
        self.pool.discard(box)

    async def _guarded(self, work: Callable[[Sandbox], Awaitable[str]], seconds: float) -> str:
        """``work(sandbox)`` with a deadline enforced from outside the sandbox; a sandbox that
        misses it or breaks is discarded, and the observation says what happened. The text
        comes back with control characters escaped, then cut to ``max_output``."""
        used: list[Sandbox] = []

        async def run() -> str:
            used.append(await self._box())
            return truncate(printable(await work(used[0])), self.max_output)

        try:
            return await asyncio.wait_for(run(), seconds + GRACE)
        except asyncio.TimeoutError:
            why = f"did not answer within {seconds + GRACE:g} s"
        except SandboxError as exc:
            why = f"failed ({printable(str(exc))[:200]})"
        if used:
            self._discard(used[0])
        return LOST.format(why=why)

    def _path(self, path: str) -> str:
        path = path.strip()
        if not path:
            raise ToolError("path is empty.")
        return path if path.startswith("/") else f"{self.workdir}/{path}"

    @staticmethod
    async def _read(box: Sandbox, p: str, shown: str) -> bytes | None:
        """A regular file's bytes (None when it does not exist); bounded at ``MAX_FILE_BYTES``."""
        try:
            return await box.read_file(p, MAX_FILE_BYTES)
        except FileNotFoundError:
            return None
        except FileTooLarge:
            raise ToolError(f"{shown} is larger than {MAX_FILE_BYTES} bytes; use bash (head, sed -n) to look at "
                            "parts.") from None
        except NotARegularFile:
            raise ToolError(f"{shown} is not a regular file (a directory, device, FIFO or a file under /proc, /sys "
                            "or /dev); view shows regular files only.") from None
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

        async def run(box: Sandbox) -> str:
            res = await box.exec(f"cd {shlex.quote(self.workdir)} && {cmd}", timeout=self.cmd_timeout)
            parts = [f"exit code: {res.exit_code}" + (" (timed out)" if res.timed_out else "")]
            if res.stdout:
                parts.append(res.stdout.rstrip("\n"))
            if res.stderr:
                parts.append("stderr:\n" + res.stderr.rstrip("\n"))
            return "\n".join(parts)

        return await self._guarded(run, self.cmd_timeout)

    @tool
    async def view(self, path: str, lines: list[int] | None = None) -> str:
        """Show a file with line numbers (or list a directory).

        Args:
            path: file or directory, relative to the repository root or absolute.
            lines: optional [first, last] line numbers (1-based, inclusive).
        """
        p = self._path(path)
        shown = printable(path)
        if lines and (len(lines) != 2 or lines[0] < 1 or lines[1] < lines[0]):
            raise ToolError("lines must be [first, last] with 1 <= first <= last.")

        async def show(box: Sandbox) -> str:
            res = await box.exec(["bash", "-c", 'if [ -d "$1" ]; then ls -la -- "$1"; exit 3; fi', "v", p],
                                 timeout=self.cmd_timeout)
            if res.exit_code == 3:
                return res.stdout
            data = await self._read(box, p, shown)
            if data is None:
                raise ToolError(f"{shown} does not exist.")
            all_lines = data.decode("utf-8", "replace").splitlines()
            first, last = (lines[0], min(lines[1], len(all_lines))) if lines else (1, len(all_lines))
            body = "\n".join(f"{i:6d}\t{all_lines[i - 1]}" for i in range(first, last + 1))
            return body or f"{shown}: no lines in that range (the file has {len(all_lines)})."

        return await self._guarded(show, self.cmd_timeout)

    @tool
    async def edit(self, path: str, old: str, new: str) -> str:
        """Replace exactly one occurrence of `old` with `new` in a file (an empty `old` creates the file).

        Args:
            path: the file to change, relative to the repository root or absolute.
            old: the exact text to replace, with enough context to be unique.
            new: the replacement text.
        """
        p = self._path(path)
        shown = printable(path)

        async def change(box: Sandbox) -> str:
            data = await self._read(box, p, shown)
            try:
                text = data.decode("utf-8") if data is not None else None
            except UnicodeDecodeError:
                raise ToolError(f"{shown} is not a UTF-8 text file.") from None
            if old == "":
                if text:
                    raise ToolError(f"{shown} exists and is not empty; give the text to replace in `old`.")
                updated = new
            else:
                if text is None:
                    raise ToolError(f"{shown} does not exist.")
                count = text.count(old)
                if count != 1:
                    raise ToolError(f"`old` occurs {count} times in {shown}; it must occur exactly once.")
                updated = text.replace(old, new, 1)
            try:
                await box.write_file(p, updated.encode("utf-8", "replace"))
            except OSError as exc:
                raise ToolError(f"cannot write {shown}: {exc}") from None
            at = updated.find(new) if new else 0
            line = updated[:at].count("\n") + 1
            snippet = updated.splitlines()[max(0, line - 3): line + new.count("\n") + 3]
            listing = "\n".join(f"{i:6d}\t{s}" for i, s in enumerate(snippet, start=max(1, line - 2)))
            return f"Edited {shown}.\n{listing}"

        return await self._guarded(change, self.cmd_timeout)

    @tool
    async def submit(self) -> str:
        """Finish: the hidden tests run and the episode ends with the reward."""
        result = await self.grade()
        f2p_ok = sum(v == "PASSED" for v in result.fail_to_pass.values())
        p2p_bad = [t for t, v in result.pass_to_pass.items() if v != "PASSED"]
        self.finish(result.reward, result.resolved, progress=result.progress, fail_to_pass=result.fail_to_pass,
                    pass_to_pass_failed=p2p_bad, not_graded=[p for p, _ in result.stripped],
                    tampering=result.tampering)
        verdict = "All tests pass: the bug is fixed." if result.resolved else "Not fixed."
        notes = result.notes()
        return printable(f"{verdict} FAIL_TO_PASS: {f2p_ok}/{len(result.fail_to_pass)} pass; "
                         f"PASS_TO_PASS: {len(result.pass_to_pass) - len(p2p_bad)}/{len(result.pass_to_pass)} pass."
                         + (f"\n{notes}" if notes else ""))

    # ----------------------------------------------------------------- grading & guidance
    async def grade(self) -> GradeResult:
        """Grade the agent's changes (library files only, on the task's pristine tree, with the
        task's tests) in its own sandbox, which is restored to the snapshot in doing so."""
        ref = self.task.reference
        f2p, p2p = ref["FAIL_TO_PASS"], ref["PASS_TO_PASS"]
        box = None
        try:
            box = await self._box()
            self.graded = await asyncio.wait_for(
                grade(box, ref, workdir=self.workdir, timeout=self.test_timeout, task_id=self.task.id),
                self.test_timeout + GRACE)
        except (SandboxError, ToolError, OSError, asyncio.TimeoutError) as exc:
            timed_out = isinstance(exc, asyncio.TimeoutError)
            if box is not None:
                self._discard(box)
            why = f"it did not finish within {self.test_timeout + GRACE:g} s" if timed_out else \
                f"the sandbox broke ({printable(str(exc))[:200]})"
            self.graded = GradeResult(0.0, {t: "MISSING" for t in f2p}, {t: "MISSING" for t in p2p},
                                      timed_out=timed_out, error=f"Grading failed: {why}.")
        return self.graded

    def _progress_command(self) -> str:
        """The task's test command limited to the files of the FAIL_TO_PASS tests."""
        ref = self.task.reference
        files = sorted({t.split("::")[0] for t in ref["FAIL_TO_PASS"]})
        cmd = ref["test_cmd"]
        return cmd.rsplit(" --color=no ", 1)[0] + " --color=no " + " ".join(files) if " --color=no " in cmd else cmd

    async def aprogress(self) -> float | None:
        """Fraction of FAIL_TO_PASS tests that pass on the agent's changes now, graded like
        ``submit`` in a second sandbox (the agent's own is left as it is)."""
        if self.task is None or self._spec is None:
            return None
        if self.graded is not None:
            return self.graded.progress
        if self._progress and self._progress[0] == self.turn:
            return self._progress[1]
        ref = self.task.reference
        try:
            agent = await self._box()
            if self._grader is None:
                self._grader = await self.pool.acquire(self._spec)
            result = await asyncio.wait_for(
                grade(agent, ref, workdir=self.workdir, timeout=self.test_timeout, grading_box=self._grader,
                      tests=(ref["FAIL_TO_PASS"], []), test_cmd=self._progress_command(), task_id=self.task.id),
                self.test_timeout + self.cmd_timeout + GRACE)  # the diff is taken first, under cmd_timeout
        except (SandboxError, ToolError, OSError, asyncio.TimeoutError) as exc:
            log.warning("progress of %s could not be graded: %r", self.task.id, exc)
            if self._grader is not None and isinstance(exc, (SandboxError, asyncio.TimeoutError)):
                self._discard(self._grader)
            return self._progress[1] if self._progress else 0.0
        self._progress = (self.turn, result.progress, result.output)
        return result.progress

    def progress(self) -> float | None:
        if self.task is None or self._spec is None:
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
            parts.append("Their last output:\n" + truncate(printable(output), 2_000))
        return "\n".join(p for p in parts if p)

    def oracle_action(self) -> str:
        """Apply the gold patch, then submit."""
        patch = self.task.reference["gold_patch"]
        apply = f"git apply --whitespace=nowarn <<'AGENTGYM_GOLD_EOF'\n{patch}AGENTGYM_GOLD_EOF"
        calls = [{"name": "bash", "arguments": {"cmd": apply}}, {"name": "submit", "arguments": {}}]
        return "".join(f"<tool_call>{json.dumps(c)}</tool_call>" for c in calls)

    def render_text(self) -> str:
        return self._last_obs["content"] if self._last_obs else ""
