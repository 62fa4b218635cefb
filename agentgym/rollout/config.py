"""The rollout configuration: one typed section, the engine's, also the ``rollout:`` of a train config.

Sampling (``temperature``, ``top_p``, ``max_tokens``, ``stop``), what the model sees
(``max_context_tokens``, ``system_prompt``, ``tools``), limits (``step_timeout_s``,
``episode_timeout_s``, ``max_concurrent_episodes``, ``env_concurrency`` keyed by env id or
family: sandboxes are expensive) and batching in front of the policy (``max_batch``,
``batch_wait_s``, ``policy_concurrency``). A training config sets every one of them under
``rollout:`` (``rollout.env_concurrency={swe: 4}``); its training-only fields (group size,
groups per step, turn limit) extend this class in :mod:`agentgym.train.config`.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from agentgym.policy.base import SamplingParams
from agentgym.rollout.context import ContextBuilder


class RolloutConfig(BaseModel):
    """How the engine runs episodes."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    # ---- sampling
    temperature: float = Field(1.0, ge=0, description="0 = greedy")
    top_p: float = Field(1.0, gt=0, le=1)
    max_tokens: int = Field(256, ge=1, description="tokens per policy turn")
    stop: list[str] | None = None
    # ---- what the model sees
    max_context_tokens: int | None = Field(4096, ge=16, description="longer episodes end as truncated")
    #: Replaces the environment's system prompt (e.g. to state the exact reply format).
    system_prompt: str | None = None
    #: Show the environment's tool schemas to the model (False: plain-text replies only).
    tools: bool = True
    #: None: token-level (exact token bookkeeping) whenever the policy has a chat renderer.
    token_level: bool | None = None
    # ---- limits
    step_timeout_s: float | None = Field(300.0, gt=0, description="one environment reset, step, hook or close")
    episode_timeout_s: float | None = Field(None, gt=0, description="the whole episode, policy waits included")
    max_concurrent_episodes: int = Field(256, ge=1)
    #: Episodes in flight per environment id or family (``{"swe": 4}``); others: ``default_env_concurrency``.
    env_concurrency: dict[str, int] = Field(default_factory=dict)
    default_env_concurrency: int | None = Field(None, ge=1)
    # ---- batching in front of the policy
    max_batch: int = Field(64, ge=1, description="requests per generate call")
    batch_wait_s: float = Field(0.005, ge=0)
    policy_concurrency: int = Field(1, ge=1, description="generate calls in flight")

    @property
    def sampling(self) -> SamplingParams:
        """The sampling parameters of every turn (an episode may override them)."""
        return SamplingParams(temperature=self.temperature, top_p=self.top_p, max_tokens=self.max_tokens,
                              stop=list(self.stop) if self.stop else None)

    def context_builder(self) -> ContextBuilder:
        """What the model sees, as this config says."""
        return ContextBuilder(max_context_tokens=self.max_context_tokens, system_prompt=self.system_prompt,
                              show_tools=self.tools)
