"""The kinds of rubric criteria and how each one is scored.

Every criterion scores one response in [0, 1] and carries a ``weight`` (negative for a
penalty, zero for a logged-only metric) and a ``hard`` flag (a gate: failing it zeroes
the reward; see :mod:`agentgym.rewards.aggregate`). Three families:

* deterministic: ``regex``, ``contains``, ``numeric``, ``json_field`` and ``python`` (a
  callable named by import path) look only at the response text;
* verifiable: ``verifiable`` runs a check (exact match, token F1, contains-answer, or
  an imported function) against the task's hidden reference answers;
* judged: ``judged`` is a natural-language criterion scored by a judge policy, yes/no
  (``scale: 1``) or 0..k, with a short rationale.

A criterion that cannot be scored (a judge failed, a callable raised) gets
``score=None`` and a status saying why: it is left out of the reward and counted,
never silently scored 0.
"""

from __future__ import annotations

import importlib
import inspect
import math
import re
from dataclasses import dataclass, field
from typing import Annotated, Any, Callable, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from agentgym.rewards.parsing import extract_json, get_path
from agentgym.rewards.verifiable import CHECKS, normalize_answer

Status = Literal["ok", "unparseable", "error", "timeout", "skipped"]


@dataclass
class ScoringContext:
    """What a criterion may look at: the response, the task's question and hidden reference."""

    response: str
    question: str = ""
    reference: dict[str, Any] = field(default_factory=dict)
    task: Any = None
    messages: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class CriterionScore:
    """One criterion's result; ``score`` is ``None`` when it could not be scored."""

    id: str
    kind: str
    weight: float
    hard: bool
    score: float | None
    status: Status = "ok"
    rationale: str = ""
    cached: bool = False
    raw: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if v is not None or k == "score"}
        return out


class _Base(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = ""
    description: str = ""
    weight: float = 1.0
    hard: bool = False

    @field_validator("weight")
    @classmethod
    def _finite(cls, v: float) -> float:
        if not math.isfinite(v):
            raise ValueError("weight must be a finite number")
        return v

    @property
    def judged(self) -> bool:
        return False

    def result(self, score: float | None, status: Status = "ok", rationale: str = "", **kw: Any) -> CriterionScore:
        if score is not None:
            score = min(1.0, max(0.0, float(score)))
        return CriterionScore(self.id, self.kind, self.weight, self.hard, score, status, rationale, **kw)  # type: ignore[attr-defined]

    def label(self) -> str:
        return self.description or self.id


class RegexCriterion(_Base):
    """1 when ``pattern`` is found in the response (0 with ``negate``)."""

    kind: Literal["regex"] = "regex"
    pattern: str
    ignore_case: bool = True
    negate: bool = False

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, v: str) -> str:
        try:
            re.compile(v)
        except re.error as exc:
            raise ValueError(f"invalid regular expression {v!r}: {exc}") from None
        return v

    def evaluate(self, ctx: ScoringContext) -> CriterionScore:
        found = re.search(self.pattern, ctx.response, re.IGNORECASE if self.ignore_case else 0) is not None
        return self.result(float(found != self.negate))


class ContainsCriterion(_Base):
    """The response contains any of ``any_of`` and all of ``all_of`` (as whole words when normalised)."""

    kind: Literal["contains"] = "contains"
    any_of: list[str] = Field(default_factory=list)
    all_of: list[str] = Field(default_factory=list)
    normalize: bool = True
    case_sensitive: bool = False
    negate: bool = False

    @model_validator(mode="after")
    def _something(self) -> "ContainsCriterion":
        if not self.any_of and not self.all_of:
            raise ValueError("a contains criterion needs any_of or all_of")
        return self

    def _has(self, text: str, needle: str) -> bool:
        if self.normalize:
            n = normalize_answer(needle)
            return bool(n) and f" {n} " in f" {normalize_answer(text)} "
        if not self.case_sensitive:
            return needle.lower() in text.lower()
        return needle in text

    def evaluate(self, ctx: ScoringContext) -> CriterionScore:
        ok = (not self.any_of or any(self._has(ctx.response, s) for s in self.any_of)) and all(
            self._has(ctx.response, s) for s in self.all_of
        )
        return self.result(float(ok != self.negate))


_NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?|[-+]?\.\d+")


class NumericCriterion(_Base):
    """A number in the response is within tolerance of ``target`` (or of ``reference[reference_key]``)."""

    kind: Literal["numeric"] = "numeric"
    target: float | None = None
    reference_key: str = "answer"
    rel_tol: float = 1e-2
    abs_tol: float = 0.0
    which: Literal["last", "first", "any"] = "last"

    def evaluate(self, ctx: ScoringContext) -> CriterionScore:
        target = self.target
        if target is None:
            try:
                target = float(str(ctx.reference.get(self.reference_key)).replace(",", ""))
            except (TypeError, ValueError):
                return self.result(None, "error", f"no numeric reference under {self.reference_key!r}")
        numbers = [float(m.replace(",", "")) for m in _NUMBER.findall(ctx.response)]
        if not numbers:
            return self.result(0.0, rationale="no number in the response")
        pool = {"last": numbers[-1:], "first": numbers[:1], "any": numbers}[self.which]
        close = any(math.isclose(x, target, rel_tol=self.rel_tol, abs_tol=self.abs_tol) for x in pool)
        return self.result(float(close))


class JsonFieldCriterion(_Base):
    """A field of the JSON in the response exists, equals ``equals`` or matches ``pattern``."""

    kind: Literal["json_field"] = "json_field"
    path: str
    equals: Any = None
    pattern: str | None = None

    def evaluate(self, ctx: ScoringContext) -> CriterionScore:
        data = extract_json(ctx.response)
        if data is None:
            return self.result(0.0, rationale="no JSON in the response")
        found, value = get_path(data, self.path)
        if not found:
            return self.result(0.0, rationale=f"no field {self.path!r}")
        if "equals" in self.model_fields_set:
            return self.result(float(value == self.equals))
        if self.pattern is not None:
            return self.result(float(re.search(self.pattern, str(value)) is not None))
        return self.result(1.0)


def import_callable(path: str) -> Callable[..., Any]:
    """``"pkg.mod:func"`` or ``"pkg.mod.func"`` -> the function."""
    module_name, sep, attr = path.partition(":")
    if not sep:
        module_name, _, attr = path.rpartition(".")
    if not module_name or not attr:
        raise ValueError(f"{path!r} is not an import path like 'package.module:function'")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise ValueError(f"{path!r} is not callable")
    return obj


async def call_flexibly(fn: Callable[..., Any], available: dict[str, Any], params: dict[str, Any]) -> Any:
    """Call ``fn`` with the context arguments it names (all of them if it takes ``**kwargs``)."""
    sig = inspect.signature(fn)
    takes_all = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
    kwargs = {k: v for k, v in available.items() if takes_all or k in sig.parameters}
    kwargs.update(params)
    out = fn(**kwargs)
    if inspect.isawaitable(out):
        out = await out
    return out


def coerce_result(out: Any) -> tuple[float, str]:
    """A check's return value (bool, number, ``(score, why)`` or ``{"score", "rationale"}``)."""
    rationale = ""
    if isinstance(out, dict):
        out, rationale = out.get("score"), str(out.get("rationale", ""))
    elif isinstance(out, tuple) and len(out) == 2:
        out, rationale = out[0], str(out[1])
    if isinstance(out, bool) or isinstance(out, (int, float)) and math.isfinite(out):
        return float(out), rationale
    raise ValueError(f"a check must return a bool or a finite number, not {out!r}")


def _context_args(ctx: ScoringContext) -> dict[str, Any]:
    return {
        "response": ctx.response, "question": ctx.question, "reference": ctx.reference,
        "task": ctx.task, "messages": ctx.messages,
    }


