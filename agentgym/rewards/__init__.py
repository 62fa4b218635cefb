"""Rewards: verifiable answer checks, rubrics with deterministic and judged criteria, judges,
rubric generation, retrospective progress assessors, and the one scoring pass that fills every
trajectory's reward parts (environment outcome, rubric, progress, penalties, total).

See docs/rubrics.md for the rubric format and the aggregation rules.
"""

from agentgym.rewards.aggregate import RubricResult, aggregate
from agentgym.rewards.cache import JudgmentCache
from agentgym.rewards.criteria import (
    ContainsCriterion,
    CriterionScore,
    JsonFieldCriterion,
    JudgedCriterion,
    NumericCriterion,
    PythonCriterion,
    RegexCriterion,
    ScoringContext,
    VerifiableCriterion,
)
from agentgym.rewards.judge import Judge, JudgeItem, Judgment, JudgePanel, JudgeStats, JudgeTemplate, parse_judgment
from agentgym.rewards.config import JudgeConfig, PenaltyConfig, RewardConfig, load_reward_config
from agentgym.rewards.pipeline import RewardPipeline, build_judge, score_trajectories
from agentgym.rewards.progress import ProgressConfig
from agentgym.rewards.rubric import Rubric, load_rubric_table
from agentgym.rewards.scoring import score_local, score_response, score_responses
from agentgym.rewards.verifiable import contains_answer, exact_match, normalize_answer, token_f1

__all__ = [
    "ContainsCriterion", "CriterionScore", "JsonFieldCriterion", "Judge", "JudgeConfig", "JudgeItem", "JudgePanel",
    "JudgeStats", "JudgeTemplate", "JudgedCriterion", "Judgment", "JudgmentCache", "NumericCriterion",
    "PenaltyConfig", "ProgressConfig", "PythonCriterion", "RegexCriterion", "RewardConfig", "RewardPipeline", "Rubric", "RubricResult",
    "ScoringContext", "VerifiableCriterion", "aggregate", "build_judge", "contains_answer", "exact_match",
    "load_reward_config", "load_rubric_table", "normalize_answer", "parse_judgment", "score_local",
    "score_response", "score_responses", "score_trajectories", "token_f1",
]
