"""ALFWorld game files: where they are, which ones a split holds, and what each one asks.

Games live in the official layout, ``<root>/json_2.1.1/<split>/<task>/<trial>/`` with a
``traj_data.json`` (the ALFRED task: type and parameters) and a ``game.tw-pddl`` (JSON: the
PDDL domain, the text grammar, the PDDL problem, ``"solvable"`` and a walkthrough). The root
is, in order: the ``data_dir`` argument, ``$ALFWORLD_DATA`` when it holds ``json_2.1.1``, or
the small set of games shipped with agentgym (``envs/alfworld/data``).

The shipped games are written for this project and leave the domain and grammar out: both
come from the installed ``alfworld`` wheel (``alfred.pddl``, ``alfred.twl2``) and are filled
in when a game is read, with the game's ``goal`` in place of the grammar's ``UNKNOWN GOAL``,
as ``alfworld-generate`` does. Official game files are complete and read as they are.

Games are listed sorted by their path below ``json_2.1.1``, which is also their task id:
the same id always names the same game, whatever the walk order of the file system.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

from agentgym.core.task import Task
from agentgym.errors import UserError

#: ALFWorld's six task types, numbered as in alfworld's configs (``env.task_types``).
TASK_TYPES: dict[int, str] = {
    1: "pick_and_place_simple",
    2: "look_at_obj_in_light",
    3: "pick_clean_then_place_in_recep",
    4: "pick_heat_then_place_in_recep",
    5: "pick_cool_then_place_in_recep",
    6: "pick_two_obj_and_place",
}
#: Short names accepted wherever a task type is asked for.
TASK_TYPE_ALIASES: dict[str, str] = {
    "pick_and_place": "pick_and_place_simple",
    "look_at_obj": "look_at_obj_in_light",
    "examine_in_light": "look_at_obj_in_light",
    "clean": "pick_clean_then_place_in_recep",
    "heat": "pick_heat_then_place_in_recep",
    "cool": "pick_cool_then_place_in_recep",
    "pick_two": "pick_two_obj_and_place",
}
ALFWORLD_SPLITS = ("train", "valid_seen", "valid_unseen")
JSON_DIR = "json_2.1.1"
GAME_FILE = "game.tw-pddl"
TRAJ_FILE = "traj_data.json"
SHIPPED_ROOT = Path(__file__).resolve().parent / "data"
#: alfworld sets $ALFWORLD_DATA to this folder on import when it is unset.
ALFWORLD_DEFAULT_CACHE = Path("~/.cache/alfworld").expanduser()

_GOAL = re.compile(r"Your task is to: (.*?)\.?\"")


@dataclass(frozen=True)
class GameInfo:
    """One playable game: its id (path below ``json_2.1.1``), split, task type and goal."""

    id: str
    split: str
    task_type: str
    goal: str
    path: Path  # the game.tw-pddl file

    def task(self, agentgym_split: str) -> Task:
        """The :class:`Task` naming this game (the goal is what the policy is told)."""
        return Task(
            id=self.id,
            inputs={"game": self.id, "goal": self.goal},
            metadata={"split": agentgym_split, "alfworld_split": self.split, "task_type": self.task_type},
        )


def data_root(data_dir: str | os.PathLike | None = None) -> Path:
    """The folder holding ``json_2.1.1``: ``data_dir``, ``$ALFWORLD_DATA``, or the shipped games.

    ``$ALFWORLD_DATA`` equal to alfworld's own default (``~/.cache/alfworld``) counts as unset:
    importing alfworld sets it to that, so honouring it would make the games depend on import
    order. Pass ``data_dir`` to play data kept there.
    """
    if data_dir is not None:
        root = Path(data_dir).expanduser()
        if not (root / JSON_DIR).is_dir():
            raise UserError(f"data_dir {root} has no {JSON_DIR} folder; point it at ALFWorld's data folder.")
        return root
    env_value = os.environ.get("ALFWORLD_DATA")
    if env_value and Path(env_value).expanduser().resolve() != ALFWORLD_DEFAULT_CACHE.resolve():
        root = Path(env_value).expanduser()
        if not (root / JSON_DIR).is_dir():
            raise UserError(
                f"ALFWORLD_DATA={env_value} has no {JSON_DIR} folder; run `alfworld-download` into it, "
                "or unset ALFWORLD_DATA to play the games shipped with agentgym."
            )
        return root
    return SHIPPED_ROOT


def task_type_name(value: int | str) -> str:
    """The canonical task type for a number (1-6), a full name or a short alias."""
    if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
        number = int(value)
        if number in TASK_TYPES:
            return TASK_TYPES[number]
    elif value in TASK_TYPES.values():
        return value
    elif value in TASK_TYPE_ALIASES:
        return TASK_TYPE_ALIASES[value]
    choices = ", ".join([*TASK_TYPES.values(), *TASK_TYPE_ALIASES])
    raise UserError(f"unknown ALFWorld task type {value!r}; use 1-6 or one of: {choices}.")


def list_games(root: Path, split: str, task_types: Iterable[int | str] | None = None) -> list[GameInfo]:
    """The solvable games of one ALFWorld split, sorted by id, optionally of some task types."""
    if split not in ALFWORLD_SPLITS:
        raise UserError(f"ALFWorld split must be one of {', '.join(ALFWORLD_SPLITS)}, not {split!r}.")
    games = _index(str(root.resolve()), split)
    if task_types is None:
        return list(games)
    wanted = {task_type_name(t) for t in task_types}
    return [g for g in games if g.task_type in wanted]


def game_path(root: Path, game_id: str) -> Path:
    """The ``game.tw-pddl`` file of a game id; a clear error when it is not under ``root``."""
    path = (root / JSON_DIR / game_id / GAME_FILE).resolve()
    if (root / JSON_DIR).resolve() not in path.parents or not path.is_file():
        raise UserError(
            f"ALFWorld game {game_id!r} is not under {root / JSON_DIR}; "
            "pass the data_dir (or ALFWORLD_DATA) that holds it."
        )
    return path


_INDEX_LOCK = threading.Lock()


@cache
def _index_cached(root: str, split: str) -> tuple[GameInfo, ...]:
    split_dir = Path(root) / JSON_DIR / split
    if not split_dir.is_dir():
        return ()
    trial_dirs = sorted(p.parent for p in split_dir.glob(f"*/*/{TRAJ_FILE}"))
    progress = _progress(trial_dirs, f"indexing ALFWorld {split} games") if len(trial_dirs) > 500 else trial_dirs
    games = []
    for trial in progress:
        info = _game_info(Path(root), split, trial)
        if info is not None:
            games.append(info)
    return tuple(sorted(games, key=lambda g: g.id))


def _index(root: str, split: str) -> tuple[GameInfo, ...]:
    with _INDEX_LOCK:  # two envs built at once share one walk of a large data folder
        return _index_cached(root, split)


def _game_info(root: Path, split: str, trial: Path) -> GameInfo | None:
    """A trial folder as a game, or None where alfworld skips it (no game, unsolvable, sliced/movable)."""
    if "movable" in trial.parent.name or "Sliced" in trial.parent.name:
        return None  # alfworld's text games leave these task kinds out
    game_file = trial / GAME_FILE
    if not game_file.is_file():
        return None
    try:
        data = json.loads(game_file.read_text(encoding="utf-8"))
        task_type = _task_type_of(trial)
    except (OSError, ValueError, KeyError) as exc:
        raise UserError(f"{game_file} could not be read ({exc}); fix or remove that game folder.") from exc
    if data.get("solvable") is not True or task_type not in TASK_TYPES.values():
        return None
    game_id = trial.relative_to(root / JSON_DIR).as_posix()
    return GameInfo(game_id, split, task_type, goal_of(data), game_file)


def _task_type_of(trial: Path) -> str:
    name = trial.parent.name.split("-", 1)[0]  # ALFRED names task folders <task_type>-<object>-...
    if name in TASK_TYPES.values():
        return name
    return json.loads((trial / TRAJ_FILE).read_text(encoding="utf-8"))["task_type"]


def goal_of(data: dict) -> str:
    """The goal sentence of a game (our ``goal`` key, or the one the official grammar carries)."""
    if data.get("goal"):
        return str(data["goal"])
    match = _GOAL.search(data.get("grammar", ""))
    return match.group(1) if match else ""


def read_game(path: Path) -> dict:
    """A game file's content, with the domain and grammar from the alfworld wheel where it has none."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"{path} is not a readable ALFWorld game file ({exc}).") from exc
    if "pddl_problem" not in data:
        raise UserError(f"{path} has no pddl_problem; it is not an ALFWorld game file.")
    if "pddl_domain" not in data or "grammar" not in data:
        domain, grammar = _wheel_logic()
        data.setdefault("pddl_domain", domain)
        data.setdefault("grammar", grammar.replace("UNKNOWN GOAL", goal_of(data)))
    return data


@lru_cache(maxsize=1)
def _wheel_logic() -> tuple[str, str]:
    """alfworld's ``alfred.pddl`` and ``alfred.twl2``, found without importing alfworld."""
    from importlib.util import find_spec

    from agentgym.errors import MissingExtraError

    spec = find_spec("alfworld")
    if spec is None or not spec.submodule_search_locations:
        raise MissingExtraError("alfworld", "alfworld", "ALFWorld games")
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    return (data / "alfred.pddl").read_text(encoding="utf-8"), (data / "alfred.twl2").read_text(encoding="utf-8")


def _progress(items: list, desc: str):
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="game")
