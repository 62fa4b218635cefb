"""Log lines a user sees: agentgym's INFO and WARNING records on stderr, around progress bars.

Commands that run long (``train``, ``eval``) call :func:`show_logs` once; records are
written through ``tqdm.write`` so a progress bar is redrawn below them instead of being torn.
Only the ``agentgym`` logger is shown at INFO; other libraries keep Python's default
(warnings and errors only).
"""

from __future__ import annotations

import logging
import sys


class _BarSafeHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            from tqdm import tqdm

            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # noqa: BLE001 - logging must never raise
            self.handleError(record)


class _Format(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        if record.levelno >= logging.WARNING:
            return f"agentgym: {record.levelname.lower()}: {text}"
        return f"agentgym: {text}"


def show_logs(level: int = logging.INFO) -> None:
    """Show the ``agentgym`` logger's records at ``level`` and above on stderr (idempotent)."""
    logger = logging.getLogger("agentgym")
    if any(isinstance(h, _BarSafeHandler) for h in logger.handlers):
        return
    handler = _BarSafeHandler()
    handler.setFormatter(_Format())
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
