"""Write the shipped ALFWorld games from hand-written scenes (``scenes.yaml``).

Each scene names an ALFRED floor plan (its receptacles, in ``rooms``), a task and where
every object starts. This module writes it as an ALFWorld game in the official layout:
``traj_data.json`` (task type and ALFRED parameters, which alfworld's expert reads) and
``game.tw-pddl`` with a PDDL problem in ALFRED's naming (``Mug_bar__minus_01_dot_13_...`` for
``Mug|-01.13|...``, ``loc_bar_...`` locations, ``MugType`` object types), the goal sentence from
alfworld's own goal templates, and ``"solvable": true`` with the walkthrough only after
alfworld's handcoded expert has played the game to a win through the engine. The domain and
grammar are not written: they come from the alfworld wheel when a game is read.

Instance numbers in the scenes are the numbers the game shows: alfworld's demangler numbers
instances of a class from the largest id down, so ids are assigned in that order.

    python -m envs.alfworld.authoring            # (re)write envs/alfworld/data and the suite task files
    python -m envs.alfworld.authoring --check    # fail if the written files differ from the scenes
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from agentgym.errors import UserError
from envs.alfworld.games import GAME_FILE, JSON_DIR, SHIPPED_ROOT, TASK_TYPES, TRAJ_FILE

SCENES = Path(__file__).resolve().parent / "scenes.yaml"
SUITES_DIR = Path(__file__).resolve().parents[2] / "configs" / "suites" / "alfworld"
MAX_EXPERT_STEPS = 40  # a shipped game must be won by the expert well inside the 50-turn limit

OPENABLE = {"Cabinet", "Drawer", "Fridge", "Microwave", "Safe"}
TOGGLEABLE = {"DeskLamp", "FloorLamp"}
HEATABLE = {"Apple", "Bread", "Cup", "Egg", "Mug", "Plate", "Potato", "Tomato"}
COOLABLE = {"Apple", "Bowl", "Bread", "Cup", "Egg", "Lettuce", "Mug", "Pan", "Plate", "Pot", "Potato", "Tomato", "WineBottle"}
CLEANABLE = {
    "Apple", "Bowl", "ButterKnife", "Cloth", "Cup", "DishSponge", "Egg", "Fork", "Kettle", "Knife", "Ladle",
    "Lettuce", "Mug", "Pan", "Plate", "Pot", "Potato", "SoapBar", "Spatula", "Spoon", "Tomato",
}
SLICEABLE = {"Apple", "Bread", "Lettuce", "Potato", "Tomato"}
RECEPTACLE_OBJECTS = {"Bowl", "Cup", "Mug", "Pan", "Plate", "Pot"}  # objects things can be put in
BASINS = {"SinkBasin": "Sink", "BathtubBasin": "Bathtub"}  # ALFRED ids: Sink|x|y|z|SinkBasin


@dataclass
class Scene:
    """One hand-written game: a room, a task and where each object starts."""

    split: str
    task_type: str
    room: str
    receptacles: dict[str, int]
    objects: dict[str, list[str]]  # class -> receptacle ("Cabinet 2") of each instance
    target: dict[str, str]  # object, and parent (a receptacle class) or toggle (a lamp class)
    trial: str = ""
    ids: dict[str, str] = field(default_factory=dict)  # "Cabinet 2" -> ALFRED id

    @property
    def scene_num(self) -> int:
        return int(self.room.removeprefix("FloorPlan"))

    @property
    def task_dir(self) -> str:
        last = self.target.get("parent") or self.target.get("toggle")
        return f"{self.task_type}-{self.target['object']}-None-{last}-{self.scene_num}"

    @property
    def game_id(self) -> str:
        return f"{self.split}/{self.task_dir}/{self.trial}"


def load_scenes(path: Path = SCENES) -> list[Scene]:
    """The scenes of ``scenes.yaml``, each with its trial id and ALFRED ids assigned."""
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    rooms = spec["rooms"]
    scenes = []
    for n, game in enumerate(spec["games"], 1):
        room = rooms[game["room"]]
        objects = {k: list(v) for k, v in room.get("fixed", {}).items()}
        for cls, where in game["objects"].items():
            objects.setdefault(cls, []).extend(where)
        target = {k: game[k] for k in ("object", "parent", "toggle") if k in game}
        scene = Scene(game["split"], game["type"], game["room"], dict(room["receptacles"]), objects, target)
        scene.trial = f"trial_T2026{n:04d}_{zlib.crc32(repr(game).encode()) % 1_000_000:06d}"
        _check(scene)
        scene.ids = _assign_ids(scene)
        scenes.append(scene)
    return scenes


def _check(scene: Scene) -> None:
    from alfworld.gen.constants import VAL_RECEPTACLE_OBJECTS

    where = f"scene {scene.trial} ({scene.task_type} in {scene.room})"
    if scene.task_type not in TASK_TYPES.values():
        raise UserError(f"{where}: unknown task type")
    for cls, places in scene.objects.items():
        for place in places:
            rcls, _, k = place.rpartition(" ")
            if rcls not in scene.receptacles or not 1 <= int(k) <= scene.receptacles[rcls]:
                raise UserError(f"{where}: {cls} is placed in {place}, which the room does not have")
    obj, parent = scene.target["object"], scene.target.get("parent")
    if len(scene.objects.get(obj, [])) < (2 if scene.task_type == "pick_two_obj_and_place" else 1):
        raise UserError(f"{where}: not enough {obj} for the task")
    if parent and obj not in VAL_RECEPTACLE_OBJECTS.get(parent, ()):
        raise UserError(f"{where}: a {obj} cannot go in a {parent}")
    needs = {"pick_heat_then_place_in_recep": HEATABLE, "pick_cool_then_place_in_recep": COOLABLE,
             "pick_clean_then_place_in_recep": CLEANABLE}.get(scene.task_type)
    if needs is not None and obj not in needs:
        raise UserError(f"{where}: a {obj} cannot be {scene.task_type.split('_')[1]}ed")


def _assign_ids(scene: Scene) -> dict[str, str]:
    """ALFRED ids for every receptacle and object instance, numbered as the game will show them."""
    ids: dict[str, str] = {}
    taken: set[str] = set()
    instances = [(cls, n) for cls, n in scene.receptacles.items()]
    instances += [(cls, len(places)) for cls, places in scene.objects.items()]
    for cls, count in instances:
        rng = random.Random(f"{scene.room}:{scene.trial}:{cls}")
        names = set()
        while len(names) < count:
            x, y, z = (rng.uniform(-4, 4) for _ in range(3))
            name = f"{BASINS.get(cls, cls)}|{x:+06.2f}|{abs(y):+06.2f}|{z:+06.2f}"
            if cls in BASINS:
                name += f"|{cls}"
            if _mangle(name).lower() not in taken:
                names.add(name)
        # alfworld's Demangler gives the smallest id the highest number: instance 1 is the largest.
        for k, name in enumerate(sorted(names, key=lambda s: _mangle(s).lower(), reverse=True), 1):
            ids[f"{cls} {k}"] = _mangle(name)
            taken.add(_mangle(name).lower())
    return ids


def _mangle(name: str) -> str:
    """ALFRED's PDDL spelling of an id: ``Mug|-01.13|+00.90`` -> ``Mug_bar__minus_01_dot_13_bar__plus_00_dot_90``."""
    for char, word in (("|", "_bar_"), ("-", "_minus_"), ("+", "_plus_"), (".", "_dot_")):
        name = name.replace(char, word)
    return name


