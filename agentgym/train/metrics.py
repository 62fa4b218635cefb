"""Per-step metrics: what a batch of episodes did, JSONL (the record), TensorBoard (to watch),
a learning-curve PNG.

``metrics.jsonl`` holds one JSON object per learner step (``{"step": 3, "reward/mean":
..., ...}``) and one per evaluation (``{"step": 10, "kind": "eval", ...}``). On resume
from step ``s`` the lines after ``s`` (written after the last checkpoint, before a
crash) are dropped, so the file always describes the run that actually continued.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from agentgym.rollout.trajectory import Trajectory
from agentgym.train.config import EnvEntry

METRICS_FILE = "metrics.jsonl"


def rollout_metrics(groups: Sequence[Sequence[Trajectory]], version: int, envs: list[EnvEntry]) -> dict[str, Any]:
    """Reward (the scored total; ``reward/env_mean`` the env's own), success, lengths and staleness
    of one step's episodes, overall and per env."""
    flat = [t for g in groups for t in g]
    out: dict[str, Any] = {}
    if not flat:
        return out
    rewards = np.asarray([t.score for t in flat], dtype=np.float64)
    out["reward/mean"] = float(rewards.mean())
    out["reward/std"] = float(rewards.std())
    out["reward/env_mean"] = float(np.mean([t.reward for t in flat]))
    out["success/mean"] = float(np.mean([t.success for t in flat]))
    out["episodes"] = len(flat)
    out["episode/turns"] = float(np.mean([t.num_turns for t in flat]))
    out["episode/truncated"] = float(np.mean([t.status == "truncated" for t in flat]))
    out["tokens/generated"] = int(sum(t.num_sampled_tokens for t in flat))
    out["tokens/per_episode"] = float(np.mean([len(t.token_ids) for t in flat]))
    staleness = [version - t.policy_version for t in flat]
    out["staleness/mean"] = float(np.mean(staleness))
    out["staleness/max"] = int(max(staleness))
    if len(envs) > 1:
        for entry in envs:
            mine = [t for t in flat if t.metadata.get("env") == entry.label]
            if mine:
                out[f"env/{entry.label}/reward"] = float(np.mean([t.score for t in mine]))
                out[f"env/{entry.label}/success"] = float(np.mean([t.success for t in mine]))
                out[f"env/{entry.label}/episodes"] = len(mine)
    return out


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class MetricsLogger:
    """Writes step metrics to JSONL and (optionally) TensorBoard."""

    def __init__(self, run_dir: str | Path, *, tensorboard: bool = True, resume_step: int | None = None):
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.run_dir / METRICS_FILE
        if resume_step is not None:
            truncate_after(self.path, resume_step)
        elif self.path.exists():
            self.path.unlink()
        self._fh = self.path.open("a", encoding="utf-8")
        self._tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # pragma: no cover - tensorboard is part of the train extra
                SummaryWriter = None
            if SummaryWriter is not None:
                purge = resume_step + 1 if resume_step is not None else None
                self._tb = SummaryWriter(str(self.run_dir / "tensorboard"), purge_step=purge)

    def log(self, step: int, metrics: dict[str, Any], kind: str = "train") -> None:
        record = {"step": step, "kind": kind, **{k: _clean(v) for k, v in metrics.items()}}
        self._fh.write(json.dumps(record) + "\n")
        self._fh.flush()
        if self._tb is not None:
            prefix = "" if kind == "train" else f"{kind}/"
            for key, value in metrics.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                    self._tb.add_scalar(prefix + key, value, step)
            self._tb.flush()

    def close(self) -> None:
        self._fh.close()
        if self._tb is not None:
            self._tb.close()


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """All records of a metrics file; a torn last line is skipped."""
    out = []
    path = Path(path)
    if not path.exists():
        return out
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def truncate_after(path: Path, step: int) -> None:
    """Keep only records with ``step <= step`` (atomic rewrite)."""
    if not path.exists():
        return
    keep = [r for r in read_metrics(path) if r.get("step", 0) <= step]
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for r in keep:
            fh.write(json.dumps(r) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)


def plot_learning_curve(run_dir: str | Path, out: str | Path | None = None, smooth: int = 5) -> Path | None:
    """Training reward/success per step (raw and moving average) and eval success with 95% CIs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    run_dir = Path(run_dir)
    records = read_metrics(run_dir / METRICS_FILE)
    train = [r for r in records if r.get("kind") == "train"]
    evals = [r for r in records if r.get("kind") == "eval"]
    if not train and not evals:
        return None
    fig, ax = plt.subplots(figsize=(7, 4))
    if train:
        steps = [r["step"] for r in train]
        for key, colour in (("reward/mean", "tab:blue"), ("success/mean", "tab:green")):
            values = [r.get(key) for r in train]
            if all(v is None for v in values):
                continue
            values = [float("nan") if v is None else v for v in values]
            ax.plot(steps, values, color=colour, alpha=0.25, linewidth=1)
            ax.plot(steps, _moving_average(values, smooth), color=colour, label=f"train {key.split('/')[0]}")
    if evals:
        steps = [r["step"] for r in evals]
        rates = [r.get("success_rate", float("nan")) for r in evals]
        lo = [r.get("success_ci_low", rate) for r, rate in zip(evals, rates)]
        hi = [r.get("success_ci_high", rate) for r, rate in zip(evals, rates)]
        err = [[max(0.0, r - l) for r, l in zip(rates, lo)], [max(0.0, h - r) for r, h in zip(rates, hi)]]
        ax.errorbar(steps, rates, yerr=err, fmt="o-", color="tab:red", capsize=3, label="eval success (95% CI)")
    ax.set_xlabel("learner step")
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))  # steps are whole: no 1.2, 1.4
    ax.set_ylabel("rate / reward")
    top = max([1.0] + [r.get("reward/mean") or 0.0 for r in train])
    ax.set_ylim(-0.02, top * 1.02 + 0.0)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    ax.set_title(run_dir.name)
    fig.tight_layout()
    out = Path(out) if out else run_dir / "learning_curve.png"
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def _moving_average(values: list[float], window: int) -> list[float]:
    out = []
    for i in range(len(values)):
        chunk = [v for v in values[max(0, i - window + 1) : i + 1] if v == v]
        out.append(sum(chunk) / len(chunk) if chunk else float("nan"))
    return out
