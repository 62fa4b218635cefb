"""The batching queue in front of a policy: when a batch leaves, how big it is, what it carries."""

from __future__ import annotations

import asyncio
import time

import pytest

from agentgym.policy.base import Completion, GenerationRequest, SamplingParams
from agentgym.rollout import BatchingPolicy


class GatedPolicy:
    """Answers each request with its own prompt text once ``gate`` opens; records every call."""

    name = "gated"

    def __init__(self, fail: bool = False):
        self.calls: list[list[str]] = []
        self.running = self.most_running = 0
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail = fail

    async def generate(self, requests):
        self.calls.append([r.messages[0]["content"] for r in requests])
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            await self.gate.wait()
            if self.fail:
                raise RuntimeError("the policy broke")
            return [[Completion(text=r.messages[0]["content"])] for r in requests]
        finally:
            self.running -= 1

    async def close(self):
        return None


def request(text: str) -> GenerationRequest:
    return GenerationRequest(messages=[{"role": "user", "content": text}], params=SamplingParams(max_tokens=1))


async def ask(batcher: BatchingPolicy, text: str) -> str:
    return (await batcher.generate_one(request(text)))[0].text


async def test_a_full_batch_leaves_without_waiting_for_the_timer():
    policy = GatedPolicy()
    batcher = BatchingPolicy(policy, max_batch=4, max_wait_s=30.0)
    start = time.perf_counter()
    answers = await asyncio.wait_for(asyncio.gather(*(ask(batcher, f"r{i}") for i in range(4))), 5)
    assert answers == ["r0", "r1", "r2", "r3"] and time.perf_counter() - start < 5
    assert policy.calls == [["r0", "r1", "r2", "r3"]]


async def test_a_partial_batch_waits_for_company_then_leaves():
    policy = GatedPolicy()
    batcher = BatchingPolicy(policy, max_batch=8, max_wait_s=0.05)
    start = time.perf_counter()
    first = [asyncio.ensure_future(ask(batcher, f"a{i}")) for i in range(2)]
    await asyncio.sleep(0.01)
    late = asyncio.ensure_future(ask(batcher, "late"))  # joins: the oldest has not waited 50 ms yet
    assert await asyncio.gather(*first, late) == ["a0", "a1", "late"]
    assert time.perf_counter() - start >= 0.045
    assert policy.calls == [["a0", "a1", "late"]]


async def test_requests_made_while_the_policy_is_busy_go_out_together():
    policy = GatedPolicy()
    policy.gate.clear()
    batcher = BatchingPolicy(policy, max_batch=3, max_wait_s=0.0, max_concurrency=1)
    tasks = [asyncio.ensure_future(ask(batcher, "first"))]
    await asyncio.sleep(0.01)
    tasks += [asyncio.ensure_future(ask(batcher, f"b{i}")) for i in range(5)]
    await asyncio.sleep(0.01)
    assert policy.calls == [["first"]]  # one call in flight at most
    policy.gate.set()
    assert await asyncio.gather(*tasks) == ["first", "b0", "b1", "b2", "b3", "b4"]
    assert policy.calls == [["first"], ["b0", "b1", "b2"], ["b3", "b4"]] and policy.most_running == 1
    assert batcher.stats.calls == 3 and batcher.stats.requests == 6 and batcher.stats.max_batch_seen == 3


async def test_two_calls_in_flight_when_allowed():
    policy = GatedPolicy()
    policy.gate.clear()
    batcher = BatchingPolicy(policy, max_batch=2, max_wait_s=0.0, max_concurrency=2)
    tasks = [asyncio.ensure_future(ask(batcher, f"c{i}")) for i in range(6)]
    await asyncio.sleep(0.01)
    assert policy.calls == [["c0", "c1"], ["c2", "c3"]]
    policy.gate.set()
    assert await asyncio.gather(*tasks) == [f"c{i}" for i in range(6)]
    assert policy.most_running == 2


async def test_a_request_whose_caller_gave_up_is_not_sent():
    policy = GatedPolicy()
    policy.gate.clear()
    batcher = BatchingPolicy(policy, max_batch=4, max_wait_s=0.0)
    busy = asyncio.ensure_future(ask(batcher, "busy"))
    await asyncio.sleep(0.01)
    gone = asyncio.ensure_future(ask(batcher, "gone"))
    kept = asyncio.ensure_future(ask(batcher, "kept"))
    await asyncio.sleep(0.01)
    gone.cancel()
    policy.gate.set()
    assert await asyncio.gather(busy, kept) == ["busy", "kept"]
    assert policy.calls == [["busy"], ["kept"]]


