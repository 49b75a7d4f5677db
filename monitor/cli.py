"""The command line: `monitor <command>`. Each command lives in `monitor.commands`."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from monitor import __version__
from monitor.core.errors import MonitorError
from monitor.core.redact import redact
from monitor.logs import setup_logging

COMMANDS = ("run", "demo", "check", "poll", "feeds", "explain", "outbox", "health")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="monitor",
        description="News-alert daemon for semiconductor stocks (Korean and English).",
    )
    parser.add_argument("--version", action="version", version=f"semis-monitor {__version__}")
    parser.add_argument(
        "--log-format", choices=("text", "json"), default="text", help="log line format"
    )
    parser.add_argument(
        "--log-level",
        default=None,
        help="DEBUG, INFO, WARNING or ERROR (default: INFO for run, WARNING for demo, "
        "ERROR for the one-shot commands, whose own output says what failed)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"monitor.commands.{name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    default = {"run": "INFO", "demo": "WARNING"}.get(args.command, "ERROR")
    level = args.log_level or default
    setup_logging(args.log_format, level)
    try:
        code: int = args.func(args)
    except MonitorError as e:  # a config error, an unreachable store ...: said, not a traceback
        print(f"monitor {args.command}: {redact(str(e))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return code
