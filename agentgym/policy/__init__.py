"""Policies: one async interface over transformers, vLLM, OpenAI-compatible servers and scripts.

Importing this package is cheap; backends (and torch) are imported when a policy is loaded.
"""

from agentgym.policy.base import (
    ActionSource,
    Completion,
    GenerationRequest,
    LocalWeights,
    Message,
    Policy,
    SamplingParams,
    TrainablePolicy,
    WeightsPath,
)
from agentgym.policy.load import load_policy

__all__ = [
    "ActionSource", "Completion", "GenerationRequest", "LocalWeights", "Message", "Policy", "SamplingParams",
    "TrainablePolicy", "WeightsPath", "load_policy",
]
