"""Open-ended question answering scored by rubrics (``qa/v0``).

Registration only: the environment module is imported when ``make("qa/v0")`` is called.
"""


def register() -> None:
    from agentgym.core.registry import register as _register

    _register(
        "qa/v0",
        "envs.qa.env:QAEnv",
        description="open-ended factual and explanatory questions, rewarded by per-task rubrics",
        suites=["qa"],
    )
