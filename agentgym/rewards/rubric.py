"""A rubric: a list of weighted criteria and the rules that combine their scores.

Rubrics are plain data. They load from YAML or JSON (a mapping with ``criteria``, or
just the list of criteria), attach to tasks (``Task.rubric``), and serialise back
unchanged. Criteria without an ``id`` are numbered ``c1``, ``c2``, ...::

    criteria:
      - {kind: contains, any_of: [Rayleigh], weight: 1}
      - {kind: judged, text: "Explains that shorter wavelengths scatter more", scale: 2, weight: 2}
      - {kind: judged, text: "Claims the sky reflects the ocean", weight: -1}
      - {kind: regex, pattern: "\\\\S", hard: true, weight: 0}
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from agentgym.errors import UserError
from agentgym.rewards.aggregate import RubricResult, aggregate
from agentgym.rewards.criteria import Criterion, CriterionScore


class Rubric(BaseModel):
    """Weighted criteria plus aggregation settings (see :mod:`agentgym.rewards.aggregate`)."""

    model_config = ConfigDict(extra="forbid")

    criteria: list[Criterion] = Field(min_length=1)
    name: str = ""
    pass_threshold: float = 0.5
    clip: tuple[float, float] | None = (0.0, 1.0)

    @model_validator(mode="before")
    @classmethod
    def _from_list(cls, data: Any) -> Any:
        return {"criteria": data} if isinstance(data, list) else data

    @model_validator(mode="after")
    def _ids(self) -> "Rubric":
        seen: set[str] = set()
        for i, c in enumerate(self.criteria, 1):
            if not c.id:
                c.id = f"c{i}"
            if c.id in seen:
                raise ValueError(f"criterion id {c.id!r} is used twice")
            seen.add(c.id)
        return self

    # ------------------------------------------------------------------ views
    @property
    def judged(self) -> list[Any]:
        return [c for c in self.criteria if c.judged]

    @property
    def local(self) -> list[Any]:
        """Criteria scored without a judge (deterministic and verifiable)."""
        return [c for c in self.criteria if not c.judged]

    def combine(self, scores: list[CriterionScore]) -> RubricResult:
        """Aggregate scores (in criteria order) into the rubric's reward."""
        return aggregate(scores, pass_threshold=self.pass_threshold, clip=self.clip)

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        """Compact form: defaults left out (``kind`` and ``id`` always kept)."""
        out = self.model_dump(mode="json", exclude_defaults=True, exclude={"criteria"})
        out["criteria"] = [
            {"id": c.id, "kind": c.kind, **c.model_dump(mode="json", exclude_defaults=True, exclude={"id", "kind"})}
            for c in self.criteria
        ]
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)

    @classmethod
    def coerce(cls, value: Any) -> "Rubric":
        """A rubric from a Rubric, dict, list, or JSON/YAML text; raises :class:`UserError`."""
        if isinstance(value, Rubric):
            return value
        if isinstance(value, str):
            try:
                value = yaml.safe_load(value)
            except yaml.YAMLError as exc:
                raise UserError(f"a rubric must be YAML or JSON ({exc}).") from exc
        try:
            return cls.model_validate(value)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "rubric"
            raise UserError(f"invalid rubric ({where}: {first['msg']}); see docs/rubrics.md.") from exc

    @classmethod
    def load(cls, path: str | Path) -> "Rubric":
        """Read a rubric from a YAML or JSON file."""
        path = Path(path)
        if not path.exists():
            raise UserError(f"rubric file {path} does not exist.")
        return cls.coerce(path.read_text(encoding="utf-8"))

    def save(self, path: str | Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = self.to_json() if path.suffix == ".json" else self.to_yaml()
        path.write_text(text, encoding="utf-8")


def load_rubric_table(path: str | Path) -> dict[str, Rubric]:
    """Task id -> rubric, from the JSONL written by ``agentgym rubrics build``."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"rubric file {path} does not exist; build it with `agentgym rubrics build`.")
    table: dict[str, Rubric] = {}
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                table[str(row["task_id"])] = Rubric.coerce(row["rubric"])
            except (json.JSONDecodeError, KeyError, TypeError, UserError) as exc:
                raise UserError(f"{path}:{lineno}: not a rubric row ({exc}).") from exc
    return table
