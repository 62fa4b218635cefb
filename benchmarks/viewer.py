"""`agentgym view` on a large run: 10,000 trajectories, list and pages timed over HTTP and in chromium.

The run is generated here with the real ``Trajectory`` writer, each line the size of a real
SmolLM2 maze episode (about 11 KB: 3 turns, ~550 token ids with masks and log-probs), in two
layouts: an eval run (one ``trajectories.jsonl``) and a training run (100 step files of 100).
Each measurement starts a fresh ``agentgym view`` server process:

* open the list, cold: the run page's fragments (run, header, results, first list page) with no
  saved index; warm: the same in a new process that finds the index saved by the first;
* any page: plain pages at random offsets, filtered pages (failed episodes) at random offsets,
  one episode turn by turn; the first filtered page on a cold server builds every summary;
* text search: the first query over all lines, then the same query again (cached);
* in chromium (when playwright and Debian's chromium are installed): from navigation to the
  first list rows on the page, cold and warm.

The peer, measured in the same run: the naive viewer, which reads the whole file into
``Trajectory`` objects (``agentgym.rollout.trajectory.read_jsonl``, as ``agentgym trajectories
show`` does) and slices a page; its time to a first page and its memory. Medians over
``--repeats``; the last line is one JSON object.

    python benchmarks/viewer.py [--n 10000] [--repeats 3] [--no-browser]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SERVER = r"""
import argparse, sys
from pathlib import Path
from agentgym.view import cli
args = argparse.Namespace(runs=[Path(sys.argv[1])], port=0, host="127.0.0.1", export=None, episodes=0,
                          poll=5.0, no_cache=False)
