"""The signature result: guidance and retrospective progress on a maze where plain GRPO has almost no signal.

SmolLM2-135M-Instruct is trained four times from the same weights, with the same seed, tasks
and budget — plain GRPO, + guidance, + progress, both (the ``guidance:``/``progress:``
sections of ``configs/ablation/<variant>.yaml``) — on 4x4 mazes whose shortest path is exactly
4 cells and 2 longer than the straight distance (``min_detour``: a wall forces a step away from
the goal), in at most 4 turns, with no reward shaping (``configs/signature.yaml``). Walking
toward the goal never arrives, so the greedy rule a policy picks up on open mazes (move the
first way the goal description names) wins none of them: the script plays that rule on the
held-out mazes and counts how often each variant's outcome agrees with it. Each trained policy
and the untrained one are evaluated on the same held-out (test split) mazes, with 95% Wilson
intervals.

    python benchmarks/signature.py                        # the README's run (about 80 min on an idle 2-core machine)
    python benchmarks/signature.py --steps 1 --eval-episodes 8 --out /tmp/sig   # a smoke run

Resumable: every finished phase is recorded in ``OUT/signature.json`` and skipped when the
script is run again; a variant interrupted mid-training continues from its newest
checkpoint (``--fresh`` starts over). Outputs in ``--out``: ``signature.png`` (training curves:
own success, groups with a non-zero advantage, guidance rate, guided success; and the held-out
success with intervals), ``signature.md`` (the README's table) and ``signature.json``; the last
line printed is one JSON object with the headline figures.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BASE = ROOT / "configs" / "signature.yaml"
#: Each variant's guidance:/progress: sections, shared with benchmarks/ablation_guidance_progress.py.
VARIANT_CONFIGS = ROOT / "configs" / "ablation"
VARIANTS = ("plain", "guidance", "progress", "both")
COLOURS = {"plain": "tab:gray", "guidance": "tab:blue", "progress": "tab:orange", "both": "tab:green",
           "untrained": "black"}


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``over`` laid on top, nested sections merged key by key."""
    out = copy.deepcopy(base)
    for key, value in (over or {}).items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def variant_config(variant: str, args: argparse.Namespace):
    """The base config plus the variant's guidance/progress sections and the command line's sizes."""
    from agentgym.train.config import apply_override, config_from_dict, parse_override

    data = merge(yaml.safe_load(BASE.read_text()), yaml.safe_load((VARIANT_CONFIGS / f"{variant}.yaml").read_text()))
    data["name"] = f"signature-{variant}"
    data["run_dir"] = str(args.out / "runs" / variant)
    data["model"]["policy"] = args.model
    data["trainer"]["steps"] = args.steps
    data["eval"]["episodes"] = args.eval_episodes
    # The untrained baseline is the first variant's start-of-run evaluation (all start from the same weights).
    data["eval"]["at_start"] = variant == args.variants[0]
    guidance = data.get("guidance") or {}
    if guidance.get("enabled"):
        guidance["samples"] = args.guided_samples
        guidance.setdefault("schedule", {})["steps"] = args.steps  # the hint rate decays over the whole run
    for text in args.set:
        keys, value = parse_override(text)
        apply_override(data, keys, value)
    return config_from_dict(data, f"signature/{variant}")


def read_metrics(run_dir: Path) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """The run's per-step training records and its evaluations by tag (``start``, ``end``)."""
    steps: list[dict[str, Any]] = []
    evals: dict[str, dict[str, Any]] = {}
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return steps, evals
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        if record.get("kind") == "eval":
            evals[record.get("tag", "")] = record
        elif record.get("kind") == "train":
            steps.append(record)
    return steps, evals


