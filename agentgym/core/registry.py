"""Environment registry: ids -> lazily imported classes with default arguments.

Ids are versioned, ``family/vN`` (``maze/v0``); :func:`make` with a bare family name
takes its newest version. Built-in and third-party environments register the same
way: a package declares an entry point in the ``agentgym.envs`` group naming a
function that calls :func:`register`; entry points are loaded on first use.
"""

from __future__ import annotations

import difflib
import importlib
import re
import threading
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Callable

from agentgym.errors import MissingExtraError, UserError

ENTRY_POINT_GROUP = "agentgym.envs"
_ID = re.compile(r"^[A-Za-z0-9_.\-]+(/[A-Za-z0-9_.\-]+)*/v\d+$")


@dataclass
class EnvSpec:
    """What :func:`make` needs to build an environment, and what ``envs list`` shows."""

    id: str
    entry_point: str | Callable[..., Any]
    kwargs: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    extra: str | None = None
    suites: list[str] = field(default_factory=list)

    @property
    def family(self) -> str:
        return self.id.rsplit("/v", 1)[0]

    @property
    def version(self) -> int:
        return int(self.id.rsplit("/v", 1)[1])

    def load(self) -> type:
        """Import and return the environment class (or factory)."""
        if callable(self.entry_point):
            return self.entry_point
        module_name, _, attr = self.entry_point.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if self.extra and exc.name and not module_name.startswith(exc.name):
                raise MissingExtraError(exc.name, self.extra, f"the {self.id} environment") from exc
            raise
        return getattr(module, attr)


_REGISTRY: dict[str, EnvSpec] = {}
_PLUGINS_LOADED = False
_PLUGINS_LOCK = threading.Lock()
_LOADING_THREAD: int | None = None
_PLUGIN_ERRORS: dict[str, str] = {}


def register(
    id: str,
    entry_point: str | Callable[..., Any],
    *,
    description: str = "",
    extra: str | None = None,
    suites: list[str] | None = None,
    **kwargs: Any,
) -> EnvSpec:
    """Register an environment under a versioned id such as ``"maze/v0"``.

    ``entry_point`` is ``"module:Class"`` (imported lazily) or a callable; ``kwargs``
    become the defaults :func:`make` passes (and its overrides replace).
    """
    if not _ID.match(id):
        raise ValueError(f"environment id {id!r} must look like 'name/v0'")
    spec = EnvSpec(id, entry_point, dict(kwargs), description, extra, list(suites or []))
    _REGISTRY[id] = spec
    return spec


def load_plugins(force: bool = False) -> None:
    """Run every ``agentgym.envs`` entry point once (each calls :func:`register`)."""
    global _PLUGINS_LOADED, _LOADING_THREAD
    if (_PLUGINS_LOADED or _LOADING_THREAD == threading.get_ident()) and not force:
        return  # loaded, or a plugin being loaded by this very thread asks again
    # Episodes call make() from worker threads: no thread may see a half-loaded registry.
    with _PLUGINS_LOCK:
        if _PLUGINS_LOADED and not force:
            return
        _LOADING_THREAD = threading.get_ident()
        try:
            for ep in entry_points(group=ENTRY_POINT_GROUP):
                try:
                    ep.load()()
                except Exception as exc:  # a broken plugin must not hide the others
                    _PLUGIN_ERRORS[ep.name] = f"{type(exc).__name__}: {exc}"
        finally:
            _LOADING_THREAD = None
        _PLUGINS_LOADED = True


def plugin_errors() -> dict[str, str]:
    """Entry points that failed to load, by name, with the error."""
    load_plugins()
    return dict(_PLUGIN_ERRORS)


def registry() -> dict[str, EnvSpec]:
    """All registered environments by id (entry points loaded)."""
    load_plugins()
    return dict(sorted(_REGISTRY.items()))


def spec(id: str) -> EnvSpec:
    """The spec for ``id``; a bare family name resolves to its newest version."""
    load_plugins()
    if id in _REGISTRY:
        return _REGISTRY[id]
    versions = [s for s in _REGISTRY.values() if s.family == id]
    if versions:
        return max(versions, key=lambda s: s.version)
    names = list(_REGISTRY) + sorted({s.family for s in _REGISTRY.values()})
    close = difflib.get_close_matches(id, names, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise UserError(f"unknown environment {id!r}.{hint} Run `agentgym envs list` to see them all.")


def make(id: str, **overrides: Any):
    """Build the environment registered as ``id`` with its defaults updated by ``overrides``."""
    env_spec = spec(id)
    factory = env_spec.load()
    kwargs = {**env_spec.kwargs, **overrides}
    try:
        env = factory(**kwargs)
    except TypeError as exc:
        raise UserError(f"bad arguments for {env_spec.id}: {exc}.") from exc
    env.spec_id = env_spec.id
    return env
