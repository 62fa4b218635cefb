"""Errors a user can cause.

The CLI turns a :class:`UserError` into one clear line on stderr and exit code 2,
never a traceback. Library code raises it for bad input: unknown ids, bad configs,
missing extras, unreachable servers.
"""

from __future__ import annotations


class UserError(Exception):
    """A mistake the user can fix; the message says what to do."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised by the command line as Ctrl-C is (:func:`agentgym.cli.main`): every
    ``finally`` runs (a training run saves its checkpoint, vLLM engine processes and sandboxes
    are shut down) instead of the process dying on the spot and leaving its children running."""


def interrupted_exit_code(exc: KeyboardInterrupt) -> int:
    """The shell's code for a command stopped by ``exc``: 143 for SIGTERM, 130 for Ctrl-C."""
    return 143 if isinstance(exc, Terminated) else 130


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


def yaml_error(path: object, exc: Exception) -> UserError:
    """One line for a YAML syntax error: the file, the line and column, and what is wrong there
    (PyYAML's own message names ``<unicode string>`` and spans several lines)."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
    problem = getattr(exc, "problem", None) or getattr(exc, "context", None) or str(exc).splitlines()[0]
    return UserError(f"{where}: not valid YAML ({problem}).")
