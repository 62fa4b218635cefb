"""The search environment: tools, budgets, guidance, progress, the oracle and the env checks."""

from __future__ import annotations

import json

import pytest

import agentgym
from agentgym.core import Task
from agentgym.core.checker import check_text_env
from envs.search.backends.bm25s_backend import Bm25sIndex
from envs.search.env import SearchEnv
from envs.search.tasks import wiki_task_set

TASK = Task(
    id="t-mona",
    inputs={"question": "Which museum holds the painting by the Italian Renaissance polymath?"},
    reference={
        "answers": ["Louvre"],
        "hops": [
            {
                "evidence": ["leo"],
                "title": "Leonardo da Vinci",
                "clue": 'described as "Italian Renaissance polymath"',
            },
            {"evidence": ["mona"], "title": "Mona Lisa", "clue": "is a painting", "via": "leo"},
            {"evidence": ["louvre"], "title": "Louvre", "clue": "is a museum", "via": "mona"},
        ],
    },
)


def call(name: str, **arguments) -> str:
    return "<tool_call>" + json.dumps({"name": name, "arguments": arguments}) + "</tool_call>"


@pytest.fixture()
def small_env(small_docs):
    return SearchEnv(
        tasks=[TASK], index=Bm25sIndex.from_documents(small_docs), max_tool_calls=6, page_chars=200
    )


def run_oracle(env: SearchEnv, task: Task) -> tuple[float, dict]:
    env.reset(options={"task": task})
    total, done, info = 0.0, False, {}
    while not done:
        _, reward, term, trunc, info = env.step(env.oracle_action())
        total += reward
        done = term or trunc
    return total, info


def test_registered_ids():
    ids = agentgym.registry()
    for env_id in ("search/v0", "search-singlehop/v0", "search-multihop/v0"):
        assert env_id in ids


def test_tools_and_observations(small_env):
    obs, info = small_env.reset(seed=0)
    assert "Which museum" in obs["content"] and {t["function"]["name"] for t in info["tools"]} == {
        "search",
        "open",
        "answer",
    }
    obs, *_ = small_env.step(call("search", query="Mona Lisa painting", k=3))
    assert obs["role"] == "tool" and obs["content"].splitlines()[1].startswith("1. [mona] Mona Lisa:")
    obs, *_ = small_env.step(call("open", doc_id="Mona Lisa"))  # a title works as well as an id
    assert obs["content"].startswith("[mona] Mona Lisa\nPainting by Leonardo da Vinci | Topic: Arts")
    obs, _, _, _, info = small_env.step(call("open", doc_id="nope"))
    assert info["invalid_action"] and "no document has the id" in obs["content"]
    obs, _, _, _, info = small_env.step(call("search", query="   "))
    assert info["invalid_action"]


def test_paging(small_docs):
    long_doc = small_docs[0].__class__("long", "Long", " ".join(f"word{i}" for i in range(400)))
    env = SearchEnv(tasks=[TASK], index=Bm25sIndex.from_documents(small_docs + [long_doc]), page_chars=500)
    env.reset(seed=0)
    obs, *_ = env.step(call("open", doc_id="long"))
    assert "(page 1 of " in obs["content"] and "word0 " in obs["content"]
    obs, *_ = env.step(call("open", doc_id="long", page=2))
    assert "(page 2 of " in obs["content"] and "word0 " not in obs["content"]
    obs, _, _, _, info = env.step(call("open", doc_id="long", page=99))
    assert info["invalid_action"]


def test_tool_call_budget(small_env):
    small_env.reset(seed=0)
    for _ in range(6):
        obs, _, _, _, info = small_env.step(call("search", query="Paris"))
        assert not info["invalid_action"]
    assert "No search/open calls left" in obs["content"]
    obs, _, _, _, info = small_env.step(call("open", doc_id="paris"))
    assert info["invalid_action"] and "budget" in obs["content"]
    _, reward, term, _, info = small_env.step(
        call("answer", text="Louvre", citations=["leo", "mona", "louvre"])
    )
    assert term and reward == 1.0 and info["success"]


def test_hint_and_progress_follow_the_evidence(small_env):
    small_env.reset(seed=0)
    assert small_env.progress() == 0.0 and small_env.hint().startswith("Hop 1 of 3 is unresolved")
    small_env.step(call("open", doc_id="leo"))
    assert small_env.progress() == pytest.approx(1 / 3)
    assert small_env.hint().startswith("Hop 2 of 3") and "'Leonardo da Vinci'" in small_env.hint()
    small_env.step(call("open", doc_id="mona"))
    small_env.step(call("open", doc_id="louvre"))
    assert small_env.progress() == 1.0 and small_env.hint().startswith("All 3 hop(s) are resolved")
    small_env.step(call("answer", text="Louvre"))
    assert small_env.hint() is None