def curve(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the PNG shows per learner step. Success is the policy's own: guided re-attempts are left out."""
    return [{
        "step": m["step"],
        "success": m.get("guidance/unguided_success", m.get("success/mean", 0.0)),
        "nonzero_adv": m.get("groups/nonzero_adv_fraction", 0.0),
        "guidance_rate": m.get("guidance/rate", 0.0),
        "guided_success": m.get("guidance/guided_success"),
        "step_s": m.get("time/step_s"),
    } for m in steps]


def held_out(record: dict[str, Any]) -> dict[str, Any]:
    return {key: record[key] for key in ("success_rate", "success_ci_low", "success_ci_high", "episodes")}


def run_variant(variant: str, args: argparse.Namespace, policy: Any, initial: dict) -> dict[str, Any]:
    """Train one variant (continuing from its newest checkpoint if there is one) and read its results."""
    from agentgym.train import checkpoint as ckpt
    from agentgym.train.loop import train

    config = variant_config(variant, args)
    run_dir = config.run_path
    resume = run_dir.exists() and ckpt.latest_valid(run_dir / "checkpoints") is not None
    if run_dir.exists() and not resume:
        shutil.rmtree(run_dir)  # a run that never reached a checkpoint: start it again
    policy.model.load_state_dict(initial)  # every variant starts from the same weights
    t0 = time.perf_counter()
    train(config, resume=resume, policy=policy, progress=args.progress)
    steps, evals = read_metrics(run_dir)
    if "end" not in evals:
        raise RuntimeError(f"{variant}: the run ended without its held-out evaluation ({run_dir}/metrics.jsonl)")
    result = {"variant": variant, "wall_s": time.perf_counter() - t0, "resumed": resume,
              "curve": curve(steps), "held_out": held_out(evals["end"])}
    if "start" in evals:
        result["untrained"] = held_out(evals["start"])
    return result


def greedy_rule(observation: str) -> str:
    """The shortcut every trained policy can fall into: the first part of "Goal: 2 up, 1 left." ("2 up")."""
    goal = re.search(r"Goal: ([^.]*)\.", observation)
    return goal.group(1).split(",")[0].strip() if goal else "up"


def greedy_check(results: dict[str, Any], args: argparse.Namespace) -> dict[str, Any] | None:
    """The greedy rule played on the held-out mazes the variants were evaluated on, and on how
    many of those mazes each variant's outcome agrees with it (200 of 200: it learned the rule)."""
    import agentgym
    from agentgym.core import Task

    outcomes: dict[str, dict[str, bool]] = {}
    tasks: dict[str, Task] = {}
    for variant in results["variants"]:
        found = sorted((args.out / "runs" / variant / "eval").glob("end-step-*/trajectories.jsonl"))
        if not found:
            continue
        rows = [json.loads(line) for line in found[-1].read_text().splitlines() if line.strip()]
        outcomes[variant] = {row["task_id"]: bool(row["success"]) for row in rows}
        tasks.update((row["task_id"], Task.model_validate(row["task"])) for row in rows if row.get("task"))
    if not tasks:
        return None
    config = variant_config("plain", args)
    env = agentgym.make(config.envs[0].id, **config.envs[0].kwargs)
    greedy: dict[str, bool] = {}
    for task_id, task in tasks.items():
        observation, _ = env.reset(options={"task": task})
        reward, done = 0.0, False
        while not done:
            observation, reward, terminated, truncated, _ = env.step(greedy_rule(str(observation)))
            done = terminated or truncated
        greedy[task_id] = reward >= 1.0
    env.close()
    return {"successes": sum(greedy.values()), "episodes": len(greedy),
            "agrees_with": {v: sum(o.get(t) == won for t, won in greedy.items()) for v, o in outcomes.items()}}


def mean(values: list[Any]) -> float | None:
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def table(results: dict[str, Any]) -> str:
    """The README's table: held-out success with its interval, and the training figures beside it."""
    from agentgym.eval.metrics import wilson

    head = ("| policy | held-out success | 95% interval | groups with non-zero adv. (first step / mean) | "
            "guidance rate | guided success | own training success (last 3 steps) |")
    lines = [head, "|" + "---|" * 7]
    base = results.get("untrained")
    if base:
        lines.append(f"| untrained | **{base['success_rate']:.3f}** | {base['success_ci_low']:.3f}-"
                     f"{base['success_ci_high']:.3f} | – | – | – | – |")
    greedy = results.get("greedy")
    if greedy:
        lo, hi = wilson(greedy["successes"], greedy["episodes"])
        lines.append(f"| greedy rule (scripted, no training) | **{greedy['successes'] / greedy['episodes']:.3f}** | "
                     f"{lo:.3f}-{hi:.3f} | – | – | – | – |")
    for variant in VARIANTS:
        run = results["variants"].get(variant)
        if not run:
            continue
        h, c = run["held_out"], run["curve"]

        def fmt(v: float | None) -> str:
            return "–" if v is None else f"{v:.2f}"

        nonzero = f"{fmt(c[0]['nonzero_adv'])} / {fmt(mean([r['nonzero_adv'] for r in c]))}" if c else "–"
        guided = variant in ("guidance", "both")
        lines.append(
            f"| {variant} | **{h['success_rate']:.3f}** | {h['success_ci_low']:.3f}-{h['success_ci_high']:.3f} | "
            f"{nonzero} | {fmt(mean([r['guidance_rate'] for r in c])) if guided else '–'} | "
            f"{fmt(mean([r['guided_success'] for r in c])) if guided else '–'} | "
            f"{fmt(mean([r['success'] for r in c[-3:]]))} |"
        )
    return "\n".join(lines)


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = (("success", "own success on training groups (unguided)"),
              ("nonzero_adv", "groups with a non-zero advantage"),
              ("guidance_rate", "guidance rate (groups guided)"),
              ("guided_success", "success of guided re-attempts"))
    fig, axes = plt.subplots(2, 3, figsize=(15, 8))
    flat = axes.ravel()
    for ax, (key, title) in zip(flat, panels):
        for variant, run in results["variants"].items():
            points = [(r["step"], r[key]) for r in run["curve"] if r.get(key) is not None]
            if key in ("guidance_rate", "guided_success") and variant not in ("guidance", "both"):
                continue
            if points:
                ax.plot(*zip(*points), color=COLOURS[variant], label=variant, marker="o", markersize=3)
        ax.set_title(title)
        ax.set_xlabel("learner step")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_ylim(-0.03, 1.03)
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", fontsize=8)
    ax = flat[4]
    bars = ([("untrained", results["untrained"])] if results.get("untrained") else []) + [
        (v, results["variants"][v]["held_out"]) for v in VARIANTS if v in results["variants"]]
    for i, (name, h) in enumerate(bars):
        p = h["success_rate"]
        ax.bar(i, p, color=COLOURS[name], alpha=0.8)
        ax.errorbar(i, p, yerr=[[p - h["success_ci_low"]], [h["success_ci_high"] - p]], color="black", capsize=4)
    ax.set_xticks(range(len(bars)), [name for name, _ in bars])
    n = bars[0][1]["episodes"] if bars else 0
    ax.set_title(f"held-out success, {n} test mazes (95% Wilson)")
    ax.set_ylim(0, 1.03)
    ax.grid(alpha=0.3, axis="y")
    flat[5].axis("off")
    flat[5].text(0, 0.5, f"SmolLM2-135M-Instruct, CPU\n{results['setting']}", fontsize=10, va="center", wrap=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def headline(results: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"bench": "signature", "steps": results["steps"], "wall_s": round(results["wall_s"])}
    if results.get("untrained"):
        out["untrained"] = round(results["untrained"]["success_rate"], 3)
    for variant, run in results["variants"].items():
        h = run["held_out"]
        out[variant] = round(h["success_rate"], 3)
        out[f"{variant}_ci"] = [round(h["success_ci_low"], 3), round(h["success_ci_high"], 3)]
    if results.get("greedy"):
        out["greedy_rule"] = results["greedy"]["successes"]
        out["agrees_with_greedy"] = results["greedy"]["agrees_with"]
    plain = results["variants"].get("plain")
    others = [(v, r) for v, r in results["variants"].items() if v != "plain"]
    if plain and others:
        best, run = max(others, key=lambda item: item[1]["held_out"]["success_rate"])
        out["best"] = best if run["held_out"]["success_rate"] > plain["held_out"]["success_rate"] else "plain (none above it)"
        out["best_beats_plain_non_overlapping"] = run["held_out"]["success_ci_low"] > plain["held_out"]["success_ci_high"]
    return out


def setting(config) -> str:
    """The task and budget in words, for the figure."""
    kw, r = config.envs[0].kwargs, config.rollout
    detour = f" ({kw['min_detour']} longer than straight)" if kw.get("min_detour") else ""
    return (f"{kw['size']}x{kw['size']} mazes, shortest path {kw['min_path']} cells{detour},\n{kw['max_turns']} turns, "
            f"{config.trainer.steps} steps x {r.groups_per_step} groups x {r.group_size} episodes per variant")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=12, help="learner steps per variant (the same for every variant)")
    p.add_argument("--eval-episodes", type=int, default=200, help="held-out test mazes per evaluation")
    p.add_argument("--guided-samples", type=int, default=4, help="guided re-attempts added to a failed group")
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--model", default="default", help="policy spec (default: SmolLM2-135M-Instruct)")
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "signature")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="dotted overrides for every variant")
    p.add_argument("--fresh", action="store_true", help="discard the results and runs in --out and start over")
    p.add_argument("--progress", action="store_true", help="a progress bar per variant")
    args = p.parse_args(argv)
    if args.fresh and args.out.exists():
        shutil.rmtree(args.out)
    args.out.mkdir(parents=True, exist_ok=True)

    from agentgym.core.registry import registry
    from agentgym.malloc import limit_malloc_growth

    limit_malloc_growth()  # as the CLI does: bounded malloc arenas for threaded generation
    registry()  # load env plugins once, before worker threads need them
    sizes = {"steps": args.steps, "eval_episodes": args.eval_episodes, "guided_samples": args.guided_samples,
             "set": args.set, "model": args.model}
    path = args.out / "signature.json"
    results: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    if results and results.get("sizes") != sizes:
        print(f"error: {path} was made with {results.get('sizes')}, not {sizes}; pass --fresh to start over "
              "or another --out.", file=sys.stderr)
        return 2
    results.setdefault("variants", {})
    results.update({"sizes": sizes, "steps": args.steps, "setting": setting(variant_config("plain", args))})
    todo = [v for v in args.variants if v not in results["variants"]]
    t0 = time.perf_counter()
    if todo:
        from agentgym.policy import load_policy

        policy = load_policy(args.model)  # loaded once; the initial weights are restored before each variant
        initial = {k: v.detach().clone() for k, v in policy.model.state_dict().items()}
        for variant in todo:
            print(f"[signature] {variant}: {args.steps} steps, then {args.eval_episodes} held-out mazes",
                  file=sys.stderr, flush=True)
            run = run_variant(variant, args, policy, initial)
            if "untrained" in run:
                results["untrained"] = run.pop("untrained")
            results["variants"][variant] = run
            results["wall_s"] = results.get("wall_s", 0.0) + run["wall_s"]
            path.write_text(json.dumps(results, indent=1))  # the phase is done: a rerun skips it
            h = run["held_out"]
            print(f"[signature] {variant}: held-out {h['success_rate']:.3f} "
                  f"({h['success_ci_low']:.3f}-{h['success_ci_high']:.3f}) in {run['wall_s'] / 60:.1f} min",
                  file=sys.stderr, flush=True)
    results.setdefault("wall_s", time.perf_counter() - t0)
    path.write_text(json.dumps(results, indent=1))
    results["greedy"] = greedy_check(results, args)
    path.write_text(json.dumps(results, indent=1))
    plot(results, args.out / "signature.png")
    (args.out / "signature.md").write_text(table(results) + "\n")
    print(table(results))
    print(json.dumps(headline(results)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
