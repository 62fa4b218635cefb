"""Grading pieces that need no sandbox: the patch rules, the runner's verdict, signatures."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
from pathlib import Path

import pytest

from envs.swe.grading import CommandError, read_verdict, score_verdict, split_test_command
from envs.swe.outcomes import verdict
from envs.swe.patchrules import filter_patch, protected_reason

GIT = {"PATH": "/usr/bin:/bin", "GIT_AUTHOR_NAME": "a", "GIT_AUTHOR_EMAIL": "a@b", "GIT_COMMITTER_NAME": "a",
       "GIT_COMMITTER_EMAIL": "a@b", "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1"}


def git(repo: Path, *args: str, data: bytes | None = None) -> bytes:
    return subprocess.run(["git", *args], cwd=repo, env={**GIT, "HOME": str(repo)}, check=True, capture_output=True,
                          input=data).stdout


def make_repo(path: Path) -> Path:
    (path / "pkg").mkdir(parents=True)
    (path / "tests").mkdir()
    (path / "pkg" / "mod.py").write_text("x = 1\n")
    (path / "pkg" / "old.py").write_text("gone = 1\n")
    (path / "tests" / "test_mod.py").write_text("def test_x():\n    assert True\n")
    (path / "pyproject.toml").write_text("[project]\nname = 'pkg'\n")
    git(path, "init", "-q")
    git(path, "add", "-A")
    git(path, "commit", "-qm", "base")
    return path


def diff(repo: Path) -> bytes:
    git(repo, "add", "-A")
    return git(repo, "diff", "--cached", "--binary", "--no-renames", "--full-index", "HEAD")


def test_only_library_changes_are_kept_and_they_apply(tmp_path):
    repo = make_repo(tmp_path / "agent")
    (repo / "pkg" / "mod.py").write_text("x = 2\n")                        # kept
    (repo / "pkg" / "new mod é.py").write_text("y = 1\n")                  # kept (quoted path)
    (repo / "pkg" / "blob.bin").write_bytes(b"\x00\xff" * 10)              # kept (binary)
    (repo / "pkg" / "old.py").unlink()                                     # kept (deletion)
    os.chmod(repo / "pkg" / "mod.py", 0o755)
    (repo / "tests" / "test_mod.py").write_text("def test_x():\n    pass\n")  # stripped
    (repo / "conftest.py").write_text("import os\n")                       # stripped
    (repo / "pkg" / "sitecustomize.py").write_text("import sys\n")         # stripped
    (repo / "pkg" / "evil.pth").write_text("import os\n")                  # stripped
    (repo / "pkg" / "__pycache__").mkdir()
    (repo / "pkg" / "__pycache__" / "mod.cpython-311.pyc").write_bytes(b"\x00")  # stripped
    (repo / "pyproject.toml").write_text("[tool.pytest.ini_options]\naddopts = '-p evil'\n")  # stripped
    (repo / "pkg" / "link.py").symlink_to("/etc/passwd")                   # stripped
    (repo / "setup.cfg").write_text("[tool:pytest]\n")                     # stripped
    kept = filter_patch(diff(repo))
    assert not kept.error
    assert sorted(kept.files) == ["pkg/blob.bin", "pkg/mod.py", "pkg/new mod é.py", "pkg/old.py"]
    stripped = dict(kept.stripped)
    assert set(stripped) == {"tests/test_mod.py", "conftest.py", "pkg/sitecustomize.py", "pkg/evil.pth",
                             "pkg/__pycache__/mod.cpython-311.pyc", "pyproject.toml", "pkg/link.py", "setup.cfg"}
    assert "symlink" in stripped["pkg/link.py"]
    pristine = make_repo(tmp_path / "pristine")
    (pristine / "kept.patch").write_bytes(kept.patch)
    git(pristine, "apply", "kept.patch")
    assert (pristine / "pkg" / "mod.py").read_text() == "x = 2\n"
    assert not (pristine / "pkg" / "old.py").exists() and (pristine / "pkg" / "new mod é.py").exists()
    assert (pristine / "tests" / "test_mod.py").read_text() == "def test_x():\n    assert True\n"
    assert not (pristine / "conftest.py").exists() and not (pristine / "pkg" / "link.py").exists()


def test_a_tests_dir_replaced_by_a_symlink_is_stripped(tmp_path):
    repo = make_repo(tmp_path / "agent")
    evil = tmp_path / "evil"
    evil.mkdir()
    (evil / "conftest.py").write_text("import pytest\n")
    subprocess.run(["rm", "-rf", str(repo / "tests")], check=True)
    (repo / "tests").symlink_to(evil)
    kept = filter_patch(diff(repo))
    assert kept.files == [] and kept.patch == b""
    assert {p for p, _ in kept.stripped} == {"tests", "tests/test_mod.py"}


def test_unreadable_or_oversized_patches_grade_nothing():
    assert "could not be read" in filter_patch(b"hello\n").error
    assert "larger than" in filter_patch(b"diff --git a/x b/x\n" + b"+" * 100, max_bytes=50).error
    assert filter_patch(b"").files == [] and not filter_patch(b"").error


@pytest.mark.parametrize("path,protected", [
    ("pkg/mod.py", False), ("pkg/testing_utils.py", False), ("tests/helpers.py", True), ("pkg/test_x.py", True),
    ("a/b/conftest.py", True), ("pytest.ini", True), ("pkg/pytest.toml", True), ("tox.ini", True),
    ("usercustomize.py", True), ("x/y.pth", True), (".gitattributes", True), ("../etc/passwd", True),
    ("x/__pycache__/y.py", True), ("pkg/m.pyc", True),
])
def test_protected_paths(path, protected):
    assert (protected_reason(path) is not None) is protected


def rec(test, raw, rep):
    return {"t": test, "raw": raw, "rep": rep}


OK = {"setup": "ok", "call": "ok", "teardown": "ok"}
FAIL = {"setup": "ok", "call": "fail", "teardown": "ok"}
PASSED = {"setup": "passed", "call": "passed", "teardown": "passed"}
FAILED = {"setup": "passed", "call": "failed", "teardown": "passed"}


def test_verdict_outcomes_and_clean_runs():
    records = [rec("c::test_T_passes", OK, PASSED), rec("c::test_T_fails", FAIL, FAILED), rec("a::x", OK, PASSED),
               rec("a::y", FAIL, FAILED), rec("a::z", {"setup": "skip"}, {"setup": "skipped"}), {"finish": 1}]
    v = verdict(records, 1, ["a::x", "a::y", "a::z", "a::missing"], "T", False)
    assert v["tests"] == {"a::x": "PASSED", "a::y": "FAILED", "a::z": "SKIPPED", "a::missing": "MISSING"}
    assert v["flags"] == [] and v["finished"] and v["canary"] == {"passes": "PASSED", "fails": "FAILED"}


def test_xfail_and_skips_are_not_tampering():
    xfailed = {"setup": "passed", "call": "skipped", "teardown": "passed"}  # raised, reported as xfailed
    records = [rec("a::x", OK, PASSED), rec("a::xf", FAIL, xfailed), rec("a::s", {"setup": "skip"}, {"setup": "skipped"}),
               rec("c::test_T_fails", FAIL, FAILED), {"finish": 1}]
    assert verdict(records, 1, ["a::x"], "T", False)["flags"] == []
    v = verdict([rec("a::x", OK, PASSED), rec("a::xf", FAIL, xfailed), {"finish": 0}], 0, ["a::x", "a::xf"], "", False)
    assert v["flags"] == [] and v["tests"] == {"a::x": "PASSED", "a::xf": "FAILED"}


@pytest.mark.parametrize("records,code,flag", [
    ([rec("a::x", FAIL, PASSED), {"finish": 0}], 0, "raised"),                              # patched TestReport
    ([rec("c::test_T_fails", OK, PASSED), {"finish": 0}], 0, "canary"),                     # everything passes
    ([rec("a::x", OK, PASSED), rec("a::x", FAIL, FAILED), {"finish": 1}], 1, "twice"),      # forged records
    ([rec("a::x", OK, PASSED), {"finish": 1}], 0, "exit status"),                           # exit code rewritten
    ([rec("a::x", OK, PASSED)], 0, "before pytest finished"),                               # os._exit(0)
    ([rec("a::y", FAIL, FAILED), {"finish": 0}], 0, "exited 0 although"),
    ([None, {"finish": 0}], 0, "never writes"),
])
def test_verdict_flags_tampering(records, code, flag):
    v = verdict(records, code, ["a::x"], "T", False)
    assert any(flag in f for f in v["flags"]), v["flags"]


def sign(key: str, body: dict) -> str:
    text = json.dumps(body)
    return f"AGENTGYM-VERDICT {hmac.new(key.encode(), text.encode(), hashlib.sha256).hexdigest()} {text}"


def test_only_a_correctly_signed_verdict_counts():
    body = {"tests": {"a::x": "PASSED"}, "finished": True, "flags": []}
    good = sign("k", body)
    assert read_verdict(f"noise\n{good}\n", "k") == (body, False)
    forged = sign("other", {"tests": {"a::x": "PASSED"}, "finished": True, "flags": []})
    assert read_verdict(forged, "k") == (None, True)
    v, was_forged = read_verdict(f"{good}\n{forged}\n", "k")  # the child printed a forged one after
    assert v == body and was_forged
    g = score_verdict(v, was_forged, ["a::x"], [])
    assert g.reward == 0.0 and g.tampering
    assert score_verdict(body, False, ["a::x"], []).reward == 1.0
    assert score_verdict(None, False, ["a::x"], []).reward == 0.0
    assert score_verdict({**body, "finished": False}, False, ["a::x"], []).reward == 0.0
    assert score_verdict(body, False, ["a::x"], ["a::y"]).reward == 0.0


def test_test_commands():
    assert split_test_command("python3 -I -B -m pytest -q t.py") == (["python3", "-I", "-B"], ["-q", "t.py"])
    assert split_test_command("pytest -rA tests/x.py") == (["python3"], ["-rA", "tests/x.py"])
    with pytest.raises(CommandError):
        split_test_command("make test")