def _location(scene: Scene, key: str, taken: set[str]) -> str:
    digest = hashlib.sha256(f"{scene.trial}:{key}".encode()).digest()
    x, z = digest[0] % 15 - 7, digest[1] % 15 - 7
    rot, horizon = digest[2] % 4, (0, 15, 30, 45, 60)[digest[3] % 5]
    while True:
        loc = _mangle(f"loc|{x}|{z}|{rot}|{horizon}")
        if loc not in taken:
            taken.add(loc)
            return loc
        x += 1


def problem_pddl(scene: Scene) -> str:
    """The scene's PDDL problem for alfworld's ``alfred`` domain."""
    from alfworld.gen.constants import VAL_RECEPTACLE_OBJECTS

    taken: set[str] = set()
    start = _location(scene, "agent", taken)
    recs = [key for key in scene.ids if key.rpartition(" ")[0] in scene.receptacles]
    rec_loc = {key: _location(scene, key, taken) for key in recs}
    objs = [(cls, f"{cls} {k}", place) for cls, places in scene.objects.items() for k, place in enumerate(places, 1)]
    rtypes = sorted(scene.receptacles)
    otypes = sorted(scene.objects)
    init = [f"(atLocation agent1 {start})"]
    for key in recs:
        rcls = key.rpartition(" ")[0]
        init += [f"(receptacleType {scene.ids[key]} {rcls}Type)", f"(receptacleAtLocation {scene.ids[key]} {rec_loc[key]})"]
        if rcls in OPENABLE:
            init.append(f"(openable {scene.ids[key]})")
    for cls, key, place in objs:
        oid = scene.ids[key]
        init += [f"(objectType {oid} {cls}Type)", f"(inReceptacle {oid} {scene.ids[place]})",
                 f"(objectAtLocation {oid} {rec_loc[place]})"]
        for flag, members in (("pickupable", None), ("toggleable", TOGGLEABLE), ("heatable", HEATABLE),
                              ("coolable", COOLABLE), ("cleanable", CLEANABLE), ("sliceable", SLICEABLE),
                              ("isReceptacleObject", RECEPTACLE_OBJECTS)):
            if (members is None and cls not in TOGGLEABLE) or (members is not None and cls in members):
                init.append(f"({flag} {oid})")
    for rcls in rtypes:
        for ocls in otypes:
            if ocls in VAL_RECEPTACLE_OBJECTS.get(rcls, ()):
                init.append(f"(canContain {rcls}Type {ocls}Type)")
    objects = ["agent1 - agent", *(f"{t}Type - otype" for t in otypes), *(f"{t}Type - rtype" for t in rtypes)]
    objects += [f"{scene.ids[k]} - object" for _, k, _ in objs] + [f"{scene.ids[k]} - receptacle" for k in recs]
    objects += [f"{loc} - location" for loc in sorted(taken)]
    return (
        f"(define (problem plan_{scene.trial})\n(:domain alfred)\n(:objects\n    "
        + "\n    ".join(objects)
        + "\n)\n(:init\n    "
        + "\n    ".join(init)
        + f"\n)\n(:goal\n{_goal(scene)}\n)\n)\n"
    )


