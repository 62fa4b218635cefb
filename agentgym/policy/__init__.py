"""Policies: one async interface over transformers, vLLM, OpenAI-compatible servers and scripts.

Importing this package is cheap; backends (and torch) are imported when a policy is loaded.
"""

from agentgym.policy.base import Completion, GenerationRequest, Message, Policy, SamplingParams
from agentgym.policy.load import load_policy

__all__ = ["Completion", "GenerationRequest", "Message", "Policy", "SamplingParams", "load_policy"]
