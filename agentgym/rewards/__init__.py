"""Rewards: verifiable answer checks, rubrics with deterministic and judged criteria, judges,
rubric generation and the pipeline that combines environment and rubric rewards.

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
from agentgym.rewards.pipeline import (
    JudgeConfig,
    RewardConfig,
    RewardPipeline,
    build_judge,
    load_reward_config,
    score_trajectories,
)
from agentgym.rewards.rubric import Rubric, load_rubric_table
from agentgym.rewards.scoring import score_local, score_response, score_responses
from agentgym.rewards.verifiable import contains_answer, exact_match, normalize_answer, token_f1

__all__ = [
    "ContainsCriterion", "CriterionScore", "JsonFieldCriterion", "Judge", "JudgeConfig", "JudgeItem", "JudgePanel",
    "JudgeStats", "JudgeTemplate", "JudgedCriterion", "Judgment", "JudgmentCache", "NumericCriterion",
    "PythonCriterion", "RegexCriterion", "RewardConfig", "RewardPipeline", "Rubric", "RubricResult",
    "ScoringContext", "VerifiableCriterion", "aggregate", "build_judge", "contains_answer", "exact_match",
    "load_reward_config", "load_rubric_table", "normalize_answer", "parse_judgment", "score_local",
    "score_response", "score_responses", "score_trajectories", "token_f1",
]
