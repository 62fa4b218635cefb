"""Environment throughput: agentgym's maze and Sokoban against Gymnasium and GEM.

Everything runs on one core, one measurement after another, in the same run:

* Gymnasium ``FrozenLake-v1`` (``gym.make``, pre-drawn random actions, resets included);
* maze (``maze-medium/v0``): ``env.step(env.oracle_action())``, so action parsing and the
  oracle are included. ``fixed`` replays one layout per repeat (as FrozenLake replays its
  fixed map); ``generated`` draws a fresh maze at every reset;
* Sokoban (``sokoban-medium/v0``: 6x6, 2 boxes, ``max_turns=20`` as GEM's
  ``game:Sokoban-v0-easy``), a fresh board at every reset, with the oracle policy and
  with GEM's own policy (uniformly random moves);
* GEM ``game:Sokoban-v0-easy`` with its ``sample_random_action()``, resets included. GEM
  (PyPI ``gem-llm``) is never an agentgym dependency: it lives in its own virtualenv,
  ``.bench-venv-gem`` (created on first use), and runs in a subprocess.

Figures are medians over ``--repeats``. The last line is one JSON object.

    python benchmarks/env_throughput.py [--repeats 5] [--no-gem]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GEM_VENV = ROOT / ".bench-venv-gem"

GEM_SCRIPT = r"""
import json, sys, time
import gem
steps, repeats = int(sys.argv[1]), int(sys.argv[2])
env = gem.make("game:Sokoban-v0-easy")
env.reset(seed=0)
rates, resets_ms = [], []
for rep in range(repeats):
    n = episodes = 0
    t = time.perf_counter()
    while n < steps:
        _, _, terminated, truncated, _ = env.step(env.sample_random_action())
        n += 1
        if terminated or truncated:
            env.reset()
            episodes += 1
    rates.append(n / (time.perf_counter() - t))
    t = time.perf_counter()
    for _ in range(10):
        env.reset()
    resets_ms.append((time.perf_counter() - t) / 10 * 1e3)