async def test_a_policy_error_reaches_every_request_of_its_batch_and_the_queue_goes_on():
    policy = GatedPolicy(fail=True)
    batcher = BatchingPolicy(policy, max_batch=2, max_wait_s=0.0)
    results = await asyncio.gather(ask(batcher, "x"), ask(batcher, "y"), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)
    policy.fail = False
    assert await ask(batcher, "z") == "z"


def test_bad_limits_are_refused():
    with pytest.raises(ValueError):
        BatchingPolicy(GatedPolicy(), max_batch=0)


class StartingPolicy(GatedPolicy):
    """A policy with ``start_generate``: the call starts (and is recorded) when it is made."""

    def __init__(self):
        super().__init__()
        self.started: list[list[str]] = []

    def start_generate(self, requests):
        if any(r.messages[0]["content"] == "refused" for r in requests):
            raise ValueError("empty prompt")
        self.started.append([r.messages[0]["content"] for r in requests])
        return asyncio.ensure_future(self.generate(requests))


async def test_a_policy_that_starts_generating_at_once_gets_its_batch_in_the_launching_step():
    policy = StartingPolicy()
    batcher = BatchingPolicy(policy, max_batch=2, max_wait_s=30.0)
    asks = [asyncio.ensure_future(ask(batcher, f"s{i}")) for i in range(2)]
    await asyncio.sleep(0)  # both requests queued: the second filled the batch and started the call
    assert policy.started == [["s0", "s1"]]
    assert await asyncio.gather(*asks) == ["s0", "s1"]


async def test_a_subclass_that_overrides_generate_sees_every_batch():
    class Recording(StartingPolicy):
        def __init__(self):
            super().__init__()
            self.seen: list[str] = []

        async def generate(self, requests):
            self.seen.extend(r.messages[0]["content"] for r in requests)
            return await super().generate(requests)

    policy = Recording()
    batcher = BatchingPolicy(policy, max_batch=2, max_wait_s=0.0)
    assert await asyncio.gather(ask(batcher, "a"), ask(batcher, "b")) == ["a", "b"]
    assert policy.seen == ["a", "b"] and policy.started == []  # through generate, not start_generate


async def test_a_batch_the_policy_refuses_fails_and_the_queue_goes_on():
    batcher = BatchingPolicy(StartingPolicy(), max_batch=1, max_wait_s=0.0)
    with pytest.raises(ValueError, match="empty prompt"):
        await ask(batcher, "refused")
    assert await ask(batcher, "fine") == "fine" and batcher.stats.calls == 2


async def test_a_policy_that_queues_calls_is_handed_the_next_full_batch_while_busy():
    policy = StartingPolicy()
    policy.gate.clear()
    batcher = BatchingPolicy(policy, max_batch=2, max_wait_s=0.0, max_concurrency=1)
    asks = [asyncio.ensure_future(ask(batcher, f"q{i}")) for i in range(5)]
    await asyncio.sleep(0.01)
    assert policy.started == [["q0", "q1"], ["q2", "q3"]]  # the second waits in the policy's queue
    assert len(batcher._pending) == 1  # a partial batch waits for a call to end
    policy.gate.set()
    assert await asyncio.gather(*asks) == [f"q{i}" for i in range(5)]
    assert policy.started[2] == ["q4"]


async def test_busy_time_counts_a_queued_call_from_when_the_one_before_it_ended():
    class OneAtATime(StartingPolicy):
        def __init__(self):
            super().__init__()
            self.lock = asyncio.Lock()

        async def generate(self, requests):
            async with self.lock:
                await asyncio.sleep(0.05)
                return await super().generate(requests)

    batcher = BatchingPolicy(OneAtATime(), max_batch=2, max_wait_s=0.0)
    start = time.perf_counter()
    await asyncio.gather(*(ask(batcher, f"b{i}") for i in range(6)))
    wall = time.perf_counter() - start
    assert batcher.stats.calls == 3 and 0.14 <= batcher.stats.busy_s <= wall + 0.01
