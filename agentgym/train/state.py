"""The trainer's own checkpoint files: its state (step, policy version, time so far) and every RNG.

Written next to the learner's weights and optimizer by :func:`agentgym.train.checkpoint.
save_checkpoint` (atomic, checksummed); restored on ``--resume``.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any, Callable

import numpy as np

STATE_FILE = "trainer_state.json"
RNG_FILE = "rng.pt"


def state_files(state: dict[str, Any]) -> dict[str, Callable[[Path], None]]:
    """Writers for the trainer state and the random states of python, numpy and torch."""
    import torch

    rng_state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng_state["cuda"] = torch.cuda.get_rng_state_all()
    return {
        STATE_FILE: lambda p: p.write_text(json.dumps(state, indent=1), encoding="utf-8"),
        RNG_FILE: lambda p: torch.save(rng_state, p),
    }


def restore_state(folder: Path) -> dict[str, Any]:
    """Set every RNG back as saved in ``folder``; returns the trainer state."""
    import torch

    state = json.loads((folder / STATE_FILE).read_text(encoding="utf-8"))
    rng = torch.load(folder / RNG_FILE, weights_only=False)
    random.setstate(rng["python"])
    np.random.set_state(rng["numpy"])
    torch.set_rng_state(rng["torch"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    return state


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