print(json.dumps({"rates": rates, "reset_ms": resets_ms, "steps_per_episode": n / max(episodes, 1)}))
"""


def frozenlake(steps: int) -> float:
    import gymnasium as gym

    env = gym.make("FrozenLake-v1")
    env.reset(seed=0)
    rng = random.Random(0)
    actions = [rng.randrange(4) for _ in range(steps)]
    t = time.perf_counter()
    for a in actions:
        _, _, terminated, truncated, _ = env.step(a)
        if terminated or truncated:
            env.reset()
    return steps / (time.perf_counter() - t)


def run_policy(env, steps: int, policy: str, fixed_task=None, seed: int = 0) -> tuple[float, float]:
    """Steps/s including resets, and steps per episode."""
    rng = random.Random(seed)
    moves = ("up", "down", "left", "right")
    options = {"task": fixed_task} if fixed_task is not None else None
    env.reset(seed=seed, options=options)
    n = episodes = 0
    t = time.perf_counter()
    while n < steps:
        action = env.oracle_action() if policy == "oracle" else rng.choice(moves)
        _, _, terminated, truncated, _ = env.step(action)
        n += 1
        if terminated or truncated:
            env.reset(options=options)
            episodes += 1
    return n / (time.perf_counter() - t), n / max(episodes, 1)


def reset_ms(env, count: int = 200) -> float:
    t = time.perf_counter()
    for _ in range(count):
        env.reset()
    return (time.perf_counter() - t) / count * 1e3


def gem_sokoban(steps: int, repeats: int) -> dict | None:
    python = GEM_VENV / "bin" / "python"
    if not python.exists():
        print(f"creating {GEM_VENV} with gem-llm (first run only)...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(GEM_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "gem-llm", "requests"], check=True)
    out = subprocess.run([str(python), "-c", GEM_SCRIPT, str(steps), str(repeats)],
                         capture_output=True, text=True)
    if out.returncode != 0:
        print(f"GEM run failed:\n{out.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20_000, help="steps per repeat (maze, FrozenLake)")
    parser.add_argument("--sokoban-steps", type=int, default=4_000)
    parser.add_argument("--gem-steps", type=int, default=1_000)
    parser.add_argument("--no-gem", action="store_true", help="skip GEM (no virtualenv is created)")
    parser.add_argument("--families", default="alfworld,webshop",
                        help="also run these environment families' throughput benchmarks "
                             "(throughput_<name>.py, each against its own peer); '' for none")
    args = parser.parse_args()

    import agentgym

    med = statistics.median
    fl, maze_fixed, maze_gen, maze_eplen = [], [], [], []
    sok_oracle, sok_random, sok_eplen = [], [], []
    maze = agentgym.make("maze-medium/v0")
    sokoban = agentgym.make("sokoban-medium/v0", max_turns=20)
    for rep in range(args.repeats):
        fl.append(frozenlake(args.steps))
        rate, _ = run_policy(maze, args.steps, "oracle", fixed_task=maze.generate_task(rep), seed=rep)
        maze_fixed.append(rate)
        rate, eplen = run_policy(maze, args.steps, "oracle", seed=rep)
        maze_gen.append(rate)
        maze_eplen.append(eplen)
        rate, eplen = run_policy(sokoban, args.sokoban_steps, "oracle", seed=rep)
        sok_oracle.append(rate)
        sok_eplen.append(eplen)
        sok_random.append(run_policy(sokoban, args.sokoban_steps, "random", seed=rep)[0])
    maze_reset = med(reset_ms(maze) for _ in range(3))
    sok_reset = med(reset_ms(sokoban) for _ in range(3))
    gem = None if args.no_gem else gem_sokoban(args.gem_steps, args.repeats)

    fl_rate = med(fl)
    rows = [
        ("FrozenLake-v1 (gym.make, random actions)", fl_rate, ""),
        ("maze-medium, fixed layout, oracle", med(maze_fixed), ""),
        ("maze-medium, new maze each reset, oracle", med(maze_gen),
         f"{med(maze_eplen):.1f} steps/episode, reset {maze_reset:.3f} ms"),
        ("sokoban-medium 6x6/2 boxes, oracle", med(sok_oracle),
         f"{med(sok_eplen):.1f} steps/episode, reset {sok_reset:.3f} ms"),
        ("sokoban-medium 6x6/2 boxes, random moves", med(sok_random), ""),
    ]
    if gem:
        rows.append(("GEM game:Sokoban-v0-easy, random moves", med(gem["rates"]),
                     f"{gem['steps_per_episode']:.1f} steps/episode, reset {med(gem['reset_ms']):.2f} ms"))
    for name, rate, note in rows:
        print(f"{name:<46} {rate:>10,.0f} steps/s  ({1e6 / rate:6.1f} us/step)  {note}")

    result = {
        "bench": "env_throughput",
        "repeats": args.repeats,
        "frozenlake_steps_per_s": round(fl_rate),
        "maze_steps_per_s": round(med(maze_fixed)),
        "maze_cost_ratio": round(fl_rate / med(maze_fixed), 2),
        "maze_generated_steps_per_s": round(med(maze_gen)),
        "maze_generated_cost_ratio": round(fl_rate / med(maze_gen), 2),
        "maze_reset_ms": round(maze_reset, 4),
        "sokoban_steps_per_s": round(med(sok_oracle)),
        "sokoban_random_steps_per_s": round(med(sok_random)),
        "sokoban_reset_ms": round(sok_reset, 3),
    }
    if gem:
        gem_rate = med(gem["rates"])
        result.update({
            "gem_sokoban_steps_per_s": round(gem_rate),
            "gem_sokoban_reset_ms": round(med(gem["reset_ms"]), 2),
            "sokoban_vs_gem": round(med(sok_oracle) / gem_rate, 1),
            "sokoban_random_vs_gem": round(med(sok_random) / gem_rate, 1),
        })
    for family in filter(None, (f.strip() for f in args.families.split(","))):
        result[family] = family_figures(family)
    print(json.dumps(result))


def family_figures(family: str) -> dict:
    """``benchmarks/throughput_<family>.py``'s ``measure()`` with its defaults; a family whose
    packages are missing is reported as skipped, with the reason."""
    import importlib.util

    path = Path(__file__).with_name(f"throughput_{family}.py")
    if not path.exists():
        raise SystemExit(f"no benchmark {path.name} for --families {family}")
    spec = importlib.util.spec_from_file_location(f"throughput_{family}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
        figures = module.measure()
    except ImportError as exc:
        print(f"{family}: skipped ({exc})", file=sys.stderr)
        return {"skipped": str(exc)}
    print(f"{family}: {json.dumps(figures)[:300]}", file=sys.stderr)
    return figures


if __name__ == "__main__":
    main()
