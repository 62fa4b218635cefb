"""ALFWorld reset and step latency: agentgym's env against alfworld's own ``AlfredTWEnv``.

Both play the same games (the shipped set, written out complete, domain and grammar included,
in the official layout so ``AlfredTWEnv`` reads them as it reads the official data) and replay
the same commands (each game's expert walkthrough) in the same process, one game after the
other, interleaved:

* raw: ``AlfredTWEnv(config, "eval_out_of_distribution").init_env(1)``, i.e. textworld.gym over
  ``PddlEnv`` with alfworld's ``AlfredDemangler`` and ``AlfredInfos`` wrappers. Each
  ``reset()`` loads the next game of its shuffled cycle (parse the grammar, translate the PDDL)
  and starts it: a cold reset, the only kind it has;
* agentgym: ``agentgym.make("alfworld/v0").reset(options={"task": ...})`` and ``step(command)``
  (reply parsing, the engine step, expert bookkeeping, the observation text). A warm reset
  uses a game prepared earlier in the process (what every episode after a game's first gets);
  the cold one (first episode of a game in the process) is shown too.

Latencies are p50 / p99 in milliseconds over all resets and steps of ``--repeats`` passes.
Figures: ``step_overhead`` = agentgym step p50 / raw step p50 (target <= 1.10) and
``reset_speedup`` = raw reset p50 / agentgym warm reset p50 (target >= 5). RSS growth per 100
resets is reported for both (textworld has an open report of a leak in ``reset()``).

    python benchmarks/throughput_alfworld.py [--games 18] [--repeats 3]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def _rss_mb() -> float:
    try:
        with open(f"/proc/{os.getpid()}/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return float("nan")


def write_complete_games(split: str, count: int, out: Path) -> list:
    """The first ``count`` shipped games of ``split``, as complete official-layout files under ``out``."""
    from envs.alfworld.games import JSON_DIR, SHIPPED_ROOT, list_games, read_game

    games = list_games(SHIPPED_ROOT, split)[:count]
    for game in games:
        target = out / JSON_DIR / game.id
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(game.path.parent / "traj_data.json", target / "traj_data.json")
        (target / "game.tw-pddl").write_text(json.dumps(read_game(game.path)), encoding="utf-8")
    return games


def _raw_env(data: Path, split_dir: str):
    from alfworld.agents.environment.alfred_tw_env import AlfredTWEnv

    config = {
        "env": {"goal_desc_human_anns_prob": 0, "task_types": [1, 2, 3, 4, 5, 6], "domain_randomization": False,
                "expert_type": "handcoded"},
        "dataset": {"data_path": str(data), "eval_id_data_path": str(data), "eval_ood_data_path": str(data / split_dir),
                    "num_train_games": -1, "num_eval_games": -1},
        "general": {"training_method": "dagger"},
        "dagger": {"training": {"max_nb_steps_per_episode": 50}},
    }
    import contextlib

    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull), contextlib.redirect_stderr(devnull):
        return AlfredTWEnv(config, train_eval="eval_out_of_distribution").init_env(batch_size=1)


def measure(games: int = 18, repeats: int = 3, split: str = "train") -> dict:
    """Run both sides on the same games; returns the figures (latencies in ms)."""
    import agentgym
    from envs.alfworld.games import JSON_DIR, read_game

    tmp = Path(tempfile.mkdtemp(prefix="alfworld-bench-"))
    try:
        chosen = write_complete_games(split, games, tmp)
        walks = {g.id: read_game(g.path)["walkthrough"] for g in chosen}
        raw = _raw_env(tmp, f"{JSON_DIR}/{split}")
        ours = agentgym.make("alfworld/v0", data_dir=str(tmp), split="train" if split == "train" else "test",
                             eval_split=split if split != "train" else "valid_unseen")
        tasks = {t.id: t for t in ours._task_list}
        raw_reset, raw_step, our_reset, our_cold, our_step = [], [], [], [], []
        rss = {"raw": 0.0, "ours": 0.0}
        for rep in range(repeats):
            for _ in range(len(chosen)):
                before = _rss_mb()
                t = time.perf_counter()
                _, infos = raw.reset()
                raw_reset.append((time.perf_counter() - t) * 1e3)
                game_file = Path(infos["extra.gamefile"][0])
                game_id = game_file.parent.relative_to(tmp / JSON_DIR).as_posix()
                for command in walks[game_id]:
                    t = time.perf_counter()
                    raw.step([command])
                    raw_step.append((time.perf_counter() - t) * 1e3)
                if rep:
                    rss["raw"] += _rss_mb() - before
                before = _rss_mb()
                t = time.perf_counter()
                ours.reset(options={"task": tasks[game_id]})
                (our_reset if rep else our_cold).append((time.perf_counter() - t) * 1e3)
                for command in walks[game_id]:
                    t = time.perf_counter()
                    ours.step(command)
                    our_step.append((time.perf_counter() - t) * 1e3)
                if rep:
                    rss["ours"] += _rss_mb() - before
            gc.collect()
        raw.close()
        ours.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    resets_measured = max(1, (repeats - 1) * len(chosen))
    result = {
        "games": len(chosen),
        "repeats": repeats,
        "raw_reset_ms_p50": statistics.median(raw_reset),
        "raw_reset_ms_p99": _pct(raw_reset, 0.99),
        "raw_step_ms_p50": statistics.median(raw_step),
        "raw_step_ms_p99": _pct(raw_step, 0.99),
        "agentgym_reset_warm_ms_p50": statistics.median(our_reset) if our_reset else None,
        "agentgym_reset_warm_ms_p99": _pct(our_reset, 0.99) if our_reset else None,
        "agentgym_reset_cold_ms_p50": statistics.median(our_cold),
        "agentgym_step_ms_p50": statistics.median(our_step),
        "agentgym_step_ms_p99": _pct(our_step, 0.99),
        "steps_per_side": len(our_step),
        "raw_rss_mb_per_100_resets": rss["raw"] / resets_measured * 100,
        "agentgym_rss_mb_per_100_resets": rss["ours"] / resets_measured * 100,
    }
    result["step_overhead"] = result["agentgym_step_ms_p50"] / result["raw_step_ms_p50"]
    if our_reset:
        result["reset_speedup"] = result["raw_reset_ms_p50"] / result["agentgym_reset_warm_ms_p50"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--games", type=int, default=18, help="shipped games to play (default 18)")
    parser.add_argument("--repeats", type=int, default=3, help="passes over the games; the first is cold (default 3)")
    parser.add_argument("--split", default="train", choices=["train", "valid_seen", "valid_unseen"])
    args = parser.parse_args()
    if args.repeats < 2:
        parser.error("--repeats must be at least 2 (the first pass prepares the games)")
    r = measure(args.games, args.repeats, args.split)
    print(f"ALFWorld, {r['games']} games x {r['repeats']} passes, {r['steps_per_side']} steps per side (ms, p50 / p99)")
    print(f"  reset  raw AlfredTWEnv {r['raw_reset_ms_p50']:8.2f} / {r['raw_reset_ms_p99']:8.2f}   "
          f"agentgym warm {r['agentgym_reset_warm_ms_p50']:6.2f} / {r['agentgym_reset_warm_ms_p99']:6.2f}   "
          f"cold {r['agentgym_reset_cold_ms_p50']:.1f}   speed-up {r['reset_speedup']:.1f}x")
    print(f"  step   raw AlfredTWEnv {r['raw_step_ms_p50']:8.2f} / {r['raw_step_ms_p99']:8.2f}   "
          f"agentgym {r['agentgym_step_ms_p50']:6.2f} / {r['agentgym_step_ms_p99']:6.2f}   "
          f"ratio {r['step_overhead']:.3f}")
    print(f"  RSS per 100 resets: raw {r['raw_rss_mb_per_100_resets']:+.1f} MB, "
          f"agentgym {r['agentgym_rss_mb_per_100_resets']:+.1f} MB")
    print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()}))


if __name__ == "__main__":
    main()
