"""Fast checks of the SWE pieces that need no sandbox."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from agentgym.errors import UserError
from agentgym.sandbox.base import OutputBuffer, truncate
from envs.swe.grading import failure_details, parse_pytest
from envs.swe.mutate import find_mutations, sample_mutations
from envs.swe.repos import is_test_path, parse_requirement, pytest_command
from envs.swe.tasks import load_swebench, setup_script, shipped_tasks, touched_files

SAMPLE = '''def window(seq, n=2, strict=True):
    out = []
    for i in range(len(seq) - n + 1):
        if not strict and i > 3:
            break
        out.append(seq[i:i + n])
    if n <= 0:
        raise ValueError(n)
    return out and out or []
'''


def test_output_buffer_keeps_head_and_tail_with_marker():
    buf = OutputBuffer(100)
    for _ in range(1000):
        buf.feed(b"x" * 100)
    buf.feed(b"END")
    text = buf.text()
    assert buf.truncated and len(text) < 200
    assert text.endswith("END") and "bytes truncated" in text
    assert truncate("short", 100) == "short"


def test_mutations_cover_each_kind_and_stay_minimal():
    muts = find_mutations(SAMPLE, "pkg/mod.py")
    kinds = {m.kind for m in muts}
    assert {"comparison_swap", "operator_swap", "off_by_one", "dropped_not", "dropped_branch", "wrong_default",
            "boolean_swap"} <= kinds
    for m in muts:
        changed = [a for a, b in zip(m.original.splitlines(), m.mutated.splitlines()) if a != b]
        assert m.mutated != m.original
        assert m.kind == "dropped_branch" or len(changed) == 1
        compile(m.mutated, "x", "exec")
    assert len(sample_mutations({"a.py": SAMPLE}, 5, seed=1)) == 5
    assert sample_mutations({"a.py": SAMPLE}, 5, seed=1) == sample_mutations({"a.py": SAMPLE}, 5, seed=1)


def test_bug_and_gold_patches_apply_with_git(tmp_path: Path):
    m = next(m for m in find_mutations(SAMPLE, "pkg/mod.py") if m.kind == "dropped_branch")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "mod.py").write_text(SAMPLE)
    script = setup_script(m.bug_patch())
    subprocess.run(["bash", "-ec", script], cwd=tmp_path, check=True, capture_output=True,
                   env={"PATH": "/usr/bin:/bin", "GIT_AUTHOR_NAME": "a", "GIT_AUTHOR_EMAIL": "a@b",
                        "GIT_COMMITTER_NAME": "a", "GIT_COMMITTER_EMAIL": "a@b", "HOME": str(tmp_path)})
    assert (tmp_path / "pkg" / "mod.py").read_text() == m.mutated
    status = subprocess.run(["git", "status", "--porcelain"], cwd=tmp_path, capture_output=True, text=True)
    assert status.stdout == ""  # the bug is committed: git diff shows nothing
    (tmp_path / "gold.patch").write_text(m.gold_patch())
    subprocess.run(["git", "apply", "gold.patch"], cwd=tmp_path, check=True)
    assert (tmp_path / "pkg" / "mod.py").read_text() == SAMPLE


def test_parse_pytest_summary_and_details():
    out = """
_____ test_b[x y] _____
E   assert 1 == 2
E
E   + where 1 = f()
=== short test summary info ===
PASSED tests/test_a.py::test_a
FAILED tests/test_a.py::test_b[x y] - assert 1 == 2
ERROR tests/test_a.py::test_c - RuntimeError
SKIPPED [1] tests/test_a.py:4: no
"""
    res = parse_pytest(out)
    assert res == {"tests/test_a.py::test_a": "PASSED", "tests/test_a.py::test_b[x y]": "FAILED",
                   "tests/test_a.py::test_c": "ERROR"}
    assert failure_details(out)["test_b[x y]"] == ["assert 1 == 2", "+ where 1 = f()"]


def test_requirements_and_paths():
    assert parse_requirement("toolz==1.2.0") == ("toolz", "1.2.0")
    with pytest.raises(UserError):
        parse_requirement("toolz")
    assert is_test_path("toolz/tests/test_x.py") and is_test_path("conftest.py") and is_test_path("setup.cfg")
    assert is_test_path("pkg/sitecustomize.py") and is_test_path("x.pth") and is_test_path("pkg/__pycache__/m.pyc")
    assert not is_test_path("toolz/itertoolz.py")
    assert "-o pythonpath=/work/src " in pytest_command("src", ["tests/test_a.py"])
    assert "-o pythonpath=/work " in pytest_command(".", ["tests/test_a.py"])


def test_shipped_tasks_are_consistent():
    tasks = shipped_tasks()
    assert len(tasks) >= 12
    packages = {t.reference["package"] for t in tasks}
    assert len(packages) >= 3
    for t in tasks:
        ref = t.reference
        assert ref["FAIL_TO_PASS"] and not set(ref["FAIL_TO_PASS"]) & set(ref["PASS_TO_PASS"])
        assert touched_files(ref["gold_patch"]) == touched_files(ref["bug_patch"])
        assert not any(is_test_path(f) for f in touched_files(ref["gold_patch"]))
        assert t.inputs["problem_statement"] and "gold" not in t.inputs
        # the patches are each other's reverse
        plus = [x[1:] for x in ref["bug_patch"].splitlines() if x.startswith("+") and not x.startswith("+++")]
        minus = [x[1:] for x in ref["gold_patch"].splitlines() if x.startswith("-") and not x.startswith("---")]
        assert plus == minus


def test_load_swebench_instances(tmp_path: Path):
    f = tmp_path / "inst.jsonl"
    f.write_text('{"instance_id": "o__r-1", "repo": "o/r", "base_commit": "abc", "problem_statement": "p", '
                 '"patch": "diff --git a/x.py b/x.py\\n+++ b/x.py\\n", "test_patch": "+++ b/tests/test_x.py\\n", '
                 '"FAIL_TO_PASS": "[\\"tests/test_x.py::t\\"]", "PASS_TO_PASS": "[]"}\n')
    (t,) = load_swebench(f, image="sweb.eval.{instance_id}", test_cmd="pytest -rA {test_files}")
    assert t.reference["image"] == "sweb.eval.o__r-1"
    assert t.reference["test_cmd"] == "pytest -rA tests/test_x.py"
    assert t.reference["FAIL_TO_PASS"] == ["tests/test_x.py::t"]
    with pytest.raises(UserError):
        load_swebench(tmp_path / "missing.json", image="x", test_cmd="y")


def test_register_imports_nothing_heavy():
    code = ("import sys, envs.swe as s; s.register(); "
            "bad = [m for m in ('docker', 'envs.swe.env', 'agentgym.sandbox.docker') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2])
