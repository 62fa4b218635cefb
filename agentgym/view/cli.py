"""``agentgym view RUN_DIR ...``: the runs as a local web page, or ``--export DIR`` as a static report."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from agentgym.errors import UserError

DEFAULT_PORT = 8765

DESCRIPTION = """\
Show training and eval runs as a local web page: a run list, training curves (several runs
overlaid), eval tables with confidence intervals and pass@k, two eval runs side by side, and a
trajectory browser with filters and text search that shows every turn, the guidance that was
injected, per-turn progress scores, and the loss mask over the exact tokens. The page updates
as a running job writes, and needs no network (every asset is served from here).
"""

EPILOG = """\
RUN_DIR is a folder written by `agentgym train` or `agentgym eval`, a trajectories JSONL file,
or a folder with runs below it (e.g. runs/). Examples:
  agentgym view runs/maze
  agentgym view runs/ --port 9000
  agentgym view runs/eval/a runs/eval/b --export report/   (then open report/index.html)
"""


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``agentgym view`` (the CLI table calls this)."""
    parser.description = DESCRIPTION
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "runs", nargs="+", type=Path, metavar="RUN_DIR", help="run folders, files or folders of runs"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"port to serve on (default {DEFAULT_PORT}; 0 picks a free one)",
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1, this machine only; the page has no login)",
    )
    parser.add_argument(
        "--export",
        type=Path,
        metavar="DIR",
        help="write a self-contained static report to DIR/index.html instead of serving",
    )
    parser.add_argument(
        "--episodes",
        type=int,
        default=50,
        metavar="N",
        help="with --export: episodes per run shown turn by turn (default 50)",
    )
    parser.add_argument(
        "--poll",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="how often to look for new metrics and trajectories (default 1)",
    )
    parser.add_argument(
        "--no-cache",
        action="store_true",
        help="keep trajectory indexes in memory only (default: saved in agentgym's cache)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Serve the runs until Ctrl-C, or write the report with ``--export``; returns the exit code."""
    if not 0 <= args.port <= 65535:
        raise UserError(f"--port must be between 0 and 65535, not {args.port}.")
    if args.poll <= 0:
        raise UserError("--poll must be a positive number of seconds.")
    if args.episodes < 0:
        raise UserError("--episodes must be 0 or more.")
    from agentgym.view.jsonl_index import cache_root
    from agentgym.view.viewer import Viewer

    viewer = Viewer(args.runs, cache_dir=None if args.no_cache else cache_root())
    warnings = viewer.catalog.warnings
    if not viewer.catalog.runs:
        raise UserError("nothing to show: " + " ".join(warnings))
    for warning in warnings:
        print(f"agentgym view: warning: {warning}", file=sys.stderr)
    if args.export is not None:
        from agentgym.view.export import export_report

        path = export_report(viewer, args.export, episodes=args.episodes)
        print(f"Wrote {path} ({len(viewer.catalog.runs)} runs); open it in a browser, no server needed.")
        return 0
    from agentgym.view.server import ASSETS

    missing = [n for n in ("index.html", "app.js", "app.css") if not (ASSETS / n).is_file()]
    if missing:
        raise UserError(
            f"this installation lacks the page's files ({', '.join(missing)} in {ASSETS}); "
            "reinstall agentgym."
        )
    return asyncio.run(_serve(viewer, args))


async def _serve(viewer, args: argparse.Namespace) -> int:
    from agentgym.view.server import serve

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # not the main thread, or no signals here
            pass
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"agentgym view: warning: listening on {args.host}: anyone who can reach it sees these runs.",
            file=sys.stderr,
        )

    def ready(url: str) -> None:
        runs = len(viewer.catalog.runs)
        print(f"agentgym view: {runs} run{'s' if runs != 1 else ''} at {url} (Ctrl-C to stop)", flush=True)

    await serve(viewer, args.host, args.port, poll_s=args.poll, ready=ready, stop=stop)
    print("agentgym view: stopped", flush=True)
    return 0
