"""Ablation: plain GRPO vs + guidance vs + progress vs both, on maze and Sokoban, same seeds and budget.

Every variant trains the same model from the same weights with the same seed, tasks and
budget (configs/ablation/base.yaml + configs/ablation/<variant>.yaml); only the
``guidance:`` and ``progress:`` sections differ. The curve is the policy's own success
rate on each step's training groups *before* any guidance (guided re-attempts are not
counted, they would flatter the guided variants), plus the fraction of groups whose
advantages are not all zero (the groups GRPO can learn from).

    python benchmarks/ablation_guidance_progress.py --steps 8             # both envs, one process
    python benchmarks/ablation_guidance_progress.py --steps 2 --envs maze # a smoke run
    # the README's run: one process per env, then merged
    python benchmarks/ablation_guidance_progress.py --steps 8 --envs maze --out runs/ablation-maze
    python benchmarks/ablation_guidance_progress.py --steps 6 --envs sokoban \
        --set rollout.groups_per_step=2 --out runs/ablation-sokoban
    python benchmarks/ablation_guidance_progress.py --combine runs/ablation-maze runs/ablation-sokoban \
        runs/ablation-hard --out runs/ablation

A second measurement (``--hard-groups N``, rollouts only, no training) runs N groups on a
hard maze setting where the untrained model's groups all fail, and reports the fraction of
groups with a non-zero advantage without and with guidance (and with progress rewards).

Outputs in ``--out``: ``ablation.png`` (curves), ``ablation.md`` (the table), ``ablation.json``;
the last line printed is one JSON object with the headline figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

# One torch thread per process: on a shared, oversubscribed CPU, spinning OpenMP threads made
# generation ~7x slower here than a single thread.
os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from signature import VARIANT_CONFIGS as CONFIGS
from signature import VARIANTS, merge

# The maze is the main job's (3x3, text description, 2-move paths, 3 turns) without its reward
# shaping, so that "+ progress" is the only dense signal; Sokoban gets room for its pushes.
ENVS = {
    "maze": {"id": "maze/v0", "kwargs": {"preset": "easy", "size": 3, "wall_density": 0.1, "min_path": 2,
                                          "max_path": 2, "obs_mode": "description", "max_turns": 3}},
    "sokoban": {"id": "sokoban-easy/v0", "kwargs": {"max_turns": 5}},
}


def variant_config(env: str, variant: str, steps: int, out: Path, model: str, overrides: list[str]):
    from agentgym.train.config import apply_override, config_from_dict, parse_override

    data = merge(yaml.safe_load((CONFIGS / "base.yaml").read_text()), yaml.safe_load((CONFIGS / f"{variant}.yaml").read_text()))
    data["name"] = f"{env}-{variant}"
    data["run_dir"] = str(out / "runs" / data["name"])
    data["envs"] = [{"id": ENVS[env]["id"], "kwargs": ENVS[env]["kwargs"], "name": env}]
    data.setdefault("trainer", {})["steps"] = steps
    data.setdefault("model", {})["policy"] = model
    for text in overrides:
        keys, value = parse_override(text)
        apply_override(data, keys, value)
    return config_from_dict(data, f"ablation {env}/{variant}")


def run_variant(env: str, variant: str, args, policy: Any = None, initial: dict | None = None) -> dict[str, Any]:
    import shutil

    from agentgym.train.loop import train

    config = variant_config(env, variant, args.steps, args.out, args.model, args.set)
    if config.run_path.exists():
        shutil.rmtree(config.run_path)
    if policy is not None and initial is not None:
        policy.model.load_state_dict(initial)  # every variant starts from the same initial weights
    t0 = time.perf_counter()
    result = train(config, progress=False, policy=policy)
    wall = time.perf_counter() - t0
    curve = []
    for m in result.metrics:
        curve.append({
            "step": m["step"],
            "success": m.get("guidance/unguided_success", m.get("success/mean", 0.0)),
            "reward": m.get("reward/mean", 0.0),
            "nonzero_adv": m.get("groups/nonzero_adv_fraction", 0.0),
            "guidance_rate": m.get("guidance/rate", 0.0),
            "guided_success": m.get("guidance/guided_success"),
            "progress_mean": m.get("progress/mean"),
            "step_s": m.get("time/step_s", 0.0),
        })
    return {"env": env, "variant": variant, "wall_s": wall, "curve": curve}


def summarise(run: dict[str, Any]) -> dict[str, Any]:
    c = run["curve"]

    def mean(key: str) -> float | None:
        vals = [r[key] for r in c if r.get(key) is not None]
        return float(np.mean(vals)) if vals else None

    last = c[-max(1, len(c) // 3):]
    return {
        "env": run["env"], "variant": run["variant"], "steps": len(c),
        "success_mean": mean("success"),
        "success_last_third": float(np.mean([r["success"] for r in last])) if c else None,
        "success_first": c[0]["success"] if c else None,
        "reward_mean": mean("reward"),
        "nonzero_adv_mean": mean("nonzero_adv"),
        "guidance_rate": mean("guidance_rate"),
        "guided_success": mean("guided_success"),
        "s_per_step": run["wall_s"] / max(1, len(c)),
    }


def fmt(v: Any) -> str:
    if v is None:
        return "–"
    return f"{v:.2f}" if isinstance(v, float) else str(v)


def table(rows: list[dict[str, Any]]) -> str:
    head = ("| env | variant | steps | success (first step) | success (mean) | success (last third) | "
            "groups with non-zero adv. | guidance rate | guided success | s/step |")
    lines = [head, "|" + "---|" * 10]
    for r in rows:
        lines.append(
            f"| {r['env']} | {r['variant']} | {r['steps']} | {fmt(r['success_first'])} | {fmt(r['success_mean'])} | "
            f"{fmt(r['success_last_third'])} | {fmt(r['nonzero_adv_mean'])} | {fmt(r['guidance_rate'])} | "
            f"{fmt(r['guided_success'])} | {r['s_per_step']:.0f} |"
        )
    return "\n".join(lines)


def plot(runs: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    envs = list(dict.fromkeys(r["env"] for r in runs))
    fig, axes = plt.subplots(2, len(envs), figsize=(5.5 * len(envs), 6.5), squeeze=False)
    colours = {"plain": "tab:gray", "guidance": "tab:blue", "progress": "tab:orange", "both": "tab:green"}
    for col, env in enumerate(envs):
        for run in (r for r in runs if r["env"] == env):
            steps = [c["step"] for c in run["curve"]]
            kw = {"color": colours.get(run["variant"]), "label": run["variant"], "marker": "o", "markersize": 3}
            axes[0][col].plot(steps, [c["success"] for c in run["curve"]], **kw)
            axes[1][col].plot(steps, [c["nonzero_adv"] for c in run["curve"]], **kw)
        axes[0][col].set_title(f"{env}: own success (unguided episodes)")
        axes[1][col].set_title(f"{env}: groups with non-zero advantage")
        for row in (0, 1):
            axes[row][col].set_ylim(-0.03, 1.03)
            axes[row][col].set_xlabel("learner step")
            axes[row][col].grid(alpha=0.3)
        axes[0][col].legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ----------------------------------------------------------------------------- hard maze
async def hard_maze(args) -> dict[str, Any]:
    """Non-zero-advantage fraction of N groups on a hard maze: plain, + guidance, + progress."""
    from agentgym.guidance import GuidanceConfig, GuidedRollouts, build_providers
    from agentgym.policy import load_policy
    from agentgym.rewards.pipeline import RewardPipeline
    from agentgym.rewards.progress import EnvProgressAssessor
    from agentgym.rollout.config import RolloutConfig
    from agentgym.rollout.engine import EpisodeSpec, RolloutEngine
    from agentgym.train.advantages import build_samples
    from agentgym.train.credit import progress_credit

    base = yaml.safe_load((CONFIGS / "base.yaml").read_text())
    policy = load_policy(args.model)
    engine = RolloutEngine(policy, RolloutConfig(temperature=1.0, max_tokens=12, max_context_tokens=1024,
                                                 system_prompt=base["rollout"]["system_prompt"], tools=False))
    scoring = RewardPipeline(assessor=EnvProgressAssessor())

    def nonzero(groups, with_progress: bool) -> float:
        credit = {"credit": progress_credit(groups, weight=0.5)} if with_progress else {}
        return build_samples(groups, **credit)[1].nonzero_adv_fraction

    kwargs = {"max_turns": args.hard_turns, "split": "train"}
    specs = [EpisodeSpec(args.hard_env, env_kwargs=kwargs, seed=1000 + i, group_id=f"hard-{i}")
             for i in range(args.hard_groups)]
    out: dict[str, Any] = {"env": args.hard_env, "max_turns": args.hard_turns, "groups": args.hard_groups,
                           "group_size": args.group_size}
    t0 = time.perf_counter()
    # The same groups twice: guidance in the first prompt only, then also refreshed every turn.
    for every_turn, tag in ((False, ""), (True, "_every_turn")):
        cfg = GuidanceConfig(enabled=True, providers=["env_hint"], threshold=0.0, integrate="add",
                             samples=args.group_size, every_turn=every_turn)
        guided = GuidedRollouts(cfg, build_providers(cfg, policy), seed=0)
        batch = await guided.run_groups(engine, specs, args.group_size, score=scoring.score)
        out.update({
            f"plain_success{tag}": batch.metrics["guidance/unguided_success"],
            f"guided_success{tag}": batch.metrics["guidance/guided_success"],
            f"nonzero_adv_plain{tag}": nonzero(batch.unguided, False),
            f"nonzero_adv_guidance{tag}": nonzero(batch.groups, False),
            f"nonzero_adv_progress{tag}": nonzero(batch.unguided, True),
            f"nonzero_adv_both{tag}": nonzero(batch.groups, True),
        })
    out["wall_s"] = time.perf_counter() - t0
    await engine.aclose()
    return out


def combine(folders: list[Path], out: Path) -> int:
    """One PNG, table and JSON from several result folders (e.g. one process per environment)."""
    runs: list[dict[str, Any]] = []
    hard = None
    for folder in folders:
        data = json.loads((folder / "ablation.json").read_text())
        runs.extend(data.get("runs", []))
        hard = data.get("hard_maze") or hard
    rows = [summarise(r) for r in runs]
    plot(runs, out / "ablation.png")
    (out / "ablation.md").write_text(table(rows) + "\n")
    (out / "ablation.json").write_text(json.dumps({"runs": runs, "rows": rows, "hard_maze": hard}, indent=1))
    print(table(rows))
    headline: dict[str, Any] = {"bench": "ablation_guidance_progress", "steps": max((r["steps"] for r in rows), default=0)}
    for r in rows:
        headline[f"{r['env']}_{r['variant']}_success_mean"] = r["success_mean"]
        headline[f"{r['env']}_{r['variant']}_nonzero_adv"] = r["nonzero_adv_mean"]
    if hard:
        headline.update({f"hard_{k}": v for k, v in hard.items() if k.startswith("nonzero") or k.endswith("success")})
    print(json.dumps(headline))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=3, help="learner steps per run (the same for every variant)")
    p.add_argument("--envs", nargs="+", default=list(ENVS), choices=list(ENVS))
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--model", default="default", help="policy spec (default: SmolLM2-135M-Instruct)")
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "ablation")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="dotted overrides for every run")
    p.add_argument("--hard-groups", type=int, default=0, help="also measure non-zero advantage on a hard maze")
    p.add_argument("--hard-env", default="maze-medium/v0")
    p.add_argument("--hard-turns", type=int, default=3)
    p.add_argument("--group-size", type=int, default=4)
    p.add_argument("--skip-training", action="store_true", help="only the hard-maze measurement")
    p.add_argument("--combine", nargs="+", type=Path, metavar="DIR",
                   help="merge the ablation.json of earlier (e.g. parallel) runs into --out, then stop")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    from agentgym.core.registry import registry
    from agentgym.malloc import limit_malloc_growth

    limit_malloc_growth()  # as the CLI does: bounded malloc arenas for threaded generation
    registry()  # load env plugins here, once: loading them lazily from worker threads raced (unknown env ids)
    if args.combine:
        return combine(args.combine, args.out)
    results_path = args.out / "ablation.json"
    previous = json.loads(results_path.read_text()) if results_path.exists() else {}
    runs: list[dict[str, Any]] = []
    policy = initial = None
    if not args.skip_training:
        from agentgym.policy import load_policy

        policy = load_policy(args.model)  # loaded once; weights restored before each variant
        initial = {k: v.detach().clone() for k, v in policy.model.state_dict().items()}
        for env in args.envs:
            for variant in args.variants:
                print(f"[ablation] {env} / {variant}: {args.steps} steps", file=sys.stderr, flush=True)
                runs.append(run_variant(env, variant, args, policy, initial))
                rows = [summarise(r) for r in runs]
                (args.out / "ablation.md").write_text(table(rows) + "\n")
                results_path.write_text(json.dumps({**previous, "runs": runs, "rows": rows}, indent=1))
        plot(runs, args.out / "ablation.png")
    rows = [summarise(r) for r in runs]
    hard = None
    if args.hard_groups:
        print(f"[ablation] hard maze: {args.hard_groups} groups", file=sys.stderr, flush=True)
        hard = asyncio.run(hard_maze(args))
    record = {**previous, **({"runs": runs, "rows": rows} if runs else {}), **({"hard_maze": hard} if hard else {})}
    results_path.write_text(json.dumps(record, indent=1))
    if rows:
        print(table(rows))
    if hard:
        print(json.dumps(hard))
    headline: dict[str, Any] = {"bench": "ablation_guidance_progress", "steps": args.steps}
    for r in rows:
        headline[f"{r['env']}_{r['variant']}_success_mean"] = r["success_mean"]
        headline[f"{r['env']}_{r['variant']}_nonzero_adv"] = r["nonzero_adv_mean"]
    if hard:
        headline.update({f"hard_{k}": v for k, v in hard.items() if k.startswith("nonzero") or k.endswith("success")})
    print(json.dumps(headline))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