def test_no_citations_no_citation_reward(small_env):
    small_env.reset(seed=0)
    _, reward, term, _, info = small_env.step(call("answer", text="the Louvre"))
    assert term and info["success"] and info["citation_reward"] == 0.0 and reward == 0.5
    small_env.reset(seed=0)
    _, reward, _, _, info = small_env.step(call("answer", text="Paris", citations=["leo", "mona", "louvre"]))
    assert reward == 0.0 and not info["success"]


def test_plain_text_is_an_invalid_action_not_a_crash(small_env):
    small_env.reset(seed=0)
    obs, _, term, _, info = small_env.step("I think it is the Louvre.")
    assert info["invalid_action"] and not term and "answer" in obs["content"]


def test_oracle_gets_full_reward_on_a_small_corpus(small_env):
    reward, info = run_oracle(small_env, TASK)
    assert reward == 1.0 and info["success"] and info["hop_recall"] == 1.0


def test_env_checker(small_docs):
    index = Bm25sIndex.from_documents(small_docs)
    results = check_text_env(lambda: SearchEnv(tasks=[TASK], index=index), fuzz_actions=400, time_budget_s=30)
    assert all(r.passed for r in results), [r for r in results if not r.passed]


@pytest.mark.parametrize("split", ["train", "test"])
def test_oracle_full_reward_on_every_multihop_task(split, wiki_bm25s):
    tasks = wiki_task_set("multihop", split)
    env = SearchEnv(tasks=tasks, index=wiki_bm25s, max_turns=16)
    failures = []
    for task in tasks:
        reward, info = run_oracle(env, task)
        if reward != 1.0 or not info["success"] or info["citation_reward"] != 1.0:
            failures.append((task.id, reward))
    assert not failures, failures[:5]


def test_singlehop_oracle_and_registered_env(wiki_bm25s):
    env = agentgym.make("search-singlehop/v0", split="test", num_tasks=40)
    assert len(env._task_list) == 40
    for task in env._task_list:
        reward, info = run_oracle(env, task)
        assert reward == 1.0 and info["success"], task.id


@pytest.mark.parametrize("suite_name", ["search_singlehop", "search_multihop"])
def test_suites_load_and_draw_test_tasks(suite_name):
    from pathlib import Path

    from agentgym.eval.suite import load_suite, suite_tasks

    suite = load_suite(Path(__file__).parents[2] / "configs" / "suites" / f"{suite_name}.yaml")
    for entry in suite.envs:
        tasks = suite_tasks(entry, suite)
        assert len(tasks) == entry.num_tasks
        expected = {
            t.id for t in wiki_task_set(entry.kwargs.get("task_set", suite_name.split("_")[1]), "test")
        }
        assert {t.id for t in tasks} <= expected


def test_lenient_answer_arguments(small_env):
    small_env.reset(seed=0)
    _, reward, term, _, info = small_env.step(call("answer", text="Louvre", citations="leo, mona, [louvre]"))
    assert term and reward == 1.0 and info["citations"] == ["leo", "mona", "louvre"]
    small_env.reset(seed=0)
    _, reward, term, _, info = small_env.step("answer[Louvre]")
    assert term and info["success"] and reward == 0.5


def test_custom_index_needs_tasks(small_docs):
    from agentgym.errors import UserError

    with pytest.raises(UserError):
        SearchEnv(index=Bm25sIndex.from_documents(small_docs))


def test_custom_corpus_index_and_task_file(tmp_path, small_docs):
    from agentgym.core import save_tasks
    from envs.search.backends import build_index
    from envs.search.corpus import write_corpus

    build_index(write_corpus(small_docs, tmp_path / "c.jsonl"), tmp_path / "idx")
    plain = Task(
        id="p", inputs={"question": "What is the capital of Italy?"}, reference={"answers": ["Rome"]}
    )
    save_tasks([TASK, plain], tmp_path / "tasks.jsonl")
    env = agentgym.make("search/v0", index=str(tmp_path / "idx"), tasks=str(tmp_path / "tasks.jsonl"))
    assert run_oracle(env, TASK)[0] == 1.0
    env.reset(options={"task": plain})
    _, reward, term, _, _ = env.step(call("answer", text="Rome", citations=["rome"]))
    assert term and reward == 1.0 and env.progress() is None
