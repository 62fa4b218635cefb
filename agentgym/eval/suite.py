"""Evaluation suites: which environments, task sets, splits and how many samples.

A suite is a YAML file::

    name: maze_easy
    description: 4x4 mazes from the test split
    sampling: {temperature: 0.7, max_tokens: 64}   # optional; any SamplingParams field
    env_factory: remote:ws://envhost:8001          # optional; default: this machine's registry
    envs:
      - id: maze/v0              # registered environment id
        kwargs: {preset: easy}   # passed to agentgym.make
        split: test              # tasks drawn from this split of the env's generator
        num_tasks: 50
        samples: 4               # episodes per task (pass@k needs k <= samples)
        max_turns: 20
        seed: 0                  # which tasks of the split
        # tasks: tasks.jsonl     # or a fixed task file (relative to the suite file)
        # name: maze-easy        # needed only when one id appears twice

Names resolve to ``configs/suites/NAME.yaml``: in the current directory first, then the
suites shipped with agentgym.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from agentgym.core.task import Split, Task, load_tasks
from agentgym.errors import UserError, yaml_error
from agentgym.policy.base import SamplingParams

if TYPE_CHECKING:
    from agentgym.core.factory import EnvFactory

SUITES_DIR = Path("configs") / "suites"


class SuiteEnv(BaseModel):
    """One environment of a suite and its task set."""

    model_config = ConfigDict(extra="forbid")

    id: str
    name: str = ""
    kwargs: dict[str, Any] = Field(default_factory=dict)
    split: Split = "test"
    num_tasks: int = Field(20, ge=1)
    samples: int = Field(1, ge=1)
    max_turns: int | None = Field(None, ge=1)
    seed: int = 0
    tasks: str | None = None

    @model_validator(mode="after")
    def _default_name(self) -> "SuiteEnv":
        if not self.name:
            preset = self.kwargs.get("preset")
            self.name = f"{self.id}:{preset}" if preset and f"-{preset}/" not in self.id else self.id
        return self

    def env_kwargs(self) -> dict[str, Any]:
        """What agentgym.make receives for this entry."""
        kwargs = dict(self.kwargs)
        kwargs.setdefault("split", self.split)
        if self.max_turns is not None:
            kwargs["max_turns"] = self.max_turns
        return kwargs


class Suite(BaseModel):
    """A named list of :class:`SuiteEnv` entries plus default sampling settings."""

    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    sampling: dict[str, Any] = Field(default_factory=dict)
    #: Where the environments run: None (this machine) or an env factory spec (``remote:ws://HOST:PORT``).
    env_factory: str | None = None
    envs: list[SuiteEnv] = Field(min_length=1)
    source: str | None = Field(None, exclude=True)

    @model_validator(mode="after")
    def _unique_names(self) -> "Suite":
        names = [e.name for e in self.envs]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"environment names must be unique; give entries a `name:` ({', '.join(dupes)})")
        unknown = set(self.sampling) - set(SamplingParams.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown sampling settings: {', '.join(sorted(unknown))}")
        return self

    def sampling_params(self, **overrides: Any) -> SamplingParams:
        values = {**self.sampling, **{k: v for k, v in overrides.items() if v is not None}}
        return SamplingParams(**values)

    def with_overrides(
        self, *, samples: int | None = None, num_tasks: int | None = None, max_turns: int | None = None
    ) -> "Suite":
        """A copy with every entry's samples, number of tasks and/or turn limit replaced."""
        update: dict[str, Any] = {}
        if max_turns is not None:
            update["max_turns"] = max_turns
        if samples is not None:
            update["samples"] = samples
        if num_tasks is not None:
            update["num_tasks"] = num_tasks
        if not update:
            return self
        envs = [e.model_copy(update=update) for e in self.envs]
        return self.model_copy(update={"envs": envs})


def shipped_suites_dirs() -> list[Path]:
    """Where shipped suites live: the source tree's configs/suites, or the installed package data."""
    package_root = Path(__file__).resolve().parents[2]
    return [package_root / SUITES_DIR, Path(__file__).resolve().parent / "suites"]


def suite_path(name_or_path: str | Path) -> Path:
    """The YAML file for a suite name or path; raises :class:`UserError` naming the choices."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") or candidate.exists():
        if not candidate.is_file():
            raise UserError(f"suite file {candidate} does not exist.")
        return candidate
    for directory in [Path.cwd() / SUITES_DIR, *shipped_suites_dirs()]:
        path = directory / f"{name_or_path}.yaml"
        if path.is_file():
            return path
    available = ", ".join(available_suites()) or "none"
    raise UserError(f"unknown suite {name_or_path!r}; give a YAML path or one of: {available}.")


def available_suites() -> list[str]:
    names: set[str] = set()
    for directory in [Path.cwd() / SUITES_DIR, *shipped_suites_dirs()]:
        if directory.is_dir():
            names.update(p.stem for p in directory.glob("*.yaml"))
    return sorted(names)


def load_suite(name_or_path: str | Path | Suite) -> Suite:
    """Read and validate a suite; errors name the file and the field."""
    if isinstance(name_or_path, Suite):
        return name_or_path
    path = suite_path(name_or_path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise yaml_error(path, exc) from exc
    if not isinstance(data, dict):
        raise UserError(f"{path} must hold a mapping with `name` and `envs`.")
    data.setdefault("name", path.stem)
    try:
        suite = Suite.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "suite"
        raise UserError(f"{path}: invalid suite ({where}: {first['msg']}).") from exc
    suite.source = str(path)
    return suite


def suite_tasks(entry: SuiteEnv, suite: Suite | None = None) -> list[Task]:
    """The tasks of one entry: from its task file, or drawn from the env's generator."""
    if entry.tasks:
        path = Path(entry.tasks)
        if not path.is_absolute() and suite is not None and suite.source:
            path = Path(suite.source).parent / path
        tasks = [t for t in load_tasks(path) if t.metadata.get("split", entry.split) == entry.split]
        if len(tasks) < entry.num_tasks:
            raise UserError(f"{path} has {len(tasks)} {entry.split} tasks; the suite asks for {entry.num_tasks}.")
        return tasks[: entry.num_tasks]
    from agentgym.core.factory import generated_tasks

    return generated_tasks(entry.id, entry.env_kwargs(), split=entry.split, count=entry.num_tasks, seed=entry.seed)


async def draw_tasks(entry: SuiteEnv, suite: Suite | None, factory: EnvFactory) -> list[Task]:
    """The tasks of one entry: from its task file, or drawn from the env's generator by ``factory``
    (a remote factory draws them on its server: this machine need not host the environment)."""
    if entry.tasks:
        return await asyncio.to_thread(suite_tasks, entry, suite)
    return await factory.tasks(entry.id, entry.env_kwargs(), split=entry.split, count=entry.num_tasks,
                               seed=entry.seed)
