"""Environment registry: ids -> lazily imported classes with default arguments.

Ids are versioned, ``family/vN`` (``maze/v0``); :func:`make` with a bare family name
takes its newest version. Built-in and third-party environments register the same
way: a package declares an entry point in the ``agentgym.envs`` group naming a
function that calls :func:`register`; entry points are loaded on first use.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import inspect
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
    override: bool = False,
    **kwargs: Any,
) -> EnvSpec:
    """Register an environment under a versioned id such as ``"maze/v0"``.

    ``entry_point`` is ``"module:Class"`` (imported lazily) or a callable; ``kwargs``
    become the defaults :func:`make` passes (and its overrides replace). An id that is
    already registered differently raises ``ValueError`` unless ``override=True``; the very
    same registration again is a no-op.
    """
    if not _ID.match(id):
        raise ValueError(f"environment id {id!r} must look like 'name/v0'")
    load_plugins()  # a duplicate of an entry point's id is caught whichever registers first
    spec = EnvSpec(id, entry_point, dict(kwargs), description, extra, list(suites or []))
    if _REGISTRY.get(id) == spec:
        return _REGISTRY[id]  # the same registration again (a plugin's register() called twice)
    if id in _REGISTRY and not override:
        old = _REGISTRY[id].entry_point
        where = old if isinstance(old, str) else getattr(old, "__qualname__", repr(old))
        raise ValueError(f"environment id {id!r} is already registered (by {where}); "
                         "pick another id or version, or pass override=True to replace it")
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
    """Build the environment registered as ``id`` with its defaults updated by ``overrides``.

    The arguments are checked against the entry point's signature first, so a mistake in
    them is a :class:`UserError` naming the argument, and a ``TypeError`` raised inside the
    environment's own constructor surfaces as itself.
    """
    env_spec = spec(id)
    factory = env_spec.load()
    kwargs = {**env_spec.kwargs, **overrides}
    check_arguments(env_spec.id, factory, kwargs)
    env = factory(**kwargs)
    env.spec_id = env_spec.id
    return env


def check_arguments(env_id: str, factory: Callable[..., Any], kwargs: dict[str, Any]) -> None:
    """Raise :class:`UserError` when ``factory`` cannot take ``kwargs`` (unknown or missing names).

    A class whose ``__init__`` takes ``**kwargs`` hands them to its base: the bases' signatures
    are followed along the MRO until one takes no ``**kwargs``.
    """
    accepted: dict[str, inspect.Parameter] = {}
    for params in _signatures(factory):
        open_ended = False
        for p in params:
            if p.kind is p.VAR_KEYWORD:
                open_ended = True
            elif p.kind is not p.VAR_POSITIONAL and p.name not in accepted:
                accepted[p.name] = p
        if not open_ended:
            break
    else:
        return  # every signature takes **kwargs: anything goes
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        names = ", ".join(n for n, p in accepted.items() if p.kind is not p.POSITIONAL_ONLY) or "none"
        close = difflib.get_close_matches(unknown[0], list(accepted), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UserError(f"bad arguments for {env_id}: it takes no argument {unknown[0]!r}{hint}; "
                        f"its arguments are: {names}.")
    missing = [n for n, p in accepted.items() if p.default is p.empty and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
               and n not in kwargs]
    if missing:
        raise UserError(f"bad arguments for {env_id}: the argument {missing[0]!r} is required.")


def _signatures(factory: Callable[..., Any]) -> tuple[tuple[inspect.Parameter, ...], ...]:
    """The parameter lists a call of ``factory`` meets (``__init__`` along the MRO for a class).

    Cached per factory: ``inspect.signature`` along the MRO costs ~60 us, and every episode makes an env.
    """
    try:
        return _cached_signatures(factory)
    except TypeError:  # an unhashable callable
        return _signatures_of(factory)


def _signatures_of(factory: Callable[..., Any]) -> tuple[tuple[inspect.Parameter, ...], ...]:
    if not isinstance(factory, type):
        try:
            return (tuple(inspect.signature(factory).parameters.values()),)
        except (TypeError, ValueError):  # builtins without a signature: let the call decide
            return ((inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD),),)
    out = []
    for cls in factory.__mro__:
        init = cls.__dict__.get("__init__")
        if init is None:
            continue
        if cls is object:
            break
        try:
            params = tuple(inspect.signature(init).parameters.values())[1:]  # drop self
        except (TypeError, ValueError):
            params = (inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD),)
        out.append(params)
    return tuple(out) or ((),)


_cached_signatures = functools.lru_cache(maxsize=512)(_signatures_of)