sys.exit(cli.run(args))
"""

NAIVE = r"""
import json, resource, sys, time
from pathlib import Path
from agentgym.rollout.trajectory import read_jsonl
t = time.perf_counter()
trajs = [t for f in sorted(Path(sys.argv[1]).rglob("*.jsonl")) for t in read_jsonl(f)]
page = [(t.id, t.task_id, t.reward, t.success) for t in trajs[5000:5050]]
elapsed = time.perf_counter() - t
rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"s": elapsed, "n": len(trajs), "rss_mb": rss_mb}))
"""

MAZE = "#.#.#.\n#A..#.\n#.#..#\n#...G#\n######\n"


def make_trajectory(i: int, rng: random.Random):
    from agentgym.rollout.trajectory import Trajectory, Turn

    success = rng.random() < 0.3
    guided = rng.random() < 0.2
    n_prompt, turns, messages = (
        420,
        [],
        [
            {"role": "system", "content": "You walk mazes. Reply with one move."},
            {"role": "user", "content": f"Maze {i}:\n{MAZE * 3}Where do you go?"},
        ],
    )
    ids = [rng.getrandbits(15) for _ in range(n_prompt)]
    mask, logps = [0] * n_prompt, [0.0] * n_prompt
    for t in range(3):
        start = len(ids)
        sampled = [rng.getrandbits(15) for _ in range(8)]
        ids += sampled
        mask += [1] * 8
        logps += [-rng.random() * 3 for _ in range(8)]
        obs = {
            "role": "user",
            "content": f"You moved. {MAZE}"
            if t < 2
            else ("You reached the goal." if success else "Turn limit reached."),
        }
        turns.append(
            Turn(
                action="right 2",
                observation=obs,
                reward=float(success and t == 2),
                info={"turn": t + 1, "progress": rng.random()},
                start=start,
                end=len(ids),
                generation_s=rng.random(),
                env_s=0.001,
                num_tokens=8,
            )
        )
        messages += [{"role": "assistant", "content": "right 2"}, obs]
        if t < 2:
            ids += [rng.getrandbits(15) for _ in range(40)]
            mask += [0] * 40
            logps += [0.0] * 40
    meta = {"env": "maze-medium/v0", "step": i // 100, "sample": i % 8}
    if guided:
        meta.update(
            guided=True, guidance={"text": "Next moves: down, right 2.", "mode": "append", "kind": "hint"}
        )
    return Trajectory(
        id=f"{i:032x}",
        env_id="maze-medium/v0",
        task_id=f"maze-medium-6x6-s0-{i // 8}",
        group_id=f"g{i // 8}",
        messages=messages,
        token_ids=ids,
        loss_mask=mask,
        logprobs=logps,
        turns=turns,
        reward=float(success),
        success=success,
        status="completed" if success else "truncated",
        timings={"wall_s": rng.random() * 3},
        metadata=meta,
    )


def make_runs(root: Path, n: int) -> tuple[Path, Path]:
    """The same trajectories as an eval run (one file) and a training run (100 step files)."""
    rng = random.Random(0)
    lines = [json.dumps(make_trajectory(i, rng).to_dict(), ensure_ascii=False) + "\n" for i in range(n)]
    eval_run = root / "eval-large"
    eval_run.mkdir(parents=True)
    (eval_run / "trajectories.jsonl").write_text("".join(lines), encoding="utf-8")
    (eval_run / "run.json").write_text(json.dumps({"suite": "bench", "policy": "scripted:random"}))
    train_run = root / "train-large"
    (train_run / "trajectories").mkdir(parents=True)
    (train_run / "config.yaml").write_text("envs: [{id: maze-medium/v0}]\ntrainer: {steps: 100}\n")
    per = max(1, n // 100)
    for s in range(0, n, per):
        path = train_run / "trajectories" / f"step-{s // per + 1:06d}.jsonl"
        path.write_text("".join(lines[s : s + per]), encoding="utf-8")
    with (train_run / "metrics.jsonl").open("w") as fh:
        for s in range(1, n // per + 1):
            fh.write(
                json.dumps({"step": s, "kind": "train", "reward/mean": s / 100, "success/mean": s / 100})
                + "\n"
            )
    return eval_run, train_run


class Server:
    """A fresh ``agentgym view`` process on a free port, with its own index cache."""

    def __init__(self, run: Path, cache: Path):
        env = {**os.environ, "AGENTGYM_CACHE": str(cache), "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SERVER, str(run)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        line = self.proc.stdout.readline()
        self.url = line.split(" at ")[1].split()[0]

    def get(self, path: str) -> float:
        t = time.perf_counter()
        with urllib.request.urlopen(self.url + path.lstrip("/"), timeout=300) as r:
            r.read()
            assert r.status == 200, path
        return time.perf_counter() - t

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def open_list(server: Server, run_id: str) -> float:
    return sum(
        server.get(p)
        for p in (
            f"/f/run?run={run_id}",
            f"/f/head?run={run_id}",
            f"/f/results?run={run_id}",
            f"/f/episodes?run={run_id}",
        )
    )


def measure(run: Path, n: int, repeats: int, rng: random.Random, cache_root: Path) -> dict:
    run_id = run.name
    cold, warm, pages, filtered, details, builds, searches, searches_again, rss = ([] for _ in range(9))
    for r in range(repeats):
        cache = cache_root / f"{run_id}-{r}"
        server = Server(run, cache)
        try:
            cold.append(open_list(server, run_id))
            pages += [
                server.get(f"/f/episodes?run={run_id}&offset={rng.randrange(n // 50) * 50}")
                for _ in range(10)
            ]
            details += [server.get(f"/f/episode?run={run_id}&at={_where(run, n, rng)}") for _ in range(10)]
        finally:
            server.close()
        server = Server(run, cache_root / f"{run_id}-{r}-filter")
        try:  # a cold server asked for a filtered page: every summary is built now
            builds.append(server.get(f"/f/episodes?run={run_id}&success=no"))
            filtered += [
                server.get(f"/f/episodes?run={run_id}&success=no&offset={rng.randrange(n // 100) * 50}")
                for _ in range(10)
            ]
            searches.append(server.get(f"/f/episodes?run={run_id}&q=reached+the+goal"))
            searches_again.append(server.get(f"/f/episodes?run={run_id}&q=reached+the+goal&offset=50"))
            rss.append(server.rss_mb())
        finally:
            server.close()
        server = Server(run, cache)  # a new process that finds the saved index
        try:
            warm.append(open_list(server, run_id))
            filtered.append(server.get(f"/f/episodes?run={run_id}&success=no&offset=100"))
        finally:
            server.close()
    med = statistics.median
    return {
        "open_list_cold_s": med(cold),
        "open_list_warm_s": med(warm),
        "page_p50_s": med(pages),
        "page_max_s": max(pages),
        "filtered_page_p50_s": med(filtered),
        "filtered_page_max_s": max(filtered),
        "first_filtered_page_cold_s": med(builds),
        "search_first_s": med(searches),
        "search_again_s": med(searches_again),
        "episode_p50_s": med(details),
        "episode_max_s": max(details),
        "server_rss_mb": med(rss),
    }


def _where(run: Path, n: int, rng: random.Random) -> str:
    """A random episode as FILE:LINE."""
    files = len(list((run / "trajectories").glob("*.jsonl"))) if (run / "trajectories").is_dir() else 1
    return f"{rng.randrange(files)}:{rng.randrange(n // files)}"


def naive(run: Path, repeats: int) -> dict:
    runs = []
    for _ in range(repeats):
        out = subprocess.run(
            [sys.executable, "-c", NAIVE, str(run)],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return {
        "naive_first_page_s": statistics.median(r["s"] for r in runs),
        "naive_rss_mb": statistics.median(r["rss_mb"] for r in runs),
    }


def browser(run: Path, repeats: int, cache_root: Path) -> dict | None:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    from agentgym.browser import CHROMIUM_FLAGS, chromium_path
    from agentgym.errors import UserError

    try:
        executable = chromium_path()
    except UserError:
        return None
    cold, warm = [], []
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        for r in range(repeats):
            cache = cache_root / f"browser-{r}"
            for bucket in (cold, warm):
                server = Server(run, cache)
                try:
                    page = chromium.new_page()
                    t = time.perf_counter()
                    page.goto(f"{server.url}#/run/{run.name}")
                    page.wait_for_selector("tr.episode-row", timeout=60_000)
                    bucket.append(time.perf_counter() - t)
                    page.close()
                finally:
                    server.close()
        chromium.close()
    return {"browser_open_cold_s": statistics.median(cold), "browser_open_warm_s": statistics.median(warm)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="trajectories per run (default 10000)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-browser", action="store_true", help="skip the chromium timing")
    args = parser.parse_args()
    rng = random.Random(1)
    root = Path(tempfile.mkdtemp(prefix="agentgym-viewer-bench-"))
    try:
        t = time.perf_counter()
        eval_run, train_run = make_runs(root / "runs", args.n)
        size_mb = (eval_run / "trajectories.jsonl").stat().st_size / 1e6
        print(
            f"generated 2 runs of {args.n} trajectories ({size_mb:.0f} MB each) "
            f"in {time.perf_counter() - t:.0f} s"
        )
        result: dict = {
            "bench": "viewer",
            "trajectories": args.n,
            "file_mb": round(size_mb),
            "repeats": args.repeats,
        }
        for label, run in (("eval", eval_run), ("train", train_run)):
            m = measure(run, args.n, args.repeats, rng, root / "cache")
            for k, v in m.items():
                print(f"{label:<6} {k:<28} {v:8.3f}")
            result.update({f"{label}_{k}": round(v, 3) for k, v in m.items()})
        peer = naive(eval_run, args.repeats)
        for k, v in peer.items():
            print(f"naive  {k:<28} {v:8.3f}")
        result.update({k: round(v, 3) for k, v in peer.items()})
        result["open_list_cold_vs_naive"] = round(
            peer["naive_first_page_s"] / result["eval_open_list_cold_s"], 1
        )
        result["page_vs_naive"] = round(peer["naive_first_page_s"] / result["eval_page_p50_s"], 1)
        if not args.no_browser:
            b = browser(eval_run, args.repeats, root / "cache")
            if b:
                for k, v in b.items():
                    print(f"chromium {k:<26} {v:8.3f}")
                result.update({k: round(v, 3) for k, v in b.items()})
        print(json.dumps(result))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
