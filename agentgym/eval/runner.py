"""Run a suite against a policy: plan episodes, resume, roll out, score, report.

Every episode has a key ``(suite entry, task id, sample index)``. With an output
directory, trajectories stream to ``trajectories.jsonl`` as they finish; a rerun reads
that file back (a torn last line from a crash is cut off), skips keys already finished
and retries failed ones, so an interrupted eval resumes where it stopped.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from agentgym.core.factory import EnvFactory, env_factory
from agentgym.errors import UserError
from agentgym.eval.metrics import summarize
from agentgym.eval.report import REPORT, RESULTS, markdown_table, plot
from agentgym.eval.suite import Suite, draw_tasks, load_suite
from agentgym.policy.base import ActionSource, Policy
from agentgym.rollout.config import RolloutConfig
from agentgym.rollout.engine import EpisodeSpec, RolloutEngine
from agentgym.rollout.trajectory import JsonlSink, Trajectory, read_jsonl
from agentgym.torch_thread import run_on_torch_thread

TRAJECTORIES = "trajectories.jsonl"
RUN_INFO = "run.json"

Key = tuple[str, str, int]


@dataclass
class EvalResult:
    """What :func:`evaluate` returns: the metrics, every trajectory, where the files went."""

    results: dict[str, Any]
    trajectories: list[Trajectory]
    out_dir: Path | None = None

    @property
    def success_rate(self) -> float:
        return float(self.results["overall"]["success_rate"])


def evaluate(suite: str | Path | Suite, policy: Policy | ActionSource | str, **kwargs: Any) -> EvalResult:
    """Synchronous :func:`aevaluate` (for scripts and the CLI); use ``aevaluate`` inside an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise RuntimeError("evaluate() was called inside a running event loop; await aevaluate() instead")

    async def main() -> EvalResult:
        # Blocking environments step in worker threads: give many episodes room to run.
        asyncio.get_running_loop().set_default_executor(concurrent.futures.ThreadPoolExecutor(max_workers=64))
        return await aevaluate(suite, policy, **kwargs)

    return asyncio.run(main())


async def aevaluate(
    suite: str | Path | Suite,
    policy: Policy | ActionSource | str,
    *,
    samples: int | None = None,
    num_tasks: int | None = None,
    max_turns: int | None = None,
    out_dir: str | Path | None = None,
    config: RolloutConfig | None = None,
    engine: RolloutEngine | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
    policy_version: int | None = None,
    progress: bool = True,
    factory: EnvFactory | str | None = None,
) -> EvalResult:
    """Evaluate ``policy`` on ``suite``; see the module docstring for resuming.

    ``policy`` is a :class:`Policy`, an :class:`ActionSource` or a spec for
    :func:`agentgym.policy.load_policy` (``scripted:oracle``, ``hf:PATH``...). Environments
    (and the suite's generated tasks) come from ``factory``, else the suite's ``env_factory``,
    else the local registry; an ``engine`` brings its own. The learner passes its own
    ``engine`` for periodic evaluation.
    """
    suite = (await asyncio.to_thread(load_suite, suite)).with_overrides(
        samples=samples, num_tasks=num_tasks, max_turns=max_turns
    )
    own_factory = engine is None and (factory is None or isinstance(factory, str))
    factory = engine.factory if engine is not None else env_factory(factory or suite.env_factory)
    for entry in suite.envs:  # a wrong id or argument fails now, before a model loads
        await asyncio.to_thread(factory.validate, entry.id, entry.env_kwargs())  # remote: an HTTP call
    own_policy = isinstance(policy, str)
    policy_label = policy if isinstance(policy, str) else getattr(policy, "name", type(policy).__name__)
    if isinstance(policy, str):
        policy = await run_on_torch_thread(_load_policy, policy)
    sampling = suite.sampling_params(temperature=temperature, max_tokens=max_tokens)
    out = Path(out_dir) if out_dir is not None else None
    start = time.perf_counter()
    try:
        plan = await _plan(suite, sampling, factory)
        done: dict[Key, Trajectory] = {}
        if out is not None:
            done = await asyncio.to_thread(_prepare_out_dir, out, suite, policy_label, sampling)
        todo = [s for s in plan if _key(s) not in done or done[_key(s)].status == "failed"]
        owns_engine = engine is None
        if engine is None:
            engine = RolloutEngine(policy, config or RolloutConfig(), factory=factory)
        if policy_version is not None:
            engine.set_policy_version(policy_version)
        new = await _run(engine, todo, out, done, progress, suite.name)
        if owns_engine:
            await engine.aclose()
    finally:
        if own_policy:
            await policy.close()
        if own_factory:
            await factory.aclose()
    finished = {**done, **{_key_of(t): t for t in new}}
    trajs = [finished[_key(s)] for s in plan if _key(s) in finished]
    results = _results(suite, policy_label, trajs, time.perf_counter() - start, len(new), engine)
    if out is not None:
        await asyncio.to_thread(_write_reports, out, results, trajs)
    return EvalResult(results, trajs, out)


def _load_policy(spec: str) -> Policy | ActionSource:
    from agentgym.policy import load_policy

    return load_policy(spec)


async def _plan(suite: Suite, sampling, factory: EnvFactory) -> list[EpisodeSpec]:
    specs: list[EpisodeSpec] = []
    for entry in suite.envs:
        for task in await draw_tasks(entry, suite, factory):
            for sample in range(entry.samples):
                key = (entry.name, task.id, sample)
                specs.append(
                    EpisodeSpec(
                        env_id=entry.id,
                        task=task,
                        env_kwargs=entry.env_kwargs(),
                        seed=_stable_seed(key),
                        group_id=f"{entry.name}|{task.id}",
                        sampling=sampling,
                        metadata={"eval": {"suite": suite.name, "entry": entry.name, "sample": sample}},
                    )
                )
    return specs


