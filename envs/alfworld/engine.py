"""The ALFWorld engine: textworld's PDDL environment, each game prepared once per process.

textworld's ``PddlEnv`` parses a game's grammar and translates its PDDL problem to SAS on
every ``load()`` and translates again on every ``reset()`` (0.3-0.4 s together), and every
``PddlEnv`` loads its own copy of fast-downward's library, which nothing unloads. Here:

* :func:`prepare` loads a game once per process with textworld's own ``PddlEnv.load`` (grammar
  parsed, problem translated, initial state built) and names its entities as alfworld's
  ``AlfredDemangler`` does; prepared games are kept in a bounded LRU cache;
* :meth:`Engine.start` begins an episode from a copy of the game's initial state (translation,
  logic and names shared read-only, fact sets copied, the SAS loaded into the episode's own
  planner library) and of its first game state (intro text, admissible commands), both made
  once per game: no PDDL is translated and no text derived to start a game's later episodes;
* :meth:`Engine.step` is ``PddlEnv.step`` itself: admissible commands, feedback and ``won``
  are the engine's;
* engines (each with its planner library, ~1.4 MB) are pooled (:func:`acquire` /
  :func:`release`) and never destroyed: with several copies of fast-downward's library loaded,
  unloading one (``close_lib``) makes the process segfault in the library's C++ static
  destructors at exit, so a process keeps as many engines as it ran episodes at once, and
  reuses them.

textworld's grammar parser and fast-downward's translator are process-global and not
thread-safe (the translator even swaps ``sys.stdout`` and overwrites ``sys.argv``), so each
call into the engine holds one process-wide lock; the work is pure Python under the GIL anyway.
"""

from __future__ import annotations

import copy
import sys
import threading
from collections import Counter, OrderedDict, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fast_downward  # noqa: F401  (without textworld[pddl] this names the missing extra)
import textworld
from textworld.core import GameState
from textworld.envs.pddl import PddlEnv
from textworld.logic import Proposition, Variable

from envs.alfworld.games import read_game

#: Held by every call into textworld or fast-downward (see the module docstring).
LOCK = threading.RLock()
#: Prepared games kept per process; each holds a parsed grammar and a PDDL translation.
CACHE_SIZE = 128


@dataclass(frozen=True)
class PreparedGame:
    """A game loaded once: its data, parsed logic, initial state and entity names (read-only)."""

    path: str
    data: dict[str, Any]
    logic: Any  # textworld.envs.pddl.logic.GameLogic
    initial: Any  # textworld.envs.pddl.logic.PddlState, never stepped
    entity_infos: dict[str, Any]  # id -> textworld EntityInfo with alfworld's names ("mug 1")
    first_state: GameState  # what start() returns: intro feedback, admissible commands, won
    operators: dict[int, Any]  # the initial state's applicable planner operators, by id

    def readable(self, fact: Proposition) -> Proposition:
        """A fact with entity ids replaced by display names, as textworld's ``facts`` info shows it."""
        return Proposition(fact.name, [Variable(self.entity_infos[v.name].name, v.type) for v in fact.arguments])


class Engine(PddlEnv):
    """textworld's ``PddlEnv`` playing prepared games (one episode at a time)."""

    def __init__(self) -> None:
        super().__init__(textworld.EnvInfos(admissible_commands=True, won=True))  # loads a planner library
        self.game: PreparedGame | None = None

    def start(self, game: PreparedGame) -> GameState:
        """Begin an episode of ``game``; returns textworld's first game state (intro as feedback)."""
        with LOCK:
            self._load_prepared(game)
            self._pddl_state._operators = game.operators  # what _gather_infos left on the initial state
            self.state = GameState(game.first_state)  # top level copied; the lists in it are read-only
            return self.state

    def _load_prepared(self, game: PreparedGame) -> None:
        self.game = game
        self._game_file, self._game_data = game.path, game.data
        self.walkthrough = game.data.get("walkthrough")
        self._logic, self._entity_infos = game.logic, game.entity_infos
        self._pddl_state = _copy_state(game.initial, self.downward_lib)
        self.prev_state, self._last_action, self._moves = None, None, 0

    def _first_state(self) -> GameState:
        """``PddlEnv.reset``'s game state for the loaded initial state: intro text and infos."""
        self.state = GameState()
        context = {
            "state": self._pddl_state,
            "facts": list(self._pddl_state.facts),
            "variables": {},
            "mapping": {},
            "entity_infos": self._entity_infos,
        }
        self.state.feedback = self.state.raw = self._logic.grammar.derive("#intro#", context)
        self._gather_infos()
        return self.state

    def step(self, command: str):
        """``PddlEnv.step``: unknown commands answer "Nothing happens." and change nothing."""
        if self.game is None:
            raise RuntimeError("Engine.step before Engine.start")
        with LOCK:
            return super().step(command)

    def close(self) -> None:
        """Nothing to do: the planner library stays loaded for the engine's next episode.

        textworld calls ``close()`` when an environment is garbage collected; fast-downward's
        ``close_lib`` must never run here (see the module docstring).
        """


