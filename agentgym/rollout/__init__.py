"""Rollouts: the async multi-turn engine, what the model sees each turn, trajectory records."""

from agentgym.rollout.batching import BatchingPolicy, BatchStats
from agentgym.rollout.context import ContextBuilder, ContextOverflow, EpisodeContext, Guidance, TokenRenderer
from agentgym.rollout.engine import EpisodeSpec, JsonlSink, RolloutConfig, RolloutEngine
from agentgym.rollout.trajectory import Trajectory, Turn, read_jsonl, write_jsonl

__all__ = [
    "BatchStats", "BatchingPolicy", "ContextBuilder", "ContextOverflow", "EpisodeContext", "EpisodeSpec",
    "Guidance", "JsonlSink", "RolloutConfig", "RolloutEngine", "TokenRenderer", "Trajectory", "Turn",
    "read_jsonl", "write_jsonl",
]