def _key(spec: EpisodeSpec) -> Key:
    ev = spec.metadata["eval"]
    return ev["entry"], spec.task.id, ev["sample"]


def _key_of(traj: Trajectory) -> Key:
    ev = traj.metadata.get("eval", {})
    return ev.get("entry", traj.env_id), traj.task_id, int(ev.get("sample", 0))


def _stable_seed(key: Key) -> int:
    return int.from_bytes(hashlib.sha256(repr(key).encode()).digest()[:4], "little") & 0x7FFFFFFF


def _prepare_out_dir(out: Path, suite: Suite, policy_label: str, sampling: Any) -> dict[Key, Trajectory]:
    """Create the run directory or check it holds the same run; return finished episodes.

    More tasks or samples extend a run; other settings that change episodes (policy,
    sampling, turn limits, env arguments) would mix two experiments and are refused.
    """
    out.mkdir(parents=True, exist_ok=True)
    info_path = out / RUN_INFO
    info = {
        "suite": suite.name,
        "policy": policy_label,
        "sampling": asdict(sampling),
        "envs": {e.name: {"id": e.id, "kwargs": e.env_kwargs(), "split": e.split, "seed": e.seed} for e in suite.envs},
    }
    if info_path.exists():
        old = json.loads(info_path.read_text(encoding="utf-8"))
        changed = [k for k in ("suite", "policy", "sampling") if old.get(k) != info[k]]
        changed += [f"envs.{n}" for n, e in info["envs"].items() if n in old.get("envs", {}) and old["envs"][n] != e]
        if changed:
            raise UserError(
                f"{out} holds a run of suite {old.get('suite')!r} with policy {old.get('policy')!r} and other "
                f"settings ({', '.join(changed)} differ); pass another --out to start a new run."
            )
        info["envs"] = {**old.get("envs", {}), **info["envs"]}
    info_path.write_text(json.dumps(info, indent=2, default=str), encoding="utf-8")
    (out / "suite.yaml").write_text(_suite_yaml(suite), encoding="utf-8")
    path = out / TRAJECTORIES
    if not path.exists():
        return {}
    repair_torn_tail(path)
    return {_key_of(t): t for t in read_jsonl(path)}


def repair_torn_tail(path: Path) -> None:
    """Cut a partial last line (a crash mid-write) so appended lines start clean."""
    with path.open("rb+") as fh:
        fh.seek(0, 2)
        size = fh.tell()
        if size == 0:
            return
        fh.seek(size - 1)
        if fh.read(1) == b"\n":
            return
        block = min(size, 1 << 20)
        while True:
            fh.seek(size - block)
            data = fh.read(block)
            cut = data.rfind(b"\n")
            if cut >= 0 or block == size:
                fh.truncate(size - block + cut + 1 if cut >= 0 else 0)
                return
            block = min(size, block * 2)


def _suite_yaml(suite: Suite) -> str:
    import yaml

    return yaml.safe_dump(suite.model_dump(), sort_keys=False)


async def _run(
    engine: RolloutEngine,
    todo: list[EpisodeSpec],
    out: Path | None,
    done: dict[Key, Trajectory],
    progress: bool,
    desc: str,
) -> list[Trajectory]:
    from tqdm import tqdm

    prior = [t for t in done.values() if t.status != "failed"]
    counts = {"n": len(prior), "wins": sum(t.success for t in prior)}
    bar = tqdm(total=len(todo), desc=desc, unit="ep", file=sys.stderr, disable=not progress or not todo, dynamic_ncols=True)
    sink = JsonlSink(out / TRAJECTORIES) if out is not None else None
    turns_before = engine.turns_done

    def show(refresh: bool) -> None:  # turns move while slow episodes are still running
        postfix = {"turns": engine.turns_done - turns_before}
        if counts["n"]:
            postfix["success"] = f"{counts['wins'] / counts['n']:.3f}"
        bar.set_postfix(postfix, refresh=refresh)

    async def finished(traj: Trajectory) -> None:
        if sink is not None:
            await sink(traj)
        counts["n"] += 1
        counts["wins"] += bool(traj.success)
        bar.update(1)
        show(False)

    async def tick() -> None:
        while True:
            await asyncio.sleep(1.0)
            show(True)

    ticker = asyncio.create_task(tick()) if progress and todo else None
    try:
        return await engine.run(todo, on_trajectory=finished)
    finally:
        if ticker is not None:
            ticker.cancel()
        bar.close()


def _results(
    suite: Suite, policy_label: str, trajs: list[Trajectory], wall_s: float, ran: int, engine: RolloutEngine | None
) -> dict[str, Any]:
    by_entry: dict[str, list[Trajectory]] = {e.name: [] for e in suite.envs}
    for t in trajs:
        by_entry[t.metadata["eval"]["entry"]].append(t)
    stats = engine.batcher.stats if engine is not None else None
    return {
        "suite": suite.name,
        "policy": policy_label,
        "policy_version": engine.policy_version if engine is not None else 0,
        "envs": {name: {"env_id": entry.id, **summarize(by_entry[name])} for name, entry in ((e.name, e) for e in suite.envs)},
        "overall": summarize(trajs),
        "wall_s": wall_s,
        "episodes_run": ran,
        "episodes_resumed": len(trajs) - ran,
        "policy_calls": stats.calls if stats else 0,
        "mean_batch": stats.mean_batch if stats else 0.0,
    }


def _write_reports(out: Path, results: dict[str, Any], trajs: list[Trajectory]) -> None:
    (out / RESULTS).write_text(json.dumps(results, indent=2), encoding="utf-8")
    (out / REPORT).write_text(markdown_table(results), encoding="utf-8")
    plot(results, trajs, out)
