"""Eval metrics: success with Wilson intervals, unbiased pass@k, and per-episode summaries.

Wilson's score interval stays inside [0, 1] and behaves at rates of 0 and 1, where the
normal approximation collapses. pass@k uses the unbiased estimator of Chen et al.
(2021): with ``n`` samples of a task of which ``c`` succeed,
``pass@k = 1 - C(n - c, k) / C(n, k)``, averaged over tasks. Differences between two
runs use Newcombe's hybrid score interval built from the two Wilson intervals.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any, Iterable

from agentgym.rollout.trajectory import Trajectory

Z95 = 1.959963984540054


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval for a binomial proportion (``(0, 1)`` when ``n == 0``)."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


def newcombe_diff(s1: int, n1: int, s2: int, n2: int, z: float = Z95) -> tuple[float, float, float]:
    """Difference ``p2 - p1`` with Newcombe's (method 10) 95% interval."""
    p1 = s1 / n1 if n1 else 0.0
    p2 = s2 / n2 if n2 else 0.0
    l1, u1 = wilson(s1, n1, z)
    l2, u2 = wilson(s2, n2, z)
    d = p2 - p1
    lower = d - math.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2)
    upper = d + math.sqrt((u2 - p2) ** 2 + (p1 - l1) ** 2)
    return d, lower, upper


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k for one task with ``n`` samples, ``c`` correct (Chen et al., 2021)."""
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} samples, got {n}")
    if n - c < k:
        return 1.0
    # 1 - prod_{i=n-c+1}^{n} (1 - k/i): numerically stable form of 1 - C(n-c,k)/C(n,k)
    prod = 1.0
    for i in range(n - c + 1, n + 1):
        prod *= 1.0 - k / i
    return 1.0 - prod


def ks_for(n: int) -> list[int]:
    """The k reported for ``n`` samples: powers of two up to n, and n."""
    ks = [k for k in (1, 2, 4, 8, 16, 32, 64, 128) if k <= n]
    if n not in ks:
        ks.append(n)
    return ks


def summarize(trajs: Iterable[Trajectory], task_key: str = "task_id") -> dict[str, Any]:
    """Metrics for one group of episodes (one environment, or all of them pooled)."""
    trajs = list(trajs)
    n = len(trajs)
    wins = sum(bool(t.success) for t in trajs)
    low, high = wilson(wins, n)
    by_task: dict[str, list[bool]] = defaultdict(list)
    for t in trajs:
        by_task[f"{t.metadata.get('eval', {}).get('entry', t.env_id)}|{getattr(t, task_key)}"].append(bool(t.success))
    min_samples = min((len(v) for v in by_task.values()), default=0)
    passk = {}
    for k in ks_for(min_samples) if min_samples else []:
        passk[f"pass@{k}"] = _mean(pass_at_k(len(v), sum(v), k) for v in by_task.values())
    turns = [t.num_turns for t in trajs]
    total_turns = sum(turns)
    invalid = sum(bool(turn.info.get("invalid_action")) for t in trajs for turn in t.turns)
    tokens = [episode_tokens(t) for t in trajs]
    statuses = {s: sum(t.status == s for t in trajs) for s in ("completed", "truncated", "failed")}
    return {
        "episodes": n,
        "tasks": len(by_task),
        "success_rate": wins / n if n else 0.0,
        "success_ci95": [low, high],
        "successes": wins,
        "mean_reward": _mean(t.reward for t in trajs),
        **passk,
        "mean_turns": _mean(turns),
        "mean_tokens": _mean(tokens),
        "invalid_action_rate": invalid / total_turns if total_turns else 0.0,
        **statuses,
        "mean_episode_s": _mean(t.timings.get("wall_s", 0.0) for t in trajs),
        "mean_generation_s": _mean(t.timings.get("generation_s", 0.0) for t in trajs),
        "mean_env_s": _mean(t.timings.get("env_s", 0.0) for t in trajs),
    }


def episode_tokens(traj: Trajectory) -> int:
    """Sampled tokens of an episode (token-level bookkeeping, else what the policy reported)."""
    masked = sum(traj.loss_mask)
    return masked if masked else sum(turn.num_tokens for turn in traj.turns)


def _mean(values: Iterable[float]) -> float:
    values = list(values)
    return float(sum(values) / len(values)) if values else 0.0
