"""The ``agentgym`` command line.

Subcommands live in their own modules and are imported only when chosen, so
``agentgym --help`` is instant. Each module in :data:`COMMANDS` exposes
``configure(parser)``, which adds its arguments and sets ``func`` (called with the
parsed namespace; returns an exit code or None).
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import threading

from agentgym import __version__
from agentgym.errors import Terminated, UserError, interrupted_exit_code

# name -> (module, one-line help). Order is the order shown by --help.
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("agentgym.train.cli", "train a policy with multi-turn GRPO from a YAML config"),
    "eval": ("agentgym.eval.cli", "evaluate a policy on an environment suite; compare runs"),
    "envs": ("agentgym.core.cli", "list registered environments and check them"),
    "play": ("agentgym.core.play", "play any text environment yourself in the terminal"),
    "trajectories": ("agentgym.rollout.cli", "show recorded trajectories turn by turn"),
    "serve-policy": ("agentgym.policy.cli", "serve a local policy as an OpenAI-compatible endpoint"),
    "serve-envs": ("agentgym.server.cli", "serve environments to trainers on other hosts (OpenEnv WebSocket protocol)"),
    "rubrics": ("agentgym.rewards.cli", "build rubrics for tasks from their hidden references"),
    "search": ("envs.search.cli", "build and query BM25 indexes for the search environment"),
    "swe": ("envs.swe.cli", "make SWE tasks from PyPI packages; manage sandboxes"),
    "view": ("agentgym.view.cli", "show runs as a local web page: curves, eval tables, trajectories, live"),
}


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="agentgym",
        description="agentgym: multi-turn text environments and a GRPO learner for LLM agents.",
        epilog="Run `agentgym COMMAND --help` for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"agentgym {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = next((a for a in argv if not a.startswith("-")), None)
    for name, (module, help_text) in COMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            try:
                importlib.import_module(module).configure(sp)
            except ModuleNotFoundError as exc:
                if exc.name and module.startswith(exc.name):
                    raise UserError(f"the `{name}` command is not available in this installation ({exc}).") from exc
                raise
    return parser


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated()


def _terminate_like_interrupt() -> None:
    """SIGTERM raises :class:`Terminated` in the main thread, unless someone set a handler already."""
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _raise_terminated)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    _terminate_like_interrupt()
    try:
        parser = build_parser(argv)
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return 0 if not argv else 2
        from agentgym.malloc import limit_malloc_growth

        limit_malloc_growth()  # eval, play and serve-policy generate in threads as train does
        code = args.func(args)
        return int(code or 0)
    except UserError as exc:
        print(f"agentgym: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        print(f"agentgym: {'terminated' if isinstance(exc, Terminated) else 'interrupted'}", file=sys.stderr)
        return interrupted_exit_code(exc)
    except BrokenPipeError:  # `agentgym envs list | head`: the reader left; not an error worth a traceback
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