def _goal(scene: Scene) -> str:
    obj = f"{scene.target['object']}Type"
    if scene.task_type == "look_at_obj_in_light":
        return (
            "    (and\n"
            "        (exists (?ot - object ?r - receptacle ?a - agent ?l - location)\n"
            f"            (and (objectType ?ot {scene.target['toggle']}Type) (toggleable ?ot) (isToggled ?ot)\n"
            "                 (receptacleAtLocation ?r ?l) (atLocation ?a ?l) (inReceptacle ?ot ?r)))\n"
            f"        (exists (?o - object ?a - agent) (and (objectType ?o {obj}) (holds ?a ?o))))"
        )
    rec = f"{scene.target['parent']}Type"
    if scene.task_type == "pick_two_obj_and_place":
        return (
            "    (exists (?r - receptacle ?o1 - object ?o2 - object)\n"
            f"        (and (receptacleType ?r {rec}) (objectType ?o1 {obj}) (objectType ?o2 {obj})\n"
            "             (not (= ?o1 ?o2)) (inReceptacle ?o1 ?r) (inReceptacle ?o2 ?r)))"
        )
    state = {"pick_clean_then_place_in_recep": "(isClean ?o)", "pick_heat_then_place_in_recep": "(isHot ?o)",
             "pick_cool_then_place_in_recep": "(isCool ?o)"}.get(scene.task_type, "")
    return (
        "    (exists (?r - receptacle ?o - object)\n"
        f"        (and (receptacleType ?r {rec}) (objectType ?o {obj}) (inReceptacle ?o ?r){' ' + state if state else ''}))"
    )


def goal_text(scene: Scene) -> str:
    """The goal from alfworld's templates (alfworld-generate draws one at random; here by trial id)."""
    from alfworld.gen.goal_library import gdict

    templates = gdict[scene.task_type]["templates"]
    template = templates[zlib.crc32(scene.trial.encode()) % len(templates)]
    fill = {"obj": scene.target["object"].lower(), "recep": scene.target.get("parent", "").lower(),
            "toggle": scene.target.get("toggle", "").lower(), "mrecep": ""}
    return template.format(**fill)


def traj_data(scene: Scene) -> dict[str, Any]:
    """The ALFRED task record alfworld's expert reads (``task_type``, ``pddl_params``)."""
    return {
        "task_id": scene.trial,
        "task_type": scene.task_type,
        "pddl_params": {
            "object_target": scene.target["object"],
            "parent_target": scene.target.get("parent", ""),
            "toggle_target": scene.target.get("toggle", ""),
            "mrecep_target": "",
            "object_sliced": False,
        },
        "scene": {"floor_plan": scene.room, "scene_num": scene.scene_num},
        "source": "written for agentgym (envs/alfworld/scenes.yaml)",
    }


