from agentgym import Task, TextEnv, tool
from agentgym.core.checker import check_text_env

from .conftest import CounterEnv


def test_counter_env_passes_all_checks():
    results = check_text_env(lambda: CounterEnv(), fuzz_actions=1500)
    assert all(r.passed for r in results), [r for r in results if not r.passed]


class Fragile(TextEnv):
    blocking = False

    def generate_task(self, index):
        return Task(id=str(index), inputs={"i": index})

    def setup(self, task):
        return "hi"

    @tool
    def act(self, x: str) -> str:
        """Act.

        Args:
            x: anything.
        """
        return str(1 / len(x))  # crashes on empty input: a bug the fuzzer must find


class Forgetful(CounterEnv):
    def setup(self, task):
        import random

        self.value = 0
        return f"Reach {random.random()}"  # not reproducible from the seed


def test_checker_catches_crashes_and_nondeterminism():
    fragile = {r.name: r.passed for r in check_text_env(lambda: Fragile(), fuzz_actions=500)}
    assert fragile["fuzzed actions never raise"] is False
    forgetful = {r.name: r.passed for r in check_text_env(lambda: Forgetful(), fuzz_actions=10)}
    assert forgetful["same seed, same episode"] is False
