"""Grading: restore the hidden tests, run them, read pytest's per-test outcomes.

Before the tests run, every test file and test configuration file in the work dir is
put back as it was in the snapshot (and new ones are deleted), so an agent cannot pass
by editing tests; SWE-bench style hidden tests (``test_patch``) are applied on top. The
reward is 1 only when every FAIL_TO_PASS and PASS_TO_PASS test passes.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

from agentgym.sandbox.base import SNAPSHOT_DIR, Sandbox

#: Runs inside the sandbox with ``python3 -I``: put protected paths back from the snapshot.
RESTORE_SCRIPT = r'''
import os, shutil, sys
snap, work = sys.argv[1], sys.argv[2]
def protected(rel):
    parts = rel.split("/"); name = parts[-1]
    return (name.startswith("test_") or name.endswith("_test.py") or name == "conftest.py"
            or any(p in ("tests", "test", "testing") for p in parts[:-1])
            or name in ("pytest.ini", "tox.ini", "setup.cfg", "pyproject.toml", "noxfile.py"))
def walk(root):
    for d, dirs, files in os.walk(root):
        dirs[:] = [x for x in dirs if x != ".git"]
        os.chmod(d, 0o755) if root == work and not os.access(d, os.W_OK | os.X_OK) else None
        for f in files + [x for x in dirs if os.path.islink(os.path.join(d, x))]:
            yield os.path.relpath(os.path.join(d, f), root)
for rel in list(walk(work)):
    if protected(rel) and not os.path.lexists(os.path.join(snap, rel)):
        os.unlink(os.path.join(work, rel))
for rel in walk(snap):
    if protected(rel):
        dst = os.path.join(work, rel)
        if os.path.isdir(dst) and not os.path.islink(dst):
            shutil.rmtree(dst)
        elif os.path.lexists(dst):
            os.unlink(dst)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy2(os.path.join(snap, rel), dst, follow_symlinks=False)
'''

_OUTCOME = re.compile(r"^(PASSED|FAILED|ERROR|XFAIL|XPASS|SKIPPED)\s+(\S.*?)(?:\s+-\s+.*)?$")


def parse_pytest(output: str) -> dict[str, str]:
    """Test id -> outcome, from the ``-rA`` short summary."""
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

    @property
    def progress(self) -> float:
        """The fraction of FAIL_TO_PASS tests that pass."""
        if not self.fail_to_pass:
            return float(self.reward)
        return sum(v == "PASSED" for v in self.fail_to_pass.values()) / len(self.fail_to_pass)

    @property
    def resolved(self) -> bool:
        return self.reward == 1.0


def grading_script(test_cmd: str, workdir: str, test_patch_file: str | None = None) -> str:
    """One shell command, run as the agent: kill its leftover processes (``kill -1`` spares
    the caller), restore the protected files, apply hidden tests, run the tests."""
    wd = shlex.quote(workdir)
    apply = f"git -C {wd} apply --whitespace=nowarn {test_patch_file} && " if test_patch_file else ""
    return (f"for i in 1 2 3 4 5 6 7 8; do kill -9 -1 2>/dev/null || break; done; python3 -I -c {shlex.quote(RESTORE_SCRIPT)} {SNAPSHOT_DIR} {wd} && "
            f"{apply}cd {wd} && {test_cmd}")


def score(output: str, f2p: list[str], p2p: list[str], timed_out: bool = False) -> GradeResult:
    results = parse_pytest(output)
    f = {t: results.get(t, "MISSING") for t in f2p}
    p = {t: results.get(t, "MISSING") for t in p2p}
    ok = not timed_out and all(v == "PASSED" for v in [*f.values(), *p.values()])
    return GradeResult(1.0 if ok else 0.0, f, p, output, timed_out)


async def run_tests(sandbox: Sandbox, test_cmd: str, f2p: list[str], p2p: list[str], *, workdir: str,
                    timeout: float = 300, test_patch: str | None = None, restore: bool = True) -> GradeResult:
    """Restore the tests (unless ``restore=False``), run ``test_cmd`` and score it: one exec."""
    patch_file = None
    if restore and test_patch:
        patch_file = "/tmp/.agentgym-test.patch"
        await sandbox.write_file(patch_file, test_patch)
    cmd = grading_script(test_cmd, workdir, patch_file) if restore else f"cd {shlex.quote(workdir)} && {test_cmd}"
    res = await sandbox.exec(cmd, timeout=timeout, limit=None)
    return score(res.stdout + "\n" + res.stderr, f2p, p2p, res.timed_out)
