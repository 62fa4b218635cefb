"""The env factory: the one place environments are created.

The rollout engine (and through it guidance and evaluation) receives an
:class:`EnvFactory` and asks it for :class:`~agentgym.core.protocol.AsyncEnv` s; nothing
below the engine calls :func:`agentgym.make`. :class:`LocalEnvFactory` builds them from
the registry on a worker thread (constructors may load corpora or start sandboxes); a
remote factory that opens sessions on an environment server plugs in through
:func:`env_factory`'s spec strings (``"local"``; ``"remote:ws://HOST:PORT"`` once the
server exists), registered in :data:`SCHEMES`.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Protocol, runtime_checkable

from agentgym.core.protocol import AsyncEnv
from agentgym.core.registry import check_arguments, make, spec
from agentgym.core.workers import off_loop
from agentgym.errors import UserError


@runtime_checkable
class EnvFactory(Protocol):
    """Creates environments by registered id and keyword arguments."""

    async def create(self, env_id: str, kwargs: dict[str, Any] | None = None) -> AsyncEnv:
        """A new environment (not reset yet); the caller closes it with ``aclose``."""
        ...

    def validate(self, env_id: str, kwargs: dict[str, Any] | None = None) -> None:
        """Raise :class:`UserError` naming the id or argument when ``create`` would fail on them.

        Cheap and side-effect free: run it before any model loads.
        """
        ...

    async def aclose(self) -> None:
        """Release what the factory holds (connections, pools)."""
        ...


class LocalEnvFactory:
    """Environments from this process's registry (entry points included), built off the loop."""

    async def create(self, env_id: str, kwargs: dict[str, Any] | None = None) -> AsyncEnv:
        env = await off_loop(make, env_id, **(kwargs or {}))  # unknown ids: a clear UserError
        if not _implements_protocol(type(env)):
            close = getattr(env, "close", None)
            if callable(close):
                await off_loop(close)
            raise UserError(f"{env_id} builds a {type(env).__name__}, which does not implement the async env "
                            "protocol; subclass agentgym.TextEnv or agentgym.core.AsyncEnv.")
        return env

    def validate(self, env_id: str, kwargs: dict[str, Any] | None = None) -> None:
        env_spec = spec(env_id)
        check_arguments(env_spec.id, env_spec.load(), {**env_spec.kwargs, **(kwargs or {})})

    async def aclose(self) -> None:
        return None


_CHECKED: dict[type, bool] = {}


def _implements_protocol(cls: type) -> bool:
    """Whether instances of ``cls`` are :class:`AsyncEnv` s (checked once per class: the structural
    check is slow, and a factory creates one env per episode)."""
    if cls not in _CHECKED:
        _CHECKED[cls] = all(callable(getattr(cls, name, None)) for name in
                            ("areset", "astep", "aprogress", "ahint", "aoracle_action", "avalid_actions", "aclose"))
    return _CHECKED[cls]


SCHEMES: dict[str, str] = {"local": "agentgym.core.factory:LocalEnvFactory"}
"""Factory spec scheme -> ``"module:callable"`` taking the text after ``scheme:`` (empty for ``local``)."""


def env_factory(spec_or_factory: str | EnvFactory | None = None) -> EnvFactory:
    """The factory a spec names: None or ``"local"`` (the registry), or ``"SCHEME:ADDRESS"``."""
    if spec_or_factory is not None and not isinstance(spec_or_factory, str):
        return spec_or_factory
    text = (spec_or_factory or "local").strip()
    scheme, _, address = text.partition(":")
    target = SCHEMES.get(scheme)
    if target is None:
        if scheme == "remote":
            raise UserError("remote environments need agentgym's environment server (serve-envs), which this "
                            "installation does not have yet; use the local factory.")
        raise UserError(f"unknown env factory {text!r}: use 'local' or one of {sorted(SCHEMES)}.")
    module, _, attr = target.partition(":")
    build: Callable[..., EnvFactory] = getattr(importlib.import_module(module), attr)
    return build(address) if address else build()
