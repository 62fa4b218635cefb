"""``agentgym envs list`` and ``agentgym envs check``."""

from __future__ import annotations

import argparse
import shutil
import sys

from agentgym.errors import UserError


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="envs_command", metavar="SUBCOMMAND", required=True)
    ls = sub.add_parser("list", help="list registered environments (id, description, tools, extra needed)")
    ls.set_defaults(func=list_envs)
    check = sub.add_parser(
        "check",
        help="check environments: gymnasium's check_env plus determinism, fuzzing and info contracts",
        description="Check one environment, or every registered one with --all. Exits non-zero on any failure.",
    )
    check.add_argument("env_id", nargs="?", help="environment id, e.g. maze/v0")
    check.add_argument("--all", action="store_true", help="check every registered environment")
    check.add_argument("--fuzz", type=int, default=2000, help="fuzzed actions per environment (default 2000)")
    check.add_argument("--time-budget", type=float, default=60.0, help="seconds of fuzzing per environment at most")
    check.add_argument("--skip", action="append", default=[], metavar="ID", help="skip this id (repeatable)")
    check.set_defaults(func=check_envs)


def _tools_and_status(spec) -> tuple[str, str]:
    from agentgym.core.tools import collect_tools
    from agentgym.errors import MissingExtraError

    try:
        cls = spec.load()
    except MissingExtraError:
        return "?", f"needs [{spec.extra}]"
    except Exception as exc:  # report broken envs in the table instead of crashing the listing
        return "?", f"broken: {type(exc).__name__}"
    tools = ", ".join(collect_tools(cls)) if isinstance(cls, type) else ""
    return tools or "(text)", (f"[{spec.extra}]" if spec.extra else "")


def list_envs(args: argparse.Namespace) -> int:
    from agentgym.core.registry import plugin_errors, registry

    specs = registry()
    rows = [("ID", "TOOLS", "EXTRA", "DESCRIPTION")]
    for spec in specs.values():
        tools, status = _tools_and_status(spec)
        rows.append((spec.id, tools, status, " ".join(spec.description.split())))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    # the description comes last and, on a terminal, is cut at its width: no line wraps
    room = shutil.get_terminal_size((0, 0)).columns - sum(widths) - 6 if sys.stdout.isatty() else 0
    for r in rows:
        text = r[3] if room < 20 or len(r[3]) <= room else r[3][: room - 1] + "…"
        print(f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {text}".rstrip())
    for name, err in plugin_errors().items():
        print(f"warning: the entry point {name!r} failed to load: {err}", file=sys.stderr)
    return 0


def check_envs(args: argparse.Namespace) -> int:
    from agentgym.core.checker import check_text_env
    from agentgym.core.registry import make, registry, spec

    if args.all == bool(args.env_id):
        raise UserError("give one environment id or --all.")
    ids = list(registry()) if args.all else [spec(args.env_id).id]
    ids = [i for i in ids if i not in set(args.skip)]
    failed = 0
    rows = []
    for env_id in ids:
        make(env_id).close()  # surface construction errors (missing extras) as one clear line
        results = check_text_env(lambda: make(env_id), fuzz_actions=args.fuzz, time_budget_s=args.time_budget)
        for r in results:
            rows.append((env_id, r))
            failed += not r.passed
    width = max((len(i) for i in ids), default=2)
    print(f"{'ENV':<{width}}  {'CHECK':<30}  RESULT")
    for env_id, r in rows:
        first_line = r.detail.splitlines()[0] if r.detail else ""
        print(f"{env_id:<{width}}  {r.name:<30}  {'PASS' if r.passed else 'FAIL'}  {first_line}")
    for env_id, r in rows:
        if not r.passed:
            print(f"\n--- {env_id}: {r.name}\n{r.detail}", file=sys.stderr)
    print(f"\n{len(rows) - failed} passed, {failed} failed")
    return 1 if failed else 0
