"""Run folders: what ``agentgym train`` and ``agentgym eval`` write, found and read tolerantly.

A training run holds ``config.yaml``, ``metrics.jsonl`` (one record per learner step and per
evaluation), ``trajectories/step-NNNNNN.jsonl``, ``summary.json`` when it finished, checkpoints,
and its evaluations as eval runs under ``eval/TAG-step-NNNNNN/``. An eval run holds ``run.json``
(suite, policy, sampling), ``trajectories.jsonl`` as episodes finish, and ``results.json`` and
``report.md`` at the end. A trajectories JSONL file on its own is a run too.

A folder that is none of these is searched two levels down (``agentgym view runs/`` shows every
run under it). Nothing here raises for a damaged file: a file that cannot be read counts as
absent, and what is missing is said on the page.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from agentgym.eval.metrics import wilson

Kind = Literal["train", "eval", "file"]
METRICS = "metrics.jsonl"
# An unfinished run written to within this window is shown as live: at least LIVE_S seconds, or three
# of its own steps (a step of a 135M model on a shared CPU takes minutes and writes nothing meanwhile).
LIVE_S = 300.0


@dataclass
class Run:
    """One run the viewer shows (``parent``: the training run that a nested eval belongs to)."""

    id: str
    path: Path
    kind: Kind
    name: str
    parent: str | None = None
    children: list[str] = field(default_factory=list)

    def trajectory_files(self) -> list[Path]:
        """Trajectory JSONL files in the order they were written."""
        if self.kind == "file":
            return [self.path]
        if self.kind == "eval":
            path = self.path / "trajectories.jsonl"
            return [path] if path.is_file() else []
        folder = self.path / "trajectories"
        return sorted(folder.glob("*.jsonl")) if folder.is_dir() else []

    def watched_files(self) -> list[Path]:
        """Files whose change the live page should hear about."""
        if self.kind == "file":
            return [self.path]
        names = (
            ("config.yaml", METRICS, "summary.json") if self.kind == "train" else ("run.json", "results.json")
        )
        return [self.path / n for n in names] + self.trajectory_files()[-2:]


def detect_kind(path: Path) -> Kind | None:
    """What a path holds: a training run, an eval run, a trajectories file, or nothing the viewer reads."""
    if path.is_file():
        return "file" if path.suffix == ".jsonl" else None
    if not path.is_dir():
        return None
    if (path / METRICS).is_file() or (path / "trajectories").is_dir() and (path / "config.yaml").is_file():
        return "train"
    if "envs" in read_yaml(path / "config.yaml"):
        return "train"
    if any((path / n).is_file() for n in ("results.json", "run.json", "trajectories.jsonl")):
        return "eval"
    return None


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from a file, or {} when it is missing, torn or not an object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def read_yaml(path: Path) -> dict[str, Any]:
    """A YAML mapping from a file, or {}."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