def _copy_state(initial: Any, lib: Any) -> Any:
    """A fresh episode state: ``initial``'s translation shared, its facts copied, SAS loaded into ``lib``.

    Relies on the attributes of textworld 1.7's ``PddlState`` (pinned by the ``alfworld`` extra);
    tests check that a copied state plays exactly like one textworld builds itself.
    """
    state = copy.copy(initial)
    state._facts = defaultdict(set, {k: set(v) for k, v in initial._facts.items()})
    state._vars_by_name = dict(initial._vars_by_name)
    state._vars_by_type = defaultdict(set, {k: set(v) for k, v in initial._vars_by_type.items()})
    state._var_counts = Counter(initial._var_counts)
    state.downward_lib = lib
    lib.load_sas(initial.sas.encode("utf-8"))
    lib.load_sas_replan(initial.sas_replan.encode("utf-8"))
    return state


# ----------------------------------------------------------------------------- prepared games
_CACHE: OrderedDict[str, PreparedGame] = OrderedDict()
_loader: PddlEnv | None = None


def prepare(path: str | Path) -> PreparedGame:
    """The prepared game for ``path`` (loaded on first use, then from the LRU cache)."""
    key = str(Path(path).resolve())
    with LOCK:
        game = _CACHE.get(key)
        if game is not None:
            _CACHE.move_to_end(key)
            return game
        game = _load(key)
        _CACHE[key] = game
        while len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)
        return game


def _load(path: str) -> PreparedGame:
    global _loader
    from alfworld.agents.utils.misc import Demangler

    data = read_game(Path(path))
    if _loader is None:
        _loader = Engine()
    argv = sys.argv[:]
    try:
        PddlEnv.load(_loader, data)  # parses the grammar, translates the problem, builds the initial state
    finally:
        sys.argv[:] = argv  # fast-downward's translator overwrote it
    logic, initial, infos = _loader._logic, _loader._pddl_state, _loader._entity_infos
    names = Demangler(game_infos=infos, shuffle=False)  # what alfworld's AlfredDemangler does on load
    for info in infos.values():
        info.name = names.demangle_alfred_name(info.id)
    game = PreparedGame(path, data, logic, initial, infos, GameState(), {})
    _loader._load_prepared(game)  # a copy of the initial state, which stays unstepped
    first = _loader._first_state()
    return PreparedGame(path, data, logic, initial, infos, first, _loader._pddl_state._operators)


def clear_cache() -> None:
    """Forget every prepared game (the next episode of each loads it again)."""
    with LOCK:
        _CACHE.clear()


# ----------------------------------------------------------------------------- engine pool
_POOL: list[Engine] = []
_POOL_LOCK = threading.Lock()


def acquire() -> Engine:
    """An idle engine from the pool, or a new one (one copy of fast-downward's library each)."""
    with _POOL_LOCK:
        if _POOL:
            return _POOL.pop()
    with LOCK:  # fast-downward's library is copied and loaded here
        return Engine()


def release(engine: Engine) -> None:
    """Give an engine back for the next episode (engines are never destroyed; see the module docstring)."""
    engine.game = None
    with _POOL_LOCK:
        _POOL.append(engine)
