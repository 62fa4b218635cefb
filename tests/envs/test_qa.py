"""qa/v0: registration, the shipped questions and their rubrics, answering, judging."""

import agentgym
from agentgym.core.checker import check_text_env
from agentgym.rewards import Judge
from envs.qa.env import questions
from tests.rewards.helpers import FakePolicy

TOOL = '<tool_call>{{"name": "answer", "arguments": {{"text": "{}"}}}}</tool_call>'


def test_registered_with_a_suite():
    spec = agentgym.spec("qa")
    assert spec.id == "qa/v0" and "qa" in spec.suites


def test_shipped_questions_and_rubrics():
    tasks = questions()
    assert 40 <= len(tasks) <= 60 and len({t.id for t in tasks}) == len(tasks)
    train, test = questions("train"), questions("test")
    assert len(train) + len(test) == len(tasks) and test and not {t.id for t in train} & {t.id for t in test}
    env = agentgym.make("qa/v0")
    for task in tasks:
        assert task.reference["answer"] and task.reference["solution"]
        env.reset(options={"task": task})
        _, reward, terminated, _, info = env.step(env.oracle_action())
        assert terminated and reward == 1.0 and info["success"], task.id
        env.reset(options={"task": task})
        _, reward, _, _, info = env.step("I do not know.")
        assert reward == 0.0 and not info["success"], task.id


def test_answer_tool_and_plain_reply():
    env = agentgym.make("qa/v0")
    task = next(t for t in questions() if t.id == "qa-006")
    obs, info = env.reset(options={"task": task})
    assert obs["content"] == task.inputs["question"] and "Canberra" not in str(info)
    assert [t["function"]["name"] for t in info["tools"]] == ["answer"]
    _, reward, terminated, _, info = env.step(TOOL.format("Canberra"))
    assert terminated and reward == 1.0 and info["answer"] == "Canberra"
    assert {c["id"]: c["status"] for c in info["rubric"]["criteria"]}["sydney"] == "skipped"
    env.reset(options={"task": task})
    _, reward, _, _, info = env.step("It is Sydney.")
    assert reward == 0.0 and info["rubric"]["gated"]


def test_empty_reply_is_invalid_and_the_episode_goes_on():
    env = agentgym.make("qa/v0")
    env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step("   ")
    assert info["invalid_action"] and not terminated and not truncated and "Error" in obs["content"]
    _, _, terminated, _, _ = env.step(env.oracle_action())
    assert terminated


async def test_judged_criteria_with_a_judge():
    def reply(prompt):
        if "Claims that Sydney" in prompt:
            return "Score: 0"
        return "Rationale: right city\nScore: 1" if "Canberra" in prompt.split("<<<")[1] else "Score: 0"

    judge = Judge(FakePolicy(reply))
    env = agentgym.make("qa/v0", judge=judge)
    task = next(t for t in questions() if t.id == "qa-006")
    await env.areset(options={"task": task})
    _, reward, terminated, _, info = await env.astep("Canberra is the capital.")
    crit = {c["id"]: c for c in info["rubric"]["criteria"]}
    assert reward == 1.0 and crit["judged"]["score"] == 1.0 and crit["judged"]["rationale"] == "right city"
    assert crit["sydney"]["score"] == 0.0 and info["rubric"]["missing"] == []


async def test_judge_given_as_a_policy_spec(tmp_path):
    """A judge spec (here a real scripted replay backend) is loaded on first use, in the running loop."""
    replies = tmp_path / "verdicts.txt"
    replies.write_text("Score: 1\n" * 10)  # one reply a line
    env = agentgym.make("qa/v0", judge=f"scripted:replay:{replies}")
    assert env._judges == {}
    task = next(t for t in questions() if t.id == "qa-002")
    await env.areset(options={"task": task})
    _, reward, _, _, info = await env.astep("Jupiter")
    crit = {c["id"]: c for c in info["rubric"]["criteria"]}
    assert crit["judged"]["status"] == "ok" and info["rubric"]["missing"] == []
    assert crit["wrong"]["score"] == 1.0 and reward < 1.0  # the replayed judge says yes to the penalty too


def test_passes_the_env_checker():
    failures = [r for r in check_text_env(lambda: agentgym.make("qa/v0"), fuzz_actions=300) if not r.passed]
    assert not failures, failures
