"""Judges: any policy, a prompt template and a parser that scores one criterion.

A :class:`Judge` takes many (criterion, response) items at once, answers repeats from
its :class:`~agentgym.rewards.cache.JudgmentCache`, sends the rest to its policy in
batches (several in flight), retries timeouts and backend errors, and parses each
reply into a score with a short rationale. A reply that cannot be parsed is a
judgment with ``status="unparseable"`` and ``score=None`` — counted in
:class:`JudgeStats`, never scored 0. :class:`JudgePanel` votes across several judges.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal, Sequence

from agentgym.policy.base import Completion, GenerationRequest, Policy, SamplingParams
from agentgym.rewards.cache import JudgmentCache, judgment_key
from agentgym.rewards.criteria import Status
from agentgym.rewards.parsing import parse_judgment


@dataclass(frozen=True)
class JudgeItem:
    """One thing to judge: does ``response`` meet ``criterion`` (yes/no, or 0..``scale``)?"""

    criterion: str
    response: str
    scale: int = 1
    reference: str = ""
    question: str = ""


@dataclass
class Judgment:
    """A judge's verdict; ``score`` is normalised to [0, 1], ``None`` when there is none."""

    score: float | None
    status: Status
    rationale: str = ""
    raw: str | None = None
    cached: bool = False
    latency_s: float = 0.0
    judge: str = ""
    votes: list["Judgment"] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class JudgeTemplate:
    """The judge prompt. ``user`` is formatted with ``criterion``, ``response``,
    ``question_block``, ``reference_block`` and ``scale_instruction``."""

    system: str = (
        "You are a careful, strict grader. You check whether a response meets one criterion "
        "and answer in exactly the format you are asked for."
    )
    user: str = (
        "Criterion: {criterion}\n"
        "{question_block}{reference_block}"
        "Response to grade:\n<<<\n{response}\n>>>\n\n"
        "{scale_instruction}\n"
        "Answer with exactly two lines:\n"
        "Rationale: <one short sentence>\n"
        "Score: <{score_format}>"
    )

    def render(self, item: JudgeItem, max_response_chars: int) -> list[dict[str, str]]:
        response = item.response
        if len(response) > max_response_chars:
            response = response[:max_response_chars] + "\n[... truncated]"
        if item.scale == 1:
            instruction = "Does the response meet the criterion? Score 1 for yes, 0 for no."
            fmt = "0 or 1"
        else:
            instruction = (
                f"How well does the response meet the criterion? Score from 0 (not at all) "
                f"to {item.scale} (fully)."
            )
            fmt = f"an integer from 0 to {item.scale}"
        user = self.user.format(
            criterion=item.criterion,
            response=response,
            question_block=f"Question: {item.question}\n" if item.question else "",
            reference_block=f"Reference answer (for the grader only): {item.reference}\n" if item.reference else "",
            scale_instruction=instruction,
            score_format=fmt,
        )
        messages = [{"role": "system", "content": self.system}] if self.system else []
        return messages + [{"role": "user", "content": user}]

    def fingerprint(self) -> str:
        return judgment_key(self.system, self.user)


