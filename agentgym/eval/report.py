"""Eval reports: results.json, a Markdown table, PNG plots, and run comparison."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agentgym.errors import UserError
from agentgym.eval.metrics import newcombe_diff
from agentgym.rollout.trajectory import Trajectory

RESULTS = "results.json"
REPORT = "report.md"
SUCCESS_PLOT = "success_by_env.png"
TURNS_PLOT = "turns_hist.png"


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def markdown_table(results: dict[str, Any]) -> str:
    """One row per environment plus an overall row."""
    rows = [*results["envs"].items(), ("**overall**", results["overall"])]
    passks = sorted({k for _, m in rows for k in m if k.startswith("pass@")}, key=lambda k: int(k[5:]))
    head = ["env", "episodes", "success (95% CI)", "mean reward", *passks, "turns", "tokens", "invalid", "failed", "s/episode"]
    lines = [
        f"# Eval: {results['suite']} with {results['policy']}",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "|".join("---" for _ in head) + "|",
    ]
    for name, m in rows:
        low, high = m["success_ci95"]
        cells = [
            name,
            str(m["episodes"]),
            f"{_pct(m['success_rate'])} [{_pct(low)}, {_pct(high)}]",
            f"{m['mean_reward']:.3f}",
            *[_pct(m[k]) if k in m else "" for k in passks],
            f"{m['mean_turns']:.1f}",
            f"{m['mean_tokens']:.0f}",
            _pct(m["invalid_action_rate"]),
            str(m["failed"]),
            f"{m['mean_episode_s']:.2f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"Wall time of the last invocation: {results['wall_s']:.1f} s. Success intervals are Wilson 95%; "
              "pass@k is the unbiased estimator over each task's samples.", ""]
    return "\n".join(lines)


def plot(results: dict[str, Any], trajs: list[Trajectory], out_dir: Path) -> list[Path]:
    """Success per environment (with Wilson error bars) and a histogram of episode turns."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results["envs"])
    rates = [results["envs"][n]["success_rate"] for n in names]
    lows = [r - results["envs"][n]["success_ci95"][0] for n, r in zip(names, rates)]
    highs = [results["envs"][n]["success_ci95"][1] - r for n, r in zip(names, rates)]
    fig, ax = plt.subplots(figsize=(max(4.0, 1.2 * len(names) + 2), 3.6))
    ax.bar(names, rates, yerr=[lows, highs], capsize=4, color="#4C72B0")
    ax.set_ylim(0, 1.12)
    ax.set_ylabel("success rate (95% CI)")
    ax.set_title(f"{results['suite']} — {results['policy']}")
    for i, (r, up) in enumerate(zip(rates, highs)):
        ax.text(i, r + up + 0.015, f"{r:.2f}", ha="center", va="bottom", fontsize=8)
    plt.setp(ax.get_xticklabels(), rotation=20, ha="right")
    fig.tight_layout()
    success_path = out_dir / SUCCESS_PLOT
    fig.savefig(success_path, dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 3.6))
    by_env: dict[str, list[int]] = {n: [] for n in names}
    for t in trajs:
        entry = t.metadata.get("eval", {}).get("entry", t.env_id)
        by_env.setdefault(entry, []).append(t.num_turns)
    top = max((max(v) for v in by_env.values() if v), default=1)
    bins = range(0, top + 2)
    ax.hist([by_env[n] for n in by_env], bins=bins, label=list(by_env), stacked=True, align="left")
    ax.set_xlabel("turns per episode")
    ax.set_ylabel("episodes")
    ax.set_title("episode length")
    ax.legend(fontsize=8)
    fig.tight_layout()
    turns_path = out_dir / TURNS_PLOT
    fig.savefig(turns_path, dpi=110)
    plt.close(fig)
    return [success_path, turns_path]


def load_results(run: str | Path) -> dict[str, Any]:
    """results.json of a run directory (or the file itself)."""
    path = Path(run)
    if path.is_dir():
        path = path / RESULTS
    if not path.is_file():
        raise UserError(f"no eval results at {path}; pass a directory written by `agentgym eval --out`.")
    return json.loads(path.read_text(encoding="utf-8"))


def compare(a: dict[str, Any], b: dict[str, Any]) -> str:
    """A table of B - A per environment: success difference with a 95% CI, reward, turns."""
    names = [n for n in a["envs"] if n in b["envs"]]
    only = sorted(set(a["envs"]) ^ set(b["envs"]))
    rows = [(n, a["envs"][n], b["envs"][n]) for n in names] + [("overall", a["overall"], b["overall"])]
    lines = [
        f"A: {a['suite']} / {a['policy']}",
        f"B: {b['suite']} / {b['policy']}",
        "",
        f"{'env':<22} {'success A':>10} {'success B':>10} {'B-A (95% CI)':>26} {'reward B-A':>11} {'turns B-A':>10}",
    ]
    for name, ma, mb in rows:
        d, low, high = newcombe_diff(ma["successes"], ma["episodes"], mb["successes"], mb["episodes"])
        mark = " *" if low > 0 or high < 0 else "  "
        lines.append(
            f"{name:<22} {_pct(ma['success_rate']):>10} {_pct(mb['success_rate']):>10} "
            f"{f'{100 * d:+.1f} [{100 * low:+.1f}, {100 * high:+.1f}]':>24}{mark} "
            f"{mb['mean_reward'] - ma['mean_reward']:>+11.3f} {mb['mean_turns'] - ma['mean_turns']:>+10.2f}"
        )
    lines.append("")
    lines.append("* the 95% interval of the success difference excludes 0 (Newcombe's hybrid score interval).")
    if only:
        lines.append(f"In one run only: {', '.join(only)}.")
    if a["suite"] != b["suite"]:
        lines.insert(0, f"warning: the runs are of different suites ({a['suite']!r} and {b['suite']!r}): "
                        "their tasks differ, so the differences below compare different things.")
    if not names:
        lines.insert(0, "warning: the runs share no environment; only the overall rows are compared.")
    return "\n".join(lines)
