"""Grading a model cannot fake, the way SWE-bench's harness grades.

1. **The model's changes, as a patch**: one ``git diff`` of the agent's work dir against
   the snapshot, made with the snapshot's own git directory (:data:`envs.swe.runner.EXTRACT_SCRIPT`);
2. **only changes to library files**: tests, ``conftest.py``, pytest configuration,
   ``sitecustomize``/``.pth`` files, byte code, symlinks and submodules are stripped
   (:mod:`envs.swe.patchrules`), and the observation says so;
3. **a freshly restored sandbox**: the grading sandbox goes back to the task's snapshot
   (every process killed, every file the agent wrote gone), the kept patch is applied,
   then the task's hidden test patch;
4. **results from a channel the code under test cannot rewrite**: a trusted runner
   (:mod:`envs.swe.runner`) that never imports the library runs pytest in a child and
   collects per-test outcomes over a private pipe, from the exception each test raised;
   its verdict comes back signed with a key only the host and the runner know;
5. **a mismatch scores 0** and is logged as suspected tampering (pytest said passed but
   the test raised, a canary that must fail passed, exit statuses disagree, a forged
   verdict line).

The reward is 1 only when every FAIL_TO_PASS and PASS_TO_PASS test passes and nothing
looks tampered with. ``docs/swe.md`` states the threat model: what this defends, what not.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import re
import secrets
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from agentgym.sandbox.base import SNAPSHOT_DIR, Sandbox
from envs.swe.patchrules import FilteredPatch, filter_patch
from envs.swe.runner import EXTRACT_SCRIPT

log = logging.getLogger(__name__)

#: The program the sandbox runs: the patch rules, the outcomes, then the runner (all standard
#: library only).
RUNNER_SOURCE = "\n\n".join(Path(__file__).with_name(name).read_text()
                              for name in ("patchrules.py", "outcomes.py", "runner.py"))
VERDICT_MARK = "AGENTGYM-VERDICT"
#: Largest diff of the agent's changes that is graded.
MAX_PATCH_BYTES = 2_000_000
#: Bytes of test output kept for the failure details shown to the model.
MAX_TEST_OUTPUT = 64_000

_OUTCOME = re.compile(r"^(PASSED|FAILED|ERROR|XFAIL|XPASS|SKIPPED)\s+(\S.*?)(?:\s+-\s+.*)?$")


def parse_pytest(output: str) -> dict[str, str]:
    """Test id -> outcome, from the ``-rA`` short summary (task generation only: output text
    is whatever the code under test prints, so grading never reads outcomes from it)."""
    results: dict[str, str] = {}
    for line in output.splitlines():
        m = _OUTCOME.match(line.strip())
        if m and "::" in m.group(2):
            test = m.group(2).strip()
            status = m.group(1)
            # a test that passed and then errored in teardown counts as an error
            if results.get(test) in ("FAILED", "ERROR"):
                continue
            results[test] = status
    return results


def failure_details(output: str, limit: int = 6) -> dict[str, list[str]]:
    """The ``E ...`` lines of each failing test, from ``--tb=short`` sections."""
    details: dict[str, list[str]] = {}
    current = None
    for line in output.splitlines():
        head = re.match(r"^_{3,} (.+?) _{3,}$", line)
        if head:
            current = head.group(1)
            details[current] = []
        elif current and line.startswith("E ") and line[1:].strip() and len(details[current]) < limit:
            details[current].append(line[1:].strip())
    return details


@dataclass
class GradeResult:
    reward: float
    fail_to_pass: dict[str, str] = field(default_factory=dict)
    pass_to_pass: dict[str, str] = field(default_factory=dict)
    output: str = ""
    timed_out: bool = False
    #: Changes that were not graded, as (path, reason).
    stripped: list[tuple[str, str]] = field(default_factory=list)
    #: Why the result looks tampered with (the reward is then 0).
    tampering: list[str] = field(default_factory=list)
    #: Why nothing could be graded (a patch that does not apply, a runner that failed).
    error: str = ""

    @property
    def progress(self) -> float:
        """The fraction of FAIL_TO_PASS tests that pass."""
        if not self.fail_to_pass:
            return float(self.reward)
        return sum(v == "PASSED" for v in self.fail_to_pass.values()) / len(self.fail_to_pass)

    @property
    def resolved(self) -> bool:
        return self.reward == 1.0

    def notes(self) -> str:
        """What the model should know beyond the counts: stripped changes, errors, tampering."""
        parts = []
        if self.stripped:
            shown = "; ".join(f"{p} ({why})" for p, why in self.stripped[:8])
            more = f"; and {len(self.stripped) - 8} more" if len(self.stripped) > 8 else ""
            parts.append(f"Not graded: changes to {shown}{more}.")
        if self.error:
            parts.append(self.error)
        if self.tampering:
            parts.append("Suspected tampering with the test harness, so the reward is 0: "
                         + "; ".join(self.tampering[:3]) + ".")
        if self.timed_out:
            parts.append("The tests timed out.")
        return " ".join(parts)


class CommandError(ValueError):
    """A task's test command that grading cannot run (it must be ``python -m pytest ...``)."""


