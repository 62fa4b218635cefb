"""Task sets and shared indexes for the search environment, cached and split.

Splits are assigned by a hash of the normalised primary answer, not of the question:
all questions with the same answer land in the same split, so no answer, and hence
no question, is ever in both splits. The core assigns splits by a hash of the task's
inputs (``split_of(task.fingerprint())``, used by ``generate_split`` and the eval
suites); so that both rules agree, a task whose inputs hash to the other split gets
an ``inputs["nonce"]`` (never shown to the policy) chosen to make them agree. Generated sets are cached as JSONL
under the search cache, keyed by corpus, generator version and seed.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

from agentgym.core import Task, load_tasks, save_tasks, split_of
from agentgym.errors import UserError
from agentgym.rewards.verifiable import normalize_answer
from envs.search.backends import SearchIndex, build_index, load_index
from envs.search.cache import search_cache_dir
from envs.search.corpus import WIKI_CORPUS_NAME, load_wikipedia, wikipedia_corpus_path

TASK_SETS = ("multihop", "singlehop", "trivia", "descriptions")
MULTIHOP_POOL = 3000  # distinct chains drawn per seed, before splitting
TASKS_VERSION = 3

_LOCK = threading.Lock()
_INDEXES: dict[tuple[str, str], SearchIndex] = {}


def answer_key(task: Task) -> str:
    """The normalised primary answer: tasks with equal answers share a split, whatever their kind."""
    return normalize_answer(str(task.reference["answers"][0]))


def task_split(task: Task, test_fraction: float = 0.2) -> str:
    """``train`` or ``test``, from the hash of the task's answer."""
    return split_of(hashlib.sha256(answer_key(task).encode()).hexdigest(), test_fraction)


def agree_splits(task: Task) -> Task:
    """The task with a nonce in its inputs, if needed, so its fingerprint's split is its answer's."""
    want = task_split(task)
    if split_of(task.fingerprint()) == want:
        return task
    for nonce in range(1, 1000):
        candidate = task.model_copy(update={"inputs": {**task.inputs, "nonce": nonce}})
        if split_of(candidate.fingerprint()) == want:
            return candidate
    raise RuntimeError(f"no nonce puts task {task.id} in the {want} split")  # pragma: no cover - p = 0.8^999


def split_tasks(tasks: list[Task], split: str) -> list[Task]:
    return [t for t in tasks if task_split(t) == split]


def wiki_index(backend: str = "bm25s") -> SearchIndex:
    """The Wikipedia index of ``backend``, built into the cache on first use, shared in-process."""
    key = (WIKI_CORPUS_NAME, backend)
    with _LOCK:
        index = _INDEXES.get(key)
        if index is None:
            folder = search_cache_dir() / "indexes" / f"{WIKI_CORPUS_NAME}-{backend}"
            if (folder / "meta.json").is_file():
                index = load_index(folder)
            else:
                index = build_index(wikipedia_corpus_path(), folder, backend)
            _INDEXES[key] = index
        return index


def open_index(path: str | Path) -> SearchIndex:
    """An index folder, loaded once per process."""
    key = (str(Path(path).resolve()), "")
    with _LOCK:
        if key not in _INDEXES:
            _INDEXES[key] = load_index(path)
        return _INDEXES[key]


def _generate(name: str, seed: int) -> list[Task]:
    if name == "multihop":
        from envs.search.multihop import MultiHopGenerator

        return MultiHopGenerator(load_wikipedia(), wiki_index(), WIKI_CORPUS_NAME).generate(
            MULTIHOP_POOL, seed
        )
    if name == "trivia":
        from envs.search.singlehop import trivia_tasks

        return trivia_tasks(wiki_index(), WIKI_CORPUS_NAME)
    if name == "descriptions":
        from envs.search.singlehop import description_tasks

        return description_tasks(load_wikipedia(), WIKI_CORPUS_NAME)
    if name == "singlehop":
        import random

        trivia = wiki_task_set("trivia", seed=seed)
        descriptions = wiki_task_set("descriptions", seed=seed)
        picked = random.Random(seed).sample(descriptions, min(len(descriptions), len(trivia)))
        return sorted(trivia + picked, key=lambda t: t.id)
    raise UserError(f"unknown search task set {name!r}: choose one of {', '.join(TASK_SETS)}.")


def wiki_task_set(name: str, split: str | None = None, seed: int = 0) -> list[Task]:
    """A task set over the Wikipedia corpus (all of it, or one split), generated once and cached.

    Kept in memory per process too: every environment (each session of an env server) shares one
    copy instead of parsing thousands of tasks again. Callers get their own list of the shared tasks.
    """
    if name not in TASK_SETS:
        raise UserError(f"unknown search task set {name!r}: choose one of {', '.join(TASK_SETS)}.")
    key = (name, split, seed if name in ("multihop", "singlehop") else 0)
    with _LOCK:
        shared = _TASK_SETS.get(key)
    if shared is None:
        shared = _load_task_set(name, seed)
        if split is not None:
            shared = split_tasks(shared, split)
        with _LOCK:
            shared = _TASK_SETS.setdefault(key, shared)
    return list(shared)


_TASK_SETS: dict[tuple[str, str | None, int], list[Task]] = {}


def _load_task_set(name: str, seed: int) -> list[Task]:
    seeded = name in ("multihop", "singlehop")
    path = (
        search_cache_dir()
        / "tasks"
        / f"{WIKI_CORPUS_NAME}-{name}{f'-seed{seed}' if seeded else ''}-v{TASKS_VERSION}.jsonl"
    )
    with _LOCK:
        cached = path.is_file()
    if cached:
        return load_tasks(path)
    tasks = [agree_splits(t) for t in _generate(name, seed)]
    tmp = path.with_suffix(f".{os.getpid()}.part")  # concurrent writers never collide
    save_tasks(tasks, tmp)
    tmp.replace(path)
    return tasks