class Catalog:
    """The runs named on the command line (and found under them); rescanned as runs appear."""

    def __init__(self, paths: list[Path]):
        self.paths = [Path(p) for p in paths]
        self.runs: dict[str, Run] = {}
        self.warnings: list[str] = []
        self._ids: dict[Path, str] = {}
        self._lock = threading.Lock()
        self.refresh()

    def refresh(self) -> bool:
        """Find runs again; True when one appeared or vanished. Ids stay the same for a path."""
        found: list[tuple[Path, Kind, str, Path | None]] = []
        warnings = []
        for arg in self.paths:
            kind = detect_kind(arg)
            if kind is not None:
                found.append((arg, kind, arg.name or str(arg), None))
                continue
            if not arg.exists():
                warnings.append(f"{arg} does not exist.")
                continue
            below = _runs_below(arg)
            if not below:
                warnings.append(
                    f"{arg} is not a run folder: neither it nor its subfolders hold metrics.jsonl, "
                    "config.yaml, results.json or trajectories.jsonl (pass a folder written by "
                    "`agentgym train` or `agentgym eval`)."
                )
            found += [(p, k, str(p.relative_to(arg)), None) for p, k in below]
        for path, kind, name, _ in list(found):
            if kind == "train":
                evals = path / "eval"
                if evals.is_dir():
                    for sub in sorted(p for p in evals.iterdir() if p.is_dir()):
                        if detect_kind(sub) == "eval":
                            found.append((sub, "eval", f"{name}/eval/{sub.name}", path))
        with self._lock:
            runs: dict[str, Run] = {}
            seen: set[Path] = set()
            for path, kind, name, parent in found:
                key = path.resolve()
                if key in seen:
                    continue
                seen.add(key)
                run_id = self._ids.get(key) or self._new_id(name)
                self._ids[key] = run_id
                parent_id = self._ids.get(parent.resolve()) if parent is not None else None
                runs[run_id] = Run(run_id, path, kind, name, parent_id)
            for run in runs.values():
                if run.parent in runs:
                    runs[run.parent].children.append(run.id)
            changed = list(runs) != list(self.runs)
            self.runs, self.warnings = runs, warnings
        return changed

    def _new_id(self, name: str) -> str:
        base = re.sub(r"[^A-Za-z0-9_.\-/]+", "-", name).strip("-/") or "run"
        run_id, n = base, 2
        taken = set(self._ids.values())
        while run_id in taken:
            run_id, n = f"{base}~{n}", n + 1
        return run_id

    def get(self, run_id: str) -> Run:
        """The run with this id; ValueError (a sentence for the page) when there is none."""
        run = self.runs.get(run_id)
        if run is None:
            raise ValueError(f"no run {run_id!r} here; pick one from the run list")
        return run


def _runs_below(folder: Path, depth: int = 2) -> list[tuple[Path, Kind]]:
    out: list[tuple[Path, Kind]] = []
    try:
        children = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return out
    for child in children:
        kind = detect_kind(child)
        if kind is not None:
            out.append((child, kind))
        elif depth > 1:
            out += _runs_below(child, depth - 1)
    return out


# ----------------------------------------------------------------------------- metrics
class MetricsCache:
    """``metrics.jsonl`` records per run, read again only when the file changed."""

    def __init__(self) -> None:
        self._cache: dict[Path, tuple[tuple[int, int], list[dict[str, Any]]]] = {}
        self._lock = threading.Lock()

    def read(self, run: Run) -> list[dict[str, Any]]:
        """The records of a run's metrics file (torn lines skipped)."""
        path = run.path / METRICS
        try:
            st = path.stat()
        except OSError:
            return []
        sig = (st.st_size, st.st_mtime_ns)
        with self._lock:
            hit = self._cache.get(path)
            if hit is not None and hit[0] == sig:
                return hit[1]
        records = []
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return []
        for line in text.splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a line being written, or a torn one after a crash
            if isinstance(record, dict) and isinstance(record.get("step"), (int, float)):
                records.append(record)
        with self._lock:
            self._cache[path] = (sig, records)
        return records


def train_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The per-step records of a metrics file."""
    return [r for r in records if r.get("kind", "train") == "train"]


def eval_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The evaluation records of a metrics file."""
    return [r for r in records if r.get("kind") == "eval"]


# ----------------------------------------------------------------------------- summaries
@dataclass
class Success:
    """A success rate with its 95% Wilson interval, and what it was measured on."""

    rate: float
    low: float
    high: float
    episodes: int
    label: str


