import subprocess
import sys

import pytest

import agentgym
from agentgym.core.task import Task, generate_split, load_tasks, save_tasks, split_of
from agentgym.errors import UserError


def make_task(i: int) -> Task:
    return Task(id=f"t{i}", inputs={"n": i % 300}, reference={"secret": i})


def test_generated_splits_never_overlap_and_are_deterministic():
    train = generate_split(make_task, split="train", count=200, seed=1)
    test = generate_split(make_task, split="test", count=50, seed=1)
    assert {t.fingerprint() for t in train}.isdisjoint({t.fingerprint() for t in test})
    assert [t.id for t in train] == [t.id for t in generate_split(make_task, split="train", count=200, seed=1)]
    assert all(split_of(t.fingerprint()) == "test" for t in test)


def test_too_small_task_space_is_a_user_error():
    with pytest.raises(UserError):
        generate_split(lambda i: Task(id="x", inputs={"n": i % 3}), split="train", count=10, max_tries_factor=5)


def test_jsonl_round_trip_and_errors(tmp_path):
    tasks = [make_task(i) for i in range(5)]
    save_tasks(tasks, tmp_path / "t.jsonl")
    assert load_tasks(tmp_path / "t.jsonl") == tasks
    (tmp_path / "bad.jsonl").write_text('{"id": 3}\n')
    with pytest.raises(UserError, match="bad.jsonl:1"):
        load_tasks(tmp_path / "bad.jsonl")
    with pytest.raises(UserError):
        load_tasks(tmp_path / "missing.jsonl")


def test_register_make_versions_and_suggestions():
    from .conftest import CounterEnv

    agentgym.register("unit-counter/v0", CounterEnv, max_turns=3)
    agentgym.register("unit-counter/v1", "tests.core.conftest:CounterEnv", max_turns=4)
    assert agentgym.make("unit-counter").max_turns == 4
    assert agentgym.make("unit-counter/v0", max_turns=7).max_turns == 7
    with pytest.raises(UserError, match="unit-counter"):
        agentgym.make("unit-countr/v0")
    with pytest.raises(ValueError):
        agentgym.register("no-version", CounterEnv)
    with pytest.raises(UserError, match="bad arguments"):
        agentgym.make("unit-counter/v0", not_an_arg=1)


def test_cli_help_version_and_unknown_env_are_clean():
    run = lambda *a: subprocess.run([sys.executable, "-m", "agentgym", *a], capture_output=True, text=True)
    assert "train" in run("--help").stdout
    assert run("--version").stdout.startswith("agentgym ")
    bad = run("envs", "check", "nope/v0")
    assert bad.returncode == 2 and "unknown environment" in bad.stderr and "Traceback" not in bad.stderr