class PythonCriterion(_Base):
    """A function named by import path scores the response.

    It is called with whichever of ``response``, ``question``, ``reference``, ``task``
    and ``messages`` it names, plus ``params``; it may be async and returns a bool, a
    number in [0, 1], ``(score, rationale)`` or ``{"score": ..., "rationale": ...}``.
    """

    kind: Literal["python"] = "python"
    function: str
    params: dict[str, Any] = Field(default_factory=dict)

    async def aevaluate(self, ctx: ScoringContext) -> CriterionScore:
        try:
            fn = import_callable(self.function)
            score, why = coerce_result(await call_flexibly(fn, _context_args(ctx), self.params))
        except Exception as exc:  # a user's check failing is recorded, not a crash
            return self.result(None, "error", f"{type(exc).__name__}: {exc}")
        return self.result(score, rationale=why)


class VerifiableCriterion(_Base):
    """Run a check against the task's reference answers.

    ``check`` is ``exact_match``, ``token_f1``, ``contains_answer`` or an import path to
    ``f(prediction, answers) -> float``. ``answers`` defaults to the task's
    ``reference["answers"]`` / ``reference["answer"]`` (+ ``aliases``). With
    ``threshold`` the score is 1 when the check reaches it, else 0.
    """

    kind: Literal["verifiable"] = "verifiable"
    check: str = "token_f1"
    answers: list[str] | None = None
    threshold: float | None = None

    async def aevaluate(self, ctx: ScoringContext) -> CriterionScore:
        answers = self.answers if self.answers is not None else reference_answers(ctx.reference)
        if not answers:
            return self.result(None, "error", "the task has no reference answer to check against")
        try:
            fn = CHECKS.get(self.check) or import_callable(self.check)
            out = fn(ctx.response, answers)
            if inspect.isawaitable(out):
                out = await out
            score, why = coerce_result(out)
        except Exception as exc:
            return self.result(None, "error", f"{type(exc).__name__}: {exc}")
        if self.threshold is not None:
            score = float(score >= self.threshold)
        return self.result(score, rationale=why)


def reference_answers(reference: dict[str, Any]) -> list[str]:
    """The short gold answers of a task's reference: ``answers``, ``answer`` and ``aliases``."""
    out: list[str] = []
    for key in ("answers", "answer", "aliases"):
        value = reference.get(key)
        if isinstance(value, str):
            out.append(value)
        elif isinstance(value, list):
            out.extend(str(v) for v in value if isinstance(v, (str, int, float)))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out.append(str(value))
    return list(dict.fromkeys(out))


class JudgedCriterion(_Base):
    """A natural-language criterion scored by a judge: yes/no (``scale=1``) or 0..``scale``.

    ``judge`` names one of the configured judges; ``show_reference`` lets the judge see
    the task's hidden reference (the agent never does).
    """

    kind: Literal["judged"] = "judged"
    text: str = Field(min_length=1)
    scale: int = Field(1, ge=1, le=10)
    judge: str = "default"
    show_reference: bool = True

    @property
    def judged(self) -> bool:
        return True

    def label(self) -> str:
        return self.description or self.text


Criterion = Annotated[
    Union[
        RegexCriterion, ContainsCriterion, NumericCriterion, JsonFieldCriterion, PythonCriterion,
        VerifiableCriterion, JudgedCriterion,
    ],
    Field(discriminator="kind"),
]

KINDS = ("regex", "contains", "numeric", "json_field", "python", "verifiable", "judged")


async def evaluate_local(criterion: Any, ctx: ScoringContext) -> CriterionScore:
    """Score a non-judged criterion (deterministic or verifiable)."""
    if hasattr(criterion, "aevaluate"):
        return await criterion.aevaluate(ctx)
    return criterion.evaluate(ctx)


def evaluate_local_sync(criterion: Any, ctx: ScoringContext) -> CriterionScore:
    """Score a non-judged criterion from sync code (environments' step functions).

    Only async user callables need an event loop; they get a private one.
    """
    coro = evaluate_local(criterion, ctx)
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    coro.close()
    import asyncio

    return asyncio.run(evaluate_local(criterion, ctx))
