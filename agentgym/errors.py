"""Errors a user can cause.

The CLI turns a :class:`UserError` into one clear line on stderr and exit code 2,
never a traceback. Library code raises it for bad input: unknown ids, bad configs,
missing extras, unreachable servers.
"""

from __future__ import annotations


class UserError(Exception):
    """A mistake the user can fix; the message says what to do."""


class MissingExtraError(UserError):
    """An optional dependency is not installed."""

    def __init__(self, package: str, extra: str, what: str = ""):
        purpose = f" for {what}" if what else ""
        super().__init__(
            f"{package} is needed{purpose}: install it with `pip install 'agentgym[{extra}]'`."
        )
        self.package = package
        self.extra = extra


def require(module: str, extra: str, what: str = ""):
    """Import ``module`` or raise :class:`MissingExtraError` naming the extra."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingExtraError(module.split(".")[0], extra, what) from exc
