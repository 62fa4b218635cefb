"""`envs check` checks what an author declares: tools described and typed, an oracle that solves
episodes, progress in [0, 1]."""

from agentgym.core import Task, TextEnv, tool
from agentgym.core.checker import check_text_env


class Good(TextEnv):
    blocking = False

    def generate_task(self, index: int) -> Task:
        return Task(id=f"t{index}", inputs={"n": index}, reference={"n": index % 5})

    def setup(self, task: Task) -> str:
        return "Guess n from 0 to 4 with guess[n]."

    @tool
    def guess(self, n: int) -> str:
        """Guess the number.

        Args:
            n: 0 to 4.
        """
        if n == self.task.reference["n"]:
            self.finish(1.0, True)
            return "yes"
        return "no"

    def oracle_action(self) -> str:
        return f"guess[{self.task.reference['n']}]"

    def progress(self) -> float:
        return 1.0 if self.done else 0.0


class Untyped(Good):
    @tool
    def shout(self, words) -> str:
        return words


class WrongOracle(Good):
    def oracle_action(self) -> str:
        return f"guess[{(self.task.reference['n'] + 1) % 5}]"


class BadProgress(Good):
    def progress(self) -> float:
        return 2.5


def results(cls):
    return {r.name: r for r in check_text_env(lambda: cls(max_turns=3), fuzz_actions=20, time_budget_s=5)}


def test_a_good_env_passes_the_new_checks():
    r = results(Good)
    assert r["tools described"].passed and r["oracle solves episodes"].passed, r
    assert "solved 5/5" in r["oracle solves episodes"].detail and r["progress in [0, 1]"].passed


def test_a_tool_without_type_hints_or_docstring_fails():
    r = results(Untyped)["tools described"]
    assert not r.passed and "'shout' has no docstring" in r.detail and "'words' has no type hint" in r.detail


def test_an_oracle_that_does_not_solve_fails():
    r = results(WrongOracle)["oracle solves episodes"]
    assert not r.passed and "without success" in r.detail


def test_progress_outside_0_1_fails():
    r = results(BadProgress)
    assert not r["progress in [0, 1]"].passed and "2.5" in r["progress in [0, 1]"].detail


class SameInputs(Good):
    def generate_task(self, index: int) -> Task:
        return Task(id=f"t{index}", inputs={}, reference={"n": index % 5})


def test_tasks_that_all_look_alike_fail_the_split_check():
    assert results(Good)["tasks split"].passed
    r = results(SameInputs)["tasks split"]
    assert not r.passed and "same `inputs`" in r.detail
