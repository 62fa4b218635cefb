"""SWE tasks as :class:`agentgym.Task` records, the shipped set, and SWE-bench files.

What the policy sees (``inputs``): the problem statement and the package. Hidden
(``reference``): the bug patch that builds the sandbox, the gold patch, the test
command and the FAIL_TO_PASS / PASS_TO_PASS lists.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from agentgym.core.task import Task, load_tasks
from agentgym.errors import UserError
from agentgym.sandbox.base import WORKDIR, SandboxSpec

SHIPPED = Path(__file__).with_name("tasks.jsonl")


def shipped_tasks() -> list[Task]:
    """The task set that ships with agentgym (patches only; sources come from PyPI)."""
    return load_tasks(SHIPPED)


def make_task(*, package: str, version: str, bug_patch: str, gold_patch: str, test_cmd: str,
              fail_to_pass: list[str], pass_to_pass: list[str], problem_statement: str,
              metadata: dict[str, Any] | None = None) -> Task:
    digest = hashlib.sha256(bug_patch.encode()).hexdigest()[:8]
    return Task(
        id=f"{package}-{version}-{digest}",
        inputs={"problem_statement": problem_statement, "repo": f"{package}=={version}"},
        reference={"package": package, "version": version, "bug_patch": bug_patch, "gold_patch": gold_patch,
                   "test_cmd": test_cmd, "FAIL_TO_PASS": fail_to_pass, "PASS_TO_PASS": pass_to_pass},
        metadata=dict(metadata or {}),
    )


def setup_script(bug_patch: str) -> str:
    """Inject the bug, then commit: ``git diff`` shows nothing and no object holds the original."""
    return (
        "git init -q\n"
        "git apply --whitespace=nowarn <<'AGENTGYM_PATCH_EOF'\n"
        f"{bug_patch}"
        "AGENTGYM_PATCH_EOF\n"
        "git add -A && git commit -qm 'initial import'\n"
    )


def sandbox_spec(task: Task) -> SandboxSpec:
    """The snapshot a task's sandbox starts from."""
    ref = task.reference
    if ref.get("image"):  # SWE-bench style: the user's image already holds the repository
        return SandboxSpec(key=f"task-{task.id}", image=ref["image"], workdir=ref.get("workdir", "/testbed"),
                           setup=ref.get("setup", ""))
    from envs.swe.repos import prepare_repo

    repo = prepare_repo(ref["package"], ref["version"])
    return SandboxSpec(key=f"task-{task.id}", source=repo.path, setup=setup_script(ref["bug_patch"]),
                       workdir=WORKDIR)


def _as_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return list(json.loads(value)) if value.strip() else []
    return list(value or [])


def load_swebench(path: str | Path, *, image: str, test_cmd: str, workdir: str = "/testbed") -> list[Task]:
    """Tasks from a SWE-bench-format instance file (JSON list or JSONL).

    ``image`` is a docker image (built by you) holding the repository at ``workdir`` at the
    instance's ``base_commit``; it may contain ``{instance_id}``. ``test_cmd`` runs the tests
    with pytest ``-rA`` output; ``{test_files}`` is replaced by the files ``test_patch`` touches.
    The image needs bash, git, python3 and a user named ``agent``.
    """
    path = Path(path)
    if not path.exists():
        raise UserError(f"instance file {path} does not exist.")
    text = path.read_text()
    records = json.loads(text) if text.lstrip().startswith("[") else [json.loads(x) for x in text.splitlines() if x.strip()]
    tasks = []
    for r in records:
        try:
            iid = r["instance_id"]
            test_patch = r.get("test_patch", "")
            files = sorted({line[6:].strip() for line in test_patch.splitlines() if line.startswith("+++ b/")})
            tasks.append(Task(
                id=iid,
                inputs={"problem_statement": r["problem_statement"], "repo": r.get("repo", "")},
                reference={"image": image.format(instance_id=iid), "workdir": workdir, "gold_patch": r["patch"],
                           "test_patch": test_patch, "test_cmd": test_cmd.format(test_files=" ".join(files)),
                           "FAIL_TO_PASS": _as_list(r["FAIL_TO_PASS"]), "PASS_TO_PASS": _as_list(r["PASS_TO_PASS"]),
                           "setup": ""},
                metadata={"source": "swe-bench", "base_commit": r.get("base_commit", "")},
            ))
        except KeyError as exc:
            raise UserError(f"{path}: instance lacks field {exc}; SWE-bench instances need instance_id, "
                            "problem_statement, patch, FAIL_TO_PASS and PASS_TO_PASS.") from None
    return tasks


def touched_files(patch: str) -> list[str]:
    return sorted({line[6:].strip() for line in patch.splitlines() if line.startswith("+++ b/")})