def split_test_command(cmd: str) -> tuple[list[str], list[str]]:
    """``"python3 -I -B -m pytest ARGS"`` -> (``["python3", "-I", "-B"]``, ARGS); a bare
    ``pytest ARGS`` runs as ``python3 -m pytest ARGS``."""
    try:
        words = shlex.split(cmd)
    except ValueError as exc:
        raise CommandError(f"cannot parse the test command {cmd!r}: {exc}") from None
    if words and words[0] == "pytest":
        return ["python3"], words[1:]
    for i in range(1, len(words) - 1):
        if words[i] == "-m" and words[i + 1] == "pytest" and Path(words[0]).name.startswith("python"):
            return words[:i], words[i + 2:]
    raise CommandError(f"the test command must run pytest as `python3 -m pytest ...`, not {cmd!r}")


async def extract_patch(box: Sandbox, workdir: str, max_bytes: int = MAX_PATCH_BYTES,
                        timeout: float = 60) -> FilteredPatch:
    """The agent's changes in ``box`` as a diff against the snapshot, filtered on the host."""
    res = await box.exec(["bash", "-c", EXTRACT_SCRIPT, "extract", workdir, str(max_bytes), SNAPSHOT_DIR, "base64"],
                         timeout=timeout, limit=(max_bytes + 1) * 4 // 3 + 16)
    if res.timed_out or res.exit_code != 0:
        why = "it timed out" if res.timed_out else res.stderr.strip()[-300:] or f"exit code {res.exit_code}"
        return FilteredPatch(error=f"Your changes could not be collected ({why}); nothing was graded.")
    try:
        patch = base64.b64decode(res.stdout.strip(), validate=True)
    except (binascii.Error, ValueError):
        return FilteredPatch(error="Your changes could not be collected; nothing was graded.")
    return filter_patch(patch, max_bytes)


def read_verdict(output: str, key: str) -> tuple[dict | None, bool]:
    """The runner's signed verdict from its output; (None, forged) when there is none.

    ``forged`` is True when a line claims to be a verdict but its signature is wrong.
    """
    forged = False
    for line in reversed(output.splitlines()):
        at = line.find(VERDICT_MARK + " ")
        if at < 0:
            continue
        try:
            mac, body = line[at + len(VERDICT_MARK) + 1:].split(" ", 1)
        except ValueError:
            forged = True
            continue
        want = hmac.new(key.encode(), body.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(mac, want):
            forged = True
            continue
        try:
            return json.loads(body), forged
        except ValueError:
            forged = True
    return None, forged


async def run_graded(box: Sandbox, patch: FilteredPatch | None, *, test_cmd: str, f2p: list[str], p2p: list[str],
                     workdir: str, timeout: float = 300, test_patch: str | None = None) -> GradeResult:
    """One exec in ``box``: restore it to the snapshot, apply ``patch`` (None: the agent's own
    changes, taken from ``box`` first), then ``test_patch``, run the tests through the trusted
    runner, and score its signed verdict."""
    if patch is not None and patch.error:
        return GradeResult(0.0, {t: "MISSING" for t in f2p}, {t: "MISSING" for t in p2p}, error=patch.error,
                           stripped=patch.stripped)
    try:
        python, args = split_test_command(test_cmd)
    except CommandError as exc:
        return GradeResult(0.0, error=str(exc))
    key = secrets.token_hex(32)
    cfg = {"key": key, "workdir": workdir, "snapshot": SNAPSHOT_DIR, "python": python, "pytest_args": args,
           "tests": [*f2p, *p2p], "timeout": timeout, "max_output": MAX_TEST_OUTPUT, "max_patch": MAX_PATCH_BYTES,
           "reset": True, "extract": patch is None,
           "patch": base64.b64encode(patch.patch).decode() if patch is not None else None,
           "test_patch": base64.b64encode(test_patch.encode()).decode() if test_patch else None}
    res = await box.exec(["python3", "-I", "-S", "-c", RUNNER_SOURCE], timeout=timeout + 20, user="root",
                         workdir="/", limit=4 * MAX_TEST_OUTPUT + 64_000 + 200 * len(cfg["tests"]),
                         stdin=(json.dumps(cfg) + "\n").encode())
    verdict, forged = read_verdict(res.stdout, key)
    return score_verdict(verdict, forged, f2p, p2p, res.timed_out, res.stderr)


def score_verdict(verdict: dict | None, forged: bool, f2p: list[str], p2p: list[str], timed_out: bool = False,
                  stderr: str = "") -> GradeResult:
    """The reward from a verified verdict: 1 only when every test passed and nothing looks tampered with."""
    tampering = ["a verdict line with a wrong signature"] if forged else []
    if verdict is None:
        why = "the tests timed out" if timed_out else "the grading runner returned no verdict"
        return GradeResult(0.0, {t: "MISSING" for t in f2p}, {t: "MISSING" for t in p2p}, stderr[-2000:],
                           timed_out, [], tampering, f"Grading failed: {why}.")
    tests = verdict.get("tests") or {}
    f = {t: str(tests.get(t, "MISSING")) for t in f2p}
    p = {t: str(tests.get(t, "MISSING")) for t in p2p}
    tampering += [str(x) for x in verdict.get("flags") or []]
    error = str(verdict.get("patch_error") or verdict.get("apply_error") or verdict.get("error") or "")
    stripped = [(str(a), str(b)) for a, b in verdict.get("stripped") or []]
    timed_out = timed_out or bool(verdict.get("timed_out"))
    ok = (not tampering and not error and not timed_out and bool(verdict.get("finished"))
          and all(v == "PASSED" for v in [*f.values(), *p.values()]))
    return GradeResult(1.0 if ok else 0.0, f, p, str(verdict.get("output", "")), timed_out, stripped, tampering,
                       error)


async def grade(agent_box: Sandbox, reference: dict, *, workdir: str, timeout: float = 300,
                grading_box: Sandbox | None = None, tests: tuple[list[str], list[str]] | None = None,
                test_cmd: str | None = None, task_id: str = "") -> GradeResult:
    """Grade what the agent did in ``agent_box``: its changes, filtered, on a fresh tree.

    Without ``grading_box`` (the end of an episode) everything happens in ``agent_box`` in
    one exec: it is restored to the snapshot and holds nothing of the agent's afterwards.
    With one (``progress`` mid-episode) the changes are taken from ``agent_box`` and tested
    in ``grading_box``, leaving the agent's sandbox as it was.
    """
    f2p, p2p = tests if tests is not None else (reference["FAIL_TO_PASS"], reference["PASS_TO_PASS"])
    patch = None
    if grading_box is not None:
        patch = await extract_patch(agent_box, workdir)
    result = await run_graded(grading_box or agent_box, patch, test_cmd=test_cmd or reference["test_cmd"], f2p=f2p,
                              p2p=p2p, workdir=workdir, timeout=timeout, test_patch=reference.get("test_patch"))
    if result.tampering:
        log.warning("suspected tampering in task %s: %s", task_id or "?", "; ".join(result.tampering))
    return result
