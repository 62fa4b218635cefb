"""Evaluation: suites, success rates with confidence intervals, pass@k, reports and plots."""

from agentgym.eval.metrics import newcombe_diff, pass_at_k, summarize, wilson
from agentgym.eval.runner import EvalResult, aevaluate, evaluate
from agentgym.eval.suite import Suite, SuiteEnv, load_suite

__all__ = [
    "EvalResult", "Suite", "SuiteEnv", "aevaluate", "evaluate", "load_suite", "newcombe_diff", "pass_at_k",
    "summarize", "wilson",
]
