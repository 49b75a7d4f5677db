"""`monitor check`: validate the configuration and every rule and lexicon file.

Prints each problem on its own line (file:line, rule, field, message) and exits 1
if there is any; otherwise prints a short summary and exits 0. Secrets never
appear: config errors pass through `redact`, and notifier URLs are not resolved.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from monitor.config import Config, default_config, load_config
from monitor.core.errors import ConfigError, RuleError
from monitor.core.redact import redact
from monitor.core.rules import RuleFileErrors
from monitor.rulefiles import load_ruleset, resolve_rules_dir


def register(sub: Any) -> None:
    p = sub.add_parser(
        "check",
        help="validate the config and rule files",
        description="Validate the configuration and all rule and lexicon files; "
        "exit 1 on any error.",
    )
    p.add_argument("--config", metavar="FILE", help="config file (default: embedded defaults)")
    p.add_argument("--rules", metavar="DIR", help="rule directory (default: from config)")
    p.set_defaults(func=run)


def _problems(e: RuleError) -> list[RuleError]:
    return list(e.errors) if isinstance(e, RuleFileErrors) else [e]


def run(args: argparse.Namespace) -> int:
    failed = False
    config: Config
    try:
        config = load_config(args.config) if args.config else default_config()
    except ConfigError as e:
        print(redact(str(e)), file=sys.stderr)
        failed = True
        config = default_config()
    directory = resolve_rules_dir(config.rules.dir, args.config, args.rules)
    names = [n.name for n in config.notifiers] if args.config else None
    try:
        rs = load_ruleset(directory, config.rules, notifiers=names)
    except RuleError as e:
        for problem in _problems(e):
            print(redact(str(problem)), file=sys.stderr)
        print(f"monitor check: {len(_problems(e))} problem(s) in {directory}", file=sys.stderr)
        return 1
    if failed:
        return 1
    print(f"OK: config {args.config or '(defaults)'}; rules {directory}: {rs.summary()}")
    return 0
