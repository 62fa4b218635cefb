"""SWE: fix real bugs injected into real Python libraries, inside a sandbox.

Ids: ``swe/v0`` (the shipped task set; ``backend=`` docker | bwrap | auto). Tasks are
made offline with ``agentgym swe make-tasks PACKAGE==VERSION``; SWE-bench instance files
load with :func:`envs.swe.tasks.load_swebench`. Heavy modules load only on ``make``.
"""

from __future__ import annotations

import agentgym


def register() -> None:
    """Register the SWE ids (the ``agentgym.envs`` entry point)."""
    agentgym.register(
        "swe/v0",
        "envs.swe.env:SweEnv",
        description="Fix a bug injected into a real library (toolz, inflection, parse, cachetools); "
        "tools bash/view/edit/submit; hidden tests; backend=docker|bwrap|auto",
        extra="swe",
        suites=["swe"],
        backend="auto",
    )
