"""Guidance injection: re-attempt tasks whose group failed, with a hint in the prompt.

GRPO learns nothing from a group whose episodes all fail: every advantage is zero. When
a group's success rate is at or below ``threshold``, :class:`GuidedRollouts` asks its
providers for guidance text and runs the task again with that text added to the first
user message (Agent-RLVR; GHPO / SEELE-style hint scaffolding). The package:

* :mod:`~agentgym.guidance.config` — the ``guidance:`` section of a train config;
* :mod:`~agentgym.guidance.providers` — ``env_hint``, ``reference``, ``feedback``;
  :mod:`~agentgym.guidance.teacher` — ``teacher`` (a policy writes a plan);
* :mod:`~agentgym.guidance.redaction` — keeping the hidden answer out of a teacher's plan;
* :mod:`~agentgym.guidance.runner` — rollouts, scoring, selection, re-attempts, metrics.

The configuration decides how guided episodes enter the batch (``integrate``: ``add`` them
to the group, or ``replace`` the group's failed episodes), whether the guidance stays in
the trained context (``context="keep"``) or is stripped (``"strip"``: the learner then
trains on the unguided prompt with a clipped importance weight, :mod:`agentgym.train.offpolicy`),
and how often failed groups are guided over training (``schedule``).
"""

from agentgym.guidance.config import GuidanceConfig, ReferenceConfig, ScheduleConfig, TeacherConfig
from agentgym.guidance.providers import (
    EnvHintProvider,
    FailedGroup,
    FeedbackProvider,
    GuidanceProvider,
    ReferenceProvider,
    reference_solution,
)
from agentgym.guidance.redaction import answer_strings, redact_answers
from agentgym.guidance.runner import GuidedBatch, GuidedRollouts, build_providers, success_rate
from agentgym.guidance.teacher import TeacherProvider

__all__ = [
    "EnvHintProvider", "FailedGroup", "FeedbackProvider", "GuidanceConfig", "GuidanceProvider", "GuidedBatch",
    "GuidedRollouts", "ReferenceConfig", "ReferenceProvider", "ScheduleConfig", "TeacherConfig", "TeacherProvider",
    "answer_strings", "build_providers", "redact_answers", "reference_solution", "success_rate",
]
