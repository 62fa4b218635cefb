"""Time limits kept with one timer: what times out, when, and what a cancellation from elsewhere does."""

from __future__ import annotations

import asyncio
import time

import pytest

from agentgym.rollout.deadlines import Deadlines


async def sleeper(seconds: float, value: str = "done") -> str:
    await asyncio.sleep(seconds)
    return value


async def test_only_the_calls_past_their_deadline_time_out():
    deadlines = Deadlines(resolution=0.01)
    start = time.perf_counter()
    results = await asyncio.gather(
        deadlines.within(sleeper(0.01, "fast"), 0.2),
        deadlines.within(sleeper(5.0), 0.1),
        deadlines.within(sleeper(0.05, "in time"), 0.2),
        deadlines.within(sleeper(5.0), 0.15),
        return_exceptions=True,
    )
    assert results[0] == "fast" and results[2] == "in time"
    assert all(isinstance(r, asyncio.TimeoutError) for r in (results[1], results[3]))
    assert 0.14 <= time.perf_counter() - start < 1.0  # each stopped near its own deadline
    assert not deadlines._calls


async def test_a_cancellation_from_elsewhere_stays_a_cancellation():
    deadlines = Deadlines(resolution=0.01)
    task = asyncio.ensure_future(deadlines.within(sleeper(5.0), 10.0))
    await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_call_that_swallows_the_cancellation_leaves_the_task_as_it_was():
    async def stubborn() -> str:
        try:
            await asyncio.sleep(5.0)
        except asyncio.CancelledError:
            return "kept going"
        return "slept"

    deadlines = Deadlines(resolution=0.01)
    assert await deadlines.within(stubborn(), 0.05) == "kept going"
    assert asyncio.current_task().cancelling() == 0
    assert await deadlines.within(sleeper(0.01), 1.0) == "done"


async def test_a_later_shorter_limit_is_kept_too():
    """The timer is armed for the earliest deadline, also when a shorter limit comes after a long one."""
    deadlines = Deadlines(resolution=0.01)
    long = asyncio.ensure_future(deadlines.within(sleeper(0.3, "long"), 60.0))
    await asyncio.sleep(0.01)
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(deadlines.within(sleeper(5.0), 0.05), 2.0)
    assert await long == "long"


def test_each_event_loop_starts_afresh():
    deadlines = Deadlines(resolution=0.01)
    for _ in range(2):
        with pytest.raises(asyncio.TimeoutError):
            asyncio.run(deadlines.within(sleeper(5.0), 0.05))
        assert asyncio.run(deadlines.within(sleeper(0.0), 1.0)) == "done"
