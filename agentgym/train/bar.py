"""The training progress bar: one line per run, the step's headline metrics and warnings."""

from __future__ import annotations

import sys
from typing import Any


def progress_bar(enabled: bool, total: int, initial: int):
    """A tqdm bar over the run's steps on stderr, or None when disabled."""
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc="train", unit="step", file=sys.stderr, dynamic_ncols=True)


def update_bar(bar, metrics: dict[str, Any]) -> None:
    """Advance one step; the postfix shows the step's headline metrics and any active warning."""
    if bar is None:
        return
    bar.update(1)
    shown = {
        "reward": metrics.get("reward/mean"),
        "succ": metrics.get("success/mean"),
        "loss": metrics.get("loss"),
        "kl": metrics.get("kl"),
        "clip": metrics.get("clip_fraction"),
        "gen_s": metrics.get("time/generation_s"),
        "train_s": metrics.get("time/train_s"),
        "stale": metrics.get("staleness/mean"),
    }
    postfix = {k: f"{v:.3g}" for k, v in shown.items() if isinstance(v, (int, float))}
    warnings = [k.removeprefix("warn/") for k, v in metrics.items() if k.startswith("warn/") and v]
    if warnings:  # agentgym.train.health: also logged and in metrics.jsonl
        postfix["WARN"] = ",".join(warnings)
    bar.set_postfix(postfix, refresh=False)