@dataclass
class JudgeStats:
    """Counters for one judge over its lifetime (or since :meth:`reset`)."""

    judgments: int = 0
    cache_hits: int = 0
    generated: int = 0
    ok: int = 0
    unparseable: int = 0
    errors: int = 0
    timeouts: int = 0
    retries: int = 0
    batches: int = 0
    prompt_tokens: int = 0
    prompt_chars: int = 0
    completion_tokens: int = 0
    generate_s: float = 0.0
    wall_s: float = 0.0
    latencies: list[float] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if k != "latencies"}
        failed = self.unparseable + self.errors + self.timeouts
        out["failure_rate"] = failed / self.judgments if self.judgments else 0.0
        out["unparseable_rate"] = self.unparseable / self.judgments if self.judgments else 0.0
        out["judgments_per_s"] = self.judgments / self.wall_s if self.wall_s > 0 else 0.0
        lat = sorted(self.latencies)
        out["latency_p50_s"] = lat[len(lat) // 2] if lat else 0.0
        return out


class Judge:
    """Scores criteria with a policy. See the module docstring for batching, caching and failures."""

    def __init__(
        self,
        policy: Policy,
        *,
        name: str | None = None,
        template: JudgeTemplate | None = None,
        params: SamplingParams | None = None,
        timeout_s: float = 120.0,
        retries: int = 2,
        retry_backoff_s: float = 0.5,
        batch_size: int = 16,
        max_concurrency: int = 2,
        max_response_chars: int = 6000,
        cache: JudgmentCache | None = None,
    ):
        self.policy = policy
        self.name = name or getattr(policy, "name", "judge")
        self.template = template or JudgeTemplate()
        self.params = params or SamplingParams(temperature=0.0, max_tokens=96)
        self.timeout_s = timeout_s
        self.retries = retries
        self.retry_backoff_s = retry_backoff_s
        self.batch_size = max(1, batch_size)
        self.max_response_chars = max_response_chars
        self.cache = cache if cache is not None else JudgmentCache()
        self.stats = JudgeStats()
        self.max_concurrency = max(1, max_concurrency)
        self._sems: dict[int, asyncio.Semaphore] = {}
        p = self.params
        self._identity = judgment_key(
            getattr(policy, "name", type(policy).__name__), self.template.fingerprint(),
            p.temperature, p.top_p, p.max_tokens, p.seed, p.stop,
        )

    def _semaphore(self) -> asyncio.Semaphore:
        """One semaphore per event loop: a judge may outlive the loop it was first used in."""
        loop_id = id(asyncio.get_running_loop())
        if loop_id not in self._sems:
            self._sems = {loop_id: asyncio.Semaphore(self.max_concurrency)}
        return self._sems[loop_id]

    def key(self, item: JudgeItem) -> str:
        return judgment_key(self._identity, item.criterion, item.scale, item.reference, item.question, item.response)

    async def judge(self, items: Sequence[JudgeItem]) -> list[Judgment]:
        """Judge every item (same order); repeats and cached items cost nothing."""
        start = time.perf_counter()
        results: list[Judgment | None] = [None] * len(items)
        pending: dict[str, list[int]] = {}
        for i, item in enumerate(items):
            key = self.key(item)
            if key in pending:
                pending[key].append(i)
                continue
            hit = self.cache.get(key)
            if hit is not None:
                results[i] = Judgment(**{**hit, "cached": True, "latency_s": 0.0, "judge": self.name})
                self.stats.cache_hits += 1
            else:
                pending[key] = [i]
        keys = list(pending)
        chunks = [keys[j: j + self.batch_size] for j in range(0, len(keys), self.batch_size)]
        outputs = await asyncio.gather(*(self._run_chunk(c, [items[pending[k][0]] for k in c]) for c in chunks))
        fresh: list[tuple[str, dict[str, Any]]] = []
        for chunk, judged in zip(chunks, outputs):
            for key, judgment in zip(chunk, judged):
                for i in pending[key]:
                    results[i] = judgment
                if judgment.status == "ok":
                    fresh.append((key, {"score": judgment.score, "status": "ok", "rationale": judgment.rationale,
                                        "raw": judgment.raw}))
        await self.cache.aput_many(fresh)
        self.stats.judgments += len(items)
        self.stats.wall_s += time.perf_counter() - start
        for j in results:
            assert j is not None
            self._count(j)
        return results  # type: ignore[return-value]

    def _count(self, j: Judgment) -> None:
        if j.status == "unparseable":
            self.stats.unparseable += 1
        elif j.status == "timeout":
            self.stats.timeouts += 1
        elif j.status == "error":
            self.stats.errors += 1
        elif j.status == "ok":
            self.stats.ok += 1

    async def _run_chunk(self, keys: list[str], items: list[JudgeItem]) -> list[Judgment]:
        out: list[Judgment | None] = [None] * len(items)
        todo = list(range(len(items)))
        failure: tuple[Status, str] = ("error", "")
        for attempt in range(self.retries + 1):
            if attempt:
                self.stats.retries += 1
                await asyncio.sleep(self.retry_backoff_s * 2 ** (attempt - 1))
            requests = [
                GenerationRequest(messages=self.template.render(items[i], self.max_response_chars), params=self.params)
                for i in todo
            ]
            t0 = time.perf_counter()
            try:
                async with self._semaphore():
                    t0 = time.perf_counter()
                    completions = await asyncio.wait_for(self.policy.generate(requests), self.timeout_s)
            except asyncio.TimeoutError:
                failure = ("timeout", f"no answer within {self.timeout_s:g} s")
                continue
            except Exception as exc:  # backend down, HTTP error, ...: retried, then recorded
                failure = ("error", f"{type(exc).__name__}: {exc}")
                continue
            finally:
                self.stats.batches += 1
            latency = time.perf_counter() - t0
            self.stats.generate_s += latency
            still: list[int] = []
            for i, request, options in zip(todo, requests, completions):
                c = options[0] if options else Completion(text="", finish_reason="error", error="no completion")
                if c.error or c.finish_reason == "error":
                    failure = ("error", c.error or "the backend reported an error")
                    still.append(i)
                    continue
                self._account(c, request)
                self.stats.latencies.append(latency)
                parsed = parse_judgment(c.text, items[i].scale)
                raw = c.text[:2000]
                if parsed is None:
                    out[i] = Judgment(None, "unparseable", "", raw, False, latency, self.name)
                else:
                    out[i] = Judgment(parsed[0], "ok", parsed[1], raw, False, latency, self.name)
            todo = still
            if not todo:
                break
        for i in todo:
            out[i] = Judgment(None, failure[0], failure[1], None, False, 0.0, self.name)
        return out  # type: ignore[return-value]

    def _account(self, c: Completion, request: GenerationRequest) -> None:
        """Token counts: the completion's ids; the prompt's from the backend's usage or its chat renderer."""
        self.stats.generated += 1
        self.stats.completion_tokens += len(c.token_ids) if c.token_ids else _usage(c, "completion_tokens")
        self.stats.prompt_chars += sum(len(str(m.get("content", ""))) for m in request.messages or [])
        prompt_tokens = _usage(c, "prompt_tokens")
        renderer = getattr(self.policy, "renderer", None)
        if not prompt_tokens and renderer is not None and hasattr(renderer, "initial"):
            try:
                prompt_tokens = len(renderer.initial(request.messages, None))
            except Exception:  # counting is best effort; a renderer quirk must not fail a judgment
                prompt_tokens = 0
        self.stats.prompt_tokens += prompt_tokens

    async def close(self) -> None:
        await self.policy.close()


def _usage(c: Completion, field_name: str) -> int:
    """Token counts a backend reports beyond the protocol (attribute or ``usage`` dict)."""
    value = getattr(c, field_name, None)
    if value is None:
        usage = getattr(c, "usage", None)
        if isinstance(usage, dict):
            value = usage.get(field_name)
    if value is None and field_name == "prompt_tokens":
        ids = getattr(c, "prompt_ids", None)
        value = len(ids) if ids else None
    return int(value) if isinstance(value, (int, float)) else 0


class JudgePanel:
    """Several judges vote on each item.

    ``mode="mean"`` averages the parsed votes; ``"majority"`` takes the median (for
    yes/no, the majority; a tie scores 0.5). Items with fewer than ``min_votes``
    parsed votes get the status of the first failed vote and ``score=None``.
    """

    def __init__(self, judges: Sequence[Judge], mode: Literal["mean", "majority"] = "majority", min_votes: int = 1,
                 name: str | None = None):
        if not judges:
            raise ValueError("a judge panel needs at least one judge")
        self.judges = list(judges)
        self.mode = mode
        self.min_votes = min_votes
        self.name = name or "panel(" + ",".join(j.name for j in self.judges) + ")"

    @property
    def stats(self) -> JudgeStats:
        total = JudgeStats()
        for j in self.judges:
            for k, v in asdict(j.stats).items():
                if k == "latencies":
                    total.latencies.extend(v)
                elif k == "wall_s":
                    total.wall_s = max(total.wall_s, v)
                else:
                    setattr(total, k, getattr(total, k) + v)
        return total

    async def judge(self, items: Sequence[JudgeItem]) -> list[Judgment]:
        per_judge = await asyncio.gather(*(j.judge(items) for j in self.judges))
        out = []
        for votes in zip(*per_judge):
            good = sorted(v.score for v in votes if v.score is not None)
            if len(good) < self.min_votes:
                bad = next((v for v in votes if v.score is None), votes[0])
                out.append(replace(bad, score=None, judge=self.name, votes=list(votes)))
                continue
            if self.mode == "mean":
                score = sum(good) / len(good)
            else:
                mid = len(good) // 2
                score = good[mid] if len(good) % 2 else (good[mid - 1] + good[mid]) / 2
            rationale = " | ".join(v.rationale for v in votes if v.rationale)[:500]
            out.append(Judgment(score, "ok", rationale, None, all(v.cached for v in votes),
                                max(v.latency_s for v in votes), self.name, list(votes)))
        return out

    async def close(self) -> None:
        for j in self.judges:
            await j.close()