def expert_walkthrough(game_dir: Path) -> list[str]:
    """Play alfworld's handcoded expert on a written game through the engine; its commands to a win."""
    from envs.alfworld import engine
    from envs.alfworld.expert import Expert

    path = game_dir / GAME_FILE
    engine.clear_cache()
    game = engine.prepare(path)
    eng = engine.acquire()
    try:
        state = eng.start(game)
        expert = Expert(str(path), state["feedback"], zlib.crc32(_game_id(game_dir).encode()), game.readable)
        commands = []
        while not state["won"] and len(commands) < MAX_EXPERT_STEPS:
            command = expert.next_action()
            if command is None:
                raise UserError(f"{game_dir}: the expert gave up ({expert.failed}) after {commands}")
            state, _, _ = eng.step(command)
            commands.append(command)
            expert.record(command, state)
        if not state["won"]:
            raise UserError(f"{game_dir}: the expert did not win in {MAX_EXPERT_STEPS} steps: {commands}")
        return commands
    finally:
        engine.release(eng)


def _game_id(game_dir: Path) -> str:
    return "/".join(game_dir.parts[-3:])


def write_games(scenes: list[Scene], root: Path) -> dict[Path, str]:
    """Write every scene under ``root/json_2.1.1``; returns the files written with their text."""
    written: dict[Path, str] = {}
    for scene in scenes:
        game_dir = root / JSON_DIR / scene.game_id
        game_dir.mkdir(parents=True, exist_ok=True)
        traj = json.dumps(traj_data(scene), indent=1) + "\n"
        game = {"goal": goal_text(scene), "pddl_problem": problem_pddl(scene), "solvable": None, "walkthrough": None}
        (game_dir / TRAJ_FILE).write_text(traj, encoding="utf-8")
        (game_dir / GAME_FILE).write_text(json.dumps(game, indent=1) + "\n", encoding="utf-8")
        game["walkthrough"] = expert_walkthrough(game_dir)
        game["solvable"] = True
        text = json.dumps(game, indent=1) + "\n"
        (game_dir / GAME_FILE).write_text(text, encoding="utf-8")
        written[game_dir / TRAJ_FILE] = traj
        written[game_dir / GAME_FILE] = text
    return written


def suite_task_files(scenes: list[Scene]) -> dict[str, str]:
    """One JSONL task file per test split and task type (file name -> text), for the eval suites."""
    from envs.alfworld.games import goal_of

    files: dict[str, list[str]] = {}
    for scene in sorted(scenes, key=lambda s: s.game_id):
        if scene.split == "train":
            continue
        task = {
            "id": scene.game_id,
            "inputs": {"game": scene.game_id, "goal": goal_of({"goal": goal_text(scene)})},
            "metadata": {"split": "test", "alfworld_split": scene.split, "task_type": scene.task_type},
        }
        files.setdefault(f"{scene.split}-{scene.task_type}.jsonl", []).append(json.dumps(task))
    return {name: "\n".join(lines) + "\n" for name, lines in files.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m envs.alfworld.authoring", description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenes", type=Path, default=SCENES, help="the scenes file (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=SHIPPED_ROOT, help="data folder to write (default: %(default)s)")
    parser.add_argument("--suites", type=Path, default=SUITES_DIR, help="folder for the suites' task files")
    parser.add_argument("--check", action="store_true", help="write to a temporary folder and compare")
    args = parser.parse_args(argv)
    scenes = load_scenes(args.scenes)
    if args.check:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            written = write_games(scenes, Path(tmp))
            stale = [p.relative_to(tmp) for p, text in written.items()
                     if not (args.out / p.relative_to(tmp)).is_file()
                     or (args.out / p.relative_to(tmp)).read_text(encoding="utf-8") != text]
        stale += [Path(n) for n, text in suite_task_files(scenes).items()
                  if not (args.suites / n).is_file() or (args.suites / n).read_text(encoding="utf-8") != text]
        for p in stale:
            print(f"stale: {p}", file=sys.stderr)
        return 1 if stale else 0
    written = write_games(scenes, args.out)
    args.suites.mkdir(parents=True, exist_ok=True)
    for name, text in suite_task_files(scenes).items():
        (args.suites / name).write_text(text, encoding="utf-8")
    print(f"wrote {len(scenes)} games ({len(written)} files) under {args.out / JSON_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
