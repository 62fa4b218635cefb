"""Tasks and task sets.

A :class:`Task` separates what the policy may see (``inputs``) from hidden reference
data (``reference``: answers, solutions, gold patches) that only rewards, oracles and
guidance may read. Task sets come from JSONL files or are generated deterministically
from a seed; splits are assigned by a hash of the task's content, so train and test can
never share a task however many are drawn.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agentgym.errors import UserError

Split = Literal["train", "test"]


class Task(BaseModel):
    """One task: an id, inputs shown to the policy, hidden reference data, metadata.

    ``rubric`` optionally attaches a rubric (see :mod:`agentgym.rewards`) in its
    serialised form. The reference and rubric are left out of ``repr``/``str``: printing or logging a
    task (or an env's reset info, which carries it) never shows the hidden answer.
    """

    model_config = ConfigDict(extra="forbid")

    id: str
    inputs: dict[str, Any] = Field(default_factory=dict)
    reference: dict[str, Any] = Field(default_factory=dict, repr=False)
    metadata: dict[str, Any] = Field(default_factory=dict)
    rubric: Any = Field(None, repr=False)

    def fingerprint(self) -> str:
        """A stable hash of what the policy sees: equal inputs, equal fingerprint."""
        blob = json.dumps(self.inputs, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()


def split_of(fingerprint: str, test_fraction: float = 0.2) -> Split:
    """Assign a split from a content hash: identical content always lands in one split."""
    bucket = int(fingerprint[:8], 16) / 0xFFFFFFFF
    return "test" if bucket < test_fraction else "train"


def load_tasks(path: str | Path) -> list[Task]:
    """Read tasks from a JSONL file (one :class:`Task` per line)."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"task file {path} does not exist.")
    tasks: list[Task] = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                tasks.append(Task.model_validate_json(line))
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"])
                raise UserError(f"{path}:{lineno}: invalid task ({where}: {first['msg']}).") from exc
    return tasks


def save_tasks(tasks: Iterable[Task], path: str | Path) -> None:
    """Write tasks to a JSONL file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for task in tasks:
            fh.write(task.model_dump_json() + "\n")


def generate_split(
    make_task: Callable[[int], Task],
    *,
    split: Split,
    count: int,
    seed: int = 0,
    test_fraction: float = 0.2,
    max_tries_factor: int = 200,
) -> list[Task]:
    """Draw ``count`` distinct tasks of one split from a seeded generator.

    ``make_task(i)`` must be deterministic in ``i``. Candidates are drawn from the
    stream ``seed * 1_000_003 + i`` and kept when their content hash falls in ``split``;
    duplicates are skipped. Raises :class:`UserError` when the space is too small.
    """
    out: list[Task] = []
    seen: set[str] = set()
    distinct: set[str] = set()
    tries = count * max_tries_factor
    for i in _stream(seed, tries):
        task = make_task(i)
        fp = task.fingerprint()
        distinct.add(fp)
        if fp in seen or split_of(fp, test_fraction) != split:
            continue
        seen.add(fp)
        out.append(task)
        if len(out) == count:
            return out
    raise UserError(f"could only generate {len(out)} distinct {split} tasks of {count} asked for: generate_task "
                    f"gave {len(distinct)} distinct tasks in {tries} calls, and tasks go to the train or test split "
                    f"by a hash of their `inputs` (~{test_fraction:.0%} test); ask for fewer, or give each task "
                    "distinct inputs.")


def _stream(seed: int, n: int) -> Iterator[int]:
    base = seed * 1_000_003
    return iter(range(base, base + n))
