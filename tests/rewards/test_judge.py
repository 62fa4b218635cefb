import asyncio

import pytest

from agentgym.rewards import Judge, JudgeItem, JudgePanel, JudgmentCache, parse_judgment
from tests.rewards.helpers import FakePolicy


@pytest.mark.parametrize("text,scale,expected", [
    ("Rationale: mentions Au.\nScore: 1", 1, 1.0),
    ("Score: 0", 1, 0.0),
    ("The answer is right.\nVerdict: YES", 1, 1.0),
    ('```json\n{"score": 2, "rationale": "partly"}\n```', 4, 0.5),
    ("{'verdict': 'no'}", 1, 0.0),
    ("Score: 3/5", 5, 0.6),
    ("rating = 8/10", 5, 0.8),
    ("yes", 1, 1.0),
    ("No.", 1, 0.0),
    ("3", 3, 1.0),
    ("**Score:** 2", 2, 1.0),
    ("Score: 7\nScore: 1", 1, 1.0),  # the last valid score line wins
    ("The answer to this question is no.", 1, 0.0),
])
def test_parse_judgment(text, scale, expected):
    parsed = parse_judgment(text, scale)
    assert parsed is not None and abs(parsed[0] - expected) < 1e-9


@pytest.mark.parametrize("text,scale", [
    ("", 1), ("I think the response is good overall.", 1), ("Score: 7", 1), ("Score: -1", 2),
    ("Score: maybe", 1), ("<|im_start|>assistant", 1), ("4", 3),
    ("The answer is yes, or rather the answer is no.", 1), ("The answer is no.", 3),
])
def test_unparseable_judgments(text, scale):
    assert parse_judgment(text, scale) is None


def test_rationale_is_kept():
    assert parse_judgment("Rationale: it names Jupiter.\nScore: 1", 1) == (1.0, "it names Jupiter.")


def items(n, criterion="Is correct"):
    return [JudgeItem(criterion, f"response {i}", question="q", reference="ref") for i in range(n)]


async def test_batches_and_token_accounting():
    policy = FakePolicy("Rationale: ok\nScore: 1")
    judge = Judge(policy, batch_size=4)
    out = await judge.judge(items(10))
    assert [j.score for j in out] == [1.0] * 10 and all(j.status == "ok" for j in out)
    assert policy.calls == 3 and judge.stats.batches == 3
    assert judge.stats.completion_tokens == 10 * 4 and judge.stats.generated == 10
    assert "Reference answer (for the grader only): ref" in policy.prompts[0]
    assert "Question: q" in policy.prompts[0] and "response 0" in policy.prompts[0]


async def test_cache_hits_and_dedup(tmp_path):
    policy = FakePolicy()
    cache = JudgmentCache(tmp_path / "cache.jsonl")
    judge = Judge(policy, cache=cache)
    batch = items(3) + items(3)  # each item twice in one call
    first = await judge.judge(batch)
    assert policy.calls == 1 and len(policy.prompts) == 3 and len(first) == 6
    second = await judge.judge(items(3))
    assert policy.calls == 1 and all(j.cached for j in second) and judge.stats.cache_hits == 3
    assert [j.score for j in second] == [1.0] * 3
    # a changed criterion or response is a miss
    await judge.judge([JudgeItem("Is polite", "response 0")])
    assert policy.calls == 2
    # persisted: a new cache over the same file answers without the policy
    policy2 = FakePolicy(name="fake")
    again = Judge(policy2, cache=JudgmentCache(tmp_path / "cache.jsonl"))
    assert all(j.cached for j in await again.judge(items(3))) and policy2.calls == 0
    # a different judge (policy name) does not share verdicts
    other = Judge(FakePolicy(name="other"), cache=JudgmentCache(tmp_path / "cache.jsonl"))
    assert not any(j.cached for j in await other.judge(items(1)))


async def test_unparseable_is_recorded_and_not_cached():
    policy = FakePolicy("I am not sure what you mean.")
    judge = Judge(policy)
    out = await judge.judge(items(2))
    assert all(j.score is None and j.status == "unparseable" and j.raw for j in out)
    assert judge.stats.unparseable == 2 and judge.stats.to_dict()["unparseable_rate"] == 1.0
    await judge.judge(items(2))
    assert policy.calls == 2  # failures are not cached


async def test_timeouts_are_retried_then_recorded():
    policy = FakePolicy(delay=0.3)
    judge = Judge(policy, timeout_s=0.05, retries=2, retry_backoff_s=0.01)
    out = await judge.judge(items(2))
    assert all(j.status == "timeout" and j.score is None for j in out)
    assert policy.calls == 3 and judge.stats.retries == 2 and judge.stats.timeouts == 2
    assert judge.stats.to_dict()["failure_rate"] == 1.0


async def test_backend_errors_are_retried():
    policy = FakePolicy(fail_first=1)
    judge = Judge(policy, retries=1, retry_backoff_s=0.0)
    out = await judge.judge(items(2))
    assert [j.status for j in out] == ["ok", "ok"] and policy.calls == 2
    down = Judge(FakePolicy(fail_first=99), retries=1, retry_backoff_s=0.0)
    failed = await down.judge(items(1))
    assert failed[0].status == "error" and "backend down" in failed[0].rationale
    bad = Judge(FakePolicy(completion_error="HTTP 500"), retries=0)
    assert (await bad.judge(items(1)))[0].status == "error"


async def test_batches_run_concurrently():
    policy = FakePolicy(delay=0.2)
    judge = Judge(policy, batch_size=1, max_concurrency=4)
    start = asyncio.get_running_loop().time()
    await judge.judge(items(4))
    assert asyncio.get_running_loop().time() - start < 0.6


async def test_long_responses_are_truncated_in_the_prompt():
    policy = FakePolicy()
    await Judge(policy, max_response_chars=50).judge([JudgeItem("c", "x" * 10_000)])
    assert "[... truncated]" in policy.prompts[0] and len(policy.prompts[0]) < 2000


async def test_scaled_prompt():
    policy = FakePolicy("Score: 2")
    out = await Judge(policy).judge([JudgeItem("c", "r", scale=4)])
    assert out[0].score == 0.5 and "from 0 (not at all) to 4" in policy.prompts[0]


async def test_voting_panel():
    yes, no = FakePolicy("Score: 1", name="a"), FakePolicy("Score: 0", name="b")
    garbage = FakePolicy("hmm", name="c")
    majority = JudgePanel([Judge(yes), Judge(FakePolicy("Score: 1", name="d")), Judge(no)])
    out = await majority.judge(items(1))
    assert out[0].score == 1.0 and len(out[0].votes) == 3
    mean = JudgePanel([Judge(yes), Judge(no)], mode="mean")
    assert (await mean.judge(items(1)))[0].score == 0.5
    tie = JudgePanel([Judge(FakePolicy("Score: 1", name="e")), Judge(FakePolicy("Score: 0", name="f"))])
    assert (await tie.judge(items(1)))[0].score == 0.5
    partial = JudgePanel([Judge(garbage), Judge(FakePolicy("Score: 1", name="g"))])
    assert (await partial.judge(items(1)))[0].score == 1.0
    strict = JudgePanel([Judge(FakePolicy("hmm", name="h")), Judge(FakePolicy("Score: 1", name="i"))], min_votes=2)
    verdict = (await strict.judge(items(1)))[0]
    assert verdict.score is None and verdict.status == "unparseable"
    assert strict.stats.unparseable == 1 and strict.stats.ok == 1
