"""Rollouts: the async multi-turn engine, its config, what the model sees each turn, trajectory records."""

from agentgym.rollout.batching import BatchingPolicy, BatchStats
from agentgym.rollout.config import RolloutConfig
from agentgym.rollout.context import ContextBuilder, ContextOverflow, EpisodeContext, Guidance, TokenRenderer
from agentgym.rollout.engine import EpisodeSpec, RolloutEngine
from agentgym.rollout.trajectory import JsonlSink, RewardParts, Trajectory, Turn, read_jsonl, write_jsonl

__all__ = [
    "BatchStats", "BatchingPolicy", "ContextBuilder", "ContextOverflow", "EpisodeContext", "EpisodeSpec",
    "Guidance", "JsonlSink", "RewardParts", "RolloutConfig", "RolloutEngine", "TokenRenderer", "Trajectory",
    "Turn", "read_jsonl", "write_jsonl",
]
