import pytest

from agentgym import Task, TextEnv, ToolError, tool


class CounterEnv(TextEnv):
    """Reach a target number by calling add(n); a tiny env with a generator and an oracle."""

    system_prompt = "Reach the target by calling add."
    blocking = False

    def generate_task(self, index: int) -> Task:
        return Task(id=f"count-{index}", inputs={"target": index % 97}, reference={"answer": index % 97})

    def setup(self, task: Task) -> str:
        self.value = 0
        return f"Reach {task.inputs['target']}. You are at 0."

    @tool
    def add(self, n: int) -> str:
        """Add a number to the counter.

        Args:
            n: how much to add (between -10 and 10).
        """
        if not -10 <= n <= 10:
            raise ToolError("n must be between -10 and 10")
        self.value += n
        target = self.task.inputs["target"]
        if self.value == target:
            self.finish(1.0, True)
            return f"You reached {target}."
        return f"Now at {self.value}."

    def oracle_action(self) -> str:
        gap = self.task.inputs["target"] - self.value
        return f"add[{max(-10, min(10, gap))}]"


@pytest.fixture
def counter_env():
    return CounterEnv(max_turns=30)
