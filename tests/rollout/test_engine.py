import asyncio
import json

from agentgym import Task
from agentgym.policy.base import Completion
from agentgym.rollout import (
    EpisodeSpec,
    Guidance,
    JsonlSink,
    RolloutConfig,
    RolloutEngine,
    read_jsonl,
    write_jsonl,
)

from .conftest import CountEnv, OraclePolicy, count_move, transcript


def task(target: int, **extra) -> Task:
    return Task(id=f"t{target}", inputs={"target": target, **extra})


async def test_groups_share_a_task_and_record_outcomes(oracle):
    engine = RolloutEngine(oracle)
    groups = await engine.run_groups(["testcount/v0"] * 3, group_size=4, seed=7)
    assert [len(g) for g in groups] == [4, 4, 4]
    for group in groups:
        assert len({t.task_id for t in group}) == 1 and len({t.group_id for t in group}) == 1
        assert [t.metadata["sample"] for t in group] == [0, 1, 2, 3]
        for t in group:
            assert t.status == "completed" and t.success and t.reward == 1.0
            assert t.turns[-1].info["success"] is True
            assert {"generation_s", "env_s", "wall_s"} <= set(t.timings)
    assert len({g[0].group_id for g in groups}) == 3


async def test_run_groups_with_tasks_and_explicit_specs(oracle):
    engine = RolloutEngine(oracle)
    groups = await engine.run_groups([task(12), EpisodeSpec("testcount/v0", task=task(3))], 2, env_id="testcount/v0")
    assert [g[0].task_id for g in groups] == ["t12", "t3"]
    assert [g[0].num_turns for g in groups] == [2, 1]


async def test_env_exception_fails_only_that_episode(oracle):
    engine = RolloutEngine(oracle)
    specs = [EpisodeSpec("testcount/v0", task=task(5, explode=True))] + [
        EpisodeSpec("testcount/v0", task=task(i)) for i in (4, 6)
    ]
    bad, *good = await engine.run(specs)
    assert bad.status == "failed" and "the environment broke" in bad.error and not bad.success
    assert "traceback" in bad.metadata
    assert all(t.success for t in good)


async def test_episode_timeout_is_recorded_and_batch_goes_on(oracle):
    engine = RolloutEngine(oracle, RolloutConfig(episode_timeout_s=0.3))
    hung, ok = await engine.run([EpisodeSpec("testcount/v0", task=task(5, hang=True)), EpisodeSpec("testcount/v0", task=task(5))])
    assert hung.status == "failed" and "timed out" in hung.error
    assert ok.success


async def test_step_timeout_fails_episode(oracle):
    engine = RolloutEngine(oracle, RolloutConfig(step_timeout_s=0.2))
    hung, ok = await engine.run([EpisodeSpec("testcount/v0", task=task(5, hang=True)), EpisodeSpec("testcount/v0", task=task(5))])
    assert hung.status == "failed" and "step took longer than 0.2 s" in hung.error and ok.success


async def test_policy_error_fails_episode():
    class Broken(OraclePolicy):
        async def generate(self, requests):
            return [[Completion(text="", finish_reason="error", error="server said no")] for _ in requests]

    (traj,) = await RolloutEngine(Broken()).run([EpisodeSpec("testcount/v0", task=task(3))])
    assert traj.status == "failed" and "server said no" in traj.error


async def test_batching_queue_batches_across_episodes():
    policy = OraclePolicy(delay_s=0.02)
    engine = RolloutEngine(policy, RolloutConfig(max_batch=8))
    trajs = await engine.run([EpisodeSpec("testcount/v0", task=task(25), env_kwargs={"delay_s": 0.01}) for _ in range(20)])
    assert all(t.success for t in trajs)
    assert max(policy.batches) == 8 and sum(policy.batches) == 20 * 3
    assert engine.batcher.stats.mean_batch > 2


async def test_continuous_batching_policy_gets_each_request_alone():
    """A policy that batches itself (vLLM, HTTP) must not have a quick reply wait for a slow one."""

    class Continuous(OraclePolicy):
        continuous_batching = True

        async def generate(self, requests):
            slow = any("Reach 9." in transcript(r) and len(r.messages) == 2 for r in requests)
            self.batches.append(len(requests))
            await asyncio.sleep(0.5 if slow else 0.01)
            return [[Completion(text=count_move(transcript(r)))] for r in requests]

    policy = Continuous()
    engine = RolloutEngine(policy, RolloutConfig(max_batch=8))
    start = asyncio.get_running_loop().time()
    done_at = {}

    async def one(target):
        (traj,) = await engine.run([EpisodeSpec("testcount/v0", task=task(target))])
        done_at[target] = asyncio.get_running_loop().time() - start
        return traj

    trajs = await asyncio.gather(one(9), one(2))
    assert all(t.success for t in trajs) and set(policy.batches) == {1}
    assert done_at[2] < 0.3 < done_at[9]  # the short episode finished during the slow generation
    assert engine.batcher.stats.requests == sum(t.num_turns for t in trajs)