def train_overview(run: Run, records: list[dict[str, Any]]) -> dict[str, Any]:
    """Env, policy, steps, success and state of a training run."""
    config = read_yaml(run.path / "config.yaml")
    summary = read_json(run.path / "summary.json")
    train = train_records(records)
    evals = eval_records(records)
    envs = [str(e.get("name") or e.get("id")) for e in config.get("envs") or [] if isinstance(e, dict)]
    total = (config.get("trainer") or {}).get("steps") if isinstance(config.get("trainer"), dict) else None
    final = summary.get("final_step")
    done = max(int(train[-1]["step"]) if train else 0, int(final) if isinstance(final, (int, float)) else 0)
    success = None
    if evals:
        e = evals[-1]
        n = int(e.get("episodes") or 0)
        rate = float(e.get("success_rate") or 0.0)
        low, high = e.get("success_ci_low"), e.get("success_ci_high")
        if low is None or high is None:
            low, high = wilson(round(rate * n), n)
        success = Success(
            rate, float(low), float(high), n, f"eval ({e.get('tag', 'eval')}) at step {e['step']}"
        )
    elif train and isinstance(train[-1].get("success/mean"), (int, float)):
        t = train[-1]
        n = int(t.get("episodes") or 0)
        rate = float(t["success/mean"])
        low, high = wilson(round(rate * n), n)
        success = Success(rate, low, high, n, f"training episodes of step {t['step']}")
    model = config.get("model") if isinstance(config.get("model"), dict) else {}
    return {
        "envs": envs,
        "policy": str(model.get("policy") or ""),
        "steps": done,
        "total_steps": total,
        "success": success,
        "started": _started(run),
        "live": not summary and _recent(run, _step_s(train)),
        "finished": bool(summary),
        "last_write": _last_write(run),
        "wall_s": summary.get("wall_s"),
    }


def eval_overview(
    run: Run, results: dict[str, Any], counted: tuple[int | None, int] | None
) -> dict[str, Any]:
    """Env, policy, episodes and success of an eval run (``counted``: (wins or None, n) while it runs)."""
    info = read_json(run.path / "run.json")
    envs = list((results.get("envs") or info.get("envs") or {}).keys())
    overall = results.get("overall") if isinstance(results.get("overall"), dict) else None
    success = None
    if overall and isinstance(overall.get("success_rate"), (int, float)):
        low, high = (overall.get("success_ci95") or [None, None])[:2]
        n = int(overall.get("episodes") or 0)
        if low is None or high is None:
            low, high = wilson(int(overall.get("successes") or 0), n)
        success = Success(float(overall["success_rate"]), float(low), float(high), n, "all episodes")
    elif counted is not None and counted[0] is not None and counted[1]:
        wins, n = counted
        low, high = wilson(wins, n)
        success = Success(wins / n, low, high, n, "episodes finished so far")
    return {
        "envs": envs,
        "suite": str(results.get("suite") or info.get("suite") or ""),
        "policy": str(results.get("policy") or info.get("policy") or ""),
        "episodes": int(overall["episodes"]) if overall and "episodes" in overall else (counted or (0, 0))[1],
        "success": success,
        "started": mtime(run.path / "run.json") or mtime(run.path / "trajectories.jsonl"),
        "live": not results and _recent(run),
        "finished": bool(results),
        "last_write": _last_write(run),
    }


def mtime(path: Path) -> float | None:
    """When a file was last written (None when it is not there)."""
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def _started(run: Run) -> float | None:
    """When a training run began: its oldest file (a resume rewrites config.yaml and metrics.jsonl)."""
    files = run.trajectory_files()[:1] + [run.path / "config.yaml", run.path / METRICS]
    evals = run.path / "eval"
    if evals.is_dir():
        files += [p / "run.json" for p in evals.iterdir()]
    times = [t for t in map(mtime, files) if t is not None]
    return min(times) if times else None


def _last_write(run: Run) -> float | None:
    times = [t for t in (mtime(p) for p in run.watched_files()) if t is not None]
    return max(times) if times else None


def _step_s(train: list[dict[str, Any]]) -> float:
    times = [r["time/step_s"] for r in train[-5:] if isinstance(r.get("time/step_s"), (int, float))]
    return max(times) if times else 0.0


def _recent(run: Run, step_s: float = 0.0) -> bool:
    last = _last_write(run)
    return last is not None and time.time() - last < max(LIVE_S, 3 * step_s)


def policy_spec(run: Run, catalog: Catalog) -> str | None:
    """The policy a run's tokens came from (a nested eval uses its training run's model)."""
    if run.kind == "train":
        model = read_yaml(run.path / "config.yaml").get("model")
        return str(model.get("policy")) if isinstance(model, dict) and model.get("policy") else None
    if run.kind == "eval":
        if run.parent is not None and run.parent in catalog.runs:
            return policy_spec(catalog.runs[run.parent], catalog)
        return read_json(run.path / "run.json").get("policy") or read_json(run.path / "results.json").get(
            "policy"
        )
    return None