async def test_env_concurrency_limit():
    live = {"now": 0, "max": 0}

    class Watched(CountEnv):
        def setup(self, task):
            live["now"] += 1
            live["max"] = max(live["max"], live["now"])
            return super().setup(task)

        def close(self):
            live["now"] -= 1

    from agentgym import register

    register("testwatched/v0", Watched)
    engine = RolloutEngine(OraclePolicy(), RolloutConfig(env_concurrency={"testwatched": 2}))
    trajs = await engine.run([EpisodeSpec("testwatched/v0", task=task(15), env_kwargs={"delay_s": 0.01}) for _ in range(6)])
    assert all(t.success for t in trajs) and live["max"] == 2


async def test_turn_limit_truncates(oracle):
    (traj,) = await RolloutEngine(oracle).run([EpisodeSpec("testcount/v0", task=task(45), env_kwargs={"max_turns": 2})])
    assert traj.status == "truncated" and not traj.success and traj.num_turns == 2


async def test_guidance_is_shown_and_recorded():
    seen: list[list[dict]] = []

    class Recording(OraclePolicy):
        async def generate(self, requests):
            seen.extend(r.messages for r in requests)
            return await super().generate(requests)

    engine = RolloutEngine(Recording())
    hint = Guidance("Hint: add 7.", kind="hint")
    (g_append,) = await engine.run_groups([task(7)], 1, env_id="testcount/v0", guidance=hint)
    assert seen[0][1]["content"].endswith("Hint: add 7.") and g_append[0].metadata["guidance"]["kind"] == "hint"
    seen.clear()
    spec = EpisodeSpec("testcount/v0", task=task(7), guidance=Guidance("Plan: one step.", mode="message", kind="plan"))
    (traj,) = await engine.run([spec])
    assert [m["role"] for m in seen[0]] == ["system", "user", "user"] and seen[0][2]["content"] == "Plan: one step."
    assert traj.metadata["guidance"]["mode"] == "message"


async def test_text_policies_get_a_valid_openai_transcript(oracle):
    """Calls written in text become tool_calls with ids; each is answered by a tool message naming it."""
    (traj,) = await RolloutEngine(oracle).run([EpisodeSpec("testcount/v0", task=task(15))])
    assert [m["role"] for m in traj.messages] == ["system", "user", "assistant", "tool", "assistant", "tool"]
    for assistant, answer in ((traj.messages[2], traj.messages[3]), (traj.messages[4], traj.messages[5])):
        (call,) = assistant["tool_calls"]
        assert call["function"]["name"] == "add" and answer["tool_call_id"] == call["id"]
    assert traj.turns[0].tool_calls == traj.messages[2]["tool_calls"] and traj.turns[0].observation["role"] == "tool"
    assert traj.token_ids == [] and traj.metadata["token_level"] is False


async def test_policy_version_is_recorded(oracle):
    engine = RolloutEngine(oracle)
    engine.set_policy_version(3)
    (traj,) = await engine.run([EpisodeSpec("testcount/v0", task=task(2))])
    assert traj.policy_version == 3 and traj.turns[0].policy_version == 3


async def test_jsonl_streaming_roundtrip_and_torn_line(tmp_path, oracle):
    path = tmp_path / "t.jsonl"
    sink = JsonlSink(path)
    trajs = await RolloutEngine(oracle).run(
        [EpisodeSpec("testcount/v0", task=task(i)) for i in (3, 14, 25)], on_trajectory=sink
    )
    back = {t.id: t for t in read_jsonl(path)}
    assert set(back) == {t.id for t in trajs}
    for t in trajs:
        assert back[t.id] == t
    with path.open("a") as fh:
        fh.write(json.dumps(trajs[0].to_dict())[:50])
    assert len(list(read_jsonl(path))) == 3


def test_unknown_keys_from_newer_writers_are_ignored(tmp_path, oracle):
    traj = asyncio.run(RolloutEngine(oracle).run([EpisodeSpec("testcount/v0", task=task(2))]))[0]
    data = traj.to_dict()
    data["future_field"] = 1
    data["turns"][0]["future_turn_field"] = 2
    path = tmp_path / "x.jsonl"
    path.write_text(json.dumps(data) + "\n")
    assert next(read_jsonl(path)).turns[0].action == traj.turns[0].action
    write_jsonl([traj], path, append=False)
    assert next(read_jsonl(path)) == traj
